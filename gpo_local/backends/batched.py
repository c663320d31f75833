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
* **Prefix planning with a token trie.** Pending requests are visited in lexicographic token
  order, which is a depth-first walk of their token trie: requests sharing the longest prefixes
  are admitted next to each other. Each admitted request copies the longest prefix it has in
  common with any slot (a running prompt, a sequence still being prefilled, or an idle finished
  one) and only decodes the rest; a request whose prefix is still being decoded by another slot
  waits for it and copies it once it is in the cache, so every trie edge is decoded once.
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
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

if TYPE_CHECKING:  # heavy import kept lazy: importing gpo_local must not require llama_cpp
    import llama_cpp

__all__ = ["GenerationRequest", "Completion", "DecoderStats", "BatchedDecoder"]


@dataclass(frozen=True)
class GenerationRequest:
    """One generation: a fully tokenized prompt (chat template applied, BOS included if wanted)."""

    tokens: tuple[int, ...]
    max_tokens: int
    stop: tuple[str, ...] = ()
    temperature: float = 0.0
    seed: int | None = None
    grammar: str | None = None  # issue 10 hook: a GBNF grammar the reply must follow (constrained.py)

    def __post_init__(self) -> None:
        # Accept lists for convenience but store tuples: requests are hashable and immutable.
        object.__setattr__(self, "tokens", tuple(int(t) for t in self.tokens))
        object.__setattr__(self, "stop", tuple(self.stop))
        if not self.tokens:
            raise ValueError("GenerationRequest.tokens must not be empty")
        if self.max_tokens < 0:
            raise ValueError(f"max_tokens must be >= 0, got {self.max_tokens}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")


@dataclass(frozen=True)
class Completion:
    """Result of one request. ``tokens`` excludes an end-of-generation token; a stop string is
    trimmed from ``text`` only (the tokens that produced it stay, so a follow-up turn can extend
    ``request.tokens + completion.tokens`` and reuse the KV)."""

    text: str
    tokens: tuple[int, ...]
    finish_reason: str  # "stop" | "length" | "eos"
    prompt_tokens: int
    reused_prompt_tokens: int


@dataclass
class DecoderStats:
    """Counters accumulated over the decoder's lifetime (reset with ``stats = DecoderStats()``)."""

    requests: int = 0
    prompt_tokens: int = 0  # prompt tokens requested
    prompt_tokens_decoded: int = 0  # prompt tokens actually pushed through the model
    prompt_tokens_reused: int = 0  # served from KV shared with / kept from other sequences
    generated_tokens: int = 0  # tokens chosen (including an end-of-generation token)
    decode_calls: int = 0
    batch_tokens: int = 0  # all tokens submitted to llama_decode (prompt + generation)
    decode_seconds: float = 0.0
    evictions: int = 0  # idle slots whose KV was dropped to make room


# Slot states.
_FREE, _WAITING, _PREFILL, _GEN, _IDLE = "free", "waiting", "prefill", "gen", "idle"


@dataclass(eq=False)
class _Job:
    index: int
    request: GenerationRequest
    reused: int = 0
    generated: list[int] = field(default_factory=list)
    text_bytes: bytearray = field(default_factory=bytearray)
    rng: np.random.Generator | None = None
    grammar: object | None = None  # constrained.GrammarSampler of a request with a grammar


