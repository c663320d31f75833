"""Model backends. `LLM` is the protocol the optimizer and the evaluator use; the llama.cpp
implementation lives in llama_cpp.py, the scripted fake for tests in gpo_local/testing.py."""

from __future__ import annotations

from typing import Callable, Optional, Protocol, Sequence, Union

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


class WrappedLLM:
    """Base of the wrappers around an LLM (memo cache, budget counters): the fingerprint, and
    every attribute a wrapper does not define itself (fits, n_ctx, path, count_tokens...), are
    the wrapped model's."""

    def __init__(self, llm: LLM):
        self.llm = llm

    @property
    def fingerprint(self) -> str:
        return self.llm.fingerprint

    def __getattr__(self, name):
        if name == "llm":  # not set yet: no recursion
            raise AttributeError(name)
        return getattr(self.llm, name)


FollowUp = Callable[[int, str], Optional[Conversation]]  # (index, first reply) -> second turn or None


def two_rounds(llm: LLM, first: Sequence[Conversation], follow_up: FollowUp, *, max_tokens: tuple[int, int],
               temperature: float = 0.0) -> list[tuple[str, str | None]]:
    """First replies to `first`, then, for each index where `follow_up(index, reply)` returns a
    conversation, the reply to that second turn: [(first reply, second reply or None)].

    A backend that implements `generate_two_rounds` runs each second turn as soon as its first
    turn ends, on the same sequence (the batched decoder keeps its KV): the batch stays full
    for the whole evaluation instead of draining after each round. Any other LLM (the scripted
    fake, a plain wrapper) gets two `generate` calls with the same results.
    """
    native = getattr(llm, "generate_two_rounds", None)
    if native is not None:
        return native(first, follow_up, max_tokens=max_tokens, temperature=temperature)
    replies = llm.generate(first, max_tokens=max_tokens[0], temperature=temperature)
    seconds = [(i, follow_up(i, reply)) for i, reply in enumerate(replies)]
    from .. import faults  # issue 14

    faults.point("two-round-chain")
    seconds = [(i, c) for i, c in seconds if c is not None]
    finals: dict[int, str] = {}
    if seconds:
        answers = llm.generate([c for _, c in seconds], max_tokens=max_tokens[1], temperature=temperature)
        finals = {i: a for (i, _), a in zip(seconds, answers)}
    return [(reply, finals.get(i)) for i, reply in enumerate(replies)]
