"""Racing a step's new candidates on the dev split: the statistics and the schedule.

Scoring every candidate on every dev question is almost all of a run's time, yet most
candidates are clearly worse than the step's best after a handful of questions. Racing scores
the candidates on growing prefixes of the dev split, in one fixed seeded order, and after each
round drops the candidates that can no longer be chosen: those a paired bound against the
round's leader (the best partial score, ties to the earliest) says are worse at error level
`error`. Survivors go on to the whole split, so the chosen prompt's dev score is always its
full-dev score, and the leader is never dropped: at least one new candidate, never selected
before, survives, which is all GPO's selection rule (best never-selected candidate) and the
baselines' elitist rule need.

The bounds, per candidate i against the leader L on the n questions seen of N, with
d_j = score_L(j) - score_i(j):
- certain: sum(d) > N - n: i cannot catch up even by winning every remaining question;
- 0/1 scores (every exact-match family): the exact one-sided sign test on the discordant pairs,
  P(Binomial(b + c, 1/2) >= b) <= error / (rounds - 1), b the questions only L got right, c
  those only i got right (the prefix is a sample without replacement of the split, which
  concentrates more than the binomial, so the test is conservative);
- fractional scores (ROUGE-L): Hoeffding-Serfling for sampling without replacement,
  mean(d) > 2 * sqrt((1 - (n - 1) / N) * ln((rounds - 1) / error) / (2 n)), 2 being the range of d.
The union bound over the rounds (error split evenly between the rounds that can eliminate)
keeps a truly better-or-equal candidate from being dropped with probability above `error`.

The order of the questions: a seeded shuffle of the split (`random`), or that shuffle re-sorted
so that the questions on which the prompts scored so far in the run disagree most come first
(`informative`, the default). A question every earlier prompt got right (or wrong) is
concordant for most new candidates too, and concordant questions tell no two candidates apart:
the sign test only counts the discordant ones, so seeing the likely discordant questions first
gives early rounds most of the evidence the whole split holds. Replayed on recorded runs
(benchmarks/racing.py, error 0.05, 4 rounds), it raised the dev pairs saved from 1.39x to 1.81x
at 8 candidates x 48 questions and from 1.41x to 1.49x on the main job's 40, with the same
choices as full scoring in every replay. The price: the prefix is no longer a random sample of the split, so
`error` is a nominal level there, not a guarantee; `random` keeps the guarantee. The order of a
step depends only on the dev scores recorded before it, so a resumed step races on the same
order. The first step has one scored prompt (the initial one) and races on the shuffle.

Everything here is a pure function of its arguments except `race_prompts`, which drives an
evaluator (any object with `evaluate_examples`) through the rounds.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

from gpo_local.core import EvalResult, Outcome
from gpo_local.errors import ConfigError, OptionValue
from gpo_local.runs import faults
from gpo_local.tasks.families import ROUGE_L

DEFAULT_ERROR = 0.05
DEFAULT_ROUNDS = 4
ORDERS = ("informative", "random")
DEFAULT_ORDER = "informative"


@dataclass(frozen=True)
class RacingConfig:
    error: float = DEFAULT_ERROR  # the chance of dropping a candidate that is not worse, per candidate
    rounds: int = DEFAULT_ROUNDS  # prefix sizes double from N / 2^(rounds-1) up to N

    def validate(self) -> None:
        if not 0 < self.error < 1:
            raise ConfigError(OptionValue("racing_error", self.error), " must be between 0 and 1, exclusive")
        if self.rounds < 1:
            raise ConfigError(OptionValue("racing_rounds", self.rounds), " must be at least 1")


def prefix_sizes(total: int, rounds: int) -> list[int]:
    """The growing prefixes, doubling up to `total`: 48 questions in 4 rounds are 6, 12, 24, 48.
    Sizes below 2 questions are skipped (nothing can be told apart on one question)."""
    sizes = [math.ceil(total / 2 ** (rounds - 1 - r)) for r in range(rounds)]
    kept: list[int] = []
    for size in sizes:
        if size >= min(2, total) and (not kept or size > kept[-1]):
            kept.append(size)
    return kept or [total]


def question_order(total: int, seed: int, task: str) -> list[int]:
    """The order in which the dev questions are raced: one seeded shuffle for the whole run, so
    every step and every resumed run races on the same prefixes."""
    order = list(range(total))
    random.Random(f"{seed}:{task}:racing").shuffle(order)
    return order


def informative_order(order: Sequence[int], history: Sequence[Mapping[int, float]]) -> list[int]:
    """`order` re-sorted by how much the prompts scored so far disagree on each question (the
    variance of their scores on it, over the prompts scored on it; none below two prompts), most
    first; ties keep their place in `order`. `history` holds one mapping question -> score per
    prompt."""

    def spread(question: int) -> float:
        values = [scores[question] for scores in history if question in scores]
        if len(values) < 2:
            return 0.0
        mean = sum(values) / len(values)
        return sum((value - mean) ** 2 for value in values) / len(values)

    place = {question: i for i, question in enumerate(order)}
    return sorted(order, key=lambda question: (-spread(question), place[question]))


def dev_order(
    example_ids: Sequence[str], seed: int, task: str, kind: str, history: Sequence[Mapping[str, float]] = ()
) -> list[int]:
    """The racing order of a step over the dev questions `example_ids` (indexes into it):
    question_order, re-sorted by informative_order for kind `informative` with `history`, the
    per-question dev scores (example id -> score) of the prompts scored so far in the run."""
    order = question_order(len(example_ids), seed, task)
    if kind == "random" or not history:
        return order
    index = {example_id: q for q, example_id in enumerate(example_ids)}
    by_question = [{index[k]: v for k, v in scores.items() if k in index} for scores in history]
    return informative_order(order, by_question)


def sign_test(leader_only: int, other_only: int) -> float:
    """One-sided exact sign test: P(X >= leader_only) for X ~ Binomial(discordant, 1/2)."""
    discordant = leader_only + other_only
    if discordant == 0:
        return 1.0
    tail = sum(math.comb(discordant, k) for k in range(leader_only, discordant + 1))
    return tail / 2**discordant


def serfling_margin(seen: int, total: int, error: float, spread: float = 2.0) -> float:
    """The Hoeffding-Serfling deviation of a mean of `seen` of `total` values of range `spread`
    sampled without replacement, exceeded with probability at most `error`."""
    shrink = max(0.0, 1 - (seen - 1) / total)
    return spread * math.sqrt(shrink * math.log(1 / error) / (2 * seen))


def can_catch_up(diffs: Sequence[float], total: int) -> bool:
    """Whether a candidate behind the leader by sum(diffs) could still finish at least level,
    winning by a full point every question not seen yet."""
    return sum(diffs) <= total - len(diffs)


def is_worse(diffs: Sequence[float], total: int, error: float, binary: bool) -> bool:
    """Whether paired differences leader - candidate on the questions seen show the candidate
    worse than the leader on the whole split, at level `error` (or for certain)."""
    if not diffs:
        return False
    if not can_catch_up(diffs, total):
        return True
    if binary:
        return sign_test(sum(d > 0 for d in diffs), sum(d < 0 for d in diffs)) <= error
    mean = sum(diffs) / len(diffs)
    return mean > serfling_margin(len(diffs), total, error)


def leader(partial: dict[int, list[float]]) -> int:
    """The candidate with the best partial sum; ties to the earliest."""
    return min(partial, key=lambda i: (-sum(partial[i]), i))


def eliminate(partial: dict[int, list[float]], total: int, error: float, binary: bool) -> list[int]:
    """The candidates (keys of `partial`, each with its scores on the same questions in the same
    order) that a round drops against its leader."""
    best = leader(partial)
    return [
        i
        for i in partial
        if i != best and is_worse([a - b for a, b in zip(partial[best], partial[i])], total, error, binary)
    ]


@dataclass(frozen=True)
class Race:
    """What racing did: each candidate's scores by question index, and the round (0-based)
    after which it was dropped, None for the survivors (scored on every question)."""

    scores: tuple[dict[int, float], ...]
    dropped_after: tuple[int | None, ...]

    @property
    def pairs(self) -> int:
        return sum(len(s) for s in self.scores)


Scorer = Callable[[Sequence[int], Sequence[int]], Sequence[Sequence[float]]]


def race(
    score: Scorer,
    candidates: int,
    order: Sequence[int],
    config: RacingConfig,
    binary: bool,
    known: dict[int, dict[int, float]] | None = None,
) -> Race:
    """Race `candidates` over the questions in `order`. `score(candidates, questions)` returns
    one row of scores per candidate, one per question, in the given orders. `known` holds
    scores already measured (candidate -> question -> score: a candidate dropped at an earlier
    step and generated again), which are not asked again."""
    total = len(order)
    sizes = prefix_sizes(total, config.rounds)
    per_round = config.error / max(1, len(sizes) - 1)
    scores: list[dict[int, float]] = [dict((known or {}).get(i, {})) for i in range(candidates)]
    dropped: list[int | None] = [None] * candidates
    alive = list(range(candidates))
    seen = 0
    for round_index, size in enumerate(sizes):
        groups: dict[tuple[int, ...], list[int]] = {}  # the questions still missing -> who misses them
        for i in alive:
            missing = tuple(q for q in order[seen:size] if q not in scores[i])
            if missing:
                groups.setdefault(missing, []).append(i)
        for questions, members in groups.items():
            for i, row in zip(members, score(members, questions)):
                scores[i].update(zip(questions, row))
        seen = size
        if size == total or len(alive) < 2:
            continue
        partial = {i: [scores[i][q] for q in order[:seen]] for i in alive}
        for i in eliminate(partial, total, per_round, binary):
            dropped[i] = round_index
        alive = [i for i in alive if dropped[i] is None]
        faults.point("race-round")  # killed between two rounds of a raced step
    return Race(scores=tuple(scores), dropped_after=tuple(dropped))


def race_prompts(
    evaluator,
    prompts: Sequence[str],
    examples: Sequence,
    split: str,
    config: RacingConfig,
    order: Sequence[int],
    binary: bool,
    known: dict[int, dict[int, float]] | None = None,
) -> list:
    """Race prompts with an evaluator; one EvalResult per prompt, in order, its outcomes in split
    order: all of them for the survivors, the ones scored before the drop for the others (whose
    score is then the partial mean, over `result.n` questions). Known scores (see `race`) come
    back as outcomes with the score only."""

    outcomes: list[dict[int, object]] = [
        {
            q: Outcome(
                example_id=examples[q].id, first_answer="", final_answer="", prediction="", score=value
            )
            for q, value in (known or {}).get(i, {}).items()
        }
        for i in range(len(prompts))
    ]

    def score(alive: Sequence[int], questions: Sequence[int]) -> list[list[float]]:
        results = evaluator.evaluate_examples(
            [prompts[i] for i in alive], [examples[q] for q in questions], split
        )
        for i, result in zip(alive, results):
            outcomes[i].update(zip(questions, result.outcomes))
        return [[o.score for o in result.outcomes] for result in results]

    race(score, len(prompts), order, config, binary, known)
    results = []
    for prompt, by_question in zip(prompts, outcomes):
        ordered = tuple(by_question[q] for q in sorted(by_question))
        results.append(
            EvalResult(
                prompt=prompt,
                split=split,
                score=sum(o.score for o in ordered) / len(ordered),
                outcomes=ordered,
            )
        )
    return results


def score_new(
    evaluator,
    task,
    config,
    prompts: Sequence[str],
    known: dict[str, dict[str, float]] | None = None,
    history: Sequence[Mapping[str, float]] = (),
) -> list:
    """The dev-split results of a step's new candidates: raced when `config.racing`, else every
    candidate on every question (one evaluator call, as before racing existed). `known` maps a
    prompt dropped at an earlier step to its recorded scores by example id: its race goes on
    from them (GPO may choose it now: it is compared with this step's candidates). `history`:
    the recorded dev scores (example id -> score) of the prompts scored before, for the order."""
    if not prompts:
        return []
    examples = task.split("eval", config.dev_limit)
    if not config.racing:
        return evaluator.evaluate_examples(prompts, examples, "eval")

    index = {e.id: q for q, e in enumerate(examples)}
    by_candidate = {
        i: {index[k]: v for k, v in (known or {}).get(p, {}).items() if k in index}
        for i, p in enumerate(prompts)
    }
    racing = RacingConfig(error=config.racing_error, rounds=config.racing_rounds)
    order = dev_order([e.id for e in examples], config.seed, task.name, config.racing_order, history)
    return race_prompts(
        evaluator,
        prompts,
        examples,
        "eval",
        racing,
        order,
        binary=task.rule.family != ROUGE_L,
        known=by_candidate,
    )


def candidate_fields(result, total: int) -> dict:
    """What a candidate record keeps of its dev scoring: every per-question score (for replays
    such as benchmarks/racing.py), how many questions are behind its score, and whether racing
    dropped it (its score is then a partial mean)."""
    return {
        "dev_outcomes": {o.example_id: o.score for o in result.outcomes},
        "dev_questions": result.n,
        "eliminated": result.n < total,
    }
