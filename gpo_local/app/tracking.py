"""MLflow experiment tracking of runs, for labs that compare runs in an experiment tracker rather
than with `gpo-local show` and `report`. Off unless asked for: nothing here runs, and mlflow is not
imported, until a `Tracker` is opened.

One gpo-local run is one MLflow run: the resolved options as parameters, the models' identities
as tags, each step's best dev score and every candidate's dev score as metrics at that step, the
final prompt, test scores and gain as metrics and tags, and the run directory's result.json,
trajectory.jsonl and HTML report as artifacts. The MLflow run id is kept in the run directory
(`mlflow_run_id`), so a resumed run continues the same MLflow run and appends only the steps it
has not logged yet. A benchmark is one parent run with one child run per cell (`Tracker.child`).

Where the runs go: the tracking URI given, else MLflow's own `MLFLOW_TRACKING_URI`, else a
SQLite store under $GPO_LOCAL_HOME/mlruns that needs no server and that
`mlflow ui --backend-store-uri sqlite:///$GPO_LOCAL_HOME/mlruns/mlflow.db` shows. The client API
(`MlflowClient`) is used rather than `mlflow.start_run`: no process-wide active run, so a
benchmark's cells and a library user's own MLflow runs do not interfere.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from gpo_local.errors import ConfigError
from gpo_local.runs.directory import home_dir

RUN_ID_FILE = "mlflow_run_id"
DEFAULT_EXPERIMENT = "gpo-local"
STORE_DIR = "mlruns"
# MLflow's limits (mlflow.utils.validation): longer parameter values and tags are refused; a
# batch holds at most 100 parameters and tags, and 1000 metrics.
MAX_PARAM_VALUE = 6000
MAX_TAG_VALUE = 8000
MAX_KEY = 250
PARAMS_OR_TAGS_PER_BATCH = 100
METRICS_PER_BATCH = 1000
ARTIFACTS = ("result.json", "trajectory.jsonl", "config.json", "report.html")
TRUNCATED = "...[truncated]"


def _mlflow():
    """The mlflow package, imported here only: it is a heavy optional dependency (the `mlflow`
    extra) that a run without tracking never loads."""
    try:
        import mlflow
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise ConfigError(
            "MLflow tracking needs the mlflow package: pip install 'gpo-local[mlflow]'"
        ) from None
    # Creating a SQLite store logs its table migrations at INFO on the console: not the user's concern.
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)
    return mlflow, MlflowClient


def default_tracking_uri() -> str:
    """MLFLOW_TRACKING_URI if set, else a SQLite store under $GPO_LOCAL_HOME/mlruns."""
    configured = os.environ.get("MLFLOW_TRACKING_URI", "").strip()
    if configured:
        return configured
    return f"sqlite:///{(home_dir() / STORE_DIR / 'mlflow.db').resolve()}"


def _local_artifact_root(tracking_uri: str) -> str | None:
    """Where a new experiment of a local SQLite store keeps its artifacts: beside the database
    (MLflow's own default would be ./mlruns of whatever directory the command ran in)."""
    if not tracking_uri.startswith("sqlite:///"):
        return None
    database = Path(tracking_uri[len("sqlite:///") :])
    return (database.parent / "artifacts").resolve().as_uri()


def flatten(options: Mapping, prefix: str = "") -> dict[str, str]:
    """Nested options as {"a.b": "value"}: scalars as text, lists as JSON."""
    flat: dict[str, str] = {}
    for key, value in options.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, f"{name}."))
        elif isinstance(value, str):
            flat[name] = value
        elif isinstance(value, (list, tuple, Mapping)):
            flat[name] = json.dumps(value, ensure_ascii=False, default=str)
        else:
            flat[name] = str(value)
    return flat


def _key(name: str) -> str:
    """A key MLflow accepts: letters, digits, `_ - . / : ` and spaces, at most MAX_KEY characters."""
    cleaned = "".join(c if c.isalnum() or c in "_-./: " else "_" for c in name)
    return cleaned[:MAX_KEY]


def _clip(value: str, limit: int) -> str:
    return value if len(value) <= limit else value[: limit - len(TRUNCATED)] + TRUNCATED


