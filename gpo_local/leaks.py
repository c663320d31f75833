"""Exemplar leakage (GPO_SPEC 3.5): a candidate "prompt" that restates a task example.

A small optimizer, shown format examples in the meta-prompt, often copies one of them into its
reply (BBH navigate: "If you follow these instructions, do you return to the starting point?
Take 6 steps. Turn right. ... Options: - Yes - No"). Such a prompt may even score well, from the
answer format alone, but it is not an instruction a user wants back; it is rejected
(drop reason `leaks_example`, `--no-leak-check` turns this off).

The test is word n-gram coverage against one reference text at a time (an exemplar input or
target shown to the optimizer, or a dev or train question): the share of the candidate's words
that lie inside a word n-gram (n = NGRAM) also found in that reference. Why these thresholds:
- NGRAM = 5: five consecutive identical words rarely occur by chance, while a legitimate
  instruction quotes at most a short phrase of the task's wording ("return to the starting
  point" is 5 words, "you return to the starting point" 6);
- COVERAGE = 0.5: a prompt at least half made of one example's text is a restated example;
  an instruction that repeats the question's fixed header and then says what to do stays below;
- MIN_WORDS = 8 copied words: a short prompt that quotes one phrase of the task is not flagged.
Coverage is measured against a single reference, so a prompt stitched from phrases common to
all questions of a task (its template) is not mistaken for a copy unless most of it is copied.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Iterable

NGRAM = 5
COVERAGE = 0.5
MIN_WORDS = 8
_WORD = re.compile(r"\w+")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def ngrams(tokens: list[str], n: int = NGRAM) -> set[tuple[str, ...]]:
    return {tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)}


class LeakDetector:
    """Indexes the reference texts once; `copied(candidate)` is the largest number of the
    candidate's words covered by shared n-grams with one reference, `leaks(candidate)` the
    verdict."""

    def __init__(self, references: Iterable[str], *, n: int | None = None, coverage: float | None = None,
                 min_words: int | None = None):
        # Module values read here, not bound at definition, so a caller (or test) may tune them.
        self.n = NGRAM if n is None else n
        self.coverage = COVERAGE if coverage is None else coverage
        self.min_words = MIN_WORDS if min_words is None else min_words
        n = self.n
        self._index: dict[tuple[str, ...], list[int]] = defaultdict(list)
        for ref_id, text in enumerate(dict.fromkeys(references)):
            for gram in ngrams(words(text), n):
                self._index[gram].append(ref_id)

    def copied(self, candidate: str) -> tuple[int, int]:
        """(words covered by n-grams shared with the best-matching reference, candidate words)."""
        tokens = words(candidate)
        covered: dict[int, set[int]] = defaultdict(set)
        for i in range(len(tokens) - self.n + 1):
            for ref_id in self._index.get(tuple(tokens[i:i + self.n]), ()):
                covered[ref_id].update(range(i, i + self.n))
        return max((len(c) for c in covered.values()), default=0), len(tokens)

    def leaks(self, candidate: str) -> bool:
        copied, total = self.copied(candidate)
        return copied >= self.min_words and copied >= self.coverage * total


def leak_references(exemplars, *splits) -> list[str]:
    """The texts a candidate must not restate: exemplar inputs and targets, and the inputs of
    the given splits (dev, train)."""
    texts = [t for e in exemplars for t in (e.input, e.shown_target)]  # shown_target: a text even for several answers
    texts += [e.input for split in splits for e in split]
    return texts
