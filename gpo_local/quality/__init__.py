"""The quality benchmark (`gpo-local bench quality`): methods (or strategy variants) x tasks x
seeds x task models.

Every cell is one ordinary `gpo-local optimize` run in its own run directory,

    OUT/runs/<task>/<method or variant>/seed<S>[/<task model>]     (the model level only when
                                                                    the config lists several)

with the cell's options written next to it as `cell.toml`, so a cell can be reproduced alone.
Cells run one after the other (the task model takes every core). After every cell the three
result files (results.json, results.csv, results.md) are rebuilt from the cell directories and
written atomically, so a kill loses at most the cell in progress; restarted, the harness skips
cells with a result.json and resumes a started one with `optimize --resume`.

The config (TOML; see benchmarks/configs/ and docs/benchmarking.md):

    [bench]
    tasks = ["../../../shared/data/bbh/navigate", "sentiment"]   # dirs relative to this file, then the cwd
    methods = ["gpo", "opro"]          # rows of the table ...
    seeds = [0, 1]
    task_models = ["smollm2-135m-instruct"]   # optional
    [optimize]                         # options of every cell (optimize's option names)
    steps = 2
    [methods.opro]                     # per-method overrides
    candidates = 4
    [variants.linear]                  # ... and/or strategy variants as rows
    method = "gpo"                     # optional, default gpo
    schedule = "linear"

Options merge in that order: [optimize], then [methods.<its method>], then [variants.<name>].
The cell runner is injectable: the CLI runs each cell as a subprocess (a crash is recorded as a
failed cell and the rest go on); the unit tests pass a fake.

Modules: config.py (loading and validating the config), cells.py (rows, tasks, the cell
matrix), run.py (running the cells, resuming, the subprocess runner, progress), results.py
(aggregation, results.json and the CSV files), markdown.py (results.md).

Part of the application layer (beside gpo_local.app): may import every layer below.
"""

from gpo_local.quality.cells import BenchConfig, Cell, Row, TaskRef
from gpo_local.quality.config import (
    CONTRACT_OPTIONS,
    DEFAULT_TASK_MODEL,
    HARNESS_OPTIONS,
    METHODS,
    check_cells,
    load_config,
)
from gpo_local.quality.markdown import results_markdown
from gpo_local.quality.results import (
    MEAN_ROW,
    PAPER_SOURCE,
    aggregate,
    collect,
    results_csv,
    write_results,
)
from gpo_local.quality.run import CellRunner, RichProgress, SilentProgress, SubprocessRunner, run_bench

__all__ = [
    "BenchConfig",
    "Cell",
    "CellRunner",
    "CONTRACT_OPTIONS",
    "DEFAULT_TASK_MODEL",
    "HARNESS_OPTIONS",
    "MEAN_ROW",
    "METHODS",
    "PAPER_SOURCE",
    "RichProgress",
    "Row",
    "SilentProgress",
    "SubprocessRunner",
    "TaskRef",
    "aggregate",
    "check_cells",
    "collect",
    "load_config",
    "results_csv",
    "results_markdown",
    "run_bench",
    "write_results",
]
