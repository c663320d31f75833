"""The Python API (gpo_local.optimize / evaluate / load_task) with the scripted fakes: the README
example, a user's metric callable, a user's LLM object, in-memory data, and bad input."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest
from conftest import question_and_instruction
from fake_models import FakeEmbedder, smart_optimizer

import gpo_local
from gpo_local.errors import ConfigError, DataError, ModelError
from gpo_local.testing import HashingEmbedder, ScriptedLLM

README = Path(__file__).resolve().parents[1] / "README.md"


def adder(messages, temperature, seed):
    """Adds right when the instruction says "think" twice (p0 says it once); says "positive" to
    anything else."""
    numbers, prompt = question_and_instruction(messages[-1]["content"], r"What is (\d+) plus (\d+)\?")
    if not numbers:
        return "positive"
    a, b = map(int, numbers.groups())
    return str(a + b) if prompt.lower().count("think") >= 2 else str(a + b + 1)


def rows(n=18):
    return [
        {"question": f"What is {a} plus {b}?", "answer": str(a + b)} for a in range(1, 7) for b in range(1, 4)
    ][:n]


def exact(prediction, example):
    return float(prediction.strip().rstrip(".") == example.target)


@pytest.fixture
def fakes(monkeypatch):
    """The catalog models load as the scripted fakes; the embedder is the hashing one."""
    import gpo_local.backends.embeddings as embeddings
    import gpo_local.backends.llama_cpp as llama_cpp

    task, optimizer = ScriptedLLM(adder, fingerprint="fake-task"), smart_optimizer(max_words=6)
    loaded = []

    def load_models(task_spec, optimizer_spec, **options):
        loaded.append((task_spec, optimizer_spec))
        return task, optimizer  # the optimizer defaults to the task model: the fakes play both

    monkeypatch.setattr(llama_cpp, "load_models", load_models)
    monkeypatch.setattr(embeddings, "SentenceTransformerEmbedder", lambda spec: FakeEmbedder())
    return loaded


def test_readme_example_runs(fakes, tmp_path, monkeypatch, capsys):
    text = README.read_text(encoding="utf-8")
    block = re.search(r"<!-- api-example.*?-->\n```python\n(.*?)```", text, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    exec(compile(block, "README.md", "exec"), {})
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith('"Let\'s think step by step." 0.00 -> ')
    assert 0.0 <= float(printed[1]) <= 1.0  # the fake says "positive" to every review
    result = json.loads((tmp_path / "runs/api-example/result.json").read_text())
    assert result["initial"]["dev_score"] == 0.0 and result["final"]["dev_score"] == 1.0
    config = json.loads((tmp_path / "runs/api-example/config.json").read_text())
    assert config["task"] == "memory:data" and config["config"]["steps"] == 2


def test_custom_metric_callable_drives_a_full_optimization(fakes, tmp_path):
    seen = []

    def metric(prediction, example):
        seen.append((prediction, example.id, example.target))
        return 1.0 if prediction == example.target else 0.0

    result = gpo_local.optimize(
        rows(),
        input_field="question",
        target_field="answer",
        metric=metric,
        steps=2,
        candidates=3,
        run_dir=tmp_path / "run",
    )
    assert result.initial_dev == 0.0 and result.final_dev == 1.0 and result.stopped == "completed"
    assert len(result.trajectory) == 3 and result.usage["optimizer_calls"] == 6
    assert seen[0] == ("3", "eval-1", "2")  # the two-word p0 adds one too many
    assert {example_id for _, example_id, _ in seen} == {f"eval-{i}" for i in range(1, 19)}
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.final_prompt = "x"


def test_custom_llm_objects_drive_a_full_optimization(monkeypatch, tmp_path):
    import gpo_local.backends.llama_cpp as llama_cpp

    monkeypatch.setattr(llama_cpp, "load_models", lambda *a, **k: pytest.fail("nothing may be loaded"))

    class Plain:  # only generate() and a fingerprint: the rest of the LLM protocol is defaulted
        fingerprint = "plain-task"

        def __init__(self):
            self.scripted = ScriptedLLM(adder)

        def generate(self, conversations, **kwargs):
            return self.scripted.generate(conversations, **kwargs)

    task_llm, optimizer = Plain(), smart_optimizer(max_words=6)
    result = gpo_local.optimize(
        {"train": rows()[:8], "eval": rows()[8:]},
        task_model=task_llm,
        optimizer_model=optimizer,
        embedder=HashingEmbedder(),
        input_field="question",
        target_field="answer",
        metric="exact",
        steps=2,
        candidates=2,
        gradient="feedback",
        update="generate",
        run_dir=tmp_path / "run",
    )
    assert result.final_dev == 1.0 > result.initial_dev
    assert len(task_llm.scripted.calls) > 0 and len(optimizer.calls) == result.usage["optimizer_calls"]
    models = json.loads((tmp_path / "run/config.json").read_text())["models"]
    assert models["task"]["path"] == "<Plain>" and models["optimizer"]["sha256"] == "fake-optimizer"


def test_dataframe_and_dataset_rows_load_as_tasks():
    import datasets
    import pandas

    frame = gpo_local.load_task(pandas.DataFrame(rows(5)), input_field="question", target_field="answer")
    hub = gpo_local.load_task(
        datasets.Dataset.from_list(rows(5)), input_field="question", target_field="answer", name="sums"
    )
    for task in (frame, hub):
        assert [e.input for e in task.split("eval")] == [r["question"] for r in rows(5)]
        assert task.split("eval")[2].target == "4" and task.split("format") == task.split("eval")
    assert hub.name == "sums" and hub.rule.grade_example("4", hub.split("eval")[2]) == 1.0


def test_evaluate_scores_a_prompt_with_a_given_model():
    result = gpo_local.evaluate(
        rows(4),
        "Think, then think again.",
        task_model=ScriptedLLM(adder),
        input_field="question",
        target_field="answer",
    )
    assert result.score == 1.0 and result.n == 4
    assert (
        gpo_local.evaluate(
            rows(4), "Add.", task_model=ScriptedLLM(adder), input_field="question", target_field="answer"
        ).score
        == 0.0
    )


@pytest.mark.parametrize(
    "options,message",
    [
        ({"stepz": 3}, "unknown option 'stepz'"),
        ({"steps": "3"}, "option 'steps' must be a int (got '3')"),
        ({"candidates": 0}, "option 'candidates' must be at least 1 (got 0)"),
        ({"momentum": "feedback"}, "momentum='feedback' (momentum over gradients) needs gradient='feedback'"),
    ],
)
def test_bad_options_raise_library_errors(options, message, tmp_path):
    with pytest.raises(ConfigError, match=re.escape(message)):
        gpo_local.optimize(
            rows(),
            input_field="question",
            target_field="answer",
            task_model=ScriptedLLM(adder),
            embedder=HashingEmbedder(),
            run_dir=tmp_path / "run",
            **options,
        )


def test_bad_data_metric_and_model_raise_library_errors(tmp_path):
    with pytest.raises(DataError, match="task 'data' eval row 1: missing field 'input'"):
        gpo_local.load_task(rows(3))

    def twice(prediction, example):
        return 2

    with pytest.raises(DataError, match="metric twice returned 2 for example eval-1"):
        gpo_local.optimize(
            rows(),
            input_field="question",
            target_field="answer",
            metric=twice,
            task_model=ScriptedLLM(adder),
            embedder=HashingEmbedder(),
            run_dir=tmp_path / "a",
        )
    with pytest.raises(ModelError, match="has no generate"):
        gpo_local.optimize(
            rows(),
            input_field="question",
            target_field="answer",
            task_model=object(),
            embedder=HashingEmbedder(),
            run_dir=tmp_path / "b",
        )
