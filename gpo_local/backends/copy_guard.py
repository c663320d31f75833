"""The copy guard: optimizer replies that cannot restate a shown task example.

Exemplar leakage (leaks.py) is the main reason a grammar-constrained reply of the 1.5B optimizer
is dropped. The leak check drops
such a reply after it is written; the guard keeps it from being written, in the sampler, as a
grammar keeps a reply in its format. It is the `encoder_no_repeat_ngram_size` of Hugging Face's
`generate`, applied to what the meta-prompt shows as examples:

- a reply may not continue a run of RUN tokens found in one of the `avoid` texts (the format
  exemplars the meta-prompt shows, inputs and answers): once the last RUN - 1 tokens of the
  reply equal the start of such a run, the token that would complete it is banned (its logit
  set to -inf) and the sampler draws among the others;
- a run also found in an `allow` text (the current prompt, which an edit keeps) is allowed.

Why every run of an exemplar, the task's shared wording too: a first version banned only the
runs particular to one exemplar, and left navigate's "If you follow these instructions, do you
return to the starting point?" and its "Options: - Yes - No" free, since every exemplar has
them. GPO's replies then restated that shared template instead, and most of its candidates
were the unguarded run's own (benchmarks/copy_guard.py compares runs with and without it).
An instruction says what to do in its own words; quoting 5 tokens of the task stays possible.

Why RUN = 6 tokens: about 4 words of the 1.5B's tokenizer (navigate's first exemplar is 20 words,
27 tokens), so a reply cannot repeat an example's 5-word n-grams, which is what the leak check
counts (leaks.NGRAM), while any shorter phrase stays free.

The guard is pure (`banned_runs`, `RunBan`); the batched decoder applies it to a request's
logits before its grammar (slots.choose_token).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import numpy as np

RUN = 6
# Part of a memo key (CopyGuard.key): a reply depends on which runs are banned, so a change to
# that rule must not be answered from replies stored under the old one.
RULE = "every run of the avoid texts, minus those of the allow texts"


@dataclass(frozen=True)
class CopyGuard:
    """What replies must not copy (`avoid`), what they may (`allow`), and the run length."""

    avoid: tuple[str, ...]
    allow: tuple[str, ...] = ()
    run: int = RUN

    def __post_init__(self) -> None:
        object.__setattr__(self, "avoid", tuple(self.avoid))
        object.__setattr__(self, "allow", tuple(self.allow))
        if self.run < 2:
            raise ValueError(f"a copy guard's run must be at least 2 tokens, got {self.run}")

    def key(self) -> list:
        """Its part of a memo key (memo.py), the banning rule included."""
        return [RULE, list(self.avoid), list(self.allow), self.run]


def _runs(tokens: Sequence[int], n: int) -> set[tuple[int, ...]]:
    return {tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}


def _text_runs(text: str, tokenize: Callable[[str], list[int]], n: int) -> set[tuple[int, ...]]:
    # A text quoted after a space tokenizes its first word with the space (" If" against "If"):
    # both forms are the text's runs.
    return _runs(tokenize(text), n) | _runs(tokenize(" " + text), n)


def banned_runs(guard: CopyGuard, tokenize: Callable[[str], list[int]]) -> tuple[tuple[int, ...], ...]:
    """The token runs a reply must not complete: those of the `avoid` texts and of no `allow`
    text, in a fixed order (the request's field is a tuple)."""
    avoided, allowed = set(), set()
    for text in guard.avoid:
        avoided |= _text_runs(text, tokenize, guard.run)
    for text in guard.allow:
        allowed |= _text_runs(text, tokenize, guard.run)
    return tuple(sorted(avoided - allowed))


class RunBan:
    """The banned runs of one request, indexed by their first RUN - 1 tokens."""

    def __init__(self, runs: Iterable[tuple[int, ...]]):
        nexts: dict[tuple[int, ...], list[int]] = defaultdict(list)
        self.prefix = 0
        for run in runs:
            nexts[run[:-1]].append(run[-1])
            self.prefix = len(run) - 1
        self._nexts = {
            prefix: np.array(sorted(set(tokens)), dtype=np.int64) for prefix, tokens in nexts.items()
        }

    def banned(self, generated: Sequence[int]) -> np.ndarray | None:
        """The tokens that would complete a banned run after `generated`, or None."""
        if not self.prefix or len(generated) < self.prefix:
            return None
        return self._nexts.get(tuple(generated[-self.prefix :]))

    def apply(self, generated: Sequence[int], logits: np.ndarray) -> np.ndarray:
        """The logits with the banned continuations at -inf (the same array when none is; never
        all of them: a ban that would leave no token is not applied)."""
        banned = self.banned(generated)
        if banned is None:
            return logits
        guarded = np.array(logits, dtype=np.float32, copy=True)
        guarded[banned] = -np.inf
        return guarded if np.isfinite(guarded).any() else logits
