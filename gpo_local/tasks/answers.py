"""Answer rules: the round-2 follow-up, answer normalization and correctness.

This module decides, for one task, how the task model's reply is turned into a
0/1 score (GPO_SPEC sections 4.3, 4.4, 4.5 and 4.8):

* ``AnswerRule.followup(question)`` gives the second user message that asks the
  model to restate its answer in a parseable form (two-round extraction);
* ``AnswerRule.normalize(raw)`` turns the model's reply into a short answer;
* ``AnswerRule.is_correct(prediction, target)`` compares it with the gold answer;
* ``AnswerRule.score(raw, target)`` chains the last two and returns 1.0 or 0.0.

``rule_for(dataset, task)`` builds the rule for a dataset/task pair.

The parsing reproduces the original GPO evaluation on purpose (GPO_SPEC 8.11),
so that scores stay comparable with the paper, quirks included. Each kept quirk
and each deliberate change is named where it happens; in short:

Fixes applied (GPO_SPEC section 8):
  * 8.10 - the multiple-choice range "(A) and (X)" is computed from the question
    text (its last option line), not from a line index of the user message.
    MMLU keeps the constant "(A) and (D)" and WSC "(A) and (B)".

Fidelity quirks kept (GPO_SPEC 8.11):
  * the primary answer cues are chosen by a case-sensitive test on the raw text
    ("Answer: Yes" does not select them, "The answer: Yes" does);
  * multiple choice keeps the first bracketed letter of the reply;
  * number words are replaced only when they are whole space-separated tokens
    ("five" becomes "5", "five." does not);
  * numbers are rounded half-to-even ("2.5" -> "2", "17.6" -> "18");
  * the boolean "first word is a boolean word" check of the original never
    fires, so it is not implemented: "Yes." is right, "Yes, because ..." wrong;
  * word_sorting rule (c) compares unstripped lines, so a line with trailing
    spaces does not match (``word_sorting_correct(..., strip_lines=True)`` is
    the lenient variant, not used by the rules);
  * "equal after removing punctuation" also removes a minus sign, so the
    prediction "10" counts as correct for the target "-10";
  * boolean targets match by truth value across vocabularies ("true", "1" and
    "valid" are all right for "yes").

Own decisions where the specification is silent:
  * the GSM8K marker "#### " is applied before the answer cues;
  * a numeric reply without any digit token is left as it is (it cannot match);
  * a number too large for a float falls back to its last run of digits, and
    rounding goes through ``int`` so that "-0.4" becomes "0", not "-0";
  * targets that are not strings (GSM8K ints) are converted with ``str()``;
  * the truth-value match depends on the target alone, so it applies to every
    family that reaches the generic comparison (including "exact");
  * dataset and task names are matched case-insensitively;
  * the follow-up messages are this project's own wording;
  * a numeric target holding a GSM8K rationale ("... #### 72", as in the
    Hugging Face ``gsm8k`` dataset) is compared by what follows its last "#### ".

WebNLG (GPO_SPEC 4.6, 8.12) is single-round and unnormalized: the stripped raw
reply is the hypothesis, and its score is the ROUGE-L F-measure *averaged* (not
maximized) over the item's references. The score uses Google's maintained
``rouge-score`` package (``RougeScorer(["rougeL"])``, no stemming) instead of
the unmaintained ``rouge==1.0.1`` the paper used. The differences, so that
numbers are read correctly (ours are not bit-for-bit comparable with the
paper's 42.51):
  * rouge-score lower-cases and keeps only ``[a-z0-9]`` runs as tokens, so it
    is case-insensitive, ignores punctuation and drops other letters ("São"
    gives the two tokens "s" and "o");
    rouge 1.0.1 splits on whitespace, is case-sensitive and keeps punctuation
    attached ("Paris." and "Paris" differ);
  * rouge-score's ``rougeL`` is the sentence-level LCS of the two token lists
    with repeated words counted; rouge 1.0.1 splits both texts into sentences on
    "." and computes the summary-level union-LCS, with its default
    ``exclusive=True`` counting *unique* words (sets);
  * an empty hypothesis (or one made of periods) scores 0 here; rouge 1.0.1
    raises ValueError, which crashed the original run (GPO_SPEC 4.6, 8.12).
"""

