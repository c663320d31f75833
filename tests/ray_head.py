"""A real Ray head for the tests: local, on 127.0.0.1 only, 2 CPUs, no dashboard; stopped at
the end of the module even when a test fails, and every test under it bounded in time."""

from __future__ import annotations

import json
import shutil
import signal
import tempfile

import pytest

TEST_SECONDS = 300  # a hung actor or task fails its test instead of hanging the suite


@pytest.fixture(scope="module")
def ray_head():
    ray = pytest.importorskip("ray", reason='ray is not installed (pip install "gpo-local[ray]")')
    # A short private temp dir: Ray's socket paths must stay under 107 characters, and other
    # users of /tmp/ray are left alone.
    temp = tempfile.mkdtemp(prefix="gpo-ray-", dir="/tmp")
    try:
        _start(ray, temp)
        yield ray
    finally:
        ray.shutdown()
        shutil.rmtree(temp, ignore_errors=True)


def _start(ray, temp: str) -> None:
    """ray.init, tried twice: on a machine loaded by other work, Ray's agents can miss the raylet's
    15-second start-up wait. A head that does not start then skips the test, saying why."""
    for attempt in (1, 2):
        try:
            ray.init(
                address="local",
                num_cpus=2,
                include_dashboard=False,
                _node_ip_address="127.0.0.1",
                _temp_dir=temp,
                log_to_driver=False,
                logging_level="ERROR",
            )
            return
        except Exception as error:  # Ray raises a bare Exception when its node times out
            ray.shutdown()
            if attempt == 2:
                pytest.skip(f"could not start a local Ray head twice (machine overloaded?): {error}")


@pytest.fixture
def deadline():
    def expire(signum, frame):
        raise TimeoutError(f"Ray test still running after {TEST_SECONDS} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(TEST_SECONDS)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


TIMING = ("wall", "seconds", "generated")  # clock readings in results.json


def comparable(out):
    """A bench's results.json without its clock readings, run directories relative to `out`."""
    text = (out / "results.json").read_text().replace(str(out), "OUT")

    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if not any(t in k for t in TIMING)}
        return [strip(v) for v in value] if isinstance(value, list) else value

    return strip(json.loads(text))
