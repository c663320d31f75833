"""The task model as a pool of Ray actors: an `LLM` whose calls are sharded over the actors.

Each actor loads the model with its own batched decoder and thread count. A call's
conversations are cut into one contiguous shard per live actor, at the places where
neighbouring conversations share the least text, so a prompt group (the pairs of one question
under Q_end, of one prompt under Q_begin) stays on one actor and keeps its prefix sharing.
Greedy replies do not depend on what shares a batch (backends/batched.py: per-sequence KV,
63-row ubatches), so sharding changes no result.

What stays on the driver: tokenizing and the context check (`fits`, with a vocabulary-only
load of the same GGUF), the memo cache (MemoizedLLM wraps this pool: actors only generate), and
the second turns of two-round tasks. `generate_two_rounds` runs round one on the actors, asks
the driver's `follow_up` for each second turn, then runs round two on the actor that ran the
pair's first turn (its idle slot still holds the first turn's KV). The replies are those of the
local chained path; only the batch drains once between the rounds.

An actor that dies in a call (its node lost, `ray.kill`) is dropped and its shard runs again on
a live actor; the call fails only when no actor is left.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from gpo_local.backends import Conversation, FollowUp, WrappedLLM, as_messages
from gpo_local.backends.llama_cpp import LlamaCppModel, chat_formatter, check_gguf, load_llama
from gpo_local.errors import ConfigError, GpoError, ModelError, OptionValue

# How far a cut may move from the balanced position to land between two prompt groups, as a
# fraction of the balanced shard size: shards stay within 25% of each other.
CUT_SLACK = 0.25
READY_TIMEOUT = 600  # seconds for the actors to load the model (a 7B GGUF from a slow disk)


@dataclass(frozen=True)
class ModelSpec:
    """What an actor loads: picklable, and called on the actor's node (the GGUF must be at
    `path` there)."""

    path: str
    n_ctx: int = 4096
    threads: int = 1
    n_gpu_layers: int = 0
    parallel: int = 16

    def __call__(self) -> LlamaCppModel:
        return LlamaCppModel(
            self.path,
            n_ctx=self.n_ctx,
            n_threads=self.threads,
            n_gpu_layers=self.n_gpu_layers,
            parallel=self.parallel,
        )


class VocabOnlyModel(LlamaCppModel):
    """The driver's side of a pooled model: the GGUF's vocabulary and chat template only (no
    weights, no decoder), for rendering, tokenizing, `fits` and the fingerprint."""

    def __init__(self, path: Path | str, *, n_ctx: int, n_threads: int = 1):
        self.path = Path(path)
        check_gguf(self.path)
        self.n_threads, self.n_ctx, self.parallel = n_threads, n_ctx, 0
        from llama_cpp._utils import suppress_stdout_stderr

        try:
            # llama.cpp warns that a vocabulary has no training context (n_ctx_train 0): true, and noise.
            with suppress_stdout_stderr(disable=False):
                self.llama = load_llama(self.path, vocab_only=True, n_ctx=n_ctx, verbose=False)
        except (ValueError, RuntimeError, OSError) as error:
            raise ModelError(f"cannot read the vocabulary of {self.path}: {error}") from None
        self._formatter = chat_formatter(self.llama, self.path)

    def generate(self, *args, **kwargs):
        raise GpoError("a vocabulary-only model cannot generate (the Ray actors do)")


class ModelActor:
    """The body of one Ray actor: a model built by `factory` on the actor's node."""

    def __init__(self, factory: Callable[[], object]):
        self.model = factory()

    def ready(self) -> int:
        return os.getpid()

    def generate(self, conversations: list, kwargs: dict) -> tuple[list[str], int]:
        """The replies, and the tokens this actor's decoder has generated so far (for progress)."""
        replies = self.model.generate(conversations, **kwargs)
        stats = getattr(vars(self.model).get("decoder"), "stats", None)
        return replies, getattr(stats, "generated_tokens", 0)


