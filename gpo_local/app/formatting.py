"""How scores read on screen and in reports: one place, so that every command shows the same figure."""

from __future__ import annotations


def percent(score: float | None) -> str:
    """A score kept as a fraction (0.675) shown on the 0-100 scale ("67.5"); "n/a" when missing."""
    return "n/a" if score is None else f"{100 * score:.1f}"
