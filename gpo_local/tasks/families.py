"""The answer families: how a reply is parsed and judged for each kind of answer, as a registry.

Each family (``FAMILY_RULES``) is three functions: the round-2 follow-up message for a
question, the normalization of a raw reply into a short answer, and the grade of a
normalized prediction against a target (0/1, or a fraction for ROUGE-L), as the original evaluation does.
``answers.AnswerRule`` (the Rule protocol of tasks/rules.py) looks its family up here instead
of branching on it; the grades' tests of correctness and ROUGE-L are in grading.py. The
fidelity quirks and decisions are listed in answers.py's docstring.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Callable

from gpo_local.tasks.grading import (
    dyck_correct,
    generic_correct,
    remove_punctuation,
    rouge_l,
    word_sorting_correct,
)

# ---------------------------------------------------------------------------
# Families and task tables
# ---------------------------------------------------------------------------

MULTIPLE_CHOICE = "multiple_choice"
NUMERIC = "numeric"
BOOLEAN = "boolean"
DYCK = "dyck"
WORD_SORTING = "word_sorting"
EXACT = "exact"  # the "generic" dataset: plain (case-insensitive) equality
ROUGE_L = "rouge_l"  # WebNLG: ROUGE-L F averaged over the references, a fraction in [0, 1]

FAMILIES = (MULTIPLE_CHOICE, NUMERIC, BOOLEAN, DYCK, WORD_SORTING, EXACT, ROUGE_L)

#: Used when a multiple-choice question shows no "(X)" at all.
DEFAULT_LAST_OPTION = "D"

# The words each boolean task should answer with in round 2 (the original evaluation's follow-up).
# Tasks not listed (causal_judgement, navigate, ...) answer Yes/No.
_BOOLEAN_WORDS_BY_TASK = {
    "boolean_expressions": ("True", "False"),
    "formal_fallacies": ("valid", "invalid"),
}
_DEFAULT_BOOLEAN_WORDS = ("Yes", "No")

# ---------------------------------------------------------------------------
# Answer cues (the original normalization, step 2)
# ---------------------------------------------------------------------------

_GSM8K_MARKER = "#### "
_PRIMARY_CUES = ("answer is ", "answer: ", "answer is: ")
_SECONDARY_CUES = ("is: ", "are: ")
_SUFFIX_CUES = (
    " is the correct answer",
    " is the right answer",
    " is the final answer",
    " is the answer",
)


def _apply_answer_cues(lowered: str, raw: str) -> tuple[str, bool]:
    """Cut ``lowered`` around the answer cues; also say whether any cue hit.

    The choice between primary and secondary cues looks at the *raw* text,
    case-sensitively (fidelity quirk), while the cutting works on the lower-cased
    text. Each cue is applied in turn to what the previous ones left.
    """
    if any(cue in raw for cue in _PRIMARY_CUES):
        prefix_cues = _PRIMARY_CUES
    else:
        prefix_cues = _SECONDARY_CUES

    indicated = False
    text = lowered
    # Keep what follows the last occurrence of each prefix cue.
    for cue in (_GSM8K_MARKER, *prefix_cues):
        if cue in text:
            text = text.split(cue)[-1]
            indicated = True
    # Keep what precedes the first occurrence of each suffix cue.
    for cue in _SUFFIX_CUES:
        if cue in text:
            text = text.split(cue)[0]
            indicated = True
    return text, indicated


# ---------------------------------------------------------------------------
# Family-specific normalization (the original normalization, steps 3-5)
# ---------------------------------------------------------------------------

_BRACKETED_LETTER = re.compile(r"\([a-z]\)")


def _first_bracketed_letter(text: str) -> str:
    """Replace the text by its first "(x)", if any (fidelity: first, not last)."""
    match = _BRACKETED_LETTER.search(text)
    return match.group(0) if match else text


_NUMBER_WORDS = {
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
    "ten": "10",
    "eleven": "11",
    "twelve": "12",
}
_CHARS_DELETED_FROM_NUMBERS = "$,%€£:"
_ASCII_DIGIT = re.compile(r"[0-9]")
_DIGIT_RUN = re.compile(r"[0-9]+")
_TRAILING_LETTERS = re.compile(r"[a-z]+$")


def _normalize_number(text: str, answer_indicated: bool) -> str:
    """Reduce a reply to one integer string, following the original normalization's step 4."""
    # Only whole space-separated tokens are number words: "five." stays as is.
    tokens = [_NUMBER_WORDS.get(token, token) for token in text.split(" ")]
    text = " ".join(tokens)
    # In "3 + 4 = 7" the result is what follows the last "=".
    text = text.split("=")[-1]
    for char in _CHARS_DELETED_FROM_NUMBERS:
        text = text.replace(char, "")

    candidates = [t for t in text.split(" ") if _ASCII_DIGIT.search(t)]
    if not candidates:
        # Decision: nothing numeric to pick; leave the text (it cannot match).
        return text.strip()
    # After an answer cue the number comes first; otherwise the last one wins.
    token = candidates[0] if answer_indicated else candidates[-1]

    token = _TRAILING_LETTERS.sub("", token)  # "42nd" -> "42", "5-year" -> "5-"
    if token.endswith("-"):
        token = token[:-1]

    rounded = _round_to_integer(token)
    if rounded is not None:
        return rounded
    runs = _DIGIT_RUN.findall(token)
    return runs[-1] if runs else token.strip()


