"""Step-size schedules: the edit budget ("change up to N words") as a function of the step.

Each factory validates its arguments and returns a pure `c -> N` function, optax style.
`c` is the trajectory length when the step starts, so it runs from 1 to T (the
original code indexes the schedule by len(trajectory), which never starts at 0; we keep that so the
budgets equal the paper's tables). Values are truncated with int(), as in the original.
"""

from __future__ import annotations

import math
from typing import Callable

from gpo_local.errors import ConfigError

Schedule = Callable[[int], int]


def _check(name: str, value: float, *, minimum: float = 0) -> None:
    if value < minimum:
        raise ConfigError(f"schedule argument {name}={value!r} must be >= {minimum}")


def _warmup(initial: int, warmup: int, then: Schedule) -> Schedule:
    """Linear ramp from 0 to `initial` over the first `warmup` steps, then `then`."""
    if warmup <= 0:
        return then

    def schedule(c: int) -> int:
        return int(initial * c / warmup) if c < warmup else then(c)

    return schedule


def fixed(initial: int = 50, *, warmup: int = 0, **_: object) -> Schedule:
    _check("initial", initial, minimum=1)
    _check("warmup", warmup)
    return _warmup(initial, warmup, lambda c: int(initial))


def linear(initial: int = 50, final: int = 10, *, total_steps: int, warmup: int = 0) -> Schedule:
    _check("initial", initial, minimum=1)
    _check("final", final)
    _check("warmup", warmup)
    if total_steps <= warmup:
        raise ConfigError(f"linear schedule needs total_steps ({total_steps}) > warmup ({warmup})")
    # As in the original, the warmup is subtracted from T in the slope even when W = 0.
    slope = (initial - final) / (total_steps - warmup)
    if warmup > 0:
        return _warmup(initial, warmup, lambda c: int(initial - slope * (c - warmup)))
    return lambda c: int(initial - slope * c)


def cosine(initial: int = 50, final: int = 10, *, total_steps: int, warmup: int = 0) -> Schedule:
    _check("initial", initial, minimum=1)
    _check("final", final)
    _check("warmup", warmup)
    if total_steps <= warmup:
        raise ConfigError(f"cosine schedule needs total_steps ({total_steps}) > warmup ({warmup})")
    span = total_steps - warmup

    def decay(c: int) -> int:
        return int(final + (initial - final) * 0.5 * (1 + math.cos(math.pi * (c - warmup) / span)))

    return _warmup(initial, warmup, decay)


SCHEDULES: dict[str, Callable[..., Schedule]] = {"fixed": fixed, "linear": linear, "cosine": cosine}
ALIASES = {"consine": "cosine"}  # the original's spelling (GPO.sh)


def canonical_schedule(name: str) -> str:
    """The schedule's canonical name; `none` means no step size (the original's wo_lr)."""
    key = ALIASES.get(name, name)
    if key != "none" and key not in SCHEDULES:
        raise ConfigError(
            f"unknown schedule {name!r}; known: none, {', '.join(sorted(SCHEDULES))} "
            f"(alias: {', '.join(ALIASES)})"
        )
    return key


def make_schedule(name: str, **kwargs) -> Schedule:
    """Build a schedule by name (`fixed`, `linear`, `cosine`, alias `consine`)."""
    key = ALIASES.get(name, name)
    if key not in SCHEDULES:
        raise ConfigError(f"unknown schedule {name!r}; known: {', '.join(sorted(SCHEDULES))}")
    return SCHEDULES[key](**kwargs)


def total_steps(train_size: int, batch_size: int = 8, epochs: int = 3) -> int:
    """T = epochs * S, with S the number of train batches as the original counts them
    (as in the original code, a last partial batch counts only when it holds at least half a batch)."""
    full, rest = divmod(train_size, batch_size)
    batches = full + (1 if rest >= batch_size / 2 else 0)
    return epochs * batches
