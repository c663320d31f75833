"""The copy guard (backends/copy_guard.py): which token runs a reply may not complete, how the
sampler bans them, and what a run asks for."""

import json

import numpy as np
import pytest
from conftest import build_method

from gpo_local.algorithm.config import GPOConfig
from gpo_local.backends.copy_guard import CopyGuard, RunBan, banned_runs
from gpo_local.backends.generation import GenerationRequest
from gpo_local.backends.slots import choose_token, new_job
from gpo_local.testing import ScriptedLLM

VOCAB = {w: i for i, w in enumerate("a b c d e f g h x y z w".split())}


def tokenize(text):
    return [VOCAB[w] for w in text.split()]


def ids(words):
    return tuple(VOCAB[w] for w in words.split())


def test_runs_of_the_examples_are_banned_unless_the_current_prompt_has_them():
    guard = CopyGuard(avoid=("a b c d e f g", "a b c x y z w"), allow=("h d e f h",), run=3)
    runs = set(banned_runs(guard, tokenize))
    # "a b c", in both examples (the task's wording), is banned too; "d e f", which the current
    # prompt (allowed) says, is not.
    assert runs == {
        ids("a b c"),
        ids("b c d"),
        ids("c d e"),
        ids("e f g"),
        ids("b c x"),
        ids("c x y"),
        ids("x y z"),
        ids("y z w"),
    }
    assert banned_runs(CopyGuard(avoid=("a b",), run=3), tokenize) == ()  # shorter than a run


def test_the_ban_sets_the_completing_tokens_to_minus_infinity_and_only_them():
    ban = RunBan([ids("b c d"), ids("b c x"), ids("e f g")])
    logits = np.arange(len(VOCAB), dtype=np.float32)
    guarded = ban.apply(list(ids("a b c")), logits)
    assert np.isneginf(guarded[[VOCAB["d"], VOCAB["x"]]]).all()
    assert np.isfinite(np.delete(guarded, [VOCAB["d"], VOCAB["x"]])).all()
    assert logits[VOCAB["d"]] == VOCAB["d"]  # the caller's logits are not changed
    assert ban.apply(list(ids("c b")), logits) is logits  # no banned run starts with "c b"
    assert ban.apply([VOCAB["c"]], logits) is logits  # too short to complete a run
    # A ban that would leave no token is not applied.
    only_g = np.full(len(VOCAB), -np.inf, dtype=np.float32)
    only_g[VOCAB["g"]] = 1.0
    assert ban.apply(list(ids("e f")), only_g) is only_g


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_the_decoder_choice_skips_a_banned_token(temperature):
    request = GenerationRequest(
        tokens=(1,), max_tokens=4, temperature=temperature, seed=3, banned_runs=(ids("a b"),)
    )
    job = new_job(0, request, grammar_sampler=None)
    job.generated = [VOCAB["a"]]
    logits = np.full(len(VOCAB), -30.0, dtype=np.float32)
    logits[VOCAB["b"]], logits[VOCAB["c"]] = 10.0, 5.0  # "b" would win by far
    assert choose_token(job, logits) == VOCAB["c"]
    job.generated = [VOCAB["c"]]  # after another token "b" is free again
    assert choose_token(job, logits) == VOCAB["b"]


def run_gpo(tmp_path, optimizer, **config):
    gpo = build_method(
        tmp_path, GPOConfig(steps=2, candidates=2, optimizer_max_tokens=40, **config), optimizer
    )
    return gpo, gpo.run()


def test_a_run_guards_its_candidate_replies_against_its_format_exemplars(tmp_path):
    optimizer = ScriptedLLM(lambda messages, t, seed: f"<START>Say yes to all, {seed % 7}<END>")
    optimizer.supports_grammar = True
    gpo, _ = run_gpo(tmp_path, optimizer)
    shown = tuple(t for e in gpo.exemplars for t in (e.input, e.shown_target))
    assert shown and all(e.input.startswith("format-") or "difficulty" in e.input for e in gpo.exemplars)
    records = [json.loads(line) for line in (tmp_path / "trajectory.jsonl").read_text().splitlines()]
    currents = [r["prompt"] for r in records if r["kind"] == "step"]
    guards = [c["copy_guard"] for c in optimizer.calls]
    assert all(g is not None and g.avoid == shown for g in guards)
    # Each step allows what its current prompt says: "Answer." first, then the step-1 choice.
    assert [g.allow for g in guards[::2]] == [("Answer.",), (currents[0],)]


def test_no_copy_guard_without_the_option_or_a_sampler_of_its_own(tmp_path):
    optimizer = ScriptedLLM(lambda messages, t, seed: "<START>Say yes to all<END>")
    optimizer.supports_grammar = True
    run_gpo(tmp_path / "off", optimizer, copy_guard=False)
    plain = ScriptedLLM(lambda messages, t, seed: "<START>Say yes to all<END>")
    run_gpo(tmp_path / "plain", plain)
    assert {c["copy_guard"] for c in optimizer.calls} == {None} == {c["copy_guard"] for c in plain.calls}


def test_memo_keys_include_the_copy_guard(tmp_path, monkeypatch):
    from gpo_local.backends.memo import Memo, MemoizedLLM, memo_key

    base = dict(max_tokens=8, temperature=1.0, seed=1, stop=("<END>",))
    guard = CopyGuard(avoid=("one example",), allow=("the prompt",))
    assert memo_key("f", "hi", copy_guard=None, **base) == memo_key("f", "hi", **base)
    assert memo_key("f", "hi", copy_guard=guard, **base) != memo_key("f", "hi", **base)
    assert memo_key("f", "hi", copy_guard=guard, **base) == memo_key(
        "f", "hi", copy_guard=CopyGuard(avoid=["one example"], allow=["the prompt"]), **base
    )
    # Replies stored under another banning rule are not reused.
    from gpo_local.backends import copy_guard

    before = memo_key("f", "hi", copy_guard=guard, **base)
    monkeypatch.setattr(copy_guard, "RULE", "another rule")
    assert memo_key("f", "hi", copy_guard=guard, **base) != before
    inner = ScriptedLLM(lambda messages, t, seed: "<START>x<END>")
    inner.supports_grammar = True
    memo = MemoizedLLM(inner, Memo(tmp_path / "memo.sqlite"))
    ask = dict(max_tokens=8, temperature=1.0, seeds=[1], stop=("<END>",))
    memo.generate(["hi"], copy_guard=guard, **ask)
    memo.generate(["hi"], copy_guard=guard, **ask)
    memo.generate(["hi"], **ask)
    assert (memo.hits, memo.misses) == (1, 2)
    assert [c["copy_guard"] for c in inner.calls] == [guard, None]
