"""The examples a run shows, scores and tests on: a part of the "config" options (config.OPTIONS)
and the GPOConfig fields they declare (DataConfig).

The train minibatch, the format examples shown to the optimizer, the task model's reply limits and
the instruction's position, the dev and test limits and the held-out test split. Each declaration
here is a field of DataConfig below, in the same order and with the same default; GPOConfig
(config.py) inherits them. Adding an option of this theme is its declaration and its field here,
plus the code that reads it.
"""

from __future__ import annotations

from dataclasses import dataclass

from gpo_local.algorithm.option import MAX_COUNT, Option
from gpo_local.tasks.answer_length import parse_answer_max_tokens
from gpo_local.tasks.prompting import DEFAULT_POSITION, POSITIONS

_O = Option
DATA_OPTIONS: tuple[Option, ...] = (
    _O(
        "train_batch", int, 8, "Train minibatch size (feedback gradient, APO, PE2)", minimum=1, maximum=10_000
    ),
    # Eight, not the paper's three: with three, the 1.5B optimizer rarely named a task's rule.
    _O(
        "format_examples",
        int,
        8,
        "Task examples shown to the optimizer in the meta-prompt as the answer format",
        minimum=0,
        maximum=100,
    ),
    # Overrides the task's reply limits (tasks/answer_length.py): "N" every round, "N1,N2" each round.
    _O(
        "answer_max_tokens",
        str,
        None,
        "Token limit of each task-model reply: N for every round, or N1,N2 for "
        "round 1 and round 2 of a two-round task [default: the task's own; for a "
        "task from files, by its metric: 32 for exact, 256,100 for two rounds].",
        parse=parse_answer_max_tokens,
        section="task",
    ),
    _O(
        "position",
        str,
        DEFAULT_POSITION,
        "Where the instruction goes relative to the question.",
        choices=POSITIONS,
        show_default=True,
    ),
    _O(
        "dev_limit",
        int,
        None,
        "Score on the first N dev questions only.",
        minimum=1,
        maximum=MAX_COUNT,
        section="essentials",
    ),
    _O(
        "test_limit",
        int,
        None,
        "Test on the first N test questions only.",
        minimum=1,
        maximum=MAX_COUNT,
        section="essentials",
    ),
    _O(
        "test_holdout",
        int,
        None,
        "For a task without a test split: hold out its last N dev examples as the test split.",
        minimum=1,
        maximum=MAX_COUNT,
        section="task",
    ),
)


@dataclass(frozen=True)
class DataConfig:
    """The examples shown, scored and tested on: the fields of DATA_OPTIONS, in their order, with
    their defaults."""

    train_batch: int = 8
    format_examples: int = 8
    answer_max_tokens: str | None = None
    position: str = DEFAULT_POSITION
    dev_limit: int | None = None
    test_limit: int | None = None
    test_holdout: int | None = None
