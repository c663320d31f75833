"""Air gap (integration): `gpo-local optimize` and `eval` run in subprocesses whose outbound
sockets and name lookups are blocked (a sitecustomize.py on PYTHONPATH), with no Hugging Face
offline variable set. They must pass without a single attempt to reach the network; only a
user naming an uncached hub dataset makes the project try, and that fails in one line."""

import os
import subprocess
import sys
import textwrap

import pytest
from conftest import bundled_model_path

pytestmark = pytest.mark.integration

bundled_model_path()  # skips the module where the bundled model is not installed

BLOCKER = textwrap.dedent("""
    import os, socket

    _LOG = os.environ["GPO_AIRGAP_LOG"]
    _connect, _connect_ex, _getaddrinfo = socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo

    def _record(what):
        with open(_LOG, "a") as log:
            log.write(repr(what) + "\\n")

    def connect(self, address, *args):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            _record(("connect", address))
            raise OSError(101, "Network is unreachable (blocked by the air-gap test)")
        return _connect(self, address, *args)

    def connect_ex(self, address, *args):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            _record(("connect_ex", address))
            return 101
        return _connect_ex(self, address, *args)

    def getaddrinfo(host, *args, **kwargs):
        if host not in (None, "localhost", "127.0.0.1", "::1"):
            _record(("getaddrinfo", host))
            raise socket.gaierror(-3, "Temporary failure in name resolution (blocked by the air-gap test)")
        return _getaddrinfo(host, *args, **kwargs)

    socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo = connect, connect_ex, getaddrinfo
""")

OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")


@pytest.fixture
def airgapped(tmp_path):
    blocker = tmp_path / "airgap"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(BLOCKER)
    log = tmp_path / "attempts.log"
    log.touch()
    env = {k: v for k, v in os.environ.items() if k not in OFFLINE_VARIABLES}
    env.update(
        GPO_AIRGAP_LOG=str(log),
        GPO_LOCAL_HOME=str(tmp_path / "home"),
        PYTHONPATH=os.pathsep.join(p for p in (str(blocker), env.get("PYTHONPATH")) if p),
    )

    def gpo(*args):
        return subprocess.run(
            [sys.executable, "-m", "gpo_local.app.cli", *map(str, args)],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )

    return gpo, log


def test_optimize_and_eval_open_no_connection(airgapped, tmp_path):
    gpo, log = airgapped
    data = tmp_path / "reviews.csv"
    data.write_text(
        "review,label\n"
        '"A wonderful, moving film.",positive\n"Dull and far too long.",negative\n'
        '"I loved every minute.",positive\n'
    )
    optimized = gpo(
        "optimize",
        "sentiment",
        "--steps",
        "1",
        "--candidates",
        "2",
        "--dev-limit",
        "4",
        "--test-limit",
        "4",
        "--optimizer-max-tokens",
        "48",
        "--threads",
        "2",
        "--n-ctx",
        "1024",
        "--parallel",
        "8",
        "--run-dir",
        tmp_path / "run",
        "--quiet",
    )
    assert optimized.returncode == 0, optimized.stderr
    assert (tmp_path / "run" / "result.json").exists()
    evaluated = gpo(
        "eval",
        data,
        "--input-field",
        "review",
        "--target-field",
        "label",
        "--metric",
        "yes-no",
        "--prompt",
        "Is the review positive or negative?",
        "--threads",
        "2",
        "--n-ctx",
        "1024",
    )
    assert evaluated.returncode == 0, evaluated.stderr
    assert evaluated.stdout.startswith("reviews eval: ")
    assert log.read_text() == ""  # not one attempt to reach the network

    # The blocker works: naming a hub dataset that is not cached is the one case that tries.
    hub = gpo("eval", "hf:nobody/not-cached-anywhere", "--prompt", "x")
    assert hub.returncode == 1
    assert hub.stderr.strip().splitlines() == [
        "Error: Hugging Face dataset nobody/not-cached-anywhere is not in the local cache and huggingface.co "
        "cannot be reached (Temporary failure in name resolution (blocked by the air-gap test)); connect to "
        "the network once, or use local files"
    ]
    assert "huggingface.co" in log.read_text()
