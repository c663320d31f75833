"""The command line: optimize, eval, show, report, models, tasks, bench (throughput, quality).

Library errors (GpoError) become one line and exit code 1 here, at the boundary, and nowhere
else. Models load only after every option and the task data have been validated.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path

import click
from click.core import ParameterSource

from gpo_local.app import api, walltime
from gpo_local.app.api import evaluate
from gpo_local.app.cli_bench import bench
from gpo_local.app.cli_catalog import models, tasks
from gpo_local.app.cli_options import declared_options, optimize_options
from gpo_local.app.cli_show import show
from gpo_local.app.intervals import gain_text, result_error_bars, with_error
from gpo_local.app.resuming import resolve_resume
from gpo_local.app.running import run_settings
from gpo_local.app.settings import merge, resolve
from gpo_local.errors import NO_VALUE, GpoError, OptionValue
from gpo_local.methods import estimate as budget
from gpo_local.runs.directory import RunDir
from gpo_local.runs.health import check_run, resumable_config, set_aside_damaged
from gpo_local.runs.locks import lock_run, release, running_pid
from gpo_local.runs.storage import UNWRITABLE, storage_error
from gpo_local.stats import standard_error
from gpo_local.tasks.answer_length import parse_answer_max_tokens
from gpo_local.tasks.prompting import POSITIONS

# eval takes the task-model options only (no optimizer model, no embedder).
model_options = declared_options("runtime", exclude=("task_model", "optimizer_model", "embedder", "mlflow"))
task_options = declared_options("task")


TASK_HELP = (
    "TASK is a built-in task name, a directory of split files (GPO layout: train/eval/format.jsonl), "
    "one .jsonl/.json/.csv/.parquet file, or hf:<Hugging Face dataset id>."
)


def flag(option: OptionValue) -> str:
    """An option named in a library error, spelled as this command line takes it: momentum='feedback'
    is `--momentum feedback`, a switch is its flag (`--resume`, `--no-cache`)."""
    name = "--" + option.name.replace("_", "-")
    if option.value is NO_VALUE or option.value is True:
        return name
    if option.value is False:
        return "--no-" + name[2:]
    if isinstance(option.value, dict):  # --splits ROLE=NAME,...
        return f"{name} {','.join(f'{key}={value}' for key, value in option.value.items())}"
    return f"{name} {option.value}"


class Cli(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except GpoError as error:
            raise click.ClickException(error.render(flag)) from None
        except OSError as error:  # a full, read-only or misplaced file as one line (storage.py)
            raise click.ClickException(storage_error(error).render(flag)) from None
        except KeyboardInterrupt:
            click.echo("interrupted; everything recorded so far is kept (resume with --resume)", err=True)
            sys.exit(130)


@click.group(cls=Cli)
@click.version_option(package_name="gpo-local")
def main():
    """gpo-local: GPO prompt optimization on local GGUF models, offline."""


# The commands with a module of their own; optimize, eval, repair and report follow here.
for command in (show, models, tasks, bench):
    main.add_command(command)


def _given(ctx, names) -> set[str]:
    """Those of `names` that the user set (command line or environment), as against click's defaults."""

    return {
        name
        for name in names
        if ctx.get_parameter_source(name) in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)
    }


@main.command(epilog=TASK_HELP + " With --resume, TASK may be left out (the run knows its task).")
@click.argument("task", required=False)
@optimize_options
@click.pass_context
def optimize(ctx, task, config_file, resume, dry_run, **options):
    """Optimize the instruction for TASK."""

    explicit = _given(ctx, options)
    if resume:
        values, _ = merge(options, explicit, config_file)
        if not values.get("run_dir"):
            raise click.UsageError("--resume needs --run-dir (the run to continue)")
        run = RunDir(Path(values["run_dir"]))
        saved = run.saved_config()
        done, damage = run.finished_result()  # a damaged result.json is recomputed
        if damage:
            click.echo(f"{damage}: recomputing it from the trajectory", err=True)
        settings = resolve_resume(run.path, saved, options, explicit, config_file, task_spec=task)
        if done is not None and settings.config.steps <= saved["config"]["steps"]:
            click.echo("the run is complete; nothing to resume", err=True)
            _print_result(done, run.path)
            return
    elif task is None:
        raise click.UsageError("Missing argument 'TASK' (it may be left out with --resume only).")
    else:
        saved = None
        settings = resolve(task, options, explicit, config_file)
    for notice in settings.notices:
        click.echo(notice, err=True)
    if dry_run:
        _dry_run(settings)
        return
    _run_optimize(settings, saved)


