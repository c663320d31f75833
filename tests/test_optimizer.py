import pytest
from conftest import (
    difficulty_task,
    optimizer_model,
    question_and_instruction,
    task_model,
    trajectory_records,
)
from fake_models import Killed, killing_after

from gpo_local.algorithm.config import GPOConfig
from gpo_local.algorithm.index import TrajectoryIndex
from gpo_local.algorithm.optimizer import GPO
from gpo_local.algorithm.schedules import make_schedule
from gpo_local.algorithm.trajectory import final_choice, select_next
from gpo_local.core import TrajectoryEntry as E
from gpo_local.runs.directory import JsonlLog
from gpo_local.testing import HashingEmbedder


def make_gpo(run_dir, *, task_llm=None, optimizer_llm=None, steps=4, candidates=3):
    return GPO(
        task=difficulty_task(),
        task_llm=task_llm or task_model(),
        optimizer_llm=optimizer_llm or optimizer_model(),
        index=TrajectoryIndex(run_dir / "indexes", HashingEmbedder()),
        config=GPOConfig(steps=steps, candidates=candidates, reply_quota=False),
        log=JsonlLog(run_dir / "trajectory.jsonl"),
    )


records = trajectory_records


def test_select_next_moves_to_best_unselected_even_if_worse():
    pool = [("cur", 0.8), ("a", 0.5), ("b", 0.6)]
    assert select_next(pool, {"cur"}) == ("b", 0.6)
    assert select_next([("cur", 0.8), ("a", 0.5)], {"cur", "a"}) == ("cur", 0.8)  # fallback: top of pool
    assert select_next([("cur", 0.5), ("a", 0.5), ("b", 0.5)], {"cur"}) == ("a", 0.5)  # ties keep order


def test_final_choice_is_best_dev_earliest_on_ties():
    traj = [E("p0", 0.2, -1), E("p1", 0.6, 0), E("p2", 0.6, 1), E("p3", 0.4, 2)]
    assert final_choice(traj).prompt == "p1"


def test_run_follows_the_gpo_step(tmp_path):
    opt = optimizer_model()
    result = make_gpo(tmp_path, optimizer_llm=opt).run()
    assert len(result.trajectory) == 5 and result.initial.prompt == "Answer."
    # Difficulty i%5+1 over 6 eval questions: a 1-word prompt answers only the difficulty-1 ones.
    assert result.initial.dev_score == pytest.approx(2 / 6)
    assert result.final.dev_score == max(e.dev_score for e in result.trajectory)
    # Each step sent C meta-prompts with the cosine budget for c = len(trajectory).
    schedule = make_schedule("cosine", initial=50, final=10, total_steps=4)
    metas = [c["messages"][0]["content"] for c in opt.calls]
    assert len(metas) == 12
    for step in range(4):
        assert f"change at most {schedule(step + 1)} words" in metas[3 * step]
        assert {c["temperature"] for c in opt.calls} == {0.7}
    # The direction at step 1 holds p0 and the first chosen prompt, with 0-100 scores.
    assert "Prompt: Answer.\nScore: 33.3" in metas[3]
    recs = records(tmp_path)
    kinds = [r["kind"] for r in recs]
    assert kinds[0] == "init" and kinds.count("step") == 4
    cands = [r for r in recs if r["kind"] == "candidate"]
    assert all(r["budget"] == schedule(r["step"] + 1) for r in cands)
    assert all(r["edit_distance"] is not None and r["parent"] for r in cands)
    steps = [r for r in recs if r["kind"] == "step"]
    for r in steps:
        # The chosen prompt is the best candidate of its step that was never selected before.
        assert r["dev_score"] == max(c["dev_score"] for c in cands if c["step"] == r["step"]) or r["step"] > 0
    assert result.final_test is not None and result.initial_test == pytest.approx(1 / 4)


def test_regenerated_prompts_are_not_rescored(tmp_path):
    task_llm = task_model()
    make_gpo(tmp_path, task_llm=task_llm, steps=3, candidates=4).run()
    asked = [question_and_instruction(c["messages"][-1]["content"], "difficulty") for c in task_llm.calls]
    eval_calls = [prompt for question, prompt in asked if question]
    # Each distinct prompt is scored once per eval question (6) and at most once more on test.
    from collections import Counter

    assert max(Counter(eval_calls).values()) <= 6 + 4


@pytest.mark.parametrize("kill_after", [5, 20, 32, 40])
def test_resume_gives_the_same_trajectory(tmp_path, kill_after):
    whole = tmp_path / "whole"
    counter = killing_after(10**9, task_model())
    make_gpo(whole, task_llm=counter).run()
    broken = tmp_path / "broken"
    with pytest.raises(Killed):
        make_gpo(broken, task_llm=killing_after(kill_after, task_model())).run()
    with (broken / "trajectory.jsonl").open("a") as handle:
        handle.write('{"kind": "candid')  # a torn line, as a kill during the append leaves it
    make_gpo(broken).run()
    assert records(broken) == records(whole)
