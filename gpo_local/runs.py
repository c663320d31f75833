"""Run directories: where a run's whole state lives, so that it can be reproduced and resumed.

    <run>/config.json        resolved config: options, model paths and sha256s, seeds, versions
    <run>/trajectory.jsonl   append-only, fsynced records: init, candidate, step (see optimizer.py)
    <run>/indexes/           FAISS index of the trajectory prompts and its metadata
    <run>/result.json        initial and final prompt with dev and test scores (written at the end)

Runs go under `$GPO_LOCAL_HOME/runs/` (default ~/.gpo-local) unless `--run-dir` names a folder.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import time
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator

from . import faults
from .errors import ConfigError

HOME_ENV = "GPO_LOCAL_HOME"


def home_dir() -> Path:
    return Path(os.environ.get(HOME_ENV) or Path.home() / ".gpo-local").expanduser()


def new_run_dir(task_name: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = home_dir() / "runs" / f"{stamp}-{task_name}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in ("gpo-local", "llama-cpp-python", "faiss-cpu", "sentence-transformers", "torch", "numpy"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def write_json_atomic(path: Path, data: Any) -> None:
    """Write-then-rename, so a reader never sees half a file even if we are killed."""
    tmp = path.with_name(path.name + ".tmp")
    from .storage import naming  # issue 14: an OSError names the file

    try:
        with naming(tmp), tmp.open("w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, sort_keys=True)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
    except OSError:  # issue 14: a full or read-only disk leaves no half-written .tmp behind
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise
    faults.point(f"{path.stem}-json-tmp")  # issue 14: e.g. result-json-tmp, config-json-tmp
    os.replace(tmp, path)
    faults.point(f"{path.stem}-json-replaced")


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path} not found: is this a gpo-local run directory?") from None
    except json.JSONDecodeError as error:
        raise ConfigError(f"{path}: malformed JSON ({error.msg} at line {error.lineno})") from None
    except UnicodeDecodeError as error:  # issue 14: binary garbage
        from .storage import decode_error

        raise decode_error(path, error) from None


class JsonlLog:
    """An append-only JSON-lines file; every append is flushed and fsynced before returning,
    so a record that was written survives a kill or a power cut."""

    def __init__(self, path: Path):
        self.path = path

    def append(self, record: dict) -> None:
        line = json.dumps(record, sort_keys=True, ensure_ascii=False) + "\n"
        faults.point("jsonl-append")
        from .storage import naming  # issue 14: an OSError names the file

        with naming(self.path), self.path.open("a", encoding="utf-8") as handle:
            if faults.triggers("jsonl-half-line"):
                handle.write(line[: len(line) // 2])
                handle.flush()
                os.fsync(handle.fileno())
                faults.kill()
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())
        faults.point("jsonl-fsynced")

    def records(self) -> Iterator[dict]:
        if not self.path.exists():
            return
        with self.path.open("rb") as handle:  # issue 14: bytes, so that binary garbage is a corrupted record
            for number, line in enumerate(handle, 1):
                if not line.endswith(b"\n"):
                    return  # a torn last line from a kill: ignored here, cut by truncate_after()
                try:
                    yield json.loads(line.decode("utf-8"))
                except (UnicodeDecodeError, json.JSONDecodeError):
                    raise ConfigError(f"{self.path}:{number}: corrupted record") from None

    def truncate_after(self, keep: int) -> None:
        """Keep the first `keep` complete records and drop everything after them (records of a
        step that was not completed, and a torn line). Used on resume."""
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        offset = 0
        for _ in range(keep):
            offset = data.index(b"\n", offset) + 1
        if offset != len(data):
            with self.path.open("r+b") as handle:
                handle.truncate(offset)
                handle.flush()
                os.fsync(handle.fileno())
