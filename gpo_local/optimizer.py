"""The GPO loop (GPO_SPEC 1.5), its selection rule and final selection, and resume.

One step: read the budget from the schedule, retrieve the direction from the trajectory,
render the meta-prompt, sample C candidates with per-candidate seeds, parse and de-duplicate
them in order, score the new ones on the dev split in one evaluator call, record every
candidate, select the next prompt, append it to the trajectory.

Decisions (GPO_SPEC section 8):
- 8.4 the next prompt is the best pool member never selected before (GPO always moves, even
  to a worse prompt); p0 counts as selected; the current prompt is in the pool with its real
  dev score (never a 0.0 placeholder), so the fallback (everything already selected) can stay;
- 8.5 the final prompt is the trajectory entry with the best dev score, ties to the earliest;
- 8.6 p0 is registered as seen; candidates are de-duplicated in order; seeds are explicit;
- 8.13 no train-batch pass without a gradient; the test split is scored for p0 and the final
  prompt only.

State lives only in the run's trajectory.jsonl, as records of three kinds: `init` (p0), one
`candidate` per candidate of a step, and `step` (the chosen prompt) which marks the step
complete. Resume keeps the records up to the last complete step and replays them; the
candidate seeds depend only on (seed, task, step, index), and a memo cache makes the replayed
generations free, so a resumed run ends with the same trajectory as an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import asdict, dataclass, field
from typing import Callable

from .backends import LLM
from .core import Candidate, Example, RunResult, TrajectoryEntry
from .directions import get_selector
from .errors import ConfigError
from .evaluator import Evaluator
from .runs import JsonlLog
from .schedules import make_schedule
from .tasks import Task
from .trajectory import TrajectoryIndex
from .tasks.prompting import POSITIONS
from .updates import dedupe_ordered, normalize_prompt, parse_candidate, render_update, word_edit_distance

Event = Callable[[str, dict], None]


@dataclass(frozen=True)
class GPOConfig:
    """The paper's headline configuration (GPO_SPEC 2.7) unless overridden."""

    steps: int = 18
    candidates: int = 8
    k: int = 3
    selection: str = "relevance"
    update: str = "generate-without"
    schedule: str = "cosine"  # or "none" for no step size
    lr_init: int = 50
    lr_final: int = 10
    warmup: int = 0
    format_examples: int = 3
    position: str = "Q_end"
    dev_limit: int | None = None
    test_limit: int | None = None
    test_holdout: int | None = None  # hold out the last N dev examples as test when there is no test split
    optimizer_temperature: float = 1.0
    optimizer_max_tokens: int = 512
    require_tags: bool = False
    max_prompt_words: int | None = None  # drop longer candidates (an extension, off by default)
    seed: int = 0

    def validate(self) -> None:
        for name in ("steps", "candidates"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name} must be at least 1 (got {getattr(self, name)})")
        for name in ("dev_limit", "test_limit", "test_holdout", "max_prompt_words"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be at least 1 (got {value})")
        if self.optimizer_max_tokens < 1:
            raise ConfigError(f"--optimizer-max-tokens must be at least 1 (got {self.optimizer_max_tokens})")
        if self.k < 0:
            raise ConfigError(f"--k must be >= 0 (got {self.k})")
        if self.position not in POSITIONS:
            raise ConfigError(f"--position {self.position!r} is not one of {', '.join(POSITIONS)}")
        if self.update not in ("generate-without", "edit-without"):
            raise ConfigError(f"--update {self.update!r} needs a feedback gradient, which is not available yet")
        get_selector(self.selection)
        if self.schedule != "none":
            self.make_schedule()

    def make_schedule(self):
        if self.schedule == "none":
            return None
        return make_schedule(self.schedule, initial=self.lr_init, final=self.lr_final,
                             total_steps=self.steps, warmup=self.warmup)


def candidate_seed(seed: int, task: str, step: int, index: int) -> int:
    """A seed that depends only on the run seed, the task, the step and the candidate index."""
    digest = hashlib.sha256(f"{seed}:{task}:{step}:{index}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def pick_exemplars(task: Task, count: int, seed: int) -> list[Example]:
    """The format exemplars shown in the meta-prompt: fixed for the run, drawn with an RNG of
    their own so they do not depend on other tasks (GPO_SPEC 8.6)."""
    pool = task.split("format")
    rng = random.Random(f"{seed}:{task.name}:format")
    return [pool[i] for i in sorted(rng.sample(range(len(pool)), min(count, len(pool))))]


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


@dataclass
class _State:
    trajectory: list[TrajectoryEntry] = field(default_factory=list)
    scores: dict[str, float] = field(default_factory=dict)  # normalized prompt -> dev score
    selected: set[str] = field(default_factory=set)

    def choose(self, entry: TrajectoryEntry) -> None:
        self.trajectory.append(entry)
        self.selected.add(normalize_prompt(entry.prompt))
        self.scores[normalize_prompt(entry.prompt)] = entry.dev_score


def _replay(log: JsonlLog) -> tuple[_State, list[dict]]:
    """Rebuild the state from the complete steps of a log and cut what follows them."""
    records = list(log.records())
    complete = 0
    for i, record in enumerate(records):
        if record["kind"] in ("init", "step"):
            complete = i + 1
    log.truncate_after(complete)
    records = records[:complete]
    state = _State()
    for record in records:
        if record["kind"] == "candidate":
            state.scores[normalize_prompt(record["prompt"])] = record["dev_score"]
        else:
            state.choose(TrajectoryEntry(prompt=record["prompt"], dev_score=record["dev_score"], step=record["step"]))
    return state, records


class GPO:
    def __init__(self, *, task: Task, task_llm: LLM, optimizer_llm: LLM, index: TrajectoryIndex,
                 config: GPOConfig, log: JsonlLog, initial_prompt: str | None = None,
                 on_event: Event | None = None,
                 on_progress: Callable[[int, int], None] | None = None):
        config.validate()
        self.task, self.optimizer_llm, self.index, self.config, self.log = task, optimizer_llm, index, config, log
        self.initial_prompt = task.initial_prompt if initial_prompt is None else initial_prompt
        self.evaluator = Evaluator(task_llm, task, position=config.position, on_progress=on_progress,
                                   on_event=on_event)
        self.schedule = config.make_schedule()
        self.select = get_selector(config.selection)
        self.exemplars = pick_exemplars(task, config.format_examples, config.seed)
        self.on_event = on_event or (lambda kind, data: None)
        self.optimizer_calls = 0

    def _record(self, kind: str, **data) -> None:
        self.log.append({"kind": kind, **data})

    def run(self) -> RunResult:
        cfg = self.config
        state, _ = _replay(self.log)
        if not state.trajectory:
            self.on_event("initial", {"prompt": self.initial_prompt})
            s0 = self.evaluator.score(self.initial_prompt, "eval", limit=cfg.dev_limit).score
            self._record("init", step=-1, prompt=self.initial_prompt, dev_score=s0)
            state.choose(TrajectoryEntry(prompt=self.initial_prompt, dev_score=s0, step=-1))
        else:
            self.on_event("resumed", {"completed_steps": len(state.trajectory) - 1})
        self.on_event("trajectory", {"entry": asdict(state.trajectory[-1])})
        for step in range(len(state.trajectory) - 1, cfg.steps):
            self._step(step, state)
        return self._finish(state)

    def _step(self, step: int, state: _State) -> None:
        cfg = self.config
        current = state.trajectory[-1]
        self.index.sync([e.prompt for e in state.trajectory])
        budget = self.schedule(len(state.trajectory)) if self.schedule else None
        similarities = self.index.similarities(current.prompt)
        direction = self.select(state.trajectory, cfg.k, similarities)
        meta = render_update(method=cfg.update, history=direction, current=current.prompt,
                             exemplars=self.exemplars, position=cfg.position, budget=budget)
        self.on_event("step", {"step": step, "steps": cfg.steps, "budget": budget})
        seeds = [candidate_seed(cfg.seed, self.task.name, step, j) for j in range(cfg.candidates)]
        replies = self.optimizer_llm.generate([meta] * cfg.candidates, max_tokens=cfg.optimizer_max_tokens,
                                              temperature=cfg.optimizer_temperature, seeds=seeds,
                                              stop=("<END>",))
        self.optimizer_calls += len(replies)
        parsed = [parse_candidate(r, require_tags=cfg.require_tags) for r in replies]
        too_long = 0
        if cfg.max_prompt_words:
            too_long = sum(p is not None and len(p.split()) > cfg.max_prompt_words for p in parsed)
            parsed = [p if p is None or len(p.split()) <= cfg.max_prompt_words else None for p in parsed]
        distinct = dedupe_ordered(parsed)
        new = [p for p in distinct if normalize_prompt(p) not in state.scores]
        self.on_event("candidates", {"step": step, "replies": len(replies), "usable": len(distinct),
                                     "new": len(new), "dropped": parsed.count(None), "too_long": too_long})
        new_scores = {p: r.score for p, r in zip(new, self.evaluator.evaluate(new, "eval", limit=cfg.dev_limit))}
        pool = [(current.prompt, current.dev_score)]
        for prompt in distinct:
            is_new = prompt in new_scores
            score = new_scores[prompt] if is_new else state.scores[normalize_prompt(prompt)]
            candidate = Candidate(prompt=prompt, dev_score=score, step=step, parent=current.prompt, budget=budget,
                                  edit_distance=word_edit_distance(current.prompt, prompt), new=is_new)
            self._record("candidate", **asdict(candidate))
            state.scores[normalize_prompt(prompt)] = score
            pool.append((prompt, score))
        prompt, score = select_next(pool, state.selected)
        self._record("step", step=step, prompt=prompt, dev_score=score, budget=budget, meta_prompt=meta)
        state.choose(TrajectoryEntry(prompt=prompt, dev_score=score, step=step))
        self.on_event("chosen", {"step": step, "prompt": prompt, "dev_score": score,
                                 "best": max(e.dev_score for e in state.trajectory)})

    def _finish(self, state: _State) -> RunResult:
        cfg = self.config
        self.index.sync([e.prompt for e in state.trajectory])
        initial, final = state.trajectory[0], final_choice(state.trajectory)
        initial_test = final_test = None
        results = [None]
        if "test" in self.task.splits:
            prompts = [initial.prompt] if final.prompt == initial.prompt else [initial.prompt, final.prompt]
            results = self.evaluator.evaluate(prompts, "test", limit=cfg.test_limit)
            initial_test, final_test = results[0].score, results[-1].score
        else:
            self.on_event("warning", {"message": f"task {self.task.name!r} has no test split: test scores skipped"})
        return RunResult(initial=initial, final=final, initial_test=initial_test, final_test=final_test,
                         trajectory=tuple(state.trajectory), initial_test_result=results[0],
                         final_test_result=results[-1])
