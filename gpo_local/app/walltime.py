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

Earlier runs of the same workload calibrate the estimate (`history`): finished runs of the same
method, task, task and optimizer model files, reply mode, word cap, position and threads
(SAME_WORKLOAD), found under
$GPO_LOCAL_HOME/runs and beside --run-dir (a bench cell's other seeds). Their events give the
rates the run really spent its time at (`recorded_rates`): seconds per scored pair, per optimizer
reply, and the share of replies that became new candidates (and with racing, the share of their
dev pairs scored). Pooled, they replace the timed rates and shares: a timed sample of three
candidates misses how long a run's candidates are and how many replies it drops. How close the
calibrated estimate lands: docs/results.md, "The wall-time estimate (--dry-run)".
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from gpo_local.algorithm.draws import pick_exemplars
from gpo_local.algorithm.evaluator import Evaluator
from gpo_local.algorithm.racing import DEFAULT_ORDER
from gpo_local.algorithm.updates import render_update
from gpo_local.app.settings import describe as describe_settings
from gpo_local.backends import complete_llm, llama_cpp
from gpo_local.errors import ConfigError
from gpo_local.replies.grammar import word_cap
from gpo_local.replies.parser import classify_replies, constrained_request
from gpo_local.runs.directory import JsonlLog, home_dir
from gpo_local.runs.rundata import read_events

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

    runtime, cfg, task = settings.runtime, settings.config, settings.task
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
    optimizer_llm = complete_llm(optimizer_llm)
    asks = min(cfg.candidates, MAX_ASKS)
    # A first step's meta-prompt, as long as the run's (its examples dominate the prompt tokens),
    # asked as the run asks it: under the step's grammar and sized token limit when constrained.
    schedule = cfg.make_schedule()
    budget = schedule(1) if schedule else None
    ask = render_update(
        method="generate-without",
        history=[],
        current=settings.initial_prompt,
        exemplars=pick_exemplars(task, cfg.format_examples, cfg.seed),
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


# --- Calibration by earlier runs of the same workload ------------------------------------------

# What must match for an earlier run's rates to apply: the method (its calls and drops), the task
# (its questions and answers), the models' files, the reply mode (constrained candidates run to
# their cap and cost more to score), the words cap (the same) and the threads.
SAME_WORKLOAD = (
    ("method",),
    ("task_source",),
    ("task_options",),
    ("models", "task", "sha256"),
    ("models", "optimizer", "sha256"),
    ("config", "grammar"),
    ("config", "max_prompt_words"),
    ("config", "position"),
    ("settings", "threads"),
)
# Pairs per second beyond which a scoring chunk was served by the memo cache, not the model
# (the 0.5B scores 2-5 pairs a second on 2 cores; memo hits run at thousands).
MEMO_PAIRS_PER_SECOND = 100.0
# A scoring chunk this many times slower than the run's median chunk was not working: the process
# was stopped (SIGSTOP: the chunk lasts as long as the stop) or the machine suspended.
PAUSED_FACTOR = 10.0
# A whole run this many times slower a pair than the fastest of its peers (or than the dry run's
# own timing) ran on a machine busy throughout; its chunks all look alike, so only peers show it
# (a recorded bench cell slowed by other measurements took 16.6 s a pair against 1.0-1.8 for
# its peers).
BUSY_FACTOR = 10.0


def recorded_rates(run_dir: Path) -> dict | None:
    """The sums behind the rates a finished run spent its time at, from its events.jsonl: time
    asking the optimizer (step_started -> candidates; for a method that scores a train minibatch
    before it asks, that scoring too) over the replies; scoring time over the
    pairs scored, chunk by chunk (the time from the previous event to each `scoring` event, over
    the pairs it adds), leaving out chunks served by the memo and chunks of a paused process
    (their seconds summed as `paused_seconds`); new candidates over replies. None for a run that
    did not finish, was resumed, or had no optimizer step."""
    try:
        events = read_events(run_dir / "events.jsonl")
    except (OSError, ValueError):
        return None
    kinds = [e.get("event") for e in events]
    if kinds.count("run_started") != 1 or "run_finished" not in kinds or "candidates" not in kinds:
        return None
    sums = dict.fromkeys(("ask_seconds", "replies", "new", "score_seconds", "pairs"), 0.0)
    chunks, opened, scoring, previous, done = [], None, False, 0.0, 0
    for event in events:
        kind, at = event.get("event"), event.get("time", 0.0)
        if kind == "step_started":
            opened, scoring = at, False
        elif kind == "candidates" and opened is not None:
            sums["ask_seconds"] += at - opened
            sums["replies"] += event.get("replies", 0)
            sums["new"] += event.get("new", 0)
            scoring, done = True, 0
        elif kind == "chosen":
            scoring, done = True, 0  # after the last step: the test split's scoring
        elif kind == "scoring" and scoring:
            now = event.get("done", 0)
            added = now - done if now > done else now  # a count that does not grow starts a new call
            done = 0 if now == event.get("total") else now
            if added > 0:
                chunks.append((at - previous, added))
        previous = at
    working, paused = _working_chunks(chunks)
    sums["score_seconds"] = sum(seconds for seconds, _ in working)
    sums["pairs"] = sum(pairs for _, pairs in working)
    sums["paused_seconds"] = sum(seconds for seconds, _ in paused)
    return sums if sums["replies"] and sums["pairs"] else None


def _working_chunks(chunks: list[tuple[float, int]]) -> tuple[list, list]:
    """The scoring chunks (seconds, pairs) the model worked through, and those of a paused
    process (over PAUSED_FACTOR times the median chunk's seconds a pair); chunks served by the
    memo are in neither."""
    computed = [
        (seconds, pairs) for seconds, pairs in chunks if pairs / max(seconds, 1e-9) < MEMO_PAIRS_PER_SECOND
    ]
    if not computed:
        return [], []
    per_pair = sorted(seconds / pairs for seconds, pairs in computed)
    median = per_pair[len(per_pair) // 2]
    slow = [seconds / pairs > PAUSED_FACTOR * median for seconds, pairs in computed]
    return ([c for c, s in zip(computed, slow) if not s], [c for c, s in zip(computed, slow) if s])


def raced_sums(run_dir: Path, n_dev: int) -> tuple[int, int] | None:
    """(dev pairs scored, dev pairs in full) of a raced run's new candidates (trajectory.jsonl)."""
    try:
        new = [
            r
            for r in JsonlLog(run_dir / "trajectory.jsonl").records()
            if r.get("kind") == "candidate" and r.get("new")
        ]
    except (OSError, ConfigError):
        return None
    return (sum(r.get("dev_questions", n_dev) for r in new), len(new) * n_dev) if new else None


def _field(record: dict, path: tuple[str, ...]):
    for key in path:
        record = record.get(key) if isinstance(record, dict) else None
    return record


def workload(record: dict) -> tuple:
    """What must match between runs for one's rates to stand for another's (SAME_WORKLOAD), of
    a config.json record."""
    return tuple(json.dumps(_field(record, key), sort_keys=True) for key in SAME_WORKLOAD)


def history(settings, loaded: dict, reference: float | None = None) -> dict | None:
    """Pooled rates of the finished earlier runs of the same workload, found under
    $GPO_LOCAL_HOME/runs and beside --run-dir; None when there are none. `loaded`: the sha256 of
    the "task" and "optimizer" model files and the task model's "threads"; `reference`: the
    seconds per pair the dry run has just timed (see pooled_rates)."""

    here = {
        "method": settings.config.method,
        "task_source": settings.task.source,
        "task_options": settings.task.options,
        **describe_settings(settings),
        "models": {role: {"sha256": loaded[role]} for role in ("task", "optimizer")},
        "settings": {"threads": loaded["threads"]},
    }
    places = [home_dir() / "runs"]
    own = Path(settings.run_dir).resolve() if settings.run_dir is not None else None
    if own is not None:
        places.append(own.parent)
    runs = sorted(
        {p.parent.resolve() for place in places if place.is_dir() for p in place.glob("*/config.json")}
    )
    same = []
    for run in runs:
        try:
            record = json.loads((run / "config.json").read_text())
        except (OSError, ValueError):
            continue
        if run != own and workload(record) == workload(here):
            same.append((run, record))
    return pooled_rates(same, len(settings.task.split("eval", settings.config.dev_limit)), reference)


def pooled_rates(runs, n_dev: int, reference: float | None = None) -> dict | None:
    """The rates of (run directory, config.json record) pairs pooled: time over the counts of all
    of them (recorded_rates); None when none finished. With racing, the share of dev pairs their
    new candidates were scored on (`raced_share`).
    A run that scored at over BUSY_FACTOR times the fastest seconds per pair among the runs and
    `reference` (the rate a dry run has just timed) is left out whole (counted as `left_out`): it
    ran on a machine busy with other work throughout, which the per-chunk filter of
    recorded_rates cannot see (a `local.toml` cell that ran beside other jobs scored at 16-32 s a
    pair in all but its last chunk, against 1.0-1.8 for the same workload on a quiet machine; from
    it alone the cell's next run was estimated at 5,322 s and took 316 s). When every run is left
    out, only the count is returned ({"runs": 0, "left_out": n}), so the dry run can say so."""
    finished = [(run, record, sums) for run, record in runs if (sums := recorded_rates(run)) is not None]
    per_pair = [sums["score_seconds"] / sums["pairs"] for _, _, sums in finished]
    fastest = min(per_pair + ([reference] if reference else []), default=0.0)
    pooled, used, raced = (
        dict.fromkeys(("ask_seconds", "replies", "new", "score_seconds", "pairs"), 0.0),
        0,
        [0, 0],
    )
    for (run, record, sums), rate in zip(finished, per_pair):
        if rate > BUSY_FACTOR * fastest:
            continue
        used += 1
        for key in pooled:
            pooled[key] += sums[key]
        if _field(record, ("config", "racing")) and (scored := raced_sums(run, n_dev)):
            raced = [raced[0] + scored[0], raced[1] + scored[1]]
    if not finished:
        return None
    if not used:
        return {"runs": 0, "left_out": len(finished)}
    rates = {
        "runs": used,
        "left_out": len(finished) - used,
        "seconds_per_pair": pooled["score_seconds"] / pooled["pairs"],
        "seconds_per_optimizer_call": pooled["ask_seconds"] / pooled["replies"],
        "new_share": pooled["new"] / pooled["replies"],
    }
    if raced[1]:
        rates["raced_share"] = raced[0] / raced[1]
    return rates


def calibrated(timed: dict, recorded: dict | None) -> dict:
    """The timed rates, with those of earlier runs in their place when there are any (the timed
    ones kept under `timed`)."""
    if not recorded:
        return timed
    if not recorded["runs"]:  # every earlier run left out as slowed: the timed rates stand
        return {**timed, "left_out": recorded["left_out"]}
    return {**timed, **recorded, "timed": timed}


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
