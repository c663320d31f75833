"""How many tokens the task model may write per answer: the task's limits, the `answer_max_tokens`
option over them, the defaults of each answer family, and a per-question limit past which a
reply can no longer change its score.

A task's `max_tokens` is (round 1, round 2). A built-in task sets its own; a task loaded from
files gets its answer family's (`family_max_tokens`): a two-round rule keeps the original
evaluation's (256, 100), round 1 being free reasoning; a one-round rule gets a short limit for a
word, label or exact answer, a moderate one for a number, a long one for free text (ROUGE-L).

`answer_max_tokens` ("N": every round; "N1,N2": round 1 and round 2) overrides the task's limits.

`score_neutral_tokens`: with exact match in one round (the EXACT family), the whole stripped
reply is the prediction, so a reply with more letters and digits than every accepted answer can
never match; decoding may stop at the tokens of the longest accepted answer plus a margin for
spaces, quotes and punctuation around it. Rules that read the answer out of a longer reply (the
suite's phrase rules, the cued families) get no such limit.
"""

from __future__ import annotations

from typing import Any, Callable

from gpo_local.errors import ConfigError
from gpo_local.tasks.families import (
    BOOLEAN,
    DYCK,
    EXACT,
    MULTIPLE_CHOICE,
    NUMERIC,
    ROUGE_L,
    WORD_SORTING,
)
from gpo_local.tasks.grading import truth_words

# The original evaluation's limits: reasoning in round 1, the answer in round 2.
TWO_ROUND_TOKENS = (256, 100)
# One round: the reply is the answer.
ONE_ROUND_TOKENS = {
    EXACT: 32,
    MULTIPLE_CHOICE: 32,
    BOOLEAN: 32,
    NUMERIC: 64,
    DYCK: 64,
    WORD_SORTING: 128,
    ROUGE_L: 256,
}
# A rule of no known family (a user's metric callable): the Task default, as before.
UNKNOWN_FAMILY_TOKENS = (256, 100)
# Tokens allowed past the longest accepted answer before exact match can no longer hold: room
# for leading spaces, quotes, brackets and a final period, which the comparison ignores.
EXACT_MARGIN = 8


def family_max_tokens(rule: Any) -> tuple[int, int]:
    """The (round 1, round 2) limits of a task loaded from files, by its answer rule's family."""
    family = getattr(rule, "family", None)
    if getattr(rule, "two_rounds", False):
        return TWO_ROUND_TOKENS
    if family in ONE_ROUND_TOKENS:
        return ONE_ROUND_TOKENS[family], 0
    return UNKNOWN_FAMILY_TOKENS


def parse_answer_max_tokens(value: Any) -> str | None:
    """The option's value in its one written form, "N" or "N1,N2" (each at least 1); an int or
    a pair of ints (the Python API) is accepted too. Raises ConfigError naming the option."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ConfigError(f"answer_max_tokens={value!r} must be N or N1,N2 (tokens per round)")
    if isinstance(value, int):
        parts = [value]
    elif isinstance(value, (tuple, list)):
        parts = list(value)
    else:
        parts = [part.strip() for part in str(value).split(",")]
    try:
        numbers = [int(part) for part in parts]
    except (TypeError, ValueError):
        numbers = []
    if not 1 <= len(numbers) <= 2 or len(numbers) != len(parts) or any(n < 1 for n in numbers):
        raise ConfigError(f"answer_max_tokens={value!r} must be N or N1,N2 (tokens per round, each >= 1)")
    return ",".join(str(n) for n in numbers)


def answer_limits(value: str | None, task_limits: tuple[int, int], two_rounds: bool) -> tuple[int, int]:
    """The (round 1, round 2) limits under the option: "N" caps every round the task has,
    "N1,N2" each round (the second number is unused by a one-round task); None keeps the task's."""
    written = parse_answer_max_tokens(value)
    if written is None:
        return tuple(task_limits)
    numbers = [int(n) for n in written.split(",")]
    if len(numbers) == 2:
        return numbers[0], numbers[1]
    return numbers[0], numbers[0] if two_rounds else task_limits[1]


def score_neutral_tokens(rule: Any, target: Any, count_tokens: Callable[[str], int]) -> int | None:
    """The tokens after which a one-round exact-match reply can no longer match any accepted
    answer of `target` (module docstring), None for any other rule."""
    if getattr(rule, "two_rounds", True) or getattr(rule, "family", None) != EXACT:
        return None
    accepted = [str(t) for t in target] if isinstance(target, (list, tuple)) else [str(target)]
    # A yes/no-like target also accepts the words of the same truth value (generic_correct).
    accepted += [word for t in accepted for word in truth_words(t)]
    if not accepted:
        return None
    return max(count_tokens(answer) for answer in accepted) + EXACT_MARGIN
