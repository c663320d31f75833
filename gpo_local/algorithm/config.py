"""The run configuration: one declaration of every option, GPOConfig, Limits, presets, validation.

`OPTIONS` is the only place an option is declared: its name, type, default, range and help.
Everything else is derived from it: GPOConfig's fields (group "config"), Limits (group
"limit"), the click options of `gpo-local optimize` (cli.py), the types a TOML file is checked
against and the runtime defaults (settings.py), the keyword arguments of `gpo_local.optimize`
(api.py) and the option list of the bench harness (quality/config.py). Adding an option is one
line here plus the code that reads it.

Groups: "config" (GPOConfig: what the optimization does), "limit" (Limits: when to stop
early), "runtime" (models and llama.cpp settings), "task" (how TASK is loaded), "run" (the
initial prompt, the run directory, output). `cli` False keeps a field out of the command line.
"""

from __future__ import annotations

from dataclasses import dataclass, field, make_dataclass
from pathlib import Path
from typing import Any, Callable

from gpo_local.backends.catalog import DEFAULT_EMBEDDER, DEFAULT_MODEL
from gpo_local.algorithm.directions import canonical_selection
from gpo_local.errors import ConfigError
from gpo_local.algorithm.racing import DEFAULT_ERROR as RACING_ERROR, DEFAULT_ORDER as RACING_ORDER, DEFAULT_ROUNDS as RACING_ROUNDS, ORDERS as RACING_ORDERS, RacingConfig
from gpo_local.algorithm.schedules import canonical_schedule, make_schedule
from gpo_local.tasks.prompting import POSITIONS
from gpo_local.algorithm.updates import UPDATE_METHODS
from gpo_local.tasks.answers import DATASETS, METRICS
from gpo_local.tasks.answer_length import parse_answer_max_tokens

GRADIENTS = ("none", "feedback")
MOMENTA = ("none", "para", "feedback")
MOMENTUM_UPDATES = ("k-list", "real-time")
# The GPO headline switches (the paper's GPO, the original GPO.sh); the budget of every baseline is
# GPO's under them.
HEADLINE_SWITCHES = dict(gradient="none", momentum="para", selection="relevance", momentum_update="k-list", k=3,
                         update="generate-without", schedule="cosine")
# SGDM is this preset of the switches (methods/sgdm.py explains the choice); applied once, in settings.
SGDM_PRESET = dict(gradient="feedback", momentum="feedback", momentum_update="real-time", update="edit",
                   schedule="fixed")


def parse_splits(value: str | None) -> dict[str, str] | None:
    """`ROLE=NAME,...` (the command line's --splits) as a mapping."""
    if not value:
        return None
    mapping = {}
    for item in value.split(","):
        role, sep, name = item.partition("=")
        if not sep or not role.strip() or not name.strip():
            raise ConfigError(f"{item!r} is not ROLE=NAME (e.g. eval=validation,train=train)")
        mapping[role.strip()] = name.strip()
    return mapping


def parse_directory(value: str | None) -> str | None:
    """A directory option (--run-dir): an existing file is refused on the command line, as
    click.Path(file_okay=False) does."""
    if value and Path(value).is_file():
        raise ConfigError(f"Directory {str(value)!r} is a file.")
    return value


def metric_names() -> tuple[str, ...]:

    return (*METRICS, *(d for d in DATASETS if d != "bbh"))


@dataclass(frozen=True)
class Option:
    name: str  # python name; the command line's is --name-with-dashes
    kind: type  # int | float | str | bool | dict
    default: Any
    help: str
    group: str = "config"
    minimum: int | float | None = None
    choices: tuple[str, ...] | Callable[[], tuple[str, ...]] | None = None
    cli: bool = True  # offered on the command line (and in TOML files)
    show_default: bool = False  # the command line's default is the real one (not "unset")
    parse: Callable[[Any], Any] | None = None  # command-line text -> value (raises ConfigError)
    negatable: bool = False  # a bool option with a --no- form (to undo a TOML file's true)

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def allowed(self) -> tuple[str, ...] | None:
        return self.choices() if callable(self.choices) else self.choices

    def help_text(self) -> str:
        if self.show_default or self.default is None or "default" in self.help:
            return self.help
        return f"{self.help} [default: {self.default}]."


