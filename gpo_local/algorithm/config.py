"""The run configuration: the table of every option, GPOConfig, Limits, presets, validation.

`OPTIONS` is the only place an option is declared: its name, type, default, bounds, choices,
the methods it applies to, its section of `--help`, and its help. Everything else is derived
from it: the click options of the command line (cli_options.py: choices, ranges, help
sections), the types and bounds a TOML file and the Python API are checked against, the
runtime defaults and the switches each method takes (settings.py), the keyword arguments of
`gpo_local.optimize` (api.py) and the option list of the bench harness (quality/config.py).
The table is written in two parts: the "config" options in options_config.py, the others in
options_runtime.py; OPTIONS joins them, in that order. GPOConfig and Limits are written out
below for readers and type checkers; a test holds their fields and defaults to the table. The
vocabulary of a declaration (Option) and the checks of a value against one are in option.py.
Adding an option is one line in the table plus the code that reads it (and, for a "config" or
"limit" option, its field below).

Groups: "config" (GPOConfig: what the optimization does), "limit" (Limits: when to stop
early), "runtime" (models and llama.cpp settings), "task" (how TASK is loaded), "run" (the
initial prompt, the run directory, output). `cli` False keeps a field out of the command line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gpo_local.algorithm.option import Option, check_value
from gpo_local.algorithm.options_config import CONFIG_OPTIONS, METHOD_NAMES
from gpo_local.algorithm.options_runtime import LIMIT_OPTIONS, RUN_OPTIONS, RUNTIME_OPTIONS, TASK_OPTIONS
from gpo_local.algorithm.racing import DEFAULT_ERROR as RACING_ERROR
from gpo_local.algorithm.racing import DEFAULT_ORDER as RACING_ORDER
from gpo_local.algorithm.racing import DEFAULT_ROUNDS as RACING_ROUNDS
from gpo_local.algorithm.racing import RacingConfig
from gpo_local.algorithm.schedules import canonical_schedule, make_schedule
from gpo_local.errors import ConfigError, OptionValue
from gpo_local.tasks.prompting import DEFAULT_POSITION

# SGDM is this preset of the switches (methods/sgdm.py explains the choice); applied once, in settings.
SGDM_PRESET = dict(
    gradient="feedback", momentum="feedback", momentum_update="real-time", update="edit", schedule="fixed"
)

OPTIONS: tuple[Option, ...] = (*CONFIG_OPTIONS, *LIMIT_OPTIONS, *RUNTIME_OPTIONS, *TASK_OPTIONS, *RUN_OPTIONS)
BY_NAME: dict[str, Option] = {o.name: o for o in OPTIONS}
# The GPO headline switches (the paper's GPO, the original GPO.sh); the budget of every baseline is GPO's
# under them.
HEADLINE_SWITCHES = {o.name: o.default for o in OPTIONS if o.strategy}
# The switches only some methods take, and which (settings.py refuses the others).
SWITCHES = tuple(o.name for o in OPTIONS if o.methods is not None)
METHOD_SWITCHES = {
    method: tuple(o.name for o in OPTIONS if o.methods and method in o.methods) for method in METHOD_NAMES
}


def names(group: str, *, cli_only: bool = False) -> tuple[str, ...]:
    return tuple(o.name for o in OPTIONS if o.group == group and (o.cli or not cli_only))


def defaults(group: str) -> dict[str, Any]:
    return {o.name: o.default for o in OPTIONS if o.group == group}


def check_options(values: Any, group: str) -> None:
    """Every option of `group` in `values` (a dataclass) within its declared type, bounds and
    choices; the message names the option by its flag."""
    for option in OPTIONS:
        value = getattr(values, option.name) if option.group == group else None
        if value is not None:
            check_value(option, value)


def _check_combinations(self: GPOConfig) -> None:
    with_gradient = not self.update.endswith("-without")
    got_gradient = OptionValue("gradient", self.gradient)
    if with_gradient and self.gradient != "feedback":
        raise ConfigError(
            OptionValue("update", self.update),
            " shows a gradient section, which needs ",
            OptionValue("gradient", "feedback"),
            " (got ",
            got_gradient,
            "); use ",
            OptionValue("update", f"{self.update}-without"),
            " instead",
        )
    with_shown = OptionValue("update", self.update.removesuffix("-without"))
    if self.gradient == "feedback" and not with_gradient and self.momentum != "feedback":
        raise ConfigError(
            OptionValue("gradient", "feedback"),
            " is never shown with ",
            OptionValue("update", self.update),
            "; use ",
            with_shown,
            " or ",
            OptionValue("gradient", "none"),
        )
    if self.momentum == "feedback" and self.gradient != "feedback":
        raise ConfigError(
            OptionValue("momentum", "feedback"),
            " (momentum over gradients) needs ",
            OptionValue("gradient", "feedback"),
            " (got ",
            got_gradient,
            ")",
        )
    if self.momentum == "feedback" and not with_gradient:
        raise ConfigError(
            OptionValue("momentum", "feedback"),
            " is never shown with ",
            OptionValue("update", self.update),
            "; use ",
            with_shown,
        )
    if self.momentum != "none" and self.momentum_update == "k-list" and self.k == 0:
        raise ConfigError(
            OptionValue("k", 0),
            " selects nothing for ",
            OptionValue("momentum", self.momentum),
            " with ",
            OptionValue("momentum_update", "k-list"),
            "; use ",
            OptionValue("momentum", "none"),
            " or ",
            OptionValue("k", 1),
            " or more",
        )


@dataclass(frozen=True)
class GPOConfig:
    """The run configuration of every method; the paper's headline GPO (the original GPO.sh) unless
    overridden. The strategy switches only apply to `gpo` (and are preset for `sgdm`). Its
    fields are the "config" options of OPTIONS, in their order, with their defaults (a test
    holds the two together)."""

    method: str = "gpo"
    steps: int = 18
    candidates: int = 8
    gradient: str = "none"
    momentum: str = "para"
    selection: str = "relevance"
    momentum_update: str = "k-list"
    k: int = 3
    update: str = "generate-without"
    schedule: str = "cosine"
    lr_init: int = 50
    lr_final: int = 10
    warmup: int = 0
    train_batch: int = 8
    format_examples: int = 3
    answer_max_tokens: str | None = None
    position: str = DEFAULT_POSITION
    dev_limit: int | None = None
    test_limit: int | None = None
    test_holdout: int | None = None
    optimizer_temperature: float = 1.0
    optimizer_min_p: float = 0.0
    optimizer_max_tokens: int = 512
    require_tags: bool = False
    max_prompt_words: int | None = None
    seed: int = 0
    racing: bool = False
    racing_error: float = RACING_ERROR
    racing_rounds: int = RACING_ROUNDS
    racing_order: str = RACING_ORDER
    grammar: bool = True
    leak_check: bool = True
    copy_guard: bool = True
    reply_quota: bool = False

    def validate(self) -> None:
        """Check values against the table and the combinations that crash the original code or make
        no sense. Messages name the options (errors.OptionValue)."""
        check_options(self, "config")
        _check_combinations(self)
        self.make_schedule()
        if self.racing:
            RacingConfig(self.racing_error, self.racing_rounds).validate()

    def make_schedule(self):
        name = canonical_schedule(self.schedule)
        if name == "none":
            return None
        return make_schedule(
            name, initial=self.lr_init, final=self.lr_final, total_steps=self.steps, warmup=self.warmup
        )


@dataclass(frozen=True)
class Limits:
    """Budget limits, checked at step boundaries: a run stops before a step whose
    planned optimizer calls would exceed `max_optimizer_calls`, and before the next step once
    `max_task_tokens` tokens were generated by the task model or `time_limit` seconds passed."""

    max_optimizer_calls: int | None = None
    max_task_tokens: int | None = None
    time_limit: float | None = None
