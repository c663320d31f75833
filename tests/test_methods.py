"""The baselines and SGDM with the scripted fake LLM: what each sends to the optimizer, what it
does with the reply, the budget it plans, and resume for every method."""

import re

import pytest
from conftest import build_method, difficulty_task, question_and_instruction, task_model, trajectory_records
from fake_models import Killed, killing_after, smart_optimizer

from gpo_local.algorithm.budget import reference_calls
from gpo_local.algorithm.config import GPOConfig
from gpo_local.algorithm.index import TrajectoryIndex
from gpo_local.methods import METHODS, SGDM_PRESET
from gpo_local.runs.directory import JsonlLog
from gpo_local.testing import HashingEmbedder, ScriptedLLM


def make(method, run_dir, *, task_llm=None, optimizer_llm=None, **config):
    config = GPOConfig(
        **{"method": method, "steps": 3, "candidates": 3, "reply_quota": False, **config}
    )  # one ask per candidate, as these tests count (test_quota.py: the quota)
    return build_method(run_dir, config, optimizer_llm or smart_optimizer(max_words=3), task_llm=task_llm)


records = trajectory_records


def sent(opt):
    return [c["messages"][-1]["content"] for c in opt.calls]


@pytest.mark.parametrize("method,prompt", [("empty", ""), ("cot", "Let's think step by step.")])
def test_evaluation_only_baselines(tmp_path, method, prompt):
    def answer(messages, temperature, seed):  # the question alone gets "no"
        question, prompt = question_and_instruction(messages[-1]["content"], r"difficulty (\d+); say yes")
        return "yes" if len(prompt.split()) >= int(question.group(1)) else "no"

    opt, task_llm = smart_optimizer(), ScriptedLLM(answer)
    result = make(method, tmp_path, optimizer_llm=opt, task_llm=task_llm).run()
    assert opt.calls == [] and result.initial.prompt == prompt == result.final.prompt
    assert len(result.trajectory) == 1 and result.usage["optimizer_calls"] == 0
    assert result.usage["dev_scorings"] == 6 and result.final_test is not None
    # The empty instruction sends the question alone; another goes before it (the default Q_begin).
    asked = task_llm.calls[0]["messages"][-1]["content"]
    assert asked == ("difficulty 1; say yes" if method == "empty" else prompt + "\ndifficulty 1; say yes")


def test_reference_scores_the_tasks_human_reference(tmp_path):
    from dataclasses import replace

    from gpo_local.errors import ConfigError

    opt = smart_optimizer()
    task = replace(difficulty_task(), reference_prompt="Say yes to every question here.")
    method = build_method(tmp_path, GPOConfig(method="reference", steps=3, candidates=3), opt, task=task)
    result = method.run()
    assert opt.calls == []
    assert result.initial.prompt == "Say yes to every question here." == result.final.prompt
    # Six words: every difficulty (1 to 5) is answered right.
    assert result.initial.dev_score == 1.0 and result.usage["optimizer_calls"] == 0
    with pytest.raises(ConfigError, match="task 'difficulty' has none"):
        make("reference", tmp_path / "none")


def test_ape_induces_then_resamples_the_best(tmp_path):
    opt = smart_optimizer(max_words=3)
    method = make("ape", tmp_path, optimizer_llm=opt)
    result = method.run()
    texts = sent(opt)
    assert len(texts) == 9 == reference_calls(method.config)
    induction, resample = texts[:3], texts[3:]
    for text in induction:
        sections = text.split("\n\n")
        assert sections[0].startswith("Someone was given an instruction")
        assert len(re.findall(r"^Input:\n", text, re.M)) == 5  # 5 train demonstrations with their outputs
        assert sections[-1] == "What was the instruction? Put it between <START> and <END>."
    assert len(set(induction)) > 1  # each call has its own seeded demonstrations
    assert all(t.startswith("Write a variation of the following instruction") for t in resample)
    recs = records(tmp_path)
    # Step 1 resamples around the best prompts scored by then, best first.
    best_after_0 = [r for r in recs if r["kind"] == "step"][0]["prompt"]
    assert f"Instruction: {best_after_0}" in resample[0]
    cands = [r for r in recs if r["kind"] == "candidate"]
    assert all(c["parent"] is None and c["edit_distance"] is None for c in cands if c["step"] == 0)
    assert all(c["parent"] for c in cands if c["step"] > 0)
    # The trajectory records the best prompt scored so far (elitist).
    scores = [e.dev_score for e in result.trajectory]
    assert scores == sorted(scores) and result.final.dev_score == max(
        c["dev_score"] for c in cands + recs[:1]
    )


