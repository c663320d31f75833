"""Grammar-constrained optimizer replies (grammar.py) and drop reasons (drops.py), with fakes."""

import json
import re

import pytest
from conftest import build_method, difficulty_task, task_model

from gpo_local.algorithm.config import GPOConfig
from gpo_local.algorithm.index import TrajectoryIndex
from gpo_local.replies.drops import (
    DROP_REASONS,
    classify,
    count,
    describe,
    is_truncated,
    mark_duplicates,
    totals,
)
from gpo_local.replies.grammar import cut_to_sentence, prompt_grammar, reply_token_limit, word_cap
from gpo_local.replies.leaks import META_PHRASES, talks_to_optimizer
from gpo_local.runs.directory import JsonlLog
from gpo_local.testing import HashingEmbedder, ScriptedLLM


def test_word_cap_is_current_length_plus_budget_tightened_by_max_words():
    assert word_cap("Let's think step by step.", 10, None) == 15
    assert word_cap("Let's think step by step.", 10, 12) == 12
    assert word_cap("Answer.", None, 30) == 30
    assert word_cap("Answer.", None, None) is None


def test_prompt_grammar_bounds_the_words():
    assert prompt_grammar(12).splitlines()[0] == 'root ::= "<START>" gap? word (gap word){0,11} gap? "<END>"'
    assert prompt_grammar(1).splitlines()[0] == 'root ::= "<START>" gap? word gap? "<END>"'
    assert prompt_grammar(None).splitlines()[0] == 'root ::= "<START>" gap? word (gap word)* gap? "<END>"'
    assert prompt_grammar(3).splitlines()[1] == r"word ::= [^ \t\n\r<>]{1,40}"
    # Line breaks between words: forbidding them made the model write junk (grammar.py).
    assert prompt_grammar(3).splitlines()[2] == r"gap ::= [ \t\n]{1,3}"
    reasoning = prompt_grammar(12, reasoning=True).splitlines()
    assert reasoning[0] == 'root ::= reasoning "<START>" gap? word (gap word){0,11} gap? "<END>"'
    assert reasoning[3] == "reasoning ::= [^<]*" and len(prompt_grammar(12).splitlines()) == 3
    with pytest.raises(ValueError):
        prompt_grammar(0)


@pytest.mark.parametrize(
    "reply, kwargs, expected",
    [
        ("Sure: <START>Answer briefly.<END>", {}, ("Answer briefly.", None)),
        ("", {}, (None, "empty")),
        ("<START>   <END>", {}, (None, "empty")),
        ("Answer briefly.", {}, ("Answer briefly.", None)),  # untagged kept unless tags are required
        ("Answer briefly.", {"require_tags": True}, (None, "missing_tags")),
        ("<START>Answer in detail, covering", {"truncated": True}, (None, "truncated")),
        (
            "<START>Answer <Prompt> now<END>",
            {},
            (classify("<START>Answer now<END>")[0], None),
        ),  # placeholder stripped
        ("<START>Answer <START> now<END>", {}, (None, "tag_leak")),
        ("<START>one two three four<END>", {"max_words": 3}, (None, "too_long")),
        ("<START>one two three<END>", {"max_words": 3}, ("One two three", None)),
        ("<START>copy of an example<END>", {"leaks": lambda p: "example" in p}, (None, "leaks_example")),
        (
            "<START>Change 9 words of the current prompt.<END>",
            {"meta_talk": talks_to_optimizer},
            (None, "meta_talk"),
        ),
        # an example restated in the meta-prompt's words is counted once, as the earlier reason
        (
            "<START>the current prompt: example<END>",
            {"leaks": lambda p: "example" in p, "meta_talk": talks_to_optimizer},
            (None, "leaks_example"),
        ),
    ],
)
def test_classify(reply, kwargs, expected):
    assert classify(reply, **kwargs) == expected


