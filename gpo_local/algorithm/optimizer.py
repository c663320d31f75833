"""GPO's step, composed from the strategy registries its switches name.

One GPO step (the paper's GPO framework), read as gradient descent: the step size from the schedule
(schedules.py); the gradient (gradients.GRADIENTS) and its momentum over feedback
(gradients.FEEDBACK_MOMENTA); the direction, momentum over prompts (directions.DIRECTIONS);
the update, the meta-prompt (updates.UPDATES); C candidates sampled with per-candidate seeds,
parsed, de-duplicated in order and the new ones scored on the dev split in one evaluator call;
every candidate recorded; the next prompt selected (trajectory.select_next). The loop around
the steps is the one every method shares (method.py).

The cold start (`cold_start`, not in the paper): while every prompt scored so far scores 0 on
dev, a step with `induce` writes its candidates by instruction induction from examples (APE's
start) instead of the update meta-prompt, whose history and step size then carry nothing. After
it, `induced_candidates` of a step's candidates may still be induced, so that a wrong rule found
first is not the only one refined.

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
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from types import MappingProxyType

from gpo_local.algorithm.budget import gpo_step_costs, reference_calls, within_budget
from gpo_local.algorithm.config import GPOConfig
from gpo_local.algorithm.directions import DIRECTIONS, DirectionContext, GradientEntry, direction_name
from gpo_local.algorithm.draws import pick_demonstrations
from gpo_local.algorithm.gradients import (
    FEEDBACK_MOMENTA,
    GRADIENTS,
    FeedbackContext,
    GradientContext,
    feedback_momentum_name,
    gradient_history,
)
from gpo_local.algorithm.method import Method
from gpo_local.algorithm.strategy import Strategy
from gpo_local.algorithm.trajectory import TrajectoryState, last_recorded, select_next
from gpo_local.algorithm.updates import UPDATES, UpdateContext, render_induction


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

    def _feedback(self, step: int, prompt: str, ask) -> tuple[dict, str | None]:
        """The step's gradient and the feedback shown in the meta-prompt (its momentum over the
        earlier feedback; None without a gradient); returns the step record so far with it."""
        states: dict = {}
        context = GradientContext(
            step=step,
            prompt=prompt,
            ask=ask,
            config=self.config,
            train_outcomes=partial(self.train_outcomes, step, prompt),
        )
        gradient = self._apply(self.gradient_of, context, states)
        record = {**gradient.record, **states}
        if gradient.text is None:
            return record, None
        self.gradients.append(GradientEntry(gradient.text, step))
        cfg = self.config
        context = FeedbackContext(
            step=step,
            gradient=gradient,
            history=tuple(self.gradients),
            k=cfg.k,
            selection=cfg.selection,
            embed=self.index.embedder.encode,
            ask=ask,
        )
        return record, self._apply(self.feedback_momentum, context, record)

    def _direction_context(self, step: int, state: TrajectoryState, ask) -> DirectionContext:
        return DirectionContext(
            step=step,
            trajectory=tuple(state.trajectory),
            known_scores=MappingProxyType(state.scores),
            k=self.config.k,
            selection=self.config.selection,
            similarities=self.index.similarities,
            ask=ask,
            score_dev=self.score_dev,
        )

    def step(self, step: int, state: TrajectoryState) -> None:
        cfg = self.config
        current = state.trajectory[-1]
        self.index.sync([e.prompt for e in state.trajectory])
        budget = self.schedule(len(state.trajectory)) if self.schedule else None
        if self.inducing(state):
            self.induce(step, state, budget)
            return
        ask = partial(self.ask, step=step)
        record, shown = self._feedback(step, current.prompt, ask)
        direction = self._apply(self.direction, self._direction_context(step, state, ask), record)
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
        induced = cfg.induced_candidates
        proposal = self.propose(
            [meta] * (cfg.candidates - induced)
            + self.induction_metas(step, range(cfg.candidates - induced, cfg.candidates)),
            step=step,
            state=state,
            current=current.prompt,
            budget=budget,
            parents=current.prompt,
        )
        meta = proposal.metas[0]
        if induced:
            record["induced_candidates"] = induced
        if self.replies.constrained:
            record["grammar_words"] = proposal.cap  # the constrained replies' word cap (None: unbounded)
        scored = self.score_candidates(
            step, state, proposal.candidates, parent=proposal.parents, budget=budget
        )
        prompt, score = select_next([(current.prompt, current.dev_score), *scored], state.selected)
        if self.gradients and self.gradients[-1].step == step:
            self.gradients[-1] = replace(self.gradients[-1], improvement=score - current.dev_score)
        self.choose(step, state, prompt, score, meta_prompt=meta, budget=budget, **record)

    def inducing(self, state: TrajectoryState) -> bool:
        return self.config.cold_start == "induce" and max(state.scores.values(), default=0.0) <= 0

    def induction_metas(self, step: int, candidates: range) -> list[str]:
        """Instruction-induction meta-prompts for the step's `candidates` (their indices), each
        showing its own seeded sample of input/output examples."""
        cfg = self.config
        return [
            render_induction(pick_demonstrations(self.task, cfg.format_examples, cfg.seed, step, j))
            for j in candidates
        ]

    def induce(self, step: int, state: TrajectoryState, budget: int | None) -> None:
        """The cold start's step: each candidate induced from its own sample of input/output
        examples (no gradient, history or step size: with every score at 0 they carry nothing);
        the next prompt is selected as in any step, so a 0-scoring induction leaves it as it was."""
        current = state.trajectory[-1]
        metas = self.induction_metas(step, range(self.config.candidates))
        proposal = self.propose(metas, step=step, state=state, parents=current.prompt)
        scored = self.score_candidates(step, state, proposal.candidates, parent=proposal.parents)
        prompt, score = select_next([(current.prompt, current.dev_score), *scored], state.selected)
        self.choose(step, state, prompt, score, meta_prompt=proposal.metas[0], budget=budget, start="induce")