def test_apo_gradient_edits_paraphrases_and_beam(tmp_path):
    opt = smart_optimizer(max_words=3)
    method = make("apo", tmp_path, optimizer_llm=opt, candidates=5)
    result = method.run()
    texts = sent(opt)
    # Per step: 1 reasons call + ceil(4/2)=2 edits + 2 paraphrases = C = 5 calls.
    assert method.plan() == [5, 5, 5] and len(texts) == 15
    reasons = [t for t in texts if "Give 2 reasons" in t]
    assert len(reasons) == 3
    assert "It answers the following inputs wrongly." in reasons[0]
    assert "Model answer: no\nCorrect answer: yes" in reasons[0]
    assert len(re.findall(r"^Input:", reasons[0], re.M)) <= 4  # at most 4 errors shown
    edits = [t for t in texts if t.endswith("Put the improved prompt between <START> and <END>.")]
    assert len(edits) == 6
    # Each edit carries one reason parsed out of the gradient reply, in turn.
    assert "A likely reason:\nReason one" in edits[0] and "A likely reason:\nReason two" in edits[1]
    paraphrases = [t for t in texts if t.startswith("Rewrite the following prompt")]
    assert len(paraphrases) == 6
    recs = records(tmp_path)
    cands = [r for r in recs if r["kind"] == "candidate"]
    rephrased = [c for c in cands if c["prompt"].endswith("(rephrased)")]
    assert rephrased and all(c["parent"] == c["prompt"].removesuffix(" (rephrased)") for c in rephrased)
    steps = [r for r in recs if r["kind"] == "step"]
    assert all(len(s["train_batch"]) == 8 and s["gradient"] == "Reason one\n\nReason two" for s in steps)
    # Beam members are expanded in turn: step 1 expands the second best prompt of the beam.
    assert steps[0]["parent"] == "Answer."
    assert result.usage["dev_scorings"] <= 6 * (1 + 3 * 4)


def test_opro_meta_prompt_lists_scored_prompts_ascending_with_exemplars(tmp_path):
    opt = smart_optimizer(max_words=3)
    method = make("opro", tmp_path, optimizer_llm=opt, steps=4, candidates=5)
    method.run()
    # GPO's budget is 4*5 = 20 calls: OPRO keeps 8 proposals per step, capped: 8, 8, 4.
    assert method.plan() == [8, 8, 4] and len(opt.calls) == 20
    texts = sent(opt)
    assert texts[0] == texts[7] and texts[8] != texts[0]
    sections = texts[8].split("\n\n")
    assert (
        sections[0].startswith("Your task is to write an instruction")
        and "from the lowest score" in sections[0]
    )
    listed = re.findall(r"Instruction: (.*)\nScore: ([\d.]+)", texts[8])
    assert listed[-1][0] == [r for r in records(tmp_path) if r["kind"] == "step"][0]["prompt"]  # best last
    values = [float(s) for _, s in listed]
    assert values == sorted(values) and len(listed) <= 20
    # The exemplars show the instruction before the question (the default Q_begin).
    assert "Input:\n<Prompt>\ndifficulty 1; say yes\nOutput:\nyes" in texts[8]
    assert sections[-1] == "Put the new instruction between <START> and <END>."
    assert {c["temperature"] for c in opt.calls} == {0.7}


def test_opro_shows_at_most_20_instructions():
    from gpo_local.methods.opro import render_opro

    scored = [(f"prompt {i}", i / 100) for i in range(30, 0, -1)]
    listed = re.findall(r"Instruction: (.*)\n", render_opro(scored, [], "Q_end"))
    assert listed == [f"prompt {i}" for i in range(11, 31)]


def test_pe2_reasoning_template_with_batch_history_and_step_size(tmp_path):
    opt = smart_optimizer(max_words=3)
    method = make("pe2", tmp_path, optimizer_llm=opt)
    method.run()
    texts = sent(opt)
    assert len(texts) == 9
    step1 = texts[3]
    sections = step1.split("\n\n")
    assert sections[0].startswith("A prompt is a short text") and "two steps" in sections[0]
    assert "at the beginning of the question" in sections[1]  # context specification (Q_begin)
    assert (
        sections[2].startswith("The current prompt is:\n")
        and "Its score on the dev examples is" in sections[2]
    )
    assert "Earlier versions of the prompt, newest first." in step1  # optimization history
    assert "Here is a batch of 2 examples answered with the current prompt:" in step1
    assert step1.count("Expected answer: yes") == 2 and "Result: wrong" in step1  # failures shown first
    assert "Reason step by step." in step1
    assert "You may change at most 20 words of the current prompt." in step1  # cosine, c = 2 of T = 3
    assert sections[-1].startswith("Give your reasoning first")
    # The C calls of a step inspect different pairs of the batch.
    assert len(set(texts[3:6])) == 3


