"""Runs with and without the copy guard (backends/copy_guard.py): usable replies, drops by
reason, and an audit of the kept candidates by a stricter restatement test than the run's.

The guard bans, in the sampler, the 6-token runs of the shown examples, which is
about what the run's leak check (leaks.py: 5-word runs covering half the prompt) drops. A guarded
optimizer could therefore write the same restated example in shorter pieces, and the run's check
would pass it. The audit catches that: it counts the kept new candidates of which at least half
(and 8 or more words) is covered by 3-word runs of one format exemplar (taken from the step
records' meta-prompts, `Input:` / `Output:` sections), `--ngram` to change it. Read the flagged
prompts with `--show`.

    python benchmarks/copy_guard.py RUN_DIR [RUN_DIR ...] [--ngram 3] [--show]

Runs are grouped by their config's `copy_guard` (runs recorded before the option: off).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gpo_local.replies.drops import reply_total, totals  # noqa: E402
from gpo_local.replies.leaks import LeakDetector  # noqa: E402
from gpo_local.runs.directory import JsonlLog  # noqa: E402

EXEMPLAR = re.compile(r"Input:\n(.*?)\nOutput:\n(.*?)(?:\n\n|$)", re.DOTALL)


def exemplar_section(meta_prompt: str) -> str:
    """The meta-prompt up to its history or current prompt (updates.render_update's order), so
    that a prompt of the trajectory that itself holds an `Input:` section is not taken for an
    exemplar."""
    return re.split(r"\n\n(?:Here (?:is|are) |The current prompt is:)", meta_prompt, maxsplit=1)[0]


def audit_run(run_dir: Path, ngram: int) -> dict:
    """A finished run's reply counts, drops, final scores and audited candidates."""
    records = list(JsonlLog(run_dir / "trajectory.jsonl").records())
    config = json.loads((run_dir / "config.json").read_text())
    result = json.loads((run_dir / "result.json").read_text())
    steps = [r for r in records if r["kind"] == "step" and r.get("meta_prompt")]
    shown = {t for s in steps for pair in EXEMPLAR.findall(exemplar_section(s["meta_prompt"])) for t in pair}
    detector = LeakDetector(shown, n=ngram)
    new = [r["prompt"] for r in records if r["kind"] == "candidate" and r.get("new", True)]
    replies = reply_total(records) or 0
    drops = totals(records)
    return {
        "guard": bool(config["config"].get("copy_guard", False)),
        "replies": replies,
        "usable": replies - sum(drops.values()),
        "drops": drops,
        "new": len(new),
        "new_prompts": new,
        "restated": [p for p in new if detector.leaks(p)],
        "dev": (result.get("final") or {}).get("dev_score"),
        "test": result.get("final_test"),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--ngram", type=int, default=3, help="the audit's run length in words")
    parser.add_argument("--show", action="store_true", help="print the candidates the audit flags")
    args = parser.parse_args(argv)
    groups: dict[bool, dict] = defaultdict(
        lambda: {
            "runs": 0,
            "replies": 0,
            "usable": 0,
            "drops": Counter(),
            "new": 0,
            "restated": [],
            "tests": [],
        }
    )
    for run_dir in args.runs:
        if not (run_dir / "result.json").exists():
            continue  # not finished
        run = audit_run(run_dir, args.ngram)
        if not run["replies"]:
            continue  # no optimizer replies (empty, cot)
        group = groups[run["guard"]]
        group["runs"] += 1
        for key in ("replies", "usable", "new"):
            group[key] += run[key]
        group["drops"].update(run["drops"])
        group["restated"] += run["restated"]
        if run["test"] is not None:
            group["tests"].append(run["test"])
        print(
            f"{str(run_dir)[-48:]:48s} guard {'on ' if run['guard'] else 'off'} usable {run['usable']:2d}/"
            f"{run['replies']:<2d} drops {dict(run['drops'])} restated ({args.ngram}-word audit) "
            f"{len(run['restated'])}/{run['new']} test {run['test']}"
        )
    print(
        f"\n{'guard':>5} {'runs':>5} {'usable replies':>16} {'drops':40s} {'restated (audit)':>17} "
        f"{'mean test':>10}"
    )
    for guard, g in sorted(groups.items()):
        mean = 100 * sum(g["tests"]) / len(g["tests"]) if g["tests"] else float("nan")
        print(
            f"{'on' if guard else 'off':>5} {g['runs']:>5} {g['usable']:>7}/{g['replies']:<4} "
            f"{g['usable'] / g['replies']:>4.0%} {str(dict(g['drops'])):40s} "
            f"{len(g['restated']):>8}/{g['new']:<8} {mean:>10.1f}"
        )
        if args.show:
            for prompt in g["restated"]:
                print(f"      {prompt!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