def _round_to_integer(token: str) -> str | None:
    """Round a float-looking token half-to-even ("2.5" -> "2"); None otherwise."""
    try:
        value = float(token)
    except ValueError:
        return None
    if not math.isfinite(value):
        # Decision: "1e999" overflows; let the digit-run fallback handle it.
        return None
    # Python's round() is half-to-even, as in the original; int() avoids "-0".
    return str(int(round(value)))


def _normalize_boolean(text: str) -> str:
    """Delete punctuation and strip (the original normalization's step 5).

    Fidelity quirk: the original also meant to keep only the first word when it
    is a boolean word, but that check could never succeed, so it is left out.
    Hence "Yes." gives "yes" (right) and "Yes, because ..." gives
    "yes because ..." (wrong).
    """
    return remove_punctuation(text).strip()


# ---------------------------------------------------------------------------
# Multiple-choice range for the follow-up
# ---------------------------------------------------------------------------

_OPTION_LINE = re.compile(r"^\s*\(([A-Z])\)", re.MULTILINE)
_ANY_OPTION = re.compile(r"\(([A-Z])\)")


def last_option_letter(question: str | None, default: str = DEFAULT_LAST_OPTION) -> str:
    """The letter of the last option of a multiple-choice question.

    Read from the question itself (the original used a line index of the message), so that the instruction
    and its position cannot shift it. Preference order: the last line starting
    with "(X)"; else the last "(X)" anywhere; else ``default``. Only capital
    letters count, as in every dataset used here.
    """
    text = question or ""
    for pattern in (_OPTION_LINE, _ANY_OPTION):
        letters = pattern.findall(text)
        if letters:
            return letters[-1]
    return default


def choice_range_for(question: str | None) -> str:
    """The range "(A) and (X)", X being the question's last option."""
    return f"(A) and ({last_option_letter(question)})"


# ---------------------------------------------------------------------------
# The registry
# ---------------------------------------------------------------------------


def _cued(raw: str) -> tuple[str, bool]:
    return _apply_answer_cues(raw.lower().strip(), raw)


def _numeric_target(target: object) -> str:
    target = str(target)
    return target.rsplit(_GSM8K_MARKER, 1)[-1].replace(",", "").strip() if _GSM8K_MARKER in target else target


def _boolean_followup(task: str, choice_range: str | None, question: str) -> str:
    yes, no = _BOOLEAN_WORDS_BY_TASK.get(task, _DEFAULT_BOOLEAN_WORDS)
    return f'So, what is your final answer? Reply with only "{yes}" or "{no}".'


@dataclass(frozen=True)
class Family:
    """followup(task, choice_range, question) -> round-2 message; normalize(raw) -> prediction;
    grade(prediction, target) -> score in [0, 1]."""

    followup: Callable[[str, str | None, str], str]
    normalize: Callable[[str], str]
    grade: Callable[[str, object], float]


def _binary(correct: Callable[[str, str], bool], target_text: Callable[[object], str] = str):
    """0/1 grading; a list or tuple target holds several accepted answers, any of which counts."""

    def grade(prediction: str, target: object) -> float:
        accepted = target if isinstance(target, (list, tuple)) else (target,)
        return 1.0 if any(correct(prediction, target_text(t)) for t in accepted) else 0.0

    return grade


FAMILY_RULES: dict[str, Family] = {
    MULTIPLE_CHOICE: Family(
        lambda task, choices, q: (
            "So, which option is your final answer? Reply with a single option between "
            f"{choices or choice_range_for(q)}."
        ),
        lambda raw: _first_bracketed_letter(_cued(raw)[0]),
        _binary(generic_correct),
    ),
    BOOLEAN: Family(
        _boolean_followup, lambda raw: _normalize_boolean(_cued(raw)[0]), _binary(generic_correct)
    ),
    NUMERIC: Family(
        lambda task, choices, q: "So, what is the final answer? Reply with a single number only.",
        lambda raw: _normalize_number(*_cued(raw)),
        _binary(generic_correct, _numeric_target),
    ),
    DYCK: Family(
        lambda task, choices, q: (
            "Now reply with only the closing brackets you added to finish the sequence, nothing else."
        ),
        lambda raw: _cued(raw)[0],
        _binary(dyck_correct),
    ),
    WORD_SORTING: Family(
        lambda task, choices, q: "Now reply with only the sorted words, separated by single spaces.",
        lambda raw: _cued(raw)[0],
        _binary(word_sorting_correct),
    ),
    # EXACT has no follow-up wording of its own; a two-round exact rule asks plainly.
    EXACT: Family(
        lambda task, choices, q: "So, what is your final answer? Reply with the answer only.",
        str.strip,
        _binary(generic_correct),
    ),
    # ROUGE-L (WebNLG) is single-round; the stripped reply is the hypothesis.
    ROUGE_L: Family(
        lambda task, choices, q: "So, what is your final answer? Reply with the answer only.",
        str.strip,
        lambda prediction, target: rouge_l(prediction, target),
    ),
}
assert set(FAMILY_RULES) == set(FAMILIES)


def normalize_answer(raw: str, family: str) -> str:
    """Turn a model reply into a short answer for ``family`` (the original normalization)."""
    return FAMILY_RULES[family].normalize(raw)


def answer_is_correct(prediction: str, target: object, family: str) -> bool:
    """Judge a normalized prediction against a target (any type, via ``str``; a list target
    holds several accepted answers). A family outside the registry (say "generic") grades by
    plain equality, as EXACT does."""
    return FAMILY_RULES.get(family, FAMILY_RULES[EXACT]).grade(prediction, target) == 1.0
