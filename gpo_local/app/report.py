"""`gpo-local report`: one self-contained HTML file for runs or for a `bench quality` output.

Self-contained means it opens offline and alone: plots are PNGs drawn with matplotlib
(report_plots.py) and embedded as base64 data URIs, the CSS is inline, there is no script and
no external link. Text from runs (prompts, answers) goes through Jinja2's autoescaping.

For a run directory: the dev score per step (the chosen prompt as a line, every candidate as a
point), the schedule's edit budget against the measured edit distance of the candidates, a
word-level diff of the final prompt against the initial one, the per-example changes on the
test split (fixed, broken, unchanged), the models (paths, sha256), the configuration, seeds and
costs. Missing pieces are said, not fatal: an unfinished run shows what it recorded, a run
without a test split says so. Several directories give one section each and an overlay of
their dev curves. A `bench quality` output directory (results.json, CONTRACT.md) gives the
comparison table of methods per task and a bar chart of it.
"""

from __future__ import annotations

import difflib
import json
import time
from pathlib import Path
from typing import Any

from gpo_local.app.formatting import percent
from gpo_local.app.intervals import gain_text, result_error_bars, with_error
from gpo_local.app.report_plots import bench_plot, dev_plot, edit_plot, overlay_plot
from gpo_local.errors import ConfigError
from gpo_local.quality.leaderboard import table_rows
from gpo_local.replies.drops import describe, describe_asks, describe_cuts, step_views_total
from gpo_local.runs.health import resume_command
from gpo_local.runs.locks import running_pid
from gpo_local.runs.rundata import RunView, load_run, outcome_changes
from gpo_local.runs.storage import write_atomic

TEMPLATES = Path(__file__).resolve().parent / "templates"


# -- text pieces ------------------------------------------------------------------------------
def word_diff(before: str, after: str) -> list[tuple[str, str]]:
    """(op, text) segments turning `before` into `after` word by word; op is "same", "del" or
    "ins" (a replaced run of words is a "del" followed by an "ins")."""
    a, b = before.split(), after.split()
    segments: list[tuple[str, str]] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op == "equal":
            segments.append(("same", " ".join(a[i1:i2])))
        if op in ("delete", "replace"):
            segments.append(("del", " ".join(a[i1:i2])))
        if op in ("insert", "replace"):
            segments.append(("ins", " ".join(b[j1:j2])))
    return segments


def _short(text: str | None, width: int = 160) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _models(config: dict) -> list[dict]:
    rows = []
    for role, model in (config.get("models") or {}).items():
        rows.append(
            {
                "role": role,
                "name": model.get("spec", ""),
                "path": model.get("path", ""),
                "digest": model.get("sha256") or model.get("fingerprint") or "",
            }
        )
    return rows


COST_KEYS = (
    "dev_scorings",
    "task_generations",
    "optimizer_calls",
    "task_tokens",
    "optimizer_tokens",
    "seconds",
    "cpu_seconds",
    "stopped",
)


def _test_note(run: RunView, result: dict, changes) -> str | None:
    """Why the report shows no per-example test changes, or None when it shows them."""
    if not run.steps:
        return "nothing recorded yet"
    if not run.finished:
        return "the run is unfinished: the test split is scored at the end"
    if result.get("initial_test") is None:
        return (
            "this run has no test split (for a task without one, --test-holdout N holds out dev "
            "examples as a test split)"
        )
    if changes is None:
        return "result.json has no per-example test outcomes (a run from an older gpo-local)"
    return None


def _candidate_row(c: dict, pending: bool) -> dict:
    return {
        "step": c["step"] + 1,
        "dev": percent(c["dev_score"]),
        "budget": c.get("budget"),
        "distance": c.get("edit_distance"),
        "new": c.get("new", True),
        "prompt": c["prompt"],
        "pending": pending,
        # Dropped by racing, its dev score is the mean over `questions` questions
        "eliminated": bool(c.get("eliminated")),
        "questions": c.get("dev_questions"),
    }


def _drops_text(run: RunView) -> str:
    """The run's dropped optimizer replies by reason (drops.py)."""

    return describe(*step_views_total(run.steps)) + describe_cuts(run.steps) + describe_asks(run.steps)


