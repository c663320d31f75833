"""results.md of a bench (`results_markdown`): the Markdown summary written beside results.json
after every cell, from what `collect` (results.py) returns.

Its sections: the config, the cells' states and the harness's wall time; the models
leaderboard (several task models); a test-score table per task model (mean ± std over seeds per
task, the mean over tasks, the paper's figures where they exist); the mean over (task, seed)
cells with its 95% interval; the first row against each other, cell by cell; the cost per run;
and every cell. Durations read as 1h02m or 3m05s (`format_duration`, also the harness's
progress lines, run.py).
"""

from __future__ import annotations

from pathlib import Path

from gpo_local.app.formatting import percent
from gpo_local.app.paper import SOURCE as PAPER_SOURCE
from gpo_local.quality.leaderboard import leaderboard_markdown


def results_markdown(results: dict) -> str:
    models = list(dict.fromkeys(m["task_model"] for m in results["method_means"]))
    lines = _header_lines(results, models)
    if results.get("leaderboard"):
        lines += leaderboard_markdown(results["leaderboard"])
    lines += _score_tables(results, models)
    lines += _cell_means(results, models)
    if results["paper"]:
        lines += [
            f"¹ The paper's figure, not ours: {PAPER_SOURCE}; full test splits, macro-averaged over all "
            "of the benchmark's tasks. Other models and tasks: for orientation only.",
            "",
        ]
    lines += _paired_table(results, models)
    lines += _cost_table(results, models)
    lines += _cells_table(results)
    return "\n".join(lines) + "\n"


def _seeds(results: dict) -> list[int]:
    return sorted({c["seed"] for c in results["cells"]})


def _header_lines(results: dict, models: list[str]) -> list[str]:
    """The title, the config's description, and what the bench covers and has done so far."""
    config = results["config"]
    tasks = [t["name"] for t in config["tasks"]]
    counts = results["counts"]
    total = sum(counts.values())
    lines = [f"# Quality benchmark: {Path(config['path']).name}", ""]
    if config["description"]:
        lines += [config["description"].strip(), ""]
    lines += [
        f"- config: `{config['path']}`; output: `{results['out']}`; written {results['generated']}",
        f"- cells: {counts.get('done', 0)} of {total} done"
        + "".join(f", {n} {status}" for status, n in sorted(counts.items()) if status != "done"),
        f"- tasks: {', '.join(tasks)}; seeds: {', '.join(map(str, _seeds(results)))}; "
        f"task model(s): {', '.join(models)}",
        f"- harness wall time of the cells so far: "
        f"{format_duration(sum(c['wall_seconds'] or 0 for c in results['cells']))}",
        "",
    ]
    return lines


def _score_tables(results: dict, models: list[str]) -> list[str]:
    """One test-score table per task model: a row per method, a column per task, the mean over
    tasks, the benchmark means and the paper's figures."""
    config = results["config"]
    tasks = [t["name"] for t in config["tasks"]]
    benches = sorted({t["benchmark"] for t in config["tasks"] if t["benchmark"]})
    paper = {(p["method"], p["task"]): p["score"] for p in results["paper"]}
    n_seeds = len(_seeds(results))
    by_key = {(s["method"], s["task"], s["task_model"]): s for s in results["summary"]}
    lines = []
    for model in models:
        means = [m for m in results["method_means"] if m["task_model"] == model]
        title = "Test score (%)" + (f", task model {model}" if len(models) > 1 else "")
        header = ["method", *tasks, "mean over tasks"]
        if len(benches) > 1:
            header += [f"ours {b}" for b in benches]
        header += [f"paper {b} ¹" for b in benches if any((m["method"], b) in paper for m in means)]
        rows = [_score_row(mean, means, tasks, benches, by_key, model, paper, n_seeds) for mean in means]
        lines += [f"## {title}", ""] + _table(header, rows, "l" + "r" * (len(header) - 1)) + [""]
    lines += [
        "Each score is the final prompt's test score, mean ± sample standard deviation over seeds "
        '(the number of seeds in parentheses when there are several); "mean over tasks" is the '
        "mean of the task columns, ± the standard deviation over seeds of the per-seed mean.",
        "",
    ]
    return lines


def _cell_means(results: dict, models: list[str]) -> list[str]:
    """Each method's mean over its finished (task, seed) cells with a 95% interval."""
    lines = ["## Mean over (task, seed) cells, with 95% interval", ""]
    rows = [
        [
            m["method"] + (f", {m['task_model']}" if len(models) > 1 else ""),
            str(m["cells_with_scores"]),
            percent(m["cell_mean"]),
            _interval_text(m["cell_ci_low"], m["cell_ci_high"], signed=False),
        ]
        for m in results["method_means"]
    ]
    lines += _table(["method", "cells", "mean test score (%)", "95% interval"], rows, "lrrr")
    lines += [
        "",
        "Every finished (task, seed) cell counts once; the interval is Student's t over the cells "
        "(n/a below two cells). It shows how much the mean moves with the tasks and seeds drawn, "
        "not the questions' sampling within a cell.",
        "",
    ]
    return lines


