"""Batched multi-sequence decoding on one llama.cpp context (the evaluator's hot path).

Why this exists: scoring a GPO step means generating answers for (candidate prompt x dev
question) pairs whose prompts share long prefixes (chat header, question or instruction,
few-shot demonstrations). A sequential ``Llama.create_completion`` loop decodes every prompt
from the first differing token and generates one token per forward pass, which leaves most of a
CPU's matmul throughput unused. Here every forward pass carries many sequences at once:

* **One context, many sequences.** The context is created from the already loaded model
  (``llama._model.model``) with ``n_seq_max`` sequences. ``llama_memory_seq_cp`` shares a
  decoded prefix. By default each sequence has its own KV stream (``kv_unified=False``): that
  is what keeps greedy output bit-identical to a sequential run under continuous batching (see
  ``__init__`` for the measurement); ``kv_unified=True`` gives the unified cache, where sharing
  moves no data but results depend slightly on what else was in the cache.
* **Prefix planning with a token trie** (slots.py): requests sharing the longest prefixes are
  admitted next to each other, each copies the longest prefix any slot holds, so every trie edge
  is decoded once.
* **One batch per step.** Every live sequence's next token plus as many prompt-suffix tokens as
  fit in ``n_batch`` go into a single ``llama_batch``; logits are requested only where a token
  will be chosen.
* **Continuous batching.** A finished sequence's slot is refilled from the queue at once.
* **Idle slots keep their KV (LRU).** A later request that starts with an earlier request's
  prompt + generated tokens (the second extraction round) takes over that slot, trims it to the
  common prefix and decodes only the new turn. Reuse is reported as ``reused_prompt_tokens``.

Greedy choice is ``argmax`` of the logits. Sampling draws from ``softmax(logits / temperature)``
with a ``numpy.random.Generator`` seeded per request, so the draw sequence of a request does not
depend on which other requests share its batches (logits themselves may differ in the last bits
with batch shape, like any batched float computation).
"""

from __future__ import annotations

import ctypes
import time
from collections import deque
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

# Its requests and results, context settings, and slot planning (pure, tested without a model).
from gpo_local.backends.batch_rows import fill_batch, pad_lone_token
from gpo_local.backends.constrained import GrammarSampler  # grammar-constrained replies
from gpo_local.backends.context import context_params, sequence_limit
from gpo_local.backends.generation import Completion, DecoderStats, GenerationRequest
from gpo_local.backends.slots import (
    FREE,
    GEN,
    IDLE,
    PREFILL,
    WAITING,
    Job,
    Slot,
    choose_token,
    new_job,
    plan_admission,
    plan_batch,
)

if TYPE_CHECKING:  # heavy import kept lazy: importing gpo_local must not require llama_cpp
    import llama_cpp

__all__ = ["GenerationRequest", "Completion", "DecoderStats", "BatchedDecoder"]


