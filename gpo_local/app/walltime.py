"""The wall-time estimate of `optimize --dry-run`, timed the way a run really spends it.

The first estimate timed 4 first-round generations in one batch and multiplied by the number of
generations: far from what a run does, since the evaluator sends 64 (prompt, question) pairs per
call, both rounds chained in the batched decoder, question by question so that prompts share the
question's prefix. Here the rates are measured on that workload:

- seconds per optimizer call: min(C, 8) replies to a first step's meta-prompt (the task's format
  examples included) sampled in one batch, as a step asks its C candidates in one call;
- seconds per dev pair: the real Evaluator (no memo) scores the initial prompt and up to three of
  the candidates those replies parsed to (a variant of the initial prompt when none parsed) on
  the dev questions that make 32 pairs (two decoders full), both rounds included. Timing the
  run's own kind of candidate matters: a constrained reply runs to its word cap, and the task
  model answers a long instruction with more tokens, so a pair of a long candidate takes longer
  than a pair of "Let's think step by step.";
- model loading, timed.

The estimate is then load + pairs x seconds per pair + optimizer calls x seconds per call, where
pairs counts dev, train and test pairs (budget.estimate). budget.estimate counts every optimizer
reply as a new candidate scored on the whole dev split: an upper bound. Replies that are dropped
(truncated, malformed, a restated example) or repeat an earlier prompt are never scored, so the
expected dev pairs of the candidates are scaled by NEW_SHARE, the share of replies that became
new candidates in recorded runs of the main job with free-form replies (about half). A
grammar-constrained reply is always a prompt within its cap, so only repeats and restated
examples are not new: NEW_SHARE_CONSTRAINED, nearly all replies in recorded constrained runs.
The dry run prints the expected figure and the upper bound.
With racing, the candidates' dev pairs are also scaled by raced_share(n_dev), the share of dev
pairs racing scores at its default error level, rounds and order, replayed on real runs recorded
with --no-racing (benchmarks/racing.py, error 0.05, 4 rounds) at 24, 40 and 48 dev questions
(RACED_SHARES), interpolated between those points and held at the ends; the random order saves
less than the informative one. Both shares are averages, not bounds: a step whose candidates
are all new and all alike races to the end.

Earlier runs of the same workload calibrate the estimate (calibration.py).
"""

from __future__ import annotations

import time

from gpo_local.algorithm.draws import pick_exemplars
from gpo_local.algorithm.evaluator import Evaluator
from gpo_local.algorithm.racing import DEFAULT_ORDER
from gpo_local.algorithm.updates import render_update
from gpo_local.app.calibration import BUSY_FACTOR, calibrated, history
from gpo_local.backends import complete_llm, llama_cpp
from gpo_local.replies.grammar import word_cap
from gpo_local.replies.parser import classify_replies, constrained_request

# Share of a step's candidate dev pairs racing scores, by question order and dev questions (see
# the module docstring).
RACED_SHARES = {
    "informative": ((24, 0.955), (40, 0.671), (48, 0.551)),
    "random": ((24, 0.975), (40, 0.711), (48, 0.717)),
}
# Share of optimizer replies that become new candidates (see the module docstring).
NEW_SHARE = 0.5
NEW_SHARE_CONSTRAINED = 1.0
CHUNK_PAIRS = 32
MAX_ASKS = 8
CANDIDATES_TIMED = 3


def raced_share(n_dev: int, order: str = DEFAULT_ORDER) -> float:
    """RACED_SHARES of the racing order interpolated linearly at n_dev, held at the ends."""
    (low_n, low_share), *rest = RACED_SHARES[order]
    if n_dev <= low_n:
        return low_share
    for high_n, high_share in rest:
        if n_dev <= high_n:
            return low_share + (high_share - low_share) * (n_dev - low_n) / (high_n - low_n)
        low_n, low_share = high_n, high_share
    return low_share