@pytest.mark.parametrize(
    "prompt, cap, expected",
    [
        # At the cap and mid-sentence: back to the last full sentence (the recorded local bench prompt).
        (
            "Track your moves. Measure each step. After that, makeerek",
            9,
            "Track your moves. Measure each step.",
        ),
        ('Say "yes." Then stop,只要有', 4, 'Say "yes."'),
        ("Count the steps (all of them.) and the turns,", 9, "Count the steps (all of them.)"),
        # A list marker opening a line and an abbreviation end no sentence.
        ("Break it down. Key elements:\n1. Find the rule and", 9, "Break it down."),
        ("Write a prompt for each step.\nIV. Then", 8, "Write a prompt for each step."),
        ("Answer well (e.g. this). Then go and", 7, "Answer well (e.g. this)."),
        ("Answer well, e.g. like this and then", 7, "Answer well, e.g. like this and then"),
        ("It is 2024. Then you and", 6, "It is 2024."),
        # Not cut: below the cap (the model ended it), a complete ending, no full sentence to keep,
        # a dot inside a word or a path is no sentence end.
        (
            "Track your moves. Measure each step. After that",
            9,
            "Track your moves. Measure each step. After that",
        ),
        ("Track your moves. Measure each step.", 6, "Track your moves. Measure each step."),
        ("Track your moves. Then answer:", 5, "Track your moves. Then answer:"),
        ("Track your moves and after that", 6, "Track your moves and after that"),
        ("Use e.g.this or `a.b` then", 5, "Use e.g.this or `a.b` then"),
        ("Track your moves. Then", None, "Track your moves. Then"),
    ],
)
def test_a_prompt_at_its_cap_is_cut_back_to_its_last_full_sentence(prompt, cap, expected):
    assert cut_to_sentence(prompt, cap) == expected


def test_only_constrained_replies_are_cut_and_before_the_leak_check():
    reply = "<START>Track your moves. Copy the example word for word and more<END>"
    assert classify(reply, max_words=11) == (reply[7:-5], None)  # free-form: the model ended it
    assert classify(reply, max_words=11, constrained=True) == ("Track your moves.", None)
    assert classify(reply, max_words=12, constrained=True) == (reply[7:-5], None)  # below the cap
    # The leak check judges the prompt that is kept: the restated tail is gone.
    leaks = lambda p: "example" in p  # noqa: E731
    assert classify(reply, max_words=11, leaks=leaks) == (None, "leaks_example")
    assert classify(reply, max_words=11, leaks=leaks, constrained=True) == ("Track your moves.", None)


def test_duplicates_counting_and_text():
    reasons = [None, None, "empty", None]
    assert mark_duplicates(["a b", "a  b", None, "c"], reasons) == ["a b", None, None, "c"]
    assert reasons == [None, "duplicate", "empty", None]
    assert count(reasons) == {"empty": 1, "duplicate": 1}
    assert describe({"truncated": 2, "leaks_example": 1}) == "2 truncated, 1 leaks example"
    assert describe({}) == "none"
    assert totals(
        [
            {"kind": "step", "drops": {"empty": 1}},
            {"kind": "candidate"},
            {"kind": "step", "drops": {"empty": 2, "tag_leak": 1}},
        ]
    ) == {"empty": 3, "tag_leak": 1}
    assert is_truncated(126, 128) and not is_truncated(100, 128)
    assert set(DROP_REASONS) == {
        "empty",
        "missing_tags",
        "truncated",
        "tag_leak",
        "too_long",
        "leaks_example",
        "meta_talk",
        "duplicate",
    }


@pytest.mark.parametrize(
    "prompt",
    [
        # final prompts of `local.toml` cells (seeds 0 and 1) written by the 1.5B optimizer
        "Study the prompt. Write the answer that differs from it counts as wrong. Change at most 40 words "
        "of the "
        "current prompt.",
        "To improve the prompt, we need to clarify the task and ensure that the final answer is correctly "
        "stated. The "
        "current prompt is too vague and could lead to poor interpretations.",
        "To create an improved prompt that better guides the model in thinking through the problem, I will "
        "focus on "
        "the OR formula.",
        "Study the prompt and score above and the examples, then directly copy and paste the current",
        "Here's a new\nprompt that addresses the examples you provided: A model must analyze",
        # GPO, hyperbaton, seed 2 (session 8): the meta-prompt's score listing echoed
        "For each input, provide the option with the correct adjective order.\nThe score is 54.2.\nAfter "
        "reviewing",
        "Answer Yes or No.\nScore: 37.5",
        # GPO, navigate, seed 0 (session 10, replayed with min-p): the meta-prompt's first sentence
        "Write a prompt that replaces",
    ],
)
def test_meta_talk_is_recognized(prompt):
    assert talks_to_optimizer(prompt)


