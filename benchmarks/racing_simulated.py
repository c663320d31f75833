"""Racing on simulated steps (issue 12): a stand-in until benchmarks/racing.py has real runs.

NOT a measurement on real runs. Each simulated step has 8 candidates on 48 dev questions with
paired outcomes: question j has a difficulty d_j ~ N(0, 1.5), candidate i a quality q_i ~
N(mu, spread), and P(candidate i right on question j) = sigmoid(q_i - d_j); with probability
`broken` a candidate is degenerate (never right: an answer format the rule cannot parse). The
selection is GPO's on a fresh step (the best new candidate, ties to the earliest); full scoring
and racing see the same outcomes. Reported per spread of candidate quality and error level: the
share of steps where racing picks the same prompt as full scoring, the share of pairs saved,
full / raced, and the mean full-dev accuracy lost when the choice differs.

    python benchmarks/racing_simulated.py [--steps 500] [--errors 0.01,0.05,0.1,0.2] [--rounds 4]
"""

from __future__ import annotations

import argparse
import math
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gpo_local.algorithm.racing import RacingConfig, question_order, race  # noqa: E402

CANDIDATES, QUESTIONS = 8, 48


def simulate_step(rng: random.Random, spread: float, broken: float, mu: float = -1.0) -> list[list[float]]:
    difficulty = [rng.gauss(0, 1.5) for _ in range(QUESTIONS)]
    rows = []
    for _ in range(CANDIDATES):
        if rng.random() < broken:
            rows.append([0.0] * QUESTIONS)
            continue
        quality = rng.gauss(mu, spread)
        rows.append([float(rng.random() < 1 / (1 + math.exp(d - quality))) for d in difficulty])
    return rows


def best(rows: list[list[float]], keep) -> int:
    return min(keep, key=lambda i: (-sum(rows[i]), i))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--errors", default="0.01,0.05,0.1,0.2")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--broken", type=float, default=0.2)
    args = parser.parse_args(argv)
    print(
        f"SIMULATED steps ({args.steps} per row): {CANDIDATES} candidates x {QUESTIONS} questions, "
        f"{args.broken:.0%} degenerate candidates, {args.rounds} rounds"
    )
    print(
        f"{'spread':>6} {'error':>6} {'same choice':>12} {'pairs saved':>12} {'full/raced':>11} "
        f"{'acc. lost':>10}"
    )
    for spread in (0.25, 0.5, 1.0):
        for error in (float(e) for e in args.errors.split(",")):
            rng = random.Random(f"{spread}:{error}")
            config = RacingConfig(error=error, rounds=args.rounds)
            same = raced_pairs = lost = 0
            for step in range(args.steps):
                rows = simulate_step(rng, spread, args.broken)
                result = race(
                    lambda cs, qs: [[rows[c][q] for q in qs] for c in cs],
                    CANDIDATES,
                    question_order(QUESTIONS, step, "simulated"),
                    config,
                    binary=True,
                )
                full_choice = best(rows, range(CANDIDATES))
                raced_choice = best(rows, [i for i, d in enumerate(result.dropped_after) if d is None])
                same += raced_choice == full_choice
                lost += (sum(rows[full_choice]) - sum(rows[raced_choice])) / QUESTIONS
                raced_pairs += result.pairs
            full = args.steps * CANDIDATES * QUESTIONS
            print(
                f"{spread:>6} {error:>6} {same / args.steps:>12.1%} {1 - raced_pairs / full:>12.1%} "
                f"{full / raced_pairs:>10.2f}x {100 * lost / args.steps:>9.2f}pt"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
