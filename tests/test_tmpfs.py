"""A really full disk: a 2 MB tmpfs (needs root and a kernel that lets us mount; skipped with
the reason otherwise). The run directory and the memo cache live on it, the disk is filled,
and the command must say one line, keep everything recorded, and resume once space is freed."""

import json
import os
import re
import sqlite3
import subprocess
from pathlib import Path

import fake_cli
import pytest

from gpo_local.backends.memo import Memo, MemoizedLLM
from gpo_local.testing import ScriptedLLM


@pytest.fixture
def tmpfs(tmp_path):
    mount_point = tmp_path / "tmpfs"
    mount_point.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount_point)], capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=True)


def fill(folder, leave=0):
    """Fill the file system of `folder`, leaving about `leave` bytes free; returns the filler."""
    filler = folder / "filler"
    with filler.open("wb") as handle:
        try:
            while True:
                stat = os.statvfs(folder)
                free = stat.f_bavail * stat.f_frsize
                if free <= leave:
                    break
                handle.write(b"\0" * min(65536, max(4096, free - leave)))
                handle.flush()
        except OSError:
            pass
    return filler


def test_a_full_disk_keeps_a_healthy_memo_cache(tmpfs):
    path = tmpfs / "cache.sqlite"
    llm = ScriptedLLM(lambda messages, temperature, seed: messages[-1]["content"] * 50, fingerprint="m")
    memo = Memo(path)
    MemoizedLLM(llm, memo).generate([f"q{i}" for i in range(20)], max_tokens=4)
    memo.close()
    fill(tmpfs)
    memo = Memo(path)
    cached = MemoizedLLM(llm, memo)
    replies = cached.generate([f"new{i}" * 200 for i in range(200)] + ["q1"], max_tokens=4)
    assert replies[-1] == "q1" * 50 and cached.hits == 1
    memo.close()
    assert not (tmpfs / "cache.sqlite.corrupt").exists()
    (tmpfs / "filler").unlink()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert db.execute("SELECT count(*) FROM replies").fetchone()[0] >= 20
    db.close()


@pytest.mark.parametrize("leave_kib", [0, 6, 12, 20])
@pytest.mark.parametrize("default_run_dir", [False, True])
def test_a_full_run_directory_names_the_file_and_the_command_that_goes_on(
    tmpfs, tmp_path, monkeypatch, leave_kib, default_run_dir
):
    """Filled to leave 0-20 KiB, the run fails at its lock, its config, its trajectory or its
    progress events; the one line names that file and the run directory, and the command it
    suggests (a plain rerun before config.json exists, else --resume --run-dir DIR) finishes the
    run with the uninterrupted run's result."""
    from click.testing import CliRunner

    from gpo_local.app.cli import main

    reference = tmp_path / "reference"
    assert fake_cli.optimize(monkeypatch, reference, "--quiet").exit_code == 0
    monkeypatch.setenv("GPO_LOCAL_HOME", str(tmpfs / "home"))
    command = [
        "optimize",
        "sentiment",
        "--steps",
        "3",
        "--candidates",
        "3",
        "--dev-limit",
        "8",
        "--test-limit",
        "12",
        "--no-cache",
        "--quiet",
    ]
    command += [] if default_run_dir else ["--run-dir", str(tmpfs / "run")]
    filler = fill(tmpfs, leave=leave_kib * 1024)
    failed = CliRunner().invoke(main, command)
    assert failed.exit_code == 1, failed.output
    lines = [line for line in failed.output.splitlines() if line.startswith("Error: ")]
    assert len(lines) == 1 and "Traceback" not in failed.output, failed.output
    runs = [tmpfs / "run"] if not default_run_dir else list((tmpfs / "home" / "runs").iterdir())
    assert len(runs) == 1
    run_dir = runs[0]
    written = re.match(r"Error: (\S+): no space left on device: free some space", lines[0])
    assert written and run_dir in Path(written.group(1)).parents, lines[0]
    filler.unlink()
    if (run_dir / "config.json").exists():
        suggested = f"then continue the run with: gpo-local optimize sentiment --resume --run-dir {run_dir}"
        assert lines[0].endswith(suggested), lines[0]
        again = suggested.split("gpo-local ")[1].split() + ["--quiet"]
    else:
        assert lines[0].endswith(
            f"nothing was recorded in the run directory {run_dir} yet, so run the same command again"
        ), lines[0]
        again = command
    resumed = CliRunner().invoke(main, again)
    assert resumed.exit_code == 0, resumed.output
    final = Path(resumed.output.strip().splitlines()[-1].removeprefix("run directory: "))
    ours, theirs = (json.loads((d / "result.json").read_text()) for d in (final, reference))
    for key in ("initial", "final", "initial_test", "final_test", "test_outcomes"):
        assert ours[key] == theirs[key], key
