"""The quality benchmark: methods (or strategy variants) x tasks x seeds x task models.

Every cell is one ordinary `gpo-local optimize` run in its own run directory,

    OUT/runs/<task>/<method or variant>/seed<S>[/<task model>]     (the model level only when
                                                                    the config lists several)

with the cell's options written next to it as `cell.toml`, so a cell can be reproduced alone.
Cells run one after the other (the task model takes every core). After every cell the three
result files (results.json, results.csv, results.md) are rebuilt from the cell directories and
written atomically, so a kill loses at most the cell in progress; restarted, the harness skips
cells with a result.json and resumes a started one with `optimize --resume`.

The config (TOML; see benchmarks/configs/ and benchmarks/README.md):

    [bench]
    tasks = ["../../../shared/data/bbh/navigate", "sentiment"]   # dirs relative to this file, then the cwd
    methods = ["gpo", "opro"]          # rows of the table ...
    seeds = [0, 1]
    task_models = ["smollm2-135m-instruct"]   # optional
    [optimize]                         # options of every cell (optimize's option names)
    steps = 2
    [methods.opro]                     # per-method overrides
    candidates = 4
    [variants.linear]                  # ... and/or strategy variants as rows
    method = "gpo"                     # optional, default gpo
    schedule = "linear"

Options merge in that order: [optimize], then [methods.<its method>], then [variants.<name>].
The cell runner is injectable: the CLI runs each cell as a subprocess (a crash is recorded as a
failed cell and the rest go on); the unit tests pass a fake.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import statistics
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Protocol

from .errors import ConfigError, GpoError
from .paper import SOURCE as PAPER_SOURCE
from .paper import benchmark_of, paper_score

METHODS = ("gpo", "empty", "cot", "ape", "apo", "opro", "pe2", "sgdm")
DEFAULT_TASK_MODEL = "smollm2-135m-instruct"

# The options of `gpo-local optimize` a bench config may set (CONTRACT.md). Options the installed
# optimize command has beyond these are accepted too; whether the installed command supports a
# given option is checked per cell by check_cells() before anything runs.
CONTRACT_OPTIONS = frozenset({
    "gradient", "momentum", "selection", "momentum-update", "k", "update", "schedule", "lr-init", "lr-final",
    "warmup", "max-optimizer-calls", "max-task-tokens", "time-limit",
    "optimizer-model", "embedder", "steps", "candidates", "optimizer-max-tokens", "max-prompt-words",
    "dev-limit", "test-limit", "test-holdout", "initial-prompt", "position",
    "n-ctx", "threads", "n-gpu-layers", "parallel", "no-cache",
})
# Options the harness sets itself, and where a config gives them instead.
HARNESS_OPTIONS = {
    "method": "[bench] methods or a [variants.<name>] table's method",
    "seed": "[bench] seeds",
    "task-model": "[bench] task_models",
    "run-dir": "bench quality --out", "resume": "the harness (it resumes unfinished cells itself)",
    "quiet": "the harness", "config": "the harness", "dry-run": "the harness",
}
BENCH_KEYS = {"tasks", "methods", "seeds", "task_models", "description"}
TOP_KEYS = {"bench", "optimize", "methods", "variants"}


def _option_name(key: str) -> str:
    return key.strip().replace("_", "-").lower()


def installed_optimize_options() -> set[str]:
    """Long option names (without dashes) of the installed `gpo-local optimize` command."""
    from .cli import optimize

    names = set()
    for param in optimize.params:
        for opt in getattr(param, "opts", ()):
            if opt.startswith("--"):
                names.add(opt[2:])
    return names


@dataclass(frozen=True)
class Row:
    """One row of the result tables: a method, or a named variant (a method plus options)."""

    name: str
    method: str
    options: dict  # merged optimize options for this row, option names with dashes
    sources: dict  # option name -> the config section that set it (for error messages)
    is_variant: bool = False


@dataclass(frozen=True)
class TaskRef:
    spec: str  # as written in the config
    target: str  # what optimize gets: a built-in name or an absolute directory
    name: str  # the task's name (its folder in OUT/runs)
    benchmark: str | None  # the paper benchmark it belongs to (paper.benchmark_of)


@dataclass(frozen=True)
class Cell:
    row: Row
    task: TaskRef
    seed: int
    task_model: str
    run_dir: Path

    @property
    def label(self) -> str:
        return f"{self.row.name} / {self.task.name} / seed {self.seed}"

    def options(self) -> dict:
        """Every option of this cell (the content of its cell.toml)."""
        return {"method": self.row.method, "seed": self.seed, "task-model": self.task_model, **self.row.options}

    def argv(self, *, resume: bool) -> list[str]:
        """Arguments of `gpo-local optimize` for this cell."""
        if resume:  # optimize --resume reads every option back from the run's config.json
            return ["optimize", self.task.target, "--run-dir", str(self.run_dir), "--resume", "--quiet"]
        args = ["optimize", self.task.target, "--seed", str(self.seed), "--task-model", self.task_model,
                "--run-dir", str(self.run_dir), "--quiet"]
        # gpo is optimize's default method: leaving --method out keeps gpo-only configs runnable
        # on an optimize command that predates --method.
        if self.row.method != "gpo":
            args += ["--method", self.row.method]
        for name, value in self.row.options.items():
            if isinstance(value, bool):
                if value:
                    args.append(f"--{name}")
            else:
                args += [f"--{name}", str(value)]
        return args


@dataclass(frozen=True)
class BenchConfig:
    path: Path
    description: str
    tasks: tuple[TaskRef, ...]
    rows: tuple[Row, ...]
    seeds: tuple[int, ...]
    task_models: tuple[str, ...]
    raw: dict = field(repr=False)

    def cells(self, out: Path) -> list[Cell]:
        """The cell matrix, seed by seed (so that a partial run has whole seeds), then task model,
        task and row."""
        cells = []
        for seed in self.seeds:
            for model in self.task_models:
                for task in self.tasks:
                    for row in self.rows:
                        run_dir = out / "runs" / task.name / row.name / f"seed{seed}"
                        if len(self.task_models) > 1:
                            run_dir = run_dir / _slug(model)
                        cells.append(Cell(row, task, seed, model, run_dir))
        return cells


def _slug(text: str) -> str:
    stem = Path(text).name
    stem = stem[:-5] if stem.lower().endswith(".gguf") else stem
    return re.sub(r"[^A-Za-z0-9._-]+", "_", stem) or "model"


# ---------------------------------------------------------------------------------------------
# Loading and validating a config: every error is one line naming the file, section and key.

def load_config(path: Path, *, known_options: Iterable[str] | None = None, cwd: Path | None = None) -> BenchConfig:
    path = Path(path)
    where = str(path)  # as the user gave it
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{where}: config file not found") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{where}: malformed TOML ({error})") from None

    def fail(section: str, message: str):
        raise ConfigError(f"{where}: {section}{'' if message.startswith(':') else ' '}{message}")

    known = set(CONTRACT_OPTIONS) | set(installed_optimize_options() if known_options is None else known_options)
    known -= set(HARNESS_OPTIONS)

    for key in raw:
        if key not in TOP_KEYS:
            fail(key, f": unknown section (expected {', '.join(sorted(TOP_KEYS))})")
    bench = raw.get("bench")
    if not isinstance(bench, dict):
        fail("[bench]", "is missing (it lists tasks, methods and seeds)")
    for key in bench:
        if key not in BENCH_KEYS:
            fail("[bench]", f"{key}: unknown key (expected {', '.join(sorted(BENCH_KEYS))})")

    def string_list(key: str, *, required: bool) -> list[str]:
        value = bench.get(key)
        if value is None:
            if required:
                fail("[bench]", f"{key}: missing")
            return []
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            fail("[bench]", f"{key}: must be a list of non-empty strings (got {value!r})")
        if len(set(value)) != len(value):
            fail("[bench]", f"{key}: lists a value twice")
        return value

    def options(section: str, table, *, allow_method: bool = False) -> dict:
        if not isinstance(table, dict):
            fail(section, f"must be a table of optimize options (got {table!r})")
        result = {}
        for key, value in table.items():
            name = _option_name(key)
            if name == "method" and allow_method:
                continue
            if name in HARNESS_OPTIONS:
                fail(section, f"{key}: set by {HARNESS_OPTIONS[name]}, not here")
            if name not in known:
                fail(section, f"{key}: unknown optimize option (known: {', '.join(sorted(known))})")
            if not isinstance(value, (str, int, float, bool)):
                fail(section, f"{key}: must be a string, number or boolean (got {value!r})")
            if name in result:
                fail(section, f"{key}: given twice (as dashes and underscores)")
            result[name] = value
        return result

    methods = string_list("methods", required=False)
    for method in methods:
        if method not in METHODS:
            fail("[bench]", f"methods: {method!r} is not a method ({', '.join(METHODS)})")
    seeds = bench.get("seeds", [0])
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        fail("[bench]", f"seeds: must be a non-empty list of integers (got {seeds!r})")
    if len(set(seeds)) != len(seeds):
        fail("[bench]", "seeds: lists a seed twice")
    task_models = [_resolve_model(m, path) for m in string_list("task_models", required=False)] or [DEFAULT_TASK_MODEL]
    description = bench.get("description", "")
    if not isinstance(description, str):
        fail("[bench]", "description: must be a string")

    common = options("[optimize]", raw.get("optimize", {}))
    per_method = raw.get("methods", {})
    if not isinstance(per_method, dict):
        fail("[methods]", "must hold one table per method, e.g. [methods.opro]")
    overrides = {}
    for method, table in per_method.items():
        if method not in METHODS:
            fail(f"[methods.{method}]", f": {method!r} is not a method ({', '.join(METHODS)})")
        overrides[method] = options(f"[methods.{method}]", table)

    def merged(method: str, variant: tuple[str, dict] | None) -> tuple[dict, dict]:
        layers = [("[optimize]", common), (f"[methods.{method}]", overrides.get(method, {}))]
        if variant:
            layers.append(variant)
        values, sources = {}, {}
        for section, layer in layers:
            for name, value in layer.items():
                values[name], sources[name] = value, section
        return values, sources

    rows = [Row(m, m, *merged(m, None)) for m in methods]
    variants = raw.get("variants", {})
    if not isinstance(variants, dict):
        fail("[variants]", "must hold one table per variant, e.g. [variants.linear]")
    for name, table in variants.items():
        section = f"[variants.{name}]"
        if name in methods:
            fail(section, f": the name {name!r} is already a row of [bench] methods")
        if not re.fullmatch(r"[A-Za-z0-9._-]+", name):
            fail(section, ": variant names may use letters, digits, '.', '_' and '-' only (they name folders)")
        table = table if isinstance(table, dict) else fail(section, f"must be a table (got {table!r})")
        method = table.get("method", "gpo")
        if method not in METHODS:
            fail(section, f"method: {method!r} is not a method ({', '.join(METHODS)})")
        values, sources = merged(method, (section, options(section, table, allow_method=True)))
        if "method" in table:
            sources["method"] = section
        rows.append(Row(name, method, values, sources, is_variant=True))
    if not rows:
        fail("[bench]", "methods: no rows: list methods in [bench] methods or add [variants.<name>] tables")

    tasks = []
    for spec in string_list("tasks", required=True):
        tasks.append(_resolve_task(spec, path, cwd or Path.cwd(), lambda msg: fail("[bench]", f"tasks: {msg}")))
    names = [t.name for t in tasks]
    for name in names:
        if names.count(name) > 1:
            fail("[bench]", f"tasks: two tasks are named {name!r} (their run folders would collide)")
    return BenchConfig(path=path, description=description, tasks=tuple(tasks), rows=tuple(rows), seeds=tuple(seeds),
                       task_models=tuple(task_models), raw=raw)


def _resolve_model(spec: str, config_path: Path) -> str:
    """A relative GGUF path that exists next to the config is made absolute (cells run it from
    any directory); catalog names and other paths are passed to optimize as written."""
    given = Path(spec).expanduser()
    if given.is_absolute() or "/" not in spec and not spec.lower().endswith(".gguf"):
        return spec
    beside = config_path.resolve().parent / given
    return str(beside.resolve()) if beside.is_file() else spec


def _resolve_task(spec: str, config_path: Path, cwd: Path, fail) -> TaskRef:
    """A built-in task name, or a directory: relative paths are tried against the config file's
    directory first, then the working directory. The task is loaded, so that a broken data
    directory fails here, before any cell runs."""
    from .tasks import load_task
    from .tasks.builtin import BUILTIN_TASKS

    if spec in BUILTIN_TASKS:
        target = spec
    else:
        given = Path(spec).expanduser()
        tries = [given] if given.is_absolute() else [config_path.resolve().parent / given, cwd.resolve() / given]
        tries = list(dict.fromkeys(tries))
        found = next((p for p in tries if p.is_dir()), None)
        if found is None:
            fail(f"{spec!r} is neither a built-in task nor a directory (looked for "
                 f"{' and '.join(str(p) for p in tries)})")
        target = str(found.resolve())
    try:
        task = load_task(target)
    except GpoError as error:
        fail(f"{spec!r}: {error}")
    return TaskRef(spec=spec, target=target, name=task.name, benchmark=benchmark_of(task.source))


def check_cells(config: BenchConfig, out: Path) -> None:
    """Parse every cell's optimize command line with the installed optimize command (without
    running it), so an option it lacks or a bad value fails now, naming the config section."""
    import click

    from .cli import optimize

    where = str(config.path)

    def origin(cell: Cell, name: str | None) -> str:
        if name == "method":
            return f"{cell.row.sources['method']} method" if "method" in cell.row.sources else "[bench] methods"
        if name in cell.row.sources:
            return f"{cell.row.sources[name]} {name}"
        return "[bench]"

    for cell in config.cells(out):
        try:
            optimize.make_context("optimize", cell.argv(resume=False)[1:])
        except click.NoSuchOption as error:
            name = error.option_name.lstrip("-")
            raise ConfigError(f"{where}: {origin(cell, name)}: this gpo-local's optimize has no --{name} option "
                              f"(needed by row {cell.row.name!r})") from None
        except click.ClickException as error:
            param = getattr(error, "param", None)
            name = param.name.replace("_", "-") if param is not None else None
            raise ConfigError(f"{where}: {origin(cell, name)}: {error.format_message()} "
                              f"(row {cell.row.name!r})") from None


# ---------------------------------------------------------------------------------------------
# Running the cells.

class CellRunner(Protocol):
    def __call__(self, cell: Cell, *, resume: bool) -> str | None:
        """Run (or resume) one cell; return None on success or a one-line error."""


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    # Linux: if the harness is killed (even with SIGKILL), the cell's optimize gets SIGTERM, so
    # a restarted harness never races an orphan for the same run directory.
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


class SubprocessRunner:
    """Runs `python -m gpo_local.cli optimize ...` for a cell; its output goes to the cell's
    optimize.log. A non-zero exit becomes the error: the last `Error: ...` line, else the last
    line of output."""

    def __init__(self, python: str = sys.executable):
        self.python = python

    def __call__(self, cell: Cell, *, resume: bool) -> str | None:
        import subprocess

        log_path = cell.run_dir / "optimize.log"
        with log_path.open("ab") as log:
            start = log.tell()
            log.write(f"$ {' '.join(['gpo-local', *cell.argv(resume=resume)])}\n".encode())
            log.flush()
            code = subprocess.call([self.python, "-m", "gpo_local.cli", *cell.argv(resume=resume)],
                                   stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)
        if code == 0:
            return None
        with log_path.open("rb") as log:
            log.seek(start)
            lines = [line.strip() for line in log.read().decode("utf-8", "replace").splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith("Error:")]
        detail = errors[-1] if errors else (lines[-1] if len(lines) > 1 else "no output")
        return f"exit code {code}: {detail}"


def _write_text_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8", newline="") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(str(value), ensure_ascii=False)  # a JSON string is a valid TOML basic string


def cell_toml(cell: Cell, config: BenchConfig) -> str:
    command = " ".join(["gpo-local", *cell.argv(resume=False)])
    lines = [f"# One cell of the quality benchmark {config.path.name}: row {cell.row.name!r}, task {cell.task.spec!r}.",
             "# Keys are `gpo-local optimize` options; the task is the command's argument. Reproduce with",
             f"#   gpo-local optimize {cell.task.target} --config cell.toml --run-dir <new dir>",
             f"# or, as the harness ran it:\n#   {command}"]
    lines += [f"{name} = {_toml_value(value)}" for name, value in cell.options().items()]
    return "\n".join(lines) + "\n"


class _Lock:
    """One harness per output directory: a second one would race the first for the same cells."""

    def __init__(self, out: Path):
        self.path = out / ".bench.lock"

    def __enter__(self):
        import fcntl

        self.handle = self.path.open("w")
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self.handle.close()
            raise ConfigError(f"{self.path.parent}: another `bench quality` is running on this output directory") from None
        return self

    def __exit__(self, *exc):
        self.handle.close()


def run_bench(config: BenchConfig, out: Path, *, runner: CellRunner, ui=None) -> dict:
    """Run every unfinished cell of `config` into `out` and return the results (also written to
    out/results.{json,csv,md} after every cell)."""
    from .runs import JsonlLog

    ui = ui or SilentProgress()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cells = config.cells(out)
    with _Lock(out):
        for cell in cells:  # refuse to mix results of different options in one table
            toml_path = cell.run_dir / "cell.toml"
            if (cell.run_dir / "config.json").exists() and toml_path.exists() \
                    and tomllib.loads(toml_path.read_text(encoding="utf-8")) != cell.options():
                raise ConfigError(f"{config.path}: the options of cell {cell.label} changed since it ran "
                                  f"({toml_path}); use another --out or delete that cell's directory")
        events = JsonlLog(out / "events.jsonl")
        events.append({"time": time.time(), "event": "bench_started", "config": str(config.path), "cells": len(cells)})
        todo = [c for c in cells if not (c.run_dir / "result.json").exists()]
        ui.start(total=len(cells), done=len(cells) - len(todo), out=out)
        try:
            results = _run_cells(config, out, cells, todo, runner, ui, events)
        finally:
            ui.close()
        ui.finish(results, out)
    return results


def _run_cells(config, out, cells, todo, runner, ui, events) -> dict:
    from .runs import write_json_atomic

    results = write_results(config, out)
    walls: list[float] = []
    for cell in todo:
        resume = (cell.run_dir / "config.json").exists()
        cell.run_dir.mkdir(parents=True, exist_ok=True)
        _write_text_atomic(cell.run_dir / "cell.toml", cell_toml(cell, config))
        (cell.run_dir / "failed.json").unlink(missing_ok=True)
        eta = statistics.fmean(walls) * (len(todo) - len(walls)) if walls else None
        ui.cell_started(cell, index=cells.index(cell) + 1, resume=resume, eta=eta)
        events.append({"time": time.time(), "event": "cell_started", "run_dir": str(cell.run_dir),
                       "method": cell.row.name, "task": cell.task.name, "seed": cell.seed, "resume": resume})
        write_results(config, out, running=cell)
        started = time.time()
        try:
            error = runner(cell, resume=resume)
        except KeyboardInterrupt:
            _add_wall(cell.run_dir, time.time() - started)
            write_results(config, out)
            raise
        except Exception as exc:  # a broken runner must not stop the other cells
            error = f"{type(exc).__name__}: {exc}"
        wall = time.time() - started
        walls.append(wall)
        _add_wall(cell.run_dir, wall)
        if error is None and not (cell.run_dir / "result.json").exists():
            error = "optimize ended without writing result.json"
        if error is not None:
            write_json_atomic(cell.run_dir / "failed.json",
                              {"error": error, "time": time.strftime("%Y-%m-%dT%H:%M:%S")})
        results = write_results(config, out)
        record = next(r for r in results["cells"] if r["run_dir"] == str(cell.run_dir))
        events.append({"time": time.time(), "event": "cell_finished", "run_dir": str(cell.run_dir),
                       "status": record["status"], "error": error, "wall_seconds": round(wall, 1)})
        ui.cell_finished(cell, record, wall=wall)
    events.append({"time": time.time(), "event": "bench_finished", "counts": _status_counts(results["cells"])})
    return results


def _add_wall(run_dir: Path, seconds: float) -> None:
    """The harness's wall time of a cell (model loading included), summed over attempts."""
    from .runs import write_json_atomic

    path = run_dir / "bench.json"
    previous = json.loads(path.read_text()) if path.exists() else {}
    write_json_atomic(path, {"wall_seconds": round(previous.get("wall_seconds", 0) + seconds, 1),
                             "attempts": previous.get("attempts", 0) + 1})


