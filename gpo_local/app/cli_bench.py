"""`gpo-local bench`: the benchmark commands. `bench throughput` runs the evaluator throughput
comparison of benchmarks/throughput.py (it needs the repository checkout: benchmarks/ is not
installed); `bench quality` runs a bench config's cells (methods x tasks x seeds x task models,
one optimize run each, resumable; quality/), lists them with --dry-run, on a Ray cluster with
--ray and tracked in MLflow with --mlflow. Registered on the command group in cli.py.
"""

from __future__ import annotations

import importlib.util
import signal
import sys
from pathlib import Path

import click

from gpo_local.app import api
from gpo_local.app.mlflow_observer import DEFAULT_URI as DEFAULT_MLFLOW
from gpo_local.app.mlflow_observer import bench_tracking
from gpo_local.quality import RichProgress


@click.group()
def bench():
    """Benchmarks (they need the repository checkout: benchmarks/ is not installed)."""


@bench.command("throughput")
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the figures as JSON to this file.",
)
@click.option(
    "--llama-server",
    default=None,
    help="llama-server binary for contender (c) [default: $GPO_LOCAL_LLAMA_SERVER; skipped if unset].",
)
@click.option(
    "--questions",
    type=click.IntRange(min=1),
    default=24,
    show_default=True,
    help="Dev questions of BBH navigate (the fixed workload uses 24).",
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=2,
    show_default=True,
    help="CPU threads (the fixed workload uses 2).",
)
def bench_throughput(json_path, llama_server, questions, threads):
    """Evaluator throughput vs create_chat_completion and llama-server (takes minutes)."""

    script = Path(__file__).resolve().parents[2] / "benchmarks" / "throughput.py"
    if not script.is_file():
        raise click.ClickException(
            f"{script} not found: the benchmarks ship with the repository, not the installed package; "
            "run this from a source checkout (pip install -e .) or run benchmarks/throughput.py there"
        )
    spec = importlib.util.spec_from_file_location("gpo_local_bench_throughput", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.run(json_path=json_path, llama_server=llama_server, questions=questions, threads=threads)


@bench.command("quality")
@click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Bench config (TOML), e.g. benchmarks/configs/quick.toml.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Output directory [default: $GPO_LOCAL_HOME/bench/<config name>]; "
    "rerun with the same one to resume.",
)
@click.option(
    "--dry-run", is_flag=True, help="Validate the config and list the cells and their commands; run nothing."
)
@click.option(
    "--ray",
    "ray_address",
    default=None,
    metavar="ADDRESS",
    help="Run the cells as Ray tasks on this cluster (auto: the one running on this machine).",
)
@click.option(
    "--data-root",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder the config's relative task paths are read from [default: $GPO_LOCAL_DATA, "
    "else the config's data_root].",
)
@click.option(
    "--mlflow",
    "mlflow",
    is_flag=False,
    flag_value=DEFAULT_MLFLOW,
    default=None,
    metavar="[URI]",
    help="Track the benchmark in MLflow: one parent run, a child run per cell (--mlflow alone: "
    "$MLFLOW_TRACKING_URI, else a local store under $GPO_LOCAL_HOME/mlruns).",
)
def bench_quality(config_path, out, dry_run, ray_address, data_root, mlflow):
    """Methods x tasks x seeds (x task models), one optimize run per cell; resumable. Writes
    results.md, results.csv and results.json in the output directory."""

    config, out, cells = api.bench_cells(config_path, out, data_root=data_root)
    if dry_run:
        for i, cell in enumerate(cells, 1):
            state = "done" if (cell.run_dir / "result.json").exists() else "to run"
            click.echo(
                f"[{i}/{len(cells)}] {cell.label} ({state}): gpo-local {' '.join(cell.argv(resume=False))}"
            )
        return

    def terminate(
        signum, frame
    ):  # `kill PID`: stop like Ctrl-C (the cell's optimize is killed, results written)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    if ray_address and mlflow:  # the cells learn of the parent run through this process's environment
        raise click.UsageError(
            "--mlflow and --ray together are not supported: track a Ray bench per "
            'cell with mlflow = "URI" in the config\'s [optimize] table'
        )
    try:  # with --ray, every cell is a Ray task (quality/ray_run.py)
        if mlflow:
            with bench_tracking(out, mlflow, config.raw, config_path.stem):
                api.bench_quality(
                    config_path, out=out, ray=ray_address, ui=RichProgress(), data_root=data_root
                )
        else:
            api.bench_quality(config_path, out=out, ray=ray_address, ui=RichProgress(), data_root=data_root)
    except KeyboardInterrupt:
        click.echo(
            f"interrupted; finished cells are kept in {out}: rerun the same command to continue", err=True
        )
        sys.exit(130)
