"""The answer-rule protocol every task's `rule` implements, and the rule of a user's metric.

The evaluator asks the task model the question (round 1), then, for a two-round rule, the
rule's follow-up (round 2); it judges the last reply: `normalize` parses the short answer,
`grade_example` scores it in [0, 1] against the example. Implementations: AnswerRule
(tasks/answers.py, the benchmark families), LabelRule (tasks/builtin.py) and MetricRule below.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Protocol

from gpo_local.core import Example
from gpo_local.errors import DataError


class Rule(Protocol):
    two_rounds: bool  # whether a follow-up question is asked (two-round extraction)

    def followup(self, question: str) -> str | None:
        """The round-2 user message, or None for single-round rules."""

    def normalize(self, raw: str) -> str:
        """The short answer parsed from a reply."""

    def grade_example(self, prediction: str, example: Example) -> float:
        """The score in [0, 1] of a normalized prediction for an example."""


@dataclass(frozen=True)
class MetricRule:
    """A user's metric `(prediction, example) -> float in [0, 1]` as a single-round rule: the
    prediction is the stripped reply; `example` is the Example (id, input, target)."""

    metric: Callable[[str, Example], Any]
    two_rounds: bool = False

    def followup(self, question: str) -> str | None:
        return None

    def normalize(self, raw: str) -> str:
        return raw.strip()

    def grade_example(self, prediction: str, example: Example) -> float:
        value = self.metric(prediction, example)
        name = getattr(self.metric, "__name__", type(self.metric).__name__)
        if isinstance(value, bool):
            value = float(value)
        if not isinstance(value, (int, float)) or math.isnan(value) or not 0.0 <= value <= 1.0:
            raise DataError(
                f"metric {name} returned {value!r} for example {example.id}: expected a number "
                "between 0 and 1"
            )
        return float(value)
