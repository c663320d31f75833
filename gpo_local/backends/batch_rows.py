"""The rows of one decoding step in llama.cpp's `llama_batch` (the batched decoder's, batched.py).

Each row is one token of one sequence at its position; logits are asked only for the rows whose
next token will be chosen (a slot's last pending token). With the unified cache a one-row batch
gets a throwaway second row, so that the step keeps the attention kernel of larger batches.
"""

from __future__ import annotations

from typing import Sequence

from gpo_local.backends.slots import Slot


def fill_batch(batch, taken: Sequence[tuple[Slot, int, bool]]) -> tuple[int, list[tuple[Slot, int]]]:
    """Write a step's tokens into `batch`: `taken` lists (slot, tokens submitted, gets logits)
    in batch order. Returns the rows written and the (slot, row) of the rows that get logits."""
    n = 0
    outputs: list[tuple[Slot, int]] = []  # slots that get logits, with their batch row
    for s, k, last in taken:
        pos0 = len(s.kv)
        for j in range(k):
            batch.token[n] = s.pending[j]
            batch.pos[n] = pos0 + j
            batch.n_seq_id[n] = 1
            batch.seq_id[n][0] = s.seq_id
            batch.logits[n] = 0
            n += 1
        if last:  # the slot's last pending token: its logits choose the next
            batch.logits[n - 1] = 1
            outputs.append((s, n - 1))
    return n, outputs


def pad_lone_token(batch, scratch_seq: int) -> int:
    """Add a throwaway second row to a one-token batch (unified cache only); the new size."""
    # Unified cache only: never decode a lone token. For one query row and 512+ KV
    # cells the CPU flash attention switches to a split-KV kernel whose rounding
    # differs from the per-row kernel (used for 2+ rows, and by a short sequential
    # run); the unified cache reaches 512 cells early. A throwaway token in a scratch
    # sequence keeps the step on the per-row kernel. (Per-sequence streams have the
    # same cell count as a sequential context, so they take the same kernel anyway.)
    batch.token[1] = batch.token[0]
    batch.pos[1] = 0
    batch.n_seq_id[1] = 1
    batch.seq_id[1][0] = scratch_seq
    batch.logits[1] = 0
    return 2
