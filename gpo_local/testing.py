"""Fakes shared by the tests and by users who want to test code built on gpo-local:
a scripted LLM and a deterministic hashing embedder. No model, no network."""

from __future__ import annotations

import hashlib
import re
from typing import Callable, Sequence

import numpy as np

from gpo_local.backends import Conversation, as_messages
from gpo_local.errors import PromptTooLongError


class ScriptedLLM:
    """An LLM whose reply is computed by `script(messages, temperature, seed)`.

    Every call is recorded in `calls` (messages and decoding parameters), so a test can check
    what was sent as well as what was done with the reply. `context_words`, when set, plays
    the model's context size: a conversation of that many words or more does not fit, and
    generating it raises PromptTooLongError as the real backend does."""

    def __init__(
        self,
        script: Callable[[list[dict], float, int | None], str],
        fingerprint: str = "scripted",
        context_words: int | None = None,
    ):
        self.script, self.fingerprint = script, fingerprint
        self.context_words = context_words
        self.calls: list[dict] = []

    def fits(self, conversation: Conversation) -> bool:
        words = sum(len(m["content"].split()) for m in as_messages(conversation))
        return self.context_words is None or words < self.context_words

    # Set True to receive `grammar=`, `copy_guard=` and `min_p=` (recorded in `calls`, not enforced).
    supports_grammar = False

    def generate(
        self,
        conversations: Sequence[Conversation],
        *,
        max_tokens: int,
        temperature: float = 0.0,
        seeds=None,
        stop=(),
        grammar: str | None = None,
        copy_guard=None,
        min_p: float = 0.0,
    ) -> list[str]:
        seeds = list(seeds) if seeds is not None else [None] * len(conversations)
        replies = []
        for conversation, seed in zip(conversations, seeds):
            if not self.fits(conversation):
                raise PromptTooLongError(
                    f"conversation does not fit the context of {self.context_words} words"
                )
            messages = as_messages(conversation)
            self.calls.append(
                {
                    "messages": messages,
                    "max_tokens": max_tokens,
                    "temperature": temperature,
                    "seed": seed,
                    "grammar": grammar,
                    "copy_guard": copy_guard,
                    "min_p": min_p,
                }
            )
            replies.append(self.script(messages, temperature, seed))
        return replies


class HashingEmbedder:
    """Bag-of-words vectors hashed into `dimension` buckets, L2-normalized: prompts that share
    words are similar, identical prompts have similarity 1. Deterministic everywhere."""

    def __init__(self, dimension: int = 64):
        self.dimension = dimension
        self.fingerprint = f"hashing:{dimension}"

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                bucket = int.from_bytes(hashlib.md5(word.encode()).digest()[:4], "little") % self.dimension
                out[row, bucket] += 1.0
            norm = np.linalg.norm(out[row])
            if norm:
                out[row] /= norm
        return out
