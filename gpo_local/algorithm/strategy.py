"""What the strategies of a GPO step share: their shape and the optimizer call they may make.

A strategy (a gradient, a momentum over feedback, a direction, an update rule) is a function
`(context, state) -> (result, new_state)`, as optax passes `(updates, state)`:
- `context` is a frozen dataclass of its family (gradients.GradientContext,
  gradients.FeedbackContext, directions.DirectionContext, updates.UpdateContext) holding only
  what the strategy reads: the config values it uses, and capabilities already bound to the
  step, such as asking the optimizer or scoring a prompt on the dev split. A strategy never
  holds the optimizer object, so it can reach nothing else;
- `state` is what it carried over from the previous step (None at the first step) and
  `new_state` what it carries on; a stateless strategy returns the state it was given.

Each family's registry maps a switch value to a `Strategy`: the function, and the key of the
step record its state is recorded under, so that a resume restores it generically (the latest
recorded value, trajectory.last_recorded).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol, Sequence


class Ask(Protocol):
    """The optimizer, bound to a step: one reply per meta-prompt, each with its own seed from
    (run seed, task, step, tag + index), so a resumed step asks the same."""

    def __call__(
        self, meta_prompts: Sequence[str], *, tag: str = "", temperature: float | None = None
    ) -> list[str]: ...


@dataclass(frozen=True)
class Strategy:
    """A registry entry: `apply(context, state) -> (result, new_state)`, and `state_key`, the
    step-record key its state is recorded under (None: a stateless strategy)."""

    apply: Callable[[Any, Any], tuple[Any, Any]]
    state_key: str | None = None

    def __call__(self, context, state=None) -> tuple[Any, Any]:
        return self.apply(context, state)
