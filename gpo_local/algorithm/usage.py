"""What a run has spent, and whether a limit stops it before the next step.

`Meter` counts the optimizer calls and tokens, the task-model generations and tokens, the dev
scorings, the wall time and the CPU time of a run; its `usage()` is the `usage` of every
trajectory record and of result.json, and a resumed run restores it from its last record so the
counts go on from there. `limit_reached` checks the user's limits (`Limits`) against it.
"""

from __future__ import annotations

import time
from typing import Callable

from gpo_local.algorithm.config import Limits
from gpo_local.algorithm.evaluator import Evaluator
from gpo_local.backends import CountingLLM


class Meter:
    """The counters of a run: the two counting models, the evaluator's scorings and the clocks."""

    def __init__(
        self,
        task_llm: CountingLLM,
        optimizer_llm: CountingLLM,
        evaluator: Evaluator,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.task_llm, self.optimizer_llm = task_llm, optimizer_llm
        self.evaluator, self.clock = evaluator, clock
        self._seconds_before = 0.0
        self._started = clock()
        # CPU time of this process (all its threads: llama.cpp's included), which neither a
        # paused process (SIGSTOP) nor other work on a shared machine inflates the way it does
        # wall time; a Ray pool's remote workers are not counted.
        self._cpu_before, self._cpu_started = 0.0, time.process_time()

    def elapsed(self) -> float:
        return self._seconds_before + (self.clock() - self._started)

    def usage(self) -> dict:
        return {
            "optimizer_calls": self.optimizer_llm.calls,
            "optimizer_tokens": self.optimizer_llm.tokens,
            "task_generations": self.evaluator.generations,
            "task_tokens": self.task_llm.tokens,
            "dev_scorings": self.evaluator.scorings["eval"],
            "seconds": round(self.elapsed(), 3),
            "cpu_seconds": round(self._cpu_before + time.process_time() - self._cpu_started, 3),
        }

    def restore(self, usage: dict) -> None:
        """Go on from a resumed run's last recorded usage."""
        self.optimizer_llm.calls = usage.get("optimizer_calls", 0)
        self.optimizer_llm.tokens = usage.get("optimizer_tokens", 0)
        self.evaluator.generations = usage.get("task_generations", 0)
        self.task_llm.tokens = usage.get("task_tokens", 0)
        self.evaluator.scorings["eval"] = usage.get("dev_scorings", 0)
        self._seconds_before, self._started = usage.get("seconds", 0.0), self.clock()
        self._cpu_before, self._cpu_started = usage.get("cpu_seconds", 0.0), time.process_time()

    def limit_reached(self, limits: Limits, next_cost: int) -> str | None:
        """The name of the first limit a step of `next_cost` optimizer calls would pass, or None."""
        if (
            limits.max_optimizer_calls is not None
            and self.optimizer_llm.calls + next_cost > limits.max_optimizer_calls
        ):
            return "max_optimizer_calls"
        if limits.max_task_tokens is not None and self.task_llm.tokens >= limits.max_task_tokens:
            return "max_task_tokens"
        if limits.time_limit is not None and self.elapsed() >= limits.time_limit:
            return "time_limit"
        return None
