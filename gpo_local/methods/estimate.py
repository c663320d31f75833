"""The cost of a run before it starts: optimizer calls, prompts scored and task-model generations
of a method on a task (`optimize --dry-run`; its wall time is app/walltime.py's)."""

from __future__ import annotations

from dataclasses import dataclass

from gpo_local.algorithm.config import GPOConfig
from gpo_local.algorithm.quota import ASKS_PER_CANDIDATE
from gpo_local.methods import get_method
from gpo_local.tasks import Task


@dataclass(frozen=True)
class Estimate:
    method: str
    steps: int
    optimizer_calls: int
    prompts_scored: int
    dev_scorings: int
    train_scorings: int
    test_scorings: int
    task_generations: int
    rounds: int
    reply_quota: bool = False  # then the calls may reach ASKS_PER_CANDIDATE times the plan


def estimate(config: GPOConfig, task: Task) -> Estimate:
    method = get_method(config.method)
    plan = method.plan_for(config)
    rounds = 2 if task.rule.two_rounds else 1
    n_dev = len(task.split("eval", config.dev_limit))
    n_test = len(task.split("test", config.test_limit)) if "test" in task.splits else 0
    scored = 1 + sum(method.scored_per_step(config, cost, step) for step, cost in enumerate(plan))
    trains = method.trains(config)
    batch = min(config.train_batch, len(task.split("train"))) if trains else 0
    train_scorings = batch * len(plan)
    test_scorings = 2 * n_test
    generations = rounds * (scored * n_dev + train_scorings + test_scorings)
    return Estimate(
        method=config.method,
        steps=len(plan),
        optimizer_calls=sum(plan),
        reply_quota=config.reply_quota,
        prompts_scored=scored,
        dev_scorings=scored * n_dev,
        train_scorings=train_scorings,
        test_scorings=test_scorings,
        task_generations=generations,
        rounds=rounds,
    )


def format_estimate(est: Estimate) -> str:
    """The counts of a dry run; its wall time is walltime.py's."""
    bound = f" (up to {ASKS_PER_CANDIDATE * est.optimizer_calls} with the reply quota's asks)"
    lines = [
        f"method {est.method}: {est.steps} steps",
        f"  optimizer calls:         {est.optimizer_calls}{bound if est.reply_quota else ''}",
        f"  prompts scored on dev:   <= {est.prompts_scored} (p0 included; regenerated prompts are not "
        f"rescored)",
        f"  dev scorings:            <= {est.dev_scorings} (prompt, dev example) pairs",
        f"  train scorings:          {est.train_scorings}",
        f"  test scorings:           <= {est.test_scorings} (p0 and the final prompt)",
        f"  task-model generations:  <= {est.task_generations} ({est.rounds} "
        f"round{'s' if est.rounds > 1 else ''} "
        "per scoring)",
    ]
    return "\n".join(lines)
