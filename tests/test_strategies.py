"""Every strategy switch of GPO_SPEC section 2, with the scripted fake LLM: what goes to the
optimizer (the meta-prompt sections) and what the loop does with the reply."""

import pytest
from conftest import build_method, difficulty_task, run_records
from fake_models import smart_optimizer

from gpo_local.algorithm.config import GPOConfig
from gpo_local.algorithm.index import TrajectoryIndex
from gpo_local.algorithm.optimizer import GPO
from gpo_local.runs.directory import JsonlLog
from gpo_local.testing import HashingEmbedder


def run_gpo(tmp_path, **switches):
    opt = smart_optimizer(max_words=3)  # candidates of at most 4 words: difficulty 5 stays wrong
    config = GPOConfig(
        **{"steps": 3, "candidates": 2, "reply_quota": False, **switches}
    )  # one ask per candidate, as these tests count (test_quota.py: the quota)
    gpo = build_method(tmp_path, config, opt)
    result = gpo.run()
    recs = run_records(tmp_path)
    return result, opt, recs, gpo


def sent(opt):
    return [c["messages"][-1]["content"] for c in opt.calls]


def update_prompts(opt):
    return [
        t
        for t in sent(opt)
        if t.startswith("Your task is to")
        and ("write a prompt that replaces" in t or "revise the current prompt" in t)
    ]


def direction_sections(meta):
    """The meta-prompt's sections without the examples block (which comes right after the task
    line): task line, history, current prompt, problems, request, output format."""
    sections = meta.split("\n\n")
    return [sections[0], *[x for x in sections[1:] if not x.startswith(("Below are examples", "Input:"))]]


def steps_of(recs):
    return [r for r in recs if r["kind"] == "step"]


def test_no_gradient_makes_no_train_pass_and_no_problems_section(tmp_path):
    result, opt, recs, gpo = run_gpo(tmp_path)
    assert gpo.evaluator.scorings["train"] == 0
    assert all("problems" not in m for m in update_prompts(opt))
    assert all("gradient" not in r for r in steps_of(recs))


def test_feedback_gradient_shows_wrong_train_answers_and_feeds_the_update(tmp_path):
    result, opt, recs, gpo = run_gpo(tmp_path, gradient="feedback", momentum="none", update="generate")
    feedback = [t for t in sent(opt) if t.startswith("Your task is to find out what is wrong")]
    # One call per step whose batch had wrong answers, at temperature 0 (a prompt of 5+ words
    # answers every train question, so later steps may need none).
    assert len(feedback) == sum("gradient_meta_prompt" in r for r in steps_of(recs)) >= 1
    assert {c["temperature"] for c in opt.calls if c["messages"][-1]["content"] in feedback} == {0.0}
    sections = feedback[0].split("\n\n")
    assert sections[1] == "The current prompt is:\nAnswer."
    # "Answer." has one word: every train question of difficulty > 1 is answered "no".
    wrong = [s for s in sections if s.startswith("Question:")]
    assert wrong and all("Wrong answer: no\nExpected answer: yes" in s for s in wrong)
    assert all("difficulty 1;" not in s for s in wrong)
    assert sections[-1] == "Put the explanation between <START> and <END>."
    # The parsed reply becomes the problems section of every update meta-prompt of the step.
    updates = update_prompts(opt)
    assert all(
        "problems found with the current prompt:\nThe prompt is too short for hard questions: Answer." in u
        for u in updates[:2]
    )
    step0 = steps_of(recs)[0]
    assert step0["gradient"] == "The prompt is too short for hard questions: Answer."
    assert len(step0["train_batch"]) == 8 and gpo.evaluator.scorings["train"] == 8 * 3
    assert sorted(step0["train_batch"]) == [f"train-{i}" for i in range(8)]  # a seeded shuffle of all 8