class BatchedDecoder:
    """Generate many requests at once on one multi-sequence llama.cpp context.

    ``llama`` supplies the loaded model, tokenizer vocabulary and context settings (threads,
    batch sizes, attention type, KV types); the decoder builds its own context next to the
    Llama's and never touches the Llama's KV cache.

    ``n_ctx`` (total KV cells) defaults to ``llama.n_ctx() * n_seq_max``: each sequence may use
    up to ``llama.n_ctx()`` positions (the same per-request limit the caller accepted when loading
    the Llama, enforced in ``generate``), and at most ``n_seq_max`` sequences (running or idle)
    hold KV at once. With per-sequence streams llama.cpp gives every stream ``n_ctx /
    n_seq_max`` cells, so this is exactly one Llama-sized context per slot, and equal cell
    counts also make a lone sequence take the same attention kernel as the sequential path.
    With the unified cache it is the worst case with no sharing, so llama_decode never runs out.
    Memory is about 23 KB per cell for SmolLM2-135M in f16 (n_ctx 1024 x 16 slots: ~380 MB);
    compute only follows the cells in use. Pass a smaller ``n_ctx`` to save memory; when
    llama.cpp reports a full cache, idle slots are evicted (LRU) and the step retried.

    Exactness: with the defaults (flash attention, ``n_ubatch=63``, ``kv_unified=False``),
    greedy results equal a sequential ``create_completion`` on a Llama loaded with
    ``flash_attn=True`` token for token whenever the sequential run also stays below 64-row
    prompt batches and 512 KV cells; beyond that the two paths use different attention
    kernels and agree only up to rounding (usually the same text).

    Not thread-safe: one ``generate`` call at a time.
    """

    def __init__(
        self,
        llama: "llama_cpp.Llama",
        *,
        n_seq_max: int = 16,
        n_ctx: int | None = None,
        flash_attn: bool = True,
        n_ubatch: int | None = 63,
        kv_unified: bool = False,
        keep_idle: bool = True,
        seq_ctx: int | None = None,
    ):
        import llama_cpp as lc

        if n_seq_max < 1:
            raise ValueError(f"n_seq_max must be >= 1, got {n_seq_max}")
        self._lc = lc
        self._llama = llama
        self._model = llama._model.model
        self._vocab = llama._model.vocab
        self.n_vocab = lc.llama_vocab_n_tokens(self._vocab)
        self.n_seq_max = n_seq_max
        self.per_seq_ctx = sequence_limit(llama.n_ctx(), seq_ctx)  # per request; seq_ctx: lower
        self.keep_idle = keep_idle
        self.stats = DecoderStats()

        self.kv_unified = kv_unified
        total_ctx = n_ctx if n_ctx is not None else self.per_seq_ctx * n_seq_max
        params = context_params(
            lc,
            llama,
            n_seq_max=n_seq_max,
            n_ctx=total_ctx,
            flash_attn=flash_attn,
            n_ubatch=n_ubatch,
            kv_unified=kv_unified,
        )
        ctx = lc.llama_init_from_model(self._model, params)
        if ctx is None:
            raise RuntimeError(f"llama_init_from_model failed (n_ctx={params.n_ctx}, n_seq_max={n_seq_max})")
        self._ctx = ctx
        self._mem = lc.llama_get_memory(ctx)
        self.n_ctx = lc.llama_n_ctx(ctx)
        self.n_batch = lc.llama_n_batch(ctx)
        self._batch = lc.llama_batch_init(self.n_batch, 0, 1)
        self._slots = [Slot(seq_id=i) for i in range(n_seq_max)]
        self._scratch_seq = n_seq_max  # only used with kv_unified
        self._clock = 0  # LRU clock for idle slots
        self._pieces: dict[int, bytes] = {}
        self._piece_buf = ctypes.create_string_buffer(256)

    # ----------------------------------------------------------------- lifecycle
    def close(self) -> None:
        if getattr(self, "_ctx", None) is not None:
            self._lc.llama_batch_free(self._batch)
            self._lc.llama_free(self._ctx)
            self._ctx = None

    def __enter__(self) -> "BatchedDecoder":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    def reset(self) -> None:
        """Forget all cached KV (idle slots included)."""
        self._lc.llama_memory_clear(self._mem, True)
        self._slots = [Slot(seq_id=i) for i in range(self.n_seq_max)]

    # ----------------------------------------------------------------- public API
    def generate(
        self,
        requests: Sequence[GenerationRequest],
        *,
        on_complete: Callable[[int, Completion], None] | None = None,
        follow_up: Callable[[int, Completion], GenerationRequest | None] | None = None,
    ) -> list[Completion]:
        """Run all requests to completion; results are in request order.

        ``on_complete(index, completion)`` is called as each request finishes (in finishing
        order), e.g. to write a memo cache incrementally.

        ``follow_up(index, completion)`` may return a next-turn request for a finished one (the
        second extraction round: its tokens should start with ``request.tokens +
        completion.tokens``). It is admitted at once, into the slot that still holds the first
        turn's KV, so only the new turn is decoded. ``results[index]`` and ``on_complete`` then
        get the last completion of the chain; ``follow_up`` saw the earlier ones.
        Follow-ups submitted in a later ``generate`` call also reuse KV, but only while the
        earlier sequence is still among the ``n_seq_max`` most recent (LRU idle slots).
        """
        if self._ctx is None:
            raise RuntimeError("BatchedDecoder is closed")
        results: list[Completion | None] = [None] * len(requests)
        queue: deque[tuple[int, GenerationRequest]] = deque()

        def finish(job: Job, completion: Completion) -> None:
            nxt = follow_up(job.index, completion) if follow_up is not None else None
            if nxt is not None:
                self._check(nxt)
                queue.appendleft((job.index, nxt))  # admitted before anything else
                return
            results[job.index] = completion
            if on_complete is not None:
                on_complete(job.index, completion)

        for r in requests:
            self._check(r)
        # Lexicographic token order == depth-first order of the requests' token trie: requests
        # with the longest shared prefixes are admitted together and share through the cache.
        queue.extend((i, requests[i]) for i in sorted(range(len(requests)), key=lambda i: requests[i].tokens))

        while True:
            admitted = 0
            while queue:
                index, req = queue.popleft()
                if not self._admit(req, index, finish):
                    queue.appendleft((index, req))
                    break
                admitted += 1
            busy = [s for s in self._slots if s.state in (PREFILL, GEN)]
            if not busy:
                if queue and admitted:
                    continue  # only max_tokens=0 requests were admitted; keep going
                if queue or any(s.state == WAITING for s in self._slots):
                    raise RuntimeError("BatchedDecoder: no runnable sequence (planning bug)")
                break
            self._step(busy, finish)

        return results  # type: ignore[return-value]

    def _check(self, r: GenerationRequest) -> None:
        if len(r.tokens) >= self.per_seq_ctx:
            raise ValueError(f"prompt has {len(r.tokens)} tokens, context per sequence is {self.per_seq_ctx}")

    # ----------------------------------------------------------------- planning
    def _admit(self, req: GenerationRequest, index: int, finish) -> bool:
        """Place one request in a slot, sharing the longest cached prefix. False if no slot."""
        lc = self._lc
        job = new_job(index, req, lambda grammar: GrammarSampler(lc, self._vocab, grammar, self.n_vocab))
        if req.max_tokens == 0:
            self.stats.requests += 1
            self.stats.prompt_tokens += len(req.tokens)
            finish(job, Completion("", (), "length", len(req.tokens), 0))
            return True

        plan = plan_admission(self._slots, req.tokens)
        best_len = plan.reuse
        if plan.target is None:
            return False
        target = plan.target
        if plan.take_over:
            if not lc.llama_memory_seq_rm(self._mem, target.seq_id, best_len, -1):
                lc.llama_memory_seq_rm(self._mem, target.seq_id, -1, -1)
                best_len = 0
            del target.kv[best_len:]
        else:
            if plan.evict:
                self._evict(target)
            target.kv = []
            if plan.wait:  # the source is still decoding this prefix: copy once it is there
                target.state, target.src, target.src_len = WAITING, plan.source, best_len
            elif best_len > 0:
                self._copy_prefix(plan.source, target, best_len)

        self.stats.requests += 1
        self.stats.prompt_tokens += len(req.tokens)
        job.reused = best_len
        target.job = job
        target.pending = list(req.tokens[best_len:])
        if target.state != WAITING:
            target.state = PREFILL
        self.stats.prompt_tokens_reused += best_len
        return True

    def _copy_prefix(self, src: Slot, dst: Slot, n: int) -> None:
        """Share src's KV for positions [0, n) with the (empty) dst sequence."""
        lc = self._lc
        if self.kv_unified:  # cells gain dst's sequence id: no data moves
            lc.llama_memory_seq_cp(self._mem, src.seq_id, dst.seq_id, 0, n)
        else:  # across streams llama.cpp copies whole streams only: copy, then trim
            lc.llama_memory_seq_cp(self._mem, src.seq_id, dst.seq_id, -1, -1)
            lc.llama_memory_seq_rm(self._mem, dst.seq_id, n, -1)
        dst.kv = list(src.kv[:n])

    def _evict(self, s: Slot) -> None:
        self._lc.llama_memory_seq_rm(self._mem, s.seq_id, -1, -1)
        s.state, s.kv, s.pending, s.job = FREE, [], [], None
        self.stats.evictions += 1

    # ----------------------------------------------------------------- decoding
    def _step(self, busy: list[Slot], finish) -> None:
        """One llama_decode: every generating sequence's next token, then prompt tokens."""
        lc = self._lc
        batch = self._batch
        taken = plan_batch(busy, self.n_batch)  # (slot, tokens submitted, gets logits), in batch order
        n, outputs = fill_batch(batch, taken)
        pad = n == 1 and self.kv_unified
        if pad:
            n = pad_lone_token(batch, self._scratch_seq)
        batch.n_tokens = n

        t0 = time.perf_counter()
        self._decode(n)
        self.stats.decode_seconds += time.perf_counter() - t0
        if pad:
            lc.llama_memory_seq_rm(self._mem, self._scratch_seq, -1, -1)
            n = 1
        self.stats.decode_calls += 1
        self.stats.batch_tokens += n

        for s, k, _ in taken:
            if s.state == PREFILL:
                self.stats.prompt_tokens_decoded += k
            s.kv.extend(s.pending[:k])
            del s.pending[:k]

        # Waiting slots whose shared prefix is now in the cache copy it (before any slot can
        # finish and be reused, so a source is always still there).
        for s in self._slots:
            if s.state == WAITING and len(s.src.kv) >= s.src_len:
                self._copy_prefix(s.src, s, s.src_len)
                s.state, s.src = PREFILL, None

        for s, row in outputs:
            logits = np.ctypeslib.as_array(lc.llama_get_logits_ith(self._ctx, row), shape=(self.n_vocab,))
            self._advance(s, choose_token(s.job, logits), finish)

    def _decode(self, n: int) -> None:
        """llama_decode the batch; when no KV cell is left, free the least recently used idle
        slot and retry (the cache is restored after a failed decode)."""
        while True:
            rc = self._lc.llama_decode(self._ctx, self._batch)
            if rc == 0:
                return
            idle = [s for s in self._slots if s.state == IDLE]
            if rc == 1 and idle:
                self._evict(min(idle, key=lambda s: s.last_used))
                continue
            raise RuntimeError(f"llama_decode failed with code {rc} (n_ctx={self.n_ctx}, batch={n} tokens)")

    def _advance(self, s: Slot, tok: int, finish) -> None:
        job = s.job
        req = job.request
        self.stats.generated_tokens += 1
        reason = None
        text = None
        if self._lc.llama_vocab_is_eog(self._vocab, tok):
            reason = "eos"
        else:
            job.generated.append(tok)
            job.text_bytes += self._piece(tok)
            if req.stop:
                text = job.text_bytes.decode("utf-8", errors="ignore")
                cut = [i for i in (text.find(x) for x in req.stop if x) if i >= 0]
                if cut:
                    text, reason = text[: min(cut)], "stop"
            if reason is None and (
                len(job.generated) >= req.max_tokens
                or len(req.tokens) + len(job.generated) >= self.per_seq_ctx
            ):
                reason = "length"
        if reason is None:
            s.pending = [tok]
            s.state = GEN
            return
        if text is None:
            text = job.text_bytes.decode("utf-8", errors="ignore")
        job.release()  # its grammar state, if any
        finish(
            job,
            Completion(
                text=text,
                tokens=tuple(job.generated),
                finish_reason=reason,
                prompt_tokens=len(req.tokens),
                reused_prompt_tokens=job.reused,
            ),
        )
        # Keep the KV (prompt + all generated tokens but the last, which was never decoded) so
        # a later request extending this conversation can continue it.
        self._clock += 1
        s.pending, s.job, s.last_used = [], None, self._clock
        if self.keep_idle:
            s.state = IDLE
        else:
            self._evict(s)
            self.stats.evictions -= 1

    def _piece(self, tok: int) -> bytes:
        """Detokenized bytes of one token (special tokens render empty, as in create_completion)."""
        piece = self._pieces.get(tok)
        if piece is None:
            buf = self._piece_buf
            n = self._lc.llama_token_to_piece(self._vocab, tok, buf, len(buf), 0, False)
            piece = buf.raw[: max(n, 0)]
            self._pieces[tok] = piece
        return piece
