"""Errors a user can act on. The CLI turns each into one line and a non-zero exit code."""


class GpoError(Exception):
    """Base class: the message names the file, field or value at fault."""


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
