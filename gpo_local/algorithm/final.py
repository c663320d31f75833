"""The end of a run: the final prompt chosen from the trajectory, the initial and the final
prompt scored on the test split, and the `RunResult` that reports them.

The test split is scored for these two prompts only (one evaluator call; one prompt when the
final prompt is the initial one), and not at all for a task without a test split.
"""

from __future__ import annotations

from typing import Sequence

from gpo_local.algorithm.evaluator import Evaluator
from gpo_local.algorithm.trajectory import final_choice
from gpo_local.algorithm.usage import Meter
from gpo_local.core import RunResult, TrajectoryEntry


def final_result(
    evaluator: Evaluator,
    trajectory: Sequence[TrajectoryEntry],
    test_limit: int | None,
    stopped: str,
    meter: Meter,
) -> RunResult:
    """The run's result; `stopped` says why the steps ended, `meter` gives the usage after the
    test scoring."""
    initial, final = trajectory[0], final_choice(trajectory)
    initial_test = final_test = None
    results = [None]
    if "test" in evaluator.task.splits:
        prompts = [initial.prompt] if final.prompt == initial.prompt else [initial.prompt, final.prompt]
        results = evaluator.evaluate(prompts, "test", limit=test_limit)
        initial_test, final_test = results[0].score, results[-1].score
    return RunResult(
        initial=initial,
        final=final,
        initial_test=initial_test,
        final_test=final_test,
        trajectory=tuple(trajectory),
        initial_test_result=results[0],
        final_test_result=results[-1],
        stopped=stopped,
        usage=meter.usage(),
    )
