"""The batched decoder's admission plan (backends/slots.py), without a model."""

from gpo_local.backends.batched import GenerationRequest
from gpo_local.backends.slots import (
    FREE,
    GEN,
    IDLE,
    PREFILL,
    Job,
    Slot,
    best_source,
    choose_token,
    plan_admission,
    plan_batch,
)


def idle(seq_id, kv, last_used=0):
    return Slot(seq_id, state=IDLE, kv=list(kv), last_used=last_used)


def running(seq_id, prompt, state=GEN, kv=()):
    return Slot(seq_id, state=state, kv=list(kv), job=Job(0, GenerationRequest(tuple(prompt), max_tokens=4)))


def test_a_second_round_takes_over_the_idle_first_round_in_place():
    first = idle(0, [1, 2, 3, 4])
    plan = plan_admission([first, Slot(1)], (1, 2, 3, 4, 5, 6))
    assert plan.target is first and plan.take_over and plan.reuse == 4 and not plan.evict


def test_a_partial_match_copies_into_a_free_slot_and_keeps_the_idle_kv():
    source, free = idle(0, [1, 2, 3, 4]), Slot(1)
    plan = plan_admission([source, free], (1, 2, 9))
    assert plan.target is free and plan.source is source and plan.reuse == 2
    assert not plan.take_over and not plan.wait and not plan.evict


def test_without_a_free_slot_the_idle_source_is_taken_over():
    source = idle(0, [1, 2, 3, 4])
    plan = plan_admission([source, running(1, [7, 8])], (1, 2, 9))
    assert plan.target is source and plan.take_over and plan.reuse == 2


def test_at_least_one_prompt_token_is_left_to_decode():
    source = idle(0, [1, 2, 3])
    assert best_source([source], (1, 2, 3)) == (source, 2)


def test_a_prefix_still_being_prefilled_is_waited_for():
    prefilling = running(0, [1, 2, 3, 4, 5], state=PREFILL, kv=[1, 2])
    plan = plan_admission([prefilling, Slot(1)], (1, 2, 3, 4, 9))
    assert plan.target.seq_id == 1 and plan.source is prefilling and plan.reuse == 4 and plan.wait


def test_the_least_recently_used_idle_slot_is_evicted_but_never_the_source():
    source, old, newer = (
        idle(0, [1, 2, 3], last_used=1),
        idle(1, [5, 6], last_used=2),
        idle(2, [7], last_used=3),
    )
    busy = running(3, [8, 9])
    plan = plan_admission([source, old, newer, busy], (1, 2, 4))
    # the source is idle and no slot is free: taken over in place
    assert plan.target is source and plan.take_over
    plan = plan_admission([old, newer, busy], (4, 4, 4))
    assert plan.target is old and plan.evict and plan.reuse == 0 and plan.source is None


def test_no_slot_when_every_slot_is_busy():
    plan = plan_admission([running(0, [1]), running(1, [2], state=PREFILL)], (3, 4))
    assert plan.target is None


def test_ties_prefer_an_idle_source():
    busy, quiet = running(0, [1, 2, 3, 8]), idle(1, [1, 2, 3, 9])
    assert best_source([busy, quiet], (1, 2, 3, 7)) == (quiet, 3)
    assert FREE == "free"


def test_a_batch_carries_generating_sequences_first_then_prompt_tokens_that_fit():
    prefill = running(0, [1, 2, 3, 4, 5], state=PREFILL)
    prefill.pending = [1, 2, 3, 4, 5]
    gen = running(1, [9], kv=[9, 8])
    gen.pending = [7]
    planned = plan_batch([prefill, gen], n_batch=4)
    assert [(s.seq_id, k, last) for s, k, last in planned] == [(1, 1, True), (0, 3, False)]
    assert [(s.seq_id, k, last) for s, k, last in plan_batch([prefill, gen], n_batch=8)] == [
        (1, 1, True),
        (0, 5, True),
    ]


def test_greedy_and_seeded_token_choice():
    import numpy as np

    job = Job(0, GenerationRequest((1,), max_tokens=1))
    assert choose_token(job, np.array([0.1, 2.0, 0.3], dtype=np.float32)) == 1
    draws = []
    for _ in range(2):
        sampled = Job(
            0, GenerationRequest((1,), max_tokens=1, temperature=1.0, seed=7), rng=np.random.default_rng(7)
        )
        draws.append([choose_token(sampled, np.zeros(50, dtype=np.float32)) for _ in range(5)])
    assert draws[0] == draws[1] and len(set(draws[0])) > 1
