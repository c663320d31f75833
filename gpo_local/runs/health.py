"""The state of a run directory's files, classified once for `show`, `report` and `optimize --resume`.

Each file of a run is healthy or has one problem:

    missing       the file is not there (no config.json: not a run; no result.json: unfinished)
    torn          the last line of trajectory.jsonl has no newline: a kill while it was written
    damaged       not UTF-8 text, or not JSON (a whole trajectory record included)
    wrong shape   JSON, but not what the run writes there (a list for result.json, a record
                  without its kind, step, prompt or score)

A problem says what is wrong and the one command that repairs it: `optimize --resume` cuts a
torn line and recomputes result.json (derived from the trajectory); `gpo-local repair` sets a
damaged record and everything after it aside to `trajectory.jsonl.damaged` and replays the
rest (`set_aside_damaged`); a damaged config.json cannot be derived from anything, so it is to
be restored or the run started again. events.jsonl holds progress only (torn lines are skipped)
and the FAISS index is rebuilt from the trajectory when it does not match, so neither is checked.
"""

from __future__ import annotations

import errno
import json
import math
import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gpo_local.core import CANDIDATE, INIT, STEP
from gpo_local.errors import StorageError
from gpo_local.runs.storage import ADVICE, write_bytes_synced

MISSING, TORN, DAMAGED, WRONG_SHAPE = "missing", "torn", "damaged", "wrong shape"
# What a resumed run reads of config.json (resuming.resolve_resume, RunDir.resume).
RESUME_KEYS = ("task", "task_source", "config", "initial_prompt", "models", "settings")
SET_ASIDE = ".damaged"  # suffix of the file the damaged records are moved to