def test_feedback_gradient_skips_the_call_when_nothing_is_wrong(tmp_path):
    def always_yes(messages, temperature, seed):
        return "yes"

    from gpo_local.testing import ScriptedLLM

    opt = smart_optimizer()
    gpo = GPO(
        task=difficulty_task(),
        task_llm=ScriptedLLM(always_yes),
        optimizer_llm=opt,
        index=TrajectoryIndex(tmp_path / "i", HashingEmbedder()),
        config=GPOConfig(
            steps=2, candidates=2, gradient="feedback", momentum="none", update="edit", reply_quota=False
        ),
        log=JsonlLog(tmp_path / "t.jsonl"),
    )
    gpo.run()
    assert not [t for t in sent(opt) if t.startswith("Your task is to find out what is wrong")]
    assert gpo.optimizer_calls == 4
    assert "answered every example of the last batch correctly" in update_prompts(opt)[0]


def test_no_momentum_shows_the_current_prompt_alone(tmp_path):
    _, opt, _, _ = run_gpo(tmp_path, momentum="none")
    sections = direction_sections(update_prompts(opt)[2])  # step 1
    assert sections[1].startswith("Here is the current prompt with its score.")
    assert sections[2].startswith("Prompt: ") and sections[3].startswith("The current prompt is:")
    assert sections[2].split("\n")[0] == "Prompt: " + sections[3].split("\n")[1]


@pytest.mark.parametrize("selection", ["recency", "relevance", "relavance", "importance"])
def test_para_k_list_selections(tmp_path, selection):
    result, opt, recs, _ = run_gpo(tmp_path, selection=selection, k=2)
    metas = update_prompts(opt)
    traj = result.trajectory
    step2 = direction_sections(metas[4])  # step 2: the trajectory holds p0 and two chosen prompts
    assert step2[1].startswith("Here are earlier prompts with their scores.")
    shown = [s.split("\n")[0].removeprefix("Prompt: ") for s in step2[2:4]]
    assert step2[4].startswith("The current prompt is:")
    history = traj[:3]
    if selection == "recency":
        assert shown == [history[2].prompt, history[1].prompt]
    elif selection == "importance":
        best = sorted(range(3), key=lambda i: (-history[i].dev_score, i))[:2]
        assert shown == [history[i].prompt for i in best]
    else:
        assert shown[0] == history[2].prompt and shown[1] in (history[0].prompt, history[1].prompt)
    # Scores on the 0-100 scale with one decimal (GPO_SPEC 8.3).
    assert (
        step2[2].split("\n")[1]
        == f"Score: {100 * [e for e in history if e.prompt == shown[0]][0].dev_score:.1f}"
    )


def test_para_real_time_scores_the_summarized_prompt(tmp_path):
    result, opt, recs, gpo = run_gpo(tmp_path, momentum_update="real-time")
    summaries = [t for t in sent(opt) if t.startswith("Your task is to summarize two prompts")]
    assert len(summaries) == 2  # steps 1 and 2; step 0 uses p0 itself
    assert "Prompt: Answer.\nScore: 33.3" in summaries[0]
    steps = steps_of(recs)
    assert steps[0]["momentum"] == {"prompt": "Answer.", "dev_score": pytest.approx(2 / 6)}
    # GPO_SPEC 8.13: the summary prompt itself is scored (4 words: difficulties 1-4 of 1..5).
    assert steps[1]["momentum"]["prompt"] == "Summary of four words"
    assert steps[1]["momentum"]["dev_score"] == pytest.approx(5 / 6)
    meta = direction_sections(update_prompts(opt)[2])
    assert meta[1].startswith("Here is a prompt summarizing the earlier ones, with its score.")
    assert meta[2] == "Prompt: Summary of four words\nScore: 83.3"
    assert gpo.optimizer_calls == 3 * 2 + 2