# ---------------------------------------------------------------------------------------------
# Aggregation and the three result files.

COUNTERS = ("dev_scorings", "optimizer_calls", "task_tokens", "optimizer_tokens", "seconds", "wall_seconds")


def _read(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def cell_record(cell: Cell, *, running: bool = False) -> dict:
    """The state of one cell as recorded on disk."""
    record = {"method": cell.row.name, "base_method": cell.row.method, "variant": cell.row.is_variant,
              "task": cell.task.name, "benchmark": cell.task.benchmark, "seed": cell.seed,
              "task_model": cell.task_model, "run_dir": str(cell.run_dir), "status": "pending", "error": None,
              "initial_test": None, "final_test": None, "initial_dev": None, "final_dev": None,
              "final_prompt": None, "stopped": None, "task_generations": None,
              **{name: None for name in COUNTERS},
              "command": " ".join(["gpo-local", *cell.argv(resume=False)])}
    bench = _read(cell.run_dir / "bench.json") or {}
    record["wall_seconds"] = bench.get("wall_seconds")
    result_path = cell.run_dir / "result.json"
    if result_path.exists():
        result = _read(result_path)
        if result is None:
            record.update(status="failed", error=f"{result_path}: unreadable result.json")
            return record
        record.update(status="done", initial_test=result.get("initial_test"), final_test=result.get("final_test"),
                      initial_dev=(result.get("initial") or {}).get("dev_score"),
                      final_dev=(result.get("final") or {}).get("dev_score"),
                      final_prompt=(result.get("final") or {}).get("prompt"),
                      stopped=result.get("stopped"), task_generations=result.get("task_generations"),
                      **{name: result.get(name) for name in COUNTERS if name != "wall_seconds"})
    elif running:
        record["status"] = "running"
    elif (cell.run_dir / "failed.json").exists():
        record.update(status="failed", error=(_read(cell.run_dir / "failed.json") or {}).get("error"))
    elif (cell.run_dir / "config.json").exists():
        record["status"] = "unfinished"
    return record


def _mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.fmean(values) if values else None


def _std(values) -> float | None:
    """Sample standard deviation (n-1); None below two values."""
    values = [v for v in values if v is not None]
    return statistics.stdev(values) if len(values) >= 2 else None


def _round(value, digits=4):
    return None if value is None else round(value, digits)


def aggregate(config: BenchConfig, cells: list[dict]) -> dict:
    """Per (row, task, task model): mean and std over seeds of the final test score, with the
    means of the counters; per (row, task model): the mean over tasks (and its std over the seeds
    that finished every task); the paper's figures for the methods and benchmarks present."""
    done = [c for c in cells if c["status"] == "done"]
    summary, method_means = [], []
    for model in config.task_models:
        for row in config.rows:
            row_cells = [c for c in done if c["method"] == row.name and c["task_model"] == model]
            task_means = {}
            for task in config.tasks:
                group = [c for c in row_cells if c["task"] == task.name]
                tests = [c["final_test"] for c in group]
                entry = {"method": row.name, "base_method": row.method, "task": task.name,
                         "benchmark": task.benchmark, "task_model": model, "n_seeds": len(group),
                         "seeds": [c["seed"] for c in group],
                         "test_scores": tests,
                         "test_mean": _round(_mean(tests)), "test_std": _round(_std(tests)),
                         "initial_test_mean": _round(_mean(c["initial_test"] for c in group)),
                         "dev_mean": _round(_mean(c["final_dev"] for c in group)),
                         **{name: _round(_mean(c[name] for c in group), 1) for name in COUNTERS}}
                summary.append(entry)
                if entry["test_mean"] is not None:
                    task_means[task.name] = entry["test_mean"]
            per_seed = []
            for seed in config.seeds:
                scores = {c["task"]: c["final_test"] for c in row_cells if c["seed"] == seed}
                if all(scores.get(t.name) is not None for t in config.tasks):
                    per_seed.append(statistics.fmean(scores[t.name] for t in config.tasks))
            benchmarks = {}
            for bench in sorted({t.benchmark for t in config.tasks if t.benchmark}):
                values = [task_means[t.name] for t in config.tasks if t.benchmark == bench and t.name in task_means]
                benchmarks[bench] = _round(_mean(values))
            method_means.append({
                "method": row.name, "base_method": row.method, "variant": row.is_variant, "task_model": model,
                "test_mean_over_tasks": _round(_mean(task_means.values())),
                "tasks_with_scores": len(task_means), "complete": len(task_means) == len(config.tasks),
                "test_std_over_seeds": _round(_std(per_seed)), "seeds_complete": len(per_seed),
                "benchmark_means": benchmarks, "cells_done": len(row_cells),
                **{name: _round(_mean(c[name] for c in row_cells), 1) for name in COUNTERS}})
    paper = []
    for row in config.rows:
        if row.is_variant:
            continue  # the paper's figures are for the methods' headline settings only
        for bench in sorted({t.benchmark for t in config.tasks if t.benchmark}):
            score = paper_score(row.method, bench)
            if score is not None:
                paper.append({"method": row.name, "task": bench, "score": score, "source": PAPER_SOURCE})
    return {"summary": summary, "method_means": method_means, "paper": paper}


def _status_counts(cells: list[dict]) -> dict:
    counts: dict[str, int] = {}
    for cell in cells:
        counts[cell["status"]] = counts.get(cell["status"], 0) + 1
    return counts


def collect(config: BenchConfig, out: Path, *, running: Cell | None = None) -> dict:
    cells = [cell_record(c, running=running is not None and c.run_dir == running.run_dir) for c in config.cells(out)]
    return {"config": {"path": str(config.path), "description": config.description, "settings": config.raw,
                       "tasks": [{"spec": t.spec, "path": t.target, "name": t.name, "benchmark": t.benchmark}
                                 for t in config.tasks]},
            "generated": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "out": str(out),
            "counts": _status_counts(cells), "cells": cells, **aggregate(config, cells)}


def write_results(config: BenchConfig, out: Path, *, running: Cell | None = None) -> dict:
    results = collect(config, out, running=running)
    _write_text_atomic(out / "results.json", json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    _write_text_atomic(out / "results.csv", results_csv(results))
    _write_text_atomic(out / "results.md", results_markdown(results))
    return results


CSV_FIELDS = ("method", "base_method", "task", "benchmark", "task_model", "n_seeds", "test_mean", "test_std",
              "initial_test_mean", "dev_mean", *COUNTERS, "paper_score")
MEAN_ROW = "(mean over tasks)"


def results_csv(results: dict) -> str:
    """One row per (method, task, task model), then one per (method, task model) with task
    "(mean over tasks)". Scores are fractions (0..1); counters are means per run."""
    paper = {(p["method"], p["task"]): p["score"] for p in results["paper"]}
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for entry in results["summary"]:
        writer.writerow({**entry, "paper_score": None})
    for entry in results["method_means"]:
        benches = list(entry["benchmark_means"])
        writer.writerow({**entry, "task": MEAN_ROW, "benchmark": benches[0] if len(benches) == 1 else None,
                         "n_seeds": entry["seeds_complete"], "test_mean": entry["test_mean_over_tasks"],
                         "test_std": entry["test_std_over_seeds"],
                         "paper_score": paper.get((entry["method"], benches[0])) if len(benches) == 1 else None})
    return buffer.getvalue()


def _pct(value) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}"


def _num(value) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.1f}".rstrip("0").rstrip(".")


