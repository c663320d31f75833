"""The reply quota (algorithm/quota.py): a step asks the optimizer again until it has the
candidates it asked for, at most twice as many asks; with it on, the optimizer-call budget is
twice the plan, so the extra asks never end a run early."""

import json

import pytest
from click.testing import CliRunner
from conftest import build_method, difficulty_task, run_records
from test_golden import _install

from gpo_local.algorithm.budget import call_budget, reference_calls
from gpo_local.algorithm.config import GPOConfig, Limits
from gpo_local.algorithm.quota import usable_slots
from gpo_local.app.cli import main
from gpo_local.methods.estimate import estimate, format_estimate
from gpo_local.quality.markdown import _asks_text
from gpo_local.quality.results import _usable_replies
from gpo_local.testing import ScriptedLLM


def junk_first(junk: int) -> ScriptedLLM:
    """An optimizer whose first `junk` candidate replies are empty, then distinct prompts."""
    count = [0]

    def reply(messages, temperature, seed):
        count[0] += 1
        return "" if count[0] <= junk else f"<START>answer yes to question number {count[0]}<END>"

    return ScriptedLLM(reply, fingerprint=f"junk-{junk}")


def run(tmp_path, optimizer, *, method="gpo", limits=Limits(), **config):
    config = GPOConfig(**{"method": method, "steps": 3, "candidates": 3, "reply_quota": True, **config})
    runner = build_method(tmp_path, config, optimizer, limits=limits)
    result = runner.run()
    records = run_records(tmp_path)
    return result, records, runner


def steps_of(records):
    return [r for r in records if r["kind"] == "step"]


def new_candidates(records, step):
    return [r for r in records if r["kind"] == "candidate" and r["step"] == step and r["new"]]


def test_a_step_asks_again_until_it_has_every_candidate(tmp_path):
    optimizer = junk_first(2)
    result, records, _ = run(tmp_path, optimizer)
    first = steps_of(records)[0]
    assert len(new_candidates(records, 0)) == 3
    assert (first["asks"], first["wanted"], first["usable"]) == (5, 3, 3)
    assert first["drops"] == {"empty": 2} and first["replies"] == 5
    seeds = [call["seed"] for call in optimizer.calls[:5]]
    assert len(set(seeds)) == 5  # each ask its own seed
    # The two extra asks come out of the quota's allowance, not out of the later steps' calls.
    assert [s["asks"] for s in steps_of(records)] == [5, 3, 3]
    assert result.usage["optimizer_calls"] == 11 and result.stopped == "completed"


def test_the_budget_doubles_with_the_quota():
    plan = reference_calls(GPOConfig(steps=3, candidates=3))
    assert call_budget(GPOConfig(steps=3, candidates=3, reply_quota=True), Limits()) == 2 * plan == 18
    assert call_budget(GPOConfig(steps=3, candidates=3), Limits()) == plan
    limited = Limits(max_optimizer_calls=10)
    assert call_budget(GPOConfig(steps=3, candidates=3, reply_quota=True), limited) == 10


def test_only_junk_stops_at_twice_the_candidates(tmp_path):
    result, records, _ = run(tmp_path, junk_first(10**6))
    first, second = steps_of(records)[:2]
    assert (first["asks"], first["wanted"], first["usable"]) == (6, 3, 0)
    assert first["drops"] == {"empty": 6}
    # Every step runs, each to the bound: 3 x 6 asks, the whole budget of twice the plan.
    assert [(s["asks"], s["usable"]) for s in steps_of(records)] == [(6, 0)] * 3
    assert result.usage["optimizer_calls"] == 18 and result.stopped == "completed"


def test_the_quota_stays_within_a_call_limit_and_stops_at_a_step_boundary(tmp_path):
    result, records, _ = run(tmp_path, junk_first(10**6), limits=Limits(max_optimizer_calls=4))
    assert [s["asks"] for s in steps_of(records)] == [4]
    assert result.usage["optimizer_calls"] == 4 and result.stopped == "max_optimizer_calls"


def test_quota_off_asks_once_per_candidate(tmp_path):
    result, records, _ = run(tmp_path, junk_first(2), reply_quota=False)
    steps = steps_of(records)
    assert len(steps) == 3 and all("asks" not in s for s in steps)
    assert steps[0]["drops"] == {"empty": 2} and len(new_candidates(records, 0)) == 1
    assert result.usage["optimizer_calls"] == 9


@pytest.mark.parametrize(
    "method,counts",
    [
        ("ape", (5, 3, 3)),
        ("pe2", (5, 3, 3)),
        ("opro", (10, 8, 8)),
    ],
)
def test_the_baselines_get_the_same_quota(tmp_path, method, counts):
    result, records, _ = run(tmp_path, junk_first(2), method=method)
    first = steps_of(records)[0]
    assert (first["asks"], first["wanted"], first["usable"]) == counts
    planned = reference_calls(GPOConfig(method=method, steps=3, candidates=3))
    assert planned < result.usage["optimizer_calls"] <= 2 * planned


def test_a_repeat_of_a_scored_prompt_is_kept_but_not_counted():
    assert usable_slots(["a", None, " a ", "b", "c"], known={"c"}) == [True, False, False, True, False]


def test_show_and_the_report_give_the_asks(tmp_path, monkeypatch):
    _install(monkeypatch)
    run_dir = tmp_path / "run"
    runner = CliRunner()
    outcome = runner.invoke(
        main,
        [
            "optimize",
            "sentiment",
            "--reply-quota",
            "--steps",
            "3",
            "--candidates",
            "3",
            "--dev-limit",
            "8",
            "--test-limit",
            "10",
            "--no-cache",
            "--quiet",
            "--run-dir",
            str(run_dir),
        ],
    )
    assert outcome.exit_code == 0, outcome.output
    shown = runner.invoke(main, ["show", str(run_dir)])
    assert shown.exit_code == 0, shown.output
    assert "the reply quota asked 13 times for 9 candidates, 9 usable" in " ".join(shown.output.split())
    assert "step 2: asked 6 times for 3 candidates, 3 usable" in shown.output
    result = json.loads((run_dir / "result.json").read_text())
    assert result["quota"] == {"asks": 13, "wanted": 9, "usable": 9}


def test_the_cost_table_sums_the_asks_over_the_cells():
    cells = [
        {"candidate_replies": 9, "dropped_replies": 3, "quota_asks": 9, "quota_wanted": 6},
        {"candidate_replies": 6, "dropped_replies": 0, "quota_asks": 6, "quota_wanted": 6},
        {"candidate_replies": 6, "dropped_replies": 0, "quota_asks": None, "quota_wanted": None},
    ]
    assert _asks_text(_usable_replies(cells)) == "15 for 12"
    assert _asks_text(_usable_replies(cells[2:])) == "n/a"


def test_a_dry_run_gives_the_quotas_bound():
    quota_on = GPOConfig(steps=4, candidates=3, reply_quota=True)
    with_quota = format_estimate(estimate(quota_on, difficulty_task()))
    assert "optimizer calls:         12 (up to 24 with the reply quota's asks)" in with_quota
    without = format_estimate(estimate(GPOConfig(steps=4, candidates=3), difficulty_task()))
    assert "optimizer calls:         12\n" in without
