"""gpo-local: the GPO prompt optimizer (Tang et al., 2024) on local GGUF models, offline.

The Python API (app/api.py): `optimize`, `evaluate`, `load_task`, and the `RunResult` that
`optimize` returns. Heavy dependencies (llama-cpp-python, torch, faiss) are imported lazily by
the modules that need them, so that `import gpo_local` and the pure strategy modules stay cheap.
"""

__version__ = "0.1.0"
__all__ = [
    "optimize",
    "evaluate",
    "load_task",
    "RunResult",
    "GpoError",
    "ConfigError",
    "DataError",
    "ModelError",
]

from typing import TYPE_CHECKING

from gpo_local.errors import ConfigError, DataError, GpoError, ModelError

if TYPE_CHECKING:  # for type checkers and the API reference; at run time __getattr__ imports api lazily
    from gpo_local.app.api import RunResult, evaluate, load_task, optimize


def __getattr__(name):
    if name in ("optimize", "evaluate", "load_task", "RunResult"):
        from gpo_local.app import api

        return getattr(api, name)
    raise AttributeError(f"module 'gpo_local' has no attribute {name!r}")
