"""A fuzz test of the command line: every option of `optimize` and `eval`, read from the click
commands themselves (an option added later is fuzzed too), given values a hostile or careless
user might type: zero, negative, huge, NaN, infinity, empty, the wrong type, a directory where a
file goes, a file that does not exist. Each case must end either in success or in a non-zero
exit with exactly one error line and no traceback; never an uncaught exception.

The cases run in-process through click's CliRunner against the scripted fakes (no model loads;
the real GGUF checks still apply to the paths given). A short sample runs against the bundled
135M model in a subprocess with a memory ceiling and a timeout: no signal may end it.

The values come from a seeded generator (GPO_LOCAL_FUZZ_SEED, default 0): the same seed gives
the same cases. Where a value is accepted that the option table should refuse (NaN, sizes past
what the machine holds), the case is marked xfail with reason "bounds: options branch": those
bounds are being added to the option table; remove the marks once they are in.
"""

from __future__ import annotations

import json
import os
import random
import resource
import signal
import subprocess
import sys
from pathlib import Path

import click
import fake_cli
import pytest
from click.testing import CliRunner
from conftest import bundled_model_path

from gpo_local.app.cli import main
from gpo_local.errors import ConfigError

SEED = int(os.environ.get("GPO_LOCAL_FUZZ_SEED", "0"))
CASE_SECONDS = 30  # a case running longer than this counts as a failure (a size that should be refused)
MEMORY_HEADROOM = 3 << 30  # in-process: address space allowed above what the test process holds already
BOUNDS = "bounds: options branch"

# The rest of each command line: small enough that a case that is accepted finishes in a second.
BASE = {
    "optimize": [
        "sentiment",
        "--steps",
        "1",
        "--candidates",
        "2",
        "--dev-limit",
        "2",
        "--test-limit",
        "2",
        "--no-cache",
        "--quiet",
    ],
    "eval": ["sentiment", "--prompt", "Answer.", "--limit", "2", "--no-cache", "--quiet"],
}
# Options the base line sets itself: a fuzzed value replaces the base one.
BASE_VALUES = {"--steps", "--candidates", "--dev-limit", "--test-limit", "--limit", "--prompt"}

# Known gaps in the option table, left to the branch that declares the options' bounds: values
# that are accepted today and then crash, run without end or write NaN into config.json (found by
# this test with seed 0). Keyed by (command, option name, value kind).
NOT_BOUNDED_YET: set[tuple[str, str, str]] = set()  # every option value found so far is bounded


def _kinds(param: click.Option, rng: random.Random, tmp: Path) -> list[tuple[str, list[str]]]:
    """(kind, argv) cases for one option, from its click type."""
    flag = param.opts[0]
    if param.is_flag:
        cases = [("given", [flag])]
        if param.secondary_opts:
            cases.append(("negated", [param.secondary_opts[0]]))
        return cases
    kind = param.type
    huge = str(rng.randrange(10**19, 10**25))
    if isinstance(kind, (click.types.IntParamType, click.types.FloatParamType)):
        values = [
            ("zero", "0"),
            ("negative", str(-rng.randrange(1, 10**6))),
            ("huge", huge),
            ("NaN", "nan"),
            ("inf", rng.choice(["inf", "-inf", "Infinity"])),
            ("fraction", f"{rng.random() + 0.5:.3f}"),
            ("empty", ""),
            ("wrong type", rng.choice(["abc", "1,5", "0x10", "ten"])),
        ]
    elif isinstance(kind, click.Choice):
        choice = str(rng.choice(list(kind.choices)))
        values = [
            ("empty", ""),
            ("not a choice", "no-such-" + choice),
            ("other case", choice.swapcase()),
            ("wrong type", str(rng.randrange(-5, 5))),
        ]
    elif isinstance(kind, click.Path):
        values = [
            ("empty", ""),
            ("a directory", str(tmp / "a-directory")),
            ("a missing file", str(tmp / "missing")),
            ("a binary file", str(tmp / "binary.bin")),
        ]
    else:
        values = [
            ("empty", ""),
            ("white space", " \t "),
            ("huge", huge),
            ("NaN", "nan"),
            ("a directory", str(tmp / "a-directory")),
            ("a missing file", str(tmp / "missing.gguf")),
        ]
    return [(label, [flag, value]) for label, value in values]


