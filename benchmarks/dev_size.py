"""Dev-split size: replay each step's choice on recorded runs as if only the first N dev
questions had been scored (``--dev-limit N``).

Input: run directories of real runs. Every scored prompt's record in trajectory.jsonl holds
``dev_outcomes`` (its score on every dev question), so a step can be replayed on the first N of
them: the pool of the recorded step (the current prompt, the new candidates and the repeats of
prompts scored before) is scored on those N questions, the method's selection rule picks from it
(racing.py's `choose`: GPO's best never-selected candidate, the baselines' best scored so far),
and the pick is compared with the prompt the whole split chose.

The replay is one step deep: the recorded history before each step is the whole split's, so it
shows how often a smaller split picks differently and what a different pick costs on the whole
split, not where a run on the smaller split would have gone from there. Per size: steps
replayed, the share choosing as the whole split did, the mean whole-split dev score of the pick
against the recorded choice's (points; 0 when the picks agree) and the scoring pairs saved.

    python benchmarks/dev_size.py RUN_DIR [RUN_DIR ...] [--sizes 10,20,30] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from racing import _natural, choose, load_steps  # noqa: E402

from gpo_local.replies.parsing import normalize_prompt  # noqa: E402
from gpo_local.runs.directory import JsonlLog  # noqa: E402


def recorded_outcomes(run_dir: Path) -> dict[str, dict[str, float]]:
    """Every scored prompt's per-question dev outcomes, by normalized prompt."""
    outcomes = {}
    for record in JsonlLog(run_dir / "trajectory.jsonl").records():
        if record.get("dev_outcomes"):
            outcomes.setdefault(normalize_prompt(record["prompt"]), record["dev_outcomes"])
    return outcomes


def replay_step(method: str, step: dict, outcomes: dict, size: int) -> tuple[bool, float] | None:
    """(same pick as the whole split, the pick's whole-split score minus the recorded choice's)
    with the pool scored on the first `size` questions; None when a prompt of the pool has no
    outcomes on the whole split (a run older than those records, or a candidate raced out after
    part of it) or the split is smaller than `size`."""
    full = {c["prompt"]: c["dev_score"] for c in step["candidates"] if c.get("new", True)}
    pool = [step["trajectory"][-1][0], *full, *(p for p, _ in step["scores"].values())]
    rows = {p: outcomes.get(normalize_prompt(p)) for p in pool}
    if any(row is None for row in rows.values()):
        return None
    ids = sorted(next(iter(rows.values())), key=_natural)
    if len(ids) < size or any(row.keys() != set(ids) for row in rows.values()):
        return None
    first = ids[:size]

    def small(prompt: str) -> float:
        return sum(rows[prompt][i] for i in first) / size

    whole = {p: sum(row.values()) / len(row) for p, row in rows.items()}
    shrunk = dict(
        step,
        trajectory=[*step["trajectory"][:-1], (step["trajectory"][-1][0], small(step["trajectory"][-1][0]))],
        scores={key: (p, small(p)) for key, (p, _) in step["scores"].items()},
    )
    pick = choose(method, shrunk, {p: small(p) for p in full})
    return pick == step["chosen"], whole[pick] - whole[step["chosen"]]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--sizes", default="10,20,30", help="dev questions to replay with")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    replays: dict[int, list[tuple[bool, float]]] = {n: [] for n in sizes}
    questions = set()
    for run in args.runs:
        config, steps = load_steps(run)
        method = config.get("method", "gpo")
        outcomes = recorded_outcomes(run)
        split = max((len(row) for row in outcomes.values()), default=0)  # 0: no outcomes recorded
        questions.add(split)
        whole_split = [replay_step(method, step, outcomes, split) for step in steps] if split else []
        matches = all(r is None or r[0] for r in whole_split)
        print(f"{run}: {method}, {len(steps)} steps; whole-split replay matches the record: {matches}")
        for step in steps:
            for n in sizes:
                result = replay_step(method, step, outcomes, n)
                if result is not None:
                    replays[n].append(result)
    whole = max(questions, default=0)
    print(f"{'dev questions':>13} {'steps':>6} {'same pick':>10} {'score lost (points)':>20} {'pairs':>8}")
    table = []
    for n in sizes:
        rows = replays[n]
        if not rows:
            continue
        same = sum(s for s, _ in rows) / len(rows)
        lost = 0.0 - statistics.fmean(d for _, d in rows) * 100
        table.append(
            {"size": n, "steps": len(rows), "same_pick": same, "score_lost": lost, "pairs_share": n / whole}
        )
        print(f"{n:>13} {len(rows):>6} {same:>10.1%} {lost:>20.1f} {n / whole:>8.0%}")
    if args.json:
        args.json.write_text(json.dumps(table, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