@pytest.mark.parametrize(
    "prompt",
    [
        "Let's think step by step.",
        "Evaluate the Boolean expression step by step, then answer True or False.",
        "Determine whether the adjectives are in the standard English order: opinion, size, age, shape, "
        "color.",
        "Follow the moves from the starting point; count steps forward and backward, and answer Yes or No.",
        "Write a prompt-free answer: renew prompts are not needed.",  # "renew prompts": no whole-word phrase
        "Rate the review with a score from 1 to 5; a score of 3 is neutral.",  # no listed score (one decimal)
        "Output the score: 4 if the review is positive, else 1.",
    ],
)
def test_instructions_are_not_meta_talk(prompt):
    assert not talks_to_optimizer(prompt)


@pytest.mark.parametrize("score", [0.0, 0.5416, 1.0])
def test_a_score_listing_as_the_meta_prompts_print_it_is_meta_talk(score):
    # SCORE_ECHO follows updates.format_score: a reworded listing should update the pattern.
    from gpo_local.algorithm.updates import format_score, render_scored

    assert talks_to_optimizer(render_scored("Answer Yes or No.", score))
    assert talks_to_optimizer(f"Answer Yes or No. The score is {format_score(score)}.")


def test_every_meta_phrase_is_in_a_meta_prompt_template():
    # The phrases are the meta-prompts' own words: a template reworded should update the list.
    from pathlib import Path

    package = Path(__file__).resolve().parents[1] / "gpo_local"
    sources = " ".join(
        " ".join(p.read_text().split()).lower()
        for p in [
            package / "algorithm" / "updates.py",
            package / "replies" / "grammar.py",
            *sorted((package / "methods").glob("*.py")),
        ]
    )
    assert [p for p in META_PHRASES if p not in sources] == []


REPLIES = [  # one of each kind, by candidate index
    "<START>Say yes to every question please<END>",
    "",
    "<START>Say <START> yes<END>",
    "<START>" + " ".join(["word"] * 40),  # 41 words: truncated at max_tokens 40
    "<START>Say yes to every question please<END>",  # duplicate of the first
    "<START>difficulty 3; say yes. difficulty 4; say yes<END>",  # restates examples
    "<START>Answer yes and nothing else, please<END>",
    "<START>Change at most 10 words of the current prompt.<END>",  # meta talk
]


def run_gpo(tmp_path, optimizer, **config):
    config = GPOConfig(steps=2, candidates=len(REPLIES), optimizer_max_tokens=40, **config)
    gpo = build_method(tmp_path, config, optimizer)
    return gpo, gpo.run()


def test_drops_are_counted_by_reason_in_step_records(tmp_path, monkeypatch):
    calls = iter(range(1000))
    optimizer = ScriptedLLM(lambda messages, t, seed: REPLIES[next(calls) % len(REPLIES)])
    # The difficulty task's questions are short: let its references be long enough to leak.
    from gpo_local.replies import leaks

    monkeypatch.setattr(leaks, "MIN_WORDS", 4)
    monkeypatch.setattr(leaks, "NGRAM", 3)
    gpo, result = run_gpo(tmp_path, optimizer)
    steps = [json.loads(line) for line in (tmp_path / "trajectory.jsonl").read_text().splitlines()]
    steps = [r for r in steps if r["kind"] == "step"]
    expected = {"empty": 1, "truncated": 1, "tag_leak": 1, "leaks_example": 1, "meta_talk": 1, "duplicate": 1}
    assert [s["drops"] for s in steps] == [expected, expected]
    assert gpo.drop_totals() == {k: 2 * v for k, v in expected.items()}
    assert all(c["grammar"] is None for c in optimizer.calls)  # the fake does not support grammars
    assert "grammar_words" not in steps[0]