def run_context(run: RunView) -> dict[str, Any]:
    result = run.result or {}
    changes = outcome_changes(run.result)
    initial, final = _initial_and_final(run, result)
    test_note = _test_note(run, result, changes)
    bars = result_error_bars(result)  # standard errors and the test gain's interval (app/intervals.py)
    settings = run.config.get("config") or {}
    seeds = {"seed": settings.get("seed")}
    candidates = [_candidate_row(c, False) for s in run.steps for c in s.candidates]
    candidates += [_candidate_row(c, True) for c in run.pending]
    return {
        "name": run.name,
        "path": str(run.path),
        "task": run.task,
        "method": run.method,
        "finished": run.finished,
        "stopped": result.get("stopped"),
        "drops": _drops_text(run),
        "running": running_pid(run.path),
        "resume": resume_command(run.path, run.config),
        "steps_done": max(len(run.steps) - 1, 0),
        "steps_planned": run.steps_planned,
        "pending": len(run.pending),
        "initial": initial,
        "final": final,
        "initial_dev": with_error(initial["dev_score"], bars["initial_dev_se"]) if initial else "n/a",
        "final_dev": with_error(final["dev_score"], bars["final_dev_se"]) if final else "n/a",
        "initial_test": with_error(result.get("initial_test"), bars["initial_test_se"]),
        "final_test": with_error(result.get("final_test"), bars["final_test_se"]),
        "gain": gain_text(bars),
        "diff": word_diff(initial["prompt"], final["prompt"]) if initial and final else [],
        "dev_plot": dev_plot(run) if run.steps else None,
        "edit_plot": edit_plot(run) if run.steps else None,
        "steps": [_step_row(s) for s in run.steps],
        "candidates": candidates,
        "test_note": test_note,
        "counts": {k: len(v) for k, v in changes.items()} if changes else None,
        "examples": _changed_examples(changes),
        "models": _models(run.config),
        "settings": sorted(settings.items()),
        "seeds": seeds,
        "machine": sorted((run.config.get("settings") or {}).items()),
        "versions": sorted((run.config.get("versions") or {}).items()),
        "command": " ".join(run.config.get("command") or []),
        "created": run.config.get("created"),
        "costs": [(k, result[k]) for k in COST_KEYS if result.get(k) is not None],
        "events": _events_summary(run.events),
    }


def _initial_and_final(run: RunView, result: dict) -> tuple[dict | None, dict | None]:
    """The initial and the final prompt (prompt, dev_score, step) from result.json; for an
    unfinished run the first step's prompt and the best so far, ties to the earliest."""
    initial = result.get("initial") or (
        {"prompt": run.steps[0].prompt, "dev_score": run.steps[0].dev_score, "step": -1}
        if run.steps
        else None
    )
    final = result.get("final")
    if final is None and run.steps:  # unfinished: the best so far, ties to the earliest
        best = max(run.steps, key=lambda s: (s.dev_score, -s.step))
        final = {"prompt": best.prompt, "dev_score": best.dev_score, "step": best.step}
    return initial, final


def _changed_examples(changes) -> list[dict]:
    """The test examples the final prompt fixed, then those it broke, with both predictions."""
    examples = []
    if changes:
        for kind in ("fixed", "broken"):
            for before, after in changes[kind]:
                examples.append(
                    {
                        "kind": kind,
                        "id": before["example_id"],
                        "before": _short(before.get("prediction"), 60),
                        "after": _short(after.get("prediction"), 60),
                        "before_answer": _short(before.get("final_answer"), 400),
                        "after_answer": _short(after.get("final_answer"), 400),
                    }
                )
    return examples


def _step_row(step) -> dict:
    return {
        "label": step.label,
        "budget": step.budget,
        "induced": step.induced,
        "mean_distance": step.mean_distance,
        "candidates": len(step.candidates),
        "dev": percent(step.dev_score),
        "prompt": step.prompt,
    }


def _events_summary(events: list[dict]) -> dict:
    """How many progress events the run recorded, when the first was, and of which kinds."""
    return {
        "count": len(events),
        "first": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(events[0]["time"])) if events else None,
        "kinds": sorted({e.get("event", "?") for e in events}),
    }


# -- bench quality ----------------------------------------------------------------------------
def is_bench_dir(path: Path) -> bool:
    return (path / "results.json").is_file() and not (path / "config.json").is_file()


