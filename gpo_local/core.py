"""The values that flow through an optimization, as frozen dataclasses.

They are plain data so that they serialize to the run directory's JSON lines unchanged
(`dataclasses.asdict`) and can be rebuilt from it on resume.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# The kinds of record in a run's trajectory.jsonl (algorithm/trajectory.py writes and replays them).
INIT, CANDIDATE, STEP = "init", "candidate", "step"


@dataclass(frozen=True)
class Example:
    """One question of a split. `id` is stable across runs (split name plus line number)."""

    id: str
    input: str
    target: Any

    @property
    def shown_target(self) -> str:
        """The target as shown to the optimizer model: the first accepted answer where a task
        accepts several (a tuple or list target)."""
        if isinstance(self.target, (tuple, list)) and self.target:
            return str(self.target[0])
        return str(self.target)


@dataclass(frozen=True)
class Outcome:
    """What the task model did on one example with one prompt."""

    example_id: str
    first_answer: str  # round-1 reply (the reasoning, for chat models)
    final_answer: str  # round-2 reply, or the round-1 reply for single-round tasks
    prediction: str  # the normalized answer that was compared with the target
    score: float  # 0/1 for exact match, a fraction for ROUGE-L
    too_long: bool = False  # the conversation did not fit the model's context: not asked, scored 0


@dataclass(frozen=True)
class EvalResult:
    """A prompt's score on a split: the mean of its outcomes' scores, in [0, 1]."""

    prompt: str
    split: str
    score: float
    outcomes: tuple[Outcome, ...] = ()

    @property
    def n(self) -> int:
        return len(self.outcomes)

    @property
    def too_long(self) -> int:
        """How many examples did not fit the model's context with this prompt (scored 0)."""
        return sum(o.too_long for o in self.outcomes)


@dataclass(frozen=True)
class Candidate:
    """A prompt proposed and scored at one step.

    `parent` is the prompt it was generated from (the step's current prompt); `budget` is the
    edit budget in words requested by the schedule (None without a learning rate) and
    `edit_distance` the word-level Levenshtein distance actually measured against the parent,
    so that the schedule's effect can be checked rather than assumed (the original only requests it).
    """

    prompt: str
    dev_score: float
    step: int
    parent: str | None = None
    budget: int | None = None
    edit_distance: int | None = None
    new: bool = True  # False when the optimizer regenerated an already scored prompt


@dataclass(frozen=True)
class TrajectoryEntry:
    """One chosen prompt: the optimizer state GPO keeps (step -1 is the initial prompt)."""

    prompt: str
    dev_score: float
    step: int


@dataclass(frozen=True)
class RunResult:
    initial: TrajectoryEntry
    final: TrajectoryEntry
    initial_test: float | None
    final_test: float | None
    trajectory: tuple[TrajectoryEntry, ...] = field(default_factory=tuple)
    # The per-example test outcomes of the initial and the final prompt (None without a test
    # split), for reports of which examples the optimization fixed or broke.
    initial_test_result: EvalResult | None = None
    final_test_result: EvalResult | None = None
    # Why the run ended: "completed", or the budget limit that stopped it at a step boundary
    # ("max_optimizer_calls", "max_task_tokens", "time_limit"); such a run can be resumed.
    stopped: str = "completed"
    # What the run spent (optimizer_calls, optimizer_tokens, task_generations, task_tokens,
    # dev_scorings, seconds), cumulative over resumed runs.
    usage: dict = field(default_factory=dict)
