"""Model backends. `LLM` is the protocol the optimizer and the evaluator use; the llama.cpp
implementation lives in llama_cpp.py, the scripted fake for tests in gpo_local/testing.py.

An object that only has `generate` (and a `fingerprint`) is enough: `complete_llm` gives it the
rest of the protocol with neutral defaults (everything fits, no context size, words as
tokens, two rounds as two `generate` calls, no grammar support). That adapter is the only place that asks an
object which methods it has; the wrappers below (memo, counting) then call the protocol.

The models layer: the llama.cpp backend, the batched decoder, the memo cache, the Ray pool, the
catalog, chunked packs and embeddings. Imports only runs, tasks and the core modules.
"""

from __future__ import annotations

from typing import Callable, Optional, Protocol, Sequence, Union

from gpo_local.backends.copy_guard import CopyGuard
from gpo_local.runs import faults

Message = dict  # {"role": "user" | "assistant" | "system", "content": str}
Conversation = Union[str, Sequence[Message]]  # a bare string is one user message


def as_messages(conversation: Conversation) -> list[Message]:
    if isinstance(conversation, str):
        return [{"role": "user", "content": conversation}]
    return [dict(m) for m in conversation]


class LLM(Protocol):
    """A chat model. `fingerprint` identifies the weights (the GGUF sha256) for memoization;
    `supports_grammar` whether `generate` takes a `grammar`, a `copy_guard` and a `min_p`."""

    fingerprint: str
    supports_grammar: bool

    def generate(
        self,
        conversations: Sequence[Conversation],
        *,
        max_tokens: int,
        temperature: float = 0.0,
        seeds: Sequence[int | None] | None = None,
        stop: Sequence[str] = (),
        grammar: str | None = None,
        copy_guard: "CopyGuard | None" = None,
        min_p: float = 0.0,
    ) -> list[str]:
        """One reply per conversation. temperature 0 is greedy; otherwise each conversation is
        sampled with its own seed, so a reply does not depend on the others in the call.
        `grammar` (GBNF, grammar.py) constrains the replies, `copy_guard` (copy_guard.py) keeps
        them from copying shown examples, `min_p` leaves out the unlikely tokens of a sampled
        reply (min-p truncation); they are only passed to a model whose `supports_grammar` is
        true (its own sampler)."""
        ...

    def generate_two_rounds(
        self,
        first: Sequence[Conversation],
        follow_up: "FollowUp",
        *,
        max_tokens: tuple[int, int],
        temperature: float = 0.0,
    ) -> list[tuple[str, str | None]]:
        """See `two_rounds`: each second turn runs as soon as its first turn ends."""
        ...

    def fits(self, conversation: Conversation) -> bool:
        """Whether the conversation and a reply fit the model's context."""
        ...

    @property
    def n_ctx(self) -> int | None:
        """The context size in tokens (None: unknown or unlimited)."""
        ...

    def count_tokens(self, text: str) -> int:
        """Tokens of a reply, with the model's own tokenizer."""
        ...

    @property
    def eval_slots(self) -> int | None:
        """Sequences one evaluator call can keep busy (its chunks are four times that: the
        wide decoder); None: no preference."""
        ...

    @property
    def context_note(self) -> tuple:
        """Appended to the context size in error messages, as message parts (errors.py): how it
        came about (llama.cpp may round n_ctx up), or ()."""
        ...


def sampler_options(
    grammar: str | None = None, copy_guard: "CopyGuard | None" = None, min_p: float = 0.0
) -> dict:
    """The `generate` keywords of a model's own sampler that are set: a model without one
    (`supports_grammar` false) never receives them, and a call without them keeps its memo key."""
    options = {
        name: value for name, value in (("grammar", grammar), ("copy_guard", copy_guard)) if value is not None
    }
    if min_p:
        options["min_p"] = min_p
    return options


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


def two_rounds(
    llm: LLM,
    first: Sequence[Conversation],
    follow_up: FollowUp,
    *,
    max_tokens: tuple[int, int],
    temperature: float = 0.0,
) -> list[tuple[str, str | None]]:
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
    faults.point("two-round-chain")
    seconds = [(i, c) for i, c in seconds if c is not None]
    finals: dict[int, str] = {}
    if seconds:
        answers = llm.generate([c for _, c in seconds], max_tokens=max_tokens[1], temperature=temperature)
        finals = {i: a for (i, _), a in zip(seconds, answers)}
    return [(reply, finals.get(i)) for i, reply in enumerate(replies)]


class PlainLLM(WrappedLLM):
    """The full `LLM` protocol over an object that may only have `generate` (`complete_llm`)."""

    def generate(self, conversations, **kwargs) -> list[str]:
        return self.llm.generate(conversations, **kwargs)

    def generate_two_rounds(self, first, follow_up, *, max_tokens, temperature=0.0):
        return two_rounds(self.llm, first, follow_up, max_tokens=max_tokens, temperature=temperature)

    def fits(self, conversation) -> bool:
        fits = getattr(self.llm, "fits", None)  # a backend without a context limit has no fits()
        return True if fits is None else fits(conversation)

    @property
    def n_ctx(self) -> int | None:
        return getattr(self.llm, "n_ctx", None)

    @property
    def supports_grammar(self) -> bool:
        return bool(getattr(self.llm, "supports_grammar", False))

    @property
    def context_note(self) -> tuple:
        return getattr(self.llm, "context_note", ())

    def count_tokens(self, text: str) -> int:
        count = getattr(self.llm, "count_tokens", None)
        return count(text) if count is not None else len(text.split())

    @property
    def eval_slots(self) -> int | None:
        slots = getattr(self.llm, "eval_slots", None)
        return slots if isinstance(slots, int) else None


def complete_llm(llm) -> LLM:
    """`llm` with every method of the protocol (see the module docstring)."""
    return llm if isinstance(llm, (PlainLLM, CountingLLM)) else PlainLLM(llm)


class CountingLLM(WrappedLLM):
    """Counts the generations requested from an LLM and the tokens of their replies (memo hits
    included). Tokens are counted with the model's tokenizer when it has one, else as
    whitespace-separated words (the fakes)."""

    def __init__(self, llm: LLM):
        super().__init__(complete_llm(llm))
        self.calls = self.tokens = 0

    def _count(self, replies) -> None:
        self.calls += len(replies)
        self.tokens += sum(self.llm.count_tokens(r) for r in replies)

    def generate(self, conversations, **kwargs) -> list[str]:
        replies = self.llm.generate(conversations, **kwargs)
        self._count(replies)
        return replies

    def generate_two_rounds(self, first, follow_up, **kwargs) -> list[tuple[str, str | None]]:
        # Passed through so the evaluator keeps the decoder's one-call two-round path.
        pairs = self.llm.generate_two_rounds(first, follow_up, **kwargs)
        self._count([r for pair in pairs for r in pair if r is not None])
        return pairs
