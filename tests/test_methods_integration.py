"""The baselines and the dry run on the real bundled model (short)."""

import json

import pytest
from click.testing import CliRunner

from gpo_local.app.cli import main

pytestmark = pytest.mark.integration


def test_opro_on_the_real_model_counts_its_budget(tmp_path):
    run_dir = tmp_path / "run"
    result = CliRunner().invoke(
        main,
        [
            "optimize",
            "sentiment",
            "--method",
            "opro",
            "--steps",
            "1",
            "--candidates",
            "2",
            "--dev-limit",
            "4",
            "--test-limit",
            "4",
            "--threads",
            "2",
            "--n-ctx",
            "2048",
            "--run-dir",
            str(run_dir),
            "--quiet",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((run_dir / "result.json").read_text())
    assert summary["method"] == "opro" and summary["stopped"] == "completed"
    # GPO's budget is 1 step x 2 candidates: one OPRO step of 2 proposals.
    assert summary["optimizer_calls"] == 2 and summary["budget"]["steps_planned"] == 1
    assert (
        4 * 2 <= summary["dev_scorings"] + 4 <= 4 * 3 + 4
    )  # p0 plus at most 2 new prompts, 4 dev examples each
    assert summary["task_tokens"] > 0 and summary["optimizer_tokens"] > 0
    records = [json.loads(line) for line in (run_dir / "trajectory.jsonl").read_text().splitlines()]
    step = [r for r in records if r["kind"] == "step"][0]
    assert "from the lowest score to the highest" in step["meta_prompt"]


def test_dry_run_times_real_generations_and_creates_nothing(tmp_path):
    result = CliRunner().invoke(
        main,
        [
            "optimize",
            "sentiment",
            "--steps",
            "2",
            "--candidates",
            "2",
            "--dev-limit",
            "4",
            "--optimizer-max-tokens",
            "32",
            "--threads",
            "2",
            "--n-ctx",
            "2048",
            "--run-dir",
            str(tmp_path / "run"),
            "--dry-run",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "optimizer calls:         4" in result.output and "estimated wall time:" in result.output
    assert not (tmp_path / "run").exists()
