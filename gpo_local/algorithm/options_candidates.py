"""How the optimizer's candidates are sampled, checked and raced: a part of the "config" options
(config.OPTIONS) and the GPOConfig fields they declare (CandidateConfig).

The optimizer's sampling (temperature, min-p, reply length), the checks a reply passes (tags, word
count, grammar, exemplar leakage, the copy guard, the reply quota), the seed and racing. Each
declaration here is a field of CandidateConfig below, in the same order and with the same default;
GPOConfig (config.py) inherits them. Adding an option of this theme is its declaration and its
field here, plus the code that reads it.
"""

from __future__ import annotations

from dataclasses import dataclass

from gpo_local.algorithm.option import MAX_COUNT, MAX_SEED, Option
from gpo_local.algorithm.racing import DEFAULT_ERROR as RACING_ERROR
from gpo_local.algorithm.racing import DEFAULT_ORDER as RACING_ORDER
from gpo_local.algorithm.racing import DEFAULT_ROUNDS as RACING_ROUNDS
from gpo_local.algorithm.racing import ORDERS as RACING_ORDERS

_O = Option
CANDIDATE_OPTIONS: tuple[Option, ...] = (
    # Below the paper's 1.0: the 1.5B optimizer drifts off the task more often at 1.0 (the
    # defaults were chosen on the suite's tuning half, docs/results.md).
    _O(
        "optimizer_temperature",
        float,
        0.7,
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
    # Off by default, as in the paper: free-form replies (with temperature 0.7, eight format
    # examples and the instruction first) gave the higher dev scores on the instruction-induction
    # suite's tuning half and the cheaper steps (docs/results.md, "Choosing the defaults").
    # Constrained replies are always a tagged prompt within the word cap, where free-form ones
    # often are not (benchmarks/grammar_replies.py counts both); the grammar keeps them so.
    _O(
        "grammar",
        bool,
        False,
        "Constrain optimizer replies to a tagged prompt within the step's word cap "
        "(llama.cpp GBNF); without it: free-form replies, malformed ones dropped "
        "[default: off].",
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
    # Off by default: on the main job it filled nearly every step but ended on the same prompts
    # and dev scores, in 30-60% more time (an optimizer call and a dev scoring per extra
    # candidate; docs/results.md, "The main job").
    _O(
        "reply_quota",
        bool,
        False,
        "Ask the optimizer again, each ask with its own seed, until a step has as many usable new candidates "
        "as it asked for, at most twice as many asks; the run's optimizer-call budget is twice its plan "
        "with it [default: off].",
        negatable=True,
        section="replies",
    ),
)


@dataclass(frozen=True)
class CandidateConfig:
    """How candidates are sampled, checked and raced: the fields of CANDIDATE_OPTIONS, in their
    order, with their defaults."""

    optimizer_temperature: float = 0.7
    optimizer_min_p: float = 0.0
    optimizer_max_tokens: int = 512
    require_tags: bool = False
    max_prompt_words: int | None = None
    seed: int = 0
    racing: bool = False
    racing_error: float = RACING_ERROR
    racing_rounds: int = RACING_ROUNDS
    racing_order: str = RACING_ORDER
    grammar: bool = False
    leak_check: bool = True
    copy_guard: bool = True
    reply_quota: bool = False
