"""The Python API (`gpo_local.optimize`, `gpo_local.evaluate`, `gpo_local.load_task`, `show`,
`report`, `bench_quality`), and the run logic the command line shares with it: each command of
`gpo-local` parses its arguments, calls one function here and renders what it returns
(`optimize` is `run_settings` behind click, `eval` is `evaluate`).

A task is a name or path as on the command line, a Task, or in-memory rows (tasks/memory.py);
a metric is a name or a callable `(prediction, example) -> float`; a model is a catalog name, a
GGUF path or any object with the `LLM` protocol's `generate` (backends). Options are the
declared ones (config.OPTIONS), checked here with the same messages as a TOML file's. Errors
are GpoError subclasses; nothing here prints unless asked (quiet defaults to True).
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from gpo_local import quality
from gpo_local.algorithm.budget import reference_calls
from gpo_local.algorithm.config import BY_NAME, check_value, defaults, names
from gpo_local.algorithm.index import TrajectoryIndex
from gpo_local.app.evaluation import Evaluation, score_prompt
from gpo_local.app.intervals import binary_rule, run_error_bars
from gpo_local.app.mlflow_observer import MlflowObserver
from gpo_local.app.mlflow_observer import requested as mlflow_requested
from gpo_local.app.model_records import describe_model, identity_notices, loading_notices
from gpo_local.app.progress import Progress, generated_tokens
from gpo_local.app.report import write_report
from gpo_local.app.settings import describe, resolve, with_answer_limits
from gpo_local.backends.cluster import connect
from gpo_local.backends.llama_cpp import LlamaCppModel
from gpo_local.backends.registry import (
    check_embedder,
    get_embedder,
    get_model,
    get_models,
    memoized,
    runtime_options,
)
from gpo_local.backends.served import ServedModel
from gpo_local.core import TrajectoryEntry
from gpo_local.errors import ConfigError, ModelError, OptionValue
from gpo_local.methods import get_method
from gpo_local.quality import BenchConfig, Cell, check_cells, load_config, run_bench
from gpo_local.quality.ray_run import RayCells
from gpo_local.runs.directory import RunDir, home_dir, package_versions
from gpo_local.runs.health import interrupted_run_error
from gpo_local.runs.rundata import RunView, load_run
from gpo_local.tasks import Task
from gpo_local.tasks import load_task as load_spec
from gpo_local.tasks.memory import task_from_rows


@dataclass(frozen=True)
class RunResult:
    """What `optimize` returns: the initial and the final prompt with their scores, why the run
    ended, the budget spent, the trajectory, and the run directory (result.json holds the rest)."""

    run_dir: Path
    initial_prompt: str
    final_prompt: str
    initial_dev: float
    final_dev: float
    initial_test: float | None
    final_test: float | None
    stopped: str
    usage: Mapping[str, float]
    trajectory: tuple[TrajectoryEntry, ...]


def load_task(
    task: Any,
    *,
    seed: int = 0,
    input_field: str | None = None,
    target_field: str | None = None,
    metric: str | Callable | None = None,
    name: str | None = None,
    **loading,
) -> Task:
    """A Task from a name or path as on the command line, or from in-memory rows."""

    if isinstance(task, Task):
        return task
    if isinstance(task, (str, Path)) and not callable(metric):
        return load_spec(
            str(task),
            seed=seed,
            input_field=input_field,
            target_field=target_field,
            metric=metric.lower() if metric else None,
            **loading,
        )
    if isinstance(task, (str, Path)):
        raise ConfigError(
            "a metric callable needs in-memory rows (a task given by name or path names its metric)"
        )
    return task_from_rows(
        task, name=name or "data", input_field=input_field, target_field=target_field, metric=metric
    )


def _checked(options: dict) -> dict:
    """The options, each a declared one of the right type and range (config.OPTIONS)."""
    for key, value in options.items():
        if key not in BY_NAME:
            raise ConfigError(f"unknown option {key!r}; known: {', '.join(BY_NAME)}")
        if value is not None:
            options[key] = check_value(BY_NAME[key], value, key)
    return options


def _model_spec(model: Any) -> tuple[str | None, Any]:
    """(catalog name or path, None), (None, an LLM object), or (None, None) for the default."""
    if model is None:
        return None, None
    if isinstance(model, (str, Path)):
        return str(model), None
    if not callable(getattr(model, "generate", None)):
        raise ModelError(f"{type(model).__name__} is not a model: it has no generate() method")
    if not isinstance(getattr(model, "fingerprint", None), str):
        raise ModelError(
            f"{type(model).__name__} has no `fingerprint` string (what identifies its weights, for the "
            "memo cache and config.json)"
        )
    return None, model


def optimize(
    task: Any,
    *,
    method: str = "gpo",
    task_model: Any = None,
    optimizer_model: Any = None,
    metric: str | Callable | None = None,
    run_dir: str | Path | None = None,
    embedder: Any = None,
    input_field: str | None = None,
    target_field: str | None = None,
    quiet: bool = True,
    on_event: Callable[[str, dict], None] | None = None,
    **options,
) -> RunResult:
    """Optimize the instruction for `task` and return the result (module docstring).

    `options` are the declared options (steps, candidates, gradient, momentum, ... see
    `gpo-local optimize --help`; underscores for dashes); `embedder` is a catalog name, a path
    or an object with `encode(texts)`, `dimension` and `fingerprint`. Models not given are
    chosen as on the command line (settings.suggested_models), so both run the same."""

    task_spec, task_llm = _model_spec(task_model)
    optimizer_spec, optimizer_llm = _model_spec(optimizer_model)
    embedder_spec, embedder_object = (
        (str(embedder), None) if isinstance(embedder, (str, Path)) else (None, embedder)
    )
    values = _checked(
        {
            **options,
            "method": method,
            "task_model": task_spec,
            "optimizer_model": optimizer_spec,
            "embedder": embedder_spec,
            "run_dir": str(run_dir) if run_dir else None,
            "quiet": quiet,
        }
    )
    if isinstance(task, (str, Path)) and not callable(metric):
        loaded = str(task)  # loaded by settings.resolve, with the loading options, as on the command line
        values.update(input_field=input_field, target_field=target_field, metric=metric)
    else:
        loaded = load_task(
            task,
            seed=values.get("seed") or 0,
            input_field=input_field,
            target_field=target_field,
            metric=metric,
        )
    given = {key for key, value in values.items() if value is not None and key != "quiet"}
    settings = resolve(loaded, values, given)
    models = None
    if task_llm is not None or optimizer_llm is not None:
        models = _objects(settings, task_llm, optimizer_llm)
    summary, directory, result = run_settings(
        settings, None, models=models, embedder=embedder_object, on_event=on_event
    )
    return RunResult(
        run_dir=directory,
        initial_prompt=result.initial.prompt,
        final_prompt=result.final.prompt,
        initial_dev=result.initial.dev_score,
        final_dev=result.final.dev_score,
        initial_test=result.initial_test,
        final_test=result.final_test,
        stopped=result.stopped,
        usage=dict(result.usage),
        trajectory=tuple(result.trajectory),
    )


def show(run_dir: str | Path) -> RunView:
    """A run's records (steps, candidates, budgets, result), as `gpo-local show` renders them."""
    return load_run(Path(run_dir))


