"""Aggregation over seeds and tasks, and the result files (json, csv; results.md in markdown.py)."""

from __future__ import annotations

import csv
import io
import json
import statistics
import time
from pathlib import Path

from gpo_local.app.paper import SOURCE as PAPER_SOURCE
from gpo_local.app.paper import paper_score
from gpo_local.quality.cells import BenchConfig, Cell, Row, TaskRef
from gpo_local.quality.leaderboard import leaderboard, leaderboard_csv
from gpo_local.quality.markdown import results_markdown
from gpo_local.runs.storage import write_atomic
from gpo_local.stats import mean_interval, paired_comparison

COUNTERS = (
    "dev_scorings",
    "optimizer_calls",
    "task_tokens",
    "optimizer_tokens",
    "seconds",
    "cpu_seconds",
    "wall_seconds",
)


def _read(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def cell_record(cell: Cell, *, running: bool = False) -> dict:
    """The state of one cell as recorded on disk."""
    record = {
        "method": cell.row.name,
        "base_method": cell.row.method,
        "variant": cell.row.is_variant,
        "task": cell.task.name,
        "benchmark": cell.task.benchmark,
        "seed": cell.seed,
        "task_model": cell.task_model,
        "run_dir": str(cell.run_dir),
        "status": "pending",
        "error": None,
        "initial_test": None,
        "final_test": None,
        "initial_dev": None,
        "final_dev": None,
        "final_prompt": None,
        "stopped": None,
        "task_generations": None,
        "candidate_replies": None,
        "dropped_replies": None,
        "quota_asks": None,
        "quota_wanted": None,
        **{name: None for name in COUNTERS},
        "command": " ".join(["gpo-local", *cell.argv(resume=False)]),
    }
    bench = _read(cell.run_dir / "bench.json") or {}
    record["wall_seconds"] = bench.get("wall_seconds")
    result_path = cell.run_dir / "result.json"
    if result_path.exists():
        result = _read(result_path)
        if result is None:
            record.update(status="failed", error=f"{result_path}: unreadable result.json")
            return record
        record.update(
            status="done",
            initial_test=result.get("initial_test"),
            final_test=result.get("final_test"),
            initial_dev=(result.get("initial") or {}).get("dev_score"),
            final_dev=(result.get("final") or {}).get("dev_score"),
            final_prompt=(result.get("final") or {}).get("prompt"),
            stopped=result.get("stopped"),
            task_generations=result.get("task_generations"),
            candidate_replies=result.get("candidate_replies"),
            dropped_replies=sum((result.get("drops") or {}).values()),
            quota_asks=(result.get("quota") or {}).get("asks"),
            quota_wanted=(result.get("quota") or {}).get("wanted"),
            **{name: result.get(name) for name in COUNTERS if name != "wall_seconds"},
        )
    elif running:
        record["status"] = "running"
    elif (cell.run_dir / "failed.json").exists():
        record.update(status="failed", error=(_read(cell.run_dir / "failed.json") or {}).get("error"))
    elif (cell.run_dir / "config.json").exists():
        record["status"] = "unfinished"
    return record


def _mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.fmean(values) if values else None


def _std(values) -> float | None:
    """Sample standard deviation (n-1); None below two values."""
    values = [v for v in values if v is not None]
    return statistics.stdev(values) if len(values) >= 2 else None


def _round(value, digits=4):
    return None if value is None else round(value, digits)


def aggregate(config: BenchConfig, cells: list[dict]) -> dict:
    """Per (row, task, task model): mean and std over seeds of the final test score, with the
    means of the counters; per (row, task model): the mean over tasks (and its std over the seeds
    that finished every task); the paper's figures for the methods and benchmarks present."""
    done = [c for c in cells if c["status"] == "done"]
    summary, method_means = [], []
    for model in config.task_models:
        for row in config.rows:
            row_cells = [c for c in done if c["method"] == row.name and c["task_model"] == model]
            task_means = {}
            for task in config.tasks:
                group = [c for c in row_cells if c["task"] == task.name]
                entry = _summary_entry(row, task, model, group)
                summary.append(entry)
                if entry["test_mean"] is not None:
                    task_means[task.name] = entry["test_mean"]
            method_means.append(_method_mean(config, row, model, row_cells, task_means))
    return {
        "summary": summary,
        "method_means": method_means,
        "paper": _paper_figures(config),
        "paired": paired_comparisons(config, cells),
    }


def _summary_entry(row: Row, task: TaskRef, model: str, group: list[dict]) -> dict:
    """One (row, task, task model) over its finished seeds: the final test scores with their
    mean and std, the initial test and dev means, the counters' means."""
    tests = [c["final_test"] for c in group]
    return {
        "method": row.name,
        "base_method": row.method,
        "task": task.name,
        "benchmark": task.benchmark,
        "task_model": model,
        "n_seeds": len(group),
        "seeds": [c["seed"] for c in group],
        "test_scores": tests,
        "test_mean": _round(_mean(tests)),
        "test_std": _round(_std(tests)),
        "initial_test_mean": _round(_mean(c["initial_test"] for c in group)),
        "dev_mean": _round(_mean(c["final_dev"] for c in group)),
        **{name: _round(_mean(c[name] for c in group), 1) for name in COUNTERS},
    }


def _method_mean(config: BenchConfig, row: Row, model: str, row_cells: list[dict], task_means: dict) -> dict:
    """One (row, task model) over the tasks: the mean of the task means, its std over the seeds
    that finished every task, the mean over cells with its interval, the benchmark means, the
    replies and the counters' means."""
    per_seed = []
    for seed in config.seeds:
        scores = {c["task"]: c["final_test"] for c in row_cells if c["seed"] == seed}
        if all(scores.get(t.name) is not None for t in config.tasks):
            per_seed.append(statistics.fmean(scores[t.name] for t in config.tasks))
    benchmarks = {}
    for bench in sorted({t.benchmark for t in config.tasks if t.benchmark}):
        values = [task_means[t.name] for t in config.tasks if t.benchmark == bench and t.name in task_means]
        benchmarks[bench] = _round(_mean(values))
    cell_scores = [c["final_test"] for c in row_cells if c["final_test"] is not None]
    interval = mean_interval(cell_scores)
    return {
        "method": row.name,
        "base_method": row.method,
        "variant": row.is_variant,
        "task_model": model,
        "test_mean_over_tasks": _round(_mean(task_means.values())),
        # Over the (task, seed) cells: the mean and its 95% Student-t interval.
        "cells_with_scores": len(cell_scores),
        "cell_mean": _round(interval[0]) if interval else None,
        "cell_ci_low": _round(interval[1]) if interval and len(cell_scores) > 1 else None,
        "cell_ci_high": _round(interval[2]) if interval and len(cell_scores) > 1 else None,
        "tasks_with_scores": len(task_means),
        "complete": len(task_means) == len(config.tasks),
        "test_std_over_seeds": _round(_std(per_seed)),
        "seeds_complete": len(per_seed),
        "benchmark_means": benchmarks,
        "cells_done": len(row_cells),
        **_usable_replies(row_cells),
        **{name: _round(_mean(c[name] for c in row_cells), 1) for name in COUNTERS},
    }


def _paper_figures(config: BenchConfig) -> list[dict]:
    """The paper's figures for the config's methods (not variants) and benchmarks."""
    paper = []
    for row in config.rows:
        if row.is_variant:
            continue  # the paper's figures are for the methods' headline settings only
        for bench in sorted({t.benchmark for t in config.tasks if t.benchmark}):
            score = paper_score(row.method, bench)
            if score is not None:
                paper.append({"method": row.name, "task": bench, "score": score, "source": PAPER_SOURCE})
    return paper


def paired_comparisons(config: BenchConfig, cells: list[dict]) -> list[dict]:
    """The config's first row (the method under study, e.g. gpo) against every other row, on the
    (task, seed) cells both finished: the mean difference of final test scores with its 95%
    Student-t interval over cells, wins / ties / losses and the sign-flip p-value (stats.py).
    Unlike the means over tasks, which may rest on different cells while a bench is running,
    these compare like with like."""
    if len(config.rows) < 2:
        return []
    reference = config.rows[0].name
    done = {
        (c["method"], c["task_model"], c["task"], c["seed"]): c["final_test"]
        for c in cells
        if c["status"] == "done" and c["final_test"] is not None
    }
    comparisons = []
    for model in config.task_models:
        for row in config.rows[1:]:
            keys = [(model, task.name, seed) for task in config.tasks for seed in config.seeds]
            pairs = [
                (done[(reference, *key)], done[(row.name, *key)])
                for key in keys
                if (reference, *key) in done and (row.name, *key) in done
            ]
            compared = paired_comparison([a for a, _ in pairs], [b for _, b in pairs])
            comparisons.append(
                {
                    "method": reference,
                    "against": row.name,
                    "task_model": model,
                    "cells": compared["cells"],
                    "mean_difference": _round(compared["mean_difference"]),
                    "ci_low": _round(compared["ci_low"]),
                    "ci_high": _round(compared["ci_high"]),
                    "wins": compared["wins"],
                    "ties": compared["ties"],
                    "losses": compared["losses"],
                    "p_value": _round(compared["p_value"]),
                }
            )
    return comparisons


def _usable_replies(cells: list[dict]) -> dict:
    """Optimizer replies that became candidates (not dropped), summed over the cells that count
    their replies."""
    counted = [c for c in cells if c.get("candidate_replies") is not None]
    replies = sum(c["candidate_replies"] for c in counted)
    usable = replies - sum(c["dropped_replies"] or 0 for c in counted)
    quota = [c for c in cells if c.get("quota_asks") is not None]  # the reply quota's (algorithm/quota.py)
    return {
        "candidate_replies": replies if counted else None,
        "usable_replies": usable if counted else None,
        "quota_asks": sum(c["quota_asks"] for c in quota) if quota else None,
        "quota_wanted": sum(c["quota_wanted"] for c in quota) if quota else None,
    }


def status_counts(cells: list[dict]) -> dict:
    counts: dict[str, int] = {}
    for cell in cells:
        counts[cell["status"]] = counts.get(cell["status"], 0) + 1
    return counts


def collect(config: BenchConfig, out: Path, *, running: Cell | None = None) -> dict:
    cells = [
        cell_record(c, running=running is not None and c.run_dir == running.run_dir)
        for c in config.cells(out)
    ]
    return {
        "config": {
            "path": str(config.path),
            "description": config.description,
            "settings": config.raw,
            "tasks": [
                {"spec": t.spec, "path": t.target, "name": t.name, "benchmark": t.benchmark}
                for t in config.tasks
            ],
        },
        "generated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "out": str(out),
        "counts": status_counts(cells),
        "cells": cells,
        **aggregate(config, cells),
    }


def write_results(config: BenchConfig, out: Path, *, running: Cell | None = None) -> dict:
    results = collect(config, out, running=running)
    if len(config.task_models) > 1:  # the models side by side (leaderboard.py)
        results["leaderboard"] = leaderboard(results)
        write_atomic(
            out / "leaderboard.csv", leaderboard_csv(results["leaderboard"]), fault_point="bench-results-tmp"
        )
    write_atomic(
        out / "results.json",
        json.dumps(results, indent=2, ensure_ascii=False) + "\n",
        fault_point="bench-results-tmp",
    )
    write_atomic(out / "results.csv", results_csv(results), fault_point="bench-results-tmp")
    write_atomic(out / "results.md", results_markdown(results), fault_point="bench-results-tmp")
    write_atomic(out / "paired.csv", paired_csv(results), fault_point="bench-results-tmp")
    return results


CSV_FIELDS = (
    "method",
    "base_method",
    "task",
    "benchmark",
    "task_model",
    "n_seeds",
    "test_mean",
    "test_std",
    "initial_test_mean",
    "dev_mean",
    *COUNTERS,
    "paper_score",
    "cells_with_scores",
    "cell_mean",
    "cell_ci_low",
    "cell_ci_high",
)
PAIRED_CSV_FIELDS = (
    "method",
    "against",
    "task_model",
    "cells",
    "mean_difference",
    "ci_low",
    "ci_high",
    "wins",
    "ties",
    "losses",
    "p_value",
)
MEAN_ROW = "(mean over tasks)"


def results_csv(results: dict) -> str:
    """One row per (method, task, task model), then one per (method, task model) with task
    "(mean over tasks)". Scores are fractions (0..1); counters are means per run."""
    paper = {(p["method"], p["task"]): p["score"] for p in results["paper"]}
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for entry in results["summary"]:
        writer.writerow({**entry, "paper_score": None})
    for entry in results["method_means"]:
        benches = list(entry["benchmark_means"])
        writer.writerow(
            {
                **entry,
                "task": MEAN_ROW,
                "benchmark": benches[0] if len(benches) == 1 else None,
                "n_seeds": entry["seeds_complete"],
                "test_mean": entry["test_mean_over_tasks"],
                "test_std": entry["test_std_over_seeds"],
                "paper_score": paper.get((entry["method"], benches[0])) if len(benches) == 1 else None,
            }
        )
    return buffer.getvalue()


def paired_csv(results: dict) -> str:
    """The paired comparisons (results.json's "paired"): one row per method compared with the
    first; differences and intervals are fractions (0..1)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=PAIRED_CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for comparison in results.get("paired") or []:
        writer.writerow(comparison)
    return buffer.getvalue()
