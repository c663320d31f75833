"""The models leaderboard of a `bench quality` run with several task models: one row per task
model and, per task, the empty prompt's, CoT's and each optimizing method's test score with its
standard error, and the gain of the best optimizing method over CoT. Written as a section of
results.md, as leaderboard.csv, into results.json (`leaderboard`, which the HTML report shows),
and printed at the end of the run.

Where the rows come from: the bench config's methods, by their base method: `empty` is the empty
prompt, `cot` is CoT ("Let's think step by step."), every other one an optimizing method.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

from gpo_local.stats import standard_error

EMPTY, COT = "empty", "cot"
BASELINES = {EMPTY: "empty prompt", COT: "CoT"}


def _test_outcomes(run_dir: str) -> list[float] | None:
    """The per-question outcomes of a finished cell's final prompt on the test split."""
    try:
        result = json.loads((Path(run_dir) / "result.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    outcomes = ((result.get("test_outcomes") or {}).get("final")) if isinstance(result, dict) else None
    if not isinstance(outcomes, list):
        return None
    return [float(o["score"]) for o in outcomes if isinstance(o, dict) and "score" in o]


def _score(cells: list[dict]) -> dict | None:
    """The mean over seeds of the cells' final test scores and its standard error: each seed's
    standard error over its test questions (gpo_local.stats), combined as for a mean of
    independent estimates."""
    scored = [
        (c["final_test"], _test_outcomes(c["run_dir"])) for c in cells if c.get("final_test") is not None
    ]
    if not scored:
        return None
    mean = sum(score for score, _ in scored) / len(scored)
    errors = [standard_error(outcomes) if outcomes else None for _, outcomes in scored]
    known = all(e is not None for e in errors)
    error = math.sqrt(sum(e * e for e in errors)) / len(errors) if known else None
    return {"mean": round(mean, 4), "se": None if error is None else round(error, 4), "seeds": len(scored)}


def leaderboard(results: dict) -> dict:
    """{"methods": [optimizing methods' names], "tasks": [...], "rows": [one per task model:
    {"task_model", "tasks": {task: {"empty", "cot", "methods": {name: score}, "best_method",
    "gain_over_cot"}}}]}; a score is {"mean", "se", "seeds"} or None."""
    cells = [c for c in results["cells"] if c["status"] == "done"]
    all_cells = results["cells"]
    models = list(dict.fromkeys(c["task_model"] for c in all_cells))
    tasks = list(dict.fromkeys(c["task"] for c in all_cells))
    methods = list(dict.fromkeys(c["method"] for c in all_cells if c["base_method"] not in BASELINES))
    baselines = {
        base: next((c["method"] for c in all_cells if c["base_method"] == base), None) for base in BASELINES
    }
    rows = []
    for model in models:
        per_task = {}
        for task in tasks:

            def score(method):
                if method is None:
                    return None
                key = (model, task, method)
                return _score([c for c in cells if (c["task_model"], c["task"], c["method"]) == key])

            scores = {name: score(name) for name in methods}
            ranked = sorted(((s["mean"], name) for name, s in scores.items() if s is not None), reverse=True)
            cot = score(baselines[COT])
            best = ranked[0][1] if ranked else None
            gain = None if best is None or cot is None else round(scores[best]["mean"] - cot["mean"], 4)
            per_task[task] = {
                "empty": score(baselines[EMPTY]),
                "cot": cot,
                "methods": scores,
                "best_method": best,
                "gain_over_cot": gain,
            }
        rows.append({"task_model": model, "tasks": per_task})
    return {"methods": methods, "tasks": tasks, "rows": rows}


def _columns(board: dict) -> list[tuple[str, str, str | None]]:
    """(task, column title, method) of every score column of a task; method None for the gain."""
    columns = []
    for task in board["tasks"]:
        columns += [(task, BASELINES[EMPTY], EMPTY), (task, BASELINES[COT], COT)]
        columns += [(task, name, name) for name in board["methods"]]
        columns.append((task, "best − CoT", None))
    return columns


def _cell(entry: dict, method: str | None):
    if method is None:
        return entry["gain_over_cot"]
    return entry[method] if method in (EMPTY, COT) else entry["methods"].get(method)


def _text(score: dict | None) -> str:
    if score is None:
        return "–"
    text = f"{100 * score['mean']:.1f}"
    return text if score["se"] is None else f"{text} ± {100 * score['se']:.1f}"


def _gain_text(gain: float | None) -> str:
    return "–" if gain is None else f"{100 * gain:+.1f}"


def table_rows(board: dict) -> tuple[list[str], list[list[str]]]:
    """The leaderboard as a header and text rows (scores in % ± standard error, gains in points)."""
    columns = _columns(board)
    several = len(board["tasks"]) > 1
    header = ["task model"] + [f"{task}: {title}" if several else title for task, title, _ in columns]
    rows = []
    for row in board["rows"]:
        texts = [row["task_model"]]
        for task, _, method in columns:
            value = _cell(row["tasks"][task], method)
            texts.append(_gain_text(value) if method is None else _text(value))
        rows.append(texts)
    return header, rows


def leaderboard_markdown(board: dict) -> list[str]:
    """The section of results.md."""
    header, rows = table_rows(board)
    lines = [
        "## Models leaderboard: test score (%) ± standard error",
        "",
        "| " + " | ".join(header) + " |",
        "|---" + "|---:" * (len(header) - 1) + "|",
    ]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    lines += [
        "",
        "One row per task model. The standard error is that of a mean of per-question 0/1 "
        "outcomes (combined over seeds); best − CoT: the best optimizing method's score minus "
        "CoT's, in points.",
        "",
    ]
    return lines


def leaderboard_csv(board: dict) -> str:
    """One row per task model; per task and column its score and standard error (fractions)."""
    columns = _columns(board)
    fields = ["task_model"]
    for task, title, method in columns:
        key = f"{task}:{method or 'gain_over_cot'}"
        fields += [key] if method is None else [key, f"{key}:se"]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for row in board["rows"]:
        line = {"task_model": row["task_model"]}
        for task, _, method in columns:
            value = _cell(row["tasks"][task], method)
            key = f"{task}:{method or 'gain_over_cot'}"
            if method is None:
                line[key] = value
            else:
                line[key] = None if value is None else value["mean"]
                line[f"{key}:se"] = None if value is None else value["se"]
        writer.writerow(line)
    return buffer.getvalue()


def format_table(header, rows) -> str:
    """A plain text table for the terminal, columns padded to their widest cell."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(header, widths)).rstrip()]
    lines.append("  ".join("-" * width for width in widths))
    lines += ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    return "\n".join(lines)