def _common_prefix(a: str, b: str) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def shard(texts: Sequence[str], n: int) -> list[range]:
    """`n` contiguous shards of `texts` (fewer if there are fewer texts), each cut placed within
    CUT_SLACK of the balanced position where neighbouring texts share the shortest prefix (the
    boundary of a prompt group), the balanced position itself on a tie."""
    total = len(texts)
    n = max(1, min(n, total))
    if n == 1:
        return [range(0, total)] if total else []
    share = [0] + [_common_prefix(texts[i - 1], texts[i]) for i in range(1, total)]  # share[i]: i-1 with i
    slack = max(1, int(total / n * CUT_SLACK))
    cuts = [0]
    for k in range(1, n):
        ideal = round(k * total / n)
        window = range(max(cuts[-1] + 1, ideal - slack), min(total - (n - k) + 1, ideal + slack + 1))
        cuts.append(min(window, key=lambda i: (share[i], abs(i - ideal), i)))
    cuts.append(total)
    return [range(a, b) for a, b in zip(cuts, cuts[1:])]


def _text(conversation: Conversation) -> str:
    return "\n".join(m["content"] for m in as_messages(conversation))


class _Tokens:
    """Stands in for a decoder's statistics (progress.generated_tokens reads `decoder.stats`)."""

    def __init__(self):
        self.generated_tokens = 0


class _Decoder:
    def __init__(self):
        self.stats = _Tokens()