def test_a_method_that_reasons_first_gets_room_before_a_constrained_prompt(tmp_path):
    from gpo_local.replies.grammar import prompt_grammar, reply_token_limit

    class ReasoningPE2(METHODS["pe2"]):  # PE2 itself does not take the room (pe2.py says why)
        reasons_first = True

    replies = iter(
        [
            "First answer wrong: the prompt never says to answer yes. So: <START>Answer yes to each "
            "question<END>"
        ]
        * 100
    )
    opt = ScriptedLLM(lambda messages, t, seed: next(replies))
    opt.supports_grammar = True
    config = GPOConfig(
        method="pe2", steps=3, candidates=3, grammar=True, optimizer_max_tokens=64, reply_quota=False
    )  # one ask per candidate, as these tests count (test_quota.py: the quota)
    result = ReasoningPE2(
        task=difficulty_task(),
        task_llm=task_model(),
        optimizer_llm=opt,
        index=TrajectoryIndex(tmp_path / "indexes", HashingEmbedder()),
        config=config,
        log=JsonlLog(tmp_path / "trajectory.jsonl"),
    ).run()
    # Step 1: cap 1 word ("Answer.") + its step size, 40 words; the reasoning goes before the tags.
    assert opt.calls[0]["grammar"] == prompt_grammar(41, reasoning=True)
    assert opt.calls[0]["grammar"].startswith('root ::= reasoning "<START>"')
    assert opt.calls[0]["max_tokens"] == reply_token_limit(64, 41, reasoning=True) == 64 + 3 * 41 + 8
    # The reasoning is not the prompt.
    assert result.final.prompt == "Answer yes to each question"
    # (the 3 replies of a step are alike: 2 duplicates; nothing dropped as meta talk or leak)
    assert all(r["drops"] == {"duplicate": 2} for r in records(tmp_path) if r["kind"] == "step")
    # Every built-in method asks for the prompt alone.
    for name in ("gpo", "pe2"):
        plain = ScriptedLLM(lambda messages, t, seed: "<START>Say yes<END>")
        plain.supports_grammar = True
        make(name, tmp_path / name, optimizer_llm=plain, grammar=True).run()
        assert plain.calls[0]["grammar"].startswith('root ::= "<START>"'), name


def test_sgdm_is_the_preset_and_fits_gpo_budget(tmp_path):
    opt = smart_optimizer(max_words=3)
    method = make("sgdm", tmp_path, optimizer_llm=opt, steps=4, candidates=3)
    for name, value in SGDM_PRESET.items():
        assert getattr(method.config, name) == value
    # GPO's budget: 4 steps x 3 = 12 calls; SGDM steps cost 3+1 (then +1 momentum): 4, 5 -> 2 steps (9).
    assert method.plan() == [4, 5]
    result = method.run()
    texts = sent(opt)
    assert sum(t.startswith("Your task is to find out what is wrong") for t in texts) == 2
    assert sum(t.startswith("Your task is to combine two lists") for t in texts) == 1
    updates = [t for t in texts if t.startswith("Your task is to revise the current prompt")]
    assert len(updates) == 6 and all("You may change at most 50 words" in u for u in updates)
    assert all("Here is the current prompt with its score." in u for u in updates)
    assert result.usage["optimizer_calls"] == 9 <= reference_calls(method.config)


@pytest.mark.parametrize("method", sorted(METHODS))
def test_budgets_are_equal_within_one_step(tmp_path, method):
    """The check of issue 4: optimizer calls within one step's worth of GPO's, dev scorings
    never above GPO's bound."""
    config = GPOConfig(
        method=method, steps=6, candidates=4, reply_quota=False
    )  # one ask per candidate, as these tests count (test_quota.py: the quota)
    planned = METHODS[method].plan_for(config)
    gpo = METHODS["gpo"].plan_for(GPOConfig(steps=6, candidates=4))
    if method in ("empty", "cot", "reference"):
        assert planned == []
        return
    assert sum(gpo) - max(planned) < sum(planned) <= sum(gpo)
    result = make(method, tmp_path, steps=6, candidates=4).run()
    assert result.usage["optimizer_calls"] <= sum(gpo)
    assert result.usage["dev_scorings"] <= 6 * (1 + 6 * 4)


@pytest.mark.parametrize("method", ["ape", "apo", "opro", "pe2", "sgdm"])
@pytest.mark.parametrize("kill_after", [7, 20])
def test_resume_gives_the_same_trajectory_for_every_method(tmp_path, method, kill_after):
    whole = tmp_path / "whole"
    make(method, whole).run()
    broken = tmp_path / "broken"
    with pytest.raises(Killed):
        make(method, broken, task_llm=killing_after(kill_after, task_model())).run()
    result = make(method, broken).run()
    assert records(broken) == records(whole)
    assert result.usage["optimizer_calls"] == records(whole)[-1]["usage"]["optimizer_calls"]


def test_cpu_seconds_are_counted_and_carried_over_a_resume(tmp_path, monkeypatch):
    import itertools
    import time

    # A CPU clock that advances 1 s per reading while the first session runs...
    ticks = itertools.count()
    monkeypatch.setattr(time, "process_time", lambda: float(next(ticks)))
    broken = tmp_path / "broken"
    with pytest.raises(Killed):
        make("gpo", broken, task_llm=killing_after(20, task_model())).run()
    before = list(JsonlLog(broken / "trajectory.jsonl").records())[-1]["usage"]["cpu_seconds"]
    assert before >= 1.0
    # ...and stands still in the resumed one: its total is exactly the recorded count.
    monkeypatch.setattr(time, "process_time", lambda: 1000.0)
    assert make("gpo", broken).run().usage["cpu_seconds"] == before
