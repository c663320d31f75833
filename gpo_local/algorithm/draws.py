"""The seeded draws of a run: the seed of each optimizer call, the format exemplars shown in the
meta-prompts, the demonstrations an induction meta-prompt shows and the train minibatches.

Each draw depends only on the run seed, the task and (for a call's seed) the step and the call's
index, never on other tasks or on what an earlier call returned, so a resumed run draws the same
as an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import random

from gpo_local.core import Example
from gpo_local.tasks import Task


def candidate_seed(seed: int, task: str, step: int, index: int | str) -> int:
    """A seed that depends only on the run seed, the task, the step and the call's index."""
    digest = hashlib.sha256(f"{seed}:{task}:{step}:{index}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def pick_exemplars(task: Task, count: int, seed: int) -> list[Example]:
    """The format exemplars shown in the meta-prompt: fixed for the run, drawn with an RNG of
    their own so they do not depend on other tasks."""
    pool = task.split("format")
    rng = random.Random(f"{seed}:{task.name}:format")
    return [pool[i] for i in sorted(rng.sample(range(len(pool)), min(count, len(pool))))]


def pick_demonstrations(task: Task, count: int, seed: int, step: int, index: int) -> list[Example]:
    """The input/output demonstrations of one instruction-induction meta-prompt (APE's start, GPO's
    cold start): a seeded sample of the train split, or of the format split when there is none, of
    its own for each call, so that the calls of a step see different examples."""
    pool = list(task.split("train") if "train" in task.splits else task.split("format"))
    rng = random.Random(candidate_seed(seed, task.name, step, f"demos{index}"))
    return rng.sample(pool, min(count, len(pool)))


def train_batches(task: Task, size: int, seed: int) -> list[tuple[Example, ...]]:
    """The train minibatches: consecutive slices of a seeded shuffle of the train split; a last
    partial batch counts only when it holds at least half a batch, as in the original code."""
    examples = list(task.split("train"))
    random.Random(f"{seed}:{task.name}:train").shuffle(examples)
    full, rest = divmod(len(examples), size)
    count = max(1, full + (1 if rest >= size / 2 else 0))
    return [tuple(examples[i * size : (i + 1) * size]) for i in range(count)]
