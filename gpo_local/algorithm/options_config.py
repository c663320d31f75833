"""The "config" options of the option table (config.OPTIONS): what the optimization does.

Each declaration here is a field of GPOConfig (config.py), in the same order and with the same
default: the method, its steps and candidates, GPO's strategy switches and step-size schedule, the
shown examples, the task model's reply limits and prompt position, the dev and test limits, the
optimizer's sampling and reply checks, the seed and racing. The constants the declarations name
(the methods, the switches' choices and which methods take them, the upper bounds no machine
reaches) are defined with them.
"""

from __future__ import annotations

from gpo_local.algorithm.directions import ALIASES as SELECTION_ALIASES
from gpo_local.algorithm.directions import SELECTORS
from gpo_local.algorithm.option import Option
from gpo_local.algorithm.racing import DEFAULT_ERROR as RACING_ERROR
from gpo_local.algorithm.racing import DEFAULT_ORDER as RACING_ORDER
from gpo_local.algorithm.racing import DEFAULT_ROUNDS as RACING_ROUNDS
from gpo_local.algorithm.racing import ORDERS as RACING_ORDERS
from gpo_local.algorithm.schedules import ALIASES as SCHEDULE_ALIASES
from gpo_local.algorithm.schedules import SCHEDULES
from gpo_local.algorithm.updates import UPDATE_METHODS
from gpo_local.tasks.answer_length import parse_answer_max_tokens
from gpo_local.tasks.prompting import DEFAULT_POSITION, POSITIONS

# The methods `--method` offers (methods/__init__.py maps each to its class).
METHOD_NAMES = ("gpo", "empty", "cot", "ape", "apo", "opro", "pe2", "sgdm", "reference")
GRADIENTS = ("none", "feedback")
MOMENTA = ("none", "para", "feedback")
MOMENTUM_UPDATES = ("k-list", "real-time")
SELECTIONS = tuple(SELECTORS)
SCHEDULE_NAMES = ("none", *SCHEDULES)
# Upper bounds that no machine or model reaches; the bounds that follow from this machine and
# the chosen models (threads, context, memory) are checked in app/bounds.py.
MAX_COUNT = 1_000_000  # questions, calls, items
MAX_WORDS = 1_000  # an edit budget or a prompt length, in words
MAX_SEED = 2**32 - 1  # llama.cpp's seeds are 32-bit

# Switches of the GPO algorithm and the methods that take them (the rest take them as preset).
GPO_ONLY = ("gpo",)
SCHEDULED = ("gpo", "pe2")  # PE2 verbalizes a step size
STEP_SIZED = ("gpo", "sgdm", "pe2")


_O = Option
CONFIG_OPTIONS: tuple[Option, ...] = (
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
)
