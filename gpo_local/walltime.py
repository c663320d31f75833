"""The wall-time estimate of `optimize --dry-run`, timed the way a run really spends it (issue 12).

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
  model answers a long instruction with more tokens (a `local.toml` cell: 1.77 s a pair on its
  19-49-word candidates against 1.00 s on "Let's think step by step." and a 3-word variant);
- model loading, timed.

The estimate is then load + pairs x seconds per pair + optimizer calls x seconds per call, where
pairs counts dev, train and test pairs (budget.estimate). budget.estimate counts every optimizer
reply as a new candidate scored on the whole dev split: an upper bound. Replies that are dropped
(truncated, malformed, a restated example) or repeat an earlier prompt are never scored, so the
expected dev pairs of the candidates are scaled by NEW_SHARE, the share of replies that became
new candidates in recorded runs: 0.33-0.63, mean 0.52, over seven runs of the main job
(`optimize antonyms`, seeds 0-2, 24 replies each, 2026-11-29/30), free-form replies. A
grammar-constrained reply is always a prompt within its cap, so only repeats and restated
examples are not new: NEW_SHARE_CONSTRAINED, 59 of 60 replies in the first constrained runs
(2026-11-30: the main job with `--grammar` 24 of 24, GPO at 8 candidates on BBH navigate 23 of
24, a `local.toml` cell 12 of 12). The dry run prints the
expected figure and the upper bound. With racing, the candidates' dev pairs are also scaled by
raced_share(n_dev), the share of dev pairs racing scores at its default error level and
rounds, replayed on real runs recorded with --no-racing (benchmarks/racing.py, error 0.05, 4
rounds): 97.5% at 24 dev questions (the `local.toml` cells of seed 0), 78% at 40 (the main job,
six runs), 69% at 48 (GPO at 8 candidates on BBH navigate and boolean_expressions); interpolated
between those points and held at the ends. Both shares are averages, not bounds: a step whose
candidates are all new and all alike races to the end.
"""

from __future__ import annotations

import time

from .replies import classify_replies, constrained_request

# Share of a step's candidate dev pairs racing scores, by dev questions (see the module docstring).
RACED_SHARES = ((24, 0.975), (40, 0.78), (48, 0.694))
# Share of optimizer replies that become new candidates (see the module docstring).
NEW_SHARE = 0.5
NEW_SHARE_CONSTRAINED = 1.0
CHUNK_PAIRS = 32
MAX_ASKS = 8
CANDIDATES_TIMED = 3


def raced_share(n_dev: int) -> float:
    """RACED_SHARES interpolated linearly at n_dev, held at the ends."""
    (low_n, low_share), *rest = RACED_SHARES
    if n_dev <= low_n:
        return low_share
    for high_n, high_share in rest:
        if n_dev <= high_n:
            return low_share + (high_share - low_share) * (n_dev - low_n) / (high_n - low_n)
        low_n, low_share = high_n, high_share
    return low_share


def dev_pairs(est, n_dev: int, racing: bool, new_share: float = NEW_SHARE) -> float:
    """Expected dev pairs: p0 in full, the candidates' pairs scaled by the share of replies that
    become new candidates and by raced_share with racing."""
    candidates = est.dev_scorings - n_dev
    return n_dev + candidates * new_share * (raced_share(n_dev) if racing else 1.0)


def seconds(est, rates: dict, n_dev: int, racing: bool, new_share: float | None = None) -> float:
    new_share = rates.get("new_share", NEW_SHARE) if new_share is None else new_share
    pairs = dev_pairs(est, n_dev, racing, new_share) + est.train_scorings + est.test_scorings
    return (rates.get("load_seconds", 0.0) + pairs * rates["seconds_per_pair"]
            + est.optimizer_calls * rates["seconds_per_optimizer_call"])