def report(run_dirs: str | Path | list, output: str | Path | None = None) -> Path:
    """Write one self-contained HTML report of runs or of a `bench quality` output directory and
    return its path: `output`, else RUN_DIR/report.html for one directory, else ./report.html."""
    paths = [Path(p) for p in ([run_dirs] if isinstance(run_dirs, (str, Path)) else run_dirs)]
    default = paths[0] / "report.html" if len(paths) == 1 else Path("report.html")
    target = Path(output) if output else default
    write_report(paths, target)
    return target


def bench_cells(
    config_path: str | Path, out: str | Path | None = None, *, data_root: str | Path | None = None
) -> tuple[BenchConfig, Path, list[Cell]]:
    """A bench config's cells, checked against what `out` already holds (default:
    $GPO_LOCAL_HOME/bench/<config name>): (config, out, cells). `data_root`: the folder the
    config's relative task paths are read from (default: $GPO_LOCAL_DATA, else the config's)."""
    config = load_config(Path(config_path), data_root=Path(data_root) if data_root else None)
    target = Path(out) if out else home_dir() / "bench" / Path(config_path).stem
    check_cells(config, target)
    return config, target, config.cells(target)


def bench_quality(
    config_path: str | Path,
    *,
    out: str | Path | None = None,
    ray: str | None = None,
    ui=None,
    data_root: str | Path | None = None,
) -> dict:
    """Run every unfinished cell of a bench config (one optimize run per cell; resumable) and
    return the results, also written to out/results.{md,csv,json}. `ray`: the address of a Ray
    cluster to run the cells on as Ray tasks."""
    config, target, _ = bench_cells(config_path, out, data_root=data_root)
    run_cells = RayCells(connect(ray)) if ray else None
    # Looked up on the package at call time: tests put a scripted runner there.
    return run_bench(config, target, runner=quality.SubprocessRunner(), ui=ui, run_cells=run_cells)