def bench_context(path: Path) -> dict[str, Any]:
    data = _bench_results(path)
    summary = data.get("summary") or []
    tasks = list(dict.fromkeys(row["task"] for row in summary))
    cells = [
        {
            **c,
            "initial_test": percent(c.get("initial_test")),
            "final_test": percent(c.get("final_test")),
            "final_dev": percent(c.get("final_dev")),
        }
        for c in data.get("cells") or []
    ]
    paper = data.get("paper") or []
    paired = [c for c in data.get("paired") or [] if c.get("cells")]  # absent from older results.json
    return {
        "path": str(path),
        "tasks": [Path(t).name or t for t in tasks],
        "rows": _method_rows(summary, data.get("method_means") or []),
        "cells": cells,
        "paper": paper,
        "paired": paired,
        "several_models": len({c["task_model"] for c in paired}) > 1,
        "plot": bench_plot(summary) if summary else None,
        "leaderboard": _leaderboard(data.get("leaderboard")),
        "config": json.dumps(data.get("config") or {}, indent=2, sort_keys=True),
    }


def _bench_results(path: Path) -> dict:
    """A bench output's results.json; malformed JSON is a ConfigError naming the file and line."""
    try:
        return json.loads((path / "results.json").read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ConfigError(
            f"{path / 'results.json'}: malformed JSON ({error.msg} at line {error.lineno})"
        ) from None


def _method_rows(summary: list[dict], method_means: list[dict]) -> list[dict]:
    """The comparison table: one row per method, its test score per task (mean ± std over seeds,
    the task's best marked), its mean over tasks and its costs."""
    tasks = list(dict.fromkeys(row["task"] for row in summary))
    methods = list(dict.fromkeys(row["method"] for row in summary))
    cell = {(row["task"], row["method"]): row for row in summary}
    means = {row["method"]: row for row in method_means}
    best = {
        t: max((cell[(t, m)].get("test_mean") or 0.0 for m in methods if (t, m) in cell), default=None)
        for t in tasks
    }
    rows = []
    for method in methods:
        scores = []
        for task in tasks:
            row = cell.get((task, method))
            if row is None or row.get("test_mean") is None:
                scores.append({"text": "–", "best": False})
                continue
            std = f" ± {100 * row['test_std']:.1f}" if row.get("test_std") else ""
            scores.append(
                {
                    "text": f"{100 * row['test_mean']:.1f}{std}",
                    "best": row["test_mean"] == best[task],
                    "n": row.get("n_seeds"),
                }
            )
        overall = means.get(method, {})
        rows.append(
            {
                "method": method,
                "scores": scores,
                "mean": percent(overall.get("test_mean_over_tasks")),
                "costs": [
                    overall.get(k) for k in ("dev_scorings", "optimizer_calls", "task_tokens", "seconds")
                ],
            }
        )
    return rows


def _leaderboard(board: dict | None) -> dict | None:
    """The models leaderboard of a bench with several task models (quality/leaderboard.py), as text."""
    if not board:
        return None
    header, rows = table_rows(board)
    return {"header": header, "rows": rows}


# -- the page ---------------------------------------------------------------------------------
def render_report(paths: list[Path]) -> str:
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    runs, sections = [], []
    for path in paths:
        path = Path(path)
        if is_bench_dir(path):
            sections.append({"kind": "bench", **bench_context(path)})
        else:
            run = load_run(path)
            runs.append(run)
            sections.append({"kind": "run", **run_context(run)})
    overlay = overlay_plot(runs) if len(runs) > 1 else None
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    # Scores are fractions (CONTRACT.md); a figure already on 0-100 is shown as it is.
    env.filters["pct"] = lambda v: percent(v) if v is None or v <= 1 else f"{v:.1f}"
    template = env.get_template("report.html.j2")
    return template.render(
        sections=sections,
        overlay=overlay,
        created=time.strftime("%Y-%m-%d %H:%M"),
        title=", ".join(s.get("name") or "bench " + Path(s["path"]).name for s in sections),
    )


def write_report(paths: list[Path], output: Path) -> Path:
    html = render_report(paths)
    output.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(output, html, fault_point="report-tmp")
    return output
