"""A bench config: loading and validation (one line naming the file, section and key) into a
BenchConfig, whose rows, tasks and cell matrix are in cells.py."""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Iterable

import click

from gpo_local.algorithm.config import OPTIONS
from gpo_local.algorithm.options_method import METHOD_NAMES
from gpo_local.app.cli_options import optimize_parser
from gpo_local.app.paper import benchmark_of
from gpo_local.backends.catalog import DEFAULT_MODEL
from gpo_local.errors import ConfigError, GpoError
from gpo_local.quality.cells import BenchConfig, Cell, Row, TaskRef, option_name
from gpo_local.tasks import load_task
from gpo_local.tasks.builtin import BUILTIN_TASKS

METHODS = METHOD_NAMES
DEFAULT_TASK_MODEL = DEFAULT_MODEL

# Options the harness sets itself, and where a config gives them instead.
HARNESS_OPTIONS = {
    "method": "[bench] methods or a [variants.<name>] table's method",
    "seed": "[bench] seeds",
    "task-model": "[bench] task_models",
    "run-dir": "bench quality --out",
    "resume": "the harness (it resumes unfinished cells itself)",
    "quiet": "the harness",
    "config": "the harness",
    "dry-run": "the harness",
    "ray": "bench quality --ray (every cell a Ray task)",
    "ray-actors": "bench quality --ray (every cell a Ray task)",
}
# The options of `gpo-local optimize` a bench config may set (CONTRACT.md): every declared
# option (config.OPTIONS) but the harness's own and the task-loading ones (a task is a folder).
# Options the installed optimize command has beyond these are accepted too; whether the installed
# command supports a given option is checked per cell by check_cells() before anything runs.
CONTRACT_OPTIONS = frozenset(o.flag[2:] for o in OPTIONS if o.cli and o.group != "task") - set(
    HARNESS_OPTIONS
)
BENCH_KEYS = {"tasks", "methods", "seeds", "task_models", "description", "data_root"}
# The folder that relative task paths of a config are read from: `bench quality --data-root`, else
# this environment variable, else the config's [bench] data_root (relative to the config file).
DATA_ROOT_ENV = "GPO_LOCAL_DATA"
DATA_DOCS = "docs/benchmarking.md"
TOP_KEYS = {"bench", "optimize", "methods", "variants"}


def installed_optimize_options() -> set[str]:
    """Long option names (without dashes) of the installed `gpo-local optimize` command."""

    names = set()
    for param in optimize_parser().params:
        for opt in getattr(param, "opts", ()):
            if opt.startswith("--"):
                names.add(opt[2:])
    return names


def load_config(
    path: Path,
    *,
    known_options: Iterable[str] | None = None,
    cwd: Path | None = None,
    data_root: Path | str | None = None,
) -> BenchConfig:
    """Load and validate a bench config. `data_root` (the --data-root flag) overrides the
    GPO_LOCAL_DATA environment variable, which overrides the config's [bench] data_root."""
    path = Path(path)
    where = str(path)  # as the user gave it
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{where}: config file not found") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{where}: malformed TOML ({error})") from None
    known = set(CONTRACT_OPTIONS) | set(
        installed_optimize_options() if known_options is None else known_options
    )
    reader = _Reader(path, raw, known - set(HARNESS_OPTIONS))
    bench = reader.bench
    methods = reader.methods()
    seeds = reader.seeds()
    task_models = [_resolve_model(m, path) for m in reader.string_list("task_models", required=False)]
    description = bench.get("description", "")
    if not isinstance(description, str):
        reader.fail("[bench]", "description: must be a string")
    rows = reader.rows(methods)
    root = resolve_data_root(data_root, reader.data_root(), path, cwd or Path.cwd())
    tasks = reader.tasks(cwd or Path.cwd(), root)
    return BenchConfig(
        path=path,
        description=description,
        tasks=tuple(tasks),
        rows=tuple(rows),
        seeds=tuple(seeds),
        task_models=tuple(task_models or [DEFAULT_TASK_MODEL]),
        raw=raw,
        data_root=root,
    )


def resolve_data_root(
    flag: Path | str | None, config_value: str | None, config_path: Path, cwd: Path
) -> Path | None:
    """The data folder: the flag (relative to the working directory), else $GPO_LOCAL_DATA, else the
    config's data_root (relative to the config file); None when none is set."""
    if flag:
        return (cwd / Path(flag).expanduser()).resolve()
    if os.environ.get(DATA_ROOT_ENV):
        return (cwd / Path(os.environ[DATA_ROOT_ENV]).expanduser()).resolve()
    if config_value:
        return (config_path.resolve().parent / Path(config_value).expanduser()).resolve()
    return None


