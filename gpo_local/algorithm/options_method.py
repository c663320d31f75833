"""The method and GPO's strategy switches: a part of the "config" options (config.OPTIONS) and the
GPOConfig fields they declare (MethodConfig).

The method, its steps and candidates, GPO's strategy switches (gradient, momentum, the k-list, the
update) and its step-size schedule. Each declaration here is a field of MethodConfig below, in the
same order and with the same default; GPOConfig (config.py) inherits them. The constants the
declarations name (the methods, the switches' choices and which methods take them) are defined
with them. Adding an option of this theme is its declaration and its field here, plus the code that
reads it.
"""

from __future__ import annotations

from dataclasses import dataclass

from gpo_local.algorithm.directions import ALIASES as SELECTION_ALIASES
from gpo_local.algorithm.directions import SELECTORS
from gpo_local.algorithm.option import MAX_WORDS, Option
from gpo_local.algorithm.schedules import ALIASES as SCHEDULE_ALIASES
from gpo_local.algorithm.schedules import SCHEDULES
from gpo_local.algorithm.updates import UPDATE_METHODS

# The methods `--method` offers (methods/__init__.py maps each to its class).
METHOD_NAMES = ("gpo", "empty", "cot", "ape", "apo", "opro", "pe2", "sgdm", "reference")
GRADIENTS = ("none", "feedback")
COLD_STARTS = ("induce", "refine")
MOMENTA = ("none", "para", "feedback")
MOMENTUM_UPDATES = ("k-list", "real-time")
SELECTIONS = tuple(SELECTORS)
SCHEDULE_NAMES = ("none", *SCHEDULES)

# Switches of the GPO algorithm and the methods that take them (the rest take them as preset).
GPO_ONLY = ("gpo",)
SCHEDULED = ("gpo", "pe2")  # PE2 verbalizes a step size
STEP_SIZED = ("gpo", "sgdm", "pe2")


_O = Option
METHOD_OPTIONS: tuple[Option, ...] = (
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
    # Refining a prompt that scores 0 has no signal to follow: on the instruction-induction suite
    # the optimizer mostly rewords "Let's think step by step." instead of naming the rule. Induction
    # gave the higher dev scores on the suite's tuning half (docs/results.md, "The cold start").
    _O(
        "cold_start",
        str,
        "induce",
        "How a step makes its candidates while no prompt has scored above 0 on the dev split: "
        "induce instructions from input/output examples, each candidate from its own sample, as "
        "APE starts, or refine the current prompt (the update meta-prompt), as the paper does.",
        choices=COLD_STARTS,
        methods=GPO_ONLY,
        show_default=True,
    ),
    # A cold start ends at the first prompt scoring above 0, which may follow a wrong rule that
    # refining then only rewords (a word "that ends with an 'ed' or 'ing' sound", when the task is
    # the past tense). Induced candidates in every step keep proposing other rules. Off by default:
    # two a step did not raise the tuning half's final dev scores (docs/results.md, "One setting
    # at a time").
    _O(
        "induced_candidates",
        int,
        0,
        "Of each refining step's candidates, how many are induced from input/output examples (as "
        "in the cold start, each from its own sample) instead of written by the update "
        "meta-prompt; at most --candidates.",
        minimum=0,
        maximum=10_000,
        methods=GPO_ONLY,
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
)


@dataclass(frozen=True)
class MethodConfig:
    """The method and GPO's strategy switches: the fields of METHOD_OPTIONS, in their order, with
    their defaults (the paper's headline GPO, the original GPO.sh)."""

    method: str = "gpo"
    steps: int = 18
    candidates: int = 8
    gradient: str = "none"
    momentum: str = "para"
    selection: str = "relevance"
    momentum_update: str = "k-list"
    k: int = 3
    update: str = "generate-without"
    cold_start: str = "induce"
    induced_candidates: int = 0
    schedule: str = "cosine"
    lr_init: int = 50
    lr_final: int = 10
    warmup: int = 0
