"""The optimization loop shared by every method, and GPO's step composed from its registries.

`Method` is the loop skeleton every method (GPO and the baselines of gpo_local/methods) runs:
score the initial prompt, run the planned steps while the budget limits allow, select the final
prompt, score the initial and the final prompt on the test split. A method only implements
`plan()` (the optimizer calls each step may make) and `step()`.

One GPO step (the paper's GPO framework), read as gradient descent: the step size from the schedule
(schedules.py); the gradient (gradients.GRADIENTS) and its momentum over feedback
(gradients.FEEDBACK_MOMENTA); the direction, momentum over prompts (directions.DIRECTIONS);
the update, the meta-prompt (updates.UPDATES); C candidates sampled with per-candidate seeds,
parsed, de-duplicated in order and the new ones scored on the dev split in one evaluator call;
every candidate recorded; the next prompt selected (trajectory.select_next).

Decisions where the original code is buggy or silent:
- p0 is registered as seen; candidates are de-duplicated in order; seeds are explicit;
- no train-batch pass without a gradient; the test split is scored for p0 and the final
  prompt only; real-time momentum over prompts scores the *summarized* prompt (or reuses its
  known score), not the current prompt again;
- invalid switch combinations are rejected by `GPOConfig.validate` (config.py) before any
  model loads;
- the train minibatches are consecutive slices of a seeded shuffle of the train split (the
  original took file order, the same every epoch); the batch count follows the original's and the
  step's example ids are recorded in its `step` record.

State lives only in the run's trajectory.jsonl (trajectory.py). Seeds depend only on (seed,
task, step, index), and a memo cache makes the replayed generations free, so a resumed run ends
with the same trajectory as an uninterrupted one.

Budget (budget.py): every generation the algorithm asks for counts, memo hits included: the
budget describes the algorithm, not the cache. With the reply quota (quota.py) a step may ask
more than its planned calls; those asks come out of the same budget, so a run stops at the
step boundary where the next step's planned calls no longer fit.
"""

from __future__ import annotations

import hashlib
import random
import time
from dataclasses import asdict, replace
from functools import partial
from types import MappingProxyType
from typing import Callable, NamedTuple, Sequence

from gpo_local.algorithm import quota
from gpo_local.algorithm.budget import gpo_step_costs, reference_calls, within_budget
from gpo_local.algorithm.config import GPOConfig, Limits
from gpo_local.algorithm.directions import DIRECTIONS, DirectionContext, GradientEntry, direction_name
from gpo_local.algorithm.evaluator import Evaluator
from gpo_local.algorithm.gradients import (
    FEEDBACK_MOMENTA,
    GRADIENTS,
    FeedbackContext,
    GradientContext,
    feedback_momentum_name,
    gradient_history,
)
from gpo_local.algorithm.index import TrajectoryIndex
from gpo_local.algorithm.racing import candidate_fields, score_new
from gpo_local.algorithm.strategy import Strategy
from gpo_local.algorithm.trajectory import (
    CANDIDATE,
    INIT,
    STEP,
    TrajectoryState,
    final_choice,
    last_recorded,
    replay,
    select_next,
)
from gpo_local.algorithm.updates import UPDATES, UpdateContext, word_edit_distance
from gpo_local.backends import LLM, CountingLLM, sampler_options
from gpo_local.core import Candidate, Example, RunResult, TrajectoryEntry
from gpo_local.replies.parser import ReplyParser
from gpo_local.replies.parsing import normalize_prompt
from gpo_local.runs.directory import JsonlLog
from gpo_local.tasks import Task

Event = Callable[[str, dict], None]


class Proposal(NamedTuple):
    """Candidates of a call (None for a dropped reply), the parent of each, the meta-prompts as
    sent, and the word cap of the replies."""

    candidates: list[str | None]
    parents: list[str | None]
    metas: list[str]
    cap: int | None