@dataclass(frozen=True)
class FileProblem:
    path: Path
    state: str  # MISSING, TORN, DAMAGED or WRONG_SHAPE
    detail: str  # what is wrong, in a few words
    repair: str  # the one command (or action) that repairs it
    line: int | None = None  # trajectory.jsonl: the line at fault

    @property
    def what(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else str(self.path)
        if self.state == MISSING:
            return f"{where} not found"
        if self.state == WRONG_SHAPE:
            return f"{where} has the wrong shape ({self.detail})"
        return f"{where} is {self.state} ({self.detail})"

    def __str__(self) -> str:
        return f"{self.what}: {self.repair}"


@dataclass
class RunFiles:
    """A run directory's files as read: the usable content and the problems found."""

    path: Path
    config: dict | None = None
    records: list[dict] = field(default_factory=list)  # the intact records before the first bad one
    result: dict | None = None
    problems: list[FileProblem] = field(default_factory=list)

    def problem(self, name: str) -> FileProblem | None:
        return next((p for p in self.problems if p.path.name == name), None)

    @property
    def damaged_record(self) -> FileProblem | None:
        """A complete trajectory record that is damaged or has the wrong shape (`gpo-local repair`)."""
        problem = self.problem("trajectory.jsonl")
        return problem if problem and problem.state in (DAMAGED, WRONG_SHAPE) else None


def quoted(path: Path) -> str:
    return shlex.quote(str(path))


def resume_command(run_dir: Path, config: dict | None) -> str:
    """The command that continues a run (it reads its task and options from config.json)."""
    task = ""
    if isinstance(config, dict) and isinstance(config.get("task_source"), str):
        source = config["task_source"]
        task = " " + shlex.quote(config.get("task", "") if source.startswith("builtin:") else source)
    return f"gpo-local optimize{task} --resume --run-dir {quoted(run_dir)}"


def repair_command(run_dir: Path) -> str:
    return f"gpo-local repair {quoted(run_dir)}"


def _read_json(path: Path) -> tuple[Any, str | None, str | None]:
    """(content, problem state, detail); content None where the file is missing or unreadable."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None, MISSING, "not found"
    try:
        return json.loads(data.decode("utf-8")), None, None
    except UnicodeDecodeError as error:
        return None, DAMAGED, f"not UTF-8 text at byte {error.start}"
    except json.JSONDecodeError as error:
        return None, DAMAGED, f"not JSON: {error.msg} at line {error.lineno}"


def _kind_of(value: Any) -> str:
    names = {
        list: "a JSON list",
        str: "a JSON string",
        type(None): "null",
        bool: "a JSON boolean",
        dict: "a JSON object",
    }
    number = "a JSON number" if isinstance(value, (int, float)) else type(value).__name__
    return names.get(type(value), number)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def record_shape(record: Any) -> str | None:
    """Why a trajectory record is not one the run writes, or None when it is."""
    if not isinstance(record, dict):
        return f"{_kind_of(record)}, not a record"
    if record.get("kind") not in (INIT, CANDIDATE, STEP):
        return f"kind {record.get('kind')!r} is not init, candidate or step"
    if not isinstance(record.get("step"), int) or isinstance(record.get("step"), bool):
        return "no step number"
    if not isinstance(record.get("prompt"), str):
        return "no prompt"
    if not _number(record.get("dev_score")):
        return "no dev score"
    for key, kinds in OPTIONAL_FIELDS.items():
        if record.get(key) is not None and not _of_kind(record[key], kinds):
            return f"{key} is {_kind_of(record[key])}"
    return None


# Fields that show and report read where a record has them, and what they hold.
OPTIONAL_FIELDS = {
    "budget": (int,),
    "edit_distance": (int, float),
    "replies": (int,),
    "cut_to_sentence": (int,),
    "drops": (dict,),
    "dev_questions": (int,),
}


def _of_kind(value: Any, kinds: tuple) -> bool:
    if isinstance(value, bool):
        return False
    if float in kinds:
        return _number(value)
    return isinstance(value, kinds)


def result_shape(result: Any) -> str | None:
    """Why result.json is not a run's result, or None when it is."""
    if not isinstance(result, dict):
        return f"{_kind_of(result)}, not a run result"
    for key in ("initial", "final"):
        entry = result.get(key)
        if (
            not isinstance(entry, dict)
            or not isinstance(entry.get("prompt"), str)
            or not _number(entry.get("dev_score"))
            or not isinstance(entry.get("step"), int)
        ):
            return f"no {key} prompt with its dev score and step"
    for key in ("initial_test", "final_test"):
        if result.get(key) is not None and not _number(result[key]):
            return f"{key} is {_kind_of(result[key])}, not a score"
    if result.get("test_outcomes") is not None and not isinstance(result["test_outcomes"], dict):
        return f"test_outcomes is {_kind_of(result['test_outcomes'])}"
    return None


def read_records(path: Path, config: dict | None = None) -> tuple[list[dict], FileProblem | None, int]:
    """The intact records of a trajectory.jsonl up to its first problem, that problem (None
    when there is none) and the byte offset where the intact records end. `config` (the run's
    config.json) completes the resume command a torn line suggests."""
    run_dir = path.parent
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return [], None, 0  # a run that failed before its first record: resume starts it
    records, offset = [], 0
    for number, line in enumerate(data.splitlines(keepends=True), 1):
        if not line.endswith(b"\n"):
            return (
                records,
                FileProblem(
                    path,
                    TORN,
                    "its last line was cut off by a kill while it was written",
                    f"optimize --resume cuts it: {resume_command(run_dir, config)}",
                    line=number,
                ),
                offset,
            )
        try:
            record = json.loads(line.decode("utf-8"))
        except UnicodeDecodeError as error:
            shape, state = f"not UTF-8 text at byte {error.start} of the line", DAMAGED
        except json.JSONDecodeError as error:
            shape, state = f"not JSON: {error.msg}", DAMAGED
        else:
            shape, state = record_shape(record), WRONG_SHAPE
        if shape:
            return (
                records,
                FileProblem(
                    path,
                    state,
                    shape,
                    "set it and the records after it aside and replay "
                    f"the rest with: {repair_command(run_dir)}",
                    line=number,
                ),
                offset,
            )
        records.append(record)
        offset += len(line)
    return records, None, offset


def check_run(run_dir: Path) -> RunFiles:
    """Read and classify a run directory's config.json, trajectory.jsonl and result.json."""
    run_dir = Path(run_dir)
    files = RunFiles(path=run_dir)
    config_path = run_dir / "config.json"
    config, state, detail = _read_json(config_path)
    if state is None and not isinstance(config, dict):
        state, detail = WRONG_SHAPE, f"{_kind_of(config)}, not a run's configuration"
    if state == MISSING:
        files.problems.append(
            FileProblem(config_path, MISSING, "not found", "is this a gpo-local run directory?")
        )
    elif state:
        files.problems.append(
            FileProblem(
                config_path,
                state,
                detail,
                "it cannot be derived from the other files: "
                "restore it, or start the run again in another --run-dir",
            )
        )
    else:
        files.config = config
    files.records, problem, _ = read_records(run_dir / "trajectory.jsonl", files.config)
    if problem:
        files.problems.append(problem)
    result, state, detail = _read_json(run_dir / "result.json")
    if state is None:
        detail = result_shape(result)
        state = WRONG_SHAPE if detail else None
    if state in (DAMAGED, WRONG_SHAPE):
        files.problems.append(
            FileProblem(
                run_dir / "result.json",
                state,
                detail,
                "it is derived from the "
                f"trajectory: recompute it with: {resume_command(run_dir, files.config)}",
            )
        )
    elif state is None:
        files.result = result
    return files


def resumable_config(files: RunFiles) -> FileProblem | None:
    """The problem that stops a resume at config.json (missing keys included), or None."""
    problem = files.problem("config.json")
    if problem or files.config is None:
        return problem
    missing = [key for key in RESUME_KEYS if key not in files.config]
    if missing:
        return FileProblem(
            files.path / "config.json",
            WRONG_SHAPE,
            f"no {', '.join(map(repr, missing))}",
            "it cannot be derived from the other files: restore it, or start the run again in "
            "another --run-dir",
        )
    return None


def _free_name(path: Path) -> Path:
    """`path`, or `path.2`, `path.3`, ... whichever does not exist yet (a repair never overwrites)."""
    candidate, n = path, 1
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.name}.{n}")
    return candidate


