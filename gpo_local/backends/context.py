"""The llama.cpp context parameters of the batched decoder (batched.py): the Llama's own, made
multi-sequence, with the settings that keep greedy results identical to a sequential run (each
one's measurement is given where it is set)."""

from __future__ import annotations

# The Llama's own context parameters the decoder's context starts from, so that threads, batch
# sizes, attention type and KV types match the sequential path (which keeps greedy results
# comparable).
INHERITED_PARAMS = (
    "n_batch",
    "n_ubatch",
    "n_threads",
    "n_threads_batch",
    "flash_attn_type",
    "type_k",
    "type_v",
    "rope_scaling_type",
    "rope_freq_base",
    "rope_freq_scale",
    "yarn_ext_factor",
    "yarn_attn_factor",
    "yarn_beta_fast",
    "yarn_beta_slow",
    "yarn_orig_ctx",
    "offload_kqv",
    "op_offload",
    "swa_full",
)


def sequence_limit(llama_ctx: int, seq_ctx: int | None) -> int:
    """The per-sequence limit in tokens: the Llama's context (the per-request limit of
    Llama.create_completion), or `seq_ctx` when smaller. A smaller one lowers the
    default total of KV cells with it: more sequences in the same KV memory for short requests
    (the evaluator's); a generation reaching it ends with finish reason "length", so callers
    route only requests that fit (``LlamaCppModel._chain_decoder``)."""
    if seq_ctx is None:
        return llama_ctx
    return max(2, min(llama_ctx, seq_ctx))


def context_params(
    lc, llama, *, n_seq_max: int, n_ctx: int, flash_attn: bool, n_ubatch: int | None, kv_unified: bool
):
    """The multi-sequence context's parameters (the reasons for each are measurements, below)."""
    # Start from the Llama's own context parameters, then make it multi-sequence.
    src = llama.context_params
    params = lc.llama_context_default_params()
    for name in INHERITED_PARAMS:
        setattr(params, name, getattr(src, name))
    # Flash attention is on by default, for correctness first: with the non-flash kernel
    # of the llama.cpp bundled in llama-cpp-python 0.3.36, a sequence that shares prefix
    # cells (llama_memory_seq_cp) with a sequence owning further cells at the same
    # positions gets different logits than when decoded alone (max |dlogit| 0.72 on
    # SmolLM2-135M, flipping greedy tokens); with flash attention the same experiment is
    # bit-identical. It is also faster here: the CPU kernel skips masked KV cells, so the
    # other sequences' cells in the unified cache cost almost nothing. For greedy answers
    # identical to a sequential loop, load the Llama with flash_attn=True as well.
    params.flash_attn_type = (
        lc.LLAMA_FLASH_ATTN_TYPE_ENABLED if flash_attn else lc.LLAMA_FLASH_ATTN_TYPE_DISABLED
    )
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
    params.n_ctx = n_ctx
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
    params.kv_unified = kv_unified
    # Unified: one extra sequence id is a scratch sequence for the padding token (_step).
    params.n_seq_max = n_seq_max + 1 if kv_unified else n_seq_max
    params.embeddings = False
    params.no_perf = True
    return params