def _dry_run(settings) -> None:
    est = budget.estimate(settings.config, settings.task)
    n_dev = len(settings.task.split("eval", settings.config.dev_limit))
    click.echo(
        f"task {settings.task.name}: {n_dev} dev examples; "
        f"timing a few generations of {settings.runtime['task_model']}...",
        err=True,
    )
    rates = walltime.measure(settings)  # timed as the evaluator batches, racing modelled
    click.echo(budget.format_estimate(est))
    click.echo(walltime.describe(est, rates, n_dev, settings.config.racing, settings.config.racing_order))


def _run_optimize(settings, saved: dict | None) -> None:
    summary, run_dir, _ = run_settings(settings, saved)
    _print_result(summary, run_dir)


def _print_result(summary: dict, run_dir: Path) -> None:
    bars = result_error_bars(summary)  # standard errors in points after "±" (app/intervals.py)
    for label in ("initial", "final"):
        entry = summary[label]
        click.echo(f"{label} prompt: {entry['prompt']!r}")
        click.echo(
            f"  dev {with_error(entry['dev_score'], bars[f'{label}_dev_se'])}  "
            f"test {with_error(summary[f'{label}_test'], bars[f'{label}_test_se'])}  (step {entry['step']})"
        )
    if summary.get("initial_test") is not None and summary.get("final_test") is not None:
        gain = 100 * (summary["final_test"] - summary["initial_test"])
        click.echo(f"gain on the test split: {gain_text(bars) or f'{gain:+.1f} points'}")
    if summary.get("stopped", "completed") != "completed":
        click.echo(
            f"stopped early ({summary['stopped']}): resume with --resume and a larger limit to continue"
        )
    click.echo(f"run directory: {run_dir}")


@main.command("eval", epilog=TASK_HELP)
@click.argument("task")
@task_options
@click.option("--prompt", required=True, help="The instruction to score.")
@click.option("--split", type=click.Choice(["eval", "test"]), default="eval", show_default=True)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Score the first N questions only.")
@click.option(
    "--position",
    type=click.Choice(POSITIONS),
    default=None,
    help="Where the instruction goes relative to the question (default: the task's own, as `optimize` "
    "places it; Q_end for a task with none).",
)
@click.option(
    "--answer-max-tokens",
    default=None,
    callback=lambda ctx, param, value: _answer_cap(value),
    help="Token limit of each task-model reply, N or N1,N2 per round, as in `optimize` "
    "[default: the task's own].",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print the result with every outcome as JSON (no progress)."
)
@click.option("--quiet", is_flag=True, help="No progress output.")
@click.option(
    "--events",
    "events_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Append the progress events as JSON lines to this file.",
)
@click.option(
    "--task-model",
    "task_models",
    multiple=True,
    metavar="MODEL",
    help="Catalog name, GGUF path, URL or URL#name of the model that answers the task; "
    "repeat it to score the prompt with several models, one row each [default: the "
    "task's suggested model, else the bundled one].",
)
@model_options
@click.pass_context
def eval_command(
    ctx, task, prompt, split, limit, position, as_json, quiet, events_path, task_models, **options
):
    """Score PROMPT on a split of TASK with the task model (or each of several task models)."""

    # The task model, position and prompt as `gpo_local.evaluate` chooses them (app/evaluation.py):
    # a model the user did not name is the task's suggestion, as in `optimize`.
    def score(model):
        return evaluate(
            task,
            prompt,
            split=split,
            limit=limit,
            position=position,
            task_model=model,
            quiet=quiet or as_json,
            events_path=events_path,
            on_notice=lambda text: click.echo(text, err=True),
            **options,
        )

    models = list(task_models) or [None]
    if as_json:
        # one model: one object; several: a list of them, in the order the models were given
        records = [_eval_record(score(model), split) for model in models]
        click.echo(json.dumps(records[0] if len(records) == 1 else records, indent=2))
    elif len(models) == 1:
        result = score(models[0])
        click.echo(f"{result.task} {split}: {_eval_score_text(result)}")
    else:
        # A row as soon as its model is scored: a model that fails later loses no finished row.
        click.echo(f"{split} split, one row per task model:")
        width = max(len(str(model)) for model in models)
        for model in models:
            click.echo(f"{model:<{width}}  {_eval_score_text(score(model))}")


