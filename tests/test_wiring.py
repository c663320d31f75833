"""Served models wherever a model is named (backends/llama_cpp.load_model), the models
leaderboard of `bench quality` and `eval` with several task models, and `--mlflow` on optimize:
with the scripted fakes, a fake OpenAI-compatible server on 127.0.0.1 (test_served.FakeServer)
and a real MLflow store in a temporary folder."""

from __future__ import annotations

import csv
import io
import json

import fake_cli
import pytest
from click.testing import CliRunner
from test_quality import FakeRunner, layout, write_config  # noqa: F401 (layout is a fixture)
from test_served import FakeServer

from gpo_local.app.cli import main
from gpo_local.app.model_records import describe_model, identity_notices, model_line
from gpo_local.backends import llama_cpp
from gpo_local.backends.served import ServedModel
from gpo_local.quality import load_config, run_bench
from gpo_local.quality.leaderboard import leaderboard
from gpo_local.stats import standard_error
from gpo_local.testing import HashingEmbedder


def run(*args):
    return CliRunner().invoke(main, list(args))


def sentiment_or_prompt(body):
    """A served model for both roles: a candidate prompt where asked to write one, else an answer."""
    text = body["messages"][-1]["content"]
    if "<START>" in text or "prompt" in text.lower() and len(text) > 400:
        return "<START>Decide whether the review is positive or negative.<END>"
    return "positive"


def fake_embedder(monkeypatch):
    import gpo_local.backends.embeddings as embeddings

    class Embedder(HashingEmbedder):
        def __init__(self, spec):
            super().__init__()
            self.source = f"fake:{spec}"

    monkeypatch.setattr(embeddings, "SentenceTransformerEmbedder", Embedder)


# -- one function loads every model ---------------------------------------------------------------


def test_load_model_dispatches_served_specs_and_loads_one_model_for_both_roles():
    with FakeServer() as server:
        spec = f"{server.url}#fake-model"
        task, optimizer = llama_cpp.load_models(
            spec, spec, n_ctx=512, n_threads=1, n_gpu_layers=0, parallel=3
        )
        assert isinstance(task, ServedModel) and task is optimizer and task.parallel == 3
        assert llama_cpp.same_model(server.url, f"{server.url}/") and not llama_cpp.same_model(spec, "x.gguf")


def test_a_served_models_record_names_it_and_its_capabilities(monkeypatch):
    monkeypatch.setenv("GPO_LOCAL_API_KEY", "secret-key")
    with FakeServer() as server:
        model = ServedModel(server.url, grammar=False)
        record = describe_model(server.url, model)
    assert record["path"] == f"{server.url}#fake-model" and record["sha256"] == model.fingerprint
    assert record["served"]["capabilities"]["grammar"] is False
    assert record["served"]["capabilities"]["copy_guard"] is False
    assert "secret-key" not in json.dumps(record)
    line = model_line("task", record)
    assert line == (
        f"task model: {server.url}#fake-model (served by openai-compatible; grammar no, "
        "copy guard no; identity not reported)"
    )
    notices = identity_notices([model, model], cache=True)
    assert len(notices) == 1 and "did not change" in notices[0]
    assert identity_notices([model], cache=False) == []


def test_optimize_with_served_models_records_and_shows_them(tmp_path, monkeypatch):
    fake_embedder(monkeypatch)
    monkeypatch.setenv("GPO_LOCAL_API_KEY", "secret-key")
    with FakeServer(reply=sentiment_or_prompt) as server:
        run_dir = tmp_path / "run"
        result = run(
            "optimize",
            "sentiment",
            "--task-model",
            server.url,
            "--optimizer-model",
            server.url,
            "--steps",
            "1",
            "--candidates",
            "2",
            "--dev-limit",
            "4",
            "--test-limit",
            "4",
            "--no-cache",
            "--run-dir",
            str(run_dir),
            "--parallel",
            "2",
        )
        assert result.exit_code == 0, result.output
        assert server.chats() and all(
            r["headers"].get("Authorization") == "Bearer secret-key" for r in server.chats()
        )
    summary = json.loads((run_dir / "result.json").read_text())
    for role in ("task", "optimizer"):
        assert summary["models"][role]["served"]["url"] == server.url
        assert summary["models"][role]["served"]["model"] == "fake-model"
    for name in ("config.json", "result.json", "trajectory.jsonl", "events.jsonl"):
        assert "secret-key" not in (run_dir / name).read_text()
    shown = run("show", str(run_dir))
    assert shown.exit_code == 0, shown.output
    assert f"task model: {server.url}#fake-model (served by openai-compatible" in shown.output
    assert f"optimizer model: {server.url}#fake-model" in shown.output


# -- eval with several task models ----------------------------------------------------------------


