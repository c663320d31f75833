"""`gpo-local show RUN_DIR`: a run's steps as a table (budget, edit distances, candidates, the
chosen prompt and its dev score), its models, the candidates racing dropped, the reply quota's
extra asks, the dropped optimizer replies, and its result with error bars, or what state an
unfinished run is in (going on, or resumable with the command given). The records come from
api.show (runs/rundata.py); this module only renders them. Registered on the command group in
cli.py.
"""

from __future__ import annotations

from pathlib import Path

import click

from gpo_local.app import api
from gpo_local.app.formatting import percent
from gpo_local.app.intervals import gain_text, result_error_bars, with_error
from gpo_local.app.model_records import model_lines
from gpo_local.replies.drops import describe as describe_drops
from gpo_local.replies.drops import describe_asks, describe_cuts, step_views_total
from gpo_local.runs.health import resume_command
from gpo_local.runs.locks import running_pid


@click.command()
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
def show(run_dir):
    """Show a run: its steps, budgets, edit distances, chosen prompts and scores."""
    from rich.console import Console

    run = api.show(run_dir)
    console = Console()
    console.print(_steps_table(run, run_dir))
    for line in model_lines(run.config):
        console.print(line, highlight=False, markup=False)
    _show_raced(console, run)
    running = running_pid(run_dir)
    _show_asks(console, run)
    if run.pending:
        console.print(
            f"{len(run.pending)} candidates of an unfinished step are recorded"
            f"{'' if running else ' (resume continues it)'}"
        )

    text = describe_drops(*step_views_total(run.steps)) + describe_cuts(run.steps) + describe_asks(run.steps)
    console.print(f"dropped optimizer replies: {text}", highlight=False)
    _show_result(console, run, running)


def _steps_table(run, run_dir: Path):
    """The run's steps, one row each: budget, edit distances, candidates, chosen prompt, dev."""
    from rich.table import Table

    planned = f" of {run.steps_planned}" if run.steps_planned else ""
    table = Table(
        title=f"{run.task} / {run.method}: {max(len(run.steps) - 1, 0)} steps{planned} ({run_dir})",
        title_justify="left",
        caption="budget: the step size in words (induced: a cold-start step, its candidates "
        "induced from examples); edit distance: mean (min-max) in words of the step's candidates "
        "to the step's starting prompt; dev: 0-100",
        caption_justify="left",
    )
    table.add_column("step", justify="right")
    table.add_column("budget", justify="right")
    table.add_column("edit distance", justify="right")
    table.add_column("cands", justify="right")
    table.add_column("chosen prompt", overflow="fold")
    table.add_column("dev", justify="right")
    for step in run.steps:
        dists = step.distances
        spread = f"{step.mean_distance:.1f} ({min(dists)}-{max(dists)})" if dists else "-"
        budget = "induced" if step.induced else "-" if step.budget is None else str(step.budget)
        table.add_row(
            step.label,
            budget,
            spread,
            str(len(step.candidates)),
            _shorten(step.prompt, 70),
            percent(step.dev_score),
        )
    return table


def _show_asks(console, run) -> None:
    """The steps where the reply quota asked the optimizer again (algorithm/quota.py)."""
    for step in run.steps:
        if step.asks is not None and step.asks > step.wanted:
            console.print(
                f"step {step.label}: asked {step.asks} times for {step.wanted} candidates, "
                f"{step.usable} usable",
                highlight=False,
            )


def _show_result(console, run, running) -> None:
    """The final and the initial prompt's scores with error bars and the gain, or, before
    result.json exists, whether the run is going on or how to continue it."""
    result = run.result
    if result is None and running:  # a resume would be refused: the run is going on
        console.print(
            f"the run is in progress (pid {running} holds its lock): show it again later", highlight=False
        )
        return
    if result is None:
        console.print(
            f"no result.json yet: the run is unfinished; continue it with: "
            f"{resume_command(run.path, run.config)}",
            highlight=False,
            markup=False,
        )
        return
    final, initial = result["final"], result["initial"]
    step = "init" if final["step"] < 0 else final["step"] + 1
    console.print(f"final prompt (step {step}): {final['prompt']}", highlight=False, markup=False)
    bars = result_error_bars(result)
    console.print(
        f"final:   dev {with_error(final['dev_score'], bars['final_dev_se'])}  "
        f"test {with_error(result.get('final_test'), bars['final_test_se'])}",
        highlight=False,
    )
    console.print(
        f"initial: dev {with_error(initial['dev_score'], bars['initial_dev_se'])}  "
        f"test {with_error(result.get('initial_test'), bars['initial_test_se'])}",
        highlight=False,
    )
    if gain_text(bars):
        console.print(f"gain on the test split: {gain_text(bars)}", highlight=False)
    console.print("± is the standard error over the split's questions", highlight=False)
    if result.get("stopped") and result["stopped"] != "completed":
        console.print(f"stopped early: {result['stopped']}", highlight=False)


def _show_raced(console, run) -> None:
    """The candidates racing dropped: their score is a partial mean."""
    dropped = [c for s in run.steps for c in s.candidates if c.get("eliminated")]
    for c in dropped:
        console.print(
            f"step {c['step'] + 1}: raced out after {c.get('dev_questions')} dev questions "
            f"(partial dev {percent(c['dev_score'])}): {_shorten(c['prompt'], 60)}",
            highlight=False,
            markup=False,
        )


def _shorten(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."
