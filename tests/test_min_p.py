"""Min-p truncation of sampled optimizer replies (`--optimizer-min-p`, backends/slots.py): which
tokens can be drawn, what a run asks for, and the memo key."""

from collections import Counter

import numpy as np
import pytest
from conftest import build_method

from gpo_local.algorithm.config import GPOConfig
from gpo_local.backends.generation import GenerationRequest
from gpo_local.backends.memo import memo_key
from gpo_local.backends.slots import draw_token, new_job
from gpo_local.errors import ConfigError
from gpo_local.testing import ScriptedLLM

# Probabilities 0.5, 0.3, 0.15, 0.04, 0.01: at min-p 0.1 a token needs 0.05 (0.1 x 0.5).
PROBS = np.array([0.5, 0.3, 0.15, 0.04, 0.01])


def draws(min_p: float, temperature: float = 1.0, n: int = 4000) -> Counter:
    request = GenerationRequest(tokens=(1,), max_tokens=4, temperature=temperature, seed=7, min_p=min_p)
    job = new_job(0, request, grammar_sampler=None)
    logits = np.log(PROBS).astype(np.float32)
    return Counter(draw_token(job, logits) for _ in range(n))


def test_min_p_never_draws_a_token_below_its_share_of_the_likeliest():
    truncated = draws(0.1)
    assert set(truncated) == {0, 1, 2}  # 0.04 and 0.01 are below 0.05
    # The kept tokens keep their proportions: 0.5 : 0.3 : 0.15 renormalized over 0.95.
    assert truncated[0] / 4000 == pytest.approx(0.5 / 0.95, abs=0.03)
    assert truncated[2] / 4000 == pytest.approx(0.15 / 0.95, abs=0.03)
    assert set(draws(0.0)) == {0, 1, 2, 3, 4}  # off: the whole distribution
    # The cut is made before the temperature (as llama.cpp's chain does): a hotter draw flattens
    # the kept tokens but does not bring the cut ones back.
    assert set(draws(0.1, temperature=3.0)) == {0, 1, 2}


def test_min_p_leaves_greedy_decoding_alone_and_rejects_out_of_range_values():
    request = GenerationRequest(tokens=(1,), max_tokens=4, temperature=0.0, min_p=0.5)
    assert draw_token(new_job(0, request, grammar_sampler=None), np.log(PROBS).astype(np.float32)) == 0
    with pytest.raises(ValueError, match="min_p"):
        GenerationRequest(tokens=(1,), max_tokens=4, temperature=1.0, min_p=1.0)
    with pytest.raises(ConfigError, match=r"^optimizer_min_p must be below 1 \(got 1.5\)"):
        GPOConfig(optimizer_min_p=1.5).validate()


def test_memo_keys_include_min_p_only_for_a_sampled_truncated_reply():
    base = dict(max_tokens=8, seed=1, stop=())
    sampled = memo_key("f", "hi", temperature=1.0, **base)
    assert memo_key("f", "hi", temperature=1.0, min_p=0.0, **base) == sampled  # keys without it unchanged
    assert memo_key("f", "hi", temperature=1.0, min_p=0.05, **base) != sampled
    assert memo_key("f", "hi", temperature=1.0, min_p=0.05, **base) != memo_key(
        "f", "hi", temperature=1.0, min_p=0.1, **base
    )
    greedy = memo_key("f", "hi", temperature=0.0, **base)
    assert memo_key("f", "hi", temperature=0.0, min_p=0.05, **base) == greedy


@pytest.mark.parametrize(
    "own_sampler, min_p, sent", [(True, 0.05, 0.05), (False, 0.05, 0.0), (True, None, 0.0)]
)
def test_a_run_asks_with_its_min_p_only_a_model_with_its_own_sampler(tmp_path, own_sampler, min_p, sent):
    optimizer = ScriptedLLM(lambda messages, temperature, seed: "<START>Answer the question.<END>")
    optimizer.supports_grammar = own_sampler
    options = {} if min_p is None else {"optimizer_min_p": min_p}  # None: the default, off (README, "Min-p")
    build_method(
        tmp_path, GPOConfig(steps=2, candidates=2, optimizer_max_tokens=40, **options), optimizer
    ).run()
    candidate_calls = [c for c in optimizer.calls if c["temperature"] > 0]
    assert candidate_calls
    assert {c["min_p"] for c in candidate_calls} == {sent}