def dev_pairs(
    est,
    n_dev: int,
    racing: bool,
    new_share: float = NEW_SHARE,
    scored_share: float | None = None,
    order: str = DEFAULT_ORDER,
) -> float:
    """Expected dev pairs: p0 in full, the candidates' pairs scaled by the share of replies that
    become new candidates and, with racing, by the share of their pairs racing scores
    (`scored_share`, raced_share(n_dev, order) when not given)."""
    candidates = est.dev_scorings - n_dev
    raced = (raced_share(n_dev, order) if scored_share is None else scored_share) if racing else 1.0
    return n_dev + candidates * new_share * raced


def seconds(
    est, rates: dict, n_dev: int, racing: bool, new_share: float | None = None, order: str = DEFAULT_ORDER
) -> float:
    new_share = rates.get("new_share", NEW_SHARE) if new_share is None else new_share
    pairs = (
        dev_pairs(est, n_dev, racing, new_share, rates.get("raced_share"), order)
        + est.train_scorings
        + est.test_scorings
    )
    return (
        rates.get("load_seconds", 0.0)
        + pairs * rates["seconds_per_pair"]
        + est.optimizer_calls * rates["seconds_per_optimizer_call"]
    )


def measure(settings) -> dict:
    """Time model loading, a batch of optimizer replies and one evaluator chunk of the initial
    prompt and the candidates those replies parsed to (no memo)."""
    cfg, task = settings.config, settings.task
    task_llm, optimizer_llm, load, loaded = _load_models(settings.runtime)
    per_call, asks, parsed, new_share = _time_optimizer_replies(settings, complete_llm(optimizer_llm))
    candidates = _timed_candidates(parsed, settings.initial_prompt)
    prompts = [settings.initial_prompt, *(candidates or [f"{settings.initial_prompt} Answer carefully."])]
    questions = task.split("eval", cfg.dev_limit)[: max(1, CHUNK_PAIRS // len(prompts))]
    started = time.perf_counter()
    Evaluator(task_llm, task, position=cfg.position).evaluate_examples(prompts, questions, "eval")
    per_pair = (time.perf_counter() - started) / (len(prompts) * len(questions))
    timed = {
        "load_seconds": load,
        "seconds_per_pair": per_pair,
        "seconds_per_optimizer_call": per_call,
        "new_share": new_share,
        "timed_candidates": len(candidates),
        "measured_pairs": len(prompts) * len(questions),
        "measured_optimizer_calls": asks,
    }
    return calibrated(timed, history(settings, loaded, reference=per_pair))


def _load_models(runtime: dict):
    """The task and optimizer models loaded as a run loads them, the seconds it took, and what
    identifies them for the calibration (the files' sha256 and the task model's threads)."""
    started = time.perf_counter()
    task_llm, optimizer_llm = llama_cpp.load_models(
        runtime["task_model"],
        runtime["optimizer_model"] or runtime["task_model"],
        n_ctx=runtime["n_ctx"],
        n_threads=runtime["threads"],
        n_gpu_layers=runtime["n_gpu_layers"],
        parallel=runtime["parallel"],
    )
    load = time.perf_counter() - started
    loaded = {
        "task": task_llm.fingerprint,
        "optimizer": optimizer_llm.fingerprint,
        "threads": getattr(task_llm, "n_threads", runtime["threads"]),
    }
    return task_llm, optimizer_llm, load, loaded


def _time_optimizer_replies(settings, optimizer_llm) -> tuple[float, int, list, float]:
    """Seconds per optimizer reply of min(C, MAX_ASKS) replies to a first step's meta-prompt,
    asked in one batch; returns them with the number asked, the replies parsed as a run parses
    them and the share of replies expected to become new candidates."""
    cfg = settings.config
    asks = min(cfg.candidates, MAX_ASKS)
    # A first step's meta-prompt, as long as the run's (its examples dominate the prompt tokens),
    # asked as the run asks it: under the step's grammar and sized token limit when constrained.
    schedule = cfg.make_schedule()
    budget = schedule(1) if schedule else None
    ask = render_update(
        method="generate-without",
        history=[],
        current=settings.initial_prompt,
        exemplars=pick_exemplars(settings.task, cfg.format_examples, cfg.seed),
        position=cfg.position,
        budget=budget,
    )
    constrained, max_tokens, max_words = {}, cfg.optimizer_max_tokens, cfg.max_prompt_words
    new_share = NEW_SHARE
    if cfg.grammar and optimizer_llm.supports_grammar:
        new_share = NEW_SHARE_CONSTRAINED
        max_words = word_cap(settings.initial_prompt, budget, cfg.max_prompt_words)
        (ask,), grammar, max_tokens = constrained_request([ask], max_words, max_tokens)
        constrained = {"grammar": grammar}
    if optimizer_llm.supports_grammar and cfg.optimizer_min_p:  # sampled as the run samples
        constrained["min_p"] = cfg.optimizer_min_p
    started = time.perf_counter()
    replies = optimizer_llm.generate(
        [ask] * asks,
        max_tokens=max_tokens,
        temperature=cfg.optimizer_temperature,
        seeds=list(range(1, asks + 1)),
        stop=("<END>",),
        **constrained,
    )
    per_call = (time.perf_counter() - started) / asks
    parsed, _ = classify_replies(
        replies,
        optimizer_llm,
        max_tokens=max_tokens,
        max_words=max_words,
        require_tags=cfg.require_tags,
        constrained=bool(constrained),
    )
    return per_call, asks, parsed, new_share


def _timed_candidates(parsed, initial: str) -> list[str]:
    """Up to CANDIDATES_TIMED distinct candidates of the parsed replies (None: dropped, as a run
    drops it, so never timed), other than the initial prompt."""
    candidates: list[str] = []
    for prompt in parsed:
        if prompt and prompt != initial and prompt not in candidates:
            candidates.append(prompt)
    return candidates[:CANDIDATES_TIMED]


def describe(est, rates: dict, n_dev: int, racing: bool, order: str = DEFAULT_ORDER) -> str:
    total = seconds(est, rates, n_dev, racing, order=order)
    other = seconds(est, rates, n_dev, not racing, order=order)
    most = seconds(est, rates, n_dev, racing, new_share=1.0, order=order)
    mode = "with racing" if racing else "without racing"
    timed = rates.get("timed", rates)
    lines = [
        f"  estimated wall time:     {total / 60:.1f} min {mode} ({other / 60:.1f} min "
        f"{'without' if racing else 'with'}; at most {most / 60:.1f} min if every optimizer reply is a new "
        f"candidate, {rates.get('new_share', NEW_SHARE):.0%} assumed)"
    ]
    if "runs" in rates:
        lines.append(
            f"  from {rates['runs']} earlier run{'s' if rates['runs'] > 1 else ''} of the same workload: "
            f"{rates['seconds_per_pair']:.2f} s per scored pair, {rates['seconds_per_optimizer_call']:.2f} s "
            f"per optimizer reply, {rates['new_share']:.0%} of replies new candidates"
            + (f", {rates['raced_share']:.0%} of their dev pairs raced" if "raced_share" in rates else "")
            + (
                f" ({rates['left_out']} more left out: they scored over {BUSY_FACTOR:.0f}x slower than the "
                "fastest)"
                if rates.get("left_out")
                else ""
            )
        )
        lines.append(
            f"  timed now instead:       {seconds(est, timed, n_dev, racing, order=order) / 60:.1f} min"
        )
    elif rates.get("left_out"):
        many = rates["left_out"] > 1
        lines.append(
            f"  {rates['left_out']} earlier run{'s' if many else ''} of the same workload left out: "
            f"{'they' if many else 'it'} scored over {BUSY_FACTOR:.0f}x slower a pair than timed now, so the "
            "timing below stands"
        )
    lines.append(
        f"  timed: {timed['seconds_per_pair']:.2f} s per dev pair "
        f"(both rounds, {timed['measured_pairs']} pairs of the initial prompt and {_candidates(timed)} "
        f"batched "
        "as the evaluator batches), "
        f"{timed['seconds_per_optimizer_call']:.2f} s per optimizer call, {timed['load_seconds']:.0f} s "
        f"loading; "
        "memo hits make re-runs faster"
    )
    return "\n".join(lines)


def _candidates(rates: dict) -> str:
    timed = rates.get("timed_candidates", 0)
    if not timed:
        return "a variant of it"
    return f"{timed} candidate{'s' if timed > 1 else ''} the optimizer wrote"
