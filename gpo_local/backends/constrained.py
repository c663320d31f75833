"""llama.cpp's grammar sampler for the batched decoder (grammar-constrained optimizer replies).

One `GrammarSampler` per request holds a llama.cpp grammar state (llama_sampler_init_grammar,
low-level API of llama-cpp-python). The decoder keeps its own seeded choice of tokens
(batched.BatchedDecoder._choose) and asks the grammar which tokens are allowed:

`choose(draw, logits)` first draws from the unconstrained logits and checks only that token
against the grammar (a one-element llama_token_data_array): most tokens of a model that follows
the format are allowed, and checking one token is far cheaper than masking a 50k-150k
vocabulary. A rejected draw is redrawn up to REDRAWS times, then the grammar masks the whole
vocabulary and the draw is made from the masked logits. Redrawing until a draw is allowed is
rejection sampling, and the final masked draw samples the same conditional distribution, so
the chosen token follows softmax(logits / T) restricted to the allowed tokens exactly; for
greedy choice the argmax is allowed or the masked argmax is taken. The chosen token is then
accepted into the grammar state.
"""

from __future__ import annotations

import ctypes
from typing import Callable

import numpy as np

REDRAWS = 4
_TOKEN_DATA = np.dtype([("id", "<i4"), ("logit", "<f4"), ("p", "<f4")])  # llama_token_data, 12 bytes


class GrammarSampler:
    def __init__(self, lc, vocab, grammar: str, n_vocab: int):
        self._lc = lc
        self._smpl = lc.llama_sampler_init_grammar(vocab, grammar.encode("utf-8"), b"root")
        if not self._smpl:
            raise ValueError("llama.cpp rejected the GBNF grammar (see its log above)")
        self._one = (lc.llama_token_data * 1)()
        self._full = np.zeros(n_vocab, dtype=_TOKEN_DATA)
        self._ids = np.arange(n_vocab, dtype=np.int32)

    def _apply(self, data, size: int) -> None:
        lc = self._lc
        array = lc.llama_token_data_array(data=data, size=size, selected=-1, sorted=False)
        lc.llama_sampler_apply(self._smpl, ctypes.byref(array))

    def allows(self, token: int) -> bool:
        self._one[0].id, self._one[0].logit, self._one[0].p = token, 0.0, 0.0
        self._apply(self._one, 1)
        return np.isfinite(self._one[0].logit)

    def mask(self, logits: np.ndarray) -> np.ndarray:
        """The logits with every token the grammar forbids now set to -inf."""
        full = self._full
        full["id"], full["logit"], full["p"] = self._ids, logits, 0.0
        self._apply(full.ctypes.data_as(ctypes.POINTER(self._lc.llama_token_data)), len(full))
        return full["logit"].copy()

    def choose(
        self,
        draw: Callable[[np.ndarray], int],
        logits: np.ndarray,
        greedy: bool,
        unguarded: np.ndarray | None = None,
    ) -> int:
        """The token drawn from `logits` among those the grammar allows; `unguarded`: the
        logits before the copy guard's ban (copy_guard.py), drawn from when the grammar allows
        only banned tokens (the reply's format comes first)."""
        for _ in range(1 if greedy else REDRAWS):
            token = draw(logits)
            if self.allows(token):
                break
        else:
            masked = self.mask(logits)
            if unguarded is not None and not np.isfinite(masked).any():
                masked = self.mask(unguarded)
            token = draw(masked)
        self._lc.llama_sampler_accept(self._smpl, token)
        return token

    def free(self) -> None:
        if self._smpl:
            self._lc.llama_sampler_free(self._smpl)
            self._smpl = None

    def __del__(self) -> None:
        try:
            self.free()
        except Exception:
            pass
