"""Run the real `gpo-local optimize` command with the scripted fakes in place of the GGUF
models and the sentence-transformers embedder (monkeypatched where the CLI loads them)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from click.testing import CliRunner
from conftest import optimizer_model

from gpo_local.app.cli import main
from gpo_local.testing import HashingEmbedder, ScriptedLLM


class _Model(ScriptedLLM):
    def __init__(self, script, fingerprint):
        super().__init__(script, fingerprint=fingerprint)
        self.path = Path(f"/fake/{fingerprint}.gguf")
        self.n_threads = 1


def _sentiment_answer(messages, temperature, seed):
    """Right or wrong by a hash of the conversation: different prompts get different scores."""
    text = messages[0]["content"]
    right = (
        "positive"
        if any(
            w in text
            for w in (
                "wonderful",
                "delightful",
                "excellent",
                "charming",
                "superb",
                "moving",
                "brilliant",
                "enjoyable",
                "gripping",
                "lovely",
                "hilarious",
                "beautiful",
            )
        )
        else "negative"
    )
    wrong = "negative" if right == "positive" else "positive"
    return right if hashlib.md5(text.encode()).digest()[0] % 3 else wrong


def install_fakes(monkeypatch) -> None:
    import gpo_local.backends.embeddings as embeddings
    import gpo_local.backends.llama_cpp as llama_cpp

    task = _Model(_sentiment_answer, "fake-task")
    optimizer = _Model(optimizer_model().script, "fake-optimizer")

    def load_models(task_spec, optimizer_spec, **options):
        return task, optimizer

    class Embedder(HashingEmbedder):
        def __init__(self, spec):
            super().__init__()
            self.source = f"fake:{spec}"

    monkeypatch.setattr(llama_cpp, "load_models", load_models)
    monkeypatch.setattr(embeddings, "SentenceTransformerEmbedder", Embedder)


def optimize(monkeypatch, run_dir: Path, *args: str):
    install_fakes(monkeypatch)
    return CliRunner().invoke(
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
            "12",
            "--no-cache",
            "--run-dir",
            str(run_dir),
            *args,
        ],
    )
