"""Calibrating the wall-time estimate of `optimize --dry-run` (walltime.py) by earlier runs of
the same workload.

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
from pathlib import Path

from gpo_local.app.settings import describe as describe_settings
from gpo_local.errors import ConfigError
from gpo_local.runs.directory import JsonlLog, home_dir
from gpo_local.runs.rundata import read_events

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
