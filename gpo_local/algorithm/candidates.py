"""A step's candidates: what a call for them returns, their de-duplication and the record each
one gets.

Candidates are de-duplicated in order on their whitespace-normalized text, keeping the first
spelling and its parent. Every candidate, new or already scored, gets a candidate record in the
trajectory log: its dev score, parent, step size and word edit distance from the parent, and,
when racing scored it (racing.py), how far the race went.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import NamedTuple, Sequence

from gpo_local.algorithm.racing import candidate_fields
from gpo_local.algorithm.updates import word_edit_distance
from gpo_local.core import Candidate, EvalResult
from gpo_local.replies.parsing import normalize_prompt


class Proposal(NamedTuple):
    """Candidates of a call (None for a dropped reply), the parent of each, the meta-prompts as
    sent, and the word cap of the replies."""

    candidates: list[str | None]
    parents: list[str | None]
    metas: list[str]
    cap: int | None


def distinct_candidates(
    parsed: Sequence[str | None], parents: Sequence[str | None]
) -> dict[str, tuple[str, str | None]]:
    """Normalized text -> (first spelling, its parent) of the usable replies, in order."""
    distinct: dict[str, tuple[str, str | None]] = {}
    for prompt, origin in zip(parsed, parents):
        if prompt is not None:
            distinct.setdefault(normalize_prompt(prompt), (prompt, origin))
    return distinct


def candidate_record(
    prompt: str,
    *,
    origin: str | None,
    step: int,
    budget: int | None,
    score: float,
    result: EvalResult | None,
    total: int,
) -> dict:
    """The candidate record of `prompt`; `result` is its racing result when it was new this step
    (None: scored before), `total` the dev questions a full scoring asks."""
    candidate = Candidate(
        prompt=prompt,
        dev_score=score,
        step=step,
        parent=origin,
        budget=budget,
        edit_distance=None if origin is None else word_edit_distance(origin, prompt),
        new=result is not None,
    )
    raced = candidate_fields(result, total) if result is not None else {}
    return {**asdict(candidate), **raced}