def candidate_seed(seed: int, task: str, step: int, index: int | str) -> int:
    """A seed that depends only on the run seed, the task, the step and the call's index."""
    digest = hashlib.sha256(f"{seed}:{task}:{step}:{index}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def pick_exemplars(task: Task, count: int, seed: int) -> list[Example]:
    """The format exemplars shown in the meta-prompt: fixed for the run, drawn with an RNG of
    their own so they do not depend on other tasks."""
    pool = task.split("format")
    rng = random.Random(f"{seed}:{task.name}:format")
    return [pool[i] for i in sorted(rng.sample(range(len(pool)), min(count, len(pool))))]


def train_batches(task: Task, size: int, seed: int) -> list[tuple[Example, ...]]:
    """The train minibatches: consecutive slices of a seeded shuffle of the train split; a last
    partial batch counts only when it holds at least half a batch, as in the original code."""
    examples = list(task.split("train"))
    random.Random(f"{seed}:{task.name}:train").shuffle(examples)
    full, rest = divmod(len(examples), size)
    count = max(1, full + (1 if rest >= size / 2 else 0))
    return [tuple(examples[i * size : (i + 1) * size]) for i in range(count)]


class Method:
    """The loop every method runs; subclasses implement `plan`, `step` and, for state beyond the
    trajectory, `restore`."""

    name = "method"
    needs_train = False  # whether steps score train minibatches
    uses_format = True  # whether meta-prompts show format exemplars
    # Whether a constrained reply gets free reasoning before its tagged prompt (grammar.py): for a
    # method whose meta-prompts ask for reasoning first. No built-in method sets it (pe2.py says why).
    reasons_first = False

    def __init__(
        self,
        *,
        task: Task,
        task_llm: LLM,
        optimizer_llm: LLM,
        index: TrajectoryIndex,
        config: GPOConfig,
        log: JsonlLog,
        initial_prompt: str | None = None,
        limits: Limits = Limits(),
        on_event: Event | None = None,
        on_progress: Callable[[int, int], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        config = self.configure(config)
        config.validate()
        self.task, self.index, self.config, self.log, self.limits = task, index, config, log, limits
        self.task_llm, self.optimizer_llm = CountingLLM(task_llm), CountingLLM(optimizer_llm)
        self.initial_prompt = self.start_prompt(
            task.initial_prompt if initial_prompt is None else initial_prompt
        )
        self.evaluator = Evaluator(
            self.task_llm, task, position=config.position, on_progress=on_progress, on_event=on_event
        )
        self.schedule = config.make_schedule()
        self.exemplars = pick_exemplars(task, config.format_examples, config.seed) if self.uses_format else []
        self.batches = train_batches(task, config.train_batch, config.seed) if self.trains(config) else []
        self.on_event = on_event or (lambda kind, data: None)
        self.clock = clock
        self._seconds_before = 0.0
        self._started = clock()
        # CPU time of this process (all its threads: llama.cpp's included), which neither a
        # paused process (SIGSTOP) nor other work on a shared machine inflates the way it does
        # wall time; a Ray pool's remote workers are not counted.
        self._cpu_before, self._cpu_started = 0.0, time.process_time()
        self.quota = quota.Tally()  # the current step's reply-quota counts
        self._spare = 0  # optimizer calls the current step may make beyond its plan (the quota's)
        # Grammar, leak check, drop reasons (replies/parser.py): given what it reads, not the method.
        self.replies = ReplyParser(
            config,
            optimizer=self.optimizer_llm,
            exemplars=self.exemplars,
            leak_sources=[task.splits.get(name, ()) for name in ("eval", "train")],
            reasons_first=self.reasons_first,
            records=log.records,
        )

    # -- what a method defines -------------------------------------------------------------

    def start_prompt(self, given: str) -> str:
        return given

    @classmethod
    def configure(cls, config: GPOConfig) -> GPOConfig:
        """The config this method runs with (a preset overrides switches here; settings.py shows
        the user the same)."""
        return config

    @classmethod
    def trains(cls, config: GPOConfig) -> bool:
        """Whether steps score train minibatches under `config`."""
        return cls.needs_train

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

    def step(self, step: int, state: TrajectoryState) -> None:
        raise NotImplementedError

    def restore(self, records: list[dict], state: TrajectoryState) -> None:
        """Rebuild method state beyond the trajectory from the complete records (on resume)."""

    # -- counters --------------------------------------------------------------------------

    @property
    def optimizer_calls(self) -> int:
        return self.optimizer_llm.calls

    def elapsed(self) -> float:
        return self._seconds_before + (self.clock() - self._started)

    def usage(self) -> dict:
        return {
            "optimizer_calls": self.optimizer_llm.calls,
            "optimizer_tokens": self.optimizer_llm.tokens,
            "task_generations": self.evaluator.generations,
            "task_tokens": self.task_llm.tokens,
            "dev_scorings": self.evaluator.scorings["eval"],
            "seconds": round(self.elapsed(), 3),
            "cpu_seconds": round(self._cpu_before + time.process_time() - self._cpu_started, 3),
        }

    def _restore_usage(self, usage: dict) -> None:
        self.optimizer_llm.calls = usage.get("optimizer_calls", 0)
        self.optimizer_llm.tokens = usage.get("optimizer_tokens", 0)
        self.evaluator.generations = usage.get("task_generations", 0)
        self.task_llm.tokens = usage.get("task_tokens", 0)
        self.evaluator.scorings["eval"] = usage.get("dev_scorings", 0)
        self._seconds_before, self._started = usage.get("seconds", 0.0), self.clock()
        self._cpu_before, self._cpu_started = usage.get("cpu_seconds", 0.0), time.process_time()

    def _call_budget(self) -> int:
        """The optimizer calls the run may make: the budget (budget.reference_calls), or the
        limit when lower. Without the quota no step exceeds its plan, which fits in the budget."""
        limit = self.limits.max_optimizer_calls
        budget = reference_calls(self.config)
        return budget if limit is None else min(budget, limit)

    def _limit_reached(self, next_cost: int) -> str | None:
        limits = self.limits
        if (
            limits.max_optimizer_calls is not None
            and self.optimizer_llm.calls + next_cost > limits.max_optimizer_calls
        ):
            return "max_optimizer_calls"
        if limits.max_task_tokens is not None and self.task_llm.tokens >= limits.max_task_tokens:
            return "max_task_tokens"
        if limits.time_limit is not None and self.elapsed() >= limits.time_limit:
            return "time_limit"
        return None

    # -- the loop --------------------------------------------------------------------------

    def run(self) -> RunResult:
        state, records = replay(self.log)
        if not state.trajectory:
            self.on_event("initial", {"prompt": self.initial_prompt, "method": self.name})
            initial_dev = self.evaluator.score(self.initial_prompt, "eval", limit=self.config.dev_limit)
            s0 = initial_dev.score
            state.choose(TrajectoryEntry(prompt=self.initial_prompt, dev_score=s0, step=-1))
            # Per-question dev scores, as candidate records keep theirs: the score's standard error.
            self._record(
                INIT,
                step=-1,
                prompt=self.initial_prompt,
                dev_score=s0,
                method=self.name,
                usage=self.usage(),
                dev_outcomes={o.example_id: o.score for o in initial_dev.outcomes},
            )
        else:
            self._restore_usage(records[-1].get("usage", {}))
            self.restore(records, state)
            self.on_event("resumed", {"completed_steps": len(state.trajectory) - 1})
        self.on_event("trajectory", {"entry": asdict(state.trajectory[-1])})
        plan = self.plan()
        stopped = "completed"
        calls = self._call_budget()
        for step in range(len(state.trajectory) - 1, len(plan)):
            reason = self._limit_reached(plan[step])
            if reason:
                stopped = reason
                self.on_event(
                    "warning",
                    {
                        "message": f"stopped before step {step + 1}/{len(plan)}: {reason} "
                        f"reached; resume with a larger limit to continue"
                    },
                )
                break
            self._spare = calls - self.optimizer_llm.calls - plan[step]
            if self._spare < 0:  # the reply quota's extra asks spent what this step needs
                message = f"stopped before step {step + 1}/{len(plan)}: the {calls} optimizer calls are spent"
                self.on_event("warning", {"message": message})
                break
            self.on_event(
                "step_started",
                {
                    "step": step,
                    "steps": len(plan),
                    "method": self.name,
                    "budget": self.schedule(len(state.trajectory)) if self.schedule else None,
                },
            )
            self.step(step, state)
        return self._finish(state, stopped)

    def _record(self, kind: str, **data) -> None:
        self.log.append({"kind": kind, **data})

    def ask(
        self,
        prompts: Sequence[str],
        *,
        step: int,
        tag: str = "",
        temperature: float | None = None,
        grammar: str | None = None,
        max_tokens: int | None = None,
        copy_guard=None,
        first: int = 0,
    ) -> list[str]:
        """Optimizer replies, one per meta-prompt, each with its own seed from (seed, task, step,
        tag + ask number), the ask numbers counting from `first`: a reply never depends on the
        other calls, so a resumed run asks the same."""
        cfg = self.config
        seeds = [
            candidate_seed(cfg.seed, self.task.name, step, f"{tag}{j}" if tag else j)
            for j in range(first, first + len(prompts))
        ]
        if not prompts:
            return []
        min_p = (
            cfg.optimizer_min_p if self.optimizer_llm.supports_grammar else 0.0
        )  # a model with its own sampler
        return self.optimizer_llm.generate(
            list(prompts),
            max_tokens=max_tokens or cfg.optimizer_max_tokens,
            temperature=cfg.optimizer_temperature if temperature is None else temperature,
            seeds=seeds,
            stop=("<END>",),
            **sampler_options(grammar, copy_guard, min_p),
        )

    def score_dev(self, prompt: str) -> float:
        return self.evaluator.score(prompt, "eval", limit=self.config.dev_limit).score

    def propose(
        self,
        metas: Sequence[str],
        *,
        step: int,
        state: TrajectoryState,
        current: str = "",
        budget: int | None = None,
        tag: str = "",
        parents: str | None | Sequence[str | None] = None,
    ) -> Proposal:
        """Candidate prompts from candidate-writing meta-prompts, one per meta-prompt and, with
        the reply quota (quota.py), more until as many are usable new prompts (new to `state`).
        Every method's candidates come through here, so they share the reply grammar of the
        step's word cap (`current` and `budget` set it, replies.py), the stated cap, the drop
        reasons and the quota. `parents`: the prompt each meta-prompt works from (one for all,
        or one per meta-prompt). The cap is stated only to a constrained optimizer, which cannot
        write past it: told the cap, free-form replies on BBH went over it as often as untold
        (benchmarks/README.md)."""
        metas, grammar, max_tokens, cap = self.replies.request(metas, current, budget)
        guard = self.replies.copy_guard(current)

        def asked(indices: list[int], first: int, seen=()) -> list[str | None]:
            replies = self.ask(
                [metas[j] for j in indices],
                step=step,
                tag=tag,
                grammar=grammar,
                max_tokens=max_tokens,
                copy_guard=guard,
                first=first,
            )
            return self.replies.parse(replies, max_words=cap, max_tokens=max_tokens, seen=seen)

        parsed, slots = asked(list(range(len(metas))), 0), list(range(len(metas)))
        if self.config.reply_quota and metas:
            parsed, slots, asks = quota.fill(parsed, known=state.scores, spare=self._spare, retry=asked)
            self._spare -= asks - len(metas)
            self.quota.add(len(metas), asks, sum(quota.usable_slots(parsed, state.scores)))
        given = list(parents) if isinstance(parents, (list, tuple)) else [parents] * len(metas)
        return Proposal(parsed, [given[j] for j in slots], metas, cap)

    def quota_totals(self) -> dict:
        """result.json's `quota`: the reply quota's counts summed over the step records (asks
        made, candidates wanted, usable ones obtained); empty with the quota off."""
        steps = [r for r in self.log.records() if r.get("kind") == STEP and "asks" in r]
        if not self.config.reply_quota:
            return {}
        return {"quota": {key: sum(r[key] for r in steps) for key in ("asks", "wanted", "usable")}}

    def drop_totals(self) -> dict[str, int]:
        return self.replies.totals()

    def train_outcomes(self, step: int, prompt: str):
        """The train minibatch of a step and the prompt's outcomes on it."""
        batch = self.batches[step % len(self.batches)]
        return batch, self.evaluator.evaluate_examples([prompt], batch, "train")[0].outcomes

    def score_candidates(
        self,
        step: int,
        state: TrajectoryState,
        parsed: Sequence[str | None],
        *,
        parent: str | None | Sequence[str | None],
        budget: int | None = None,
    ) -> list[tuple[str, float]]:
        """De-duplicate (in order, whitespace-normalized), score the new ones on the dev split in
        one call, record every candidate; returns the distinct candidates with their scores, in
        order. `parent` is the prompt they were generated from, or one per candidate."""
        cfg = self.config
        # `parsed` comes from self.parse (replies.py), which already dropped the replies over the
        # word cap and counted them under `drops`.
        parents = list(parent) if isinstance(parent, (list, tuple)) else [parent] * len(parsed)
        distinct: dict[str, tuple[str, str | None]] = {}
        for prompt, origin in zip(parsed, parents):
            if prompt is not None:
                distinct.setdefault(normalize_prompt(prompt), (prompt, origin))
        new = [p for key, (p, _) in distinct.items() if key not in state.scores]
        self.on_event(
            "candidates",
            {
                "step": step,
                "replies": len(parsed),
                "usable": len(distinct),
                "new": len(new),
                "dropped": list(parsed).count(None),
                "drops": self.replies.step_drops(),
            },
        )
        # Racing (racing.py); every new candidate's per-question scores are recorded.
        known = {
            p: state.dropped[normalize_prompt(p)]["dev_outcomes"]
            for p in new
            if normalize_prompt(p) in state.dropped
        }
        results = dict(zip(new, score_new(self.evaluator, self.task, cfg, new, known, state.dev_outcomes)))
        total = len(self.task.split("eval", cfg.dev_limit))
        scored = []
        for key, (prompt, origin) in distinct.items():
            is_new = prompt in results
            score = results[prompt].score if is_new else state.scores[key]
            candidate = Candidate(
                prompt=prompt,
                dev_score=score,
                step=step,
                parent=origin,
                budget=budget,
                edit_distance=None if origin is None else word_edit_distance(origin, prompt),
                new=is_new,
            )
            raced = candidate_fields(results[prompt], total) if is_new else {}
            record = {**asdict(candidate), **raced}
            self._record(CANDIDATE, **record)
            state.observed(record)
            if raced.get("eliminated"):
                state.dropped[key] = record
                continue  # dropped by racing: a partial score, not in the pool
            state.scored(prompt, score)
            scored.append((prompt, score))
        return scored

    def choose(
        self,
        step: int,
        state: TrajectoryState,
        prompt: str,
        score: float,
        *,
        meta_prompt: str | None,
        budget: int | None = None,
        **extra,
    ) -> None:
        state.choose(TrajectoryEntry(prompt=prompt, dev_score=score, step=step))
        counts = self.quota.take() if self.config.reply_quota else {}
        self._record(
            STEP,
            step=step,
            prompt=prompt,
            dev_score=score,
            budget=budget,
            meta_prompt=meta_prompt,
            **extra,
            **self.replies.take_step(),
            **counts,
            usage=self.usage(),
        )
        self.on_event(
            "chosen",
            {
                "step": step,
                "prompt": prompt,
                "dev_score": score,
                "best": max(e.dev_score for e in state.trajectory),
            },
        )

    def choose_best(self, step: int, state: TrajectoryState, **record) -> None:
        """The elitist choice of the search baselines: the best prompt scored so far (ties to
        the earliest scored), so the trajectory's best is the best of everything scored."""
        prompt, score = state.ranked()[0]
        self.choose(step, state, prompt, score, **record)

    def _finish(self, state: TrajectoryState, stopped: str) -> RunResult:
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
            self.on_event(
                "warning", {"message": f"task {self.task.name!r} has no test split: test scores skipped"}
            )
        return RunResult(
            initial=initial,
            final=final,
            initial_test=initial_test,
            final_test=final_test,
            trajectory=tuple(state.trajectory),
            initial_test_result=results[0],
            final_test_result=results[-1],
            stopped=stopped,
            usage=self.usage(),
        )


class GPO(Method):
    """GPO with every strategy switch the paper analyses (see GPOConfig): a step composes
    the registry entries the switches name."""

    name = "gpo"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        cfg = self.config
        self.gradient_of = GRADIENTS[cfg.gradient]
        self.feedback_momentum = FEEDBACK_MOMENTA[feedback_momentum_name(cfg)]
        self.direction = DIRECTIONS[direction_name(cfg)]
        self.update_rule = UPDATES[cfg.update]
        self.gradients: list[GradientEntry] = []  # feedback history, with each step's improvement
        # The strategies' states, by their step-record key (recorded there, restored from there).
        self.states: dict[str, object] = {}

    @classmethod
    def trains(cls, config: GPOConfig) -> bool:
        return config.gradient == "feedback"

    @classmethod
    def plan_for(cls, config: GPOConfig) -> list[int]:
        return within_budget(gpo_step_costs(config), reference_calls(config))

    @classmethod
    def scored_per_step(cls, config: GPOConfig, cost: int, step: int) -> int:
        # C candidates, plus the summarized prompt of real-time momentum over prompts.
        summary = config.momentum == "para" and config.momentum_update == "real-time" and step > 0
        return config.candidates + summary

    def _strategies(self) -> tuple[Strategy, ...]:
        return self.gradient_of, self.feedback_momentum, self.direction, self.update_rule

    def restore(self, records, state):
        self.gradients = gradient_history(records)
        for strategy in self._strategies():
            if strategy.state_key:
                self.states[strategy.state_key] = last_recorded(records, strategy.state_key)

    def _apply(self, strategy: Strategy, context, record: dict):
        """Run a strategy on its context and its carried state; a stateful one's new state is
        kept and recorded in the step record."""
        key = strategy.state_key
        result, new_state = strategy(context, self.states.get(key) if key else None)
        if key:
            self.states[key] = record[key] = new_state
        return result

    def step(self, step: int, state: TrajectoryState) -> None:
        cfg = self.config
        current = state.trajectory[-1]
        self.index.sync([e.prompt for e in state.trajectory])
        budget = self.schedule(len(state.trajectory)) if self.schedule else None
        ask = partial(self.ask, step=step)
        states: dict = {}
        gradient = self._apply(
            self.gradient_of,
            GradientContext(
                step=step,
                prompt=current.prompt,
                ask=ask,
                train_outcomes=partial(self.train_outcomes, step, current.prompt),
            ),
            states,
        )
        record = {**gradient.record, **states}
        if gradient.text is not None:
            self.gradients.append(GradientEntry(gradient.text, step))
            shown = self._apply(
                self.feedback_momentum,
                FeedbackContext(
                    step=step,
                    gradient=gradient,
                    history=tuple(self.gradients),
                    k=cfg.k,
                    selection=cfg.selection,
                    embed=self.index.embedder.encode,
                    ask=ask,
                ),
                record,
            )
        else:
            shown = None
        direction = self._apply(
            self.direction,
            DirectionContext(
                step=step,
                trajectory=tuple(state.trajectory),
                known_scores=MappingProxyType(state.scores),
                k=cfg.k,
                selection=cfg.selection,
                similarities=self.index.similarities,
                ask=ask,
                score_dev=self.score_dev,
            ),
            record,
        )
        for prompt, score in direction.scored:
            state.scored(prompt, score)
        meta = self._apply(
            self.update_rule,
            UpdateContext(
                history=direction.entries,
                history_kind=direction.kind,
                current=current.prompt,
                gradient=shown,
                exemplars=tuple(self.exemplars),
                position=cfg.position,
                budget=budget,
            ),
            record,
        )
        proposal = self.propose(
            [meta] * cfg.candidates,
            step=step,
            state=state,
            current=current.prompt,
            budget=budget,
            parents=current.prompt,
        )
        meta = proposal.metas[0]
        if self.replies.constrained:
            record["grammar_words"] = proposal.cap  # the constrained replies' word cap (None: unbounded)
        scored = self.score_candidates(
            step, state, proposal.candidates, parent=proposal.parents, budget=budget
        )
        prompt, score = select_next([(current.prompt, current.dev_score), *scored], state.selected)
        if self.gradients and self.gradients[-1].step == step:
            self.gradients[-1] = replace(self.gradients[-1], improvement=score - current.dev_score)
        self.choose(step, state, prompt, score, meta_prompt=meta, budget=budget, **record)
