"""Crash safety (integration): real `gpo-local optimize` subprocesses with the bundled model are
killed with SIGKILL at named points (gpo_local/faults.py, GPO_LOCAL_FAULT=<point>:<n>), then
resumed. Every resumed run must complete, leave no damaged file behind, and end with exactly the
trajectory and result of an uninterrupted run with the same seed.

Cost control: the uninterrupted reference run fills a memo cache; most scenarios start from a
copy of it (their generations are free, so a scenario costs two process start-ups), the memo
scenarios from a copy with half of its rows deleted (so that generations, and memo writes,
happen), and three scenarios from an empty cache (kills during real scoring: the first chunk, a
two-round chain, a raced step).
"""

import json
import os
import shutil
import sqlite3
import subprocess
import sys

import pytest
from conftest import bundled_model_path, trajectory_records

pytestmark = pytest.mark.integration

bundled_model_path()  # skips the module where the bundled model is not installed

COMMAND = [
    sys.executable,
    "-m",
    "gpo_local.app.cli",
    "optimize",
    "sentiment",
    "--steps",
    "2",
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
    "--quiet",
]

# (fault, cache): "cold" = empty memo cache, "half" = half of the reference cache, "warm" = all of it.
SCENARIOS = [
    ("scoring:1", "cold"),  # during the initial prompt's scoring, generating for real
    ("scoring:2", "warm"),  # during the first step's candidate scoring
    ("jsonl-append:2", "warm"),  # before the first candidate record is written
    ("jsonl-half-line:1", "warm"),  # half of the init record written: a torn first line
    ("jsonl-half-line:4", "warm"),  # a torn record inside step 0
    ("jsonl-fsynced:3", "warm"),  # right after a candidate record reached the disk
    ("index-tmp:1", "warm"),  # FAISS index written to its temporary file only
    ("index-torn:2", "warm"),  # half a FAISS file in place: a torn index
    ("index-meta:1", "warm"),  # FAISS file replaced, its metadata not yet written
    ("memo-write:1", "half"),  # inside a memo transaction, before its commit
    ("memo-committed:2", "half"),  # right after a memo commit
    ("memo-torn:1", "half"),  # the memo SQLite file cut in half: a torn database
    # issue 14
    ("run-lock:1", "warm"),  # the run lock taken, nothing else written: rerun (there is no config.json)
    ("config-json-tmp:1", "warm"),  # config.json's temporary file only: rerun
    ("config-json-replaced:1", "warm"),  # config.json in place, no trajectory yet
    ("trajectory-json-tmp:2", "warm"),  # the index metadata's temporary file only
    # A first reply ended, its second turn not yet admitted: the third chain of the initial
    # scoring. From an empty cache: chains only run where first turns are missing, and the "half"
    # cache keeps every first turn (its rows alternate first turn, second turn).
    ("two-round-chain:3", "cold"),
    ("events-append:4", "warm"),  # before a progress event was appended
    ("result-json-tmp:1", "warm"),  # result.json's temporary file only
    ("result-json-replaced:1", "warm"),  # result.json in place, the command killed before printing it
]


def optimize(run_dir, home, *, fault=None, resume=False, extra=()):
    env = {k: v for k, v in os.environ.items() if k != "GPO_LOCAL_FAULT"}
    env["GPO_LOCAL_HOME"] = str(home)
    if fault:
        env["GPO_LOCAL_FAULT"] = fault
    command = COMMAND + list(extra) + ["--run-dir", str(run_dir)] + (["--resume"] if resume else [])
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)


def records(run_dir):
    """The trajectory records, without the wall-clock and CPU seconds (see conftest)."""
    assert (run_dir / "trajectory.jsonl").read_text().endswith("\n"), "a torn last line was left behind"
    return trajectory_records(run_dir)


def reference_run(tmp_path_factory, name, extra=()):
    base = tmp_path_factory.mktemp(name)
    done = optimize(base / "run", base / "home", extra=extra)
    assert done.returncode == 0, done.stderr
    return base


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    return reference_run(tmp_path_factory, "reference")


# Raced: 5 candidates on 8 dev questions (the bundled optimizer gives step 1 four new candidates,
# step 0 one, which has nothing to race): step 1 races in rounds of 2, 4 and 8 questions.
# Constrained replies at temperature 1.0 with the instruction after the question: the settings
# under which the bundled optimizer gives step 1 those candidates (free-form, it writes few
# tagged replies, and a step without two candidates has nothing to race).
RACED = (
    "--racing",
    "--candidates",
    "5",
    "--dev-limit",
    "8",
    "--grammar",
    "--optimizer-temperature",
    "1.0",
    "--position",
    "Q_end",
    "--format-examples",
    "3",
)


@pytest.fixture(scope="module")
def raced_reference(tmp_path_factory):
    return reference_run(tmp_path_factory, "raced", RACED)


def check_intact(run_dir, home):
    import faiss

    chosen = [r for r in records(run_dir) if r["kind"] in ("init", "step")]
    meta = json.loads((run_dir / "indexes" / "trajectory.json").read_text())
    index = faiss.read_index(str(run_dir / "indexes" / "trajectory.faiss"))
    assert index.ntotal == len(meta["rows"]) == len(chosen)
    json.loads((run_dir / "result.json").read_text())
    db = sqlite3.connect(home / "cache.sqlite")
    assert db.execute("PRAGMA quick_check").fetchone() == ("ok",)
    db.close()


@pytest.mark.parametrize("fault,cache", SCENARIOS, ids=[fault for fault, _ in SCENARIOS])
def test_killed_at_a_point_then_resumed_gives_the_uninterrupted_run(reference, tmp_path, fault, cache):
    killed_then_resumed(reference, tmp_path, fault, cache)


