"""Error bars of a run's scores (app/intervals.py): standard errors over questions and the paired
bootstrap interval of the test gain, in result.json, optimize's summary, `show` and the report."""

import json
import math

import fake_cli
import pytest
from click.testing import CliRunner

from gpo_local.app.cli import main
from gpo_local.app.intervals import (
    KEYS,
    binary_rule,
    binary_standard_error,
    dev_standard_error,
    gain_text,
    held_out_error_bars,
    result_error_bars,
    with_error,
)
from gpo_local.app.report import render_report
from gpo_local.stats import standard_error
from gpo_local.tasks.answers import rule_for_metric

FINAL = [1, 1, 0, 1, 1, 1, 0, 1, 1, 1]
INITIAL = [0, 0, 0, 1, 0, 1, 0, 0, 0, 0]


def outcomes(scores, prefix="t"):
    return [
        {"example_id": f"{prefix}{i}", "score": float(s), "prediction": "x"} for i, s in enumerate(scores)
    ]


def test_a_fabricated_run_gives_a_known_gain_interval_and_standard_errors():
    bars = held_out_error_bars({"initial": outcomes(INITIAL), "final": outcomes(FINAL)})
    assert bars["test_gain"] == pytest.approx(0.6)
    assert bars["test_gain_ci"] == pytest.approx([0.3, 0.9])  # seed 0, 10 000 resamples
    assert bars["test_gain_questions"] == 10
    # 0/1 outcomes with mean p over n questions: sqrt(p (1 - p) / (n - 1))
    assert bars["initial_test_se"] == pytest.approx(math.sqrt(0.2 * 0.8 / 9))
    assert bars["final_test_se"] == pytest.approx(math.sqrt(0.8 * 0.2 / 9))
    assert gain_text(bars) == "+60.0 points (95% CI +30.0 to +90.0, 10 questions)"
    # The same outcomes give the same interval (the bootstrap's seed is fixed).
    assert held_out_error_bars({"initial": outcomes(INITIAL), "final": outcomes(FINAL)}) == bars


def test_identical_outcomes_give_a_gain_of_zero_with_the_interval_zero_zero():
    bars = held_out_error_bars({"initial": outcomes(FINAL), "final": outcomes(FINAL)})
    assert bars["test_gain"] == 0.0 and bars["test_gain_ci"] == [0.0, 0.0]
    assert gain_text(bars) == "+0.0 points (95% CI +0.0 to +0.0, 10 questions)"


def test_questions_are_paired_by_example_id():
    shuffled = list(reversed(outcomes(FINAL)))
    assert held_out_error_bars({"initial": outcomes(INITIAL), "final": shuffled})[
        "test_gain_ci"
    ] == pytest.approx([0.3, 0.9])


def test_no_test_outcomes_give_no_error_bars():
    for test_outcomes in (None, {"initial": None, "final": None}):
        bars = held_out_error_bars(test_outcomes)
        assert set(bars) == {
            "initial_test_se",
            "final_test_se",
            "test_gain",
            "test_gain_ci",
            "test_gain_questions",
        }
        assert all(value is None for value in bars.values())
    assert gain_text({"test_gain": None}) is None
    assert with_error(None, None) == "n/a" and with_error(0.675, None) == "67.5"
    assert with_error(0.675, 0.0742) == "67.5 ± 7.4"


def test_dev_standard_errors_from_recorded_outcomes_else_from_the_score_of_a_binary_rule():
    recorded = {"d0": 1.0, "d1": 0.5, "d2": 0.0, "d3": 0.25}  # a fractional metric's outcomes
    assert dev_standard_error(recorded, 0.4375, 4, binary=False) == pytest.approx(
        standard_error(recorded.values())
    )
    # Without recorded outcomes: exact for 0/1 outcomes, unknown for a fractional metric.
    assert dev_standard_error(None, 0.75, 8, binary=True) == pytest.approx(standard_error([1] * 6 + [0] * 2))
    assert dev_standard_error(None, 0.75, 8, binary=False) is None
    assert binary_standard_error(0.5, 1) is None
    assert binary_rule(rule_for_metric("exact", "t")) and not binary_rule(rule_for_metric("rouge-l", "t"))


