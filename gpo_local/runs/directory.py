"""Run directories: where a run's whole state lives, so that it can be reproduced and resumed.

    <run>/config.json        resolved config: options, model paths and sha256s, seeds, versions
    <run>/trajectory.jsonl   append-only, fsynced records: init, candidate, step (see algorithm/method.py)
    <run>/indexes/           FAISS index of the trajectory prompts and its metadata
    <run>/result.json        initial and final prompt with dev and test scores (written at the end)

Runs go under `$GPO_LOCAL_HOME/runs/` (default ~/.gpo-local) unless `--run-dir` names a folder.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator

from gpo_local.errors import ConfigError, ModelError, OptionValue
from gpo_local.runs import faults
from gpo_local.runs.health import MISSING, check_run, resumable_config
from gpo_local.runs.locks import lock_run, release
from gpo_local.runs.storage import check_home, check_run_dir, naming, write_atomic

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
    """The versions a run records: Python, the packages, the commit of a gpo-local checkout and
    the CPU (timings and llama.cpp's kernels differ between machines)."""
    versions = {"python": platform.python_version()}
    for name in ("gpo-local", "llama-cpp-python", "faiss-cpu", "sentence-transformers", "torch", "numpy"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    commit = source_commit()
    if commit:
        versions["gpo-local commit"] = commit
    versions["cpu"] = f"{cpu_model()}, {os.cpu_count()} logical cores"
    return versions


def source_commit() -> str | None:
    """The git commit of the checkout gpo-local runs from (an editable install), with "+changes"
    when its package files (gpo_local/) differ from it; None outside a checkout or without git."""

    source = Path(__file__).resolve().parents[2]  # the checkout: gpo_local/runs/directory.py
    if not (source / ".git").exists():
        return None
    try:
        head = subprocess.run(
            ["git", "-C", str(source), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        changed = (
            subprocess.run(
                ["git", "-C", str(source), "diff", "--quiet", "HEAD", "--", "gpo_local"],
                capture_output=True,
                timeout=10,
            ).returncode
            != 0
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head}+changes" if changed else head


def cpu_model() -> str:
    """The CPU's model name (Linux: /proc/cpuinfo), else what platform reports."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON atomically (storage.write_atomic): a reader never sees half a file, even after a kill."""
    write_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n", fault_point=f"{path.stem}-json-tmp")
    faults.point(f"{path.stem}-json-replaced")


class JsonlLog:
    """An append-only JSON-lines file; every append is flushed and fsynced before returning,
    so a record that was written survives a kill or a power cut."""

    def __init__(self, path: Path):
        self.path = path

    def append(self, record: dict) -> None:
        line = json.dumps(record, sort_keys=True, ensure_ascii=False) + "\n"
        faults.point("jsonl-append")

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
        with self.path.open("rb") as handle:  # bytes, so that binary garbage is a corrupted record
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


class RunDir:
    """Owns a run directory: creates or opens it, writes config.json and result.json, and checks
    on resume that the models are the ones the run started with (their sha256)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.config_path, self.result_path = self.path / "config.json", self.path / "result.json"
        self.trajectory_path, self.events_path = self.path / "trajectory.jsonl", self.path / "events.jsonl"

    @classmethod
    def for_new_run(cls, path: Path | None, task_name: str) -> "RunDir":
        """A run directory for a new run (a fresh folder under the home when `path` is None);
        refuses one that already holds a run."""
        run = cls(path or new_run_dir(task_name))
        if run.trajectory_path.exists():
            # `--resume` is the command line's: the Python API starts new runs only.
            raise ConfigError(
                f"{run.path} already holds a run; use --resume to continue it or choose another ",
                OptionValue("run_dir"),
            )
        return run

    def saved_config(self) -> dict:
        """config.json of a run to resume. A problem with it, or a damaged trajectory record, is
        one error that names the command repairing it (runs/health.py)."""
        files = check_run(self.path)
        problem = resumable_config(files) or files.damaged_record
        if problem:
            raise ConfigError(str(problem))
        return files.config

    def saved_result(self) -> dict | None:
        """result.json, or None when it is absent or damaged (see finished_result)."""
        return self.finished_result(completed_only=False)[0]

    def finished_result(self, *, completed_only: bool = True) -> tuple[dict | None, str | None]:
        """(result.json of a completed run or None, why result.json is unusable or None). A
        damaged result.json counts as absent: it is derived again from the trajectory."""

        files = check_run(self.path)
        result, problem = files.result, files.problem("result.json")
        damage = problem.what if problem and problem.state != MISSING else None
        if completed_only and result is not None and result.get("stopped", "completed") != "completed":
            result = None
        return result, damage

    def is_complete(self) -> bool:
        return self.finished_result()[0] is not None

    def lock(self, *, cache: bool):
        """Before any model loads, check GPO_LOCAL_HOME, take the run's lock (one
        process per run, locks.py) and check that the directory and its files can be written.
        Returns the function that releases the lock (a process that ends releases it anyway)."""

        return prepare_run_dir(self.path, cache=cache)

    def log(self) -> JsonlLog:
        return JsonlLog(self.trajectory_path)

    def start(self, record: dict) -> None:
        """Create the directory and write the config of a new run."""
        self.path.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.config_path, {**record, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")})

    def resume(self, record: dict, saved: dict) -> None:
        """Check that the models are unchanged; only the budget (a larger steps, the limits) may
        change on resume, and the config keeps the record of it current."""
        for role in ("task", "optimizer"):
            if saved["models"][role]["sha256"] != record["models"][role]["sha256"]:
                raise ModelError(
                    f"{role} model {record['models'][role]['path']} has changed since the run started "
                    f"(sha256 {record['models'][role]['sha256'][:12]} != "
                    f"{saved['models'][role]['sha256'][:12]})"
                )
        write_json_atomic(
            self.config_path,
            {
                **saved,
                "config": {**saved["config"], "steps": record["config"]["steps"]},
                "limits": record["limits"],
            },
        )

    def write_result(self, summary: dict) -> None:
        write_json_atomic(self.result_path, summary)


def prepare_run_dir(run_dir: Path, *, cache: bool):
    """Everything about the run directory that can fail before a model loads: GPO_LOCAL_HOME is
    a directory (when the memo cache or the default run folder lives there), the run's lock
    (one process per run, locks.py), and the writability of the directory and its files.
    Returns the function that releases the lock (a process that ends releases it anyway)."""
    home = home_dir()
    if cache or home in run_dir.parents:
        check_home(home)
    lock_run(run_dir)
    try:
        check_run_dir(run_dir)
    except OSError:
        release(run_dir)
        raise
    return lambda: release(run_dir)
