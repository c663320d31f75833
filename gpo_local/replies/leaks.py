"""Exemplar leakage: a candidate "prompt" that restates a task example.

A small optimizer, shown format examples in the meta-prompt, often copies one of them into its
reply (BBH navigate: "If you follow these instructions, do you return to the starting point?
Take 6 steps. Turn right. ... Options: - Yes - No"). Such a prompt may even score well, from the
answer format alone, but it is not an instruction a user wants back; it is rejected
(drop reason `leaks_example`, `--no-leak-check` turns this off). On a llama.cpp optimizer the
copy guard (backends/copy_guard.py) keeps such copies from being written in the first place;
this check still judges every reply (other optimizers, `--no-copy-guard`, a copy of a dev or
train question the meta-prompt never showed).

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

Meta talk (drop reason `meta_talk`, the same switch): a reply that talks about the prompt
instead of being one. Small optimizers restate the meta-prompt's own instructions ("Change at
most 40 words of the current prompt.", chosen once as a GPO cell's next prompt at dev 33.3) or
comment on the prompt ("The current prompt is too vague and could lead to poor
interpretations."). Such candidates can score well on dev and end as a run's final prompt, most
often with PE2, whose meta-prompt asks for reasoning before the prompt. The test is a list of
phrases (META_PHRASES) that the meta-prompts use to address the optimizer (updates.py,
methods/*.py) and that an instruction to the task model has no reason to contain: "the current
prompt", "new prompt", "words between the tags"... Every candidate it flags there is meta talk
(read one by one); one of PE2's quotes a usable prompt after its preamble ("... the improved
prompt would be: \"Given a set of three objects ...\""), and is dropped with it. `python
benchmarks/meta_talk.py RUN_DIR ...` counts them in recorded runs.
A reply that states a score in the form the meta-prompts list earlier prompts with ("Score:
54.2", updates.format_score) echoes that listing: GPO's final prompt on hyperbaton, seed 2, ends
"... provide the option with the correct adjective order.\nThe score is 54.2.\nAfter reviewing
the examples, ...". It counts as meta talk too (SCORE_ECHO); a rating task's "a score from 1 to
5" does not match, since the listing's scores always carry one decimal.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Iterable

# Phrases of the meta-prompts that address the optimizer (tests/test_grammar.py checks that each
# still occurs in one), matched case-insensitively on whole words with whitespace folded.
META_PHRASES = (
    "the current prompt",
    "new prompt",
    "improved prompt",
    "modified prompt",
    "rewritten prompt",
    "words between the tags",
    "do not copy an example",
    "stands for the prompt",
    "in the task inputs below",
    "prompt and score above",
    "prompts and scores above",
    "dev examples",
    "prompt that replaces",
)
_META = re.compile(
    r"\b(?:" + "|".join(re.escape(p).replace(r"\ ", r"\s+") for p in META_PHRASES) + r")\b", re.IGNORECASE
)
# "Score: 54.2", "the score is 54.2", "score was 37.5": a score as the meta-prompts print it.
SCORE_ECHO = re.compile(r"\bscore\s*(?::|=|\bis\b|\bwas\b)\s*\d{1,3}\.\d\b", re.IGNORECASE)
NGRAM = 5
COVERAGE = 0.5
MIN_WORDS = 8
_WORD = re.compile(r"\w+")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def ngrams(tokens: list[str], n: int = NGRAM) -> set[tuple[str, ...]]:
    return {tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}


class LeakDetector:
    """Indexes the reference texts once; `copied(candidate)` is the largest number of the
    candidate's words covered by shared n-grams with one reference, `leaks(candidate)` the
    verdict."""

    def __init__(
        self,
        references: Iterable[str],
        *,
        n: int | None = None,
        coverage: float | None = None,
        min_words: int | None = None,
    ):
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
            for ref_id in self._index.get(tuple(tokens[i : i + self.n]), ()):
                covered[ref_id].update(range(i, i + self.n))
        return max((len(c) for c in covered.values()), default=0), len(tokens)

    def leaks(self, candidate: str) -> bool:
        copied, total = self.copied(candidate)
        return copied >= self.min_words and copied >= self.coverage * total


def leak_references(exemplars, *splits) -> list[str]:
    """The texts a candidate must not restate: exemplar inputs and targets, and the inputs of
    the given splits (dev, train)."""
    texts = [
        t for e in exemplars for t in (e.input, e.shown_target)
    ]  # shown_target: a text even for several answers
    texts += [e.input for split in splits for e in split]
    return texts


def talks_to_optimizer(candidate: str) -> bool:
    """Whether a candidate contains a phrase of META_PHRASES or echoes a listed score
    (SCORE_ECHO): it talks about the prompt (meta talk) instead of instructing the task model."""
    return _META.search(candidate) is not None or SCORE_ECHO.search(candidate) is not None