def test_leak_check_can_be_turned_off(tmp_path, monkeypatch):
    calls = iter(range(1000))
    optimizer = ScriptedLLM(lambda messages, t, seed: REPLIES[next(calls) % len(REPLIES)])
    from gpo_local.replies import leaks

    monkeypatch.setattr(leaks, "MIN_WORDS", 4)
    monkeypatch.setattr(leaks, "NGRAM", 3)
    gpo, _ = run_gpo(tmp_path, optimizer, leak_check=False)
    assert "leaks_example" not in gpo.drop_totals() and "meta_talk" not in gpo.drop_totals()


def test_a_model_with_grammar_support_gets_the_steps_grammar(tmp_path):
    optimizer = ScriptedLLM(lambda messages, t, seed: "<START>Say yes to all<END>")
    optimizer.supports_grammar = True
    gpo, _ = run_gpo(tmp_path, optimizer, max_prompt_words=30, grammar=True)
    steps = [
        r
        for r in map(json.loads, (tmp_path / "trajectory.jsonl").read_text().splitlines())
        if r["kind"] == "step"
    ]
    # Step 1: budget 50 (cosine, 2 steps) on the 1-word "Answer." -> 51, tightened to 30 words.
    assert steps[0]["grammar_words"] == 30
    assert optimizer.calls[0]["grammar"] == prompt_grammar(30)
    assert optimizer.calls[0]["grammar"].startswith(
        'root ::= "<START>" gap? word (gap word){0,29} gap? "<END>"'
    )


def test_cuts_at_the_cap_are_counted_in_the_step_record(tmp_path):
    # Step 1's cap is 30 words (as above): a 30-word reply ends at it mid-sentence.
    at_cap = "<START>Say yes. " + " ".join(["word"] * 28) + "<END>"
    replies = iter([at_cap, "<START>Say no.<END>"] * 100)
    optimizer = ScriptedLLM(lambda messages, t, seed: next(replies))
    optimizer.supports_grammar = True
    gpo, _ = run_gpo(tmp_path, optimizer, max_prompt_words=30, grammar=True)
    records = [json.loads(line) for line in (tmp_path / "trajectory.jsonl").read_text().splitlines()]
    steps = [r for r in records if r["kind"] == "step"]
    candidates = {r["prompt"] for r in records if r["kind"] == "candidate"}
    assert candidates == {"Say yes.", "Say no."}
    # 8 replies a step (len(REPLIES)), 4 of them at the cap; the repeats are dropped as
    # duplicates after the cut.
    assert steps[0]["cut_to_sentence"] == 4 and steps[0]["drops"] == {"duplicate": 6}
    # show and the report say how many kept prompts were cut (step 2's cap is 12 words: the
    # 30-word replies are dropped as too long there, not cut).
    from click.testing import CliRunner

    from gpo_local.app.cli import main
    from gpo_local.app.report import run_context
    from gpo_local.runs.rundata import load_run

    assert steps[1].get("cut_to_sentence") is None
    (tmp_path / "config.json").write_text("{}")
    cut = "; 4 kept, cut back to a full sentence at the word cap"
    assert run_context(load_run(tmp_path))["drops"].endswith(cut)
    shown = CliRunner().invoke(main, ["show", str(tmp_path)], terminal_width=200)
    assert shown.exit_code == 0 and cut in " ".join(shown.output.split())


