"""The two evaluation-only baselines of the paper's main results: no instruction, and the zero-shot
chain-of-thought trigger. They make no optimizer call and score one prompt on the dev split
(and on test), so they spend none of the budget."""

from __future__ import annotations

from gpo_local.algorithm.optimizer import Method

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
