"""Racing benchmark (issue 12): replay selection on recorded full-dev candidate outcomes.

Input: run directories of real runs recorded with ``--no-racing``. Every new candidate's
``candidate`` record in trajectory.jsonl holds ``dev_outcomes`` (its score on every dev
question), so each step can be replayed: race the step's new candidates with
``gpo_local.algorithm.racing.race`` on those outcomes, apply the method's selection rule (GPO's best
never-selected candidate with the current prompt in the pool; the baselines' best scored so
far) to the survivors' full scores and to the already scored prompts, and compare the prompt it
chooses with the one full scoring chose (the run's ``step`` record).

The question order is the one a raced run uses (racing.dev_order): a seeded shuffle
(`random`), or that shuffle with the questions the run's earlier prompts disagree on first
(`informative`, from the dev scores recorded before the step); each step is replayed under
``--orders`` different seeds, so a few recorded steps give more than a few samples of how
racing behaves on them (fewer for `informative`, whose seed only breaks ties). Reported per
order kind, error level and round count: the share of replays where racing chooses the same
prompt as full scoring, the share of (candidate, question) pairs it saves and the ratio
full / raced.

`--own-order` replays each run once, on the order a raced run of its own seed and task would
have used, and reports per run whether racing keeps every step's choice: a run whose choices
are all kept has the same trajectory raced, so (for a method whose meta-prompts show only the
trajectory, as GPO's) the same final prompt and held-out score, up to the batched decoder's
numerics.

    python benchmarks/racing.py RUN_DIR [RUN_DIR ...] [--errors 0.01,0.05,0.1,0.2] [--rounds 3,4,5]
        [--orders 20] [--order informative,random] [--own-order] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gpo_local.algorithm.racing import DEFAULT_ORDER, RacingConfig, dev_order, race  # noqa: E402
from gpo_local.algorithm.trajectory import select_next  # noqa: E402
from gpo_local.replies.parsing import normalize_prompt  # noqa: E402
from gpo_local.runs.directory import JsonlLog  # noqa: E402

ELITIST = ("ape", "apo", "opro", "pe2")  # methods that choose the best prompt scored so far


def _natural(example_id: str):
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", example_id)]


def load_steps(run_dir: Path) -> tuple[dict, list[dict]]:
    """The run's config and, per completed step, what a replay needs: the state before the step
    (trajectory, scores, selected, the recorded dev scores of the candidates before it), the
    step's candidates and the prompt full scoring chose."""
    config_path = run_dir / "config.json"
    config = json.loads(config_path.read_text()) if config_path.exists() else {}
    records = list(JsonlLog(run_dir / "trajectory.jsonl").records())
    scores: dict[str, tuple[str, float]] = {}  # normalized -> (prompt, full dev score), scoring order
    trajectory: list[tuple[str, float]] = []
    pending: list[dict] = []
    history: list[dict[str, float]] = []  # as TrajectoryState.dev_outcomes
    steps = []
    for record in records:
        if record["kind"] == "candidate":
            pending.append(record)
            continue
        if record["kind"] == "step":
            steps.append(
                {
                    "trajectory": list(trajectory),
                    "scores": dict(scores),
                    "candidates": pending,
                    "chosen": record["prompt"],
                    "step": record["step"],
                    "history": list(history),
                }
            )
        history.extend(c["dev_outcomes"] for c in pending if c.get("dev_outcomes"))
        for c in pending:
            scores.setdefault(normalize_prompt(c["prompt"]), (c["prompt"], c["dev_score"]))
        pending = []
        scores[normalize_prompt(record["prompt"])] = (record["prompt"], record["dev_score"])
        trajectory.append((record["prompt"], record["dev_score"]))
    return config, steps


def choose(method: str, step: dict, kept: dict[str, float]) -> str:
    """The method's choice when the step's new candidates kept are `kept` (prompt -> full score)."""
    selected = {normalize_prompt(p) for p, _ in step["trajectory"]}
    if method in ELITIST:
        pool = list(step["scores"].values()) + [(p, s) for p, s in kept.items()]
        return sorted(pool, key=lambda item: -item[1])[0][0]
    current = step["trajectory"][-1]
    pool = [current]
    for c in step["candidates"]:
        key = normalize_prompt(c["prompt"])
        if c.get("new", True):
            if c["prompt"] in kept:
                pool.append((c["prompt"], kept[c["prompt"]]))
        elif key in step["scores"]:
            pool.append(step["scores"][key])
    return select_next(pool, selected)[0]


