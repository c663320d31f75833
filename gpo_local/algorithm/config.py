"""The run configuration: one declaration of every option, GPOConfig, Limits, presets, validation.

`OPTIONS` is the only place an option is declared: its name, type, default, bounds, choices,
the methods it applies to, its section of `--help`, and its help. Everything else is derived
from it: the click options of the command line (cli_options.py: choices, ranges, help
sections), the types and bounds a TOML file and the Python API are checked against, the
runtime defaults and the switches each method takes (settings.py), the keyword arguments of
`gpo_local.optimize` (api.py) and the option list of the bench harness (quality/config.py).
GPOConfig and Limits are written out below for readers and type checkers; a test holds their
fields and defaults to the table. The vocabulary of a declaration (Option) and the checks of a
value against one are in option.py. Adding an option is one line here plus the code that reads
it (and, for a "config" or "limit" option, its field below).

Groups: "config" (GPOConfig: what the optimization does), "limit" (Limits: when to stop
early), "runtime" (models and llama.cpp settings), "task" (how TASK is loaded), "run" (the
initial prompt, the run directory, output). `cli` False keeps a field out of the command line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gpo_local.algorithm.directions import ALIASES as SELECTION_ALIASES
from gpo_local.algorithm.directions import SELECTORS
from gpo_local.algorithm.option import Option, check_value, parse_directory, parse_splits
from gpo_local.algorithm.racing import DEFAULT_ERROR as RACING_ERROR
from gpo_local.algorithm.racing import DEFAULT_ORDER as RACING_ORDER
from gpo_local.algorithm.racing import DEFAULT_ROUNDS as RACING_ROUNDS
from gpo_local.algorithm.racing import ORDERS as RACING_ORDERS
from gpo_local.algorithm.racing import RacingConfig
from gpo_local.algorithm.schedules import ALIASES as SCHEDULE_ALIASES
from gpo_local.algorithm.schedules import SCHEDULES, canonical_schedule, make_schedule
from gpo_local.algorithm.updates import UPDATE_METHODS
from gpo_local.backends.catalog import DEFAULT_EMBEDDER, DEFAULT_MODEL
from gpo_local.errors import ConfigError, OptionValue
from gpo_local.tasks.answer_length import parse_answer_max_tokens
from gpo_local.tasks.answers import DATASETS, METRICS
from gpo_local.tasks.prompting import DEFAULT_POSITION, POSITIONS

# The methods `--method` offers (methods/__init__.py maps each to its class).
METHOD_NAMES = ("gpo", "empty", "cot", "ape", "apo", "opro", "pe2", "sgdm", "reference")
GRADIENTS = ("none", "feedback")
MOMENTA = ("none", "para", "feedback")
MOMENTUM_UPDATES = ("k-list", "real-time")
SELECTIONS = tuple(SELECTORS)
SCHEDULE_NAMES = ("none", *SCHEDULES)
# SGDM is this preset of the switches (methods/sgdm.py explains the choice); applied once, in settings.
SGDM_PRESET = dict(
    gradient="feedback", momentum="feedback", momentum_update="real-time", update="edit", schedule="fixed"
)
# Upper bounds that no machine or model reaches; the bounds that follow from this machine and
# the chosen models (threads, context, memory) are checked in app/bounds.py.
MAX_COUNT = 1_000_000  # questions, calls, items
MAX_WORDS = 1_000  # an edit budget or a prompt length, in words
MAX_SEED = 2**32 - 1  # llama.cpp's seeds are 32-bit


def metric_names() -> tuple[str, ...]:

    return (*METRICS, *(d for d in DATASETS if d != "bbh"))


# Switches of the GPO algorithm and the methods that take them (the rest take them as preset).
GPO_ONLY = ("gpo",)
SCHEDULED = ("gpo", "pe2")  # PE2 verbalizes a step size
STEP_SIZED = ("gpo", "sgdm", "pe2")


_O = Option
OPTIONS: tuple[Option, ...] = (
    # -- what the optimization does (GPOConfig) ------------------------------------------------------
    _O(
        "method",
        str,
        "gpo",
        "The method: gpo, sgdm (a preset of gpo's switches) or a baseline.",
        choices=METHOD_NAMES,
        section="essentials",
    ),
    _O(
        "steps",
        int,
        18,
        "Optimization steps (default: 3 epochs of the train split in batches of 8, as in GPO).",
        minimum=1,
        maximum=10_000,
        section="essentials",
    ),
    _O(
        "candidates",
        int,
        8,
        "Candidates per step",
        minimum=1,
        maximum=10_000,
        section="essentials",
        bound="and the planned replies must fit in memory",
    ),
    _O(
        "gradient",
        str,
        "none",
        "The gradient: feedback (problems behind a train minibatch's wrong answers).",
        choices=GRADIENTS,
        methods=GPO_ONLY,
        strategy=True,
        show_default=True,
    ),
    _O(
        "momentum",
        str,
        "para",
        "Momentum over prompts (para) or over gradients (feedback).",
        choices=MOMENTA,
        methods=GPO_ONLY,
        strategy=True,
        show_default=True,
    ),
    _O(
        "selection",
        str,
        "relevance",
        "Which k items a k-list shows [default: relevance; alias relavance].",
        choices=SELECTIONS,
        aliases=SELECTION_ALIASES,
        methods=GPO_ONLY,
        strategy=True,
    ),
    _O(
        "momentum_update",
        str,
        "k-list",
        "A k-list, or a real-time (optimizer-written) summary.",
        choices=MOMENTUM_UPDATES,
        methods=GPO_ONLY,
        strategy=True,
        show_default=True,
    ),
    _O("k", int, 3, "Items in a k-list, in total", minimum=0, maximum=100, methods=GPO_ONLY, strategy=True),
    _O(
        "update",
        str,
        "generate-without",
        "Generate or edit the prompt, with or without the gradient section.",
        choices=UPDATE_METHODS,
        methods=GPO_ONLY,
        strategy=True,
        show_default=True,
    ),
    _O(
        "schedule",
        str,
        "cosine",
        "Step size in words [default: cosine; alias consine].",
        choices=SCHEDULE_NAMES,
        aliases=SCHEDULE_ALIASES,
        methods=SCHEDULED,
        strategy=True,
    ),
    _O(
        "lr_init",
        int,
        50,
        "Initial step size in words",
        minimum=1,
        maximum=MAX_WORDS,
        methods=STEP_SIZED,
        bound="at most --max-prompt-words, and its reply must fit --n-ctx",
    ),
    _O(
        "lr_final",
        int,
        10,
        "Final step size in words",
        minimum=0,
        maximum=MAX_WORDS,
        methods=SCHEDULED,
        bound="at most --max-prompt-words, and its reply must fit --n-ctx",
    ),
    _O("warmup", int, 0, "Warmup steps of the schedule", minimum=0, maximum=10_000, methods=STEP_SIZED),
    _O(
        "train_batch", int, 8, "Train minibatch size (feedback gradient, APO, PE2)", minimum=1, maximum=10_000
    ),
    _O(
        "format_examples",
        int,
        3,
        "Task examples shown to the optimizer in the meta-prompt as the answer format",
        minimum=0,
        maximum=100,
    ),
    # Overrides the task's reply limits (tasks/answer_length.py): "N" every round, "N1,N2" each round.
    _O(
        "answer_max_tokens",
        str,
        None,
        "Token limit of each task-model reply: N for every round, or N1,N2 for "
        "round 1 and round 2 of a two-round task [default: the task's own; for a "
        "task from files, by its metric: 32 for exact, 256,100 for two rounds].",
        parse=parse_answer_max_tokens,
        section="task",
    ),
    _O(
        "position",
        str,
        DEFAULT_POSITION,
        "Where the instruction goes relative to the question.",
        choices=POSITIONS,
        show_default=True,
    ),
    _O(
        "dev_limit",
        int,
        None,
        "Score on the first N dev questions only.",
        minimum=1,
        maximum=MAX_COUNT,
        section="essentials",
    ),
    _O(
        "test_limit",
        int,
        None,
        "Test on the first N test questions only.",
        minimum=1,
        maximum=MAX_COUNT,
        section="essentials",
    ),
    _O(
        "test_holdout",
        int,
        None,
        "For a task without a test split: hold out its last N dev examples as the test split.",
        minimum=1,
        maximum=MAX_COUNT,
        section="task",
    ),
    _O(
        "optimizer_temperature",
        float,
        1.0,
        "Sampling temperature of the optimizer's candidate replies",
        minimum=0,
        maximum=10,
        section="replies",
    ),
    # At temperature 1 over the whole vocabulary a small optimizer now and then draws a token from
    # the long tail (another script, a code identifier) and its reply derails from there. Min-p
    # removes most such replies but also good ones: real runs found worse prompts with it, so it is
    # off by default.
    _O(
        "optimizer_min_p",
        float,
        0.0,
        "Min-p truncation of the optimizer's sampled replies: never draw a "
        "token less likely than this share of the likeliest one (a model with "
        "its own sampler; 0: off)",
        minimum=0,
        maximum=1,
        max_open=True,
        section="replies",
    ),
    _O(
        "optimizer_max_tokens",
        int,
        512,
        "Token limit of each optimizer reply; a grammar-constrained "
        "candidate reply gets at least what its word cap needs (3 tokens a "
        "word + 8)",
        minimum=1,
        maximum=131_072,
        section="replies",
    ),
    _O(
        "require_tags", bool, False, "Drop replies without <START>...<END> tags", cli=False, section="replies"
    ),
    _O(
        "max_prompt_words",
        int,
        None,
        "Drop candidates longer than this many words [default: no limit].",
        minimum=1,
        maximum=MAX_COUNT,
        section="replies",
    ),
    _O(
        "seed",
        int,
        0,
        "Seed of every sampled choice.",
        minimum=0,
        maximum=MAX_SEED,
        show_default=True,
        section="run",
    ),
    # Race a step's new candidates on growing dev prefixes (racing.py).
    _O(
        "racing",
        bool,
        False,
        "Score a step's new candidates on growing prefixes of the dev split and drop "
        "those a paired test shows worse than the leader; survivors get the whole "
        "split [default: off].",
        negatable=True,
        section="racing",
    ),
    _O(
        "racing_error",
        float,
        RACING_ERROR,
        "Racing: the chance of dropping a candidate that is not worse",
        minimum=0,
        maximum=1,
        min_open=True,
        max_open=True,
        section="racing",
    ),
    _O(
        "racing_rounds",
        int,
        RACING_ROUNDS,
        "Racing: dev prefixes doubling up to the whole split, in this many rounds",
        minimum=1,
        maximum=30,
        section="racing",
    ),
    _O(
        "racing_order",
        str,
        RACING_ORDER,
        "Racing: the order of the dev questions, informative (those the "
        "prompts scored so far disagree on first) or random (a seeded "
        "shuffle: the error level is then a guarantee)",
        choices=RACING_ORDERS,
        show_default=True,
        section="racing",
    ),
    # On by default: a constrained reply is always a tagged prompt within the word cap, where a
    # small optimizer's free-form replies often are not (benchmarks/grammar_replies.py counts
    # both). The built-in `antonyms` turns it off: there free-form replies found the rule.
    _O(
        "grammar",
        bool,
        True,
        "Constrain optimizer replies to a tagged prompt within the step's word cap "
        "(llama.cpp GBNF); --no-grammar: free-form replies, malformed ones dropped "
        "[default: on].",
        negatable=True,
        section="replies",
    ),
    _O(
        "leak_check",
        bool,
        True,
        "Drop candidates that restate a task example (exemplar leakage) or talk "
        "about the prompt in the meta-prompt's words (meta talk) [default: on].",
        negatable=True,
        section="replies",
    ),
    # Restated examples are the main reason a constrained reply is dropped; the guard keeps the
    # optimizer's sampler from writing them (backends/copy_guard.py). On by default: it removes
    # restated examples without a separable change in held-out score (docs/results.md, "GPO
    # against OPRO: the latest measurement").
    _O(
        "copy_guard",
        bool,
        True,
        "Keep optimizer replies from copying the shown format examples: no run of 6 "
        "tokens of theirs that the current prompt does not have (a model with its "
        "own sampler) [default: on].",
        negatable=True,
        section="replies",
    ),
    # Off by default: the extra asks count against the run's call budget, so with a small
    # optimizer that drops many replies a run ends steps early (docs/results.md, "The main job").
    _O(
        "reply_quota",
        bool,
        False,
        "Ask the optimizer again, each ask with its own seed, until a step has as many usable new candidates "
        "as it asked for, at most twice as many asks; the extra asks count against the optimizer-call budget "
        "[default: off].",
        negatable=True,
        section="replies",
    ),
    # -- when to stop early (Limits), checked at step boundaries -------------------------------------
    _O(
        "max_optimizer_calls",
        int,
        None,
        "Stop before a step that would exceed this many optimizer calls (resumable).",
        group="limit",
        minimum=0,
        maximum=10**9,
    ),
    _O(
        "max_task_tokens",
        int,
        None,
        "Budget of the whole run, not a per-answer limit (that is "
        "--answer-max-tokens): stop at the first step boundary after the task model "
        "generated this many tokens in all (resumable).",
        group="limit",
        minimum=0,
        maximum=10**15,
    ),
    _O(
        "time_limit",
        float,
        None,
        "Stop at the first step boundary after this many seconds (resumable).",
        group="limit",
        minimum=0,
        maximum=10**9,
    ),
    # -- models and llama.cpp ------------------------------------------------------------------------
    _O(
        "task_model",
        str,
        DEFAULT_MODEL,
        "Catalog name or GGUF path of the model that answers the task, or a "
        "served model: URL or URL#name (OpenAI-compatible server).",
        group="runtime",
        show_default=True,
        section="essentials",
    ),
    _O(
        "optimizer_model",
        str,
        None,
        "Catalog name, GGUF path, URL or URL#name (default: the task model).",
        group="runtime",
        section="essentials",
    ),
    _O(
        "embedder",
        str,
        DEFAULT_EMBEDDER,
        "Catalog name, local path or locally cached sentence-transformers model.",
        group="runtime",
        show_default=True,
    ),
    _O(
        "n_ctx",
        int,
        4096,
        "Context size in tokens",
        group="runtime",
        minimum=256,
        maximum=2**20,
        show_default=True,
        bound="at most the model's training context unless --force",
    ),
    _O(
        "threads",
        int,
        None,
        "CPU threads (default: all, up to 8)",
        group="runtime",
        minimum=1,
        maximum=1024,
        bound="at most the CPU count unless --force",
    ),
    _O(
        "n_gpu_layers",
        int,
        0,
        "Layers offloaded to the GPU (-1: all); needs a CUDA or Metal build of llama-cpp-python.",
        group="runtime",
        minimum=-1,
        maximum=10_000,
        show_default=True,
    ),
    _O(
        "parallel",
        int,
        16,
        "Sequences decoded together (each holds up to --n-ctx tokens of KV cache)",
        group="runtime",
        minimum=1,
        maximum=4096,
        show_default=True,
        bound="their KV cache must fit in memory",
    ),
    _O("no_cache", bool, False, "Do not read or write the generation memo cache.", group="runtime"),
    # where the task model runs (cluster.py): not saved with a run, as it does not change its results
    _O(
        "ray",
        str,
        None,
        "Score on a Ray cluster (auto: the one running on this machine; needs the ray extra).",
        group="runtime",
    ),
    _O(
        "ray_actors",
        int,
        None,
        "Ray actors holding the task model, each with --threads threads [default: 2].",
        group="runtime",
        minimum=1,
        maximum=1024,
    ),
    _O(
        "force",
        bool,
        False,
        "Allow --threads above the CPU count and --n-ctx above the model's training "
        "context (the memory checks stay).",
        group="runtime",
    ),
    # tracking (app/mlflow_observer.py): not saved with a run either; a resume given it continues
    # the run's MLflow run
    _O(
        "mlflow",
        str,
        None,
        "Track the run in MLflow: --mlflow alone uses $MLFLOW_TRACKING_URI, else a "
        "local store under $GPO_LOCAL_HOME/mlruns; --mlflow URI a tracking URI "
        "(needs the mlflow extra).",
        group="runtime",
        flag_value="default",
    ),
    # -- how TASK is loaded (tasks.load_task) --------------------------------------------------------
    _O(
        "input_field",
        str,
        None,
        "Field (column) holding the question [default: input].",
        group="task",
        section="essentials",
    ),
    _O(
        "target_field",
        str,
        None,
        "Field (column) holding the answer [default: target, else output].",
        group="task",
        section="essentials",
    ),
    _O(
        "metric",
        str,
        None,
        "How answers are scored [default: from the folder name (bbh/<task>, "
        "mmlu/<subject>, gsm8k, wsc, webnlg), else exact].",
        group="task",
        choices=metric_names,
        section="essentials",
    ),
    _O("dataset_config", str, None, "Configuration name of a Hugging Face dataset (hf:<id>).", group="task"),
    _O(
        "splits",
        dict,
        None,
        "Splits of a Hugging Face dataset, as ROLE=NAME,... "
        "[default: train=train,eval=validation,test=test,format=train].",
        group="task",
        parse=parse_splits,
    ),
    # -- the run -------------------------------------------------------------------------------------
    _O(
        "initial_prompt",
        str,
        None,
        "Starting prompt (default: the task's).",
        group="run",
        section="essentials",
    ),
    _O(
        "run_dir",
        str,
        None,
        "Run directory (default: a new folder under $GPO_LOCAL_HOME/runs).",
        group="run",
        parse=parse_directory,
    ),
    _O("quiet", bool, False, "No progress output.", group="run"),
)
BY_NAME: dict[str, Option] = {o.name: o for o in OPTIONS}
# The GPO headline switches (the paper's GPO, the original GPO.sh); the budget of every baseline is GPO's
# under them.
HEADLINE_SWITCHES = {o.name: o.default for o in OPTIONS if o.strategy}
# The switches only some methods take, and which (settings.py refuses the others).
SWITCHES = tuple(o.name for o in OPTIONS if o.methods is not None)
METHOD_SWITCHES = {
    method: tuple(o.name for o in OPTIONS if o.methods and method in o.methods) for method in METHOD_NAMES
}


def names(group: str, *, cli_only: bool = False) -> tuple[str, ...]:
    return tuple(o.name for o in OPTIONS if o.group == group and (o.cli or not cli_only))


def defaults(group: str) -> dict[str, Any]:
    return {o.name: o.default for o in OPTIONS if o.group == group}


def check_options(values: Any, group: str) -> None:
    """Every option of `group` in `values` (a dataclass) within its declared type, bounds and
    choices; the message names the option by its flag."""
    for option in OPTIONS:
        value = getattr(values, option.name) if option.group == group else None
        if value is not None:
            check_value(option, value)


def _check_combinations(self: GPOConfig) -> None:
    with_gradient = not self.update.endswith("-without")
    got_gradient = OptionValue("gradient", self.gradient)
    if with_gradient and self.gradient != "feedback":
        raise ConfigError(
            OptionValue("update", self.update),
            " shows a gradient section, which needs ",
            OptionValue("gradient", "feedback"),
            " (got ",
            got_gradient,
            "); use ",
            OptionValue("update", f"{self.update}-without"),
            " instead",
        )
    with_shown = OptionValue("update", self.update.removesuffix("-without"))
    if self.gradient == "feedback" and not with_gradient and self.momentum != "feedback":
        raise ConfigError(
            OptionValue("gradient", "feedback"),
            " is never shown with ",
            OptionValue("update", self.update),
            "; use ",
            with_shown,
            " or ",
            OptionValue("gradient", "none"),
        )
    if self.momentum == "feedback" and self.gradient != "feedback":
        raise ConfigError(
            OptionValue("momentum", "feedback"),
            " (momentum over gradients) needs ",
            OptionValue("gradient", "feedback"),
            " (got ",
            got_gradient,
            ")",
        )
    if self.momentum == "feedback" and not with_gradient:
        raise ConfigError(
            OptionValue("momentum", "feedback"),
            " is never shown with ",
            OptionValue("update", self.update),
            "; use ",
            with_shown,
        )
    if self.momentum != "none" and self.momentum_update == "k-list" and self.k == 0:
        raise ConfigError(
            OptionValue("k", 0),
            " selects nothing for ",
            OptionValue("momentum", self.momentum),
            " with ",
            OptionValue("momentum_update", "k-list"),
            "; use ",
            OptionValue("momentum", "none"),
            " or ",
            OptionValue("k", 1),
            " or more",
        )


@dataclass(frozen=True)
class GPOConfig:
    """The run configuration of every method; the paper's headline GPO (the original GPO.sh) unless
    overridden. The strategy switches only apply to `gpo` (and are preset for `sgdm`). Its
    fields are the "config" options of OPTIONS, in their order, with their defaults (a test
    holds the two together)."""

    method: str = "gpo"
    steps: int = 18
    candidates: int = 8
    gradient: str = "none"
    momentum: str = "para"
    selection: str = "relevance"
    momentum_update: str = "k-list"
    k: int = 3
    update: str = "generate-without"
    schedule: str = "cosine"
    lr_init: int = 50
    lr_final: int = 10
    warmup: int = 0
    train_batch: int = 8
    format_examples: int = 3
    answer_max_tokens: str | None = None
    position: str = DEFAULT_POSITION
    dev_limit: int | None = None
    test_limit: int | None = None
    test_holdout: int | None = None
    optimizer_temperature: float = 1.0
    optimizer_min_p: float = 0.0
    optimizer_max_tokens: int = 512
    require_tags: bool = False
    max_prompt_words: int | None = None
    seed: int = 0
    racing: bool = False
    racing_error: float = RACING_ERROR
    racing_rounds: int = RACING_ROUNDS
    racing_order: str = RACING_ORDER
    grammar: bool = True
    leak_check: bool = True
    copy_guard: bool = True
    reply_quota: bool = False

    def validate(self) -> None:
        """Check values against the table and the combinations that crash the original code or make
        no sense. Messages name the options (errors.OptionValue)."""
        check_options(self, "config")
        _check_combinations(self)
        self.make_schedule()
        if self.racing:
            RacingConfig(self.racing_error, self.racing_rounds).validate()

    def make_schedule(self):
        name = canonical_schedule(self.schedule)
        if name == "none":
            return None
        return make_schedule(
            name, initial=self.lr_init, final=self.lr_final, total_steps=self.steps, warmup=self.warmup
        )


@dataclass(frozen=True)
class Limits:
    """Budget limits, checked at step boundaries: a run stops before a step whose
    planned optimizer calls would exceed `max_optimizer_calls`, and before the next step once
    `max_task_tokens` tokens were generated by the task model or `time_limit` seconds passed."""

    max_optimizer_calls: int | None = None
    max_task_tokens: int | None = None
    time_limit: float | None = None