@pytest.mark.parametrize(
    "fault,cache",
    [
        ("race-round:1", "warm"),  # step 1's race: after its first round, before its second
        ("race-round:2", "cold"),  # after its second round, generating for real
    ],
)
def test_a_raced_step_killed_between_rounds_resumes_to_the_uninterrupted_raced_run(
    raced_reference, tmp_path, fault, cache
):
    killed_then_resumed(raced_reference, tmp_path, fault, cache, extra=RACED)


def killed_then_resumed(reference, tmp_path, fault, cache, extra=()):
    home = tmp_path / "home"
    home.mkdir()
    if cache != "cold":
        shutil.copy(reference / "home" / "cache.sqlite", home / "cache.sqlite")
    if cache == "half":
        db = sqlite3.connect(home / "cache.sqlite")
        with db:
            db.execute("DELETE FROM replies WHERE rowid % 2 = 0")
        db.close()
    run_dir = tmp_path / "run"

    killed = optimize(run_dir, home, fault=fault, extra=extra)
    assert killed.returncode == -9, f"not killed at {fault}: {killed.returncode} {killed.stderr[-500:]}"
    point = fault.split(":")[0]
    assert (run_dir / "result.json").exists() == (point == "result-json-replaced")
    if point == "jsonl-half-line":
        assert not (run_dir / "trajectory.jsonl").read_text().endswith("\n")  # really torn
    if point == "memo-torn":
        with pytest.raises(sqlite3.DatabaseError):
            sqlite3.connect(home / "cache.sqlite").execute("SELECT count(*) FROM replies").fetchall()

    # Killed before config.json existed: nothing to resume, the same command is simply rerun.
    resumed = optimize(run_dir, home, resume=(run_dir / "config.json").exists(), extra=extra)
    assert resumed.returncode == 0, resumed.stderr
    check_intact(run_dir, home)
    assert records(run_dir) == records(reference / "run")
    ours, theirs = (json.loads((d / "result.json").read_text()) for d in (run_dir, reference / "run"))
    for key in ("initial", "final", "initial_test", "final_test", "test_outcomes"):
        assert ours[key] == theirs[key], key
    # The budget counters survive the kill: memo hits count, so the totals are the same.
    for key in ("optimizer_calls", "dev_scorings", "task_generations", "task_tokens", "optimizer_tokens"):
        assert ours[key] == theirs[key], key


def same_result(run_dir, reference_dir):
    ours, theirs = (json.loads((d / "result.json").read_text()) for d in (run_dir, reference_dir))
    for key in ("initial", "final", "initial_test", "final_test", "test_outcomes", "optimizer_calls"):
        assert ours[key] == theirs[key], key


def test_killed_again_while_resuming_then_resumed(reference, tmp_path):
    """resume-truncated: a resumed run cut its log after the last complete step, then died."""
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(reference / "home" / "cache.sqlite", home / "cache.sqlite")
    run_dir = tmp_path / "run"
    assert optimize(run_dir, home, fault="jsonl-half-line:4").returncode == -9
    again = optimize(run_dir, home, fault="resume-truncated:1", resume=True)
    assert again.returncode == -9, again.stderr[-500:]
    assert (run_dir / "trajectory.jsonl").read_text().endswith("\n")  # the torn line was cut before the kill
    assert optimize(run_dir, home, resume=True).returncode == 0
    check_intact(run_dir, home)
    assert records(run_dir) == records(reference / "run")
    same_result(run_dir, reference / "run")


def _without_times(text):
    import re

    return re.sub(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}[+-]\d{4})?", "<time>", text)


def test_killed_while_writing_a_report_then_rerun(reference, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "GPO_LOCAL_FAULT"}
    command = [sys.executable, "-m", "gpo_local.app.cli", "report", str(reference / "run"), "-o"]
    whole = subprocess.run(command + [str(tmp_path / "whole.html")], env=env, capture_output=True, text=True)
    assert whole.returncode == 0, whole.stderr
    output = tmp_path / "report.html"
    killed = subprocess.run(
        command + [str(output)],
        env={**env, "GPO_LOCAL_FAULT": "report-tmp:1"},
        capture_output=True,
        text=True,
    )
    assert killed.returncode == -9 and not output.exists()
    rerun = subprocess.run(command + [str(output)], env=env, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert _without_times(output.read_text()) == _without_times((tmp_path / "whole.html").read_text())


BENCH = """
[bench]
description = "one cell"
tasks = ["sentiment"]
methods = ["gpo"]
seeds = [0]
"""
WRITE_RESULTS = (
    "import sys; from pathlib import Path; from gpo_local.quality import load_config, write_results; "
    "write_results(load_config(Path(sys.argv[1])), Path(sys.argv[2]))"
)


def test_killed_while_writing_bench_results_then_rerun(reference, tmp_path):
    from gpo_local.quality import load_config

    config_path = tmp_path / "bench.toml"
    config_path.write_text(BENCH)
    env = {k: v for k, v in os.environ.items() if k != "GPO_LOCAL_FAULT"}
    outputs = {}
    for name, fault in (("whole", None), ("killed", "bench-results-tmp:1")):
        out = tmp_path / name
        cell = load_config(config_path).cells(out)[0]
        shutil.copytree(reference / "run", cell.run_dir)
        command = [sys.executable, "-c", WRITE_RESULTS, str(config_path), str(out)]
        if fault:
            killed = subprocess.run(
                command, env={**env, "GPO_LOCAL_FAULT": fault}, capture_output=True, text=True
            )
            assert killed.returncode == -9 and not (out / "results.json").exists()
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        results = json.loads((out / "results.json").read_text())
        outputs[name] = json.dumps(
            {k: v for k, v in results.items() if k not in ("generated", "out")}
        ).replace(str(out), "<out>")
    assert outputs["killed"] == outputs["whole"]
