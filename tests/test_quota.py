"""The reply quota (algorithm/quota.py): a step asks the optimizer again until it has the
candidates it asked for, at most twice as many asks, within the optimizer-call budget."""

import json

import pytest
from click.testing import CliRunner
from conftest import difficulty_task, task_model
from test_golden import _install

from gpo_local.algorithm.budget import reference_calls
from gpo_local.algorithm.config import GPOConfig, Limits
from gpo_local.algorithm.index import TrajectoryIndex
from gpo_local.algorithm.quota import usable_slots
from gpo_local.app.cli import main
from gpo_local.methods import METHODS
from gpo_local.quality.markdown import _asks_text
from gpo_local.quality.results import _usable_replies
from gpo_local.runs.directory import JsonlLog
from gpo_local.testing import HashingEmbedder, ScriptedLLM


def junk_first(junk: int) -> ScriptedLLM:
    """An optimizer whose first `junk` candidate replies are empty, then distinct prompts."""
    count = [0]

    def reply(messages, temperature, seed):
        count[0] += 1
        return "" if count[0] <= junk else f"<START>answer yes to question number {count[0]}<END>"

    return ScriptedLLM(reply, fingerprint=f"junk-{junk}")


def run(tmp_path, optimizer, *, method="gpo", limits=Limits(), **config):
    config = GPOConfig(**{"method": method, "steps": 3, "candidates": 3, "reply_quota": True, **config})
    runner = METHODS[method](
        task=difficulty_task(),
        task_llm=task_model(),
        optimizer_llm=optimizer,
        index=TrajectoryIndex(tmp_path / "indexes", HashingEmbedder()),
        config=config,
        log=JsonlLog(tmp_path / "trajectory.jsonl"),
        limits=limits,
    )
    result = runner.run()
    records = [json.loads(line) for line in (tmp_path / "trajectory.jsonl").read_text().splitlines()]
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
    # The two extra asks came out of the budget of 9 calls: step 3 no longer fits.
    assert len(steps_of(records)) == 2 and result.usage["optimizer_calls"] == 8 <= reference_calls(
        result_config(3)
    )
    assert result.stopped == "completed"


def result_config(candidates):
    return GPOConfig(steps=3, candidates=candidates, reply_quota=True)


def test_only_junk_stops_at_twice_the_candidates(tmp_path):
    result, records, _ = run(tmp_path, junk_first(10**6))
    first, second = steps_of(records)[:2]
    assert (first["asks"], first["wanted"], first["usable"]) == (6, 3, 0)
    assert first["drops"] == {"empty": 6}
    # Step 2 has the 3 calls it planned and nothing spare; step 3 does not fit in the 9 calls.
    assert (second["asks"], second["usable"]) == (3, 0)
    assert len(steps_of(records)) == 2 and result.usage["optimizer_calls"] == 9


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
        # OPRO's step of 8 leaves 1 spare call in the budget of 9
        ("opro", (9, 8, 7)),
    ],
)
def test_the_baselines_get_the_same_quota(tmp_path, method, counts):
    result, records, _ = run(tmp_path, junk_first(2), method=method)
    first = steps_of(records)[0]
    assert (first["asks"], first["wanted"], first["usable"]) == counts
    assert result.usage["optimizer_calls"] <= reference_calls(GPOConfig(method=method, steps=3, candidates=3))


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
    assert "the reply quota asked 9 times for 6 candidates, 6 usable" in " ".join(shown.output.split())
    assert "step 2: asked 6 times for 3 candidates, 3 usable" in shown.output
    result = json.loads((run_dir / "result.json").read_text())
    assert result["quota"] == {"asks": 9, "wanted": 6, "usable": 6}


def test_the_cost_table_sums_the_asks_over_the_cells():
    cells = [
        {"candidate_replies": 9, "dropped_replies": 3, "quota_asks": 9, "quota_wanted": 6},
        {"candidate_replies": 6, "dropped_replies": 0, "quota_asks": 6, "quota_wanted": 6},
        {"candidate_replies": 6, "dropped_replies": 0, "quota_asks": None, "quota_wanted": None},
    ]
    assert _asks_text(_usable_replies(cells)) == "15 for 12"
    assert _asks_text(_usable_replies(cells[2:])) == "n/a"
