"""Update directions: which trajectory prompts the optimizer sees at a step (GPO_SPEC 2.2, 2.3).

Every selector has the signature `(trajectory, k, similarities) -> list[TrajectoryEntry]`:
`trajectory` is oldest first and its last entry is the current prompt; `similarities[i]` is
the cosine similarity of entry i to the current prompt (only `relevance` reads it; the FAISS
index computes it, see trajectory.py). The selectors are pure, so they are tested directly.

Decisions (GPO_SPEC 8.14): k is the total number of items shown and k=0 means none (the
original's k=0 recency slice selected everything); relevance skips earlier entries whose text
equals an already selected one, so the optimizer is not shown the same prompt twice.
"""

from __future__ import annotations

from typing import Callable, Sequence

from .core import TrajectoryEntry
from .errors import ConfigError

Selector = Callable[[Sequence[TrajectoryEntry], int, Sequence[float]], list[TrajectoryEntry]]


def recency(trajectory, k, similarities=()) -> list[TrajectoryEntry]:
    """The last k entries, newest first (the current prompt included)."""
    if k <= 0:
        return []
    return list(reversed(trajectory[-k:]))


def relevance(trajectory, k, similarities) -> list[TrajectoryEntry]:
    """The current prompt, then the k-1 earlier entries most similar to it, most similar first.

    Ties in similarity go to the newer entry (the original's order was arbitrary there)."""
    if k <= 0 or not trajectory:
        return []
    if len(similarities) != len(trajectory):
        raise ValueError(f"relevance needs one similarity per entry ({len(similarities)} != {len(trajectory)})")
    current = trajectory[-1]
    chosen = [current]
    seen = {current.prompt}
    # Newest first, then a stable sort by similarity: ties keep newest first.
    earlier = sorted(range(len(trajectory) - 2, -1, -1), key=lambda i: -similarities[i])
    for i in earlier:
        if len(chosen) >= k:
            break
        if trajectory[i].prompt not in seen:
            seen.add(trajectory[i].prompt)
            chosen.append(trajectory[i])
    return chosen


def importance(trajectory, k, similarities=()) -> list[TrajectoryEntry]:
    """The k best entries of the whole trajectory by dev score, best first; ties go to the
    earlier entry. As in the original, the current prompt may be left out."""
    if k <= 0:
        return []
    order = sorted(range(len(trajectory)), key=lambda i: (-trajectory[i].dev_score, i))
    return [trajectory[i] for i in order[:k]]


SELECTORS: dict[str, Selector] = {"recency": recency, "relevance": relevance, "importance": importance}
ALIASES = {"relavance": "relevance"}  # the original's spelling


def get_selector(name: str) -> Selector:
    key = ALIASES.get(name, name)
    if key not in SELECTORS:
        raise ConfigError(f"unknown selection {name!r}; known: {', '.join(sorted(SELECTORS))}")
    return SELECTORS[key]
