"""`optimize --resume` with arguments: TASK may be left out (the run knows its task); a task, seed
or option that differs from the saved run is refused with both values; a larger --steps and the
budget limits are applied and the run says so. Fake models (no model file is loaded)."""

import json

import pytest
from click.testing import CliRunner
from conftest import difficulty_task
from fake_models import install

from gpo_local.app.cli import main


@pytest.fixture
def task_dir(tmp_path):
    """The difficulty task in the GPO layout (one-round exact match)."""
    directory = tmp_path / "difficulty"
    directory.mkdir()
    for split, examples in difficulty_task().splits.items():
        (directory / f"{split}.jsonl").write_text(
            "".join(json.dumps({"input": e.input, "target": e.target}) + "\n" for e in examples)
        )
    return directory


def invoke(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


def records(run_dir):
    return [json.loads(line) for line in (run_dir / "trajectory.jsonl").read_text().splitlines()]


@pytest.fixture
def stopped_run(monkeypatch, tmp_path, task_dir):
    """A run of 4 steps stopped by its limit after 2."""
    install(monkeypatch)
    run_dir = tmp_path / "run"
    out = invoke(
        "optimize",
        task_dir,
        "--run-dir",
        run_dir,
        "--quiet",
        "--steps",
        "4",
        "--candidates",
        "3",
        "--max-optimizer-calls",
        "7",
        "--no-reply-quota",  # calls follow the plan exactly (tests/test_quota.py covers the quota)
    )
    assert out.exit_code == 0 and "stopped early" in out.output
    return run_dir


def test_task_is_optional_with_resume(stopped_run):
    out = invoke("optimize", "--resume", "--run-dir", stopped_run, "--quiet", "--max-optimizer-calls", "100")
    assert out.exit_code == 0, out.output
    assert json.loads((stopped_run / "result.json").read_text())["stopped"] == "completed"
    assert "resuming with max_optimizer_calls 7 -> 100" in out.output


def test_the_same_task_is_accepted_and_a_task_is_still_needed_without_resume(stopped_run, task_dir):
    out = invoke(
        "optimize", task_dir, "--resume", "--run-dir", stopped_run, "--quiet", "--max-optimizer-calls", "100"
    )
    assert out.exit_code == 0, out.output
    out = invoke("optimize", "--run-dir", stopped_run)
    assert out.exit_code == 2 and "Missing argument 'TASK'" in out.output


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["sentiment"],
            "Error: task 'sentiment' differs from the run's task {task!r}: a resumed run keeps its task "
            "(leave TASK out, or start a new run)",
        ),
        (
            ["--seed", "3"],
            "Error: seed=3 differs from the run's seed=0: a resumed run keeps its options (only a larger "
            "steps and the budget limits can change; start a new run to change it)",
        ),
        (["--candidates", "5"], "Error: candidates=5 differs from the run's candidates=3"),
        (["--steps", "3"], "Error: steps=3 differs from the run's steps=4"),
        (["--gradient", "feedback"], "Error: gradient='feedback' differs from the run's gradient='none'"),
        (
            ["--task-model", "other-model"],
            "Error: task_model='other-model' differs from the run's task_model='smollm2-135m-instruct'",
        ),
        (["--n-ctx", "2048"], "Error: n_ctx=2048 differs from the run's n_ctx=4096"),
        (["--metric", "number"], "Error: metric='number' differs from the run's metric=None"),
    ],
)
def test_a_differing_task_seed_or_option_is_refused_with_both_values(stopped_run, task_dir, args, message):
    before = (stopped_run / "trajectory.jsonl").read_text()
    out = invoke("optimize", "--resume", "--run-dir", stopped_run, *args)
    lines = [line for line in out.output.splitlines() if line.startswith("Error: ")]
    assert out.exit_code == 1 and len(lines) == 1, out.output
    assert lines[0].startswith(message.format(task=str(task_dir)))
    assert (stopped_run / "trajectory.jsonl").read_text() == before  # nothing touched


def test_the_saved_values_given_again_are_accepted(stopped_run):
    out = invoke(
        "optimize",
        "--resume",
        "--run-dir",
        stopped_run,
        "--quiet",
        "--seed",
        "0",
        "--candidates",
        "3",
        "--steps",
        "4",
        "--selection",
        "relavance",
        "--max-optimizer-calls",
        "100",
    )
    assert out.exit_code == 0, out.output


def test_a_larger_steps_is_applied_and_said(stopped_run, monkeypatch, tmp_path, task_dir):
    out = invoke(
        "optimize", "--resume", "--run-dir", stopped_run, "--steps", "5", "--max-optimizer-calls", "100"
    )
    assert out.exit_code == 0, out.output
    assert "resuming with steps 4 -> 5 (the run's config is updated)" in out.output
    assert json.loads((stopped_run / "config.json").read_text())["config"]["steps"] == 5
    assert [r["kind"] for r in records(stopped_run)].count("step") == 5
    # A complete run goes on with a larger steps, and is complete again without one.
    out = invoke("optimize", "--resume", "--run-dir", stopped_run, "--quiet", "--steps", "6")
    assert out.exit_code == 0 and [r["kind"] for r in records(stopped_run)].count("step") == 6, out.output
    out = invoke("optimize", "--resume", "--run-dir", stopped_run)
    assert out.exit_code == 0 and "nothing to resume" in out.output
