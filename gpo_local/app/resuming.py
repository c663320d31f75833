"""Settings to continue a run (`optimize --resume`, `repair`): the task, configuration, initial
prompt and models the run was started with, read from its config.json.

What a resume may change: a larger --steps, the budget limits, and how the run is carried out
here (threads, quiet, Ray, MLflow, --force, the run directory); the changes are announced as
notices. A task or any other option given that differs from the saved run is refused with both
values (`resume_changes`). A run recorded before --answer-max-tokens existed keeps the reply
limits it had. New runs are resolved in settings.py.
"""

from __future__ import annotations

from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from gpo_local.algorithm.config import GPOConfig, Limits
from gpo_local.algorithm.directions import canonical_selection
from gpo_local.algorithm.schedules import canonical_schedule
from gpo_local.app.bounds import check_runtime
from gpo_local.app.settings import LIMITS, TASK_KEYS, Settings, merge, with_answer_limits
from gpo_local.backends.cluster import ray_request
from gpo_local.errors import ConfigError
from gpo_local.tasks import Task, load_task
from gpo_local.tasks.answer_length import UNKNOWN_FAMILY_TOKENS

# What a resumed run may change: its budget (larger --steps, the limits) and how it runs here.
RESUME_RAISABLE = ("steps",)
# Options that change how a run is carried out or watched, never its results: free on resume.
RESUME_FREE = (*LIMITS, "threads", "quiet", "ray", "ray_actors", "force", "run_dir", "mlflow")
SAVED_RUNTIME = {
    "task_model": ("models", "task", "spec"),
    "optimizer_model": ("models", "optimizer", "spec"),
    "embedder": ("models", "embedder", "spec"),
    "n_ctx": ("settings", "n_ctx"),
    "n_gpu_layers": ("settings", "n_gpu_layers"),
    "parallel": ("settings", "parallel"),
}


def _saved_value(saved: dict, name: str) -> Any:
    """The value of option `name` a run was started with (config.json)."""
    if name in saved["config"]:
        return saved["config"][name]
    if name in SAVED_RUNTIME:
        value = saved
        for key in SAVED_RUNTIME[name]:
            value = (value or {}).get(key)
        return value
    if name == "no_cache":
        return not saved["settings"].get("cache", True)
    if name in TASK_KEYS:
        return (saved.get("task_options") or {}).get(name)
    return saved.get(name)  # initial_prompt


def _same_task(task_spec: str, saved: dict) -> bool:
    if task_spec in (saved["task"], saved["task_source"]):
        return True
    given, recorded = Path(task_spec).expanduser(), Path(saved["task"]).expanduser()
    return given.exists() and recorded.exists() and given.resolve() == recorded.resolve()


def resume_changes(saved: dict, v: dict[str, Any], given: set[str], task_spec: str | None) -> dict[str, Any]:
    """The options a resume changes ({name: new value}): a larger `steps` (and the limits,
    read by the caller). A task or any other option given that differs from the saved run
    is refused with both values."""
    if task_spec is not None and not _same_task(task_spec, saved):
        raise ConfigError(
            f"task {task_spec!r} differs from the run's task {saved['task']!r}: a resumed run "
            "keeps its task (leave TASK out, or start a new run)"
        )
    changes = {}
    for name in sorted(given - set(RESUME_FREE)):
        value, old = v.get(name), _saved_value(saved, name)
        if name in ("selection", "schedule") and value is not None:
            value = canonical_selection(value) if name == "selection" else canonical_schedule(value)
        if name == "metric" and value:
            value = value.lower()
        if value == old or (name == "initial_prompt" and old is not None and value.strip() == old.strip()):
            continue
        if name in RESUME_RAISABLE and isinstance(old, int) and value > old:
            changes[name] = value
            continue
        raise ConfigError(
            f"{name}={value!r} differs from the run's {name}={old!r}: a resumed run keeps its "
            f"options (only a larger steps and the budget limits can change; start a new run "
            "to change it)"
        )
    return changes