class _Reader:
    """The sections of a bench config, each validated with a message naming file, section and key."""

    def __init__(self, path: Path, raw: dict, known: set[str]):
        self.path, self.raw, self.known = path, raw, known
        for key in raw:
            if key not in TOP_KEYS:
                self.fail(key, f": unknown section (expected {', '.join(sorted(TOP_KEYS))})")
        self.bench = raw.get("bench")
        if not isinstance(self.bench, dict):
            self.fail("[bench]", "is missing (it lists tasks, methods and seeds)")
        for key in self.bench:
            if key not in BENCH_KEYS:
                self.fail("[bench]", f"{key}: unknown key (expected {', '.join(sorted(BENCH_KEYS))})")

    def fail(self, section: str, message: str):
        raise ConfigError(f"{self.path}: {section}{'' if message.startswith(':') else ' '}{message}")

    def string_list(self, key: str, *, required: bool) -> list[str]:
        value = self.bench.get(key)
        if value is None:
            if required:
                self.fail("[bench]", f"{key}: missing")
            return []
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            self.fail("[bench]", f"{key}: must be a list of non-empty strings (got {value!r})")
        if len(set(value)) != len(value):
            self.fail("[bench]", f"{key}: lists a value twice")
        return value

    def methods(self) -> list[str]:
        methods = self.string_list("methods", required=False)
        for method in methods:
            if method not in METHODS:
                self.fail("[bench]", f"methods: {method!r} is not a method ({', '.join(METHODS)})")
        return methods

    def seeds(self) -> list[int]:
        seeds = self.bench.get("seeds", [0])
        if (
            not isinstance(seeds, list)
            or not seeds
            or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds)
        ):
            self.fail("[bench]", f"seeds: must be a non-empty list of integers (got {seeds!r})")
        if len(set(seeds)) != len(seeds):
            self.fail("[bench]", "seeds: lists a seed twice")
        return seeds

    def options(self, section: str, table, *, allow_method: bool = False) -> dict:
        if not isinstance(table, dict):
            self.fail(section, f"must be a table of optimize options (got {table!r})")
        result = {}
        for key, value in table.items():
            name = option_name(key)
            if name == "method" and allow_method:
                continue
            if name in HARNESS_OPTIONS:
                self.fail(section, f"{key}: set by {HARNESS_OPTIONS[name]}, not here")
            if name not in self.known:
                self.fail(section, f"{key}: unknown optimize option (known: {', '.join(sorted(self.known))})")
            if not isinstance(value, (str, int, float, bool)):
                self.fail(section, f"{key}: must be a string, number or boolean (got {value!r})")
            if name in result:
                self.fail(section, f"{key}: given twice (as dashes and underscores)")
            result[name] = value
        return result

    def _layers(self) -> tuple[dict, dict]:
        common = self.options("[optimize]", self.raw.get("optimize", {}))
        per_method = self.raw.get("methods", {})
        if not isinstance(per_method, dict):
            self.fail("[methods]", "must hold one table per method, e.g. [methods.opro]")
        overrides = {}
        for method, table in per_method.items():
            if method not in METHODS:
                self.fail(f"[methods.{method}]", f": {method!r} is not a method ({', '.join(METHODS)})")
            overrides[method] = self.options(f"[methods.{method}]", table)
        return common, overrides

    def rows(self, methods: list[str]) -> list[Row]:
        common, overrides = self._layers()

        def merged(method: str, variant: tuple[str, dict] | None) -> tuple[dict, dict]:
            layers = [("[optimize]", common), (f"[methods.{method}]", overrides.get(method, {}))]
            values, sources = {}, {}
            for section, layer in layers + ([variant] if variant else []):
                for name, value in layer.items():
                    values[name], sources[name] = value, section
            return values, sources

        rows = [Row(m, m, *merged(m, None)) for m in methods]
        variants = self.raw.get("variants", {})
        if not isinstance(variants, dict):
            self.fail("[variants]", "must hold one table per variant, e.g. [variants.linear]")
        for name, table in variants.items():
            rows.append(self._variant(name, table, methods, merged))
        if not rows:
            self.fail(
                "[bench]", "methods: no rows: list methods in [bench] methods or add [variants.<name>] tables"
            )
        return rows

    def _variant(self, name: str, table, methods: list[str], merged) -> Row:
        section = f"[variants.{name}]"
        if name in methods:
            self.fail(section, f": the name {name!r} is already a row of [bench] methods")
        if not re.fullmatch(r"[A-Za-z0-9._-]+", name):
            self.fail(
                section, ": variant names may use letters, digits, '.', '_' and '-' only (they name folders)"
            )
        table = table if isinstance(table, dict) else self.fail(section, f"must be a table (got {table!r})")
        method = table.get("method", "gpo")
        if method not in METHODS:
            self.fail(section, f"method: {method!r} is not a method ({', '.join(METHODS)})")
        values, sources = merged(method, (section, self.options(section, table, allow_method=True)))
        if "method" in table:
            sources["method"] = section
        return Row(name, method, values, sources, is_variant=True)

    def data_root(self) -> str | None:
        value = self.bench.get("data_root")
        if value is not None and (not isinstance(value, str) or not value):
            self.fail("[bench]", f"data_root: must be a non-empty string, a folder (got {value!r})")
        return value

    def tasks(self, cwd: Path, data_root: Path | None) -> list[TaskRef]:
        tasks = [
            _resolve_task(spec, self.path, cwd, lambda msg: self.fail("[bench]", f"tasks: {msg}"), data_root)
            for spec in self.string_list("tasks", required=True)
        ]
        names = [t.name for t in tasks]
        for name in names:
            if names.count(name) > 1:
                self.fail("[bench]", f"tasks: two tasks are named {name!r} (their run folders would collide)")
        return tasks