def test_a_constrained_reply_gets_the_tokens_its_word_cap_needs(tmp_path):
    assert reply_token_limit(128, None) == 128
    assert reply_token_limit(128, 30) == 128  # 3 x 30 + 8 = 98 fit already
    assert reply_token_limit(128, 55) == 173
    # reasoning first (PE2): the limit for the reasoning, plus what the cap needs
    assert (
        reply_token_limit(128, 30, reasoning=True) == 128 + 98 and reply_token_limit(128, None, True) == 128
    )
    # A 61-word reply (61 tokens for the fake) is past --optimizer-max-tokens (40 here): it is
    # judged truncated or not against the raised limit instead.
    long_reply = "<START>" + " ".join(["word"] * 60)
    optimizer = ScriptedLLM(lambda messages, t, seed: long_reply)
    optimizer.supports_grammar = True
    gpo, _ = run_gpo(tmp_path, optimizer, max_prompt_words=30, grammar=True)
    # Step 1: cap 30 (as above) -> 98 tokens; step 2: budget 10 on "Answer." (every reply was
    # dropped, so it stays) -> cap 11 -> 41 tokens.
    assert [c["max_tokens"] for c in optimizer.calls] == [98] * len(REPLIES) + [41] * len(REPLIES)
    # The 61-word reply is over step 1's cap but not cut by its 98 tokens; step 2's 41 cut it.
    steps = [
        r
        for r in map(json.loads, (tmp_path / "trajectory.jsonl").read_text().splitlines())
        if r["kind"] == "step"
    ]
    assert [s["drops"] for s in steps] == [{"too_long": len(REPLIES)}, {"truncated": len(REPLIES)}]


def test_free_form_replies_keep_the_configured_token_limit(tmp_path):
    optimizer = ScriptedLLM(lambda messages, t, seed: "<START>Say yes to all<END>")
    run_gpo(tmp_path, optimizer, max_prompt_words=30, grammar=True)  # the fake cannot constrain
    assert {c["max_tokens"] for c in optimizer.calls} == {40}


@pytest.mark.parametrize("method", ["gpo", "ape", "apo", "opro", "pe2", "sgdm"])
def test_every_method_states_the_word_cap_to_a_constrained_optimizer(tmp_path, method):
    from gpo_local.methods import METHODS

    def run(directory, grammar):
        optimizer = ScriptedLLM(lambda messages, t, seed: "<START>Say yes to all<END>")
        optimizer.supports_grammar = True
        METHODS[method](
            task=difficulty_task(),
            task_llm=task_model(),
            optimizer_llm=optimizer,
            index=TrajectoryIndex(directory / "indexes", HashingEmbedder()),
            config=GPOConfig(steps=2, candidates=3, max_prompt_words=17, grammar=grammar),
            log=JsonlLog(directory / "trajectory.jsonl"),
        ).run()
        return optimizer

    # Free-form replies are not told the cap (they are dropped over it).
    free = run(tmp_path / "free", grammar=False)
    assert not any("Write at most" in c["messages"][-1]["content"] for c in free.calls)
    optimizer = run(tmp_path, grammar=True)
    asked = [c["messages"][-1]["content"] for c in optimizer.calls]
    stated = re.compile(r"\nWrite at most (\d+) words between the tags\.$")
    caps = [int(m.group(1)) for m in map(stated.search, asked) if m]
    # Step 1 of every method: --max-prompt-words 17 (the step size allows more); later steps of
    # the methods with a step size: the new current prompt (4 words) + the smaller step size.
    assert caps and caps[0] == 17 and all(cap <= 17 for cap in caps)
    # Every candidate meta-prompt states it; the calls for explanations (APO's reasons, SGDM's
    # feedback gradient) are not prompts and do not.
    explanations = [
        m
        for m in asked
        if m.endswith(
            ("Put each reason between <START> and <END>.", "Put the explanation between <START> and <END>.")
        )
    ]
    assert all(bool(stated.search(m)) != (m in explanations) for m in asked)
    assert bool(explanations) == (method in ("apo", "sgdm"))
    steps = [
        r
        for r in map(json.loads, (tmp_path / "trajectory.jsonl").read_text().splitlines())
        if r["kind"] == "step"
    ]
    assert all(stated.search(s["meta_prompt"]) for s in steps)