def resolve_resume(
    run_dir: Path,
    saved: dict,
    values: dict[str, Any],
    explicit: set[str] = frozenset(),
    config_file: Path | None = None,
    task_spec: str | None = None,
) -> Settings:
    """Settings to continue a run: its saved task, config, prompt and models. The budget
    (a larger steps, the limits) and how it runs here (threads, quiet, ray) may change, from
    the command line or the file; a task or another option that differs is refused."""
    v, given = merge(values, set(explicit), config_file)
    changes = resume_changes(saved, v, given, task_spec)
    config = GPOConfig(
        **{f.name: saved["config"][f.name] for f in fields(GPOConfig) if f.name in saved["config"]}
    )
    notices = [
        f"resuming with {name} {getattr(config, name)} -> {value} (the run's config is updated)"
        for name, value in changes.items()
    ]
    config = replace(config, **changes)
    config.validate()
    task_spec, task, config = _saved_task(saved, config)
    limits, limit_notices = _resumed_limits(saved, v, given)
    runtime = _resumed_runtime(saved, v)
    ray_request(runtime)
    # A saved thread count stands (the run started with it); a new one is checked.
    check_runtime(runtime, force=bool(v.get("force")) or "threads" not in given)
    return Settings(
        task_spec=task_spec,
        task=task,
        config=config,
        limits=limits,
        initial_prompt=saved["initial_prompt"],
        runtime=runtime,
        run_dir=run_dir,
        quiet=bool(v.get("quiet")),
        explicit=frozenset(given),
        notices=tuple(notices + limit_notices),
    )


def _saved_task(saved: dict, config: GPOConfig) -> tuple[str, Task, GPOConfig]:
    """The run's task spec and its task, loaded as the run loaded it (seed, loading options,
    test holdout, reply limits); the config with the reply limits a run recorded before
    --answer-max-tokens existed had."""
    task_spec = saved["task"] if saved["task_source"].startswith("builtin:") else saved["task_source"]
    task = load_task(task_spec, seed=config.seed, **saved.get("task_options", {}))
    if config.test_holdout:
        task = task.with_holdout(config.test_holdout)
    if "answer_max_tokens" not in saved["config"] and not saved["task_source"].startswith("builtin:"):
        # A run recorded before the option existed: a task from files had the Task default limits.
        config = replace(config, answer_max_tokens=",".join(map(str, UNKNOWN_FAMILY_TOKENS)))
    task = with_answer_limits(task, config.answer_max_tokens)
    return task_spec, task, config


def _resumed_limits(saved: dict, v: dict[str, Any], given: set[str]) -> tuple[Limits, list[str]]:
    """The saved limits with those given now, and a notice for each that changed."""
    old = saved.get("limits") or {}
    limits = Limits(**{name: v[name] if name in given else old.get(name) for name in LIMITS})
    notices = [
        f"resuming with {name} {old.get(name)} -> {getattr(limits, name)}"
        for name in LIMITS
        if name in given and getattr(limits, name) != old.get(name)
    ]
    return limits, notices


def _resumed_runtime(saved: dict, v: dict[str, Any]) -> dict:
    """The saved models and llama.cpp settings; the threads (when given), Ray and MLflow as given now."""
    return {
        "task_model": saved["models"]["task"]["spec"],
        "optimizer_model": saved["models"]["optimizer"]["spec"],
        "embedder": saved["models"]["embedder"]["spec"],
        **{k: saved["settings"][k] for k in ("n_ctx", "n_gpu_layers", "parallel")},
        "threads": v.get("threads") or saved["settings"].get("threads"),
        "no_cache": not saved["settings"].get("cache", True),
        "ray": v.get("ray"),
        "ray_actors": v.get("ray_actors"),
        "mlflow": v.get("mlflow"),
    }