from __future__ import annotations

import math
import re
import string
from dataclasses import dataclass

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

_BBH_MULTIPLE_CHOICE = (
    "date_understanding",
    "disambiguation_qa",
    "geometric_shapes",
    "hyperbaton",
    "logical_deduction_three_objects",
    "logical_deduction_five_objects",
    "logical_deduction_seven_objects",
    "movie_recommendation",
    "penguins_in_a_table",
    "reasoning_about_colored_objects",
    "ruin_names",
    "salient_translation_error_detection",
    "snarks",
    "temporal_sequences",
    "tracking_shuffled_objects_three_objects",
    "tracking_shuffled_objects_five_objects",
    "tracking_shuffled_objects_seven_objects",
)
_BBH_NUMERIC = ("multistep_arithmetic_two", "object_counting")
_BBH_BOOLEAN = (
    "boolean_expressions",
    "causal_judgement",
    "formal_fallacies",
    "navigate",
    "sports_understanding",
    "web_of_lies",
)

#: The 27 BIG-Bench Hard tasks and the answer family of each (GPO_SPEC 4.8).
BBH_TASKS: dict[str, str] = {
    **{name: MULTIPLE_CHOICE for name in _BBH_MULTIPLE_CHOICE},
    **{name: NUMERIC for name in _BBH_NUMERIC},
    **{name: BOOLEAN for name in _BBH_BOOLEAN},
    "dyck_languages": DYCK,
    "word_sorting": WORD_SORTING,
}

#: Datasets ``rule_for`` knows.
DATASETS = ("bbh", "mmlu", "gsm8k", "wsc", "webnlg", "generic")

MMLU_CHOICE_RANGE = "(A) and (D)"
WSC_CHOICE_RANGE = "(A) and (B)"

#: Used when a multiple-choice question shows no "(X)" at all.
DEFAULT_LAST_OPTION = "D"

# The words each boolean task should answer with in round 2 (GPO_SPEC 4.3).
# Tasks not listed (causal_judgement, navigate, ...) answer Yes/No.
_BOOLEAN_WORDS_BY_TASK = {
    "boolean_expressions": ("True", "False"),
    "formal_fallacies": ("valid", "invalid"),
}
_DEFAULT_BOOLEAN_WORDS = ("Yes", "No")

# Truth value of each boolean word, for the cross-vocabulary match (GPO_SPEC 4.5).
_TRUTH_OF_TARGET = {
    "false": False, "no": False, "invalid": False,
    "true": True, "yes": True, "valid": True,
}
# A prediction may also be a digit.
_TRUTH_OF_PREDICTION = {**_TRUTH_OF_TARGET, "0": False, "1": True}

# ---------------------------------------------------------------------------
# Answer cues (GPO_SPEC 4.4 step 2)
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
# Family-specific normalization (GPO_SPEC 4.4 steps 3-5)
# ---------------------------------------------------------------------------

_BRACKETED_LETTER = re.compile(r"\([a-z]\)")


def _first_bracketed_letter(text: str) -> str:
    """Replace the text by its first "(x)", if any (fidelity: first, not last)."""
    match = _BRACKETED_LETTER.search(text)
    return match.group(0) if match else text


_NUMBER_WORDS = {
    "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6",
    "seven": "7", "eight": "8", "nine": "9", "ten": "10", "eleven": "11",
    "twelve": "12",
}
_CHARS_DELETED_FROM_NUMBERS = "$,%€£:"
_ASCII_DIGIT = re.compile(r"[0-9]")
_DIGIT_RUN = re.compile(r"[0-9]+")
_TRAILING_LETTERS = re.compile(r"[a-z]+$")


def _normalize_number(text: str, answer_indicated: bool) -> str:
    """Reduce a reply to one integer string, following GPO_SPEC 4.4 step 4."""
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
    """Delete punctuation and strip (GPO_SPEC 4.4 step 5).

    Fidelity quirk: the original also meant to keep only the first word when it
    is a boolean word, but that check could never succeed, so it is left out.
    Hence "Yes." gives "yes" (right) and "Yes, because ..." gives
    "yes because ..." (wrong).
    """
    return _remove_punctuation(text).strip()