def _options(command: str) -> list[click.Option]:
    # click-option-group adds one title pseudo-option per section, with no flag of its own
    return [
        p
        for p in main.commands[command].params
        if isinstance(p, click.Option) and p.opts and p.name != "help"
    ]


def cases() -> list:
    """Every (command, option, kind) case, in a seeded order; the values are drawn again from
    the same seed inside each test (`_argv`)."""
    out = []
    for command in ("optimize", "eval"):
        for param in _options(command):
            for label, _ in _kinds(param, random.Random(f"{SEED}-{command}-{param.name}"), Path("/tmp")):
                marks = (
                    [pytest.mark.xfail(reason=BOUNDS, strict=False)]
                    if (command, param.name, label) in NOT_BOUNDED_YET
                    else []
                )
                out.append(
                    pytest.param(
                        command,
                        param.name,
                        label,
                        marks=marks,
                        id=f"{command}-{param.name}-{label.replace(' ', '-')}",
                    )
                )
    return out


def _argv(command: str, name: str, label: str, tmp: Path) -> list[str]:
    param = next(p for p in _options(command) if p.name == name)
    fuzzed = dict(_kinds(param, random.Random(f"{SEED}-{command}-{name}"), tmp))[label]
    base = list(BASE[command])
    if fuzzed[0] in BASE_VALUES:
        at = base.index(fuzzed[0])
        del base[at : at + 2]
    if command == "optimize" and name != "run_dir":
        base += ["--run-dir", str(tmp / "run")]
    return [command, *base, *fuzzed]


class CaseTimeout(BaseException):
    """A case ran past CASE_SECONDS (BaseException: no `except Exception` of the code under test stops it)."""


@pytest.fixture(scope="module")
def tally(request):
    counts = {"cases": 0, "ok": 0, "refused": 0}
    yield counts
    line = (
        f"fuzz (seed {SEED}): {counts['cases']} option values tried on optimize and eval: "
        f"{counts['ok']} ran, {counts['refused']} refused in one line"
    )
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled():  # shown even without -s
        print(f"\n{line}")


@pytest.fixture
def fakes(monkeypatch, tmp_path):
    """The scripted fakes where the CLI loads models; the paths given are still resolved and
    checked as GGUF files, as the real loaders do, so path values are fuzzed for real."""
    import gpo_local.backends.cluster as cluster
    import gpo_local.backends.llama_cpp as llama_cpp
    from gpo_local.backends.catalog import resolve_model

    fake_cli.install_fakes(monkeypatch)
    fake_load = llama_cpp.load_models

    def load_models(task_spec, optimizer_spec, **options):
        for spec in (task_spec, optimizer_spec):
            llama_cpp.check_gguf(resolve_model(spec))
        return fake_load(task_spec, optimizer_spec, **options)

    def no_cluster(address):
        raise ConfigError(f"--ray {address}: cannot connect to a Ray cluster (none in this test)")

    monkeypatch.setattr(llama_cpp, "load_models", load_models)
    monkeypatch.setattr(cluster, "connect", no_cluster)
    (tmp_path / "a-directory").mkdir()
    (tmp_path / "binary.bin").write_bytes(bytes(range(256)) * 4)
    monkeypatch.chdir(tmp_path)  # report.html and other relative paths land here


def _on_timeout(signum, frame):
    raise CaseTimeout()


def _strict_json(path: Path) -> None:
    """config.json / result.json must be JSON as the standard defines it: no NaN or Infinity."""

    def refuse(constant):
        raise ValueError(f"{path} holds {constant}, which is not JSON")

    if path.exists():
        json.loads(path.read_text(), parse_constant=refuse)