def set_aside_damaged(run_dir: Path) -> tuple[Path, int] | None:
    """Move trajectory.jsonl's first damaged record and every line after it to
    `trajectory.jsonl.damaged` (a new name if that exists), keep the intact records before it,
    and move a result.json derived from the old trajectory aside too (`result.json.before-repair`):
    the run is then unfinished and a resume replays the rest. Returns (the file the lines went
    to, how many lines), or None when no record is damaged. Nothing is deleted."""
    path = Path(run_dir) / "trajectory.jsonl"
    _, problem, offset = read_records(path)
    if problem is None or problem.state not in (DAMAGED, WRONG_SHAPE):
        return None
    data = path.read_bytes()
    aside = _free_name(path.with_name(path.name + SET_ASIDE))
    write_bytes_synced(aside, data[offset:])
    with path.open("r+b") as handle:
        handle.truncate(offset)
        handle.flush()
        os.fsync(handle.fileno())
    result = Path(run_dir) / "result.json"
    if result.exists():
        os.replace(result, _free_name(result.with_name("result.json.before-repair")))
    return aside, data[offset:].count(b"\n") + (0 if data.endswith(b"\n") else 1)


# What to fix before a started run continues in the same directory (another --run-dir, which the
# errno's own advice may suggest, would not hold its records).
FIX_IN_PLACE = {
    errno.ENOSPC: "free some space",
    errno.EDQUOT: "free some space within your quota",
    errno.EROFS: "make its file system writable again",
    errno.EACCES: "check its owner and permissions",
}


def interrupted_run_error(error: OSError, run_dir: Path) -> StorageError:
    """One line for a file-system error that stopped a run (a full disk): the file that could not
    be written, the run directory, and the command that goes on from there. A run whose
    config.json was written continues with `optimize --resume --run-dir DIR`; one that failed
    before it has recorded nothing and is simply run again (a resume would find no config)."""
    where = error.filename or run_dir
    if error.filename2:
        where = f"{where} -> {error.filename2}"
    reason = (error.strerror or str(error)).lower()
    files = check_run(run_dir)
    if files.config is not None and resumable_config(files) is None:
        fix = FIX_IN_PLACE.get(error.errno) or ADVICE.get(error.errno, "check the path and the disk")
        return StorageError(
            f"{where}: {reason}: ",
            *_parts(fix),
            f", then continue the run with: {resume_command(run_dir, files.config)}",
        )
    fix = ADVICE.get(error.errno, "check the path and the disk")
    return StorageError(
        f"{where}: {reason}: ",
        *_parts(fix),
        f"; nothing was recorded in the run directory {run_dir} yet, so run the same command again",
    )


def _parts(advice) -> tuple:
    """Advice as message parts (runs/storage.py ADVICE holds text or text with option names)."""
    return (advice,) if isinstance(advice, str) else tuple(advice)
