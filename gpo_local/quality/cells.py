"""What a bench runs: its rows (a method, or a named variant of one with its options), its tasks,
and the cell matrix of rows x tasks x seeds x task models (BenchConfig.cells), each cell one
`gpo-local optimize` run with its own run directory and command line (Cell.argv).

A cell's directory is OUT/runs/<task>/<row>/seed<S>, with a level per task model when the
config lists several (named by the model's file or served name). Reading and validating a
config into a BenchConfig is config.py's part.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

from gpo_local.algorithm.config import OPTIONS
from gpo_local.backends.served import is_served_spec, parse_served_spec


def option_name(key: str) -> str:
    """A config key as optimize's option name: dashes, lower case (`lr_init` is `lr-init`)."""
    return key.strip().replace("_", "-").lower()


def _on_by_default(key: str) -> bool:
    """Whether a switch option is on unless turned off (--no-NAME), as `grammar`."""
    return any(o.kind is bool and o.default and o.flag[2:] == option_name(key) for o in OPTIONS)


@dataclass(frozen=True)
class Row:
    """One row of the result tables: a method, or a named variant (a method plus options)."""

    name: str
    method: str
    options: dict  # merged optimize options for this row, option names with dashes
    sources: dict  # option name -> the config section that set it (for error messages)
    is_variant: bool = False


@dataclass(frozen=True)
class TaskRef:
    spec: str  # as written in the config
    target: str  # what optimize gets: a built-in name or an absolute directory
    name: str  # the task's name (its folder in OUT/runs)
    benchmark: str | None  # the paper benchmark it belongs to (paper.benchmark_of)


@dataclass(frozen=True)
class Cell:
    row: Row
    task: TaskRef
    seed: int
    task_model: str
    run_dir: Path

    @property
    def label(self) -> str:
        return f"{self.row.name} / {self.task.name} / seed {self.seed}"

    def options(self) -> dict:
        """Every option of this cell (the content of its cell.toml)."""
        return {
            "method": self.row.method,
            "seed": self.seed,
            "task-model": self.task_model,
            **self.row.options,
        }

    def argv(self, *, resume: bool) -> list[str]:
        """Arguments of `gpo-local optimize` for this cell."""
        if resume:  # optimize --resume reads every option back from the run's config.json
            return ["optimize", self.task.target, "--run-dir", str(self.run_dir), "--resume", "--quiet"]
        args = [
            "optimize",
            self.task.target,
            "--seed",
            str(self.seed),
            "--task-model",
            self.task_model,
            "--run-dir",
            str(self.run_dir),
            "--quiet",
        ]
        # gpo is optimize's default method: leaving --method out keeps gpo-only configs runnable
        # on an optimize command that predates --method.
        if self.row.method != "gpo":
            args += ["--method", self.row.method]
        for name, value in self.row.options.items():
            if isinstance(value, bool):
                if value:
                    args.append(f"--{name}")
                elif _on_by_default(name):  # e.g. grammar = false: --no-grammar
                    args.append(f"--no-{name}")
            else:
                args += [f"--{name}", str(value)]
        return args


@dataclass(frozen=True)
class BenchConfig:
    path: Path
    description: str
    tasks: tuple[TaskRef, ...]
    rows: tuple[Row, ...]
    seeds: tuple[int, ...]
    task_models: tuple[str, ...]
    raw: dict = field(repr=False)
    data_root: Path | None = None  # where relative task paths were read from (None: beside the config)

    def cells(self, out: Path) -> list[Cell]:
        """The cell matrix, seed by seed (so that a partial run has whole seeds), then task model,
        task and row."""
        cells = []
        for seed in self.seeds:
            for model in self.task_models:
                for task in self.tasks:
                    for row in self.rows:
                        run_dir = out / "runs" / task.name / row.name / f"seed{seed}"
                        if len(self.task_models) > 1:
                            run_dir = run_dir / _slug(model)
                        cells.append(Cell(row, task, seed, model, run_dir))
        return cells


def _slug(text: str) -> str:
    if is_served_spec(text):  # the address and the served name: host_port_name
        base, name = parse_served_spec(text)
        stem = "_".join(part for part in (urllib.parse.urlsplit(base).netloc, name) if part)
        return re.sub(r"[^A-Za-z0-9._-]+", "_", stem) or "served"
    stem = Path(text).name
    stem = stem[:-5] if stem.lower().endswith(".gguf") else stem
    return re.sub(r"[^A-Za-z0-9._-]+", "_", stem) or "model"
