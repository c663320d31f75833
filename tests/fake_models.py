"""Fakes for driving whole `optimize` commands without a model: the scripted LLMs stand in for
the llama.cpp models and the hashing embedder for sentence-transformers."""

from __future__ import annotations

import re
from pathlib import Path

from conftest import task_model

from gpo_local.testing import HashingEmbedder, ScriptedLLM


def smart_optimizer(max_words: int = 6) -> ScriptedLLM:
    """Answers each kind of meta-prompt with something recognisable, so tests can follow what
    the method did with the reply."""

    def reply(messages, temperature, seed):
        text = messages[-1]["content"]
        if text.startswith("Your task is to find out what is wrong"):
            current = re.search(r"The current prompt is:\n(.*)", text).group(1)
            return f"<START>The prompt is too short for hard questions: {current}<END>"
        if text.startswith("Your task is to combine two lists"):
            return "<START>merged: too short, too vague<END>"
        if text.startswith("Your task is to summarize two prompts"):
            return "<START>summary of four words<END>"
        if "Give 2 reasons" in text:
            return "<START>reason one<END> and <START>reason two<END>"
        if text.startswith("Rewrite the following prompt"):
            original = re.search(r"Prompt: (.*)", text).group(1)
            return f"<START>{original} (rephrased)<END>"
        words = 1 + (seed or 0) % max_words
        return f"Here you go: <START>{' '.join(['think'] * words)} v{(seed or 0) % 3}<END>"

    return ScriptedLLM(reply, fingerprint="fake-optimizer")


class FakeModel:
    """A scripted LLM dressed as a loaded llama.cpp model."""

    def __init__(self, scripted: ScriptedLLM, name: str):
        self.scripted, self.path, self.n_threads = scripted, Path(f"/fake/{name}.gguf"), 1
        self.fingerprint = scripted.fingerprint

    @property
    def calls(self):
        return self.scripted.calls

    def generate(self, conversations, **kwargs):
        return self.scripted.generate(conversations, **kwargs)


class FakeEmbedder(HashingEmbedder):
    source = "hashing"


def install(monkeypatch, *, task_llm=None, optimizer_llm=None):
    """Make `optimize` load the fakes; returns (task model, optimizer model)."""
    import gpo_local.backends.embeddings as embeddings
    import gpo_local.backends.llama_cpp as backend

    task = FakeModel(task_llm or task_model(), "task")
    optimizer = FakeModel(optimizer_llm or smart_optimizer(), "optimizer")
    monkeypatch.setattr(backend, "load_models", lambda *a, **k: (task, optimizer))
    monkeypatch.setattr(embeddings, "SentenceTransformerEmbedder", lambda spec: FakeEmbedder())
    return task, optimizer


class Killed(Exception):
    """Stands for a process killed mid-run (raised by `killing_after`)."""


def killing_after(n_calls, llm):
    """Make `llm` raise Killed once more than `n_calls` generations were requested: counting
    generations, not calls, lets a kill land in the middle of a step."""
    calls = {"n": 0}
    inner = llm.generate

    def generate(conversations, **kwargs):
        calls["n"] += len(conversations)
        if calls["n"] > n_calls:
            raise Killed()
        return inner(conversations, **kwargs)

    llm.generate = generate
    return llm