def test_no_grammar_sends_none(tmp_path):
    optimizer = ScriptedLLM(lambda messages, t, seed: "<START>Say yes to all<END>")
    optimizer.supports_grammar = True
    run_gpo(tmp_path, optimizer, grammar=False)
    assert {c["grammar"] for c in optimizer.calls} == {None}


def test_memo_keys_include_the_grammar(tmp_path):
    from gpo_local.backends.memo import Memo, MemoizedLLM, memo_key

    base = dict(max_tokens=8, temperature=1.0, seed=1, stop=("<END>",))
    assert memo_key("f", "hi", **base) == memo_key("f", "hi", grammar=None, **base)
    assert memo_key("f", "hi", grammar='root ::= "a"', **base) != memo_key("f", "hi", **base)
    inner = ScriptedLLM(lambda messages, t, seed: "<START>x<END>")
    inner.supports_grammar = True
    memo = MemoizedLLM(inner, Memo(tmp_path / "memo.sqlite"))
    memo.generate(["hi"], seeds=[1], grammar="g1", **{k: v for k, v in base.items() if k != "seed"})
    memo.generate(["hi"], seeds=[1], grammar="g1", **{k: v for k, v in base.items() if k != "seed"})
    memo.generate(["hi"], seeds=[1], grammar="g2", **{k: v for k, v in base.items() if k != "seed"})
    assert (memo.hits, memo.misses) == (1, 2)
    assert [c["grammar"] for c in inner.calls] == ["g1", "g2"]


def test_show_and_the_report_give_the_drop_counts(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from gpo_local.app.cli import main
    from gpo_local.app.report import run_context
    from gpo_local.replies import leaks
    from gpo_local.runs.rundata import load_run

    calls = iter(range(1000))
    monkeypatch.setattr(leaks, "MIN_WORDS", 4)
    monkeypatch.setattr(leaks, "NGRAM", 3)
    run_gpo(tmp_path, ScriptedLLM(lambda messages, t, seed: REPLIES[next(calls) % len(REPLIES)]))
    (tmp_path / "config.json").write_text("{}")
    # 2 steps of len(REPLIES) = 8 replies each.
    text = "12 of 16: 2 empty, 2 truncated, 2 tag leak, 2 leaks example, 2 meta talk, 2 duplicate"
    assert run_context(load_run(tmp_path))["drops"] == text
    shown = CliRunner().invoke(main, ["show", str(tmp_path)], terminal_width=200)
    assert shown.exit_code == 0 and f"dropped optimizer replies: {text}" in " ".join(shown.output.split())


def test_the_meta_talk_benchmark_counts_a_recorded_run(tmp_path, capsys):
    # A run recorded without the check (--no-leak-check) keeps its meta talk; the benchmark finds it.
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "meta_talk_bench", Path(__file__).resolve().parents[1] / "benchmarks" / "meta_talk.py"
    )
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    replies = iter(
        [
            "<START>Say yes to every question please<END>",
            "<START>The current prompt is too short; say yes to every question<END>",
        ]
        * 100
    )
    _, result = run_gpo(tmp_path, ScriptedLLM(lambda messages, t, seed: next(replies)), leak_check=False)
    (tmp_path / "config.json").write_text(json.dumps({"method": "gpo"}))
    (tmp_path / "result.json").write_text(json.dumps({"final": {"prompt": result.final.prompt}}))
    counts = bench.count_run(tmp_path)
    # 2 steps x 8 replies: the two texts alternate, so each step has 2 usable distinct replies
    # (6 duplicates); the meta-talk one is new at step 0 and repeated at step 1.
    assert counts["replies"] == 16 and counts["usable"] == 4
    assert counts["new"] == 2 and counts["flagged_new"] == 1 and counts["flagged_records"] == 2
    assert counts["flagged_final"] == int("current prompt" in result.final.prompt)
    assert bench.main([str(tmp_path)]) == 0
    row = [line.split() for line in capsys.readouterr().out.splitlines() if line.split()[:1] == ["gpo"]][0]
    assert row[:4] == ["gpo", "1", "2", "1"] and row[-2:] == ["25%", "12%"]  # 4 of 16 usable; 2 if dropped
