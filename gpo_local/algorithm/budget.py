"""Budget arithmetic: the optimizer calls each step may make, GPO's reference budget that every
method fits into, and what a configuration will cost before it runs (`optimize --dry-run`).

The original code's cost per task, adapted to this implementation:

    optimizer calls  = sum of the method's planned step costs (method.Method.plan_for):
                       GPO: T*C (+T feedback gradients, +(T-1) real-time momentum updates);
                       every baseline fits its steps into GPO's headline budget T*C
    prompts scored   <= 1 (p0) + the new prompts of each step (C per GPO step, + the summary
                       prompt of real-time momentum over prompts; one per call for APE, OPRO,
                       PE2; C-1 per APO step)
    dev scorings     = prompts scored * N_dev
    generations      <= R * dev scorings                  (R = 2 with two-round extraction)
                      + R * B * (steps scoring a train minibatch: feedback gradient, APO, PE2)
                      + R * N_test * 2                    (test: p0 and the final prompt only)

These are upper bounds: a regenerated prompt is not scored again, and a test of p0 alone when
it stays the best. The reply quota (quota.py) asks again for unusable replies, at most as many
times again as a call asked: with it on, a run may make up to twice its planned calls, and its
budget (call_budget) is twice the reference, so the quota never ends a run before its last step
and every method, each asking through the same quota, gets the same allowance. Memo hits count
in the budget (they are what the algorithm asked for) but cost no time, so a re-run or a resume
is faster than the estimate. The wall time is estimated in walltime.py, from rates timed the way
a run spends them.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Sequence

from gpo_local.algorithm.config import HEADLINE_SWITCHES, GPOConfig, Limits
from gpo_local.algorithm.quota import ASKS_PER_CANDIDATE


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


def call_budget(config: GPOConfig, limits: Limits) -> int:
    """The optimizer calls a run may make: the budget (reference_calls), or the limit when lower.
    Without the reply quota no step exceeds its plan, which fits in the budget. With it, the
    budget is the quota's bound on the plan, so a step's extra asks never take the calls a later
    step planned and the quota cannot end a run before its last step."""
    limit = limits.max_optimizer_calls
    budget = reference_calls(config) * (ASKS_PER_CANDIDATE if config.reply_quota else 1)
    return budget if limit is None else min(budget, limit)


def within_budget(costs: Sequence[int], total: int) -> list[int]:
    """The longest prefix of `costs` whose sum fits in `total`."""
    kept, used = [], 0
    for cost in costs:
        if used + cost > total:
            break
        kept.append(cost)
        used += cost
    return kept
