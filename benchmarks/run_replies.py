"""Finished runs side by side: usable optimizer replies, drops by reason, two audits of the kept
candidates, and the final prompts' dev and test scores, one row per group of runs.

For comparing real runs that differ in one setting (a meta-prompt wording, a sampler option),
each group given as LABEL=RUN_DIR[,RUN_DIR...] (a shell glob expands to the list):

* usable and drops: the run records' own counts (drops.totals), duplicates included;
* restated: kept new candidates that 3-word runs of one shown exemplar cover by half
  (benchmarks/copy_guard.py's audit);
* meta words: kept new candidates that say "prompt", "score" or "the/these examples"
  (benchmarks/meta_wording.py's audit), which an instruction to the task model has little reason
  to say: a wording can move meta talk out of the run's phrase list without preventing it;
* dev and test: the mean of the runs' final dev and test scores (result.json), and the final
  dev and test score of each run (task and seed), in seed and task order.

    python benchmarks/run_replies.py "plain=OUT/runs/*/gpo/seed*" "recorded=OUT2/runs/*/gpo/seed*" [--show]
"""

from __future__ import annotations

import argparse
import glob
import json
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from copy_guard import audit_run  # noqa: E402
from meta_wording import AUDIT  # noqa: E402


def group_runs(spec: str) -> tuple[str, list[Path]]:
    label, _, paths = spec.partition("=")
    if not paths:
        raise SystemExit(f"{spec!r}: expected LABEL=RUN_DIR[,RUN_DIR...]")
    runs = [Path(p) for part in paths.split(",") for p in sorted(glob.glob(part)) or [part]]
    return label, sorted((r for r in runs if (r / "result.json").exists()), key=cell)


def cell(run_dir: Path) -> tuple[int, str]:
    """(seed, task name) of a run: the order in which runs are listed, the same in every group."""
    config = json.loads((run_dir / "config.json").read_text())
    return config["config"]["seed"], Path(str(config["task"])).name


def _points(score: float | None) -> str:
    return "-" if score is None else f"{100 * score:.1f}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("groups", nargs="+", help="LABEL=RUN_DIR[,RUN_DIR...] (globs allowed)")
    parser.add_argument(
        "--show", action="store_true", help="print the kept candidates the meta-word audit flags"
    )
    args = parser.parse_args(argv)
    print(
        f"{'group':14s} {'runs':>4} {'usable':>13} {'drops':44s} {'restated':>9} {'meta words':>11} "
        f"{'dev':>5} {'test':>5}  task/seed:dev/test per run"
    )
    for spec in args.groups:
        label, runs = group_runs(spec)
        replies = usable = restated = new = 0
        drops: Counter = Counter()
        flagged: list[str] = []
        devs, tests = [], []
        for run_dir in runs:
            run = audit_run(run_dir, 3)
            replies, usable, new = replies + run["replies"], usable + run["usable"], new + run["new"]
            restated += len(run["restated"])
            drops.update(run["drops"])
            flagged += [p for p in run["new_prompts"] if AUDIT.search(p)]
            devs.append(run["dev"])
            tests.append(run["test"])
        if not runs:
            print(f"{label:14s} no finished run")
            continue
        dev = 100 * sum(d for d in devs if d is not None) / max(1, sum(d is not None for d in devs))
        test = 100 * sum(t for t in tests if t is not None) / max(1, sum(t is not None for t in tests))
        share = f"{usable}/{replies} {usable / replies:.1%}" if replies else "-"
        print(
            f"{label:14s} {len(runs):>4} {share:>13} {str(dict(drops)):44s} {restated:>4}/{new:<4} "
            f"{len(flagged):>5}/{new:<5} {dev:>5.1f} {test:>5.1f}  "
            + " ".join(
                f"{cell(r)[1][:10]}/s{cell(r)[0]}:{_points(d)}/{_points(t)}"
                for r, d, t in zip(runs, devs, tests)
            )
        )
        if args.show:
            for prompt in flagged:
                print(f"      {prompt!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
