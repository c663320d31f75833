"""Running an optimization, as `gpo-local optimize` and `gpo_local.optimize` (api.py) both do:
`run_settings` takes a run's resolved settings (settings.py), locks the run directory, loads the
models and the embedder, writes config.json (what the run needs to be reproduced and resumed),
runs the method with the progress display, the MLflow observer and the caller's event callback
listening, and writes result.json (`result_summary`: scores, usage, budget, drops, error bars).
A resume is the same call with the saved config.json.
"""

from __future__ import annotations

import sys
from dataclasses import asdict

from gpo_local.algorithm.budget import call_budget, reference_calls
from gpo_local.algorithm.index import TrajectoryIndex
from gpo_local.app.intervals import binary_rule, run_error_bars
from gpo_local.app.mlflow_observer import MlflowObserver, tracking_uri
from gpo_local.app.mlflow_observer import requested as mlflow_requested
from gpo_local.app.model_records import describe_model, identity_notices, loading_notices
from gpo_local.app.progress import Progress, generated_tokens
from gpo_local.app.settings import describe
from gpo_local.backends.llama_cpp import LlamaCppModel
from gpo_local.backends.registry import check_embedder, get_embedder, get_models, memoized
from gpo_local.backends.served import ServedModel
from gpo_local.methods import get_method
from gpo_local.runs.directory import RunDir, package_versions
from gpo_local.runs.health import interrupted_run_error


def _loaded_by_name(llm) -> bool:

    return isinstance(llm, (LlamaCppModel, ServedModel))


def _describe_model(spec, model) -> dict:
    return describe_model(spec, model)


def _config_record(settings, models: dict, task_llm) -> dict:
    """config.json of a run: what it needs to be reproduced and resumed."""

    runtime = settings.runtime
    return {
        "task": settings.task_spec,
        "task_source": settings.task.source,
        "task_options": settings.task.options,
        "method": settings.config.method,
        **describe(settings),
        "initial_prompt": settings.initial_prompt,
        "models": models,
        "settings": {
            "n_ctx": runtime["n_ctx"],
            "threads": getattr(task_llm, "n_threads", runtime["threads"]),
            "n_gpu_layers": runtime["n_gpu_layers"],
            "parallel": runtime["parallel"],
            "cache": not runtime["no_cache"],
        },
        "versions": package_versions(),
        "command": sys.argv,
    }


def result_summary(result, method, config) -> dict:
    """result.json of a run."""

    plan = method.plan()
    summary = {
        "task": method.task.name,
        "method": config.method,
        "initial": asdict(result.initial),
        "final": asdict(result.final),
        "initial_test": result.initial_test,
        "final_test": result.final_test,
        **{
            key: result.usage[key]
            for key in (
                "task_generations",
                "dev_scorings",
                "optimizer_calls",
                "task_tokens",
                "optimizer_tokens",
            )
        },
        "seconds": round(result.usage["seconds"], 1),
        "stopped": result.stopped,
        # This process's CPU seconds: a cost that pauses and a busy machine do not inflate.
        "cpu_seconds": round(result.usage["cpu_seconds"], 1),
        # The budget this method planned within GPO's under the same config (see methods/__init__.py).
        "budget": {
            "steps_planned": len(plan),
            "steps_done": len(result.trajectory) - 1,
            "optimizer_calls_planned": sum(plan),
            "reference_optimizer_calls": reference_calls(config),
            # What the run could spend: twice the reference with the reply quota (budget.py).
            "optimizer_call_budget": call_budget(config, method.limits),
        },
        "drops": method.drop_totals(),  # dropped optimizer replies by reason (drops.py)
        "candidate_replies": method.replies.reply_total(),  # the replies those drops are out of
        **method.quota_totals(),  # the reply quota's asks (algorithm/quota.py)
        # Per-example test outcomes of the initial and the final prompt (for reports).
        "test_outcomes": {
            role: [asdict(o) for o in r.outcomes] if r else None
            for role, r in (("initial", result.initial_test_result), ("final", result.final_test_result))
        },
    }
    # Standard errors of the scores and the test gain's paired 95% interval (app/intervals.py).
    questions = len(method.task.split("eval", config.dev_limit))
    summary.update(
        run_error_bars(summary, list(method.log.records()), questions, binary_rule(method.task.rule))
    )
    return summary


def _models_and_embedder(settings, models, embedder, run):
    """The models and the embedder, and the function that releases the run's lock, taken
    before any model loads (RunDir.lock)."""

    runtime = settings.runtime
    if embedder is None:
        check_embedder(runtime["embedder"])  # a missing embedder fails before any model loads
    release = run.lock(cache=not runtime["no_cache"])
    try:
        return _load_models(settings, models, embedder), release
    except BaseException:
        release()
        raise


def _load_models(settings, models, embedder):

    runtime = settings.runtime
    if models is None:
        # With ray, the task model runs on Ray actors and the optimizer here (registry.py).
        models = get_models(runtime["task_model"], runtime["optimizer_model"], runtime)
    if embedder is None:
        embedder = get_embedder(runtime["embedder"])
    return models, embedder


