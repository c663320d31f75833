"""Damaged run files (runs/health.py): `show`, `report` and `optimize --resume` say the same
thing about each, with the one command that repairs it, and that command works. The runs are
real `gpo-local optimize` runs with the scripted fakes (tests/fake_cli.py)."""

import json
import re

import fake_cli
import pytest
from click.testing import CliRunner
from conftest import TIMINGS

from gpo_local.app.cli import main
from gpo_local.runs import locks
from gpo_local.runs.health import DAMAGED, TORN, WRONG_SHAPE, check_run


def comparable(run_dir):
    result = json.loads((run_dir / "result.json").read_text())
    for clock in TIMINGS:
        result.pop(clock)
    return result


def records(run_dir):
    out = [json.loads(line) for line in (run_dir / "trajectory.jsonl").read_text().splitlines()]
    for record in out:
        for clock in TIMINGS:
            record.get("usage", {}).pop(clock, None)
    return out


def error_line(result):
    lines = [line for line in result.output.splitlines() if line.startswith("Error: ")]
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    assert isinstance(result.exception, SystemExit), result.exception  # no uncaught exception
    return lines[0]


@pytest.fixture
def finished(tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    assert fake_cli.optimize(monkeypatch, run_dir, "--quiet").exit_code == 0
    return run_dir


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def damage_line(run_dir, number, garbage):
    path = run_dir / "trajectory.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    if number > len(lines):
        lines.append(garbage)
    else:
        lines[number - 1] = garbage
    path.write_bytes(b"".join(lines))


@pytest.mark.parametrize(
    "number,garbage,state",
    [
        (3, b"{garbage\n", DAMAGED),  # a complete line that is not JSON, mid-run
        (99, b"garbage\n", DAMAGED),  # a garbage last line after the finished run's records
        (2, b'{"kind": "candidate", "step": 0}\n', WRONG_SHAPE),  # JSON, but not a record the run writes
        (1, bytes(range(128, 256)) + b"\n", DAMAGED),  # the init record: binary garbage
    ],
)
def test_a_damaged_record_is_named_alike_everywhere_and_repair_finishes_the_run(
    finished, monkeypatch, number, garbage, state
):
    reference_records, reference = records(finished), comparable(finished)
    damage_line(finished, number, garbage)
    line = min(number, len(reference_records) + 1)
    problem = check_run(finished).damaged_record
    assert problem.state == state and problem.line == line
    expected = (
        re.escape(f"Error: {finished}/trajectory.jsonl:{line} ")
        + r"(is damaged|has the wrong shape) \(.+\): "
        + re.escape(
            f"set it and the records after it aside and replay the rest with: gpo-local repair {finished}"
        )
    )
    shown = error_line(cli("show", finished))
    assert re.fullmatch(expected, shown), shown
    assert error_line(cli("report", finished)) == shown
    fake_cli.install_fakes(monkeypatch)
    assert error_line(cli("optimize", "sentiment", "--resume", "--run-dir", finished)) == shown

    before = (finished / "trajectory.jsonl").read_bytes()
    repaired = cli("repair", finished, "--quiet")
    assert repaired.exit_code == 0, repaired.output
    assert f"trajectory.jsonl:{line}" in repaired.output and "replaying the rest" in repaired.output
    aside = (finished / "trajectory.jsonl.damaged").read_bytes()
    assert aside.startswith(garbage) and before.endswith(aside)  # nothing lost: set aside as it was
    assert (finished / "result.json.before-repair").exists()
    assert records(finished) == reference_records and comparable(finished) == reference
    assert cli("show", finished).exit_code == 0
    again = cli("repair", finished)
    assert again.exit_code == 0 and "nothing to repair" in again.output


def test_a_damaged_result_points_at_the_resume_that_recomputes_it(finished, monkeypatch):
    reference = comparable(finished)
    (finished / "result.json").write_text("[1, 2, 3]")
    shown = error_line(cli("show", finished))
    assert shown == (
        f"Error: {finished}/result.json has the wrong shape (a JSON list, not a run result): it is "
        f"derived from the trajectory: recompute it with: gpo-local optimize sentiment --resume "
        f"--run-dir {finished}"
    )
    assert error_line(cli("report", finished)) == shown
    fake_cli.install_fakes(monkeypatch)
    command = shown.split("recompute it with: gpo-local ")[1].split()
    resumed = cli(*command, "--quiet")
    assert resumed.exit_code == 0, resumed.output
    assert "recomputing it from the trajectory" in resumed.output
    assert comparable(finished) == reference


def test_a_torn_last_line_is_shown_as_unfinished_and_the_resume_command_works(tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    assert fake_cli.optimize(monkeypatch, run_dir, "--quiet", "--max-optimizer-calls", "3").exit_code == 0
    (run_dir / "result.json").unlink()
    with (run_dir / "trajectory.jsonl").open("ab") as handle:
        handle.write(b'{"kind": "candid')
    assert check_run(run_dir).problem("trajectory.jsonl").state == TORN
    shown = cli("show", run_dir)
    assert shown.exit_code == 0, shown.output
    last = " ".join(shown.output.split())  # rich wraps long lines
    command = f"gpo-local optimize sentiment --resume --run-dir {run_dir}"
    assert f"the run is unfinished; continue it with: {command}" in last
    resumed = cli(*command.split()[1:], "--quiet")
    assert resumed.exit_code == 0, resumed.output
    assert (run_dir / "trajectory.jsonl").read_bytes().endswith(b"\n")


def test_show_of_a_running_run_names_its_pid_and_suggests_no_resume(tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    assert fake_cli.optimize(monkeypatch, run_dir, "--quiet", "--max-optimizer-calls", "3").exit_code == 0
    (run_dir / "result.json").unlink()
    locks.lock_run(run_dir)
    try:
        shown = cli("show", run_dir)
        repaired = cli("repair", run_dir)
    finally:
        locks.release(run_dir)
    assert shown.exit_code == 0, shown.output
    text = " ".join(shown.output.split())
    assert f"the run is in progress (pid {__import__('os').getpid()} holds its lock)" in text
    assert "--resume" not in text and "resume continues" not in text
    assert repaired.exit_code == 1 and "is in use by another gpo-local process" in repaired.output


def test_a_config_that_cannot_be_derived_is_said_so(finished):
    (finished / "config.json").write_text('{"task": "sentiment"}')
    line = error_line(cli("repair", finished))
    assert line.startswith(f"Error: {finished}/config.json has the wrong shape (no 'task_source'")
    assert line.endswith(
        "it cannot be derived from the other files: restore it, or start the run again in another --run-dir"
    )


def _set_in_record(run_dir, kind, key, value):
    path = run_dir / "trajectory.jsonl"
    lines = path.read_text().splitlines()
    number = next(i for i, line in enumerate(lines) if json.loads(line)["kind"] == kind)
    record = json.loads(lines[number])
    record[key] = value
    lines[number] = json.dumps(record)
    path.write_text("\n".join(lines) + "\n")
    return number + 1


@pytest.mark.parametrize(
    "file,kind,key,value",
    [
        ("result.json", None, "initial_test", {"a": 1}),
        ("result.json", None, "test_outcomes", [1]),
        ("trajectory.jsonl", "candidate", "edit_distance", {"a": 1}),
        ("trajectory.jsonl", "step", "drops", True),
        ("trajectory.jsonl", "step", "replies", "x"),
    ],
)
def test_a_field_of_the_wrong_kind_is_a_wrong_shape_not_a_traceback(finished, file, kind, key, value):
    if file == "result.json":
        result = json.loads((finished / file).read_text())
        result[key] = value
        (finished / file).write_text(json.dumps(result))
        where = f"{finished}/result.json"
    else:
        where = f"{finished}/trajectory.jsonl:{_set_in_record(finished, kind, key, value)}"
    for command in ("show", "report"):
        line = error_line(cli(command, finished))
        assert line.startswith(f"Error: {where} has the wrong shape ({key} is "), line