def _batches(items: list, size: int) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class Tracker:
    """One MLflow run for one run directory. Open it with `Tracker.open`; every method logs at
    once (nothing is buffered, so a killed run keeps what it logged)."""

    def __init__(
        self, client, run_id: str, run_dir: Path, tracking_uri: str, experiment_id: str, resumed: bool
    ):
        self.client, self.run_id, self.run_dir = client, run_id, run_dir
        self.tracking_uri, self.experiment_id, self.resumed = tracking_uri, experiment_id, resumed
        self._logged_steps = self._steps_logged() if resumed else set()
        self.closed = False

    @classmethod
    def open(
        cls,
        run_dir: Path | str,
        *,
        tracking_uri: str | None = None,
        experiment: str = DEFAULT_EXPERIMENT,
        parent_run_id: str | None = None,
        run_name: str | None = None,
    ) -> "Tracker":
        """The MLflow run of `run_dir`: the one its `mlflow_run_id` names if the store has it
        (a resumed run; marked running again), else a new one, whose id is then written there.
        `parent_run_id` makes a new run a child of that run (a benchmark cell)."""
        mlflow, client_class = _mlflow()
        run_dir = Path(run_dir)
        uri = tracking_uri or default_tracking_uri()
        if uri.startswith("sqlite:///"):
            Path(uri[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
        from mlflow.exceptions import MlflowException  # mlflow is loaded by now (_mlflow)

        try:
            client = client_class(tracking_uri=uri)
            existing = cls._stored_run(client, run_dir)
            if existing is not None:
                client.update_run(existing.info.run_id, status="RUNNING")
                return cls(
                    client, existing.info.run_id, run_dir, uri, existing.info.experiment_id, resumed=True
                )
            experiment_id = cls._experiment_id(client, experiment, uri)
        except MlflowException as error:
            # An unusable store (an unknown scheme, a file store MLflow refuses, a server that
            # says no): one line naming the URI instead of MLflow's traceback.
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise ConfigError(f"MLflow tracking URI {uri!r} cannot be used: {reason}") from None
        tags = {"gpo_local.run_dir": str(run_dir.resolve())}
        if parent_run_id:
            tags["mlflow.parentRunId"] = parent_run_id
        run = client.create_run(experiment_id, tags=tags, run_name=run_name or run_dir.name)
        run_dir.mkdir(parents=True, exist_ok=True)
        path = run_dir / RUN_ID_FILE
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_text(run.info.run_id + "\n")
        temporary.replace(path)
        return cls(client, run.info.run_id, run_dir, uri, experiment_id, resumed=False)

    @staticmethod
    def _stored_run(client, run_dir: Path):
        path = run_dir / RUN_ID_FILE
        if not path.is_file():
            return None
        run_id = path.read_text().strip()
        if not run_id:
            return None
        from mlflow.exceptions import MlflowException  # mlflow is loaded by now (_mlflow)

        try:
            run = client.get_run(run_id)
        except MlflowException:
            return None  # another store (tracking URI), or a deleted run: start a new one
        return None if run.info.lifecycle_stage == "deleted" else run

    @staticmethod
    def _experiment_id(client, name: str, tracking_uri: str) -> str:
        found = client.get_experiment_by_name(name)
        if found is not None:
            if found.lifecycle_stage == "deleted":
                client.restore_experiment(found.experiment_id)
            return found.experiment_id
        return client.create_experiment(name, artifact_location=_local_artifact_root(tracking_uri))

    # -- what is logged ---------------------------------------------------------------------------

    def _log(self, *, metrics: Sequence = (), params: Sequence = (), tags: Sequence = ()) -> None:
        for batch in _batches(list(params), PARAMS_OR_TAGS_PER_BATCH):
            self.client.log_batch(self.run_id, params=batch)
        for batch in _batches(list(tags), PARAMS_OR_TAGS_PER_BATCH):
            self.client.log_batch(self.run_id, tags=batch)
        for batch in _batches(list(metrics), METRICS_PER_BATCH):
            self.client.log_batch(self.run_id, metrics=batch)

    def log_config(self, resolved_options: Mapping) -> None:
        """The run's resolved options as parameters (flattened, as text, clipped to MLflow's
        limit). A resumed run logs only the parameters not logged before; MLflow keeps a
        parameter's first value, so one that the resume changed is kept as a tag
        `resumed.<name>`."""
        from mlflow.entities import Param, RunTag

        logged = self.client.get_run(self.run_id).data.params if self.resumed else {}
        params, changed = [], []
        for name, value in flatten(resolved_options).items():
            key, text = _key(name), _clip(value, MAX_PARAM_VALUE)
            if key not in logged:
                params.append(Param(key, text))
            elif logged[key] != text:
                changed.append(RunTag(_key(f"resumed.{name}"), _clip(value, MAX_TAG_VALUE)))
        self._log(params=params, tags=changed)

    def set_model_tags(self, identities: Mapping) -> None:
        """The models' identities as tags: {"task_model": {"path": ..., "sha256": ...}} gives
        the tags `task_model.path` and `task_model.sha256`."""
        self.set_tags(identities)

    def set_tags(self, tags: Mapping) -> None:
        from mlflow.entities import RunTag

        self._log(tags=[RunTag(_key(k), _clip(v, MAX_TAG_VALUE)) for k, v in flatten(tags).items()])

    def log_step(
        self, step: int, best_dev: float | None, candidate_dev_scores: Sequence[float | None] = ()
    ) -> None:
        """A step's best dev score (`best_dev`) and each candidate's (`candidate_dev/<i>`, in the
        step's order; a dropped candidate has None and is left out) at MLflow step `step`. A step
        this run already logged (replayed by a resume) is not logged twice."""
        from mlflow.entities import Metric

        if step in self._logged_steps:
            return
        now = int(time.time() * 1000)
        metrics = []
        if best_dev is not None:
            metrics.append(Metric("best_dev", float(best_dev), now, step))
        for index, score in enumerate(candidate_dev_scores):
            if score is not None:
                metrics.append(Metric(f"candidate_dev/{index}", float(score), now, step))
        metrics.append(Metric("candidates", float(len(candidate_dev_scores)), now, step))
        self._log(metrics=metrics)
        self._logged_steps.add(step)

    def _steps_logged(self) -> set[int]:
        return {m.step for m in self.client.get_metric_history(self.run_id, "candidates")}

    def log_result(
        self,
        final_prompt: str,
        test_scores: Mapping[str, float | None] | float | None,
        gain: float | None = None,
    ) -> None:
        """The run's outcome: the final prompt as a tag, the test scores as metrics (`test` for
        one score, `test.<name>` for several: e.g. initial and final), the gain as a metric and
        a tag."""
        from mlflow.entities import Metric, RunTag

        now = int(time.time() * 1000)
        scores = test_scores if isinstance(test_scores, Mapping) else {"": test_scores}
        metrics = [
            Metric(_key(f"test.{name}" if name else "test"), float(value), now, 0)
            for name, value in scores.items()
            if value is not None and math.isfinite(float(value))
        ]
        tags = [RunTag("final_prompt", _clip(final_prompt, MAX_TAG_VALUE))]
        if gain is not None:
            metrics.append(Metric("gain", float(gain), now, 0))
            tags.append(RunTag("gain", f"{float(gain):.6g}"))
        self._log(metrics=metrics, tags=tags)

    def log_artifacts(self, run_dir: Path | str | None = None) -> list[str]:
        """The run directory's result.json, trajectory.jsonl, config.json and report.html, those
        that exist (logged again after a resume: the latest copy wins). The names logged."""
        directory = Path(run_dir) if run_dir is not None else self.run_dir
        logged = []
        for name in ARTIFACTS:
            path = directory / name
            if path.is_file():
                self.client.log_artifact(self.run_id, str(path))
                logged.append(name)
        return logged

    def child(self, run_dir: Path | str, *, run_name: str | None = None) -> "Tracker":
        """The run of one benchmark cell, a child of this (the benchmark's) run, in the same
        experiment and store; resumed like any run through its own directory's run id file."""
        experiment = self.client.get_experiment(self.experiment_id).name
        return Tracker.open(
            run_dir,
            tracking_uri=self.tracking_uri,
            experiment=experiment,
            parent_run_id=self.run_id,
            run_name=run_name,
        )

    def close(self, status: str = "FINISHED") -> None:
        """Ends the MLflow run (FINISHED, FAILED or KILLED); a resume marks it running again."""
        if not self.closed:
            self.client.set_terminated(self.run_id, status=status)
            self.closed = True

    def __enter__(self) -> "Tracker":
        return self

    def __exit__(self, kind, error, traceback) -> None:
        if kind is None:
            self.close()
        else:
            self.close("KILLED" if issubclass(kind, KeyboardInterrupt) else "FAILED")