def _resolve_model(spec: str, config_path: Path) -> str:
    """A relative GGUF path that exists next to the config is made absolute (cells run it from
    any directory); catalog names and other paths are passed to optimize as written."""
    given = Path(spec).expanduser()
    if given.is_absolute() or "/" not in spec and not spec.lower().endswith(".gguf"):
        return spec
    beside = config_path.resolve().parent / given
    return str(beside.resolve()) if beside.is_file() else spec


def _missing_data_folder(root: Path, spec: str) -> ConfigError:
    """One line naming the first missing folder on the way from the data root to a task, and what
    the data root must hold."""
    missing = root
    for part in Path(spec).parts:
        if not missing.is_dir():
            break
        missing = missing / part
    return ConfigError(
        f"data folder {missing} not found: set {DATA_ROOT_ENV} or --data-root to a folder holding "
        f"{Path(spec).as_posix()}/{{train,eval,format}}.jsonl ({DATA_DOCS})"
    )


def _resolve_task(spec: str, config_path: Path, cwd: Path, fail, data_root: Path | None = None) -> TaskRef:
    """A built-in task name, or a directory: relative paths are read from the data root when one
    is set, otherwise tried against the config file's directory first, then the working directory.
    The task is loaded, so that a broken data directory fails here, before any cell runs."""

    if spec in BUILTIN_TASKS:
        target = spec
    elif data_root is not None and not Path(spec).expanduser().is_absolute():
        found = data_root / spec
        if not found.is_dir():
            raise _missing_data_folder(data_root, spec)
        target = str(found.resolve())
    else:
        given = Path(spec).expanduser()
        tries = (
            [given] if given.is_absolute() else [config_path.resolve().parent / given, cwd.resolve() / given]
        )
        tries = list(dict.fromkeys(tries))
        found = next((p for p in tries if p.is_dir()), None)
        if found is None:
            fail(
                f"{spec!r} is neither a built-in task nor a directory (looked for "
                f"{' and '.join(str(p) for p in tries)})"
            )
        target = str(found.resolve())
    try:
        task = load_task(target)
    except GpoError as error:
        fail(f"{spec!r}: {error}")
    return TaskRef(spec=spec, target=target, name=task.name, benchmark=benchmark_of(task.source))


def check_cells(config: BenchConfig, out: Path) -> None:
    """Parse every cell's optimize command line with the installed optimize command (without
    running it), so an option it lacks or a bad value fails now, naming the config section."""

    optimize = optimize_parser()
    where = str(config.path)

    def origin(cell: Cell, name: str | None) -> str:
        if name == "method":
            return (
                f"{cell.row.sources['method']} method" if "method" in cell.row.sources else "[bench] methods"
            )
        if name in cell.row.sources:
            return f"{cell.row.sources[name]} {name}"
        return "[bench]"

    for cell in config.cells(out):
        try:
            optimize.make_context("optimize", cell.argv(resume=False)[1:])
        except click.NoSuchOption as error:
            name = error.option_name.lstrip("-")
            raise ConfigError(
                f"{where}: {origin(cell, name)}: this gpo-local's optimize has no --{name} option "
                f"(needed by row {cell.row.name!r})"
            ) from None
        except click.ClickException as error:
            param = getattr(error, "param", None)
            name = param.name.replace("_", "-") if param is not None else None
            raise ConfigError(
                f"{where}: {origin(cell, name)}: {error.format_message()} (row {cell.row.name!r})"
            ) from None
