"""Error bars of one run's scores, for result.json, `optimize`'s summary, `show` and the report.

Questions are the unit: a dev or test score is the mean of its per-question outcomes and gets
their standard error (standard_error); the gain of the final prompt over the initial one
on the test split gets a paired percentile-bootstrap interval over the test questions, each
question keeping its pair of outcomes (paired_bootstrap_interval). The bootstrap always
draws from seed 0, whatever the run's seed, so the interval is a function of the outcomes alone:
`show` and `report` recompute the same interval from an older result.json's test outcomes.

Scores stay fractions in [0, 1] here, as in result.json; the text functions show points (0-100).
"""

from __future__ import annotations

from typing import Mapping, Sequence

from gpo_local.app.formatting import percent
from gpo_local.replies.parsing import normalize_prompt
from gpo_local.stats import CONFIDENCE, paired_bootstrap_interval, standard_error
from gpo_local.tasks.families import ROUGE_L

BOOTSTRAP_SEED = 0
# result.json keys added by `error_bars` (the scores' own keys stay as they were).
KEYS = (
    "initial_dev_se",
    "final_dev_se",
    "initial_test_se",
    "final_test_se",
    "test_gain",
    "test_gain_ci",
    "test_gain_questions",
)


def binary_rule(rule) -> bool:
    """Whether a task's answer rule scores 0 or 1 (every family but ROUGE-L; a user's metric
    callable may return fractions)."""
    return getattr(rule, "family", None) not in (None, ROUGE_L)


def binary_standard_error(score: float, questions: int) -> float | None:
    """The standard error of a mean of `questions` 0/1 outcomes whose mean is `score`: what
    standard_error gives on those outcomes (which only their count of ones determines)."""
    if questions < 2:
        return None
    ones = round(score * questions)
    return standard_error([1.0] * ones + [0.0] * (questions - ones))


def dev_standard_error(
    outcomes: Mapping[str, float] | None, score: float, questions: int, binary: bool
) -> float | None:
    """A dev score's standard error: from its recorded per-question outcomes (example id ->
    score) when the run has them, else, for a 0/1 rule, from the score and the question count;
    None when neither is known (a fractional metric without recorded outcomes)."""
    if outcomes and len(outcomes) == questions:
        return standard_error(list(outcomes.values()))
    return binary_standard_error(score, questions) if binary else None


def recorded_dev_outcomes(records: Sequence[Mapping], prompt: str, step: int) -> dict[str, float] | None:
    """The per-question dev scores a run recorded for the chosen prompt of `step` (-1: the
    initial prompt, from the init record; else the candidate record that scored it on the whole
    split), None when it recorded none (a run of an older gpo-local, a summarized prompt)."""
    wanted = normalize_prompt(prompt)
    for record in records:
        if step < 0 and record.get("kind") == "init":
            return record.get("dev_outcomes")
        if (
            step >= 0
            and record.get("kind") == "candidate"
            and record.get("dev_outcomes")
            and not record.get("eliminated")
            and normalize_prompt(record["prompt"]) == wanted
        ):
            return record["dev_outcomes"]
    return None


def dev_error_bars(
    records: Sequence[Mapping], initial: Mapping, final: Mapping, questions: int, binary: bool
) -> dict:
    """The dev half of `KEYS`: the standard errors of the initial and the final prompt's dev
    scores (`initial` and `final` as result.json has them: prompt, dev_score, step)."""
    return {
        f"{role}_dev_se": dev_standard_error(
            recorded_dev_outcomes(records, entry["prompt"], entry["step"]),
            entry["dev_score"],
            questions,
            binary,
        )
        for role, entry in (("initial", initial), ("final", final))
    }


def _scores(outcomes: Sequence[Mapping] | None) -> dict[str, float] | None:
    return None if outcomes is None else {o["example_id"]: float(o["score"]) for o in outcomes}


def held_out_error_bars(test_outcomes: Mapping | None) -> dict:
    """The test half of `KEYS` from result.json's `test_outcomes` ({"initial": [outcome...],
    "final": [...]}, outcomes as dicts with example_id and score): every value None where the run
    has no test outcomes. Questions are paired by example id (the initial's order)."""
    initial = _scores((test_outcomes or {}).get("initial"))
    final = _scores((test_outcomes or {}).get("final"))
    bars = {
        "initial_test_se": None,
        "final_test_se": None,
        "test_gain": None,
        "test_gain_ci": None,
        "test_gain_questions": None,
    }
    if not initial or not final:
        return bars
    paired = [question for question in initial if question in final]
    initial_values = [initial[q] for q in paired]
    final_values = [final[q] for q in paired]
    bars.update(
        initial_test_se=standard_error(list(initial.values())),
        final_test_se=standard_error(list(final.values())),
        test_gain_questions=len(paired),
    )
    if paired:
        bars["test_gain"] = (sum(final_values) - sum(initial_values)) / len(paired)
        low, high = paired_bootstrap_interval(final_values, initial_values, seed=BOOTSTRAP_SEED)
        bars["test_gain_ci"] = [low, high]
    return bars


def with_error(score: float | None, error: float | None) -> str:
    """ "67.5 ± 7.4": a score and its standard error in points; the score alone without one."""
    if score is None or error is None:
        return percent(score)
    return f"{percent(score)} ± {100 * error:.1f}"


def gain_text(bars: Mapping) -> str | None:
    """ "+70.0 points (95% CI +55.0 to +85.0, 40 questions)", None without a test gain."""
    gain, interval = bars.get("test_gain"), bars.get("test_gain_ci")
    if gain is None:
        return None
    if interval is None:
        return f"{100 * gain:+.1f} points"
    confidence = round(100 * CONFIDENCE)
    return (
        f"{100 * gain:+.1f} points ({confidence}% CI {100 * interval[0]:+.1f} to {100 * interval[1]:+.1f}, "
        f"{bars['test_gain_questions']} questions)"
    )


def run_error_bars(summary: Mapping, records: Sequence[Mapping], questions: int, binary: bool) -> dict:
    """Every key of `KEYS` for a finished run: `summary` is its result.json so far (initial,
    final, test_outcomes), `records` its trajectory records, `questions` its dev split's size."""
    return {
        **dev_error_bars(records, summary["initial"], summary["final"], questions, binary),
        **held_out_error_bars(summary.get("test_outcomes")),
    }


def result_error_bars(result: Mapping) -> dict:
    """The `KEYS` of a result.json, from its own keys where it has them (dev standard errors need
    the run's records), else recomputed from its test outcomes (a result.json of an older
    gpo-local: dev standard errors None)."""
    if all(key in result for key in KEYS):
        return {key: result[key] for key in KEYS}
    return {"initial_dev_se": None, "final_dev_se": None, **held_out_error_bars(result.get("test_outcomes"))}
