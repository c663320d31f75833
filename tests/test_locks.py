"""The run lock (gpo_local/locks.py): one process per run directory, the holder named, a lock
left by a dead process taken over, and the lock taken before any model loads."""

import os
import signal
import subprocess
import sys
import time

import pytest

from gpo_local.errors import RunLockedError
from gpo_local.runs import locks

HOLD = """
import sys, time
from pathlib import Path
from gpo_local.runs.locks import lock_run
lock_run(Path(sys.argv[1]))
print("locked", flush=True)
time.sleep(120)
"""


@pytest.fixture
def holder(tmp_path):
    """A separate process holding the lock of tmp_path/run until the test ends (or kills it)."""
    run_dir = tmp_path / "run"
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(run_dir)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert process.stdout.readline().strip() == "locked"
    yield run_dir, process
    if process.poll() is None:
        process.kill()
    process.wait()


def test_a_second_process_is_refused_with_the_holders_pid(holder):
    run_dir, process = holder
    with pytest.raises(RunLockedError) as refused:
        locks.lock_run(run_dir)
    assert str(refused.value) == (
        f"{run_dir} is in use by another gpo-local process (pid {process.pid}): wait for "
        "it to finish or stop it, then rerun (with --resume to continue its run)"
    )


def test_a_lock_left_by_a_killed_process_is_taken_over(holder):
    run_dir, process = holder
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert (run_dir / "run.lock").read_text().strip() == str(process.pid)  # the file is still there
    try:
        assert locks.lock_run(run_dir) == run_dir / "run.lock"
        assert (run_dir / "run.lock").read_text().strip() == str(os.getpid())
    finally:
        locks.release(run_dir)


def test_the_lock_is_released_for_the_next_run_and_retaking_it_is_harmless(tmp_path):
    run_dir = tmp_path / "new" / "run"
    locks.lock_run(run_dir)
    locks.lock_run(run_dir)  # the same process again (e.g. a resumed run in one process)
    locks.release(run_dir)
    locks.lock_run(run_dir)
    locks.release(run_dir)
    assert run_dir.is_dir()


def test_optimize_on_a_locked_run_is_one_line_before_any_model_loads(holder, monkeypatch):
    from click.testing import CliRunner

    import gpo_local.backends.llama_cpp as llama_cpp
    from gpo_local.app.cli import main

    run_dir, process = holder
    monkeypatch.setattr(llama_cpp, "load_models", lambda *a, **k: pytest.fail("a model was loaded"))
    monkeypatch.setattr("gpo_local.backends.embeddings.resolve_embedder", lambda spec: None)
    started = time.monotonic()
    result = CliRunner().invoke(
        main,
        [
            "optimize",
            "sentiment",
            "--steps",
            "1",
            "--embedder",
            "all-minilm-l6-v2",
            "--run-dir",
            str(run_dir),
        ],
    )
    assert result.exit_code == 1, result.output
    assert result.output.strip().splitlines()[-1] == (
        f"Error: {run_dir} is in use by another gpo-local process (pid {process.pid}): wait for it to "
        f"finish or "
        "stop it, then rerun (with --resume to continue its run)"
    )
    assert time.monotonic() - started < 60
