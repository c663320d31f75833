"""The reply quota: a step asks the optimizer again until it has the candidates it asked for.

A dropped reply (replies/drops.py) or one that repeats a prompt already scored is a candidate
the step never scores, so without the quota a step proposes fewer prompts than asked. With it
(`reply_quota`), a call for n candidates that got fewer than n usable, distinct, new prompts
asks again for the missing ones, each ask with its own seed (the step's next ask numbers,
draws.candidate_seed), re-sending the meta-prompts whose replies were not usable, in turn. It
stops at 2n asks in all. The extra asks are optimizer calls made like any other (usage.py
counts them); the run's call budget is twice its plan when the quota is on (budget.call_budget),
so they never take a later step's calls, and every method, the baselines included, gets the same
quota through Method.propose. A lower --max-optimizer-calls still bounds them.

A repeat of a prompt scored before is kept as a candidate (it competes with its known score, as
without the quota) but does not count toward the quota; a repeat of an earlier ask's prompt is
dropped as a `duplicate`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Collection, Sequence

from gpo_local.replies.parsing import normalize_prompt

ASKS_PER_CANDIDATE = 2  # the bound: at most twice the requested candidates in all

# Retries(slots, first, seen) -> the parsed replies of the meta-prompts `slots`, asked with the
# step's ask numbers from `first` on, repeats of the normalized prompts `seen` dropped.
Retries = Callable[[list[int], int, set], list]


@dataclass
class Tally:
    """A step's quota counts, recorded in its step record: candidates asked for (`wanted`),
    optimizer calls made for them (`asks`), usable new distinct candidates obtained (`usable`)."""

    wanted: int = 0
    asks: int = 0
    usable: int = 0

    def add(self, wanted: int, asks: int, usable: int) -> None:
        self.wanted, self.asks, self.usable = self.wanted + wanted, self.asks + asks, self.usable + usable

    def take(self) -> dict:
        counts = {"asks": self.asks, "wanted": self.wanted, "usable": self.usable}
        self.wanted = self.asks = self.usable = 0
        return counts


def usable_slots(parsed: Sequence[str | None], known: Collection[str]) -> list[bool]:
    """Whether each parsed reply is a usable new candidate: kept by the reply checks, not a
    prompt scored before (`known`: normalized prompts), not a repeat of an earlier reply."""
    seen, usable = set(), []
    for prompt in parsed:
        key = None if prompt is None else normalize_prompt(prompt)
        usable.append(key is not None and key not in known and key not in seen)
        if key is not None:
            seen.add(key)
    return usable


def fill(
    parsed: list[str | None], *, known: Collection[str], spare: int, retry: Retries
) -> tuple[list[str | None], list[int], int]:
    """Ask again until the call's `len(parsed)` requested candidates are usable, within the
    bound and `spare` calls of budget: (every parsed reply, the meta-prompt index of each, the
    asks made in all)."""
    wanted = len(parsed)
    parsed, slots = list(parsed), list(range(wanted))
    asks, last = wanted, 0  # `last`: where the latest ask's replies start
    while True:
        usable = usable_slots(parsed, known)
        missing = wanted - sum(usable)
        count = min(missing, ASKS_PER_CANDIDATE * wanted - asks, spare - (asks - wanted))
        if count <= 0:
            return parsed, slots, asks
        failed = [slot for slot, ok in zip(slots[last:], usable[last:]) if not ok] or list(range(wanted))
        again = [failed[i % len(failed)] for i in range(count)]
        seen = {normalize_prompt(p) for p in parsed if p is not None}
        last = len(parsed)
        parsed += retry(again, asks, seen)
        slots += again
        asks += count