@dataclass(eq=False)
class _Slot:
    seq_id: int
    state: str = _FREE
    kv: list[int] = field(default_factory=list)  # tokens in the KV cache at positions 0..len-1
    pending: list[int] = field(default_factory=list)  # tokens still to decode, in order
    job: _Job | None = None
    src: "_Slot | None" = None  # _WAITING: copy src's KV [0, src_len) once src has decoded it
    src_len: int = 0
    last_used: int = 0

    def planned(self) -> list[int]:
        """Tokens this slot's KV will hold once its prompt is decoded (what others may share)."""
        if self.state in (_WAITING, _PREFILL):
            return list(self.job.request.tokens)
        return self.kv


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


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
        self.per_seq_ctx = llama.n_ctx()  # per-request limit, as for Llama.create_completion
        self.keep_idle = keep_idle
        self.stats = DecoderStats()

        # Start from the Llama's own context parameters so threads, batch sizes, attention type
        # and KV types match the sequential path (which keeps greedy results comparable), then
        # make it multi-sequence.
        src = llama.context_params
        params = lc.llama_context_default_params()
        for name in ("n_batch", "n_ubatch", "n_threads", "n_threads_batch", "flash_attn_type",
                     "type_k", "type_v", "rope_scaling_type", "rope_freq_base",
                     "rope_freq_scale", "yarn_ext_factor", "yarn_attn_factor", "yarn_beta_fast",
                     "yarn_beta_slow", "yarn_orig_ctx", "offload_kqv", "op_offload", "swa_full"):
            setattr(params, name, getattr(src, name))
        # Flash attention is on by default, for correctness first: with the non-flash kernel
        # of the llama.cpp bundled in llama-cpp-python 0.3.36, a sequence that shares prefix
        # cells (llama_memory_seq_cp) with a sequence owning further cells at the same
        # positions gets different logits than when decoded alone (max |dlogit| 0.72 on
        # SmolLM2-135M, flipping greedy tokens); with flash attention the same experiment is
        # bit-identical. It is also faster here: the CPU kernel skips masked KV cells, so the
        # other sequences' cells in the unified cache cost almost nothing. For greedy answers
        # identical to a sequential loop, load the Llama with flash_attn=True as well.
        params.flash_attn_type = (lc.LLAMA_FLASH_ATTN_TYPE_ENABLED if flash_attn
                                  else lc.LLAMA_FLASH_ATTN_TYPE_DISABLED)
        # Physical batches below 64 rows. From 64 query rows on, the CPU flash attention uses a
        # tiled kernel whose rounding depends on how a sequence's KV cells fall into tiles, so
        # the same prompt gives different logits depending on what else is in the cache
        # (measured: max |dlogit| 0.4-1.1 for 64+ rows, exactly 0 below). Under 64 rows each
        # row goes through the per-row kernel, which skips masked cells and visits a
        # sequence's cells in position order: logits are then bit-identical to decoding the
        # sequence alone, whatever the batch holds. The cost is small: prefill is compute
        # bound, so 63-row ubatches only add some graph overhead. ``n_ubatch=None`` keeps
        # the Llama's value.
        if n_ubatch is not None:
            params.n_ubatch = max(1, min(params.n_ubatch, n_ubatch))
        params.n_ctx = n_ctx if n_ctx is not None else self.per_seq_ctx * n_seq_max
        # Unified vs per-sequence KV (measured on this llama.cpp, SmolLM2-135M, 32 prompts x 24
        # greedy tokens): with a unified cache, freeing finished sequences leaves holes that
        # live sequences' next tokens fill, so a sequence's cells stop being in position
        # order; the attention kernel visits cells in index order, the online-softmax rounding
        # changes and 12 of 32 greedy continuations diverged from sequential decoding (32 of 32
        # agreed when nothing was ever freed). With one KV stream per sequence
        # (kv_unified=False) a slot's cells are always in position order and every result was
        # bit-identical to a sequential run, with continuous batching on. Sharing still
        # decodes a prefix once: llama_memory_seq_cp copies the source stream's K/V (a memcpy
        # of at most one stream, ~23 KB per cell, much cheaper than decoding) and the copy is
        # trimmed to the shared prefix. kv_unified=True shares cells without copying (less
        # memory) at the price of that batch dependence.
        self.kv_unified = kv_unified
        params.kv_unified = kv_unified
        # Unified: one extra sequence id is a scratch sequence for the padding token (_step).
        params.n_seq_max = n_seq_max + 1 if kv_unified else n_seq_max
        params.embeddings = False
        params.no_perf = True
        ctx = lc.llama_init_from_model(self._model, params)
        if ctx is None:
            raise RuntimeError(f"llama_init_from_model failed (n_ctx={params.n_ctx}, "
                               f"n_seq_max={n_seq_max})")
        self._ctx = ctx
        self._mem = lc.llama_get_memory(ctx)
        self.n_ctx = lc.llama_n_ctx(ctx)
        self.n_batch = lc.llama_n_batch(ctx)
        self._batch = lc.llama_batch_init(self.n_batch, 0, 1)
        self._slots = [_Slot(seq_id=i) for i in range(n_seq_max)]
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
        self._slots = [_Slot(seq_id=i) for i in range(self.n_seq_max)]

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

        def finish(job: _Job, completion: Completion) -> None:
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
        queue.extend((i, requests[i]) for i in sorted(range(len(requests)),
                                                      key=lambda i: requests[i].tokens))

        while True:
            admitted = 0
            while queue:
                index, req = queue.popleft()
                if not self._admit(req, index, finish):
                    queue.appendleft((index, req))
                    break
                admitted += 1
            busy = [s for s in self._slots if s.state in (_PREFILL, _GEN)]
            if not busy:
                if queue and admitted:
                    continue  # only max_tokens=0 requests were admitted; keep going
                if queue or any(s.state == _WAITING for s in self._slots):
                    raise RuntimeError("BatchedDecoder: no runnable sequence (planning bug)")
                break
            self._step(busy, finish)

        return results  # type: ignore[return-value]

    def _check(self, r: GenerationRequest) -> None:
        if len(r.tokens) >= self.per_seq_ctx:
            raise ValueError(f"prompt has {len(r.tokens)} tokens, context per sequence is "
                             f"{self.per_seq_ctx}")

    # ----------------------------------------------------------------- planning
    def _admit(self, req: GenerationRequest, index: int, finish) -> bool:
        """Place one request in a slot, sharing the longest cached prefix. False if no slot."""
        lc = self._lc
        job = _Job(index=index, request=req)
        if req.temperature > 0:
            job.rng = np.random.default_rng(req.seed)
        if req.grammar is not None and req.max_tokens > 0:  # issue 10 hook: grammar-constrained reply
            from .constrained import GrammarSampler

            job.grammar = GrammarSampler(lc, self._vocab, req.grammar, self.n_vocab)
        if req.max_tokens == 0:
            self.stats.requests += 1
            self.stats.prompt_tokens += len(req.tokens)
            finish(job, Completion("", (), "length", len(req.tokens), 0))
            return True

        # Best source: longest common prefix with anything a slot holds or will hold. At least
        # one prompt token is always decoded so that the request gets its own logits.
        best, best_len = None, 0
        for s in self._slots:
            if s.state == _FREE:
                continue
            n = _common_prefix(req.tokens, s.planned())
            n = min(n, len(req.tokens) - 1)
            # Prefer an idle source on ties: it can be taken over without a copy.
            if n > best_len or (n == best_len and n > 0 and s.state == _IDLE
                                and best is not None and best.state != _IDLE):
                best, best_len = s, n

        # Continue a finished sequence in place when the request extends all of it (a second
        # round extending the first) or when no slot is free; otherwise copy the shared prefix
        # into a free slot (no data moves in a unified cache, a memcpy otherwise) so the idle
        # KV stays available.
        take_over = best is not None and best.state == _IDLE and (
            best_len == len(best.kv) or not any(s.state == _FREE for s in self._slots))
        if take_over:
            target = best
            if not lc.llama_memory_seq_rm(self._mem, target.seq_id, best_len, -1):
                lc.llama_memory_seq_rm(self._mem, target.seq_id, -1, -1)
                best_len = 0
            del target.kv[best_len:]
        else:
            target = self._free_slot(exclude=best if best_len > 0 else None)
            if target is None:
                return False
            target.kv = []
            if best is not None and best_len > 0:
                if len(best.kv) >= best_len:
                    self._copy_prefix(best, target, best_len)
                else:  # the source is still decoding this prefix: copy once it is there
                    target.state, target.src, target.src_len = _WAITING, best, best_len
            else:
                best_len = 0

        self.stats.requests += 1
        self.stats.prompt_tokens += len(req.tokens)
        job.reused = best_len
        target.job = job
        target.pending = list(req.tokens[best_len:])
        if target.state != _WAITING:
            target.state = _PREFILL
        self.stats.prompt_tokens_reused += best_len
        return True

    def _copy_prefix(self, src: _Slot, dst: _Slot, n: int) -> None:
        """Share src's KV for positions [0, n) with the (empty) dst sequence."""
        lc = self._lc
        if self.kv_unified:  # cells gain dst's sequence id: no data moves
            lc.llama_memory_seq_cp(self._mem, src.seq_id, dst.seq_id, 0, n)
        else:  # across streams llama.cpp copies whole streams only: copy, then trim
            lc.llama_memory_seq_cp(self._mem, src.seq_id, dst.seq_id, -1, -1)
            lc.llama_memory_seq_rm(self._mem, dst.seq_id, n, -1)
        dst.kv = list(src.kv[:n])

    def _free_slot(self, exclude: _Slot | None) -> _Slot | None:
        """A free slot, else the least recently used idle one (its KV is dropped)."""
        for s in self._slots:
            if s.state == _FREE:
                return s
        idle = [s for s in self._slots if s.state == _IDLE and s is not exclude]
        if not idle:
            return None
        victim = min(idle, key=lambda s: s.last_used)
        self._evict(victim)
        return victim

    def _evict(self, s: _Slot) -> None:
        self._lc.llama_memory_seq_rm(self._mem, s.seq_id, -1, -1)
        s.state, s.kv, s.pending, s.job = _FREE, [], [], None
        self.stats.evictions += 1

    # ----------------------------------------------------------------- decoding
    def _step(self, busy: list[_Slot], finish) -> None:
        """One llama_decode: every generating sequence's next token, then prompt tokens."""
        lc = self._lc
        batch = self._batch
        n = 0
        outputs: list[tuple[_Slot, int]] = []  # slots that get logits, with their batch row
        taken: list[tuple[_Slot, int]] = []  # how many pending tokens each slot submitted
        # Generation tokens first: every live sequence advances one token per call.
        gen = [s for s in busy if s.state == _GEN]
        pre = [s for s in busy if s.state == _PREFILL]
        for s in gen + pre:
            room = self.n_batch - n
            if room <= 0:
                break
            k = min(room, len(s.pending))
            pos0 = len(s.kv)
            for j in range(k):
                batch.token[n] = s.pending[j]
                batch.pos[n] = pos0 + j
                batch.n_seq_id[n] = 1
                batch.seq_id[n][0] = s.seq_id
                batch.logits[n] = 0
                n += 1
            if k == len(s.pending):  # the slot's last pending token: its logits choose the next
                batch.logits[n - 1] = 1
                outputs.append((s, n - 1))
            taken.append((s, k))
        pad = n == 1 and self.kv_unified
        if pad:
            # Unified cache only: never decode a lone token. For one query row and 512+ KV
            # cells the CPU flash attention switches to a split-KV kernel whose rounding
            # differs from the per-row kernel (used for 2+ rows, and by a short sequential
            # run); the unified cache reaches 512 cells early. A throwaway token in a scratch
            # sequence keeps the step on the per-row kernel. (Per-sequence streams have the
            # same cell count as a sequential context, so they take the same kernel anyway.)
            batch.token[1] = batch.token[0]
            batch.pos[1] = 0
            batch.n_seq_id[1] = 1
            batch.seq_id[1][0] = self._scratch_seq
            batch.logits[1] = 0
            n = 2
        batch.n_tokens = n

        t0 = time.perf_counter()
        while True:
            rc = lc.llama_decode(self._ctx, batch)
            if rc == 0:
                break
            # 1 = no KV cell for the batch: the cache is restored, so free idle KV and retry.
            idle = [s for s in self._slots if s.state == _IDLE]
            if rc == 1 and idle:
                self._evict(min(idle, key=lambda s: s.last_used))
                continue
            raise RuntimeError(f"llama_decode failed with code {rc} "
                               f"(n_ctx={self.n_ctx}, batch={n} tokens)")
        self.stats.decode_seconds += time.perf_counter() - t0
        if pad:
            lc.llama_memory_seq_rm(self._mem, self._scratch_seq, -1, -1)
            n = 1
        self.stats.decode_calls += 1
        self.stats.batch_tokens += n

        for s, k in taken:
            if s.state == _PREFILL:
                self.stats.prompt_tokens_decoded += k
            s.kv.extend(s.pending[:k])
            del s.pending[:k]

        # Waiting slots whose shared prefix is now in the cache copy it (before any slot can
        # finish and be reused, so a source is always still there).
        for s in self._slots:
            if s.state == _WAITING and len(s.src.kv) >= s.src_len:
                self._copy_prefix(s.src, s, s.src_len)
                s.state, s.src = _PREFILL, None

        for s, row in outputs:
            logits = np.ctypeslib.as_array(lc.llama_get_logits_ith(self._ctx, row),
                                           shape=(self.n_vocab,))
            self._advance(s, self._choose(s.job, logits), finish)

    def _choose(self, job: _Job, logits: np.ndarray) -> int:
        if job.grammar is not None:  # issue 10 hook: the same draw, restricted to what the grammar allows
            return job.grammar.choose(lambda z: self._draw(job, z), logits, job.request.temperature <= 0)
        return self._draw(job, logits)

    def _draw(self, job: _Job, logits: np.ndarray) -> int:
        t = job.request.temperature
        if t <= 0:
            return int(np.argmax(logits))
        # Seeded per request: softmax(logits / T) in float64, inverse-CDF draw of one uniform.
        z = logits.astype(np.float64) / t
        p = np.exp(z - z.max())
        c = np.cumsum(p)
        return int(min(np.searchsorted(c, job.rng.random() * c[-1], side="right"), len(c) - 1))

    def _advance(self, s: _Slot, tok: int, finish) -> None:
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
                    text, reason = text[:min(cut)], "stop"
            if reason is None and (len(job.generated) >= req.max_tokens
                                   or len(req.tokens) + len(job.generated) >= self.per_seq_ctx):
                reason = "length"
        if reason is None:
            s.pending = [tok]
            s.state = _GEN
            return
        if text is None:
            text = job.text_bytes.decode("utf-8", errors="ignore")
        if job.grammar is not None:
            job.grammar.free()
        finish(job, Completion(text=text, tokens=tuple(job.generated), finish_reason=reason,
                               prompt_tokens=len(req.tokens), reused_prompt_tokens=job.reused))
        # Keep the KV (prompt + all generated tokens but the last, which was never decoded) so
        # a later request extending this conversation can continue it.
        self._clock += 1
        s.pending, s.job, s.last_used = [], None, self._clock
        if self.keep_idle:
            s.state = _IDLE
        else:
            self._evict(s)
            self.stats.evictions -= 1

    def _piece(self, tok: int) -> bytes:
        """Detokenized bytes of one token (special tokens render empty, as in create_completion)."""
        piece = self._pieces.get(tok)
        if piece is None:
            buf = self._piece_buf
            n = self._lc.llama_token_to_piece(self._vocab, tok, buf, len(buf), 0, False)
            piece = buf.raw[:max(n, 0)]
            self._pieces[tok] = piece
        return piece
