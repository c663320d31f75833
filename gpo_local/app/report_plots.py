"""The plots of the HTML report (report.py), each a PNG drawn with matplotlib and returned as a
base64 data URI, so that the report embeds it and opens offline.

Drawn through `Figure` (the Agg canvas) without pyplot's global state. For one run: the dev
score per step (`dev_plot`: the chosen prompt as a line, every candidate as a point, the best so
far and the final prompt) and the edit budget of each step against its candidates' measured edit
distances (`edit_plot`); for several runs, an overlay of their dev curves (`overlay_plot`); for
a `bench quality` output, the test score of each method per task with its spread over seeds
(`bench_plot`).
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

from gpo_local.runs.rundata import RunView

COLORS = [
    "#1f77b4",
    "#d62728",
    "#2ca02c",
    "#ff7f0e",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#17becf",
    "#7f7f7f",
    "#bcbd22",
]


# -- plots ------------------------------------------------------------------------------------
def _figure(width: float = 9.0, height: float = 3.6):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110, layout="constrained")
    return fig, fig.add_subplot()


def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _x(step: int) -> int:
    """Plot position: 0 for the initial prompt, k for the k-th step (recorded as k - 1)."""
    return step + 1


def _step_axis(ax, run: RunView) -> None:
    last = max(
        [_x(s.step) for s in run.steps] + [_x(c["step"]) for c in run.pending] + [run.steps_planned or 0]
    )
    ticks = list(range(0, last + 1))
    ax.set_xticks(ticks, ["init"] + [str(t) for t in ticks[1:]])
    ax.set_xlim(-0.5, last + 0.5)
    ax.set_xlabel("step")
    ax.grid(True, alpha=0.3)


def _legend_outside(ax) -> None:
    """To the right of the plot, where it cannot hide a point."""
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)


def _jitter(index: int, count: int) -> float:
    """Spread the candidates of one step sideways so that equal scores stay visible."""
    return 0.0 if count <= 1 else (index / (count - 1) - 0.5) * 0.3


def dev_plot(run: RunView) -> str:
    fig, ax = _figure()
    candidates = [c for s in run.steps for c in s.candidates] + run.pending
    by_step: dict[int, list[dict]] = {}
    for c in candidates:
        by_step.setdefault(c["step"], []).append(c)
    for kind, marker, label in ((True, "o", "candidate"), (False, "x", "candidate (already scored)")):
        xs, ys = [], []
        for step, group in by_step.items():
            for i, c in enumerate(group):
                if bool(c.get("new", True)) == kind:
                    xs.append(_x(step) + _jitter(i, len(group)))
                    ys.append(100 * c["dev_score"])
        if xs:
            ax.scatter(xs, ys, marker=marker, s=28, color="#888888", alpha=0.8, label=label, zorder=2)
    xs = [_x(s.step) for s in run.steps]
    ys = [100 * s.dev_score for s in run.steps]
    ax.plot(xs, ys, "-o", color=COLORS[0], lw=2, ms=6, label="chosen prompt", zorder=3)
    if ys:
        best = [max(ys[: i + 1]) for i in range(len(ys))]
        ax.plot(xs, best, "--", color=COLORS[2], lw=1.2, label="best so far", zorder=2.5)
    final = (run.result or {}).get("final")
    if final:
        ax.scatter(
            [_x(final["step"])],
            [100 * final["dev_score"]],
            marker="*",
            s=260,
            color="#f2b705",
            edgecolor="black",
            label="final prompt",
            zorder=4,
        )
    ax.set_ylabel("dev score (0-100)")
    ax.set_ylim(-3, 103)
    _step_axis(ax, run)
    _legend_outside(ax)
    return _png(fig)


def edit_plot(run: RunView) -> str:
    fig, ax = _figure()
    candidates = [c for s in run.steps for c in s.candidates] + run.pending
    by_step: dict[int, list[dict]] = {}
    for c in candidates:
        if c.get("edit_distance") is not None:
            by_step.setdefault(c["step"], []).append(c)
    xs, ys = [], []
    for step, group in by_step.items():
        for i, c in enumerate(group):
            xs.append(_x(step) + _jitter(i, len(group)))
            ys.append(c["edit_distance"])
    if xs:
        ax.scatter(
            xs,
            ys,
            s=28,
            color="#888888",
            alpha=0.8,
            label="candidate's edit distance to its parent",
            zorder=2,
        )
        steps = sorted(by_step)
        means = [sum(c["edit_distance"] for c in by_step[s]) / len(by_step[s]) for s in steps]
        ax.plot(
            [_x(s) for s in steps], means, "-o", color=COLORS[0], lw=1.5, ms=4, label="mean edit distance"
        )
    budgets = sorted(
        {(c["step"], c["budget"]) for c in candidates if c.get("budget") is not None}
        | {(s.step, s.budget) for s in run.steps if s.step >= 0 and s.budget is not None}
    )
    if budgets:  # one bar per step: the most words a candidate of that step was asked to change
        ax.hlines(
            [b for _, b in budgets],
            [_x(s) - 0.4 for s, _ in budgets],
            [_x(s) + 0.4 for s, _ in budgets],
            color=COLORS[1],
            lw=2.5,
            label="edit budget of the step (schedule)",
            zorder=1,
        )
    else:
        ax.text(
            0.5,
            0.95,
            "no edit budget in this run (schedule: none)",
            transform=ax.transAxes,
            ha="center",
            va="top",
            fontsize=9,
        )
    ax.set_ylabel("words")
    ax.set_ylim(0, 1.12 * max(ys + [b for _, b in budgets] + [1]))
    _step_axis(ax, run)
    if xs or budgets:
        _legend_outside(ax)
    return _png(fig)


def overlay_plot(runs: list[RunView]) -> str:
    fig, ax = _figure(9.0, 4.0)
    last = 0
    for i, run in enumerate(runs):
        xs = [_x(s.step) for s in run.steps]
        ax.plot(
            xs,
            [100 * s.dev_score for s in run.steps],
            "-o",
            ms=4,
            color=COLORS[i % len(COLORS)],
            label=run.name,
        )
        last = max([last] + xs)
    ax.set_xticks(range(last + 1), ["init"] + [str(t) for t in range(1, last + 1)])
    ax.set_xlabel("step")
    ax.set_ylabel("dev score of the chosen prompt")
    ax.set_ylim(-3, 103)
    ax.grid(True, alpha=0.3)
    _legend_outside(ax)
    return _png(fig)


def bench_plot(summary: list[dict]) -> str:
    import numpy as np

    tasks = list(dict.fromkeys(row["task"] for row in summary))
    methods = list(dict.fromkeys(row["method"] for row in summary))
    cell = {(row["task"], row["method"]): row for row in summary}
    fig, ax = _figure(max(9.0, 1.2 + 0.35 * len(tasks) * len(methods)), 4.2)
    width = 0.8 / max(len(methods), 1)
    for j, method in enumerate(methods):
        means = [100 * (cell.get((t, method), {}).get("test_mean") or 0.0) for t in tasks]
        stds = [100 * (cell.get((t, method), {}).get("test_std") or 0.0) for t in tasks]
        positions = np.arange(len(tasks)) + (j - (len(methods) - 1) / 2) * width
        ax.bar(positions, means, width, yerr=stds, capsize=2, color=COLORS[j % len(COLORS)], label=method)
    ax.set_xticks(range(len(tasks)), [Path(t).name or t for t in tasks], rotation=20 if len(tasks) > 4 else 0)
    ax.set_ylabel("test score (0-100), mean ± std over seeds")
    ax.set_ylim(0, 105)
    ax.grid(True, axis="y", alpha=0.3)
    _legend_outside(ax)
    return _png(fig)
