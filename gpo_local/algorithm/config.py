"""The run configuration: the table of every option, GPOConfig, Limits, presets, validation.

`OPTIONS` is the only place an option is declared: its name, type, default, bounds, choices,
the methods it applies to, its section of `--help`, and its help. Everything else is derived
from it: the click options of the command line (cli_options.py: choices, ranges, help
sections), the types and bounds a TOML file and the Python API are checked against, the
runtime defaults and the switches each method takes (settings.py), the keyword arguments of
`gpo_local.optimize` (api.py) and the option list of the bench harness (quality/config.py).

The table is written in parts, each next to the dataclass fields it declares; OPTIONS joins them
in this order: the "config" options by theme, in options_method.py (the method and GPO's strategy
switches: MethodConfig), options_data.py (the examples shown, scored and tested on: DataConfig) and
options_candidates.py (how candidates are sampled, checked and raced: CandidateConfig); then the
others in options_runtime.py (with Limits, the "limit" group's fields). GPOConfig below inherits
the three "config" dataclasses, so its fields are the "config" options in the table's order; a
test holds every written-out field and default to the table. The vocabulary of a declaration
(Option) and the checks of a value against one are in option.py.

Adding an option touches two files: its table part (for a "config" or "limit" option, its
declaration and its field, written next to each other there) and the code that reads it.

Groups: "config" (GPOConfig: what the optimization does), "limit" (Limits: when to stop
early), "runtime" (models and llama.cpp settings), "task" (how TASK is loaded), "run" (the
initial prompt, the run directory, output). `cli` False keeps a field out of the command line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gpo_local.algorithm.option import Option, check_value
from gpo_local.algorithm.options_candidates import CANDIDATE_OPTIONS, CandidateConfig
from gpo_local.algorithm.options_data import DATA_OPTIONS, DataConfig
from gpo_local.algorithm.options_method import METHOD_NAMES, METHOD_OPTIONS, MethodConfig
from gpo_local.algorithm.options_runtime import LIMIT_OPTIONS, RUN_OPTIONS, RUNTIME_OPTIONS, TASK_OPTIONS
from gpo_local.algorithm.options_runtime import Limits as Limits
from gpo_local.algorithm.racing import RacingConfig
from gpo_local.algorithm.schedules import canonical_schedule, make_schedule
from gpo_local.errors import ConfigError, OptionValue

# SGDM is this preset of the switches (methods/sgdm.py explains the choice); applied once, in settings.
SGDM_PRESET = dict(
    gradient="feedback", momentum="feedback", momentum_update="real-time", update="edit", schedule="fixed"
)

CONFIG_OPTIONS: tuple[Option, ...] = (*METHOD_OPTIONS, *DATA_OPTIONS, *CANDIDATE_OPTIONS)
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
    if self.induced_candidates > self.candidates:
        raise ConfigError(
            OptionValue("induced_candidates", self.induced_candidates),
            " is more than ",
            OptionValue("candidates", self.candidates),
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


# A dataclass takes its bases' fields from the last base to the first: the bases are listed in the
# reverse of the table's order, so the fields come in the table's order.
@dataclass(frozen=True)
class GPOConfig(CandidateConfig, DataConfig, MethodConfig):
    """The run configuration of every method: the paper's headline GPO switches (the original
    GPO.sh), with the optimizer's temperature, the format examples, the reply grammar and the
    instruction position that the instruction-induction suite's tuning half chose (the same for
    every task). The strategy switches only apply to `gpo` (and are preset for `sgdm`). Its
    fields are the "config" options of OPTIONS, in their order, with their defaults, written out
    in the table's parts it inherits (MethodConfig, DataConfig, CandidateConfig; a test holds
    the two together)."""

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