def normalize_answer(raw: str, family: str) -> str:
    """Turn a model reply into a short answer for ``family`` (GPO_SPEC 4.4).

    The "exact" family (generic datasets) only strips whitespace.
    """
    if family == EXACT:
        return raw.strip()
    text, indicated = _apply_answer_cues(raw.lower().strip(), raw)
    if family == MULTIPLE_CHOICE:
        text = _first_bracketed_letter(text)
    elif family == NUMERIC:
        text = _normalize_number(text, indicated)
    elif family == BOOLEAN:
        text = _normalize_boolean(text)
    # dyck and word_sorting keep the cue-cut text; their matchers do the rest.
    return text


# ---------------------------------------------------------------------------
# Correctness (GPO_SPEC 4.5)
# ---------------------------------------------------------------------------

# A run of closing brackets, possibly with spaces between them: ") ] >".
_CLOSING_RUN = re.compile(r"[)\]}>][)\]}> ]*")


def dyck_correct(prediction: str, target: str) -> bool:
    """The last run of closing brackets must equal the target, spaces included."""
    runs = _CLOSING_RUN.findall(prediction.lower().strip())
    return bool(runs) and runs[-1].strip() == target.lower().strip()


def word_sorting_correct(prediction: str, target: str, *, strip_lines: bool = False) -> bool:
    """Accept the sorted words in any of three layouts (GPO_SPEC 4.5).

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

    single_word_lines = [
        line.strip() for line in lines if line.strip() and " " not in line.strip()
    ]
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
    """Equality, equality without punctuation, or same truth value (GPO_SPEC 4.5).

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


def answer_is_correct(prediction: str, target: object, family: str) -> bool:
    """Judge a normalized prediction against a target (any type, via ``str``); a list target
    holds several accepted answers, any of which counts."""
    if isinstance(target, (list, tuple)):  # issue 14: a JSONL target like ["yes", "y"]
        return any(answer_is_correct(prediction, t, family) for t in target)
    target = str(target)
    if family == NUMERIC and _GSM8K_MARKER in target:
        target = target.rsplit(_GSM8K_MARKER, 1)[-1].replace(",", "").strip()
    if family == DYCK:
        return dyck_correct(prediction, target)
    if family == WORD_SORTING:
        return word_sorting_correct(prediction, target)
    return generic_correct(prediction, target)


# ---------------------------------------------------------------------------
# ROUGE-L for WebNLG (GPO_SPEC 4.6; differences from rouge 1.0.1 in the module docstring)
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
# Multiple-choice range for the follow-up (GPO_SPEC 8.10)
# ---------------------------------------------------------------------------

_OPTION_LINE = re.compile(r"^\s*\(([A-Z])\)", re.MULTILINE)
_ANY_OPTION = re.compile(r"\(([A-Z])\)")


