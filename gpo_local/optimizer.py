"""The optimization loop shared by every method, and GPO with all its strategy switches.

`Method` is the loop skeleton every method (GPO and the baselines of gpo_local/methods) runs:
score the initial prompt, run the planned steps while the budget limits allow, select the final
prompt, score the initial and the final prompt on the test split. A method only implements
`plan()` (the optimizer calls each step may make) and `step()`.

One GPO step (GPO_SPEC 1.5): read the budget from the schedule; with a feedback gradient, score
the current prompt on a train minibatch and ask for the problems behind its wrong answers
(optionally folded into a gradient momentum); build the direction (momentum over prompts: a
k-list of trajectory entries or a real-time summary prompt); render the meta-prompt; sample C
candidates with per-candidate seeds; parse and de-duplicate them in order; score the new ones
on the dev split in one evaluator call; record every candidate; select the next prompt; append
it to the trajectory.

Decisions (GPO_SPEC section 8):
- 8.4 the next prompt is the best pool member never selected before (GPO always moves, even
  to a worse prompt); p0 counts as selected; the current prompt is in the pool with its real
  dev score (never a 0.0 placeholder), so the fallback (everything already selected) can stay;
- 8.5 the final prompt is the trajectory entry with the best dev score, ties to the earliest;
- 8.6 p0 is registered as seen; candidates are de-duplicated in order; seeds are explicit;
- 8.13 no train-batch pass without a gradient; the test split is scored for p0 and the final
  prompt only; real-time momentum over prompts scores the *summarized* prompt (or reuses its
  known score), not the current prompt again;
- 8.18 invalid switch combinations are rejected by `GPOConfig.validate` (and, naming the
  command-line options, by settings.py) before any model loads;
- feedback gradient (GPO_SPEC 2.1): the wrong examples are the batch outcomes scoring below 1
  (for exact match: the wrong ones), in batch order, shown with the round-2 (final) answer; a
  batch without wrong answers makes no optimizer call, its gradient is a fixed sentence and the
  momentum over feedback is left as it was;
- the train minibatches are consecutive slices of a seeded shuffle of the train split (the
  original took file order, the same every epoch); the batch count follows GPO_SPEC 1.3 and the
  step's example ids are recorded in its `step` record.

State lives only in the run's trajectory.jsonl, as records of three kinds: `init` (p0), one
`candidate` per candidate of a step, and `step` (the chosen prompt, plus what the method needs
to resume: gradient, momentum, train batch) which marks the step complete. Every init/step
record carries `usage`, the cumulative budget spent, so counters survive a resume. Resume keeps
the records up to the last complete step and replays them; seeds depend only on (seed, task,
step, index), and a memo cache makes the replayed generations free, so a resumed run ends with
the same trajectory as an uninterrupted one.

Budget (see also budget.py): every generation the algorithm asks for counts, memo hits
included: the budget describes the algorithm, not the cache.
"""

from __future__ import annotations

import hashlib
import random
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Callable, Sequence

from . import faults
from .backends import LLM, WrappedLLM
from .core import Candidate, Example, RunResult, TrajectoryEntry
from .directions import GradientEntry, canonical_selection, get_selector
from .errors import ConfigError
from .evaluator import Evaluator
from .runs import JsonlLog
from .schedules import canonical_schedule, make_schedule
from .tasks import Task
from .tasks.prompting import POSITIONS
from .trajectory import TrajectoryIndex
from .updates import (UPDATE_METHODS, normalize_prompt, parse_candidate, render_feedback,
                      render_feedback_merge, render_prompt_summary, render_update, word_edit_distance)

Event = Callable[[str, dict], None]

GRADIENTS = ("none", "feedback")
MOMENTA = ("none", "para", "feedback")
MOMENTUM_UPDATES = ("k-list", "real-time")
# The GPO headline switches (GPO_SPEC 2.7); the budget of every baseline is GPO's under them.
HEADLINE_SWITCHES = dict(gradient="none", momentum="para", selection="relevance", momentum_update="k-list", k=3,
                         update="generate-without", schedule="cosine")