class RayPoolLLM(WrappedLLM):
    """An `LLM` whose generations run on Ray actors. `local` answers everything else (fingerprint,
    fits, n_ctx, path, count_tokens...): a VocabOnlyModel of the same GGUF, or a fake in tests."""

    def __init__(self, ray, actors: list, *, local):
        super().__init__(local)
        self.ray, self.actors = ray, list(actors)
        self.n_threads = getattr(local, "n_threads", 1)
        self.decoder = _Decoder()  # tokens generated on all actors, for the progress line
        self._tokens: dict = {}  # actor -> its decoder's count
        self.retried_shards = 0

    @classmethod
    def start(cls, ray, factory, n: int, *, local, num_cpus: float = 1, num_gpus: float = 0) -> "RayPoolLLM":
        """Start `n` actors that each build their model with `factory()`, and wait until all have."""
        _check_room(ray, n, num_cpus, num_gpus)
        remote = ray.remote(ModelActor).options(num_cpus=num_cpus, num_gpus=num_gpus, max_restarts=0)
        actors = [remote.remote(factory) for _ in range(n)]
        try:
            ray.get([a.ready.remote() for a in actors], timeout=READY_TIMEOUT)
        except Exception as error:
            for actor in actors:
                ray.kill(actor)
            raise ModelError(f"the Ray actors could not load the task model: {_cause(error)}") from None
        return cls(ray, actors, local=local)

    def close(self) -> None:
        for actor in self.actors:
            self.ray.kill(actor)
        self.actors = []

    def generate(
        self,
        conversations: Sequence[Conversation],
        *,
        max_tokens: int,
        temperature: float = 0.0,
        seeds: Sequence[int | None] | None = None,
        stop: Sequence[str] = (),
    ) -> list[str]:
        replies, _ = self._generate(
            conversations, max_tokens=max_tokens, temperature=temperature, seeds=seeds, stop=stop
        )
        return replies

    def generate_two_rounds(
        self,
        first: Sequence[Conversation],
        follow_up: FollowUp,
        *,
        max_tokens: tuple[int, int],
        temperature: float = 0.0,
    ) -> list[tuple[str, str | None]]:
        replies, placed = self._generate(first, max_tokens=max_tokens[0], temperature=temperature)
        seconds = [(i, follow_up(i, reply)) for i, reply in enumerate(replies)]  # on the driver, in order
        seconds = [(i, c) for i, c in seconds if c is not None]
        finals: dict[int, str] = {}
        if seconds:
            answers, _ = self._generate(
                [c for _, c in seconds],
                max_tokens=max_tokens[1],
                temperature=temperature,
                placement=[placed[i] for i, _ in seconds],
            )
            finals = {i: a for (i, _), a in zip(seconds, answers)}
        return [(reply, finals.get(i)) for i, reply in enumerate(replies)]

    def _generate(self, conversations, *, placement: list | None = None, **kwargs) -> tuple[list[str], list]:
        """Replies in order, and the actor that produced each. `placement` (an actor per
        conversation) keeps second turns with their first turns while those actors live."""
        if not conversations:
            return [], []
        if not self.actors:
            raise GpoError("no Ray actor is left to run the task model (all of them died)")
        seeds = list(kwargs.pop("seeds", None) or [None] * len(conversations))
        if placement is None or any(all(a is not live for live in self.actors) for a in placement):
            cuts = shard([_text(c) for c in conversations], len(self.actors))
            placement = [actor for part, actor in zip(cuts, self.actors) for _ in part]
        jobs = {}
        for actor in dict.fromkeys(placement):
            indices = [i for i, a in enumerate(placement) if a is actor]
            jobs[self._submit(actor, conversations, indices, seeds, kwargs)] = (actor, indices)
        replies: list = [None] * len(conversations)
        done_by: list = [None] * len(conversations)
        while jobs:
            ready, _ = self.ray.wait(list(jobs), num_returns=1)
            actor, indices = jobs.pop(ready[0])
            try:
                texts, tokens = self.ray.get(ready[0])
            except self.ray.exceptions.RayActorError:
                spare = self._replace(actor, jobs)
                jobs[self._submit(spare, conversations, indices, seeds, kwargs)] = (spare, indices)
                continue
            except self.ray.exceptions.RayTaskError as error:  # the model's own error (PromptTooLongError...)
                cause = getattr(error, "cause", None)
                raise (cause if isinstance(cause, Exception) else error) from None
            self._count(actor, tokens)
            for i, text in zip(indices, texts):
                replies[i], done_by[i] = text, actor
        return replies, done_by

    def _submit(self, actor, conversations, indices, seeds, kwargs):
        return actor.generate.remote(
            [conversations[i] for i in indices], {**kwargs, "seeds": [seeds[i] for i in indices]}
        )

    def _replace(self, dead, jobs):
        """Drop the dead actor; its shard goes to the live actor with the least work queued."""
        self.actors = [a for a in self.actors if a is not dead]
        if not self.actors:
            raise GpoError("no Ray actor is left to run the task model (all of them died)")
        self.retried_shards += 1
        return min(self.actors, key=lambda a: sum(len(ix) for owner, ix in jobs.values() if owner is a))

    def _count(self, actor, tokens: int) -> None:
        self._tokens[actor] = tokens
        self.decoder.stats.generated_tokens = sum(self._tokens.values())


def _check_room(ray, n: int, num_cpus: float, num_gpus: float) -> None:
    """Actors that the cluster cannot hold would wait for resources forever: say so at once."""
    total = ray.cluster_resources()
    cpus, gpus = total.get("CPU", 0), total.get("GPU", 0)
    if n * num_cpus > cpus or n * num_gpus > gpus:
        gpu_text = f" and {num_gpus:g} GPU" if num_gpus else ""
        raise ConfigError(
            OptionValue("ray_actors", n),
            f": {n} actors of {num_cpus:g} CPU{gpu_text} each do not fit the Ray cluster "
            f"({cpus:g} CPUs, {gpus:g} GPUs); use fewer actors or fewer ",
            OptionValue("threads"),
        )


def _cause(error: Exception) -> str:
    text = str(getattr(error, "cause", None) or error).strip().splitlines()
    return text[-1] if text else type(error).__name__
