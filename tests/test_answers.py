"""Table-driven tests of the answer rules (GPO_SPEC 4.3-4.5, 4.8, 8.10-8.11)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

try:
    from gpo_local.tasks import answers
except ImportError:  # running from outside the repo without an install
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from gpo_local.tasks import answers

from gpo_local.tasks.answers import BBH_TASKS, AnswerRule, rule_for, rule_for_metric
from gpo_local.tasks.families import last_option_letter
from gpo_local.tasks.grading import rouge_l, word_sorting_correct

DATA_DIR = Path("/work/shared/data")


def bbh(task: str) -> AnswerRule:
    return rule_for("bbh", task)


# ---------------------------------------------------------------------------
# Task table
# ---------------------------------------------------------------------------


def test_bbh_table_has_27_tasks_with_the_expected_family_counts():
    counts: dict[str, int] = {}
    for family in BBH_TASKS.values():
        counts[family] = counts.get(family, 0) + 1
    assert len(BBH_TASKS) == 27
    assert counts == {
        "multiple_choice": 17,
        "numeric": 2,
        "boolean": 6,
        "dyck": 1,
        "word_sorting": 1,
    }


@pytest.mark.parametrize(
    "task, family",
    [
        ("snarks", "multiple_choice"),
        ("temporal_sequences", "multiple_choice"),
        ("geometric_shapes", "multiple_choice"),
        ("tracking_shuffled_objects_seven_objects", "multiple_choice"),
        ("multistep_arithmetic_two", "numeric"),
        ("object_counting", "numeric"),
        ("sports_understanding", "boolean"),
        ("web_of_lies", "boolean"),
        ("formal_fallacies", "boolean"),
        ("dyck_languages", "dyck"),
        ("word_sorting", "word_sorting"),
    ],
)
def test_bbh_family_of_selected_tasks(task, family):
    assert BBH_TASKS[task] == family


@pytest.mark.parametrize("task", sorted(BBH_TASKS))
def test_every_bbh_task_maps_to_a_two_round_rule(task):
    rule = bbh(task)
    assert rule == AnswerRule(BBH_TASKS[task], True, None, task)
    assert isinstance(rule.followup("Q?\nOptions:\n(A) x\n(B) y"), str)


@pytest.mark.parametrize(
    "dataset, family, two_rounds, choice_range",
    [
        ("mmlu", "multiple_choice", True, "(A) and (D)"),
        ("wsc", "multiple_choice", True, "(A) and (B)"),
        ("gsm8k", "numeric", True, None),
        ("generic", "exact", False, None),
        ("MMLU", "multiple_choice", True, "(A) and (D)"),
    ],
)
def test_other_datasets(dataset, family, two_rounds, choice_range):
    rule = rule_for(dataset, "some_task")
    assert (rule.family, rule.two_rounds, rule.choice_range, rule.task) == (
        family,
        two_rounds,
        choice_range,
        "some_task",
    )


def test_rule_is_frozen():
    rule = bbh("navigate")
    with pytest.raises(AttributeError):
        rule.family = "numeric"  # type: ignore[misc]


def test_unknown_dataset_error_names_value_and_known_datasets():
    with pytest.raises(ValueError) as info:
        rule_for("squad", "x")
    message = str(info.value)
    assert "'squad'" in message
    for name in ("bbh", "mmlu", "gsm8k", "wsc", "generic"):
        assert name in message


def test_webnlg_is_single_round_rouge_l_averaged_over_references():
    rule = rule_for("webnlg", "webnlg")
    assert rule.family == "rouge_l" and not rule.two_rounds and rule.followup("q") is None
    # LCS "the cat sat" = 3 tokens: P = 3/3, R = 3/6 -> F = 2/3; the second reference shares nothing.
    assert rule.score("  The cat sat.  ", ["The cat sat on the mat.", "A dog ran."]) == pytest.approx(1 / 3)
    assert rule.score("The cat sat.", "the cat sat") == 1.0  # one reference as a string; case and "." ignored
    assert rule.normalize("  Text with CASE.  ") == "Text with CASE."  # no normalization beyond stripping


@pytest.mark.parametrize("hypothesis", ["", "   ", "...", "\n"])
def test_rouge_l_of_an_empty_hypothesis_is_zero_not_a_crash(hypothesis):
    assert rouge_l(hypothesis, ["Some reference."]) == 0.0
    assert rouge_l("Something.", []) == 0.0


def test_gsm8k_target_with_a_rationale_is_compared_by_its_final_number():
    rule = rule_for("gsm8k", "gsm8k")
    assert rule.score("The answer is 1,072.", "She pays 2 * 536 = 1072.\n#### 1,072") == 1.0
    assert rule.score("72", 72) == 1.0 and rule.score("71", 72) == 0.0


def test_metrics_by_name():
    assert rule_for_metric("number", "t").family == "numeric" and rule_for_metric("number", "t").two_rounds
    assert rule_for_metric("rouge-l", "t").family == "rouge_l"
    assert rule_for_metric("WSC", "t").choice_range == "(A) and (B)"
    with pytest.raises(ValueError, match="unknown metric 'bleu'; known metrics: exact, choice"):
        rule_for_metric("bleu", "t")


def test_unknown_bbh_task_error_names_value_and_known_tasks():
    with pytest.raises(ValueError) as info:
        rule_for("bbh", "navigation")
    message = str(info.value)
    assert "'navigation'" in message
    for task in BBH_TASKS:
        assert task in message


def test_unknown_family_is_rejected():
    with pytest.raises(ValueError, match="'essay'"):
        AnswerRule("essay", True, None, "t")


# ---------------------------------------------------------------------------
# Follow-up messages (GPO_SPEC 4.3, 8.10)
# ---------------------------------------------------------------------------

GEOMETRY_Q = (
    'This SVG path element <path d="M 1,2 L 3,4"/> draws a\nOptions:\n(A) circle\n(B) heptagon\n'
    "(C) hexagon\n(D) kite\n(E) line\n(F) octagon\n(G) pentagon\n(H) rectangle\n(I) sector\n"
    "(J) triangle\n(K) ellipse"
)


@pytest.mark.parametrize(
    "question, letter",
    [
        (GEOMETRY_Q, "K"),
        ("Which is right?\nOptions:\n(A) yes\n(B) no\n(C) maybe", "C"),
        # Option lines win over a later "(X)" inside an option's text.
        ("Pick one:\n(A) see (Z) below\n(B) other", "B"),
        # Indented option lines still count.
        ("Pick one:\n  (A) a\n  (B) b\n  (C) c", "C"),
        # No option line: the last "(X)" anywhere.
        ("Choose (A) red, (B) blue or (E) green.", "E"),
        # Nothing at all: the default, never a crash.
        ("How many legs does a spider have?", "D"),
        ("", "D"),
        (None, "D"),
    ],
)
def test_last_option_letter(question, letter):
    assert last_option_letter(question) == letter


def test_mc_followup_range_comes_from_the_question():
    message = bbh("geometric_shapes").followup(GEOMETRY_Q)
    assert "(A) and (K)" in message
    message = bbh("hyperbaton").followup("Which order?\nOptions:\n(A) x\n(B) y")
    assert "(A) and (B)" in message


def test_fixed_choice_ranges_ignore_the_question():
    assert "(A) and (D)" in rule_for("mmlu", "anatomy").followup(GEOMETRY_Q)
    assert "(A) and (B)" in rule_for("wsc", "wsc").followup(GEOMETRY_Q)


@pytest.mark.parametrize(
    "task, words",
    [
        ("boolean_expressions", ('"True"', '"False"')),
        ("formal_fallacies", ('"valid"', '"invalid"')),
        ("navigate", ('"Yes"', '"No"')),
        ("causal_judgement", ('"Yes"', '"No"')),
        ("sports_understanding", ('"Yes"', '"No"')),
        ("web_of_lies", ('"Yes"', '"No"')),
    ],
)
def test_boolean_followups_name_the_answer_words(task, words):
    message = bbh(task).followup("Q")
    for word in words:
        assert word in message


@pytest.mark.parametrize(
    "rule, phrase",
    [
        (rule_for("bbh", "object_counting"), "single number"),
        (rule_for("gsm8k", "gsm8k"), "single number"),
        (rule_for("bbh", "dyck_languages"), "closing brackets"),
        (rule_for("bbh", "word_sorting"), "sorted words"),
    ],
)
def test_other_followups(rule, phrase):
    assert phrase in rule.followup("Q")


def test_single_round_rule_has_no_followup():
    assert rule_for("generic", "x").followup("Q") is None
    assert AnswerRule("boolean", False, None, "navigate").followup("Q") is None


# ---------------------------------------------------------------------------
# Multiple choice
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, normalized",
    [
        ("(B)", "(b)"),
        ("The answer is (C).", "(c)"),
        # First bracketed letter wins (fidelity), even when a later one is meant.
        ("(A) is wrong, so I pick (D)", "(a)"),
        ("Among (A) and (F), I choose (B).", "(a)"),
        # Cue first, then the first bracket of what follows it.
        ("Options (A) or (B)... the answer is (B). Not (A).", "(b)"),
        ("B", "b"),
        ("  The correct option is: (E) line", "(e)"),
    ],
)
def test_mc_normalize(raw, normalized):
    assert bbh("geometric_shapes").normalize(raw) == normalized


@pytest.mark.parametrize(
    "raw, target, expected",
    [
        ("(B)", "(B)", True),
        ("The answer is (B).", "(B)", True),
        ("b", "(B)", True),
        ("B.", "(B)", True),
        ("(A) is wrong, so I pick (B)", "(B)", False),
        ("(C)", "(B)", False),
        # The odd ruin_names target that is option text, not a letter.
        ("dearth, wind, & fire", "dearth, wind, & fire", True),
    ],
)
def test_mc_score(raw, target, expected):
    assert bbh("ruin_names").score(raw, target) == (1.0 if expected else 0.0)


@pytest.mark.parametrize("dataset", ["mmlu", "wsc"])
def test_mc_datasets_score_bracketed_targets(dataset):
    rule = rule_for(dataset, "t")
    assert rule.score("I think the answer is (A).", "(A)") == 1.0
    assert rule.score("I think the answer is (A).", "(B)") == 0.0


# ---------------------------------------------------------------------------
# Numeric
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, normalized",
    [
        ("42", "42"),
        ("There are twelve apples", "12"),
        ("The answer is five", "5"),
        # Number words only as whole tokens (fidelity): "five." is not one.
        ("The answer is five.", "five."),
        ("3 + 4 = 7", "7"),
        ("2 * 3 = 6 apples", "6"),
        ("It costs $1,250.", "1250"),
        ("Total: €30 or £40", "40"),
        ("50% of them", "50"),
        ("17.6", "18"),
        ("2.5", "2"),  # round half to even
        ("3.5", "4"),
        ("-0.4", "0"),
        ("The result is -1343.", "-1343"),
        ("-10", "-10"),
        # Answer indicated: the first number after the cue.
        ("The answer is 12, not 15.", "12"),
        # No cue: the last number.
        ("I first got 12, then fixed it to 15.", "15"),
        ("The final result is: 7 then 9", "7"),
        ("He is the 42nd", "42"),
        ("A 5-year plan", "5"),
        ("#### 42", "42"),
        ("Step 1... #### 1,000", "1000"),
        ("12/5", "5"),  # not a float: last run of digits
        ("no number here", "no number here"),
        ("1e999", "999"),  # overflowing float: last run of digits
    ],
)
def test_numeric_normalize(raw, normalized):
    assert bbh("object_counting").normalize(raw) == normalized


@pytest.mark.parametrize(
    "raw, target, expected",
    [
        ("The answer is 17.6", "18", True),
        ("twelve", "12", True),
        ("The answer is -20.", "-20", True),
        ("The answer is 20.", "-20", True),  # punctuation removal drops "-" (fidelity)
        ("The answer is 21.", "-20", False),
        ("7", 7, True),  # non-str target
        ("2.5", "3", False),
    ],
)
def test_numeric_score(raw, target, expected):
    assert bbh("multistep_arithmetic_two").score(raw, target) == (1.0 if expected else 0.0)


def test_gsm8k_marker_and_int_targets():
    rule = rule_for("gsm8k", "gsm8k")
    assert rule.normalize("so 6 * 7 = 42\n#### 42") == "42"
    assert rule.score("#### 42", 42) == 1.0
    assert rule.score("#### 42", 41) == 0.0


# ---------------------------------------------------------------------------
# Boolean
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, normalized",
    [
        ("Yes.", "yes"),
        ("  No!  ", "no"),
        ("Yes, because the man walked back.", "yes because the man walked back"),
        ("The answer is: True", "true"),
        ("The answer: Yes", "yes"),
        # Case-sensitive cue test on the raw text: "Answer: " is not a cue.
        ("Answer: Yes", "answer yes"),
        ("The argument is: invalid.", "invalid"),
    ],
)
def test_boolean_normalize(raw, normalized):
    assert bbh("navigate").normalize(raw) == normalized


@pytest.mark.parametrize(
    "task, raw, target, expected",
    [
        ("navigate", "Yes.", "Yes", True),
        ("navigate", "Yes, because it returns.", "Yes", False),  # dead prefix check
        ("navigate", "No", "Yes", False),
        ("sports_understanding", "Yes", "yes", True),
        ("sports_understanding", "true", "yes", True),
        ("sports_understanding", "1", "yes", True),
        ("sports_understanding", "0", "no", True),
        ("sports_understanding", "0", "yes", False),
        ("boolean_expressions", "False", "False", True),
        ("boolean_expressions", "no", "False", True),
        ("boolean_expressions", "1", "False", False),
        ("formal_fallacies", "valid", "valid", True),
        ("formal_fallacies", "invalid", "valid", False),
        ("formal_fallacies", "yes", "valid", True),  # cross-vocabulary truth match
        ("web_of_lies", "Answer: Yes", "Yes", False),  # case-sensitive cue quirk
        ("causal_judgement", "The answer is No.", "No", True),
    ],
)
def test_boolean_score(task, raw, target, expected):
    assert bbh(task).score(raw, target) == (1.0 if expected else 0.0)


def test_truth_mapping_needs_a_boolean_target():
    rule = bbh("object_counting")
    assert rule.is_correct("1", "1") is True
    assert rule.is_correct("true", "1") is False


# ---------------------------------------------------------------------------
# Dyck languages
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, target, expected",
    [
        (") ]", ") ]", True),
        ("The closing brackets are: ) ]", ") ]", True),
        ("The answer is ) ] >.", ") ] >", True),
        ("> ) ] is the answer", "> ) ]", True),
        # Spacing must match the target exactly.
        (")]", ") ]", False),
        # The last run counts, not the first.
        ("First ] then ) >", ") >", True),
        ("First ) > then ]", ") >", False),
        ("No brackets needed", ")", False),
        (">", ">", True),
    ],
)
def test_dyck_score(raw, target, expected):
    assert bbh("dyck_languages").score(raw, target) == (1.0 if expected else 0.0)


# ---------------------------------------------------------------------------
# Word sorting
# ---------------------------------------------------------------------------

TARGET_WORDS = "apple banana cherry"


@pytest.mark.parametrize(
    "raw, expected",
    [
        # (a) single-word lines
        ("apple\nbanana\ncherry", True),
        ("Sorted:\napple\nbanana\ncherry", False),  # "Sorted:" is a one-word line too
        ("Here they are\napple\nbanana\ncherry", True),
        # (b) the whole reply split on spaces
        ("Apple Banana Cherry", True),
        ("apple cherry banana", False),
        # (c) one line split on spaces
        ("Here is the list:\napple banana cherry\nDone.", True),
        # (c) keeps the original no-op strip: trailing spaces on a line fail
        ("Here is the list:\napple banana cherry  \nDone.", False),
        # cue cutting happens first
        ("The sorted words are: apple banana cherry", True),
    ],
)
def test_word_sorting_score(raw, expected):
    assert bbh("word_sorting").score(raw, TARGET_WORDS) == (1.0 if expected else 0.0)


def test_word_sorting_lenient_variant_strips_lines():
    reply = "here is the list:\napple banana cherry  \ndone."
    assert word_sorting_correct(reply, TARGET_WORDS) is False
    assert word_sorting_correct(reply, TARGET_WORDS, strip_lines=True) is True


# ---------------------------------------------------------------------------
# Generic exact match
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, target, normalized, expected",
    [
        ("  Paris  ", "paris", "Paris", True),
        ("Paris.", "Paris", "Paris.", True),
        ("The answer is Paris", "Paris", "The answer is Paris", False),
        ("(b)", "b", "(b)", True),
        ("true", "Yes", "true", True),
    ],
)
def test_generic(raw, target, normalized, expected):
    rule = rule_for("generic", "qa")
    assert rule.normalize(raw) == normalized
    assert rule.score(raw, target) == (1.0 if expected else 0.0)


# ---------------------------------------------------------------------------
# Real data sanity check: every gold answer, fed back, is judged correct
# ---------------------------------------------------------------------------


def _records(path: Path):
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


def _bbh_task_dirs():
    root = DATA_DIR / "bbh"
    return sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


@pytest.mark.skipif(not (DATA_DIR / "bbh").is_dir(), reason="/work/shared/data/bbh is absent")
@pytest.mark.parametrize("task_dir", _bbh_task_dirs(), ids=lambda p: p.name)
def test_real_bbh_targets_are_judged_correct(task_dir):
    rule = bbh(task_dir.name)
    files = sorted(task_dir.glob("*.jsonl"))
    assert files
    for path in files:
        for record in _records(path):
            target = record["target"]
            assert rule.is_correct(rule.normalize(target), target), (path.name, target)
            if rule.family == "multiple_choice" and len(target) == 3 and target[0] == "(":
                # The derived range covers the gold letter.
                assert target[1] <= last_option_letter(record["input"])


@pytest.mark.skipif(not (DATA_DIR / "gsm8k").is_dir(), reason="/work/shared/data/gsm8k is absent")
def test_real_gsm8k_solutions_normalize_to_their_answer():
    rule = rule_for("gsm8k", "gsm8k")
    for path in sorted((DATA_DIR / "gsm8k").glob("*.jsonl")):
        for record in _records(path):
            assert rule.score(record["solution"], record["output"]) == 1.0, record["solution"]
            assert rule.score(str(record["output"]), record["output"]) == 1.0


@pytest.mark.skipif(not (DATA_DIR / "mmlu").is_dir(), reason="/work/shared/data/mmlu is absent")
def test_real_mmlu_and_wsc_targets_are_judged_correct():
    cases = [("mmlu", p) for p in sorted((DATA_DIR / "mmlu").glob("*/eval.jsonl"))]
    cases.append(("wsc", DATA_DIR / "wsc" / "eval.jsonl"))
    for dataset, path in cases:
        if not path.is_file():
            continue
        rule = rule_for(dataset, path.parent.name)
        last = "D" if dataset == "mmlu" else "B"
        for record in _records(path):
            assert rule.score(record["output"], record["output"]) == 1.0
            assert last_option_letter(record["input"]) == last


def test_module_exports():
    for name in ("BBH_TASKS", "AnswerRule", "rule_for"):
        assert hasattr(answers, name)