def _paired_table(results: dict, models: list[str]) -> list[str]:
    """The first row against each other on the cells both finished; nothing before any pair."""
    paired = [c for c in results.get("paired") or [] if c["cells"]]
    if not paired:
        return []
    reference = paired[0]["method"]
    lines = [f"## {reference} against each method, cell by cell", ""]
    rows = [
        [
            c["against"] + (f", {c['task_model']}" if len(models) > 1 else ""),
            str(c["cells"]),
            f"{100 * c['mean_difference']:+.1f}",
            _interval_text(c.get("ci_low"), c.get("ci_high")),
            f"{c['wins']} / {c['ties']} / {c['losses']}",
            f"{c['p_value']:.3f}",
        ]
        for c in paired
    ]
    lines += _table(
        [
            "against",
            "cells",
            f"mean difference ({reference} − it, points)",
            "95% interval",
            "wins / ties / losses",
            "p (sign-flip)",
        ],
        rows,
        "lrrrrr",
    )
    lines += [
        "",
        "Only the (task, seed) cells both methods finished; the difference is of final test "
        "scores, its interval Student's t over those cells. p: two-sided paired permutation test "
        "(every sign pattern of the non-zero differences) of no difference; with few cells, only "
        "large gaps reach a small p.",
        "",
    ]
    return lines


def _cost_table(results: dict, models: list[str]) -> list[str]:
    """Each method's mean cost per finished run: scorings, calls, tokens, seconds, replies."""
    lines = ["## Cost per run (mean over finished cells)", ""]
    rows = [
        [
            m["method"] + (f", {m['task_model']}" if len(models) > 1 else ""),
            str(m["cells_done"]),
            _num(m["dev_scorings"]),
            _num(m["optimizer_calls"]),
            _num(m["task_tokens"]),
            _num(m["optimizer_tokens"]),
            _num(m["seconds"]),
            _num(m["cpu_seconds"]),
            _num(m["wall_seconds"]),
            _asks_text(m),
            _usable_text(m),
        ]
        for m in results["method_means"]
    ]
    lines += _table(
        [
            "method",
            "cells",
            "dev scorings",
            "optimizer calls",
            "task tokens",
            "optimizer tokens",
            "optimize s",
            "CPU s",
            "wall s",
            "quota asks",
            "usable replies",
        ],
        rows,
        "lrrrrrrrrrr",
    )
    lines += [
        "",
        "Dev scorings: (prompt, dev example) scorings requested; CPU s: the optimize process's CPU "
        "seconds over all its threads (n/a for runs from before it was recorded), which a paused cell or a "
        "busy machine does not inflate as it does the wall-clock columns; wall s: the harness's time for the "
        "cell, model loading included; usable replies: candidate-writing optimizer replies not dropped "
        "(drops.py), summed over the cells; quota asks: optimizer calls made for candidates, for the "
        "candidates wanted (the reply quota asks again for unusable replies), summed over the cells.",
        "",
    ]
    return lines


def _cells_table(results: dict) -> list[str]:
    """Every cell: its state, scores, why it stopped, its wall time and error."""
    lines = ["## Cells", ""]
    rows = [
        [
            c["method"],
            c["task"],
            str(c["seed"]),
            c["task_model"],
            c["status"],
            percent(c["initial_test"]),
            percent(c["final_test"]),
            percent(c["final_dev"]),
            c["stopped"] or "",
            _num(c["wall_seconds"]),
            c["error"] or "",
        ]
        for c in results["cells"]
    ]
    lines += _table(
        [
            "method",
            "task",
            "seed",
            "task model",
            "status",
            "initial test",
            "final test",
            "final dev",
            "stopped",
            "wall s",
            "error",
        ],
        rows,
        "lllllrrrlrl",
    )
    return lines


def _interval_text(low, high, *, signed: bool = True) -> str:
    """An interval of fractions in points: "[+2.5, +17.5]" (a difference) or "[12.7, 32.3]"."""
    if low is None or high is None:
        return "n/a"
    form = "+.1f" if signed else ".1f"
    return f"[{100 * low:{form}}, {100 * high:{form}}]"


def _usable_text(mean: dict) -> str:
    replies, usable = mean.get("candidate_replies"), mean.get("usable_replies")
    if not replies:
        return "n/a"
    return f"{usable} of {replies} ({100 * usable / replies:.0f}%)"


def _asks_text(mean: dict) -> str:
    asks, wanted = mean.get("quota_asks"), mean.get("quota_wanted")
    return "n/a" if asks is None else f"{asks} for {wanted}"


def _num(value) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.1f}".rstrip("0").rstrip(".")


def _table(header: list[str], rows: list[list[str]], align: str) -> list[str]:
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|",
    ]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return lines


def _score_row(
    mean: dict, means: list, tasks: list, benches: list, by_key: dict, model: str, paper: dict, n_seeds: int
) -> list[str]:
    """One method's row of a score table: a cell per task, the mean over tasks, the benchmark means."""
    row = [mean["method"] + (f" ({mean['base_method']})" if mean["variant"] else "")]
    for task in tasks:
        entry = by_key[(mean["method"], task, model)]
        cell = percent(entry["test_mean"])
        if entry["test_std"] is not None:
            cell += f" ± {100 * entry['test_std']:.1f}"
        if entry["test_mean"] is not None and (entry["n_seeds"] > 1 or n_seeds > 1):
            cell += f" ({entry['n_seeds']})"
        row.append(cell)
    overall = percent(mean["test_mean_over_tasks"])
    if mean["test_std_over_seeds"] is not None:
        overall += f" ± {100 * mean['test_std_over_seeds']:.1f}"
    if not mean["complete"] and mean["test_mean_over_tasks"] is not None:
        overall += f" ({mean['tasks_with_scores']} of {len(tasks)} tasks)"
    row.append(overall)
    if len(benches) > 1:
        row += [percent(mean["benchmark_means"].get(b)) for b in benches]
    row += [
        f"{100 * paper[(mean['method'], b)]:.2f}" if (mean["method"], b) in paper else ""
        for b in benches
        if any((m["method"], b) in paper for m in means)
    ]
    return row


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    seconds = int(seconds)
    return (
        f"{seconds // 3600}h{seconds // 60 % 60:02d}m"
        if seconds >= 3600
        else f"{seconds // 60}m{seconds % 60:02d}s"
    )
