"""The exemplar-leak detector (gpo_local/leaks.py) on real-looking cases."""

import pytest

from gpo_local.core import Example
from gpo_local.replies.leaks import COVERAGE, MIN_WORDS, NGRAM, LeakDetector, leak_references

NAVIGATE = [
    "If you follow these instructions, do you return to the starting point? Always face forward. Take 2 "
    "steps "
    "right. Take 4 steps right. Take 6 steps left.\nOptions:\n- Yes\n- No",
    "If you follow these instructions, do you return to the starting point? Take 6 steps. Turn right. Take "
    "10 "
    "steps. Turn around. Take 4 steps.\nOptions:\n- Yes\n- No",
    "If you follow these instructions, do you return to the starting point? Take 10 steps. Take 7 steps. "
    "Turn "
    "around. Take 8 steps. Take 9 steps.\nOptions:\n- Yes\n- No",
]
SENTIMENT = [
    "Review: The battery died after two days and support never answered my emails.\nIs this review "
    "positive or "
    "negative?",
    "Review: Lovely little cafe, the staff remembered my order by the second visit.\nIs this review "
    "positive or "
    "negative?",
]


@pytest.fixture
def navigate():
    return LeakDetector(NAVIGATE)


@pytest.mark.parametrize(
    "candidate",
    [
        # The case from issue 10: the optimizer restated a format example as the "prompt".
        "If you follow these instructions, do you return to the starting point? Take 6 steps. Turn right. "
        "Take 10 "
        "steps. Turn around. Take 4 steps. Options: - Yes - No",
        # An instruction followed by a copied example is still mostly the example.
        "Answer Yes or No. If you follow these instructions, do you return to the starting point? Always "
        "face "
        "forward. Take 2 steps right. Take 4 steps right.",
        # Shortened copy, different punctuation and case.
        "if you follow these instructions do you return to the starting point take 10 steps take 7 steps",
    ],
)
def test_a_restated_example_leaks(navigate, candidate):
    assert navigate.leaks(candidate)


@pytest.mark.parametrize(
    "candidate",
    [
        "Let's think step by step.",
        # Uses the task's vocabulary and one of its phrases, but is an instruction.
        "Track your position after every step and turn, then decide whether you return to the starting "
        "point; "
        "answer Yes or No.",
        "Follow these instructions carefully: add up the steps in each direction and check whether you "
        "return to "
        "the starting point.",
        # Repeats the question's fixed header, then says what to do: half of it is not copied.
        "If you follow these instructions, do you return to the starting point? Count the steps forward "
        "and back, "
        "left and right, and answer Yes only if every direction cancels out exactly.",
    ],
)
def test_an_instruction_with_the_task_vocabulary_does_not_leak(navigate, candidate):
    assert not navigate.leaks(candidate)


def test_copied_words_are_measured_against_one_reference():
    detector = LeakDetector(SENTIMENT)
    copied, total = detector.copied("The battery died after two days and support never answered my emails.")
    assert (copied, total) == (12, 12)
    assert detector.leaks("Review: Lovely little cafe, the staff remembered my order. Positive or negative?")
    assert not detector.leaks("Decide whether the review is positive or negative.")
    # Two phrases from two different reviews are not one copied example.
    assert detector.copied("the battery died after two days; the staff remembered my order by")[0] == 6


def test_short_quotes_are_below_the_minimum():
    detector = LeakDetector(["Options: (A) red (B) blue (C) green (D) yellow"])
    assert NGRAM == 5 and MIN_WORDS == 8 and COVERAGE == 0.5
    assert not detector.leaks("(A) red (B) blue")  # 6 words, all copied, but short
    assert not detector.leaks("Options: (A) red (B) blue (C) green")  # 7 words
    assert detector.leaks("Options: (A) red (B) blue (C) green (D) yellow")


def test_references_are_exemplar_inputs_targets_and_questions():
    exemplars = [Example("f1", "question one", "a long target text of an example")]
    dev = (Example("d1", "dev question", "x"),)
    assert leak_references(exemplars, dev, ()) == [
        "question one",
        "a long target text of an example",
        "dev question",
    ]


def test_references_of_examples_with_several_accepted_answers():
    """A tuple target (the built-in antonyms) is referenced by the answer shown to the optimizer."""
    from gpo_local.core import Example
    from gpo_local.replies.leaks import leak_references

    assert leak_references([Example("f", "big", ("small", "little"))], [Example("e", "hot", ("cold",))]) == [
        "big",
        "small",
        "hot",
    ]
