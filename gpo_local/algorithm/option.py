"""One option's declaration (Option) and the checks of a value against it: type, finite
bounds, choices and their aliases. The table of every option is config.OPTIONS; this module
holds the vocabulary it is written in, the upper bounds its parts share, and the parsers of the
options given as text."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from gpo_local.errors import ConfigError, OptionValue


def parse_splits(value: str | None) -> dict[str, str] | None:
    """`ROLE=NAME,...` (the command line's --splits) as a mapping."""
    if not value:
        return None
    mapping = {}
    for item in value.split(","):
        role, sep, name = item.partition("=")
        if not sep or not role.strip() or not name.strip():
            raise ConfigError(f"{item!r} is not ROLE=NAME (e.g. eval=validation,train=train)")
        mapping[role.strip()] = name.strip()
    return mapping


def parse_directory(value: str | None) -> str | None:
    """A directory option (--run-dir): an existing file is refused on the command line, as
    click.Path(file_okay=False) does."""
    if value and Path(value).is_file():
        raise ConfigError(f"Directory {str(value)!r} is a file.")
    return value


# The sections of `optimize --help`, in order: the options a user needs first, then the
# algorithm's switches, then racing, limits and runtime. An option's section defaults to its group's.
SECTIONS = {
    "essentials": "Essentials: method, budget, models, data",
    "algorithm": "The algorithm's switches",
    "replies": "Optimizer replies",
    "racing": "Racing (dev scoring of a step's candidates)",
    "limit": "Limits (checked at step boundaries; resumable)",
    "task": "Loading the task",
    "runtime": "Runtime: models and llama.cpp",
    "run": "The run",
}
GROUP_SECTIONS = {"config": "algorithm", "limit": "limit", "runtime": "runtime", "task": "task", "run": "run"}
# Upper bounds that no machine or model reaches, shared by the table's parts; the bounds that follow
# from this machine and the chosen models (threads, context, memory) are checked in app/bounds.py.
MAX_COUNT = 1_000_000  # questions, calls, items
MAX_WORDS = 1_000  # an edit budget or a prompt length, in words
MAX_SEED = 2**32 - 1  # llama.cpp's seeds are 32-bit


@dataclass(frozen=True)
class Option:
    name: str  # python name; the command line's is --name-with-dashes
    kind: type  # int | float | str | bool | dict
    default: Any
    help: str
    group: str = "config"
    minimum: int | float | None = None
    maximum: int | float | None = None  # numbers: every int and float option has one (finite)
    choices: tuple[str, ...] | Callable[[], tuple[str, ...]] | None = None
    aliases: dict[str, str] | None = None  # accepted spellings of a choice (the original's typos)
    cli: bool = True  # offered on the command line (and in TOML files)
    show_default: bool = False  # the command line's default is the real one (not "unset")
    parse: Callable[[Any], Any] | None = None  # command-line text -> value (raises ConfigError)
    flag_value: Any = None  # the value of the flag given without one (an option whose value may be left out)
    negatable: bool = False  # a bool option with a --no- form (to undo a TOML file's true)
    methods: tuple[str, ...] | None = None  # the methods that take it (None: every method)
    strategy: bool = (
        False  # selects a GPO strategy; its default is the paper's headline (the original GPO.sh)
    )
    section: str | None = None  # the section of --help (default: its group's)
    min_open: bool = False  # the minimum itself is excluded
    max_open: bool = False  # the maximum itself is excluded
    bound: str | None = None  # a further bound from the machine or the model (app/bounds.py)

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def help_section(self) -> str:
        return self.section or GROUP_SECTIONS[self.group]

    def allowed(self) -> tuple[str, ...] | None:
        return self.choices() if callable(self.choices) else self.choices

    def help_text(self) -> str:
        text = self.help
        if self.bound:
            text = f"{text.rstrip('.')}; {self.bound}."
        if self.show_default or self.default is None or self.default is False or "default" in self.help:
            return text
        return f"{text} [default: {self.default}]."


def bound_error(option: Option, value: int | float) -> str | None:
    """Why `value` is outside `option`'s declared bounds (None when inside): not finite, below
    the minimum or above the maximum; the caller names the option."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"must be a finite number (got {value})"
    low, high = option.minimum, option.maximum
    if low is not None and (value <= low if option.min_open else value < low):
        return (
            f"must be above {low} (got {value!r})"
            if option.min_open
            else f"must be at least {low} (got {value!r})"
        )
    if high is not None and (value >= high if option.max_open else value > high):
        return (
            f"must be below {high} (got {value!r})"
            if option.max_open
            else f"must be at most {high} (got {value!r})"
        )
    return None


def canonical_choice(option: Option, value: str, label: str | None = None) -> str:
    """`value` of a choice option, its alias resolved; refused with the known choices."""
    allowed = option.allowed()
    value = (option.aliases or {}).get(value, value)
    if option.group == "task":  # metric names are case-insensitive
        value = value.lower()
    if value not in allowed:
        named = f"{label} {value!r}" if label else OptionValue(option.name, value)
        raise ConfigError("unknown ", named, f"; known: {', '.join(allowed)}")
    return value


def check_value(option: Option, value: Any, label: str | None = None) -> Any:
    """`value` of `option` checked against its declared type, bounds and choices (ints are
    accepted as floats); the message names the option as `label` (as the user wrote it) or
    by its name (errors.OptionValue: a flag on the command line)."""
    kind = option.kind
    named = f"option {label!r}" if label else OptionValue(option.name)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(named, f" must be a {kind.__name__} (got {value!r})")
    if kind in (int, float) and (problem := bound_error(option, value)):
        raise ConfigError(named, f" {problem}")
    if option.choices is not None:
        value = canonical_choice(option, value, label)
    return value