def measure(settings) -> dict:
    """Time model loading, a batch of optimizer replies and one evaluator chunk of the initial
    prompt and the candidates those replies parsed to (no memo)."""
    from .backends import complete_llm
    from .backends.llama_cpp import load_models
    from .evaluator import Evaluator
    from .grammar import word_cap
    from .optimizer import pick_exemplars
    from .updates import render_update

    runtime, cfg, task = settings.runtime, settings.config, settings.task
    started = time.perf_counter()
    task_llm, optimizer_llm = load_models(runtime["task_model"], runtime["optimizer_model"] or runtime["task_model"],
                                          n_ctx=runtime["n_ctx"], n_threads=runtime["threads"],
                                          n_gpu_layers=runtime["n_gpu_layers"], parallel=runtime["parallel"])
    load = time.perf_counter() - started
    optimizer_llm = complete_llm(optimizer_llm)
    asks = min(cfg.candidates, MAX_ASKS)
    # A first step's meta-prompt, as long as the run's (its examples dominate the prompt tokens),
    # asked as the run asks it: under the step's grammar and sized token limit when constrained.
    schedule = cfg.make_schedule()
    budget = schedule(1) if schedule else None
    ask = render_update(method="generate-without", history=[], current=settings.initial_prompt,
                        exemplars=pick_exemplars(task, cfg.format_examples, cfg.seed), position=cfg.position,
                        budget=budget)
    constrained, max_tokens, max_words = {}, cfg.optimizer_max_tokens, cfg.max_prompt_words
    new_share = NEW_SHARE
    if cfg.grammar and optimizer_llm.supports_grammar:
        new_share = NEW_SHARE_CONSTRAINED
        max_words = word_cap(settings.initial_prompt, budget, cfg.max_prompt_words)
        (ask,), grammar, max_tokens = constrained_request([ask], max_words, max_tokens)
        constrained = {"grammar": grammar}
    started = time.perf_counter()
    replies = optimizer_llm.generate([ask] * asks, max_tokens=max_tokens, temperature=cfg.optimizer_temperature,
                                     seeds=list(range(1, asks + 1)), stop=("<END>",), **constrained)
    per_call = (time.perf_counter() - started) / asks
    parsed, _ = classify_replies(replies, optimizer_llm, max_tokens=max_tokens, max_words=max_words,
                                 require_tags=cfg.require_tags, constrained=bool(constrained))
    candidates = _timed_candidates(parsed, settings.initial_prompt)
    prompts = [settings.initial_prompt, *(candidates or [f"{settings.initial_prompt} Answer carefully."])]
    questions = task.split("eval", cfg.dev_limit)[:max(1, CHUNK_PAIRS // len(prompts))]
    started = time.perf_counter()
    Evaluator(task_llm, task, position=cfg.position).evaluate_examples(prompts, questions, "eval")
    per_pair = (time.perf_counter() - started) / (len(prompts) * len(questions))
    return {"load_seconds": load, "seconds_per_pair": per_pair, "seconds_per_optimizer_call": per_call,
            "new_share": new_share, "timed_candidates": len(candidates),
            "measured_pairs": len(prompts) * len(questions), "measured_optimizer_calls": asks}


def _timed_candidates(parsed, initial: str) -> list[str]:
    """Up to CANDIDATES_TIMED distinct candidates of the parsed replies (None: dropped, as a run
    drops it, so never timed), other than the initial prompt."""
    candidates: list[str] = []
    for prompt in parsed:
        if prompt and prompt != initial and prompt not in candidates:
            candidates.append(prompt)
    return candidates[:CANDIDATES_TIMED]


def describe(est, rates: dict, n_dev: int, racing: bool) -> str:
    total = seconds(est, rates, n_dev, racing)
    other = seconds(est, rates, n_dev, not racing)
    most = seconds(est, rates, n_dev, racing, new_share=1.0)
    mode = "with racing" if racing else "without racing"
    return (f"  estimated wall time:     {total / 60:.1f} min {mode} ({other / 60:.1f} min "
            f"{'without' if racing else 'with'}; at most {most / 60:.1f} min if every optimizer reply is a new "
            f"candidate, {rates.get('new_share', NEW_SHARE):.0%} assumed); measured {rates['seconds_per_pair']:.2f} s per dev pair "
            f"(both rounds, {rates['measured_pairs']} pairs of the initial prompt and {_candidates(rates)} batched "
            "as the evaluator batches), "
            f"{rates['seconds_per_optimizer_call']:.2f} s per optimizer call, {rates['load_seconds']:.0f} s loading; "
            "memo hits make re-runs faster")


def _candidates(rates: dict) -> str:
    timed = rates.get("timed_candidates", 0)
    if not timed:
        return "a variant of it"
    return f"{timed} candidate{'s' if timed > 1 else ''} the optimizer wrote"
