"""The optimization loop every method shares (GPO and the baselines of gpo_local/methods).

`Method` is the loop skeleton: score the initial prompt, run the planned steps while the budget
limits allow, select the final prompt, score the initial and the final prompt on the test split.
A method only implements `plan()` (the optimizer calls each step may make) and `step()`; the
loop gives it the means to ask the optimizer (`ask`, `propose`), score and record candidates
(`score_candidates`) and record the step's choice (`choose`).

State lives only in the run's trajectory.jsonl (trajectory.py). Seeds depend only on (seed,
task, step, index) (draws.py), and a memo cache makes the replayed generations free, so a
resumed run ends with the same trajectory as an uninterrupted one.

Budget (budget.py): every generation the algorithm asks for counts, memo hits included: the
budget describes the algorithm, not the cache. With the reply quota (quota.py) a step may ask
more than its planned calls; those asks come out of the same budget, so a run stops at the
step boundary where the next step's planned calls no longer fit.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Callable, Sequence

from gpo_local.algorithm import quota
from gpo_local.algorithm.budget import call_budget
from gpo_local.algorithm.candidates import Proposal, candidate_record, distinct_candidates
from gpo_local.algorithm.config import GPOConfig, Limits
from gpo_local.algorithm.draws import candidate_seed, pick_exemplars, train_batches
from gpo_local.algorithm.evaluator import Evaluator
from gpo_local.algorithm.final import final_result
from gpo_local.algorithm.index import TrajectoryIndex
from gpo_local.algorithm.racing import score_new
from gpo_local.algorithm.trajectory import CANDIDATE, INIT, STEP, TrajectoryState, replay
from gpo_local.algorithm.usage import Meter
from gpo_local.backends import LLM, CountingLLM, sampler_options
from gpo_local.core import RunResult, TrajectoryEntry
from gpo_local.replies.parser import ReplyParser
from gpo_local.replies.parsing import normalize_prompt
from gpo_local.runs.directory import JsonlLog
from gpo_local.tasks import Task

Event = Callable[[str, dict], None]


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
        self.meter = Meter(self.task_llm, self.optimizer_llm, self.evaluator, clock)
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

    def inducing(self, state: TrajectoryState) -> bool:
        """Whether the next step induces its candidates from examples (GPO's cold start)."""
        return False

    def restore(self, records: list[dict], state: TrajectoryState) -> None:
        """Rebuild method state beyond the trajectory from the complete records (on resume)."""

    # -- counters --------------------------------------------------------------------------

    @property
    def optimizer_calls(self) -> int:
        return self.optimizer_llm.calls

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
                usage=self.meter.usage(),
                dev_outcomes={o.example_id: o.score for o in initial_dev.outcomes},
            )
        else:
            self.meter.restore(records[-1].get("usage", {}))
            self.restore(records, state)
            self.on_event("resumed", {"completed_steps": len(state.trajectory) - 1})
        self.on_event("trajectory", {"entry": asdict(state.trajectory[-1])})
        plan = self.plan()
        stopped = "completed"
        calls = call_budget(self.config, self.limits)
        for step in range(len(state.trajectory) - 1, len(plan)):
            reason = self.meter.limit_reached(self.limits, plan[step])
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
                    "induce": self.inducing(state),
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
        distinct = distinct_candidates(parsed, parents)
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
            result = results.get(prompt)
            score = state.scores[key] if result is None else result.score
            record = candidate_record(
                prompt, origin=origin, step=step, budget=budget, score=score, result=result, total=total
            )
            self._record(CANDIDATE, **record)
            state.observed(record)
            if record.get("eliminated"):
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
            usage=self.meter.usage(),
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
        self.index.sync([e.prompt for e in state.trajectory])
        if "test" not in self.task.splits:
            message = f"task {self.task.name!r} has no test split: test scores skipped"
            self.on_event("warning", {"message": message})
        return final_result(self.evaluator, state.trajectory, self.config.test_limit, stopped, self.meter)