def test_eval_scores_one_prompt_with_each_task_model(tmp_path, monkeypatch):
    import gpo_local.backends.catalog as catalog

    monkeypatch.setattr(catalog, "resolve_model", lambda spec: tmp_path / f"{spec}.gguf")
    monkeypatch.setattr(
        llama_cpp,
        "LlamaCppModel",
        lambda path, **options: fake_cli._Model(lambda m, t, s: "negative", "fake-local"),
    )
    with FakeServer(reply=lambda body: "positive") as server:
        args = [
            "eval",
            "sentiment",
            "--prompt",
            "Classify.",
            "--limit",
            "4",
            "--no-cache",
            "--task-model",
            "local-model",
            "--task-model",
            server.url,
        ]
        table = run(*args)
        listed = run(*args, "--json")
    assert table.exit_code == 0, table.output
    lines = [line for line in table.output.splitlines() if line.startswith(("local-model", server.url))]
    assert len(lines) == 2 and lines[0].split()[0] == "local-model" and lines[1].split()[0] == server.url
    assert listed.exit_code == 0, listed.output
    scores = json.loads(listed.output)
    assert [s["model"]["spec"] for s in scores] == ["local-model", server.url]
    assert all(s["n"] == 4 for s in scores) and sum(s["score"] for s in scores) == pytest.approx(1.0)
    assert scores[1]["model"]["served"]["model"] == "fake-model"
    local_outcomes = [outcome["score"] for outcome in scores[0]["outcomes"]]
    assert scores[0]["standard_error"] == pytest.approx(standard_error(local_outcomes))


# -- the models leaderboard ------------------------------------------------------------------------


LEADERBOARD = """
[bench]
tasks = ["../../../shared/data/bbh/navigate", "../../../shared/data/bbh/hyperbaton"]
methods = ["empty", "cot", "gpo", "opro"]
seeds = [0]
task_models = ["smollm2-135m-instruct", "/m/big-7b.Q4.gguf", "http://127.0.0.1:8080/v1#qwen2.5:0.5b"]
[optimize]
steps = 2
test-holdout = 2
no-cache = true
"""


class ScoredRunner(FakeRunner):
    """final_test per method and model; 4 test outcomes, so the standard error is known."""

    ROWS = ["empty", "cot", "gpo", "opro"]

    def __call__(self, cell, *, resume):
        super().__call__(cell, resume=resume)
        path = cell.run_dir / "result.json"
        result = json.loads(path.read_text())
        model_bonus = 0.25 if "big-7b" in cell.task_model else 0.0
        score = {"empty": 0.25, "cot": 0.25, "gpo": 0.5, "opro": 0.25}[cell.row.name] + model_bonus
        result["final_test"] = score
        # four test outcomes whose mean is the score, so that the standard error is known
        outcomes = [{"example_id": i, "score": float(i < score * 4)} for i in range(4)]
        result["test_outcomes"] = {"initial": None, "final": outcomes}
        path.write_text(json.dumps(result))
        return None


def test_bench_with_several_task_models_writes_the_leaderboard(layout, tmp_path):  # noqa: F811
    config = load_config(write_config(layout, LEADERBOARD))
    out = tmp_path / "out"
    results = run_bench(config, out, runner=ScoredRunner())
    board = results["leaderboard"]
    assert [row["task_model"] for row in board["rows"]] == list(config.task_models)
    assert board["methods"] == ["gpo", "opro"] and board["tasks"] == ["navigate", "hyperbaton"]
    big = board["rows"][1]["tasks"]["navigate"]
    assert big["empty"]["mean"] == 0.5 and big["cot"]["mean"] == 0.5 and big["methods"]["gpo"]["mean"] == 0.75
    assert big["best_method"] == "gpo" and big["gain_over_cot"] == 0.25
    assert big["methods"]["gpo"]["se"] == pytest.approx(round(standard_error([1, 1, 1, 0]), 4))
    markdown = (out / "results.md").read_text()
    assert "## Models leaderboard" in markdown
    row = next(line for line in markdown.splitlines() if line.startswith("| /m/big-7b.Q4.gguf"))
    assert "75.0 ± 25.0" in row and "+25.0" in row
    served_dir = out / "runs" / "navigate" / "gpo" / "seed0" / "127.0.0.1_8080_qwen2.5_0.5b"
    assert (served_dir / "result.json").is_file()
    rows = list(csv.DictReader(io.StringIO((out / "leaderboard.csv").read_text())))
    assert [r["task_model"] for r in rows] == list(config.task_models)
    assert float(rows[0]["navigate:gpo"]) == 0.5 and float(rows[0]["navigate:gain_over_cot"]) == 0.25
    assert json.loads((out / "results.json").read_text())["leaderboard"] == board
    report = run("report", str(out), "-o", str(tmp_path / "bench.html"))
    assert report.exit_code == 0, report.output
    html = (tmp_path / "bench.html").read_text()
    assert "Models leaderboard" in html and "http://127.0.0.1:8080/v1#qwen2.5:0.5b" in html


