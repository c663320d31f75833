"""The evaluator with a context limit (ScriptedLLM(context_words=...)), and a run whose optimizer
replies are of every bad shape."""

import json
import sqlite3

import pytest
from conftest import difficulty_task, task_model

from gpo_local.algorithm.config import GPOConfig
from gpo_local.algorithm.evaluator import Evaluator
from gpo_local.algorithm.index import TrajectoryIndex
from gpo_local.algorithm.optimizer import GPO
from gpo_local.backends.memo import Memo, MemoizedLLM
from gpo_local.errors import PromptTooLongError
from gpo_local.runs.directory import JsonlLog
from gpo_local.testing import HashingEmbedder, ScriptedLLM


def limited_model(context_words):
    model = task_model()
    model.context_words = context_words
    return model


def test_a_candidate_too_long_for_the_context_is_scored_zero_and_flagged():
    events = []
    evaluator = Evaluator(
        limited_model(12), difficulty_task(n_eval=4), on_event=lambda k, d: events.append((k, d))
    )
    short, long = "think think think think think", "think " * 40
    good, bad = evaluator.evaluate([short, long], "eval")
    assert good.too_long == 0 and good.score == 1.0
    assert (
        bad.too_long == 4
        and bad.score == 0.0
        and all(o.too_long and o.final_answer == "" for o in bad.outcomes)
    )
    assert [k for k, _ in events] == ["warning"]
    assert (
        events[0][1]["too_long"] == 4
        and "40 words) does not fit the model's context with 4 of 4 eval" in events[0][1]["message"]
    )


def test_round_two_that_no_longer_fits_is_flagged_too():
    # Round 1 (question + prompt, 8 words) fits in 12; with the reply and the follow-up it does not.
    model = ScriptedLLM(lambda messages, t, s: "yes " * 5, context_words=12)
    task = difficulty_task(n_eval=2)
    task = type(task)(**{**task.__dict__, "rule": type(task.rule)("exact", True, None, "t")})
    result = Evaluator(model, task).evaluate(["Answer it."], "eval")[0]
    assert result.too_long == 2 and result.score == 0.0
    assert result.outcomes[0].first_answer.startswith("yes")  # round 1 happened and is kept


def test_the_users_own_prompt_too_long_is_an_error_naming_the_question():
    evaluator = Evaluator(limited_model(12), difficulty_task(n_eval=4))
    with pytest.raises(
        PromptTooLongError,
        match=r"prompt 'think think .*' with eval question eval-0 of task "
        r"'difficulty' does not fit the model's context: raise n_ctx",
    ):
        evaluator.score("think " * 40, "eval")
    with pytest.raises(PromptTooLongError, match=r"\(the question alone does not fit\)"):
        Evaluator(limited_model(3), difficulty_task()).score("x", "eval")


BAD_REPLIES = [
    "",
    "   \n\t ",
    "no tags, just text that becomes the prompt",
    "<START><Prompt><END>",
    "<START><END>",
    "word " * 3000,
    "<START>" + "long " * 2000 + "<END>",
    "<START>Think <Prompt> twice.<END>",
]


def test_a_run_survives_optimizer_replies_of_every_bad_shape(tmp_path):
    def optimizer(messages, temperature, seed):
        return BAD_REPLIES[seed % len(BAD_REPLIES)]

    events = []
    # A token limit above the long replies, so that they reach the evaluator (with the default 512 they
    # would be dropped as truncated: drops.py).
    config = GPOConfig(steps=3, candidates=len(BAD_REPLIES), seed=1, optimizer_max_tokens=4096)
    gpo = GPO(
        task=difficulty_task(),
        task_llm=limited_model(60),
        optimizer_llm=ScriptedLLM(optimizer),
        index=TrajectoryIndex(tmp_path / "indexes", HashingEmbedder()),
        config=config,
        log=JsonlLog(tmp_path / "trajectory.jsonl"),
        on_event=lambda k, d: events.append((k, d)),
    )
    result = gpo.run()
    records = [json.loads(line) for line in (tmp_path / "trajectory.jsonl").read_text().splitlines()]
    prompts = {r["prompt"] for r in records if r["kind"] == "candidate"}
    assert prompts and all(p.strip() and "<Prompt>" not in p and "<START>" not in p for p in prompts)
    assert [r["step"] for r in records if r["kind"] in ("init", "step")] == [-1, 0, 1, 2]
    assert any(k == "warning" and "does not fit" in d["message"] for k, d in events)  # the long ones
    assert result.final.dev_score >= result.initial.dev_score


def test_a_torn_memo_file_is_set_aside_and_rebuilt(tmp_path):
    path = tmp_path / "cache.sqlite"
    llm = MemoizedLLM(task_model(), Memo(path))
    llm.generate([f"difficulty 1; say yes {i}\nok" for i in range(300)], max_tokens=4)
    llm.memo.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    llm.memo.close()
    with path.open("r+b") as handle:
        handle.truncate(path.stat().st_size // 2)
    again = MemoizedLLM(task_model(), Memo(path))
    assert again.generate(["difficulty 1; say yes\nok"], max_tokens=4) == ["yes"]
    assert (tmp_path / "cache.sqlite.corrupt").exists()
    assert sqlite3.connect(path).execute("PRAGMA quick_check").fetchone() == ("ok",)
