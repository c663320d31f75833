"""The batched decoder's requests, results and counters (batched.py)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GenerationRequest:
    """One generation: a fully tokenized prompt (chat template applied, BOS included if wanted)."""

    tokens: tuple[int, ...]
    max_tokens: int
    stop: tuple[str, ...] = ()
    temperature: float = 0.0
    seed: int | None = None
    grammar: str | None = None  # a GBNF grammar the reply must follow (constrained.py)
    banned_runs: tuple[tuple[int, ...], ...] = ()  # token runs the reply must not complete (copy_guard.py)
    min_p: float = (
        0.0  # a sampled token's probability must be at least min_p times the likeliest's (slots.py)
    )

    def __post_init__(self) -> None:
        # Accept lists for convenience but store tuples: requests are hashable and immutable.
        object.__setattr__(self, "tokens", tuple(int(t) for t in self.tokens))
        object.__setattr__(self, "stop", tuple(self.stop))
        object.__setattr__(self, "banned_runs", tuple(tuple(int(t) for t in run) for run in self.banned_runs))
        if not self.tokens:
            raise ValueError("GenerationRequest.tokens must not be empty")
        if self.max_tokens < 0:
            raise ValueError(f"max_tokens must be >= 0, got {self.max_tokens}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 <= self.min_p < 1:
            raise ValueError(f"min_p must be in [0, 1), got {self.min_p}")


@dataclass(frozen=True)
class Completion:
    """Result of one request. ``tokens`` excludes an end-of-generation token; a stop string is
    trimmed from ``text`` only (the tokens that produced it stay, so a follow-up turn can extend
    ``request.tokens + completion.tokens`` and reuse the KV)."""

    text: str
    tokens: tuple[int, ...]
    finish_reason: str  # "stop" | "length" | "eos"
    prompt_tokens: int
    reused_prompt_tokens: int


@dataclass
class DecoderStats:
    """Counters accumulated over the decoder's lifetime (reset with ``stats = DecoderStats()``)."""

    requests: int = 0
    prompt_tokens: int = 0  # prompt tokens requested
    prompt_tokens_decoded: int = 0  # prompt tokens actually pushed through the model
    prompt_tokens_reused: int = 0  # served from KV shared with / kept from other sequences
    generated_tokens: int = 0  # tokens chosen (including an end-of-generation token)
    decode_calls: int = 0
    batch_tokens: int = 0  # all tokens submitted to llama_decode (prompt + generation)
    decode_seconds: float = 0.0
    evictions: int = 0  # idle slots whose KV was dropped to make room
