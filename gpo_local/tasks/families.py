"""The answer families: how a reply is parsed and judged for each kind of answer, as a registry.

Each family (``FAMILY_RULES``) is three functions: the round-2 follow-up message for a
question, the normalization of a raw reply into a short answer, and the grade of a
normalized prediction against a target (0/1, or a fraction for ROUGE-L), as the original evaluation does.
``answers.AnswerRule`` (the Rule protocol of tasks/rules.py) looks its family up here instead
of branching on it. The fidelity quirks and decisions are listed in answers.py's docstring.
"""

from __future__ import annotations

import math
import re
import string
from dataclasses import dataclass
from typing import Callable

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

# Truth value of each boolean word, for the cross-vocabulary match of the original evaluation.
_TRUTH_OF_TARGET = {
    "false": False,
    "no": False,
    "invalid": False,
    "true": True,
    "yes": True,
    "valid": True,
}
# A prediction may also be a digit.
_TRUTH_OF_PREDICTION = {**_TRUTH_OF_TARGET, "0": False, "1": True}

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


_PUNCTUATION_TABLE = str.maketrans("", "", string.punctuation)


def _remove_punctuation(text: str) -> str:
    return text.translate(_PUNCTUATION_TABLE)


def _normalize_boolean(text: str) -> str:
    """Delete punctuation and strip (the original normalization's step 5).

    Fidelity quirk: the original also meant to keep only the first word when it
    is a boolean word, but that check could never succeed, so it is left out.
    Hence "Yes." gives "yes" (right) and "Yes, because ..." gives
    "yes because ..." (wrong).
    """
    return _remove_punctuation(text).strip()


# ---------------------------------------------------------------------------
# Correctness (the original evaluation's test)
# ---------------------------------------------------------------------------

# A run of closing brackets, possibly with spaces between them: ") ] >".
_CLOSING_RUN = re.compile(r"[)\]}>][)\]}> ]*")


def dyck_correct(prediction: str, target: str) -> bool:
    """The last run of closing brackets must equal the target, spaces included."""
    runs = _CLOSING_RUN.findall(prediction.lower().strip())
    return bool(runs) and runs[-1].strip() == target.lower().strip()


def word_sorting_correct(prediction: str, target: str, *, strip_lines: bool = False) -> bool:
    """Accept the sorted words in any of three layouts, as the original evaluation does.

    (a) the lines of the reply that hold a single word, in order;
    (b) the whole reply split on spaces;
    (c) one line of the reply split on spaces.

    Fidelity quirk kept by default: in (c) the lines are not stripped, as in the
    original whose strip had no effect, so a line with trailing spaces fails.
    ``strip_lines=True`` is the lenient variant with that strip made effective.
    """
    prediction = prediction.lower().strip()
    words = target.lower().strip().split(" ")
    lines = prediction.split("\n")

    single_word_lines = [line.strip() for line in lines if line.strip() and " " not in line.strip()]
    if single_word_lines == words:  # (a)
        return True
    if prediction.split(" ") == words:  # (b)
        return True
    for line in lines:  # (c)
        if strip_lines:
            line = line.strip()
        if line.split(" ") == words:
            return True
    return False


def _unbracket(text: str) -> str:
    """Turn "(b)" into "b"; leave anything else unchanged."""
    if len(text) == 3 and text[0] == "(" and text[2] == ")" and text[1].isalpha():
        return text[1]
    return text


def generic_correct(prediction: str, target: str) -> bool:
    """Equality, equality without punctuation, or same truth value, as the original evaluation does.

    Fidelity quirk: removing punctuation also removes a minus sign, so "10"
    counts as right for "-10". Boolean targets (false/no/invalid and
    true/yes/valid) also accept any prediction with the same truth value,
    including "0" and "1" and words from another pair ("valid" for "yes").
    """
    prediction = _unbracket(prediction.lower().strip())
    target = _unbracket(target.lower().strip())
    if prediction == target:
        return True
    if _remove_punctuation(prediction) == _remove_punctuation(target):
        return True
    if target in _TRUTH_OF_TARGET and prediction in _TRUTH_OF_PREDICTION:
        return _TRUTH_OF_PREDICTION[prediction] == _TRUTH_OF_TARGET[target]
    return False


def truth_words(target: str) -> tuple[str, ...]:
    """The predictions generic_correct accepts for `target` by its truth value ("yes" also takes
    "true", "valid", "1"...); none for a target that is no boolean word."""
    truth = _TRUTH_OF_TARGET.get(_unbracket(target.lower().strip()))
    if truth is None:
        return ()
    return tuple(word for word, value in _TRUTH_OF_PREDICTION.items() if value == truth)


# ---------------------------------------------------------------------------
# ROUGE-L for WebNLG (the paper's metric; differences from rouge 1.0.1 in the module docstring)
# ---------------------------------------------------------------------------

_ROUGE_SCORER = None


def rouge_l(hypothesis: str, references: object) -> float:
    """ROUGE-L F of ``hypothesis`` averaged over ``references`` (a list, or one string).

    An empty hypothesis or reference list scores 0.0 instead of raising."""
    global _ROUGE_SCORER
    if isinstance(references, str):
        references = [references]
    references = [str(r) for r in references or ()]
    if not hypothesis.strip() or not references:
        return 0.0
    if _ROUGE_SCORER is None:
        from rouge_score import rouge_scorer  # imported lazily: it pulls in nltk

        _ROUGE_SCORER = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    scores = [_ROUGE_SCORER.score(reference, hypothesis)["rougeL"].fmeasure for reference in references]
    return sum(scores) / len(scores)


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