def run_settings(settings, saved: dict | None, *, models=None, embedder=None, on_event=None):
    """Run (or resume, with the saved config.json) an optimization: (result.json, run dir, result)."""

    run = (
        RunDir(settings.run_dir)
        if saved is not None
        else RunDir.for_new_run(settings.run_dir, settings.task.name)
    )
    get_method(settings.config.method)  # an unknown method fails before any model loads
    tracking_uri(mlflow_requested(settings.runtime.get("mlflow")))  # and so does a blank --mlflow
    try:
        ui = Progress(settings.quiet, events_path=run.events_path)
        ui.note(f"run directory: {run.path}")
        for notice in loading_notices(settings.runtime):
            ui.note(notice)
        ((task_llm, optimizer_llm), embed), release = _models_and_embedder(settings, models, embedder, run)
        try:
            return _run_locked(settings, saved, run, ui, (task_llm, optimizer_llm), embed, models, on_event)
        finally:
            release()
    except OSError as error:  # a full disk: the file, the run directory and the command that goes on
        raise interrupted_run_error(error, run.path) from None


def _run_locked(settings, saved, run, ui, llms, embed, models, on_event):
    """The rest of run_settings, with the run's lock held."""

    config, runtime = settings.config, settings.runtime
    method_class = get_method(config.method)
    task_llm, optimizer_llm = llms
    ui.count_tokens(generated_tokens(task_llm, optimizer_llm))
    for notice in identity_notices((task_llm, optimizer_llm), cache=not runtime["no_cache"]):
        ui.note(notice)
    described = _described_models(runtime, llms, embed, models)
    record = _config_record(settings, described, task_llm)
    run.resume(record, saved) if saved is not None else run.start(record)
    observer = _mlflow_observer(settings, run, record)
    cached_task = memoized(task_llm, runtime["no_cache"])
    cached_optimizer = (
        cached_task if optimizer_llm is task_llm else memoized(optimizer_llm, runtime["no_cache"])
    )
    method = method_class(
        task=settings.task,
        task_llm=cached_task,
        optimizer_llm=cached_optimizer,
        index=TrajectoryIndex(run.path / "indexes", embed),
        config=config,
        log=run.log(),
        initial_prompt=settings.initial_prompt,
        limits=settings.limits,
        on_event=_event_fanout(ui, observer, on_event),
        on_progress=ui.progress,
    )
    result = _run_method(method, settings, saved, run, ui, observer)
    summary = {**result_summary(result, method, config), "models": described}
    _write_result(summary, run, ui, observer)
    return summary, run.path, result


def _described_models(runtime: dict, llms, embed, models) -> dict:
    """config.json's `models`: the task and optimizer models and the embedder, each with its spec
    (None for an object from the Python API: no catalog name to record) and its identity."""
    task_llm, optimizer_llm = llms
    named = {"task": runtime["task_model"], "optimizer": runtime["optimizer_model"] or runtime["task_model"]}
    if models is not None:  # objects from the Python API: no catalog name to record
        named = {role: named[role] if _loaded_by_name(llm) else None for role, llm in zip(named, models)}
    described = {
        role: _describe_model(named[role], llm)
        for role, llm in (("task", task_llm), ("optimizer", optimizer_llm))
    }
    described["embedder"] = {
        "spec": runtime["embedder"],
        "path": getattr(embed, "source", type(embed).__name__),
        "fingerprint": embed.fingerprint,
    }
    return described


def _event_fanout(ui, observer, on_event):
    """The method's event callback: every event goes to the progress display, the MLflow
    observer (if any) and the caller's `on_event` (if any), in that order."""

    def event(kind, data):
        ui.event(kind, data)
        if observer is not None:
            observer.event(kind, data)
        if on_event:
            on_event(kind, data)

    return event


def _run_method(method, settings, saved, run, ui, observer):
    """The method's run inside the progress display, announced by `run_started`; a failure is
    reported to the MLflow observer before it propagates."""
    config = settings.config
    with ui:
        ui.event(
            "run_started",
            {
                "task": settings.task.name,
                "run_dir": str(run.path),
                "resumed": saved is not None,
                "steps": config.steps,
                "candidates": config.candidates,
                "dev_questions": len(settings.task.split("eval", config.dev_limit)),
            },
        )
        try:
            return method.run()
        except BaseException as error:
            if observer is not None:
                observer.failed(error)
            raise


def _write_result(summary: dict, run, ui, observer) -> None:
    """result.json written, the MLflow run closed and the progress display's closing lines."""
    run.write_result(summary)
    if observer is not None:
        observer.finished(summary)
    ui.finish(
        {
            key: summary[key]
            for key in ("initial", "final", "initial_test", "final_test", "seconds", "stopped")
        }
    )


def _mlflow_observer(settings, run, record: dict):
    """The run's MLflow observer where --mlflow asks for one (app/mlflow_observer.py), else None."""
    option = mlflow_requested(settings.runtime.get("mlflow"))
    if not option:
        return None
    resolved = {
        "task": settings.task_spec,
        "method": settings.config.method,
        **describe(settings),
        "models": {role: model.get("spec") for role, model in record["models"].items()},
    }
    return MlflowObserver.open(run.path, option, resolved_options=resolved, model_identities=record["models"])
