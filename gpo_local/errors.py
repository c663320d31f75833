"""Errors a user can act on. The CLI turns each into one line and a non-zero exit code.

A message that names an option carries it as an `OptionValue` (its Python name, and its value
where one is meant) among the message's parts, so that each surface spells it its own way:
`str(error)` in Python names it as a keyword argument (`momentum='feedback' needs
gradient='feedback'`), the command line renders the same parts as flags (`--momentum feedback
needs --gradient feedback`, app/cli.py). `error.option` and `error.value` are the first option
the message names (None when it names none).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

NO_VALUE = object()  # an option named without a value ("raise n_ctx")


@dataclass(frozen=True)
class OptionValue:
    """An option named in a message: its Python name and, unless NO_VALUE, its value."""

    name: str
    value: Any = NO_VALUE

    def python(self) -> str:
        return self.name if self.value is NO_VALUE else f"{self.name}={self.value!r}"


Spelling = Callable[[OptionValue], str]


class GpoError(Exception):
    """Base class: the message names the file, field or value at fault. Its parts are strings
    and OptionValues, joined as they are."""

    def __init__(self, *parts: str | OptionValue):
        self.parts = parts
        named = [part for part in parts if isinstance(part, OptionValue)]
        self.option = named[0].name if named else None
        self.value = named[0].value if named and named[0].value is not NO_VALUE else None
        super().__init__(self.render(OptionValue.python))

    def render(self, spell: Spelling) -> str:
        """The message with every option spelled by `spell` (Python's keyword form by default)."""
        return "".join(spell(part) if isinstance(part, OptionValue) else str(part) for part in self.parts)


class ConfigError(GpoError):
    """An option or a combination of options is invalid."""


class DataError(GpoError):
    """A task's data is missing or malformed."""


class ModelError(GpoError):
    """A model file cannot be found or loaded."""


class PromptTooLongError(ModelError):
    """A rendered prompt does not fit in the model's context."""


class ServerError(ModelError):
    """A served model's server (backends/served.py) cannot be reached or gives no usable reply."""


# --- run locks and file-system errors ------------------------------------------------------------


class RunLockedError(GpoError):
    """Another process holds the run directory's lock (locks.py)."""


class StorageError(GpoError):
    """A run, index, cache or report file cannot be read or written (storage.py words it)."""
