"""Meta talk in recorded runs (leaks.talks_to_optimizer): how many candidates, chosen prompts and
final prompts talk about the prompt instead of being one, per method.

Runs recorded before the meta-talk check (drop reason `meta_talk`) kept such candidates; this
counts them offline, and what the usable-reply share of those runs would have been had the
check dropped them (every flagged candidate record counted as one usable reply less: an upper
bound on the effect, since a run with the check would not have chosen a flagged prompt and then
edited it into more of them).

    python benchmarks/meta_talk.py RUN_DIR [RUN_DIR ...]      # e.g. OUT/runs/*/*/seed[01]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gpo_local.replies.drops import reply_total, totals  # noqa: E402
from gpo_local.replies.leaks import talks_to_optimizer  # noqa: E402
from gpo_local.runs.directory import JsonlLog  # noqa: E402


def count_run(run_dir: Path) -> dict:
    """A finished run's counts: candidate replies and usable ones (its step records), new
    candidates and flagged ones, chosen step prompts flagged, and whether its final prompt is."""
    records = list(JsonlLog(run_dir / "trajectory.jsonl").records())
    steps = [r for r in records if r["kind"] == "step"]
    candidates = [r for r in records if r["kind"] == "candidate"]
    result = json.loads((run_dir / "result.json").read_text())
    replies = reply_total(records) or 0  # 0 (skipped) for a run whose steps predate the count
    return {
        "replies": replies,
        "usable": replies - sum(totals(records).values()),
        "new": sum(1 for c in candidates if c.get("new", True)),
        "flagged_new": sum(1 for c in candidates if c.get("new", True) and talks_to_optimizer(c["prompt"])),
        "flagged_records": sum(1 for c in candidates if talks_to_optimizer(c["prompt"])),
        "flagged_chosen": sum(1 for s in steps if talks_to_optimizer(s["prompt"])),
        "flagged_final": int(talks_to_optimizer(result["final"]["prompt"])),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    args = parser.parse_args(argv)
    totals: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for run_dir in args.runs:
        if not (run_dir / "result.json").exists() or not (run_dir / "config.json").exists():
            continue  # not finished
        method = json.loads((run_dir / "config.json").read_text()).get("method", "gpo")
        counts = count_run(run_dir)
        if not counts["replies"]:
            continue  # no optimizer (empty, cot)
        totals[method]["runs"] += 1
        for key, value in counts.items():
            totals[method][key] += value
    print(
        f"{'method':>7} {'runs':>5} {'new cands':>10} {'meta talk':>10} {'chosen':>7} {'finals':>7} "
        f"{'usable replies':>15} {'if dropped':>11}"
    )
    for method, t in sorted(totals.items()):
        usable, after = t["usable"] / t["replies"], (t["usable"] - t["flagged_records"]) / t["replies"]
        print(
            f"{method:>7} {t['runs']:>5} {t['new']:>10} {t['flagged_new']:>10} {t['flagged_chosen']:>7} "
            f"{t['flagged_final']:>7} {t['usable']:>7}/{t['replies']:<4} {usable:>3.0%} {after:>10.0%}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