@pytest.mark.parametrize("command,name,label", cases())
def test_an_option_value_gives_success_or_one_error_line(command, name, label, fakes, tmp_path, tally):
    argv = _argv(command, name, label, tmp_path)
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    in_use = int(Path("/proc/self/statm").read_text().split()[0]) * resource.getpagesize()
    ceiling = in_use + MEMORY_HEADROOM
    resource.setrlimit(
        resource.RLIMIT_AS, (ceiling if hard == resource.RLIM_INFINITY else min(ceiling, hard), hard)
    )
    previous = signal.signal(signal.SIGALRM, _on_timeout)
    signal.alarm(CASE_SECONDS)
    try:
        result = CliRunner().invoke(main, argv)
    except CaseTimeout:
        pytest.fail(f"{' '.join(argv)}: still running after {CASE_SECONDS} s")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    tally["cases"] += 1
    shown = f"gpo-local {' '.join(map(repr, argv))}:\n{result.output}"
    if isinstance(result.exception, CaseTimeout):
        pytest.fail(f"{shown}\nstill running after {CASE_SECONDS} s")
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"{shown}\nuncaught {type(result.exception).__name__}: {result.exception}"
    )
    assert "Traceback" not in result.output, shown
    if result.exit_code == 0:
        tally["ok"] += 1
        for name_ in ("config.json", "result.json"):
            _strict_json(tmp_path / "run" / name_)
        return
    errors = [line for line in result.output.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, shown
    assert len(errors[0]) < 1000, shown  # one readable line, not a dump
    tally["refused"] += 1


# --- a short sample against the real bundled model ---------------------------------------------

REAL_CASES = [  # (id, extra eval arguments): values that reach llama.cpp when nothing refuses them first
    ("threads-zero", ["--threads", "0"]),
    ("parallel-huge", ["--parallel", "100000"]),
    ("threads-huge", ["--threads", "100000"]),
    ("n-ctx-huge", ["--n-ctx", "1000000000"]),
    ("n-ctx-nan", ["--n-ctx", "nan"]),
    ("task-model-directory", ["--task-model", "."]),
]
REAL_MEMORY = 4 << 30  # the ceiling of each subprocess's address space
REAL_SECONDS = 180


def _ceiling():
    resource.setrlimit(resource.RLIMIT_AS, (REAL_MEMORY, REAL_MEMORY))


@pytest.mark.integration
@pytest.mark.parametrize(
    "case,extra",
    [
        pytest.param(
            case,
            extra,
            marks=[pytest.mark.xfail(reason=BOUNDS, strict=False)]
            if case in ("parallel-huge", "threads-huge", "n-ctx-huge")
            else [],
            id=case,
        )
        for case, extra in REAL_CASES
    ],
)
def test_a_sample_against_the_bundled_model_never_ends_by_a_signal(case, extra, tmp_path):
    bundled_model_path()
    command = [
        sys.executable,
        "-m",
        "gpo_local",
        "eval",
        "sentiment",
        "--prompt",
        "Answer.",
        "--limit",
        "1",
        "--no-cache",
        "--quiet",
        *extra,
    ]
    env = {**os.environ, "GPO_LOCAL_HOME": str(tmp_path / "home")}
    try:
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=REAL_SECONDS,
            preexec_fn=_ceiling,
            env=env,
            cwd=tmp_path,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{' '.join(command)}: still running after {REAL_SECONDS} s")
    shown = f"{' '.join(command)}: exit {done.returncode}\n{done.stderr[-2000:]}"
    assert done.returncode >= 0, f"ended by signal {-done.returncode}: {shown}"
    assert "Traceback" not in done.stderr, shown
    if done.returncode != 0:
        errors = [line for line in done.stderr.splitlines() if line.startswith("Error: ")]
        assert len(errors) == 1, shown