@pytest.mark.parametrize("selection", ["recency", "relevance", "importance"])
def test_feedback_momentum_k_list(tmp_path, selection):
    result, opt, recs, _ = run_gpo(
        tmp_path, gradient="feedback", momentum="feedback", update="edit", selection=selection, k=2
    )
    metas = update_prompts(opt)
    # Step 2 shows two gradient texts (the new one first), joined by a blank line.
    problems = (
        metas[4].split("These are the problems found with the current prompt:\n")[1].split("\n\nStudy ")[0]
    )
    items = problems.split("\n\n")
    steps = steps_of(recs)
    assert len(items) == 2 and items[0] == steps[2]["gradient"]
    assert items[1] in (steps[0]["gradient"], steps[1]["gradient"])
    if selection == "recency":
        assert items[1] == steps[1]["gradient"]
    if selection == "importance":  # the earlier gradient whose step improved the score most
        gains = [
            steps[0]["dev_score"] - result.trajectory[0].dev_score,
            steps[1]["dev_score"] - steps[0]["dev_score"],
        ]
        assert items[1] == steps[gains.index(max(gains))]["gradient"]
    assert "revise the current prompt" in metas[4]


def test_feedback_momentum_real_time_merges_the_gradients(tmp_path):
    result, opt, recs, gpo = run_gpo(
        tmp_path, gradient="feedback", momentum="feedback", momentum_update="real-time", update="generate"
    )
    merges = [t for t in sent(opt) if t.startswith("Your task is to combine two lists")]
    assert len(merges) == 2
    assert "earlier versions of the prompt:\nThe prompt is too short for hard questions: Answer." in merges[0]
    assert (
        f"with the current prompt:\nThe prompt is too short for hard questions: {result.trajectory[1].prompt}"
        in merges[0]
    )
    steps = steps_of(recs)
    assert steps[0]["feedback_momentum"] == "The prompt is too short for hard questions: Answer."
    assert steps[1]["feedback_momentum"] == "Merged: too short, too vague"
    assert "problems found with the current prompt:\nMerged: too short, too vague" in update_prompts(opt)[2]


@pytest.mark.parametrize(
    "update,task_line,wrap",
    [
        ("generate-without", "Your task is to write a prompt", "Put the new prompt between"),
        ("edit-without", "Your task is to revise the current prompt", "Put the modified prompt between"),
    ],
)
def test_update_methods_without_gradient(tmp_path, update, task_line, wrap):
    _, opt, _, _ = run_gpo(tmp_path, update=update)
    meta = update_prompts(opt)[0]
    assert meta.startswith(task_line) and wrap in meta.split("\n\n")[-1] and "problems" not in meta


@pytest.mark.parametrize(
    "schedule,expected",
    [
        ("none", [None, None, None]),
        ("fixed", [50, 50, 50]),
        ("linear", [36, 23, 10]),
        ("cosine", [40, 20, 10]),
        ("consine", [40, 20, 10]),
    ],
)
def test_schedules_set_the_step_size_line(tmp_path, schedule, expected):
    _, opt, recs, _ = run_gpo(tmp_path, schedule=schedule)
    metas = update_prompts(opt)
    assert [r["budget"] for r in steps_of(recs)] == expected
    for step, budget in enumerate(expected):
        line = f"You may change at most {budget} words of the current prompt."
        assert (line in metas[2 * step]) == (budget is not None)
    if schedule == "none":
        assert all("change at most" not in m for m in metas)


def test_warmup_ramps_up_first(tmp_path):
    _, _, recs, _ = run_gpo(tmp_path, schedule="fixed", warmup=2)
    assert [r["budget"] for r in steps_of(recs)] == [25, 50, 50]


def test_candidate_replies_are_parsed_deduplicated_and_scored(tmp_path):
    result, opt, recs, gpo = run_gpo(tmp_path)
    cands = [r for r in recs if r["kind"] == "candidate"]
    assert all(c["prompt"].startswith("Think") for c in cands)  # parsed out of "Here you go: <START>...<END>"
    assert len({c["prompt"] for c in cands if c["new"]}) == len([c for c in cands if c["new"]])
    for c in cands:
        words = len(c["prompt"].split())
        assert c["dev_score"] == pytest.approx(sum(1 + i % 5 <= words for i in range(6)) / 6)