def _table(header: list[str], rows: list[list[str]], align: str) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return lines


def results_markdown(results: dict) -> str:
    config = results["config"]
    tasks = [t["name"] for t in config["tasks"]]
    models = list(dict.fromkeys(m["task_model"] for m in results["method_means"]))
    benches = sorted({t["benchmark"] for t in config["tasks"] if t["benchmark"]})
    paper = {(p["method"], p["task"]): p["score"] for p in results["paper"]}
    counts = results["counts"]
    total = sum(counts.values())
    seeds = sorted({c["seed"] for c in results["cells"]})
    lines = [f"# Quality benchmark: {Path(config['path']).name}", ""]
    if config["description"]:
        lines += [config["description"].strip(), ""]
    lines += [f"- config: `{config['path']}`; output: `{results['out']}`; written {results['generated']}",
              f"- cells: {counts.get('done', 0)} of {total} done"
              + "".join(f", {n} {status}" for status, n in sorted(counts.items()) if status != "done"),
              f"- tasks: {', '.join(tasks)}; seeds: {', '.join(map(str, seeds))}; "
              f"task model(s): {', '.join(models)}",
              f"- harness wall time of the cells so far: "
              f"{_duration(sum(c['wall_seconds'] or 0 for c in results['cells']))}", ""]
    by_key = {(s["method"], s["task"], s["task_model"]): s for s in results["summary"]}
    for model in models:
        means = [m for m in results["method_means"] if m["task_model"] == model]
        title = "Test score (%)" + (f", task model {model}" if len(models) > 1 else "")
        header = ["method", *tasks, "mean over tasks"]
        if len(benches) > 1:
            header += [f"ours {b}" for b in benches]
        header += [f"paper {b} ¹" for b in benches if any((m["method"], b) in paper for m in means)]
        rows = []
        for mean in means:
            row = [mean["method"] + (f" ({mean['base_method']})" if mean["variant"] else "")]
            for task in tasks:
                entry = by_key[(mean["method"], task, model)]
                cell = _pct(entry["test_mean"])
                if entry["test_std"] is not None:
                    cell += f" ± {100 * entry['test_std']:.1f}"
                if entry["test_mean"] is not None and (entry["n_seeds"] > 1 or len(seeds) > 1):
                    cell += f" ({entry['n_seeds']})"
                row.append(cell)
            overall = _pct(mean["test_mean_over_tasks"])
            if mean["test_std_over_seeds"] is not None:
                overall += f" ± {100 * mean['test_std_over_seeds']:.1f}"
            if not mean["complete"] and mean["test_mean_over_tasks"] is not None:
                overall += f" ({mean['tasks_with_scores']} of {len(tasks)} tasks)"
            row.append(overall)
            if len(benches) > 1:
                row += [_pct(mean["benchmark_means"].get(b)) for b in benches]
            row += [f"{100 * paper[(mean['method'], b)]:.2f}" if (mean["method"], b) in paper else ""
                    for b in benches if any((m["method"], b) in paper for m in means)]
            rows.append(row)
        lines += [f"## {title}", ""] + _table(header, rows, "l" + "r" * (len(header) - 1)) + [""]
    lines += ["Each score is the final prompt's test score, mean ± sample standard deviation over seeds "
              "(the number of seeds in parentheses when there are several); \"mean over tasks\" is the "
              "mean of the task columns, ± the standard deviation over seeds of the per-seed mean.", ""]
    if results["paper"]:
        lines += [f"¹ The paper's figure, not ours: {PAPER_SOURCE}; full test splits, macro-averaged over all "
                  "of the benchmark's tasks. Other models and tasks: for orientation only.", ""]
    lines += ["## Cost per run (mean over finished cells)", ""]
    rows = [[m["method"] + (f", {m['task_model']}" if len(models) > 1 else ""), str(m["cells_done"]),
             _num(m["dev_scorings"]), _num(m["optimizer_calls"]), _num(m["task_tokens"]),
             _num(m["optimizer_tokens"]), _num(m["seconds"]), _num(m["wall_seconds"])]
            for m in results["method_means"]]
    lines += _table(["method", "cells", "dev scorings", "optimizer calls", "task tokens", "optimizer tokens",
                     "optimize s", "wall s"], rows, "lrrrrrrr")
    lines += ["", "Dev scorings: (prompt, dev example) scorings requested; wall s: the harness's time for the "
              "cell, model loading included.", "", "## Cells", ""]
    rows = [[c["method"], c["task"], str(c["seed"]), c["task_model"], c["status"], _pct(c["initial_test"]),
             _pct(c["final_test"]), _pct(c["final_dev"]), c["stopped"] or "", _num(c["wall_seconds"]),
             c["error"] or ""] for c in results["cells"]]
    lines += _table(["method", "task", "seed", "task model", "status", "initial test", "final test", "final dev",
                     "stopped", "wall s", "error"], rows, "lllllrrrlrl")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# Progress display.