def test_leaderboard_without_cot_has_no_gain():
    cells = [
        {
            "status": "done",
            "task_model": "m",
            "task": "t",
            "method": "gpo",
            "base_method": "gpo",
            "final_test": 0.5,
            "run_dir": "/nonexistent",
        }
    ]
    row = leaderboard({"cells": cells})["rows"][0]["tasks"]["t"]
    assert row["cot"] is None and row["gain_over_cot"] is None and row["methods"]["gpo"]["se"] is None


# -- MLflow ---------------------------------------------------------------------------------------


def test_optimize_mlflow_logs_the_run_and_resume_continues_it(tmp_path, monkeypatch):
    pytest.importorskip("mlflow", reason="needs the mlflow extra")
    from mlflow.tracking import MlflowClient

    store = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    run_dir = tmp_path / "run"
    first = fake_cli.optimize(monkeypatch, run_dir, "--max-optimizer-calls", "1", "--mlflow", store)
    assert first.exit_code == 0, first.output
    run_id = (run_dir / "mlflow_run_id").read_text().strip()
    client = MlflowClient(tracking_uri=store)
    logged = client.get_run(run_id)
    assert logged.data.params["task"] == "sentiment" and logged.data.params["config.steps"] == "3"
    tags = logged.data.tags
    assert tags["task.sha256"] == "fake-task" and tags["optimizer.sha256"] == "fake-optimizer"
    steps_before = [m.step for m in client.get_metric_history(run_id, "best_dev")]
    assert steps_before[0] == 0

    again = fake_cli.optimize(
        monkeypatch, run_dir, "--resume", "--max-optimizer-calls", "1000", "--mlflow", store
    )
    assert again.exit_code == 0, again.output
    assert (run_dir / "mlflow_run_id").read_text().strip() == run_id
    experiment = client.get_experiment(logged.info.experiment_id)
    assert len(client.search_runs([experiment.experiment_id])) == 1
    done = client.get_run(run_id)
    trajectory = [json.loads(line) for line in (run_dir / "trajectory.jsonl").read_text().splitlines()]
    steps = [r for r in trajectory if r["kind"] in ("init", "step")]
    history = client.get_metric_history(run_id, "best_dev")
    assert [m.step for m in history] == [r["step"] + 1 for r in steps] and len(steps) == 4
    assert max(m.value for m in history) == pytest.approx(max(r["dev_score"] for r in steps))
    candidates = [r for r in trajectory if r["kind"] == "candidate" and r["step"] == 0]
    first_candidate = client.get_metric_history(run_id, "candidate_dev/0")[0]
    assert first_candidate.value == pytest.approx(candidates[0]["dev_score"])
    result = json.loads((run_dir / "result.json").read_text())
    assert done.data.metrics["test.final"] == pytest.approx(result["final_test"])
    assert done.data.tags["final_prompt"] == result["final"]["prompt"] and done.info.status == "FINISHED"
    artifacts = {a.path for a in client.list_artifacts(run_id)}
    assert {"result.json", "trajectory.jsonl", "report.html", "config.json"} <= artifacts


BENCH_MLFLOW = """
[bench]
tasks = ["../../../shared/data/bbh/navigate"]
methods = ["cot", "gpo"]
seeds = [0]
[optimize]
steps = 1
candidates = 2
dev-limit = 4
test-holdout = 2
no-cache = true
"""


def test_bench_mlflow_is_a_parent_run_with_a_child_per_cell(layout, tmp_path, monkeypatch):  # noqa: F811
    pytest.importorskip("mlflow", reason="needs the mlflow extra")
    from mlflow.tracking import MlflowClient

    from gpo_local.app.mlflow_observer import PARENT_RUN_VARIABLE, bench_tracking

    fake_cli.install_fakes(monkeypatch)
    store = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"

    def in_process(cell, *, resume):  # the real optimize command, with the fakes, in this process
        result = CliRunner().invoke(main, cell.argv(resume=resume))
        return None if result.exit_code == 0 else result.output

    config = load_config(write_config(layout, BENCH_MLFLOW))
    out = tmp_path / "out"
    with bench_tracking(out, store, config.raw, "quick") as parent:
        run_bench(config, out, runner=in_process)
    assert PARENT_RUN_VARIABLE not in __import__("os").environ
    client = MlflowClient(tracking_uri=store)
    children = client.search_runs([parent.experiment_id], f"tags.mlflow.parentRunId = '{parent.run_id}'")
    assert sorted(r.info.run_name for r in children) == ["navigate/cot/seed0", "navigate/gpo/seed0"]
    assert all("test.final" in r.data.metrics and r.info.status == "FINISHED" for r in children)
    assert {"results.md", "results.json"} <= {a.path for a in client.list_artifacts(parent.run_id)}
    assert client.get_run(parent.run_id).info.status == "FINISHED"