_O = Option
OPTIONS: tuple[Option, ...] = (
    # -- what the optimization does (GPOConfig) ---------------------------------------------------------
    _O("method", str, "gpo",
       "gpo, sgdm (a preset of the switches), or a baseline: empty, cot, reference, ape, apo, opro, pe2"),
    _O("steps", int, 18, "Optimization steps (default: 3 epochs of the train split in batches of 8, as in GPO).",
       minimum=1),
    _O("candidates", int, 8, "Candidates per step", minimum=1),
    _O("gradient", str, "none", "none | feedback (problems behind a train minibatch's wrong answers)"),
    _O("momentum", str, "para", "none | para (over prompts) | feedback (over gradients)"),
    _O("selection", str, "relevance", "recency | relevance | importance: which k items a k-list shows "
                                      "[default: relevance; alias relavance]."),
    _O("momentum_update", str, "k-list", "k-list | real-time (an optimizer-written summary)"),
    _O("k", int, 3, "Items in a k-list, in total", minimum=0),
    _O("update", str, "generate-without", "generate | edit | generate-without | edit-without (the gradient section)"),
    _O("schedule", str, "cosine", "Step size in words: none | fixed | linear | cosine [default: cosine; alias consine]."),
    _O("lr_init", int, 50, "Initial step size in words", minimum=1),
    _O("lr_final", int, 10, "Final step size in words", minimum=0),
    _O("warmup", int, 0, "Warmup steps of the schedule", minimum=0),
    _O("train_batch", int, 8, "Train minibatch size (feedback gradient, APO, PE2)", minimum=1),
    _O("format_examples", int, 3, "Task examples shown to the optimizer in the meta-prompt as the answer format",
       minimum=0),
    # Overrides the task's reply limits (tasks/answer_length.py): "N" every round, "N1,N2" each round.
    _O("answer_max_tokens", str, None, "Token limit of each task-model reply: N for every round, or N1,N2 for "
                                       "round 1 and round 2 of a two-round task [default: the task's own; for a "
                                       "task from files, by its metric: 32 for exact, 256,100 for two rounds].",
       parse=parse_answer_max_tokens),
    _O("position", str, "Q_end", "Where the instruction goes relative to the question.", choices=POSITIONS,
       show_default=True),
    _O("dev_limit", int, None, "Score on the first N dev questions only.", minimum=1),
    _O("test_limit", int, None, "Test on the first N test questions only.", minimum=1),
    _O("test_holdout", int, None, "For a task without a test split: hold out its last N dev examples as the test "
                                  "split.", minimum=1),
    _O("optimizer_temperature", float, 1.0, "Sampling temperature of the optimizer's candidate replies", minimum=0),
    # At temperature 1 over the whole vocabulary a small optimizer now and then draws a token from
    # the long tail (another script, a code identifier) and its reply derails from there. Min-p
    # removes most such replies but also good ones: real runs found worse prompts with it, so it is
    # off by default.
    _O("optimizer_min_p", float, 0.0, "Min-p truncation of the optimizer's sampled replies: never draw a token less "
                                      "likely than this share of the likeliest one (a model with its own sampler; "
                                      "0: off)", minimum=0),
    _O("optimizer_max_tokens", int, 512, "Token limit of each optimizer reply; a grammar-constrained candidate "
                                         "reply gets at least what its word cap needs (3 tokens a word + 8)",
       minimum=1),
    _O("require_tags", bool, False, "Drop replies without <START>...<END> tags", cli=False),
    _O("max_prompt_words", int, None, "Drop candidates longer than this many words [default: no limit].", minimum=1),
    _O("seed", int, 0, "Seed of every sampled choice.", show_default=True),
    # Race a step's new candidates on growing dev prefixes (racing.py).
    _O("racing", bool, False, "Score a step's new candidates on growing prefixes of the dev split and drop those a "
                              "paired test shows worse than the leader; survivors get the whole split "
                              "[default: off].", negatable=True),
    _O("racing_error", float, RACING_ERROR, "Racing: the chance of dropping a candidate that is not worse, between "
                                            "0 and 1 exclusive", minimum=0),
    _O("racing_rounds", int, RACING_ROUNDS, "Racing: dev prefixes doubling up to the whole split, in this many "
                                            "rounds", minimum=1),
    _O("racing_order", str, RACING_ORDER, "Racing: the order of the dev questions, informative (those the prompts "
                                          "scored so far disagree on first) or random (a seeded shuffle: the error "
                                          "level is then a guarantee)", choices=RACING_ORDERS, show_default=True),
    # On by default: a constrained reply is always a tagged prompt within the word cap, where a
    # small optimizer's free-form replies often are not (benchmarks/grammar_replies.py counts
    # both). The built-in `antonyms` turns it off: there free-form replies found the rule.
    _O("grammar", bool, True, "Constrain optimizer replies to a tagged prompt within the step's word cap (llama.cpp "
                              "GBNF); --no-grammar: free-form replies, malformed ones dropped [default: on].",
       negatable=True),
    _O("leak_check", bool, True, "Drop candidates that restate a task example (exemplar leakage) or talk about the "
                                 "prompt in the meta-prompt's words (meta talk) [default: on].", negatable=True),
    # Restated examples are the main reason a constrained reply is dropped; the guard keeps the
    # optimizer's sampler from writing them (backends/copy_guard.py). On by default: it removes
    # restated examples without a separable change in held-out score (docs/results.md, "GPO
    # against OPRO: the latest measurement").
    _O("copy_guard", bool, True, "Keep optimizer replies from copying the shown format examples: no run of 6 "
                                 "tokens of theirs that the current prompt does not have (a model with its own "
                                 "sampler) [default: on].", negatable=True),
    # -- when to stop early (Limits), checked at step boundaries -----------------------------------------
    _O("max_optimizer_calls", int, None, "Stop before a step that would exceed this many optimizer calls "
                                         "(resumable).", group="limit", minimum=0),
    _O("max_task_tokens", int, None, "Budget of the whole run, not a per-answer limit (that is "
                                     "--answer-max-tokens): stop at the first step boundary after the task model "
                                     "generated this many tokens in all (resumable).", group="limit", minimum=0),
    _O("time_limit", float, None, "Stop at the first step boundary after this many seconds (resumable).",
       group="limit", minimum=0),
    # -- models and llama.cpp ----------------------------------------------------------------------------
    _O("task_model", str, DEFAULT_MODEL, "Catalog name or GGUF path of the model that answers the task.",
       group="runtime", show_default=True),
    _O("optimizer_model", str, None, "Catalog name or GGUF path (default: the task model).", group="runtime"),
    _O("embedder", str, DEFAULT_EMBEDDER, "Catalog name, local path or locally cached sentence-transformers model.",
       group="runtime", show_default=True),
    _O("n_ctx", int, 4096, "Context size in tokens.", group="runtime", minimum=256, show_default=True),
    _O("threads", int, None, "CPU threads (default: all, up to 8).", group="runtime", minimum=1),
    _O("n_gpu_layers", int, 0, "Layers offloaded to the GPU (-1: all); needs a CUDA or Metal build of "
                               "llama-cpp-python.", group="runtime", show_default=True),
    _O("parallel", int, 16, "Sequences decoded together (each holds up to --n-ctx tokens of KV cache).",
       group="runtime", minimum=1, show_default=True),
    _O("no_cache", bool, False, "Do not read or write the generation memo cache.", group="runtime"),
    # where the task model runs (cluster.py): not saved with a run, as it does not change its results
    _O("ray", str, None, "Score on a Ray cluster (auto: the one running on this machine; needs the ray extra).",
       group="runtime"),
    _O("ray_actors", int, None, "Ray actors holding the task model, each with --threads threads [default: 2].",
       group="runtime", minimum=1),
    # -- how TASK is loaded (tasks.load_task) ------------------------------------------------------------
    _O("input_field", str, None, "Field (column) holding the question [default: input].", group="task"),
    _O("target_field", str, None, "Field (column) holding the answer [default: target, else output].", group="task"),
    _O("metric", str, None, "How answers are scored [default: from the folder name (bbh/<task>, mmlu/<subject>, "
                            "gsm8k, wsc, webnlg), else exact].", group="task", choices=metric_names),
    _O("dataset_config", str, None, "Configuration name of a Hugging Face dataset (hf:<id>).", group="task"),
    _O("splits", dict, None, "Splits of a Hugging Face dataset, as ROLE=NAME,... "
                             "[default: train=train,eval=validation,test=test,format=train].", group="task",
       parse=parse_splits),
    # -- the run -----------------------------------------------------------------------------------------
    _O("initial_prompt", str, None, "Starting prompt (default: the task's).", group="run"),
    _O("run_dir", str, None, "Run directory (default: a new folder under $GPO_LOCAL_HOME/runs).", group="run",
       parse=parse_directory),
    _O("quiet", bool, False, "No progress output.", group="run"),
)
BY_NAME: dict[str, Option] = {o.name: o for o in OPTIONS}


