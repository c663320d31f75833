"""A really full disk: a 2 MB tmpfs (needs root and a kernel that lets us mount; skipped with
the reason otherwise). The run directory and the memo cache live on it, the disk is filled,
and the command must say one line, keep everything recorded, and resume once space is freed."""

import json
import os
import sqlite3
import subprocess

import pytest

import fake_cli
from gpo_local.backends.memo import Memo, MemoizedLLM
from gpo_local.testing import ScriptedLLM


@pytest.fixture
def tmpfs(tmp_path):
    mount_point = tmp_path / "tmpfs"
    mount_point.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount_point)], capture_output=True,
                          text=True)
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


def test_a_full_run_directory_is_one_line_and_resumes_to_the_uninterrupted_result(tmpfs, tmp_path, monkeypatch):
    reference = tmp_path / "reference"
    assert fake_cli.optimize(monkeypatch, reference, "--quiet").exit_code == 0
    run_dir = tmpfs / "run"
    filler = fill(tmpfs, leave=12 * 1024)
    failed = fake_cli.optimize(monkeypatch, run_dir, "--quiet")
    assert failed.exit_code == 1, failed.output
    lines = [line for line in failed.output.splitlines() if line.startswith("Error: ")]
    assert len(lines) == 1 and "Traceback" not in failed.output
    assert "no space left on device: free some space" in lines[0] and str(tmpfs) in lines[0]
    filler.unlink()
    resumed = fake_cli.optimize(monkeypatch, run_dir, "--quiet", "--resume") if (run_dir / "config.json").exists() \
        else fake_cli.optimize(monkeypatch, run_dir, "--quiet")
    assert resumed.exit_code == 0, resumed.output
    ours, theirs = (json.loads((d / "result.json").read_text()) for d in (run_dir, reference))
    for key in ("initial", "final", "initial_test", "final_test", "test_outcomes"):
        assert ours[key] == theirs[key], key
