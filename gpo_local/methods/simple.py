"""The evaluation-only baselines of the paper's main results: no instruction, the zero-shot chain-of-thought
trigger, and the task's human reference instruction. They make no optimizer call and score one
prompt on the dev split (and on test), so they spend none of the budget."""

from __future__ import annotations

from gpo_local.algorithm.method import Method
from gpo_local.errors import ConfigError

COT_PROMPT = "Let's think step by step."


class Empty(Method):
    """No instruction at all: the question alone."""

    name = "empty"
    uses_format = False

    def start_prompt(self, given: str) -> str:
        return ""

    @classmethod
    def plan_for(cls, config) -> list[int]:
        return []


class CoT(Method):
    """The zero-shot chain-of-thought trigger as the instruction."""

    name = "cot"
    uses_format = False

    def start_prompt(self, given: str) -> str:
        return COT_PROMPT

    @classmethod
    def plan_for(cls, config) -> list[int]:
        return []


def reference_prompt_of(task) -> str:
    """The task's human reference instruction; a task without one cannot run `reference`."""
    if not getattr(task, "reference_prompt", None):
        raise ConfigError(
            f"method='reference' scores a task's human reference prompt, and task "
            f"{task.name!r} has none (the built-in instruction-induction tasks have one: "
            "`gpo-local tasks`)"
        )
    return task.reference_prompt


class Reference(Method):
    """The task's human reference: one plain instruction written from the rule before any
    optimization (a built-in suite task's `reference_prompt`), the row an optimized prompt is
    measured against."""

    name = "reference"
    uses_format = False

    def start_prompt(self, given: str) -> str:
        return reference_prompt_of(self.task)

    @classmethod
    def plan_for(cls, config) -> list[int]:
        return []
