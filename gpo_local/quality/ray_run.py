"""Running the cells of a bench as Ray tasks (`bench quality --ray ADDRESS`).

run_bench keeps everything it does for a local run (the lock on --out, the check of started
cells' options, events.jsonl, results.* after every cell); only the loop over the cells to run
is this one: every cell is submitted at once as a Ray task, with the resources its options ask
for (`threads` CPUs, default 1; one GPU where `n-gpu-layers` is set), and is finished, on the
driver, in the order the tasks end. The same semantics as a local run hold:

* a finished cell is skipped (run_bench), a started one is resumed: the task itself looks for
  the run's config.json, so a task that Ray retries after losing its node resumes too;
* a failed cell (a non-zero exit, a task error, a node lost more than MAX_RETRIES times) gets
  failed.json and is retried on the next run; the other cells go on;
* the cell's run directory ends up in --out on the driver. Where the worker sees the driver's
  --out (shared storage, or one machine), the cell runs in place; elsewhere the directory goes
  to the worker as a tar archive through Ray's object store, the cell runs in a temporary
  directory, and the archive of the result comes back and is unpacked into --out.
"""

from __future__ import annotations

import io
import secrets
import shutil
import tarfile
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from gpo_local.quality.cells import BenchConfig, Cell
from gpo_local.quality.results import status_counts, write_results
from gpo_local.quality.run import SubprocessRunner, add_wall, finish_cell, prepare_cell

MAX_RETRIES = 3  # Ray re-runs a task whose worker or node died (not one whose cell failed)
PROBE_NAME = ".ray-probe"


def cell_resources(cell: Cell) -> dict:
    """Ray resources of a cell: its optimize's threads (1 when not set) and a GPU if it offloads."""
    threads = cell.row.options.get("threads")
    gpu_layers = cell.row.options.get("n-gpu-layers", 0)
    return {"num_cpus": int(threads) if threads else 1, "num_gpus": 1 if gpu_layers else 0}


def pack(directory: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(directory, arcname=".")
    return buffer.getvalue()


def unpack(archive: bytes, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        tar.extractall(directory, filter="data")


def run_cell_task(
    runner, cell: Cell, archive: bytes, probe: tuple[str, str]
) -> tuple[str | None, bytes | None, float]:
    """The Ray task of one cell: (error or None, the run directory's archive or None when it was
    written in place, seconds). Runs on a worker."""
    started = time.time()
    if runner is None or type(runner) is SubprocessRunner:
        runner = SubprocessRunner()  # this worker's python, not the driver's path
    path, token = probe
    if _sees(Path(path), token):  # --out is shared with the driver: run in place
        return runner(cell, resume=(cell.run_dir / "config.json").exists()), None, time.time() - started
    scratch = Path(tempfile.mkdtemp(prefix="gpo-cell-"))
    try:
        local = replace(cell, run_dir=scratch / "run")
        unpack(archive, local.run_dir)
        error = runner(local, resume=(local.run_dir / "config.json").exists())
        return error, pack(local.run_dir), time.time() - started
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _sees(path: Path, token: str) -> bool:
    try:
        return path.read_text() == token
    except OSError:
        return False


class RayCells:
    """The `run_cells` loop of run_bench on a Ray cluster. `in_place=False` always ships the run
    directories through the object store (tests use it to cover a cluster without shared storage)."""

    def __init__(self, ray, *, in_place: bool = True):
        self.ray, self.in_place = ray, in_place

    def __call__(self, config: BenchConfig, out: Path, cells, todo, runner, ui, events) -> dict:
        results = write_results(config, out)
        probe = self._probe(out)
        task = self.ray.remote(run_cell_task)
        jobs = {}
        for cell in todo:
            resume = prepare_cell(cell, config)
            ui.cell_started(cell, index=cells.index(cell) + 1, resume=resume, eta=None)
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
            ref = task.options(**cell_resources(cell), max_retries=MAX_RETRIES).remote(
                runner, cell, pack(cell.run_dir), probe
            )
            jobs[ref] = (cell, time.time())
        try:
            while jobs:
                ready, _ = self.ray.wait(list(jobs), num_returns=1)
                cell, submitted = jobs.pop(ready[0])
                error, wall = self._outcome(ready[0], cell, submitted)
                results = finish_cell(config, out, cell, error, wall, ui, events)
        except KeyboardInterrupt:
            for ref, (cell, submitted) in jobs.items():
                self.ray.cancel(ref, force=True)  # kills the worker; the cell's optimize dies with it
                add_wall(cell.run_dir, time.time() - submitted)
            write_results(config, out)
            raise
        finally:
            (out / PROBE_NAME).unlink(missing_ok=True)
        events.append(
            {"time": time.time(), "event": "bench_finished", "counts": status_counts(results["cells"])}
        )
        return results

    def _probe(self, out: Path) -> tuple[str, str]:
        token = secrets.token_hex(16) if self.in_place else "never " + secrets.token_hex(16)
        (out / PROBE_NAME).write_text(token if self.in_place else "")
        return str((out / PROBE_NAME).resolve()), token

    def _outcome(self, ref, cell: Cell, submitted: float) -> tuple[str | None, float]:
        """The cell's error (None on success) and its wall time on the worker."""
        exceptions = self.ray.exceptions
        try:
            error, archive, wall = self.ray.get(ref)
        except exceptions.RayTaskError as failure:
            cause = failure.cause if getattr(failure, "cause", None) is not None else failure
            return f"{type(cause).__name__}: {_first_line(cause)}", time.time() - submitted
        except exceptions.RayError as failure:  # the worker or node died MAX_RETRIES + 1 times, a cancel
            return f"Ray: {type(failure).__name__}: {_first_line(failure)}", time.time() - submitted
        if archive is not None:
            unpack(archive, cell.run_dir)
        return error, wall


def _first_line(error: BaseException) -> str:
    lines = [line for line in str(error).splitlines() if line.strip()]
    return lines[0].strip() if lines else "no detail"