NO_WRONG_ANSWERS = "The current prompt answered every example of the last batch correctly."
USAGE_KEYS = ("optimizer_calls", "optimizer_tokens", "task_generations", "task_tokens", "dev_scorings", "seconds")


@dataclass(frozen=True)
class GPOConfig:
    """The run configuration of every method; the paper's headline GPO (GPO_SPEC 2.7) unless
    overridden. The strategy switches only apply to `gpo` (and are preset for `sgdm`)."""

    method: str = "gpo"
    steps: int = 18
    candidates: int = 8
    gradient: str = "none"  # none | feedback
    momentum: str = "para"  # none | para (over prompts) | feedback (over gradients)
    selection: str = "relevance"  # recency | relevance | importance (for k-list momentum)
    momentum_update: str = "k-list"  # k-list | real-time
    k: int = 3  # items in a k-list: the total count (GPO_SPEC 8.14)
    update: str = "generate-without"  # generate | edit, optionally -without the gradient section
    schedule: str = "cosine"  # none (no step size) | fixed | linear | cosine
    lr_init: int = 50
    lr_final: int = 10
    warmup: int = 0
    train_batch: int = 8  # minibatch size for the feedback gradient, APO and PE2
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
        """Check values and the combinations that crash or make no sense (GPO_SPEC 8.18).
        Messages name the command-line options."""
        for name in ("steps", "candidates", "train_batch"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be at least 1 (got {getattr(self, name)})")
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
        for option, value, known in (("--gradient", self.gradient, GRADIENTS), ("--momentum", self.momentum, MOMENTA),
                                     ("--momentum-update", self.momentum_update, MOMENTUM_UPDATES),
                                     ("--update", self.update, UPDATE_METHODS)):
            if value not in known:
                raise ConfigError(f"unknown {option} {value!r}; known: {', '.join(known)}")
        canonical_selection(self.selection)
        canonical_schedule(self.schedule)
        with_gradient = not self.update.endswith("-without")
        if with_gradient and self.gradient != "feedback":
            raise ConfigError(f"--update {self.update} shows a gradient section, which needs --gradient feedback "
                              f"(got --gradient {self.gradient}); use --update {self.update}-without instead")
        if self.gradient == "feedback" and not with_gradient and self.momentum != "feedback":
            raise ConfigError(f"--gradient feedback is never shown with --update {self.update}; "
                              f"use --update {self.update.removesuffix('-without')} or --gradient none")
        if self.momentum == "feedback" and self.gradient != "feedback":
            raise ConfigError("--momentum feedback (momentum over gradients) needs --gradient feedback "
                              f"(got --gradient {self.gradient})")
        if self.momentum == "feedback" and not with_gradient:
            raise ConfigError(f"--momentum feedback is never shown with --update {self.update}; "
                              f"use --update {self.update.removesuffix('-without')}")
        if self.momentum != "none" and self.momentum_update == "k-list" and self.k == 0:
            raise ConfigError(f"--k 0 selects nothing for --momentum {self.momentum} with --momentum-update k-list; "
                              "use --momentum none or --k 1 or more")
        self.make_schedule()

    def make_schedule(self):
        name = canonical_schedule(self.schedule)
        if name == "none":
            return None
        return make_schedule(name, initial=self.lr_init, final=self.lr_final, total_steps=self.steps,
                             warmup=self.warmup)


@dataclass(frozen=True)
class Limits:
    """Budget limits (issue 5), checked at step boundaries: a run stops before a step whose
    planned optimizer calls would exceed `max_optimizer_calls`, and before the next step once
    `max_task_tokens` tokens were generated by the task model or `time_limit` seconds passed."""

    max_optimizer_calls: int | None = None
    max_task_tokens: int | None = None
    time_limit: float | None = None


def candidate_seed(seed: int, task: str, step: int, index: int | str) -> int:
    """A seed that depends only on the run seed, the task, the step and the call's index."""
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


def train_batches(task: Task, size: int, seed: int) -> list[tuple[Example, ...]]:
    """The train minibatches: consecutive slices of a seeded shuffle of the train split; a last
    partial batch counts only when it holds at least half a batch (GPO_SPEC 1.3)."""
    examples = list(task.split("train"))
    random.Random(f"{seed}:{task.name}:train").shuffle(examples)
    full, rest = divmod(len(examples), size)
    count = max(1, full + (1 if rest >= size / 2 else 0))
    return [tuple(examples[i * size:(i + 1) * size]) for i in range(count)]


def fill(total: int, per_step: int) -> list[int]:
    """Steps of `per_step` optimizer calls within `total`, the last one partial."""
    steps = [per_step] * (total // per_step)
    return steps + [total % per_step] if total % per_step else steps


def gpo_step_costs(config: GPOConfig) -> list[int]:
    """Upper bound of GPO's optimizer calls at each step: C candidates, plus one feedback
    gradient, plus one real-time momentum update from the second step on."""
    costs = []
    for step in range(config.steps):
        cost = config.candidates + (config.gradient == "feedback")
        if config.momentum != "none" and config.momentum_update == "real-time" and step > 0:
            cost += 1
        costs.append(cost)
    return costs


def reference_calls(config: GPOConfig) -> int:
    """The optimizer-call budget of a configuration: what GPO makes under it. A baseline gets
    GPO's budget under the headline switches (baselines take no switches; SGDM is a preset)."""
    if config.method != "gpo":
        config = replace(config, method="gpo", **HEADLINE_SWITCHES)
    return sum(gpo_step_costs(config))


def within_budget(costs: Sequence[int], total: int) -> list[int]:
    """The longest prefix of `costs` whose sum fits in `total`."""
    kept, used = [], 0
    for cost in costs:
        if used + cost > total:
            break
        kept.append(cost)
        used += cost
    return kept


class CountingLLM(WrappedLLM):
    """Counts the generations requested from an LLM and the tokens of their replies (memo hits
    included). Tokens are counted with the model's tokenizer when it has one (`count_tokens`,
    looked up through wrappers), else as whitespace-separated words (the fakes)."""

    def __init__(self, llm: LLM):
        super().__init__(llm)
        self.calls = self.tokens = 0
        # Wrappers pass attribute lookups through, so this finds the model's own tokenizer.
        self._count = getattr(llm, "count_tokens", None) or (lambda text: len(text.split()))

    def generate(self, conversations, **kwargs) -> list[str]:
        replies = self.llm.generate(conversations, **kwargs)
        self.calls += len(replies)
        self.tokens += sum(self._count(r) for r in replies)
        return replies

    def generate_two_rounds(self, first, follow_up, **kwargs) -> list[tuple[str, str | None]]:
        # Passed through so the evaluator keeps the decoder's one-call two-round path
        # (backends.two_rounds) rather than falling back to two generate calls.
        from .backends import two_rounds

        pairs = two_rounds(self.llm, first, follow_up, **kwargs)
        replies = [r for pair in pairs for r in pair if r is not None]
        self.calls += len(replies)
        self.tokens += sum(self._count(r) for r in replies)
        return pairs


@dataclass
class _State:
    trajectory: list[TrajectoryEntry] = field(default_factory=list)
    scores: dict[str, float] = field(default_factory=dict)  # normalized prompt -> dev score
    prompts: dict[str, str] = field(default_factory=dict)  # normalized prompt -> text, in scoring order
    selected: set[str] = field(default_factory=set)

    def scored(self, prompt: str, score: float) -> None:
        key = normalize_prompt(prompt)
        self.scores[key] = score
        self.prompts.setdefault(key, prompt)

    def choose(self, entry: TrajectoryEntry) -> None:
        self.trajectory.append(entry)
        self.selected.add(normalize_prompt(entry.prompt))
        self.scored(entry.prompt, entry.dev_score)

    def ranked(self) -> list[tuple[str, float]]:
        """Every prompt scored so far, best first; ties in scoring order."""
        return sorted(((self.prompts[k], s) for k, s in self.scores.items()), key=lambda item: -item[1])


def _replay(log: JsonlLog) -> tuple[_State, list[dict]]:
    """Rebuild the state from the complete steps of a log and cut what follows them."""
    records = list(log.records())
    complete = 0
    for i, record in enumerate(records):
        if record["kind"] in ("init", "step"):
            complete = i + 1
    log.truncate_after(complete)
    faults.point("resume-truncated")  # issue 14
    records = records[:complete]
    state = _State()
    for record in records:
        if record["kind"] == "candidate":
            state.scored(record["prompt"], record["dev_score"])
        else:
            momentum = record.get("momentum")
            if momentum and momentum.get("dev_score") is not None:
                state.scored(momentum["prompt"], momentum["dev_score"])
            state.choose(TrajectoryEntry(prompt=record["prompt"], dev_score=record["dev_score"], step=record["step"]))
    return state, records


class Method:
    """The loop every method runs; subclasses implement `plan`, `step` and, for state beyond the
    trajectory, `restore`."""

    name = "method"
    needs_train = False  # whether steps score train minibatches
    uses_format = True  # whether meta-prompts show format exemplars

    def __init__(self, *, task: Task, task_llm: LLM, optimizer_llm: LLM, index: TrajectoryIndex,
                 config: GPOConfig, log: JsonlLog, initial_prompt: str | None = None,
                 limits: Limits = Limits(), on_event: Event | None = None,
                 on_progress: Callable[[int, int], None] | None = None,
                 clock: Callable[[], float] = time.monotonic):
        config.validate()
        self.task, self.index, self.config, self.log, self.limits = task, index, config, log, limits
        self.task_llm, self.optimizer_llm = CountingLLM(task_llm), CountingLLM(optimizer_llm)
        self.initial_prompt = self.start_prompt(task.initial_prompt if initial_prompt is None else initial_prompt)
        self.evaluator = Evaluator(self.task_llm, task, position=config.position, on_progress=on_progress,
                                   on_event=on_event)
        self.schedule = config.make_schedule()
        self.exemplars = pick_exemplars(task, config.format_examples, config.seed) if self.uses_format else []
        self.batches = train_batches(task, config.train_batch, config.seed) if self.needs_train else []
        self.on_event = on_event or (lambda kind, data: None)
        self.clock = clock
        self._seconds_before = 0.0
        self._started = clock()

    # -- what a method defines -------------------------------------------------------------

    def start_prompt(self, given: str) -> str:
        return given

    def plan(self) -> list[int]:
        return self.plan_for(self.config)

    @classmethod
    def plan_for(cls, config: GPOConfig) -> list[int]:
        """The optimizer calls each step may make (an upper bound); its length is the number
        of steps. A function of the config alone, so budgets can be computed before any model
        loads (budget.py)."""
        raise NotImplementedError

    @classmethod
    def scored_per_step(cls, config: GPOConfig, cost: int, step: int) -> int:
        """At most how many new prompts a step of `cost` calls scores on the dev split."""
        return cost

    def step(self, step: int, state: _State) -> None:
        raise NotImplementedError

    def restore(self, records: list[dict], state: _State) -> None:
        """Rebuild method state beyond the trajectory from the complete records (on resume)."""

    # -- counters --------------------------------------------------------------------------

    @property
    def optimizer_calls(self) -> int:
        return self.optimizer_llm.calls

    def elapsed(self) -> float:
        return self._seconds_before + (self.clock() - self._started)

    def usage(self) -> dict:
        return {"optimizer_calls": self.optimizer_llm.calls, "optimizer_tokens": self.optimizer_llm.tokens,
                "task_generations": self.evaluator.generations, "task_tokens": self.task_llm.tokens,
                "dev_scorings": self.evaluator.scorings["eval"], "seconds": round(self.elapsed(), 3)}

    def _restore_usage(self, usage: dict) -> None:
        self.optimizer_llm.calls = usage.get("optimizer_calls", 0)
        self.optimizer_llm.tokens = usage.get("optimizer_tokens", 0)
        self.evaluator.generations = usage.get("task_generations", 0)
        self.task_llm.tokens = usage.get("task_tokens", 0)
        self.evaluator.scorings["eval"] = usage.get("dev_scorings", 0)
        self._seconds_before, self._started = usage.get("seconds", 0.0), self.clock()

    def _limit_reached(self, next_cost: int) -> str | None:
        limits = self.limits
        if limits.max_optimizer_calls is not None and self.optimizer_llm.calls + next_cost > limits.max_optimizer_calls:
            return "max_optimizer_calls"
        if limits.max_task_tokens is not None and self.task_llm.tokens >= limits.max_task_tokens:
            return "max_task_tokens"
        if limits.time_limit is not None and self.elapsed() >= limits.time_limit:
            return "time_limit"
        return None

    # -- the loop --------------------------------------------------------------------------

    def run(self) -> RunResult:
        state, records = _replay(self.log)
        if not state.trajectory:
            self.on_event("initial", {"prompt": self.initial_prompt, "method": self.name})
            s0 = self.evaluator.score(self.initial_prompt, "eval", limit=self.config.dev_limit).score
            state.choose(TrajectoryEntry(prompt=self.initial_prompt, dev_score=s0, step=-1))
            self._record("init", step=-1, prompt=self.initial_prompt, dev_score=s0, method=self.name,
                         usage=self.usage())
        else:
            self._restore_usage(records[-1].get("usage", {}))
            self.restore(records, state)
            self.on_event("resumed", {"completed_steps": len(state.trajectory) - 1})
        self.on_event("trajectory", {"entry": asdict(state.trajectory[-1])})
        plan = self.plan()
        stopped = "completed"
        for step in range(len(state.trajectory) - 1, len(plan)):
            reason = self._limit_reached(plan[step])
            if reason:
                stopped = reason
                self.on_event("warning", {"message": f"stopped before step {step + 1}/{len(plan)}: {reason} "
                                                     f"reached; resume with a larger limit to continue"})
                break
            self.on_event("step_started", {"step": step, "steps": len(plan), "method": self.name,
                                           "budget": self.schedule(len(state.trajectory)) if self.schedule else None})
            self.step(step, state)
        return self._finish(state, stopped)

    def _record(self, kind: str, **data) -> None:
        self.log.append({"kind": kind, **data})

    def ask(self, prompts: Sequence[str], *, step: int, tag: str = "", temperature: float | None = None) -> list[str]:
        """Optimizer replies, one per meta-prompt, each with its own seed from (seed, task, step,
        tag + index): a reply never depends on the other calls, so a resumed run asks the same."""
        cfg = self.config
        seeds = [candidate_seed(cfg.seed, self.task.name, step, f"{tag}{j}" if tag else j) for j in range(len(prompts))]
        if not prompts:
            return []
        return self.optimizer_llm.generate(list(prompts), max_tokens=cfg.optimizer_max_tokens,
                                           temperature=cfg.optimizer_temperature if temperature is None else temperature,
                                           seeds=seeds, stop=("<END>",))

    def parse(self, replies: Sequence[str]) -> list[str | None]:
        return [parse_candidate(r, require_tags=self.config.require_tags) for r in replies]

    def train_outcomes(self, step: int, prompt: str):
        """The train minibatch of a step and the prompt's outcomes on it."""
        batch = self.batches[step % len(self.batches)]
        return batch, self.evaluator.evaluate_examples([prompt], batch, "train")[0].outcomes

    def score_candidates(self, step: int, state: _State, parsed: Sequence[str | None], *,
                         parent: str | None | Sequence[str | None], budget: int | None = None) -> list[tuple[str, float]]:
        """De-duplicate (in order, whitespace-normalized), score the new ones on the dev split in
        one call, record every candidate; returns the distinct candidates with their scores, in
        order. `parent` is the prompt they were generated from, or one per candidate."""
        cfg = self.config
        parents = list(parent) if isinstance(parent, (list, tuple)) else [parent] * len(parsed)
        too_long = 0
        if cfg.max_prompt_words:
            too_long = sum(p is not None and len(p.split()) > cfg.max_prompt_words for p in parsed)
            parsed = [p if p is None or len(p.split()) <= cfg.max_prompt_words else None for p in parsed]
        distinct: dict[str, tuple[str, str | None]] = {}
        for prompt, origin in zip(parsed, parents):
            if prompt is not None:
                distinct.setdefault(normalize_prompt(prompt), (prompt, origin))
        new = [p for key, (p, _) in distinct.items() if key not in state.scores]
        self.on_event("candidates", {"step": step, "replies": len(parsed), "usable": len(distinct), "new": len(new),
                                     "dropped": list(parsed).count(None), "too_long": too_long})
        new_scores = {p: r.score for p, r in zip(new, self.evaluator.evaluate(new, "eval", limit=cfg.dev_limit))}
        scored = []
        for key, (prompt, origin) in distinct.items():
            is_new = prompt in new_scores
            score = new_scores[prompt] if is_new else state.scores[key]
            candidate = Candidate(prompt=prompt, dev_score=score, step=step, parent=origin, budget=budget,
                                  edit_distance=None if origin is None else word_edit_distance(origin, prompt),
                                  new=is_new)
            self._record("candidate", **asdict(candidate))
            state.scored(prompt, score)
            scored.append((prompt, score))
        return scored

    def choose(self, step: int, state: _State, prompt: str, score: float, *, meta_prompt: str | None,
               budget: int | None = None, **extra) -> None:
        state.choose(TrajectoryEntry(prompt=prompt, dev_score=score, step=step))
        self._record("step", step=step, prompt=prompt, dev_score=score, budget=budget, meta_prompt=meta_prompt,
                     **extra, usage=self.usage())
        self.on_event("chosen", {"step": step, "prompt": prompt, "dev_score": score,
                                 "best": max(e.dev_score for e in state.trajectory)})

    def choose_best(self, step: int, state: _State, **record) -> None:
        """The elitist choice of the search baselines: the best prompt scored so far (ties to
        the earliest scored), so the trajectory's best is the best of everything scored."""
        prompt, score = state.ranked()[0]
        self.choose(step, state, prompt, score, **record)

    def _finish(self, state: _State, stopped: str) -> RunResult:
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
                         final_test_result=results[-1], stopped=stopped, usage=self.usage())


class GPO(Method):
    """GPO with every strategy switch of GPO_SPEC section 2 (see GPOConfig)."""

    name = "gpo"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        cfg = self.config
        self.needs_train = cfg.gradient == "feedback"
        if self.needs_train:
            self.batches = train_batches(self.task, cfg.train_batch, cfg.seed)
        self.select = get_selector(cfg.selection, over="feedback" if cfg.momentum == "feedback" else "para")
        self.gradients: list[GradientEntry] = []  # feedback history, with each step's improvement
        self.feedback_momentum: str | None = None  # real-time momentum over feedback
        self.para_momentum: TrajectoryEntry | None = None  # real-time momentum over prompts

    @classmethod
    def plan_for(cls, config: GPOConfig) -> list[int]:
        return within_budget(gpo_step_costs(config), reference_calls(config))

    @classmethod
    def scored_per_step(cls, config: GPOConfig, cost: int, step: int) -> int:
        # C candidates, plus the summarized prompt of real-time momentum over prompts.
        summary = config.momentum == "para" and config.momentum_update == "real-time" and step > 0
        return config.candidates + summary

    def restore(self, records, state):
        previous = None
        for record in records:
            if record["kind"] == "step" and record.get("gradient") is not None:
                improvement = record["dev_score"] - previous if previous is not None else None
                self.gradients.append(GradientEntry(record["gradient"], record["step"], improvement))
            if record["kind"] in ("init", "step"):
                previous = record["dev_score"]
                if record.get("feedback_momentum") is not None:
                    self.feedback_momentum = record["feedback_momentum"]
                if record.get("momentum"):
                    m = record["momentum"]
                    self.para_momentum = TrajectoryEntry(m["prompt"], m["dev_score"], record["step"])

    def _gradient(self, step: int, current: TrajectoryEntry, extra: dict) -> str | None:
        """The feedback gradient of the step, after momentum over feedback; None without one."""
        cfg = self.config
        if cfg.gradient != "feedback":
            return None
        batch, outcomes = self.train_outcomes(step, current.prompt)
        extra["train_batch"] = [e.id for e in batch]
        wrong = [(example, o.final_answer.strip()) for example, o in zip(batch, outcomes) if o.score < 1]
        if wrong:
            meta = render_feedback(current.prompt, wrong)
            reply = self.ask([meta], step=step, tag="gradient", temperature=0.0)[0]
            gradient = parse_candidate(reply) or NO_WRONG_ANSWERS
            extra["gradient_meta_prompt"] = meta
        else:
            gradient = NO_WRONG_ANSWERS
        extra["gradient"] = gradient
        self.gradients.append(GradientEntry(gradient, step))
        if cfg.momentum != "feedback":
            return gradient
        if cfg.momentum_update == "k-list":
            similarities = []
            if canonical_selection(cfg.selection) == "relevance":
                vectors = self.index.embedder.encode([g.text for g in self.gradients])
                similarities = (vectors @ vectors[-1]).tolist()
            return "\n\n".join(g.text for g in self.select(self.gradients, cfg.k, similarities))
        if self.feedback_momentum is not None and wrong:
            reply = self.ask([render_feedback_merge(self.feedback_momentum, gradient)], step=step, tag="merge",
                             temperature=0.0)[0]
            self.feedback_momentum = parse_candidate(reply) or gradient
        elif self.feedback_momentum is None:
            self.feedback_momentum = gradient
        extra["feedback_momentum"] = self.feedback_momentum
        return self.feedback_momentum

    def _direction(self, step: int, state: _State, extra: dict) -> tuple[list[TrajectoryEntry], str]:
        """The history block: the entries shown and their kind (GPO_SPEC 3.1 item 2)."""
        cfg = self.config
        current = state.trajectory[-1]
        if cfg.momentum != "para":
            return [current], "current"
        if cfg.momentum_update == "k-list":
            similarities = self.index.similarities(current.prompt)
            return self.select(state.trajectory, cfg.k, similarities), "list"
        if self.para_momentum is None:
            self.para_momentum = current
        else:
            reply = self.ask([render_prompt_summary(self.para_momentum, current)], step=step, tag="summary",
                             temperature=0.0)[0]
            summary = parse_candidate(reply)
            if summary is None:  # nothing usable: the momentum moves to the current prompt
                self.para_momentum = current
            else:
                key = normalize_prompt(summary)
                if key not in state.scores:
                    state.scored(summary, self.evaluator.score(summary, "eval", limit=cfg.dev_limit).score)
                self.para_momentum = TrajectoryEntry(summary, state.scores[key], step)
        extra["momentum"] = {"prompt": self.para_momentum.prompt, "dev_score": self.para_momentum.dev_score}
        return [self.para_momentum], "summary"

    def step(self, step: int, state: _State) -> None:
        cfg = self.config
        current = state.trajectory[-1]
        self.index.sync([e.prompt for e in state.trajectory])
        budget = self.schedule(len(state.trajectory)) if self.schedule else None
        extra: dict = {}
        gradient = self._gradient(step, current, extra)
        history, kind = self._direction(step, state, extra)
        meta = render_update(method=cfg.update, history=history, history_kind=kind, current=current.prompt,
                             exemplars=self.exemplars, position=cfg.position, budget=budget, gradient=gradient)
        replies = self.ask([meta] * cfg.candidates, step=step)
        scored = self.score_candidates(step, state, self.parse(replies), parent=current.prompt, budget=budget)
        prompt, score = select_next([(current.prompt, current.dev_score), *scored], state.selected)
        if self.gradients and self.gradients[-1].step == step:
            self.gradients[-1] = replace(self.gradients[-1], improvement=score - current.dev_score)
        self.choose(step, state, prompt, score, meta_prompt=meta, budget=budget, **extra)
