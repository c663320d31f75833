"""MLflow tracking (gpo_local/app/tracking.py) against a real MLflow store in a temporary folder: what a
run logs is read back with MlflowClient; a reopened run directory continues its MLflow run."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("mlflow", reason="MLflow tracking needs the mlflow extra (pip install '.[mlflow]')")

from mlflow.tracking import MlflowClient  # noqa: E402

from gpo_local.app.tracking import RUN_ID_FILE, Tracker, default_tracking_uri, flatten  # noqa: E402


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("mlruns")


@pytest.fixture(scope="module")
def store(store_dir):
    """One SQLite store for the module (creating one takes seconds); each test logs to its own
    experiment."""
    return f"sqlite:///{store_dir / 'mlflow.db'}"


def fake_run_dir(tmp_path):
    run_dir = tmp_path / "runs" / "20261207-sentiment"
    run_dir.mkdir(parents=True)
    (run_dir / "result.json").write_text(json.dumps({"final_prompt": "Think.", "test": 0.75}))
    (run_dir / "trajectory.jsonl").write_text('{"step": 1}\n{"step": 2}\n')
    (run_dir / "report.html").write_text("<html><body>report</body></html>")
    return run_dir


OPTIONS = {
    "task": "sentiment",
    "steps": 3,
    "schedule": {"name": "cosine", "initial": 50},
    "methods": ["gpo", "opro"],
    "n_ctx": None,
    "long": "x" * 7000,
}


def test_a_run_logs_config_models_steps_result_and_artifacts(tmp_path, store, store_dir):
    run_dir = fake_run_dir(tmp_path)
    tracker = Tracker.open(run_dir, tracking_uri=store)
    tracker.log_config(OPTIONS)
    tracker.set_model_tags(
        {
            "task_model": {"path": "/m/smollm2.gguf", "sha256": "b179"},
            "optimizer_model": {"url": "http://127.0.0.1:8080/v1", "model": "qwen"},
        }
    )
    tracker.log_step(1, 0.5, [0.25, None, 0.5])
    tracker.log_step(2, 0.625, [0.625, 0.375])
    tracker.log_result("Think step by step.", {"initial": 0.5, "final": 0.75}, gain=0.25)
    assert sorted(tracker.log_artifacts()) == ["report.html", "result.json", "trajectory.jsonl"]
    tracker.close()

    client = MlflowClient(tracking_uri=store)
    run = client.get_run((run_dir / RUN_ID_FILE).read_text().strip())
    assert run.info.status == "FINISHED" and run.info.run_name == run_dir.name
    assert client.get_experiment(run.info.experiment_id).name == "gpo-local"
    params = run.data.params
    assert (params["task"], params["steps"], params["schedule.name"], params["schedule.initial"]) == (
        "sentiment",
        "3",
        "cosine",
        "50",
    )
    assert params["methods"] == '["gpo", "opro"]' and params["n_ctx"] == "None"
    assert len(params["long"]) == 6000 and params["long"].endswith("...[truncated]")
    tags = run.data.tags
    assert tags["task_model.sha256"] == "b179" and tags["optimizer_model.model"] == "qwen"
    assert tags["final_prompt"] == "Think step by step." and tags["gain"] == "0.25"
    history = client.get_metric_history(run.info.run_id, "best_dev")
    assert [(m.step, m.value) for m in history] == [(1, 0.5), (2, 0.625)]
    assert [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, "candidate_dev/0")] == [
        (1, 0.25),
        (2, 0.625),
    ]
    assert [m.step for m in client.get_metric_history(run.info.run_id, "candidate_dev/2")] == [1]
    assert "candidate_dev/1" in run.data.metrics and run.data.metrics["candidate_dev/1"] == 0.375
    assert (run.data.metrics["test.final"], run.data.metrics["gain"]) == (0.75, 0.25)
    artifacts = sorted(a.path for a in client.list_artifacts(run.info.run_id))
    assert artifacts == ["report.html", "result.json", "trajectory.jsonl"]
    copy = client.download_artifacts(run.info.run_id, "result.json", str(tmp_path / "down"))
    assert json.loads(open(copy).read())["test"] == 0.75
    assert (store_dir / "artifacts").is_dir()  # beside the store, not in the working directory


def test_reopening_a_run_directory_continues_its_mlflow_run(tmp_path, store):
    run_dir = fake_run_dir(tmp_path)
    first = Tracker.open(run_dir, tracking_uri=store, experiment="resume")
    first.log_config(OPTIONS)
    first.log_step(1, 0.5, [0.5])
    first.close("KILLED")

    again = Tracker.open(run_dir, tracking_uri=store, experiment="resume")
    assert again.run_id == first.run_id and again.resumed
    again.log_config({**OPTIONS, "steps": 5})  # the resume raised the step count
    again.log_step(1, 0.5, [0.5])  # replayed by the resume: not logged twice
    again.log_step(2, 0.75, [0.75, 0.25])
    again.close()

    client = MlflowClient(tracking_uri=store)
    experiment = client.get_experiment_by_name("resume")
    assert len(client.search_runs([experiment.experiment_id])) == 1
    run = client.get_run(first.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["steps"] == "3" and run.data.tags["resumed.steps"] == "5"
    history = client.get_metric_history(first.run_id, "best_dev")
    assert [(m.step, m.value) for m in history] == [(1, 0.5), (2, 0.75)]


def test_a_run_id_from_another_store_starts_a_new_run(tmp_path, store):
    run_dir = fake_run_dir(tmp_path)
    (run_dir / RUN_ID_FILE).write_text("0123456789abcdef0123456789abcdef\n")
    tracker = Tracker.open(run_dir, tracking_uri=store, experiment="stale id")
    assert not tracker.resumed and (run_dir / RUN_ID_FILE).read_text().strip() == tracker.run_id
    tracker.close()


def test_a_benchmark_is_a_parent_run_with_a_child_per_cell(tmp_path, store):
    bench = Tracker.open(tmp_path / "bench", tracking_uri=store, experiment="bench quality")
    cells = [bench.child(tmp_path / "bench" / name, run_name=name) for name in ("gpo-seed0", "opro-seed0")]
    for score, cell in zip((0.5, 0.6), cells):
        cell.log_result("P", score)
        cell.close()
    bench.close()
    client = MlflowClient(tracking_uri=store)
    children = client.search_runs([bench.experiment_id], f"tags.mlflow.parentRunId = '{bench.run_id}'")
    assert sorted((r.info.run_name, r.data.metrics["test"]) for r in children) == [
        ("gpo-seed0", 0.5),
        ("opro-seed0", 0.6),
    ]
    reopened = bench.child(tmp_path / "bench" / "gpo-seed0")
    assert reopened.run_id == cells[0].run_id
    reopened.close()


def test_the_default_store_honours_mlflow_tracking_uri(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert default_tracking_uri() == "http://127.0.0.1:5000"
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    monkeypatch.setenv("GPO_LOCAL_HOME", str(tmp_path / "home"))
    assert default_tracking_uri() == f"sqlite:///{tmp_path / 'home' / 'mlruns' / 'mlflow.db'}"
    tracker = Tracker.open(tmp_path / "run")
    tracker.close()
    assert (tmp_path / "home" / "mlruns" / "mlflow.db").is_file()


def test_flatten():
    nested = {"a": {"b": 1, "c": [1, 2]}, "d": {}, "e": None}
    assert flatten(nested) == {"a.b": "1", "a.c": "[1, 2]", "d": "{}", "e": "None"}