class SilentProgress:
    def start(self, *, total: int, done: int, out: Path) -> None: ...
    def cell_started(self, cell: Cell, *, index: int, resume: bool, eta: float | None) -> None: ...
    def cell_finished(self, cell: Cell, record: dict, *, wall: float) -> None: ...
    def finish(self, results: dict, out: Path) -> None: ...
    def close(self) -> None: ...


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    seconds = int(seconds)
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


class RichProgress(SilentProgress):
    """A line per cell on stderr (cell i of N, row / task / seed, elapsed, ETA from the cells run
    so far) and a live bar over the cells with the current cell's elapsed time."""

    def __init__(self):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.console = Console(stderr=True)
        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), TextColumn("ETA {task.fields[eta]}"), console=self.console,
                            transient=True)
        self.started = time.time()

    def start(self, *, total: int, done: int, out: Path) -> None:
        self.total = total
        self.console.print(f"quality benchmark: {total} cells, {done} already done; output: {out}", highlight=False)
        self.bar.start()
        self.task_id = self.bar.add_task("cells", total=total, completed=done, eta="unknown")

    def cell_started(self, cell: Cell, *, index: int, resume: bool, eta: float | None) -> None:
        verb = "resuming" if resume else "running"
        self.console.print(f"[{index}/{self.total}] {verb} {cell.label} (elapsed {_duration(time.time() - self.started)}, "
                           f"ETA {_duration(eta)})", highlight=False)
        self.bar.update(self.task_id, description=cell.label, eta=_duration(eta))

    def cell_finished(self, cell: Cell, record: dict, *, wall: float) -> None:
        if record["status"] == "done":
            text = f"  done in {_duration(wall)}: test {_pct(record['initial_test'])} -> {_pct(record['final_test'])}"
        else:
            text = f"  FAILED after {_duration(wall)}: {record['error']}"
        self.console.print(text, highlight=False, style=None if record["status"] == "done" else "red")
        self.bar.advance(self.task_id)

    def close(self) -> None:
        self.bar.stop()

    def finish(self, results: dict, out: Path) -> None:
        counts = results["counts"]
        self.console.print(f"finished in {_duration(time.time() - self.started)}: "
                           + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
                           + f"; results in {out}/results.md (.csv, .json)", highlight=False)
