"""The wall-time estimate of `optimize --dry-run`, timed the way a run really spends it (issue 12).

The first estimate timed 4 first-round generations in one batch and multiplied by the number of
generations: far from what a run does, since the evaluator sends 64 (prompt, question) pairs per
call, both rounds chained in the batched decoder, question by question so that prompts share the
question's prefix. Here the rates are measured on that workload:

- seconds per dev pair: the real Evaluator (no memo) scores two prompts (the initial prompt and a
  variant of it) on up to 16 dev questions (32 pairs, two decoders full), both rounds included;
- seconds per optimizer call: min(C, 4) replies to a first step's meta-prompt (the task's format
  examples included) sampled in one batch, as a step asks its C candidates in one call;
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
RACED_SHARE, the share of dev pairs racing scores: for now from simulated steps
(benchmarks/racing_simulated.py, error 0.05, 4 rounds: 70-86% of the pairs), to be replaced by
the replays of real runs (benchmarks/racing.py). Both shares are averages, not bounds: a step
whose candidates are all new and all alike races to the end.
"""

from __future__ import annotations

import time

# Share of a step's candidate dev pairs racing scores (see the module docstring).
RACED_SHARE = 0.8
# Share of optimizer replies that become new candidates (see the module docstring).
NEW_SHARE = 0.5
NEW_SHARE_CONSTRAINED = 1.0
CHUNK_QUESTIONS = 16


def dev_pairs(est, n_dev: int, racing: bool, new_share: float = NEW_SHARE) -> float:
    """Expected dev pairs: p0 in full, the candidates' pairs scaled by the share of replies that
    become new candidates and by RACED_SHARE with racing."""
    candidates = est.dev_scorings - n_dev
    return n_dev + candidates * new_share * (RACED_SHARE if racing else 1.0)


def seconds(est, rates: dict, n_dev: int, racing: bool, new_share: float | None = None) -> float:
    new_share = rates.get("new_share", NEW_SHARE) if new_share is None else new_share
    pairs = dev_pairs(est, n_dev, racing, new_share) + est.train_scorings + est.test_scorings
    return (rates.get("load_seconds", 0.0) + pairs * rates["seconds_per_pair"]
            + est.optimizer_calls * rates["seconds_per_optimizer_call"])


def measure(settings) -> dict:
    """Time model loading, one evaluator chunk and a batch of optimizer replies (no memo)."""
    from .backends import complete_llm
    from .backends.llama_cpp import load_models
    from .evaluator import Evaluator
    from .grammar import word_cap
    from .optimizer import pick_exemplars
    from .replies import constrained_request
    from .updates import render_update

    runtime, cfg, task = settings.runtime, settings.config, settings.task
    started = time.perf_counter()
    task_llm, optimizer_llm = load_models(runtime["task_model"], runtime["optimizer_model"] or runtime["task_model"],
                                          n_ctx=runtime["n_ctx"], n_threads=runtime["threads"],
                                          n_gpu_layers=runtime["n_gpu_layers"], parallel=runtime["parallel"])
    load = time.perf_counter() - started
    questions = task.split("eval", cfg.dev_limit)[:CHUNK_QUESTIONS]
    prompts = [settings.initial_prompt, f"{settings.initial_prompt} Answer carefully."]
    started = time.perf_counter()
    Evaluator(task_llm, task, position=cfg.position).evaluate_examples(prompts, questions, "eval")
    per_pair = (time.perf_counter() - started) / (len(prompts) * len(questions))
    asks = min(cfg.candidates, 4)
    # A first step's meta-prompt, as long as the run's (its examples dominate the prompt tokens),
    # asked as the run asks it: under the step's grammar and sized token limit when constrained.
    schedule = cfg.make_schedule()
    budget = schedule(1) if schedule else None
    ask = render_update(method="generate-without", history=[], current=settings.initial_prompt,
                        exemplars=pick_exemplars(task, cfg.format_examples, cfg.seed), position=cfg.position,
                        budget=budget)
    constrained, max_tokens = {}, cfg.optimizer_max_tokens
    new_share = NEW_SHARE
    if cfg.grammar and complete_llm(optimizer_llm).supports_grammar:
        new_share = NEW_SHARE_CONSTRAINED
        cap = word_cap(settings.initial_prompt, budget, cfg.max_prompt_words)
        (ask,), grammar, max_tokens = constrained_request([ask], cap, max_tokens)
        constrained = {"grammar": grammar}
    started = time.perf_counter()
    optimizer_llm.generate([ask] * asks, max_tokens=max_tokens, temperature=cfg.optimizer_temperature,
                           seeds=list(range(1, asks + 1)), stop=("<END>",), **constrained)
    per_call = (time.perf_counter() - started) / asks
    return {"load_seconds": load, "seconds_per_pair": per_pair, "seconds_per_optimizer_call": per_call,
            "new_share": new_share,
            "measured_pairs": len(prompts) * len(questions), "measured_optimizer_calls": asks}


def describe(est, rates: dict, n_dev: int, racing: bool) -> str:
    total = seconds(est, rates, n_dev, racing)
    other = seconds(est, rates, n_dev, not racing)
    most = seconds(est, rates, n_dev, racing, new_share=1.0)
    mode = "with racing" if racing else "without racing"
    return (f"  estimated wall time:     {total / 60:.1f} min {mode} ({other / 60:.1f} min "
            f"{'without' if racing else 'with'}; at most {most / 60:.1f} min if every optimizer reply is a new "
            f"candidate, {rates.get('new_share', NEW_SHARE):.0%} assumed); measured {rates['seconds_per_pair']:.2f} s per dev pair "
            f"(both rounds, {rates['measured_pairs']} pairs batched as the evaluator batches), "
            f"{rates['seconds_per_optimizer_call']:.2f} s per optimizer call, {rates['load_seconds']:.0f} s loading; "
            "memo hits make re-runs faster")
