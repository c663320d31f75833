"""The click options of the command line, derived from the one declaration of the options
(config.OPTIONS): their types (choices with their aliases, ranges with their finite bounds),
defaults, help and, for `optimize --help`, their sections (click-option-group). Its own module
so that the bench harness (quality/config.py) can parse an optimize command line exactly as
`gpo-local optimize` does without importing cli.py."""

from __future__ import annotations

from pathlib import Path

import click
from click_option_group import optgroup

from gpo_local.algorithm.config import OPTIONS
from gpo_local.algorithm.option import SECTIONS, Option, bound_error
from gpo_local.errors import GpoError


class AliasChoice(click.Choice):
    """A click.Choice that also takes the declared aliases (the original's spellings) and
    returns the canonical name."""

    def __init__(self, choices, aliases: dict[str, str] | None = None, **kwargs):
        super().__init__(choices, **kwargs)
        self.aliases = aliases or {}

    def convert(self, value, param, ctx):
        return super().convert(self.aliases.get(value, value), param, ctx)


class _Bounded:
    """A click number range from a declared option: its help shows both bounds; a value below
    the minimum is refused with click's message (`0 is not in the range x>=1`), one that is not
    finite or above the maximum with the declaration's (config.bound_error)."""

    def __init__(self, option: Option):
        super().__init__(
            min=option.minimum, max=option.maximum, min_open=option.min_open, max_open=option.max_open
        )
        self.option = option

    def convert(self, value, param, ctx):
        number = self.number.convert(value, param, ctx)
        low = self.option.minimum
        if low is not None and (number <= low if self.option.min_open else number < low):
            relation = ">" if self.option.min_open else ">="
            self.fail(f"{number} is not in the range x{relation}{low}.", param, ctx)
        problem = bound_error(self.option, number)
        if problem:
            self.fail(problem, param, ctx)
        return number


class BoundedInt(_Bounded, click.IntRange):
    number = click.INT


class BoundedFloat(_Bounded, click.FloatRange):
    number = click.FLOAT


def _option_kwargs(option: Option) -> tuple[tuple[str, ...], dict]:
    """The declarations and keyword arguments of the click option of a declared option."""
    kwargs: dict = {
        "help": option.help_text(),
        "default": option.default if option.show_default else None,
        "show_default": option.show_default,
    }
    if option.kind is bool and option.default:  # on by default: --name/--no-name, None when not given
        declarations = (f"{option.flag}/--no-{option.flag[2:]}", option.name)
        return declarations, {"default": None, "help": option.help_text()}
    if option.kind is bool:
        kwargs.update(is_flag=True, default=bool(option.default))
        if option.negatable:  # --name/--no-name
            return (f"{option.flag}/--no-{option.flag[2:]}", option.name), kwargs
    elif option.choices is not None:
        kwargs["type"] = AliasChoice(option.allowed(), option.aliases, case_sensitive=option.group != "task")
    elif option.kind in (int, float):
        kwargs["type"] = (BoundedInt if option.kind is int else BoundedFloat)(option)
    if option.flag_value is not None:  # --name alone, or --name VALUE
        kwargs.update(is_flag=False, flag_value=option.flag_value)
    if option.parse is not None:

        def callback(ctx, param, value, parse=option.parse):
            try:
                return parse(value)
            except GpoError as error:
                raise click.BadParameter(str(error)) from None

        kwargs["callback"] = callback
    return (option.flag, option.name), kwargs


def _click_option(option: Option):
    """The click option of a declared option (config.OPTIONS)."""
    declarations, kwargs = _option_kwargs(option)
    return click.option(*declarations, **kwargs)


def _chosen(groups: tuple[str, ...], exclude: tuple[str, ...]) -> list[Option]:
    return [o for o in OPTIONS if o.group in groups and o.cli and o.name not in exclude]


def declared_options(*groups: str, exclude: tuple[str, ...] = ()):
    """A decorator adding the declared command-line options of `groups`, in declaration order."""
    chosen = _chosen(groups, exclude)

    def decorate(func):
        for option in reversed(chosen):
            func = _click_option(option)(func)
        return func

    return decorate


def sectioned_options(*groups: str, exclude: tuple[str, ...] = ()):
    """Like declared_options, with `--help` in the declared sections (config.SECTIONS), in
    their order, each option in declaration order within its section."""
    chosen = _chosen(groups, exclude)
    sections = [(title, [o for o in chosen if o.help_section == key]) for key, title in SECTIONS.items()]

    def decorate(func):
        # click-option-group reads its decorators top-down: a group, then its options.
        for title, members in reversed([s for s in sections if s[1]]):
            for option in reversed(members):
                declarations, kwargs = _option_kwargs(option)
                func = optgroup.option(*declarations, **kwargs)(func)
            func = optgroup.group(title)(func)
        return func

    return decorate


def _optimize_only():
    return [
        sectioned_options("config", "limit", "runtime", "task", "run"),
        click.option(
            "--config",
            "config_file",
            type=click.Path(dir_okay=False, path_type=Path),
            default=None,
            help="TOML file of optimize options (keys: option names, dashes or underscores); "
            "options given on the command line win.",
        ),
        click.option(
            "--resume",
            is_flag=True,
            help="Continue the run in --run-dir from its last complete step, with its saved task "
            "and options (TASK may be left out; budget limits and --steps may be raised).",
        ),
        click.option(
            "--dry-run",
            is_flag=True,
            help="Print the generations and optimizer calls the configuration will make and an "
            "estimated wall time, then exit without creating a run. It loads the task model to "
            "time a few generations (seconds to minutes).",
        ),
    ]


def optimize_options(func):
    """Every option of `gpo-local optimize`."""
    for decorator in reversed(_optimize_only()):
        func = decorator(func)
    return func


def optimize_parser() -> click.Command:
    """A command that parses (and checks) optimize's arguments like the real one, and runs nothing."""
    return click.Command("optimize", params=optimize_options(_Params()).params)


class _Params:
    """Collects the click parameters the decorators attach (as on a function)."""

    def __init__(self):
        self.__click_params__ = []
        self.__name__ = "optimize"

    @property
    def params(self):
        return [click.Argument(["task"], required=False), *reversed(self.__click_params__)]
