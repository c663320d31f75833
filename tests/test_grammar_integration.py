"""Grammar-constrained optimizer replies with the real bundled model (SmolLM2-135M-Instruct)."""

import pytest
from conftest import bundled_model_path, difficulty_task

from gpo_local.algorithm.updates import render_update
from gpo_local.backends.catalog import load_catalog
from gpo_local.backends.llama_cpp import LlamaCppModel
from gpo_local.replies.drops import classify
from gpo_local.replies.grammar import prompt_grammar, word_cap

pytestmark = pytest.mark.integration

MODEL_PATH = bundled_model_path()


@pytest.fixture(scope="module")
def model():
    return LlamaCppModel(MODEL_PATH, n_ctx=1024, n_threads=2, parallel=8)


def meta_prompt(budget):
    task = difficulty_task()
    return render_update(
        method="generate-without",
        history=[],
        current="Let's think step by step.",
        exemplars=task.split("format"),
        position="Q_end",
        budget=budget,
    )


@pytest.mark.parametrize("budget", [3, 12])
def test_every_constrained_reply_is_a_prompt_within_its_word_cap(model, budget):
    cap = word_cap("Let's think step by step.", budget, None)
    replies = model.generate(
        [meta_prompt(budget)] * 8,
        max_tokens=160,
        temperature=1.0,
        seeds=list(range(8)),
        stop=("<END>",),
        grammar=prompt_grammar(cap),
    )
    for reply in replies:
        assert reply.startswith("<START>"), reply
        prompt, reason = classify(reply, require_tags=True, max_words=cap)
        assert reason is None and prompt, reply
        assert 1 <= len(prompt.split()) <= cap and "<" not in prompt and ">" not in prompt


def _accepts(model, grammar: str, text: str) -> bool:
    """Whether the grammar lets the model's tokens of `text` through, one token at a time (the
    check the batched decoder makes on each drawn token)."""
    from gpo_local.backends.constrained import GrammarSampler

    decoder = model.decoder
    sampler = GrammarSampler(decoder._lc, decoder._vocab, grammar, decoder.n_vocab)
    try:
        for token in model.llama.tokenize(text.encode("utf-8"), add_bos=False, special=False):
            if not sampler.allows(token):
                return False
            decoder._lc.llama_sampler_accept(sampler._smpl, token)
        return True
    finally:
        sampler.free()


def test_the_grammar_takes_line_breaks_and_keeps_tags_and_the_cap_out(model):
    grammar = prompt_grammar(6)
    assert _accepts(
        model, grammar, "<START>Read the steps.\n- Count them.\n<END>"
    )  # a list, a closing newline
    assert _accepts(model, grammar, "<START>\nOne two three four five six<END>")  # 6 words: the cap
    assert not _accepts(model, grammar, "<START>One two three four five six seven<END>")
    assert not _accepts(model, grammar, "<START>Answer <Prompt> now<END>")
    assert not _accepts(model, grammar, "<START>One\n\n\n\ntwo<END>")  # a gap is at most 3 characters


def test_reasoning_comes_before_the_tags_and_never_inside_them(model):
    grammar = prompt_grammar(6, reasoning=True)
    assert _accepts(model, grammar, "The prompt never names the answer.\nSo:\n<START>Answer yes or no.<END>")
    assert _accepts(model, grammar, "<START>Answer yes.<END>")  # no reasoning at all
    assert not _accepts(
        model, grammar, "Replace <Prompt> with: <START>Answer.<END>"
    )  # no '<' in the reasoning
    assert not _accepts(model, grammar, "So: <START>One two three four five six seven<END>")  # the cap holds
    # (Sampled replies of the 135M to a GPO meta-prompt ramble past any limit before the tags:
    # benchmarks/reasoning_grammar.py measures the 1.5B on PE2's.)


def test_constrained_sampling_is_seeded_and_greedy_is_deterministic(model):
    grammar = prompt_grammar(10)
    twice = [
        model.generate(
            [meta_prompt(5)] * 2,
            max_tokens=80,
            temperature=1.0,
            seeds=[7, 8],
            stop=("<END>",),
            grammar=grammar,
        )
        for _ in range(2)
    ]
    assert twice[0] == twice[1]
    greedy = [
        model.generate([meta_prompt(5)], max_tokens=80, stop=("<END>",), grammar=grammar)[0] for _ in range(2)
    ]
    assert greedy[0] == greedy[1] and classify(greedy[0], require_tags=True, max_words=10)[1] is None


def test_unconstrained_replies_of_the_small_model_are_still_checked(model):
    """Without a grammar the same requests give free-form replies; whatever they are, each is
    either a candidate or dropped with a reason (the rejection rules of drops.py)."""
    replies = model.generate(
        [meta_prompt(3)] * 8, max_tokens=60, temperature=1.0, seeds=list(range(8)), stop=("<END>",)
    )
    for reply in replies:
        prompt, reason = classify(reply, require_tags=True, max_words=8, truncated=len(reply.split()) >= 55)
        assert (prompt is None) != (reason is None)
        if prompt is not None:
            assert len(prompt.split()) <= 8 and "<START>" not in prompt


def _optimizer_1_5b():
    """The 1.5B pack's GGUF when its chunks (or an assembled file) are on this machine, else None.
    Resolved at import, so under the real $GPO_LOCAL_HOME: assembled there once, then trusted."""
    from gpo_local.errors import ModelError

    try:
        return load_catalog()["qwen2.5-coder-1.5b-instruct"].resolve()
    except ModelError:
        return None


QWEN_1_5B = _optimizer_1_5b()


@pytest.mark.skipif(
    QWEN_1_5B is None,
    reason="the qwen2.5-coder-1.5b-instruct chunk packages are not installed (pip install '.[models]')",
)
def test_the_1_5b_optimizer_gives_usable_constrained_candidates():
    optimizer = LlamaCppModel(QWEN_1_5B, n_ctx=1024, n_threads=2, parallel=4)
    cap = word_cap("Let's think step by step.", 10, None)
    replies = optimizer.generate(
        [meta_prompt(10)] * 4,
        max_tokens=64,
        temperature=1.0,
        seeds=list(range(4)),
        stop=("<END>",),
        grammar=prompt_grammar(cap),
    )
    prompts = [classify(reply, require_tags=True, max_words=cap)[0] for reply in replies]
    assert all(p and 1 <= len(p.split()) <= cap for p in prompts), replies


def test_a_guarded_reply_does_not_copy_the_example(model):
    """Asked to repeat a text, the model copies it; with the text as the one example to avoid,
    no run of 6 of its tokens is completed (the sampler's ban, backends/copy_guard.py)."""
    from gpo_local.backends.copy_guard import CopyGuard, banned_runs

    example = (
        "Take 6 steps. Turn right. Turn right. Take 7 steps. Turn around. Take 1 step. "
        "Take 9 steps left. Take 4 steps backward."
    )
    ask = [f"Repeat the following text exactly, word for word.\n\n{example}"]
    guard = CopyGuard(avoid=(example, "Yes"))
    banned = set(banned_runs(guard, lambda text: model._tokenize(text, False)))

    def copied_runs(reply):
        tokens = model._tokenize(reply, False)
        return {tuple(tokens[i : i + guard.run]) for i in range(len(tokens) - guard.run + 1)} & banned

    free = model.generate(ask, max_tokens=48)[0]
    guarded = model.generate(ask, max_tokens=48, copy_guard=guard)[0]
    assert len(copied_runs(free)) >= 5, free  # the task is one the model copies on
    assert not copied_runs(guarded), guarded
    assert guarded.strip() and guarded != free