def _objects(settings, task_llm, optimizer_llm):
    """The (task, optimizer) models when at least one is an object; a named one is loaded."""
    runtime = settings.runtime
    if task_llm is None or (optimizer_llm is None and runtime["optimizer_model"]):
        named = task_llm is None
        loaded = (
            _load(runtime, runtime["task_model"], "task")
            if named
            else _load(runtime, runtime["optimizer_model"], "optimizer")
        )
        task_llm, optimizer_llm = (loaded, optimizer_llm) if named else (task_llm, loaded)
    return task_llm, optimizer_llm or task_llm


def _load(runtime: dict, spec: str, role: str):
    return get_model(spec, role=role, **runtime_options(runtime))


# What `evaluate` takes besides its own arguments: how TASK loads, and where the task model runs.
EVALUATE_OPTIONS = (set(names("task")) | set(names("runtime"))) - {"optimizer_model", "embedder"}


def evaluate(
    task: Any,
    prompt: str,
    *,
    split: str = "eval",
    task_model: Any = None,
    metric: str | Callable | None = None,
    limit: int | None = None,
    position: str | None = None,
    input_field: str | None = None,
    target_field: str | None = None,
    no_cache: bool = False,
    answer_max_tokens: str | None = None,
    quiet: bool = True,
    events_path: str | Path | None = None,
    on_notice: Callable[[str], None] | None = None,
    **options,
) -> Evaluation:
    """The score of `prompt` on a split of `task` with the task model, as `gpo-local eval` gives
    it (app/evaluation.py): the task's own position unless `position` is given, the model the task
    suggests unless `task_model` is given (a spec or an LLM object), the prompt adapted to the
    task. Strict: a prompt that does not fit the context with some question is an error naming
    it. `answer_max_tokens`: the task-model reply limit, "N" or "N1,N2" per round (the task's own by
    default). `options`: dataset_config and splits (how TASK loads), n_ctx, threads, n_gpu_layers,
    parallel, ray and ray_actors (where the task model runs)."""

    for key in options:
        if key in BY_NAME and key not in EVALUATE_OPTIONS:
            raise ConfigError(OptionValue(key), " does not apply to evaluate")
    _checked({"position": position, "no_cache": no_cache, **options})
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise ConfigError(OptionValue("limit", limit), " must be an int of at least 1")
    loading = {key: options.pop(key) for key in names("task") if options.get(key) is not None}
    loaded = load_task(task, input_field=input_field, target_field=target_field, metric=metric, **loading)
    loaded = with_answer_limits(loaded, answer_max_tokens)
    spec, llm = _model_spec(task_model)
    given = {key: value for key, value in options.items() if value is not None}
    runtime = {**defaults("runtime"), **given, "no_cache": no_cache}
    return score_prompt(
        loaded,
        prompt,
        split=split,
        limit=limit,
        position=position,
        task_model=llm if llm is not None else spec,
        runtime=runtime,
        quiet=quiet,
        events_path=Path(events_path) if events_path else None,
        on_notice=on_notice,
    )


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
    record = _config_record(settings, described, task_llm)
    run.resume(record, saved) if saved is not None else run.start(record)
    observer = _mlflow_observer(settings, run, record)
    cached_task = memoized(task_llm, runtime["no_cache"])
    cached_optimizer = (
        cached_task if optimizer_llm is task_llm else memoized(optimizer_llm, runtime["no_cache"])
    )

    def event(kind, data):
        ui.event(kind, data)
        if observer is not None:
            observer.event(kind, data)
        if on_event:
            on_event(kind, data)

    method = method_class(
        task=settings.task,
        task_llm=cached_task,
        optimizer_llm=cached_optimizer,
        index=TrajectoryIndex(run.path / "indexes", embed),
        config=config,
        log=run.log(),
        initial_prompt=settings.initial_prompt,
        limits=settings.limits,
        on_event=event,
        on_progress=ui.progress,
    )
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
            result = method.run()
        except BaseException as error:
            if observer is not None:
                observer.failed(error)
            raise
    summary = {**result_summary(result, method, config), "models": described}
    run.write_result(summary)
    if observer is not None:
        observer.finished(summary)
    ui.finish(
        {
            key: summary[key]
            for key in ("initial", "final", "initial_test", "final_test", "seconds", "stopped")
        }
    )
    return summary, run.path, result


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
