"""The Python API (`gpo_local.optimize`, `gpo_local.evaluate`, `gpo_local.load_task`, `show`,
`report`, `bench_quality`), which the command line shares: each command of `gpo-local` parses
its arguments, calls one function here or in running.py and renders what it returns (`optimize`
is running.run_settings behind click, `eval` is `evaluate`).

A task is a name or path as on the command line, a Task, or in-memory rows (tasks/memory.py);
a metric is a name or a callable `(prediction, example) -> float`; a model is a catalog name, a
GGUF path or any object with the `LLM` protocol's `generate` (backends). Options are the
declared ones (config.OPTIONS), checked here with the same messages as a TOML file's. Errors
are GpoError subclasses; nothing here prints unless asked (quiet defaults to True).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from gpo_local import quality
from gpo_local.algorithm.config import BY_NAME, check_value, defaults, names
from gpo_local.app.evaluation import Evaluation, score_prompt
from gpo_local.app.report import write_report
from gpo_local.app.running import run_settings
from gpo_local.app.settings import resolve, with_answer_limits
from gpo_local.backends.cluster import connect
from gpo_local.backends.registry import get_model, runtime_options
from gpo_local.core import TrajectoryEntry
from gpo_local.errors import ConfigError, ModelError, OptionValue
from gpo_local.quality import BenchConfig, Cell, check_cells, load_config, run_bench
from gpo_local.quality.ray_run import RayCells
from gpo_local.runs.directory import home_dir
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
    loaded = _task_or_spec(task, values, metric=metric, input_field=input_field, target_field=target_field)
    given = {key for key, value in values.items() if value is not None and key != "quiet"}
    settings = resolve(loaded, values, given)
    models = None
    if task_llm is not None or optimizer_llm is not None:
        models = _objects(settings, task_llm, optimizer_llm)
    summary, directory, result = run_settings(
        settings, None, models=models, embedder=embedder_object, on_event=on_event
    )
    return _run_result(directory, result)


def _task_or_spec(task: Any, values: dict, *, metric, input_field, target_field) -> Task | str:
    """What settings.resolve takes as the task: a name or path as a string, loaded there with the
    loading options (added to `values`), as on the command line; else the Task loaded here."""
    if isinstance(task, (str, Path)) and not callable(metric):
        values.update(input_field=input_field, target_field=target_field, metric=metric)
        return str(task)
    return load_task(
        task,
        seed=values.get("seed") or 0,
        input_field=input_field,
        target_field=target_field,
        metric=metric,
    )


def _run_result(directory: Path, result) -> RunResult:
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