def last_option_letter(question: str | None, default: str = DEFAULT_LAST_OPTION) -> str:
    """The letter of the last option of a multiple-choice question.

    Fix of GPO_SPEC 8.10: read from the question itself, so that the instruction
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
# The rule object
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class AnswerRule:
    """How one task's answers are asked for, parsed and judged.

    ``family`` is one of ``FAMILIES``. ``two_rounds`` says whether a follow-up
    question is asked (GPO_SPEC 4.3). ``choice_range`` is a fixed range such as
    "(A) and (D)" for multiple choice, or None to derive it from each question.
    ``task`` is the task name; it picks the words of boolean follow-ups.
    """

    family: str
    two_rounds: bool
    choice_range: str | None
    task: str

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(
                f"unknown answer family {self.family!r}; known families: {', '.join(FAMILIES)}"
            )

    def followup(self, question: str) -> str | None:
        """The round-2 user message, or None for single-round rules."""
        if not self.two_rounds:
            return None
        if self.family == MULTIPLE_CHOICE:
            choices = self.choice_range or choice_range_for(question)
            return f"So, which option is your final answer? Reply with a single option between {choices}."
        if self.family == BOOLEAN:
            yes, no = _BOOLEAN_WORDS_BY_TASK.get(self.task, _DEFAULT_BOOLEAN_WORDS)
            return f'So, what is your final answer? Reply with only "{yes}" or "{no}".'
        if self.family == NUMERIC:
            return "So, what is the final answer? Reply with a single number only."
        if self.family == DYCK:
            return "Now reply with only the closing brackets you added to finish the sequence, nothing else."
        if self.family == WORD_SORTING:
            return "Now reply with only the sorted words, separated by single spaces."
        # EXACT has no follow-up wording; a two-round exact rule asks plainly.
        return "So, what is your final answer? Reply with the answer only."

    def normalize(self, raw: str) -> str:
        """The short answer parsed from a reply (GPO_SPEC 4.4); ROUGE-L only strips it."""
        if self.family == ROUGE_L:
            return raw.strip()
        return normalize_answer(raw, self.family)

    def is_correct(self, prediction: str, target: object) -> bool:
        """Whether a normalized prediction matches the target (GPO_SPEC 4.5); for ROUGE-L,
        whether it matches one reference exactly (ROUGE-L 1)."""
        return self.grade(prediction, target) == 1.0

    def grade(self, prediction: str, target: object) -> float:
        """The score of a normalized prediction: 0/1 for exact-match families, the ROUGE-L
        F averaged over the references for ROUGE_L."""
        if self.family == ROUGE_L:
            return rouge_l(prediction, target)
        return 1.0 if answer_is_correct(prediction, target, self.family) else 0.0

    def score(self, raw_answer: str, target: object) -> float:
        """The score of a raw reply: normalized, then graded."""
        return self.grade(self.normalize(raw_answer), target)


def rule_for(dataset: str, task: str) -> AnswerRule:
    """The answer rule of a dataset/task pair (GPO_SPEC 4.8).

    ``dataset`` is one of ``DATASETS``. For "bbh", ``task`` must be a key of
    ``BBH_TASKS``; for the other datasets it is only recorded. Every dataset
    uses two rounds except "generic" (exact match, single round).
    Raises ValueError naming the bad value and the known ones.
    """
    key = str(dataset).strip().lower()
    name = str(task).strip()
    if key == "bbh":
        family = BBH_TASKS.get(name.lower())
        if family is None:
            raise ValueError(
                f"unknown BBH task {task!r}; known BBH tasks: {', '.join(sorted(BBH_TASKS))}"
            )
        return AnswerRule(family, True, None, name.lower())
    if key == "mmlu":
        return AnswerRule(MULTIPLE_CHOICE, True, MMLU_CHOICE_RANGE, name)
    if key == "wsc":
        return AnswerRule(MULTIPLE_CHOICE, True, WSC_CHOICE_RANGE, name)
    if key == "gsm8k":
        return AnswerRule(NUMERIC, True, None, name)
    if key == "webnlg":
        return AnswerRule(ROUGE_L, False, None, name)
    if key == "generic":
        return AnswerRule(EXACT, False, None, name)
    raise ValueError(f"unknown dataset {dataset!r}; known datasets: {', '.join(DATASETS)}")


#: Metrics a user can name for a task of their own (``--metric``): each is an answer rule.
#: "choice" derives the option range from each question; "number", "yes-no", "choice" ask a
#: second round (GPO_SPEC 4.3); "exact" and "rouge-l" score the first reply as it is.
METRICS = {
    "exact": (EXACT, False),
    "choice": (MULTIPLE_CHOICE, True),
    "number": (NUMERIC, True),
    "yes-no": (BOOLEAN, True),
    "rouge-l": (ROUGE_L, False),
}


def rule_for_metric(metric: str, task: str) -> AnswerRule:
    """The answer rule of a metric name (``METRICS``) or of a dataset name (``DATASETS``)."""
    key = str(metric).strip().lower()
    if key in METRICS:
        family, two_rounds = METRICS[key]
        return AnswerRule(family, two_rounds, None, task)
    if key in DATASETS and key != "bbh":
        return rule_for(key, task)
    known = ", ".join([*METRICS, *(d for d in DATASETS if d != "bbh")])
    raise ValueError(f"unknown metric {metric!r}; known metrics: {known}")