def _eval_record(result, split: str) -> dict:
    return {
        "task": result.task,
        "split": split,
        "prompt": result.prompt,
        "position": result.position,
        "score": result.score,
        "standard_error": standard_error([o.score for o in result.outcomes]),
        "n": result.n,
        "model": dict(result.model),
        "outcomes": [asdict(o) for o in result.outcomes],
    }


def _eval_score_text(result) -> str:
    """`62.5 ± 7.7 (25/40)`: the score, its standard error over the questions, the sum of outcomes."""
    total = sum(o.score for o in result.outcomes)
    total_text = f"{total:g}" if total == int(total) else f"{total:.2f}"  # ROUGE-L sums are fractions
    error = standard_error([o.score for o in result.outcomes])  # over the questions (gpo_local.stats)
    return f"{with_error(result.score, error)} ({total_text}/{result.n})"


def _answer_cap(value):
    """--answer-max-tokens checked as the option table parses it (N or N1,N2)."""
    try:
        return parse_answer_max_tokens(value)
    except GpoError as error:
        raise click.BadParameter(error.render(flag)) from None


@main.command()
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--quiet", is_flag=True, help="No progress output.")
@click.pass_context
def repair(ctx, run_dir, quiet):
    """Repair the run in RUN_DIR and finish it: for a trajectory.jsonl holding a damaged record.

    The first damaged record and every line after it are moved to trajectory.jsonl.damaged, and
    a result.json derived from them to result.json.before-repair; then the run resumes from its
    last intact step as `optimize --resume` does, replaying the rest with the same seed (the memo
    cache makes generations it already made free). A torn last line or a damaged result.json is
    repaired the same way (by the resume alone). Nothing is deleted."""
    files = check_run(run_dir)
    problem = resumable_config(files)
    if problem:
        raise click.ClickException(str(problem))
    running = running_pid(run_dir)
    if running:
        raise click.ClickException(
            f"{run_dir} is in use by another gpo-local process (pid {running}): "
            "wait for it to finish or stop it, then repair it"
        )
    lock_run(run_dir)  # held while records are set aside (a run starting meanwhile is refused)
    try:
        moved = set_aside_damaged(run_dir)
    finally:
        release(run_dir)
    if moved:
        damaged = files.damaged_record
        click.echo(
            f"{damaged.what}: set aside with the {moved[1] - 1} line(s) after it in {moved[0]}; "
            "replaying the rest",
            err=True,
        )
    elif files.result is not None and not files.problems:
        click.echo(f"nothing to repair: every file of {run_dir} is intact", err=True)
        return
    ctx.invoke(
        optimize, task=None, config_file=None, resume=True, dry_run=False, run_dir=str(run_dir), quiet=quiet
    )


@main.command()
@click.argument(
    "run_dirs", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False, path_type=Path)
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="HTML file to write [default: RUN_DIR/report.html for one directory, else ./report.html].",
)
def report(run_dirs, output):
    """Write one self-contained HTML report of runs or of a `bench quality` output directory.

    Plots are embedded, nothing is fetched: the file opens offline. Several RUN_DIRS get one
    section each and an overlay of their dev curves."""

    try:
        output = api.report(list(run_dirs), output)
    except OSError as error:  # a read-only or full location: the report can go elsewhere
        if error.errno not in UNWRITABLE:
            raise
        advice = "write the report elsewhere with -o FILE"
        raise click.ClickException(str(storage_error(error, advice=advice))) from None
    click.echo(f"report written to {output}")


if __name__ == "__main__":
    main()
