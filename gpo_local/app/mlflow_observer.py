"""The optimize service's MLflow observer (`--mlflow [URI]`, app/tracking.py): told after each
recorded step and at the end of a run, it logs what the run directory holds, so the algorithm
layer knows nothing of MLflow and a resumed run (which replays its recorded steps) logs each step
once.

The `mlflow` runtime option: None (off), DEFAULT_URI (the tracking URI MLflow's
MLFLOW_TRACKING_URI names, else tracking.py's local store) or a tracking URI.

`bench quality --mlflow` is one parent MLflow run (kept in the output directory's
`mlflow_run_id`, so a rerun continues it) with a child run per cell: the bench tells the optimize
commands it starts through two environment variables, TRACKING_VARIABLE (the option's value) and
PARENT_RUN_VARIABLE (the parent's run id).
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Mapping

from gpo_local.app.report import write_report
from gpo_local.app.tracking import Tracker
from gpo_local.errors import ConfigError, OptionValue
from gpo_local.runs.rundata import load_run

DEFAULT_URI = "default"  # `--mlflow` without a URI
PARENT_RUN_VARIABLE = "GPO_LOCAL_MLFLOW_PARENT_RUN"
TRACKING_VARIABLE = "GPO_LOCAL_MLFLOW"
BENCH_ARTIFACTS = ("results.md", "results.csv", "results.json", "leaderboard.csv")
REPORT_NAME = "report.html"
# The progress events after which the trajectory has a new complete record (optimizer.py).
RECORDED_EVENTS = ("trajectory", "chosen")


def tracking_uri(value: str | None) -> str | None:
    """The tracking URI of the `mlflow` option's value: None for the default (tracking.py). A blank
    value is refused: it is a URI left out, not a request for the default store."""
    if value is not None and not value.strip():
        raise ConfigError(
            OptionValue("mlflow", value),
            " is blank: give a tracking URI, or the option alone for the default store",
        )
    return None if value in (None, DEFAULT_URI) else value.strip()


def requested(option: str | None) -> str | None:
    """The `mlflow` option's value, else the one a tracked benchmark gave its cells, else None."""
    return option or os.environ.get(TRACKING_VARIABLE, "").strip() or None


def _cell_name(run_dir: Path) -> str:
    """A benchmark cell's name from its directory (runs/<task>/<method>/seed<N>[/<model>])."""
    parts = run_dir.parts
    if "runs" not in parts:
        return run_dir.name
    last_runs = len(parts) - 1 - parts[::-1].index("runs")
    return "/".join(parts[last_runs + 1 :]) or run_dir.name


@contextmanager
def bench_tracking(out: Path, option: str, settings: Mapping, name: str) -> Iterator[Tracker]:
    """The benchmark's parent MLflow run around `bench quality`: its config as parameters, its
    result files as artifacts at the end; the cells started inside log as its children."""
    tracker = Tracker.open(out, tracking_uri=tracking_uri(option), run_name=f"bench {name}")
    tracker.log_config(settings)
    saved = {key: os.environ.get(key) for key in (PARENT_RUN_VARIABLE, TRACKING_VARIABLE)}
    os.environ[PARENT_RUN_VARIABLE], os.environ[TRACKING_VARIABLE] = tracker.run_id, option
    try:
        yield tracker
    except BaseException as error:
        tracker.close("KILLED" if isinstance(error, KeyboardInterrupt) else "FAILED")
        raise
    else:
        for artifact in BENCH_ARTIFACTS:
            if (out / artifact).is_file():
                tracker.client.log_artifact(tracker.run_id, str(out / artifact))
        tracker.close()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class MlflowObserver:
    """Logs one run directory to its MLflow run (tracking.Tracker)."""

    def __init__(self, tracker: Tracker):
        self.tracker = tracker

    @classmethod
    def open(
        cls, run_dir: Path, option: str, *, resolved_options: Mapping, model_identities: Mapping
    ) -> "MlflowObserver":
        """The observer of a run whose config.json is written; a resumed run continues the MLflow
        run its directory names."""
        parent = os.environ.get(PARENT_RUN_VARIABLE, "").strip() or None
        tracker = Tracker.open(
            run_dir,
            tracking_uri=tracking_uri(option),
            parent_run_id=parent,
            run_name=_cell_name(Path(run_dir)) if parent else None,
        )
        tracker.log_config(resolved_options)
        tracker.set_model_tags(model_identities)
        observer = cls(tracker)
        observer.sync_steps()
        return observer

    def event(self, kind: str, data: dict) -> None:
        if kind in RECORDED_EVENTS:
            self.sync_steps()

    def sync_steps(self) -> None:
        """Every complete step of trajectory.jsonl not logged yet: its best dev score so far and
        its candidates' dev scores, at MLflow step = the step's number (0 for the initial prompt)."""
        best = None
        for view in load_run(self.tracker.run_dir).steps:
            scores = [c.get("dev_score") for c in view.candidates]
            step_best = max([s for s in (view.dev_score, *scores) if s is not None], default=None)
            if step_best is not None:
                best = step_best if best is None else max(best, step_best)
            self.tracker.log_step(view.step + 1, best, scores)

    def finished(self, summary: Mapping) -> None:
        """The outcome, the artifacts (the HTML report rendered first if there is none), and the
        MLflow run marked finished."""
        self.sync_steps()
        initial, final = summary.get("initial_test"), summary.get("final_test")
        gain = final - initial if initial is not None and final is not None else None
        self.tracker.log_result(summary["final"]["prompt"], {"initial": initial, "final": final}, gain)
        run_dir = self.tracker.run_dir
        if not (run_dir / REPORT_NAME).is_file():
            write_report([run_dir], run_dir / REPORT_NAME)
        self.tracker.log_artifacts(run_dir)
        self.tracker.close()

    def failed(self, error: BaseException) -> None:
        """The MLflow run marked KILLED (Ctrl-C) or FAILED; what was logged stays, and --resume
        --mlflow continues it."""
        self.tracker.close("KILLED" if isinstance(error, KeyboardInterrupt) else "FAILED")
