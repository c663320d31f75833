"""The optimizer state: the trajectory of chosen prompts, its record kinds, replay, the choice
of the next prompt and of the final one.

State lives only in the run's trajectory.jsonl, as records of three kinds: `init` (p0), one
`candidate` per candidate of a step, and `step` (the chosen prompt, plus what the method needs
to resume: gradient, momentum state, train batch) which marks the step complete. Every
init/step record carries `usage`, the cumulative budget spent, so counters survive a resume;
a step record also carries `drops`, its optimizer replies dropped by reason (drops.py), and,
with grammar-constrained replies, `grammar_words`, their word cap (grammar.py).
Resume keeps the records up to the last complete step and replays them.

Decisions where the original code is buggy or silent:
- the next prompt is the best pool member never selected before (GPO always moves, even
  to a worse prompt); p0 counts as selected; if all were selected, the top of the pool;
- the final prompt is the trajectory entry with the best dev score, ties to the earliest.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gpo_local.core import CANDIDATE, INIT, STEP, TrajectoryEntry
from gpo_local.replies.parsing import normalize_prompt
from gpo_local.runs import faults
from gpo_local.runs.directory import JsonlLog

COMPLETE = (INIT, STEP)  # the kinds that end a complete unit of work
# The step-record key of the real-time momentum over prompts; replay scores its prompt.
PARA_MOMENTUM_KEY = "momentum"
# candidate-record fields of racing (racing.candidate_fields): the per-question dev
# scores of every new candidate, how many questions its score covers, and whether racing dropped it.
DEV_OUTCOMES, DEV_QUESTIONS, ELIMINATED = "dev_outcomes", "dev_questions", "eliminated"


@dataclass
class TrajectoryState:
    trajectory: list[TrajectoryEntry] = field(default_factory=list)
    scores: dict[str, float] = field(default_factory=dict)  # normalized prompt -> dev score
    prompts: dict[str, str] = field(default_factory=dict)  # normalized prompt -> text, in scoring order
    selected: set[str] = field(default_factory=set)
    # normalized prompt -> the candidate record of a candidate racing dropped (a partial
    # score, not in the pool; generated again, its race goes on from the recorded outcomes)
    dropped: dict[str, dict] = field(default_factory=dict)
    # the recorded per-question dev scores (example id -> score) of every new candidate
    # scored so far, raced out or not, in scoring order: what racing's informative order reads
    dev_outcomes: list[dict[str, float]] = field(default_factory=list)

    def scored(self, prompt: str, score: float) -> None:
        key = normalize_prompt(prompt)
        self.scores[key] = score
        self.prompts.setdefault(key, prompt)

    def observed(self, candidate: dict) -> None:
        """Keep a candidate record's per-question dev scores, if it has them: the one rule for a
        live step and a replayed one, so a resumed step races on the same order."""
        if candidate.get(DEV_OUTCOMES):
            self.dev_outcomes.append(candidate[DEV_OUTCOMES])

    def choose(self, entry: TrajectoryEntry) -> None:
        self.trajectory.append(entry)
        self.selected.add(normalize_prompt(entry.prompt))
        self.scored(entry.prompt, entry.dev_score)

    def ranked(self) -> list[tuple[str, float]]:
        """Every prompt scored so far, best first; ties in scoring order."""
        return sorted(((self.prompts[k], s) for k, s in self.scores.items()), key=lambda item: -item[1])


def replay(log: JsonlLog) -> tuple[TrajectoryState, list[dict]]:
    """Rebuild the state from the complete steps of a log and cut what follows them."""
    records = list(log.records())
    complete = 0
    for i, record in enumerate(records):
        if record["kind"] in COMPLETE:
            complete = i + 1
    log.truncate_after(complete)
    faults.point("resume-truncated")
    records = records[:complete]
    state = TrajectoryState()
    for record in records:
        if record["kind"] == CANDIDATE:
            state.observed(record)
        if record["kind"] == CANDIDATE and record.get(ELIMINATED):  # a raced-out candidate: a partial score
            state.dropped[normalize_prompt(record["prompt"])] = record
        elif record["kind"] == CANDIDATE:
            state.scored(record["prompt"], record["dev_score"])
        else:
            momentum = record.get(PARA_MOMENTUM_KEY)
            if momentum and momentum.get("dev_score") is not None:
                state.scored(momentum["prompt"], momentum["dev_score"])
            state.choose(
                TrajectoryEntry(prompt=record["prompt"], dev_score=record["dev_score"], step=record["step"])
            )
    return state, records


def select_next(pool: list[tuple[str, float]], selected: set[str]) -> tuple[str, float]:
    """The best pool member never selected before; ties keep pool order; if all were selected,
    the top of the pool."""
    ranked = sorted(pool, key=lambda item: -item[1])  # stable: ties keep insertion order
    for prompt, score in ranked:
        if normalize_prompt(prompt) not in selected:
            return prompt, score
    return ranked[0]


def final_choice(trajectory: list[TrajectoryEntry]) -> TrajectoryEntry:
    best = max(entry.dev_score for entry in trajectory)
    return next(entry for entry in trajectory if entry.dev_score == best)


def last_recorded(records: list[dict], key: str):
    """The latest non-empty value of `key` in the complete records: a strategy's saved state."""
    value = None
    for record in records:
        if record["kind"] in COMPLETE and record.get(key):
            value = record[key]
    return value
