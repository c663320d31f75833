"""Model backends. `LLM` is the protocol the optimizer and the evaluator use; the llama.cpp
implementation lives in llama_cpp.py, the scripted fake for tests in gpo_local/testing.py."""

from __future__ import annotations

from typing import Protocol, Sequence, Union

Message = dict  # {"role": "user" | "assistant" | "system", "content": str}
Conversation = Union[str, Sequence[Message]]  # a bare string is one user message


def as_messages(conversation: Conversation) -> list[Message]:
    if isinstance(conversation, str):
        return [{"role": "user", "content": conversation}]
    return [dict(m) for m in conversation]


class LLM(Protocol):
    """A chat model. `fingerprint` identifies the weights (the GGUF sha256) for memoization."""

    fingerprint: str

    def generate(
        self,
        conversations: Sequence[Conversation],
        *,
        max_tokens: int,
        temperature: float = 0.0,
        seeds: Sequence[int | None] | None = None,
        stop: Sequence[str] = (),
    ) -> list[str]:
        """One reply per conversation. temperature 0 is greedy; otherwise each conversation is
        sampled with its own seed, so a reply does not depend on the others in the call."""
        ...
