"""The batched decoder's slots and its admission plan, without llama.cpp (batched.py runs the plan).

Prefix planning with a token trie: pending requests are visited in lexicographic token
order, which is a depth-first walk of their token trie: requests sharing the longest prefixes
are admitted next to each other. Each admitted request copies the longest prefix it has in
common with any slot (a running prompt, a sequence still being prefilled, or an idle finished
one) and only decodes the rest; a request whose prefix is still being decoded by another slot
waits for it and copies it once it is in the cache, so every trie edge is decoded once.

A slot is one llama.cpp sequence: the tokens its KV cache holds, the tokens still to decode,
and its state. Admitting a request means choosing the slot it goes to and the prefix it reuses:

* the source is the slot sharing the longest common prefix with the request, counting what a
  slot holds or will hold once its prompt is decoded; at least one prompt token is always left
  to decode, so that the request gets its own logits; on ties an idle source wins (it can be
  taken over without a copy);
* an idle source is taken over in place when the request extends all of its KV (a second round
  extending the first) or when no slot is free; otherwise the request goes to a free slot, else
  to the least recently used idle slot other than the source (evicted), and copies the shared
  prefix, or waits for it when the source is still decoding it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from gpo_local.backends.copy_guard import RunBan
from gpo_local.backends.generation import GenerationRequest

# Slot states.
FREE, WAITING, PREFILL, GEN, IDLE = "free", "waiting", "prefill", "gen", "idle"


@dataclass(eq=False)
class Job:
    index: int
    request: GenerationRequest
    reused: int = 0
    generated: list[int] = field(default_factory=list)
    text_bytes: bytearray = field(default_factory=bytearray)
    rng: np.random.Generator | None = None
    grammar: object | None = None  # constrained.GrammarSampler of a request with a grammar
    ban: RunBan | None = None  # copy_guard.RunBan of a request with banned runs

    def release(self) -> None:
        """Free the job's grammar state (llama.cpp memory) once it has finished."""
        if self.grammar is not None:
            self.grammar.free()


def new_job(index: int, req: GenerationRequest, grammar_sampler: Callable[[str], object]) -> Job:
    """The job of a request: its seeded generator when it samples, its grammar state
    (`grammar_sampler(grammar)`, constrained.GrammarSampler) when it has a grammar, its run ban
    (copy_guard.RunBan) when it has banned runs."""
    job = Job(index=index, request=req)
    if req.temperature > 0:
        job.rng = np.random.default_rng(req.seed)
    if req.grammar is not None and req.max_tokens > 0:
        job.grammar = grammar_sampler(req.grammar)
    if req.banned_runs:
        job.ban = RunBan(req.banned_runs)
    return job


@dataclass(eq=False)
class Slot:
    seq_id: int
    state: str = FREE
    kv: list[int] = field(default_factory=list)  # tokens in the KV cache at positions 0..len-1
    pending: list[int] = field(default_factory=list)  # tokens still to decode, in order
    job: Job | None = None
    src: "Slot | None" = None  # WAITING: copy src's KV [0, src_len) once src has decoded it
    src_len: int = 0
    last_used: int = 0

    def planned(self) -> list[int]:
        """Tokens this slot's KV will hold once its prompt is decoded (what others may share)."""
        if self.state in (WAITING, PREFILL):
            return list(self.job.request.tokens)
        return self.kv


@dataclass(frozen=True)
class Admission:
    """Where a request goes: `target` (None: no slot can take it now), the prefix length it
    reuses, the slot it shares it with, and how: in place (`take_over`), after evicting the
    target's idle KV (`evict`), or once the source has decoded the prefix (`wait`)."""

    target: Slot | None
    reuse: int = 0
    source: Slot | None = None
    take_over: bool = False
    evict: bool = False
    wait: bool = False


def best_source(slots: Sequence[Slot], tokens: Sequence[int]) -> tuple[Slot | None, int]:
    """The slot sharing the longest prefix with `tokens` (module docstring) and that length."""
    best, best_len = None, 0
    for s in slots:
        if s.state == FREE:
            continue
        n = min(_common_prefix(tokens, s.planned()), len(tokens) - 1)
        if n > best_len or (
            n == best_len and n > 0 and s.state == IDLE and best is not None and best.state != IDLE
        ):
            best, best_len = s, n
    return best, best_len


def free_slot(slots: Sequence[Slot], exclude: Slot | None) -> tuple[Slot | None, bool]:
    """A free slot, else the least recently used idle one but `exclude`; and whether it must be
    evicted first."""
    for s in slots:
        if s.state == FREE:
            return s, False
    idle = [s for s in slots if s.state == IDLE and s is not exclude]
    if not idle:
        return None, False
    return min(idle, key=lambda s: s.last_used), True


def plan_admission(slots: Sequence[Slot], tokens: Sequence[int]) -> Admission:
    """The admission of a request with prompt `tokens` (module docstring)."""
    best, best_len = best_source(slots, tokens)
    if (
        best is not None
        and best.state == IDLE
        and (best_len == len(best.kv) or not any(s.state == FREE for s in slots))
    ):
        return Admission(best, best_len, best, take_over=True)
    target, evict = free_slot(slots, exclude=best if best_len > 0 else None)
    if target is None:
        return Admission(None)
    if best is None or best_len == 0:
        return Admission(target, 0, None, evict=evict)
    return Admission(target, best_len, best, evict=evict, wait=len(best.kv) < best_len)


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def plan_batch(busy: Sequence[Slot], n_batch: int) -> list[tuple[Slot, int, bool]]:
    """What one llama_decode carries: (slot, pending tokens it submits, whether it gets logits),
    in batch order. Generating sequences first, so every live sequence advances one token per
    call; then prompt tokens of prefilling slots while the batch has room. A slot gets logits
    when its last pending token is in the batch (they choose its next token)."""
    planned, n = [], 0
    for s in [s for s in busy if s.state == GEN] + [s for s in busy if s.state == PREFILL]:
        room = n_batch - n
        if room <= 0:
            break
        k = min(room, len(s.pending))
        planned.append((s, k, k == len(s.pending)))
        n += k
    return planned


def choose_token(job: Job, logits: np.ndarray) -> int:
    """The next token of a job: `draw_token`, without the tokens that would complete a banned
    run (copy_guard.py) and restricted to what the job's grammar allows
    (constrained.py) when it has them."""
    guarded = job.ban.apply(job.generated, logits) if job.ban is not None else logits
    if job.grammar is not None:
        return job.grammar.choose(
            lambda z: draw_token(job, z), guarded, job.request.temperature <= 0, unguarded=logits
        )
    return draw_token(job, guarded)


def draw_token(job: Job, logits: np.ndarray) -> int:
    """Greedy: the argmax. Sampled: softmax(logits / T) in float64, an inverse-CDF draw of one
    uniform from the request's own seeded generator (independent of the batch it is in). With
    min_p, the tokens less likely than min_p times the likeliest one are left out first (min-p
    truncation, before the temperature as in llama.cpp's sampler chain): at temperature 1 a
    small optimizer otherwise draws, now and then, a token from the long tail (another script,
    a code identifier), and the rest of its reply follows that token."""
    t = job.request.temperature
    if t <= 0:
        return int(np.argmax(logits))
    z = logits.astype(np.float64)
    if job.request.min_p > 0:
        z = np.where(z >= z.max() + np.log(job.request.min_p), z, -np.inf)
    z = z / t
    p = np.exp(z - z.max())
    c = np.cumsum(p)
    return int(min(np.searchsorted(c, job.rng.random() * c[-1], side="right"), len(c) - 1))
