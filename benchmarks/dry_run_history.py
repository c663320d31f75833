"""How close `optimize --dry-run` lands when earlier runs calibrate it (issue 12), offline, by
leave-one-out on recorded runs: no model is run.

The dry run's estimate is load + pairs x seconds per pair + replies x seconds per optimizer reply
(walltime.py), with the expected pairs from the share of replies that become new candidates
(and with racing, the share of their dev pairs raced). With earlier runs of the same workload
(calibration.SAME_WORKLOAD) those rates and shares come from the runs' events (calibration.history).
Here, for every finished run among the directories given whose workload has other finished
runs, the estimate from the others (model loading left out: a run's `seconds` starts after it)
is set against the run's measured `seconds`, less the scoring chunks during which the process
was paused (calibration's `paused_seconds`: a bench paused by SIGSTOP while other measurements ran).

Run: python benchmarks/dry_run_history.py RUN_DIR [RUN_DIR ...]   (run directories or parents of them)
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

from gpo_local.app import calibration, walltime
from gpo_local.app.resuming import resolve_resume
from gpo_local.methods import estimate as budget


def main(paths: list[str]) -> None:
    groups = defaultdict(list)
    for arg in paths:
        for config in sorted(Path(arg).rglob("config.json")):
            run = config.parent.resolve()
            try:
                record, result = json.loads(config.read_text()), json.loads((run / "result.json").read_text())
            except (OSError, ValueError):
                continue
            if (sums := calibration.recorded_rates(run)) is not None:
                # A process paused (SIGSTOP) mid-run counts the pause in its `seconds`; no estimate
                # can foresee that, so the measured side is the run's time without its paused chunks.
                groups[calibration.workload(record)].append(
                    (run, record, result["seconds"] - sums["paused_seconds"])
                )
    errors = []
    for runs in groups.values():
        for i, (run, record, measured) in enumerate(runs):
            others = [(r, rec) for j, (r, rec, _) in enumerate(runs) if j != i]
            settings = resolve_resume(run, record, {})
            n_dev = len(settings.task.split("eval", settings.config.dev_limit))
            rates = calibration.pooled_rates(others, n_dev) if others else None
            if rates is None or not rates["runs"]:  # none finished, or every one left out as slowed
                continue
            est = budget.estimate(settings.config, settings.task)
            estimate = walltime.seconds(
                est, rates, n_dev, settings.config.racing, order=settings.config.racing_order
            )
            errors.append(estimate / measured - 1)
            print(
                f"{str(run)[-48:]:48s} {record['method']:5s} racing "
                f"{'on ' if settings.config.racing else 'off'} "
                f"from {rates['runs']} run(s): estimate {estimate:7.1f} s, measured {measured:7.1f} s, "
                f"error {100 * errors[-1]:+5.1f}%"
            )
    if errors:
        within = sum(abs(e) <= 0.25 for e in errors)
        print(
            f"{within} of {len(errors)} estimates within 25%; mean |error| "
            f"{100 * sum(map(abs, errors)) / len(errors):.1f}%, worst {100 * max(errors, key=abs):+.1f}%"
        )


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__.split("Run: ")[1].strip())
    main(sys.argv[1:])
