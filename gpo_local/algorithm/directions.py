"""Update directions: which trajectory prompts the optimizer sees at a step (the paper's analogical momentum).

Every selector has the signature `(trajectory, k, similarities) -> list[TrajectoryEntry]`:
`trajectory` is oldest first and its last entry is the current prompt; `similarities[i]` is
the cosine similarity of entry i to the current prompt (only `relevance` reads it; the FAISS
index computes it, see trajectory.py). The selectors are pure, so they are tested directly.

Momentum over feedback (`--momentum feedback`) selects among the earlier
gradient texts with the same signature: the items are `GradientEntry`s, oldest first, the last
one the new gradient, and `similarities` compare their texts with the new one.

Decisions where the original code is inconsistent: k is the total number of items shown and k=0
means none (the original's k=0 recency slice selected everything; its importance-over-feedback
showed k+1 items, here it shows k: the new gradient and the k-1 earlier ones that improved the
score most); relevance skips earlier entries whose text equals an already selected one, so the
optimizer is not shown the same prompt twice; para importance may leave out the current prompt,
as in the original (it is shown anyway in the "current prompt" section).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

from gpo_local.algorithm.strategy import Ask, Strategy
from gpo_local.algorithm.trajectory import PARA_MOMENTUM_KEY
from gpo_local.algorithm.updates import render_prompt_summary
from gpo_local.core import TrajectoryEntry
from gpo_local.errors import ConfigError
from gpo_local.replies.parsing import normalize_prompt, parse_candidate


@dataclass(frozen=True)
class GradientEntry:
    """One feedback gradient: its text, the step that produced it and the dev-score change of
    the prompt chosen at that step (None until the step is complete)."""

    text: str
    step: int
    improvement: float | None = None


def _text(item) -> str:
    return item.text if isinstance(item, GradientEntry) else item.prompt


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
        raise ValueError(
            f"relevance needs one similarity per entry ({len(similarities)} != {len(trajectory)})"
        )
    current = trajectory[-1]
    chosen = [current]
    seen = {_text(current)}
    # Newest first, then a stable sort by similarity: ties keep newest first.
    earlier = sorted(range(len(trajectory) - 2, -1, -1), key=lambda i: -similarities[i])
    for i in earlier:
        if len(chosen) >= k:
            break
        if _text(trajectory[i]) not in seen:
            seen.add(_text(trajectory[i]))
            chosen.append(trajectory[i])
    return chosen


def importance(trajectory, k, similarities=()) -> list[TrajectoryEntry]:
    """The k best entries of the whole trajectory by dev score, best first; ties go to the
    earlier entry. As in the original, the current prompt may be left out."""
    if k <= 0:
        return []
    order = sorted(range(len(trajectory)), key=lambda i: (-trajectory[i].dev_score, i))
    return [trajectory[i] for i in order[:k]]


def importance_feedback(gradients, k, similarities=()) -> list[GradientEntry]:
    """The new gradient, then the k-1 earlier gradients whose step improved the dev score most;
    ties go to the earlier gradient."""
    if k <= 0 or not gradients:
        return []
    *earlier, new = gradients
    order = sorted(range(len(earlier)), key=lambda i: (-(earlier[i].improvement or 0.0), i))
    return [new, *(earlier[i] for i in order[: k - 1])]


SELECTORS: dict[str, Selector] = {"recency": recency, "relevance": relevance, "importance": importance}
FEEDBACK_SELECTORS: dict[str, Selector] = {
    "recency": recency,
    "relevance": relevance,
    "importance": importance_feedback,
}
ALIASES = {"relavance": "relevance"}  # the original's spelling


def canonical_selection(name: str) -> str:
    key = ALIASES.get(name, name)
    if key not in SELECTORS:
        raise ConfigError(
            f"unknown selection {name!r}; known: {', '.join(sorted(SELECTORS))} (alias: {', '.join(ALIASES)})"
        )
    return key


def get_selector(name: str, *, over: str = "para") -> Selector:
    """The selector for momentum over prompts (`para`) or over gradients (`feedback`)."""
    key = canonical_selection(name)
    return (FEEDBACK_SELECTORS if over == "feedback" else SELECTORS)[key]


# -- direction strategies (momentum over prompts) -------------------------------------------------
#
# Registry entries (strategy.py): `(DirectionContext, state) -> (Direction, new state)`.


@dataclass(frozen=True)
class DirectionContext:
    """What a direction strategy reads at a step."""

    step: int
    trajectory: tuple[TrajectoryEntry, ...]  # oldest first; the last entry is the current prompt
    known_scores: Mapping[str, float]  # normalized prompt -> dev score, every prompt scored so far
    k: int
    selection: str
    similarities: Callable[[str], list[float]]  # the FAISS index: each entry's similarity to a text
    ask: Ask
    score_dev: Callable[[str], float]


@dataclass(frozen=True)
class Direction:
    """The entries the update meta-prompt shows and their header kind (updates.HISTORY_HEADERS);
    `scored` holds the prompts the strategy scored on the dev split, which the loop adds to the
    scored pool."""

    entries: tuple[TrajectoryEntry, ...]
    kind: str
    scored: tuple[tuple[str, float], ...] = ()


def current_only(context: DirectionContext, state):
    """No momentum over prompts: the current prompt alone."""
    return Direction((context.trajectory[-1],), "current"), state


def k_list(context: DirectionContext, state):
    """k trajectory entries chosen by the selection (recency, relevance, importance)."""
    similarities = context.similarities(context.trajectory[-1].prompt)
    chosen = get_selector(context.selection)(context.trajectory, context.k, similarities)
    return Direction(tuple(chosen), "list"), state


def real_time_summary(context: DirectionContext, state):
    """A summary prompt the current prompt is folded into (one optimizer call from the second
    step on); the summary is scored on the dev split unless its score is known. The state is
    the summary prompt and its dev score."""

    current = context.trajectory[-1]
    scored: tuple[tuple[str, float], ...] = ()
    if state is None:
        momentum = current
    else:
        previous = TrajectoryEntry(state["prompt"], state["dev_score"], context.step)
        reply = context.ask([render_prompt_summary(previous, current)], tag="summary", temperature=0.0)[0]
        summary = parse_candidate(reply)
        if summary is None:  # nothing usable: the momentum moves to the current prompt
            momentum = current
        else:
            score = context.known_scores.get(normalize_prompt(summary))
            if score is None:
                score = context.score_dev(summary)
                scored = ((summary, score),)
            momentum = TrajectoryEntry(summary, score, context.step)
    new_state = {"prompt": momentum.prompt, "dev_score": momentum.dev_score}
    return Direction((momentum,), "summary", scored), new_state


DIRECTIONS: dict[str, Strategy] = {
    "current": Strategy(current_only),
    "k-list": Strategy(k_list),
    "real-time": Strategy(real_time_summary, state_key=PARA_MOMENTUM_KEY),
}


def direction_name(config) -> str:
    return config.momentum_update if config.momentum == "para" else "current"
