"""Running the cells one after the other: skip finished ones, resume started ones, record
failures and go on; the subprocess runner; progress on the terminal."""

from __future__ import annotations

import ctypes
import fcntl
import json
import signal
import statistics
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Protocol

from gpo_local.app.formatting import percent
from gpo_local.errors import ConfigError, OptionValue
from gpo_local.quality.cells import BenchConfig, Cell
from gpo_local.quality.leaderboard import format_table, table_rows
from gpo_local.quality.markdown import format_duration
from gpo_local.quality.results import status_counts, write_results
from gpo_local.runs.directory import JsonlLog, write_json_atomic
from gpo_local.runs.storage import write_atomic


class CellRunner(Protocol):
    def __call__(self, cell: Cell, *, resume: bool) -> str | None:
        """Run (or resume) one cell; return None on success or a one-line error."""


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    # Linux: if the harness is killed (even with SIGKILL), the cell's optimize gets SIGTERM, so
    # a restarted harness never races an orphan for the same run directory.
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


class SubprocessRunner:
    """Runs `python -m gpo_local.app.cli optimize ...` for a cell; its output goes to the cell's
    optimize.log. A non-zero exit becomes the error: the last `Error: ...` line, else the last
    line of output."""

    def __init__(self, python: str = sys.executable):
        self.python = python

    def __call__(self, cell: Cell, *, resume: bool) -> str | None:
        log_path = cell.run_dir / "optimize.log"
        with log_path.open("ab") as log:
            start = log.tell()
            log.write(f"$ {' '.join(['gpo-local', *cell.argv(resume=resume)])}\n".encode())
            log.flush()
            code = subprocess.call(
                [self.python, "-m", "gpo_local.app.cli", *cell.argv(resume=resume)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
            )
        if code == 0:
            return None
        with log_path.open("rb") as log:
            log.seek(start)
            lines = [
                line.strip() for line in log.read().decode("utf-8", "replace").splitlines() if line.strip()
            ]
        errors = [line for line in lines if line.startswith("Error:")]
        detail = errors[-1] if errors else (lines[-1] if len(lines) > 1 else "no output")
        return f"exit code {code}: {detail}"


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(str(value), ensure_ascii=False)  # a JSON string is a valid TOML basic string


def cell_toml(cell: Cell, config: BenchConfig) -> str:
    command = " ".join(["gpo-local", *cell.argv(resume=False)])
    lines = [
        f"# One cell of the quality benchmark {config.path.name}: row {cell.row.name!r}, task "
        f"{cell.task.spec!r}.",
        "# Keys are `gpo-local optimize` options; the task is the command's argument. Reproduce with",
        f"#   gpo-local optimize {cell.task.target} --config cell.toml --run-dir <new dir>",
        f"# or, as the harness ran it:\n#   {command}",
    ]
    lines += [f"{name} = {_toml_value(value)}" for name, value in cell.options().items()]
    return "\n".join(lines) + "\n"


class _Lock:
    """One harness per output directory: a second one would race the first for the same cells."""

    def __init__(self, out: Path):
        self.path = out / ".bench.lock"

    def __enter__(self):
        self.handle = self.path.open("w")
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self.handle.close()
            raise ConfigError(
                f"{self.path.parent}: another `bench quality` is running on this output directory"
            ) from None
        return self

    def __exit__(self, *exc):
        self.handle.close()


def run_bench(config: BenchConfig, out: Path, *, runner: CellRunner, ui=None, run_cells=None) -> dict:
    """Run every unfinished cell of `config` into `out` and return the results (also written to
    out/results.{json,csv,md} after every cell). `run_cells` replaces the loop over the cells to
    run (quality/ray_run.py runs them as Ray tasks)."""

    ui = ui or SilentProgress()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cells = config.cells(out)
    with _Lock(out):
        for cell in cells:  # refuse to mix results of different options in one table
            toml_path = cell.run_dir / "cell.toml"
            if (
                (cell.run_dir / "config.json").exists()
                and toml_path.exists()
                and tomllib.loads(toml_path.read_text(encoding="utf-8")) != cell.options()
            ):
                raise ConfigError(
                    f"{config.path}: the options of cell {cell.label} changed since it ran "
                    f"({toml_path}); use another ",
                    OptionValue("out"),
                    " or delete that cell's directory",
                )
        events = JsonlLog(out / "events.jsonl")
        events.append(
            {"time": time.time(), "event": "bench_started", "config": str(config.path), "cells": len(cells)}
        )
        todo = [c for c in cells if not (c.run_dir / "result.json").exists()]
        ui.start(total=len(cells), done=len(cells) - len(todo), out=out)
        try:
            results = (run_cells or _run_cells)(config, out, cells, todo, runner, ui, events)
        finally:
            ui.close()
        ui.finish(results, out)
    return results


def _run_cells(config, out, cells, todo, runner, ui, events) -> dict:
    results = write_results(config, out)
    walls: list[float] = []
    for cell in todo:
        resume = prepare_cell(cell, config)
        eta = statistics.fmean(walls) * (len(todo) - len(walls)) if walls else None
        ui.cell_started(cell, index=cells.index(cell) + 1, resume=resume, eta=eta)
        events.append(
            {
                "time": time.time(),
                "event": "cell_started",
                "run_dir": str(cell.run_dir),
                "method": cell.row.name,
                "task": cell.task.name,
                "seed": cell.seed,
                "resume": resume,
            }
        )
        write_results(config, out, running=cell)
        started = time.time()
        try:
            error = runner(cell, resume=resume)
        except KeyboardInterrupt:
            add_wall(cell.run_dir, time.time() - started)
            write_results(config, out)
            raise
        except Exception as exc:  # a broken runner must not stop the other cells
            error = f"{type(exc).__name__}: {exc}"
        wall = time.time() - started
        walls.append(wall)
        results = finish_cell(config, out, cell, error, wall, ui, events)
    events.append({"time": time.time(), "event": "bench_finished", "counts": status_counts(results["cells"])})
    return results


def prepare_cell(cell: Cell, config: BenchConfig) -> bool:
    """A cell's folder before its run, locally or on a cluster: its cell.toml, no failed.json of
    an earlier attempt. Whether the run resumes (an earlier attempt wrote config.json)."""
    resume = (cell.run_dir / "config.json").exists()
    cell.run_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(cell.run_dir / "cell.toml", cell_toml(cell, config))
    (cell.run_dir / "failed.json").unlink(missing_ok=True)
    return resume


def finish_cell(config, out: Path, cell: Cell, error: str | None, wall: float, ui, events) -> dict:
    """Record a cell that ended, locally or on a cluster: its wall time (bench.json), failed.json
    when it failed, the bench's results files and the `cell_finished` event. The new results."""
    add_wall(cell.run_dir, wall)
    if error is None and not (cell.run_dir / "result.json").exists():
        error = "optimize ended without writing result.json"
    if error is not None:
        write_json_atomic(
            cell.run_dir / "failed.json", {"error": error, "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
        )
    results = write_results(config, out)
    record = next(r for r in results["cells"] if r["run_dir"] == str(cell.run_dir))
    events.append(
        {
            "time": time.time(),
            "event": "cell_finished",
            "run_dir": str(cell.run_dir),
            "status": record["status"],
            "error": error,
            "wall_seconds": round(wall, 1),
        }
    )
    ui.cell_finished(cell, record, wall=wall)
    return results


def add_wall(run_dir: Path, seconds: float) -> None:
    """The harness's wall time of a cell (model loading included), summed over attempts."""

    path = run_dir / "bench.json"
    previous = json.loads(path.read_text()) if path.exists() else {}
    write_json_atomic(
        path,
        {
            "wall_seconds": round(previous.get("wall_seconds", 0) + seconds, 1),
            "attempts": previous.get("attempts", 0) + 1,
        },
    )


class SilentProgress:
    def start(self, *, total: int, done: int, out: Path) -> None: ...
    def cell_started(self, cell: Cell, *, index: int, resume: bool, eta: float | None) -> None: ...
    def cell_finished(self, cell: Cell, record: dict, *, wall: float) -> None: ...
    def finish(self, results: dict, out: Path) -> None: ...
    def close(self) -> None: ...


class RichProgress(SilentProgress):
    """A line per cell on stderr (cell i of N, row / task / seed, elapsed, ETA from the cells run
    so far) and a live bar over the cells with the current cell's elapsed time."""

    def __init__(self):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.console = Console(stderr=True)
        self.bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA {task.fields[eta]}"),
            console=self.console,
            transient=True,
        )
        self.started = time.time()

    def start(self, *, total: int, done: int, out: Path) -> None:
        self.total = total
        self.console.print(
            f"quality benchmark: {total} cells, {done} already done; output: {out}", highlight=False
        )
        self.bar.start()
        self.task_id = self.bar.add_task("cells", total=total, completed=done, eta="unknown")

    def cell_started(self, cell: Cell, *, index: int, resume: bool, eta: float | None) -> None:
        verb = "resuming" if resume else "running"
        self.console.print(
            f"[{index}/{self.total}] {verb} {cell.label} (elapsed "
            f"{format_duration(time.time() - self.started)}, "
            f"ETA {format_duration(eta)})",
            highlight=False,
        )
        self.bar.update(self.task_id, description=cell.label, eta=format_duration(eta))

    def cell_finished(self, cell: Cell, record: dict, *, wall: float) -> None:
        if record["status"] == "done":
            text = (
                f"  done in {format_duration(wall)}: test {percent(record['initial_test'])} -> "
                f"{percent(record['final_test'])}"
            )
        else:
            text = f"  FAILED after {format_duration(wall)}: {record['error']}"
        self.console.print(text, highlight=False, style=None if record["status"] == "done" else "red")
        self.bar.advance(self.task_id)

    def close(self) -> None:
        self.bar.stop()

    def finish(self, results: dict, out: Path) -> None:
        counts = results["counts"]
        self.console.print(
            f"finished in {format_duration(time.time() - self.started)}: "
            + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
            + f"; results in {out}/results.md (.csv, .json)",
            highlight=False,
        )
        if results.get("leaderboard"):
            header, rows = table_rows(results["leaderboard"])
            self.console.print(
                "models leaderboard (test %, ± standard error):\n" + format_table(header, rows),
                highlight=False,
                markup=False,
            )