def replay_step(
    method: str, step: dict, racing: RacingConfig | None, seed: int, task: str, order: str = DEFAULT_ORDER
) -> tuple[bool, int, int] | None:
    """(same choice as recorded, pairs scored, pairs full scoring scored) for one replay; None
    for a step with no new candidate's per-question outcomes recorded (a run older than those
    records, or a step of repeats only), which cannot be replayed and is not counted."""
    new = [c for c in step["candidates"] if c.get("new", True) and c.get("dev_outcomes")]
    if not new:
        return None
    ids = sorted(new[0]["dev_outcomes"], key=_natural)
    rows = [[c["dev_outcomes"][i] for i in ids] for c in new]
    full = len(new) * len(ids)
    if racing is None or len(new) < 2:
        kept = {c["prompt"]: c["dev_score"] for c in new}
        return choose(method, step, kept) == step["chosen"], full, full
    binary = all(v in (0.0, 1.0) for row in rows for v in row)
    result = race(
        lambda cs, qs: [[rows[c][q] for q in qs] for c in cs],
        len(new),
        dev_order(ids, seed, task, order, step["history"]),
        racing,
        binary,
    )
    kept = {c["prompt"]: c["dev_score"] for c, dropped in zip(new, result.dropped_after) if dropped is None}
    return choose(method, step, kept) == step["chosen"], result.pairs, full


def settings(args):
    """(order kind, rounds, error, RacingConfig) for every combination the arguments ask for."""
    for order in args.order.split(","):
        for rounds in (int(r) for r in args.rounds.split(",")):
            for error in (float(e) for e in args.errors.split(",")):
                yield order, rounds, error, RacingConfig(error=error, rounds=rounds)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--errors", default="0.01,0.05,0.1,0.2")
    parser.add_argument("--rounds", default="3,4,5")
    parser.add_argument("--orders", type=int, default=20, help="question orders (seeds) per step")
    parser.add_argument("--order", default=DEFAULT_ORDER, help="question order kinds: informative,random")
    parser.add_argument(
        "--own-order",
        action="store_true",
        help="one replay per run, on its own seed's order: whether racing keeps its whole trajectory",
    )
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    runs = []
    for run_dir in args.runs:
        if not (run_dir / "trajectory.jsonl").exists():  # e.g. a bench cell stopped before its first record
            print(f"{run_dir}: no trajectory.jsonl, skipped")
            continue
        config, steps = load_steps(run_dir)
        method = config.get("config", {}).get("method", "gpo")
        task = Path(config.get("task", run_dir.name)).name  # the task's name, as racing.score_new orders by
        full_scoring = [(s, replay_step(method, s, None, 0, task)) for s in steps]
        steps = [s for s, replay in full_scoring if replay is not None]
        sane = all(replay[0] for _, replay in full_scoring if replay is not None)
        print(
            f"{run_dir}: {method} on {task}, {len(steps)} steps to replay; "
            f"full-scoring replay matches the record: {sane}"
        )
        runs.append((method, task, steps, config.get("config", {}).get("seed", 0), run_dir))
    if args.own_order:
        return own_orders(runs, args)
    rows = []
    for order, rounds, error, racing in settings(args):
        same = total = raced = full = 0
        for method, task, steps, _, _ in runs:
            for step in steps:
                for seed in range(args.orders):
                    ok, pairs, all_pairs = replay_step(method, step, racing, seed, task, order)
                    same, total, raced, full = same + ok, total + 1, raced + pairs, full + all_pairs
        rows.append(
            {
                "order": order,
                "rounds": rounds,
                "error": error,
                "replays": total,
                "same_choice": same / max(1, total),
                "pairs_saved": 1 - raced / max(1, full),
                "full_over_raced": full / max(1, raced),
            }
        )
    print(
        f"{'order':>11} {'rounds':>6} {'error':>6} {'replays':>8} {'same choice':>12} {'pairs saved':>12} "
        f"{'full/raced':>11}"
    )
    for r in rows:
        print(
            f"{r['order']:>11} {r['rounds']:>6} {r['error']:>6} {r['replays']:>8} {r['same_choice']:>12.1%} "
            f"{r['pairs_saved']:>12.1%} {r['full_over_raced']:>10.2f}x"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


def own_orders(runs, args) -> int:
    """Per error level: each run replayed once on its own seed's order; the runs whose every
    step keeps its choice (their trajectory is the same raced) and the dev pairs saved."""
    rows = []
    for order, rounds, error, racing in settings(args):
        kept_runs, raced, full, changed = 0, 0, 0, []
        for method, task, steps, seed, run_dir in runs:
            replays = [replay_step(method, step, racing, seed, task, order) for step in steps]
            raced += sum(r[1] for r in replays)
            full += sum(r[2] for r in replays)
            first_changed = next((s["step"] for s, r in zip(steps, replays) if not r[0]), None)
            if first_changed is None:
                kept_runs += 1
            else:
                changed.append(f"{run_dir} (step {first_changed})")
        rows.append(
            {
                "order": order,
                "rounds": rounds,
                "error": error,
                "runs": len(runs),
                "trajectory_kept": kept_runs,
                "pairs_saved": 1 - raced / max(1, full),
                "full_over_raced": full / max(1, raced),
                "changed": changed,
            }
        )
    print(
        f"{'order':>11} {'rounds':>6} {'error':>6} {'runs':>5} {'trajectory kept':>16} {'pairs saved':>12} "
        f"{'full/raced':>11}"
    )
    for r in rows:
        print(
            f"{r['order']:>11} {r['rounds']:>6} {r['error']:>6} {r['runs']:>5} {r['trajectory_kept']:>16} "
            f"{r['pairs_saved']:>12.1%} {r['full_over_raced']:>10.2f}x"
        )
        for run in r["changed"]:
            print(f"    first changed choice: {run}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
