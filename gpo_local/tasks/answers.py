"""Answer rules: the round-2 follow-up, answer normalization and correctness.

This module decides, for one task, how the task model's reply is turned into a
0/1 score, as the original GPO evaluation code does:

* ``AnswerRule.followup(question)`` gives the second user message that asks the
  model to restate its answer in a parseable form (two-round extraction);
* ``AnswerRule.normalize(raw)`` turns the model's reply into a short answer;
* ``AnswerRule.is_correct(prediction, target)`` compares it with the gold answer;
* ``AnswerRule.score(raw, target)`` chains the last two and returns 1.0 or 0.0.

``rule_for(dataset, task)`` builds the rule for a dataset/task pair.

The parsing reproduces the original GPO evaluation on purpose,
so that scores stay comparable with the paper, quirks included. Each kept quirk
and each deliberate change is named where it happens; in short:

Fixes applied:
  * the multiple-choice range "(A) and (X)" is computed from the question
    text (its last option line), not from a line index of the user message.
    MMLU keeps the constant "(A) and (D)" and WSC "(A) and (B)".

Fidelity quirks kept:
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

WebNLG (the paper's ROUGE-L metric) is single-round and unnormalized: the stripped raw
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
    raises ValueError, which crashed the original run.
"""

from __future__ import annotations

from dataclasses import dataclass

from gpo_local.tasks.families import (
    BOOLEAN,
    DYCK,
    EXACT,
    FAMILIES,
    FAMILY_RULES,
    MULTIPLE_CHOICE,
    NUMERIC,
    ROUGE_L,
    WORD_SORTING,
)

# ---------------------------------------------------------------------------
# Task tables
# ---------------------------------------------------------------------------

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

#: The 27 BIG-Bench Hard tasks and the answer family of each (as the original evaluation treats them).
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


# ---------------------------------------------------------------------------
# The rule object
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class AnswerRule:
    """How one task's answers are asked for, parsed and judged (the Rule protocol, rules.py).

    ``family`` is one of ``FAMILIES`` (its functions are ``families.FAMILY_RULES[family]``).
    ``two_rounds`` says whether a follow-up question is asked (two-round extraction).
    ``choice_range`` is a fixed range such as "(A) and (D)" for multiple choice, or None to
    derive it from each question. ``task`` is the task name; it picks the words of boolean
    follow-ups.
    """

    family: str
    two_rounds: bool
    choice_range: str | None
    task: str

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"unknown answer family {self.family!r}; known families: {', '.join(FAMILIES)}")

    def followup(self, question: str) -> str | None:
        """The round-2 user message, or None for single-round rules."""
        if not self.two_rounds:
            return None
        return FAMILY_RULES[self.family].followup(self.task, self.choice_range, question)

    def normalize(self, raw: str) -> str:
        """The short answer parsed from a reply (the original normalization); ROUGE-L only strips it."""
        return FAMILY_RULES[self.family].normalize(raw)

    def is_correct(self, prediction: str, target: object) -> bool:
        """Whether a normalized prediction matches the target (the original correctness test); for ROUGE-L,
        whether it matches one reference exactly (ROUGE-L 1)."""
        return self.grade(prediction, target) == 1.0

    def grade(self, prediction: str, target: object) -> float:
        """The score of a normalized prediction: 0/1 for exact-match families, the ROUGE-L
        F averaged over the references for ROUGE_L."""
        return FAMILY_RULES[self.family].grade(prediction, target)

    def score(self, raw_answer: str, target: object) -> float:
        """The score of a raw reply: normalized, then graded."""
        return self.grade(self.normalize(raw_answer), target)

    def grade_example(self, prediction: str, example) -> float:
        """The Rule protocol's grading (tasks/rules.py): the example's target decides."""
        return self.grade(prediction, example.target)


def rule_for(dataset: str, task: str) -> AnswerRule:
    """The answer rule of a dataset/task pair (the original evaluation's per-dataset settings).

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
            raise ValueError(f"unknown BBH task {task!r}; known BBH tasks: {', '.join(sorted(BBH_TASKS))}")
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
#: second round (two-round extraction); "exact" and "rouge-l" score the first reply as it is.
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
