"""How a normalized answer is judged against its target, for the answer families (families.py):
the original evaluation's tests of correctness (brackets, sorted words, plain equality with its
cross-vocabulary truth values) and ROUGE-L for WebNLG.

The tests follow the original evaluation, fidelity quirks included: each quirk is named in the
docstring of the test that keeps it, and answers.py's docstring lists them all.
"""

from __future__ import annotations

import re
import string

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

_PUNCTUATION_TABLE = str.maketrans("", "", string.punctuation)


def remove_punctuation(text: str) -> str:
    return text.translate(_PUNCTUATION_TABLE)


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
    if remove_punctuation(prediction) == remove_punctuation(target):
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
# ROUGE-L for WebNLG (the paper's metric; differences from rouge 1.0.1 in answers.py's docstring)
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
