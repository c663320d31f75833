"""The `evaluate` service: the score of a prompt on a split of a task with the task model, the
one implementation behind `gpo_local.evaluate` and `gpo-local eval`.

It scores as `optimize` would have scored the prompt in a run of the task, so that a run's final
prompt scores here as it did there: the instruction goes where the task places it (its own
`position`, else GPOConfig's), the task model is the one the task suggests where none is named
(settings.suggested_models: antonyms takes the 0.5B when it is installed), and the prompt is
adapted to the task as an initial prompt is (an MMLU header gets its subject). Scoring is
strict: a prompt that does not fit the context with some question is an error naming it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from gpo_local.algorithm.config import GPOConfig
from gpo_local.algorithm.evaluator import Evaluator
from gpo_local.app.bounds import check_runtime
from gpo_local.app.model_records import describe_model
from gpo_local.app.progress import Progress, generated_tokens
from gpo_local.app.settings import suggested_models
from gpo_local.backends.catalog import DEFAULT_MODEL
from gpo_local.backends.cluster import ray_request
from gpo_local.backends.registry import get_model, memoized, runtime_options
from gpo_local.core import EvalResult
from gpo_local.runs.directory import home_dir
from gpo_local.runs.storage import check_home
from gpo_local.tasks import Task


@dataclass(frozen=True)
class Evaluation(EvalResult):
    """What `evaluate` returns: the EvalResult (prompt as scored, split, score, outcomes) and
    how it was scored: the task's name, the instruction's position, the task model (its spec,
    path and sha256) and the notices said before it loaded."""

    task: str = ""
    position: str = GPOConfig.position
    model: Mapping[str, Any] = field(default_factory=dict)
    notices: tuple[str, ...] = ()


def default_position(task: Task) -> str:
    """Where the instruction goes when the caller names no position: where `optimize` puts it,
    the shared default for every task."""
    return GPOConfig.position


def task_model_spec(task: Task, named: str | None) -> tuple[str, list[str]]:
    """The task model's spec (the one named, else the task's suggestion where it is installed,
    else the bundled model) and the notices that explain a suggestion left out."""
    given = {"task_model"} if named else set()
    runtime, notices = suggested_models(
        {"task_model": named or DEFAULT_MODEL}, given, task.suggested_models, roles=("task_model",)
    )
    return runtime["task_model"], notices


def _task_model(
    task: Task, task_model: str | Any | None, runtime: Mapping, ray, on_notice: Callable[[str], None] | None
) -> tuple[str | None, Any, list[str]]:
    """(its spec, the model, the notices said) of the task model: loaded from a spec (the one
    named, else the task's suggestion), after the runtime bounds are checked; or an LLM object
    as given (no spec)."""
    if not (task_model is None or isinstance(task_model, (str, Path))):
        return None, task_model, []
    spec, notices = task_model_spec(task, str(task_model) if task_model is not None else None)
    for notice in notices:
        if on_notice:
            on_notice(notice)
    # The machine's and the model's bounds (threads, context, KV memory) before the model loads.
    check_runtime({**runtime, "task_model": spec}, force=bool(runtime.get("force")), roles=("task_model",))
    if not runtime["no_cache"]:  # GPO_LOCAL_HOME must be a directory, known before the model loads
        check_home(home_dir())
    llm = get_model(spec, role="task", ray=ray, **runtime_options(runtime))
    return spec, llm, notices


def score_prompt(
    task: Task,
    prompt: str,
    *,
    split: str,
    limit: int | None,
    position: str | None,
    task_model: str | Any | None,
    runtime: Mapping,
    quiet: bool = True,
    events_path: Path | None = None,
    on_notice: Callable[[str], None] | None = None,
) -> Evaluation:
    """The service (module docstring). `task_model` is a spec, an LLM object, or None for the
    default; `runtime` holds the declared runtime options (n_ctx, threads, n_gpu_layers,
    parallel, no_cache, ray, ray_actors)."""

    ray = ray_request(runtime)  # ray_actors without ray fails before anything loads
    task.split(split, limit)  # a missing split fails before the model loads
    position = position or default_position(task)
    spec, llm, notices = _task_model(task, task_model, runtime, ray, on_notice)
    prompt = task.adapt_prompt(prompt)
    ui = Progress(quiet, events_path=events_path, tokens=generated_tokens(llm))
    evaluator = Evaluator(
        memoized(llm, runtime["no_cache"]),
        task,
        position=position,
        on_progress=ui.progress,
        on_event=ui.event,
    )
    with ui:
        ui.event(
            "run_started",
            {"task": task.name, "split": split, "prompt": prompt, "questions": len(task.split(split, limit))},
        )
        result = evaluator.score(prompt, split, limit=limit)
    ui.finish({"score": result.score, "n": result.n})
    model = describe_model(spec, llm)
    return Evaluation(
        prompt=result.prompt,
        split=result.split,
        score=result.score,
        outcomes=result.outcomes,
        task=task.name,
        position=position,
        model=model,
        notices=tuple(notices),
    )