def test_optimize_records_and_prints_the_error_bars(tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    out = fake_cli.optimize(monkeypatch, run_dir)
    assert out.exit_code == 0, out.output
    summary = json.loads((run_dir / "result.json").read_text())
    assert set(KEYS) <= set(summary)
    assert summary["test_gain"] == pytest.approx(summary["final_test"] - summary["initial_test"])
    assert summary["test_gain_questions"] == 12 and len(summary["test_gain_ci"]) == 2
    low, high = summary["test_gain_ci"]
    assert low <= summary["test_gain"] <= high
    test_scores = [o["score"] for o in summary["test_outcomes"]["final"]]
    assert summary["final_test_se"] == pytest.approx(standard_error(test_scores))
    # The initial prompt's per-question dev scores are recorded with it, and give its standard error.
    init = json.loads((run_dir / "trajectory.jsonl").read_text().splitlines()[0])
    assert len(init["dev_outcomes"]) == 8
    assert summary["initial_dev_se"] == pytest.approx(standard_error(init["dev_outcomes"].values()))
    assert summary["final_dev_se"] is not None
    gain = gain_text(summary)
    assert f"gain on the test split: {gain}" in out.output and "(95% CI " in gain
    assert (
        f"dev {with_error(summary['initial']['dev_score'], summary['initial_dev_se'])}  "
        f"test {with_error(summary['initial_test'], summary['initial_test_se'])}" in out.output
    )

    shown = CliRunner().invoke(main, ["show", str(run_dir)])
    assert shown.exit_code == 0, shown.output
    assert f"test {with_error(summary['final_test'], summary['final_test_se'])}" in shown.output
    assert f"gain on the test split: {gain}" in shown.output
    html = render_report([run_dir])
    assert f"Gain on the test split: <b>{gain}</b>" in html
    assert with_error(summary["final_test"], summary["final_test_se"]) in html


def test_an_older_result_json_gets_its_test_error_bars_from_its_outcomes(tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    assert fake_cli.optimize(monkeypatch, run_dir, "--quiet").exit_code == 0
    summary = json.loads((run_dir / "result.json").read_text())
    older = {key: value for key, value in summary.items() if key not in KEYS}
    (run_dir / "result.json").write_text(json.dumps(older))
    bars = result_error_bars(older)
    assert bars["initial_dev_se"] is None and bars["final_dev_se"] is None
    assert {key: bars[key] for key in KEYS if "test" in key} == {
        key: summary[key] for key in KEYS if "test" in key
    }
    shown = CliRunner().invoke(main, ["show", str(run_dir)])
    assert f"gain on the test split: {gain_text(summary)}" in shown.output


def test_a_fabricated_run_shows_its_known_interval_in_show_and_the_report(tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    assert fake_cli.optimize(monkeypatch, run_dir, "--quiet").exit_code == 0
    summary = {
        key: value
        for key, value in json.loads((run_dir / "result.json").read_text()).items()
        if key not in KEYS
    }
    summary.update(
        initial_test=0.2,
        final_test=0.8,
        test_outcomes={"initial": outcomes(INITIAL), "final": outcomes(FINAL)},
    )
    (run_dir / "result.json").write_text(json.dumps(summary))
    shown = CliRunner().invoke(main, ["show", str(run_dir)]).output
    assert "gain on the test split: +60.0 points (95% CI +30.0 to +90.0, 10 questions)" in shown
    assert "test 80.0 ± 13.3" in shown and "test 20.0 ± 13.3" in shown
    html = render_report([run_dir])
    assert "Gain on the test split: <b>+60.0 points (95% CI +30.0 to +90.0, 10 questions)</b>" in html
