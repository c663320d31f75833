"""Golden runs: a fixed fake-LLM `optimize` for each method and a few GPO switch combinations,
compared byte for byte (timing fields aside) with trajectory.jsonl and result.json files
generated before the package was restructured (issue 11). Behaviour must not change.

Regenerate (only when a change of behaviour is intended) with
    GPO_GOLDEN_REGENERATE=1 python -m pytest tests/test_golden.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import TIMINGS
from fake_cli import _sentiment_answer
from fake_models import FakeEmbedder, smart_optimizer

from gpo_local.app.cli import main
from gpo_local.testing import ScriptedLLM

GOLDEN = Path(__file__).parent / "golden"
REGENERATE = os.environ.get("GPO_GOLDEN_REGENERATE") == "1"

CASES = {
    "gpo": [],  # the headline switches
    "gpo-quota-on": ["--reply-quota"],  # a step asks again until it has its candidates
    "gpo-feedback-realtime": [
        "--gradient",
        "feedback",
        "--momentum",
        "feedback",
        "--momentum-update",
        "real-time",
        "--update",
        "generate",
    ],
    "gpo-edit": ["--gradient", "feedback", "--momentum", "none", "--update", "edit"],
    "gpo-recency": ["--selection", "recency", "--k", "2"],
    "gpo-importance": ["--selection", "importance", "--schedule", "linear"],
    "gpo-para-realtime": ["--momentum-update", "real-time"],
    "gpo-feedback-klist": [
        "--gradient",
        "feedback",
        "--momentum",
        "feedback",
        "--selection",
        "importance",
        "--update",
        "edit",
    ],
    "sgdm": ["--method", "sgdm"],
    "empty": ["--method", "empty"],
    "cot": ["--method", "cot"],
    "ape": ["--method", "ape"],
    "apo": ["--method", "apo"],
    "opro": ["--method", "opro"],
    "pe2": ["--method", "pe2"],
}


class _Model(ScriptedLLM):
    def __init__(self, script, name):
        super().__init__(script, fingerprint=f"fake-{name}")
        self.path, self.n_threads = Path(f"/fake/{name}.gguf"), 1


def _install(monkeypatch):
    import gpo_local.backends.embeddings as embeddings
    import gpo_local.backends.llama_cpp as llama_cpp

    task, optimizer = (
        _Model(_sentiment_answer, "task"),
        _Model(smart_optimizer(max_words=5).script, "optimizer"),
    )
    monkeypatch.setattr(llama_cpp, "load_models", lambda *a, **k: (task, optimizer))
    monkeypatch.setattr(embeddings, "SentenceTransformerEmbedder", lambda spec: FakeEmbedder())


def _timeless(record):
    """Drop the wall-clock fields, recursively."""
    if isinstance(record, dict):
        return {k: _timeless(v) for k, v in record.items() if k not in TIMINGS}
    if isinstance(record, list):
        return [_timeless(v) for v in record]
    return record


def _canonical(run_dir: Path) -> dict[str, str]:
    lines = (run_dir / "trajectory.jsonl").read_text(encoding="utf-8").splitlines()
    trajectory = "".join(
        json.dumps(_timeless(json.loads(line)), sort_keys=True, ensure_ascii=False) + "\n" for line in lines
    )
    result = (
        json.dumps(
            _timeless(json.loads((run_dir / "result.json").read_text(encoding="utf-8"))),
            indent=2,
            sort_keys=True,
        )
        + "\n"
    )
    return {"trajectory.jsonl": trajectory, "result.json": result}


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden_run(case, tmp_path, monkeypatch):
    _install(monkeypatch)
    run_dir = tmp_path / "run"
    outcome = CliRunner().invoke(
        main,
        [
            "optimize",
            "sentiment",
            "--steps",
            "3",
            "--candidates",
            "3",
            "--dev-limit",
            "8",
            "--test-limit",
            "10",
            "--train-batch",
            "4",
            "--no-cache",
            "--quiet",
            "--run-dir",
            str(run_dir),
            *CASES[case],
        ],
    )
    assert outcome.exit_code == 0, outcome.output
    files = _canonical(run_dir)
    for name, text in files.items():
        golden = GOLDEN / case / name
        if REGENERATE:
            golden.parent.mkdir(parents=True, exist_ok=True)
            golden.write_text(text, encoding="utf-8")
        assert golden.read_text(encoding="utf-8") == text, f"{case}/{name} differs from the golden file"