def names(group: str, *, cli_only: bool = False) -> tuple[str, ...]:
    return tuple(o.name for o in OPTIONS if o.group == group and (o.cli or not cli_only))


def defaults(group: str) -> dict[str, Any]:
    return {o.name: o.default for o in OPTIONS if o.group == group}


def check_value(option: Option, value: Any, label: str | None = None) -> Any:
    """`value` of `option` type- and range-checked (ints are accepted as floats); the message
    names the option as `label` (as the user wrote it) or as its command-line flag."""
    kind, label = option.kind, label or option.flag
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(f"option {label!r} must be a {kind.__name__} (got {value!r})")
    if option.minimum is not None and value < option.minimum:
        raise ConfigError(f"option {label!r} must be at least {option.minimum} (got {value!r})")
    return value


def _validate(self) -> None:
    """Check values and the combinations that crash the original code or make no sense.
    Messages name the command-line options."""
    for name in ("steps", "candidates", "train_batch"):
        if getattr(self, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be at least 1 (got {getattr(self, name)})")
    for name in ("dev_limit", "test_limit", "test_holdout", "max_prompt_words"):
        value = getattr(self, name)
        if value is not None and value < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be at least 1 (got {value})")
    if not 0 <= self.optimizer_min_p < 1:
        raise ConfigError(f"--optimizer-min-p must be at least 0 and below 1 (got {self.optimizer_min_p})")
    if self.optimizer_max_tokens < 1:
        raise ConfigError(f"--optimizer-max-tokens must be at least 1 (got {self.optimizer_max_tokens})")
    if self.k < 0:
        raise ConfigError(f"--k must be >= 0 (got {self.k})")
    if self.position not in POSITIONS:
        raise ConfigError(f"--position {self.position!r} is not one of {', '.join(POSITIONS)}")
    for option, value, known in (("--gradient", self.gradient, GRADIENTS), ("--momentum", self.momentum, MOMENTA),
                                 ("--momentum-update", self.momentum_update, MOMENTUM_UPDATES),
                                 ("--update", self.update, UPDATE_METHODS),
                                 ("--racing-order", self.racing_order, RACING_ORDERS)):
        if value not in known:
            raise ConfigError(f"unknown {option} {value!r}; known: {', '.join(known)}")
    canonical_selection(self.selection)
    canonical_schedule(self.schedule)
    _check_combinations(self)
    self.make_schedule()
    if self.racing:
        try:
            RacingConfig(self.racing_error, self.racing_rounds).validate()
        except ValueError as error:
            raise ConfigError(str(error)) from None


def _check_combinations(self) -> None:
    with_gradient = not self.update.endswith("-without")
    if with_gradient and self.gradient != "feedback":
        raise ConfigError(f"--update {self.update} shows a gradient section, which needs --gradient feedback "
                          f"(got --gradient {self.gradient}); use --update {self.update}-without instead")
    if self.gradient == "feedback" and not with_gradient and self.momentum != "feedback":
        raise ConfigError(f"--gradient feedback is never shown with --update {self.update}; "
                          f"use --update {self.update.removesuffix('-without')} or --gradient none")
    if self.momentum == "feedback" and self.gradient != "feedback":
        raise ConfigError("--momentum feedback (momentum over gradients) needs --gradient feedback "
                          f"(got --gradient {self.gradient})")
    if self.momentum == "feedback" and not with_gradient:
        raise ConfigError(f"--momentum feedback is never shown with --update {self.update}; "
                          f"use --update {self.update.removesuffix('-without')}")
    if self.momentum != "none" and self.momentum_update == "k-list" and self.k == 0:
        raise ConfigError(f"--k 0 selects nothing for --momentum {self.momentum} with --momentum-update k-list; "
                          "use --momentum none or --k 1 or more")


def _make_schedule(self):
    name = canonical_schedule(self.schedule)
    if name == "none":
        return None
    return make_schedule(name, initial=self.lr_init, final=self.lr_final, total_steps=self.steps, warmup=self.warmup)


def _dataclass(name: str, group: str, doc: str, namespace: dict | None = None) -> type:
    """A frozen dataclass whose fields are the options of `group`, in declaration order."""
    annotation = {int: "int", float: "float", str: "str", bool: "bool", dict: "dict"}
    fields_ = [(o.name, f"{annotation[o.kind]} | None" if o.default is None else annotation[o.kind],
                field(default=o.default)) for o in OPTIONS if o.group == group]
    cls = make_dataclass(name, fields_, frozen=True, namespace={"__doc__": doc, **(namespace or {})})
    cls.__module__ = __name__
    return cls


GPOConfig = _dataclass("GPOConfig", "config", """The run configuration of every method; the paper's
    headline GPO (the original GPO.sh) unless overridden. The strategy switches only apply to `gpo`
    (and are preset for `sgdm`). Its fields are the "config" options of OPTIONS.""",
                       {"validate": _validate, "make_schedule": _make_schedule})

Limits = _dataclass("Limits", "limit", """Budget limits, checked at step boundaries: a run
    stops before a step whose planned optimizer calls would exceed `max_optimizer_calls`, and
    before the next step once `max_task_tokens` tokens were generated by the task model or
    `time_limit` seconds passed.""")
