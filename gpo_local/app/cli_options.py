"""The click options of the command line, derived from the one declaration of the options
(config.OPTIONS). Its own module so that the bench harness (quality/config.py) can parse an
optimize command line exactly as `gpo-local optimize` does without importing cli.py."""

from __future__ import annotations

from pathlib import Path

import click

from gpo_local.algorithm.config import OPTIONS, Option
from gpo_local.errors import GpoError


def _click_option(option: Option):
    """The click option of a declared option (config.OPTIONS)."""
    kwargs: dict = {"help": option.help_text(), "default": option.default if option.show_default else None,
                    "show_default": option.show_default}
    if option.kind is bool and option.default:  # on by default: --name/--no-name, None when not given
        return click.option(f"{option.flag}/--no-{option.flag[2:]}", option.name, default=None, help=option.help_text())
    if option.kind is bool:
        kwargs.update(is_flag=True, default=bool(option.default))
        if option.negatable:  # --name/--no-name
            return click.option(f"{option.flag}/--no-{option.flag[2:]}", option.name, **kwargs)
    elif option.choices is not None:
        kwargs["type"] = click.Choice(option.allowed(), case_sensitive=option.group != "task")
    elif option.kind in (int, float) and option.minimum is not None:
        kwargs["type"] = (click.IntRange if option.kind is int else click.FloatRange)(min=option.minimum)
    elif option.kind in (int, float):
        kwargs["type"] = option.kind
    if option.parse is not None:
        def callback(ctx, param, value, parse=option.parse):
            try:
                return parse(value)
            except GpoError as error:
                raise click.BadParameter(str(error)) from None
        kwargs["callback"] = callback
    return click.option(option.flag, option.name, **kwargs)


def declared_options(*groups: str, exclude: tuple[str, ...] = ()):
    """A decorator adding the declared command-line options of `groups`, in declaration order."""
    chosen = [o for o in OPTIONS if o.group in groups and o.cli and o.name not in exclude]

    def decorate(func):
        for option in reversed(chosen):
            func = _click_option(option)(func)
        return func
    return decorate


def _optimize_only():
    return [
        click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
                     help="TOML file of optimize options (keys: option names, dashes or underscores); "
                          "options given on the command line win."),
        declared_options("config", "limit", "runtime", "task", "run"),
        click.option("--resume", is_flag=True,
                     help="Continue the run in --run-dir from its last complete step, with its saved task and "
                          "options (budget limits may be raised)."),
        click.option("--dry-run", is_flag=True,
                     help="Print the generations and optimizer calls the configuration will make and an estimated "
                          "wall time, then exit without creating a run. It loads the task model to time a few "
                          "generations (seconds to minutes)."),
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

    @property
    def params(self):
        return [click.Argument(["task"]), *reversed(self.__click_params__)]
