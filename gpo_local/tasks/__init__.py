"""Tasks: where the examples come from and how answers are judged.

A task is a name, its splits (train / eval / test / format / few_shot_examples), an answer
rule (tasks/answers.py, or a rule of a built-in task), a default initial prompt and the
generation limits of its two rounds. TASK on the command line is one of:

* a built-in task name (`sentiment`);
* a directory of split files `<split>.jsonl` (the GPO layout, fields `input` and `target` or
  `output`), or `<split>.json` / `.csv` / `.parquet`;
* one JSON, JSONL, CSV or Parquet file: its rows are the eval (dev) split, and the format
  exemplars shown to the optimizer are drawn from them too (there is nothing else);
* `hf:<dataset id>`: a Hugging Face dataset, with `dataset_config` and a split mapping
  (default train=train, eval=validation, test=test, format=train). It is read from the local
  Hugging Face cache first, with the hub switched off; only a dataset that is not cached is
  fetched, which needs network access.

`input_field` / `target_field` name the columns (default `input`, and `target` or `output`);
`metric` picks the answer rule (answers.METRICS or a dataset name) where the folder name does
not (bbh/<task>, mmlu/<subject>, gsm8k, wsc, webnlg; anything else is exact match). Local
JSON and JSONL files are read here, so that a bad line is named with its number; CSV and
Parquet go through `datasets`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..core import Example
from ..errors import DataError
from .builtin import BUILTIN_TASKS, builtin_splits

SPLITS = ("train", "eval", "test", "few_shot_examples", "format")
DATASETS = ("bbh", "mmlu", "gsm8k", "wsc", "webnlg")  # folder names whose answer rules are known
FILE_FORMATS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}
HUB_PREFIX = "hf:"
HUB_SPLITS = {"train": "train", "eval": "validation", "test": "test", "format": "train"}
DEFAULT_PROMPT = "Let's think step by step."
MMLU_HEADER = "The following are multiple choice questions about"


@dataclass(frozen=True)
class Task:
    name: str
    source: str  # "builtin:<name>" or the directory
    rule: Any  # an AnswerRule: followup(), normalize(), is_correct(), score(), two_rounds
    splits: dict[str, tuple[Example, ...]] = field(repr=False)
    initial_prompt: str = DEFAULT_PROMPT
    max_tokens: tuple[int, int] = (256, 100)  # round 1, round 2 (GPO_SPEC 4.1)
    # Optimize options this task suggests where the user gives none (built-in tasks are sized
    # for a laptop); explicit options always win.
    optimize_defaults: dict = field(default_factory=dict)
    # The loading options given with it (fields, metric, hub config and splits), so that a run's
    # config.json can load the same task again on resume.
    options: dict = field(default_factory=dict)

    def split(self, name: str, limit: int | None = None) -> tuple[Example, ...]:
        if name not in self.splits:
            if Path(self.source).is_dir():
                where = f"{Path(self.source) / (name + '.jsonl')} not found"
            elif self.source.startswith(HUB_PREFIX):
                where = "not mapped (see --splits)"
            else:
                where = f"not in {self.source}"
            known = ", ".join(s for s in SPLITS if s in self.splits)
            raise DataError(f"task {self.name!r} has no {name!r} split: {where} (it has: {known or 'none'})")
        examples = self.splits[name]
        if not examples:
            raise DataError(f"task {self.name!r}: the {name!r} split is empty")
        return examples[:limit] if limit else examples

    def with_holdout(self, count: int) -> "Task":
        """The same task with the last `count` eval examples held out as its test split.

        For data shipped without a test split (the GPO-layout copies in ../shared/data): the
        held-out examples are never seen during optimization, so the test score stays an
        unbiased estimate. A task that has a test split keeps it; asking to hold out as many
        examples as the eval split has is an error (nothing would be left to optimize on)."""
        if "test" in self.splits:
            return self
        dev = self.split("eval")
        if not 0 < count < len(dev):
            raise DataError(f"task {self.name!r}: --test-holdout {count} must be between 1 and "
                            f"{len(dev) - 1} (the eval split has {len(dev)} examples)")
        held_out = {e.id for e in dev[-count:]}
        splits = dict(self.splits, eval=dev[:-count], test=dev[-count:])
        if "format" in splits:  # exemplars drawn from the dev rows must not show a test question
            splits["format"] = tuple(e for e in splits["format"] if e.id not in held_out)
        return replace(self, splits=splits, source=self.source)

    def adapt_prompt(self, prompt: str) -> str:
        """GPO_SPEC 1.4: an MMLU prompt starting with the generic header gets the subject."""
        if self.initial_prompt.startswith(MMLU_HEADER) and prompt.startswith(MMLU_HEADER):
            return self.initial_prompt
        return prompt


def _fields(record: Any, where: str, input_field: str | None, target_field: str | None) -> tuple[str, Any]:
    """The (input, target) of one record; a missing field names itself and the fields there are."""
    if not isinstance(record, dict):
        raise DataError(f"{where}: expected a JSON object with fields, got {type(record).__name__}")
    present = ", ".join(map(str, record)) or "none"
    name = input_field or "input"
    if name not in record:
        hint = "" if input_field else " (choose one with --input-field)"
        raise DataError(f"{where}: missing field {name!r}{hint}; fields present: {present}")
    if target_field:
        if target_field not in record:
            raise DataError(f"{where}: missing field {target_field!r}; fields present: {present}")
        target = record[target_field]
    elif "target" in record:
        target = record["target"]
    elif "output" in record:
        target = record["output"]
    else:
        raise DataError(f"{where}: missing field 'target' (or 'output'; choose one with --target-field); "
                        f"fields present: {present}")
    if record[name] is None or target is None:
        raise DataError(f"{where}: field {name if record[name] is None else (target_field or 'target')!r} is empty")
    return str(record[name]), target


def read_jsonl(path: Path, split: str, *, input_field: str | None = None,
               target_field: str | None = None) -> tuple[Example, ...]:
    """A JSON-lines file; a `.json` file may instead hold one list of objects."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise DataError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    except OSError as error:
        raise DataError(f"{path}: cannot read ({error.strerror})") from None
    if path.suffix == ".json" and text.lstrip().startswith("["):
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as error:
            raise DataError(f"{path}:{error.lineno}: malformed JSON ({error.msg})") from None
        numbered = [(f"{path}: item {i}", i, row) for i, row in enumerate(rows, 1)]
    else:
        numbered = []
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                numbered.append((f"{path}:{number}", number, json.loads(line)))
            except json.JSONDecodeError as error:
                raise DataError(f"{path}:{number}: malformed JSON ({error.msg})") from None
    examples = []
    for where, number, record in numbered:
        question, target = _fields(record, where, input_field, target_field)
        examples.append(Example(id=f"{split}-{number}", input=question, target=target))
    return tuple(examples)


def _read_with_datasets(path: Path, split: str, input_field: str | None,
                        target_field: str | None) -> tuple[Example, ...]:
    """A CSV or Parquet file through `datasets` (local files need no network)."""
    import datasets

    if path.suffix == ".csv":
        with path.open("rb") as handle:
            if sum(1 for line in handle if line.strip()) <= 1:
                return ()  # a header alone (or nothing): an empty split, reported by its user
    datasets.logging.set_verbosity_error()
    datasets.disable_progress_bars()
    try:
        # Offline: a local file needs no hub, and `datasets` would otherwise send a download-count
        # request for its packaged "csv"/"parquet" loader.
        with _HubOffline():
            table = datasets.load_dataset(FILE_FORMATS[path.suffix], data_files=str(path), split="train")
    except Exception as error:  # pandas / pyarrow errors of every kind: name the file, keep one line
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DataError(f"{path}: cannot read as {path.suffix[1:].upper()} ({message})") from None
    header_lines = 1 if path.suffix == ".csv" else 0
    return tuple(
        Example(id=f"{split}-{i}", input=question, target=target)
        for i, record in enumerate(table, 1)
        for question, target in [_fields(record, f"{path}: row {i + header_lines}", input_field, target_field)]
    )


def read_split_file(path: Path, split: str, *, input_field: str | None = None,
                    target_field: str | None = None) -> tuple[Example, ...]:
    if FILE_FORMATS.get(path.suffix) == "json":
        return read_jsonl(path, split, input_field=input_field, target_field=target_field)
    return _read_with_datasets(path, split, input_field, target_field)


def _dataset_of(directory: Path) -> str | None:
    """Which known dataset a GPO-layout folder is: by its parent (bbh, mmlu) or its own name."""
    from .answers import BBH_TASKS

    parent, name = directory.parent.name.lower(), directory.name.lower()
    if parent in ("bbh", "big-bench-hard") or name in BBH_TASKS:
        return "bbh"
    if parent == "mmlu":
        return "mmlu"
    if name in ("gsm8k", "wsc", "webnlg"):
        return name
    return None


def _rule(dataset: str | None, name: str, metric: str | None):
    from .answers import rule_for, rule_for_metric

    try:
        if metric:
            return rule_for_metric(metric, name)
        return rule_for(dataset or "generic", name)
    except ValueError as error:
        raise DataError(str(error)) from None


def _initial_prompt(dataset: str | None, name: str) -> str:
    # GPO_SPEC 1.4: MMLU starts from a subject-specific header.
    if dataset == "mmlu":
        return f"{MMLU_HEADER} {name.replace('_', ' ')}."
    return DEFAULT_PROMPT


def _unknown_task(spec: str) -> DataError:
    known = ", ".join(sorted(BUILTIN_TASKS))
    return DataError(
        f"unknown task {spec!r}: not a built-in task ({known}), nor an existing directory or "
        f"{'/'.join(e[1:] for e in FILE_FORMATS)} file; directories whose answer rules are known: "
        f"{', '.join({'bbh': 'bbh/<task>', 'mmlu': 'mmlu/<subject>'}.get(d, d) for d in DATASETS)}; "
        f"a Hugging Face dataset is written {HUB_PREFIX}<id>")


def _hub_split_map(mapping: dict[str, str] | None) -> dict[str, str]:
    for role in mapping or {}:
        if role not in SPLITS:
            raise DataError(f"--splits: unknown split role {role!r}; known: {', '.join(SPLITS)}")
    explicit = set((mapping or {}).values())
    # A dataset split the user mapped to one role is not also used by a default role (eval=test
    # must not leave test=test behind: the test score would be the dev score).
    chosen = {role: name for role, name in HUB_SPLITS.items() if name not in explicit or role == "format"}
    chosen.update(mapping or {})
    return chosen


class _HubOffline:
    """Switch the Hugging Face libraries to offline mode for one block, so that reading a cached
    dataset opens no connection (by default `datasets` asks the hub for a newer version)."""

    def __enter__(self):
        import datasets.config
        import huggingface_hub.constants as hub

        self.saved = hub.HF_HUB_OFFLINE, datasets.config.HF_HUB_OFFLINE
        hub.HF_HUB_OFFLINE = datasets.config.HF_HUB_OFFLINE = True

    def __exit__(self, *exc):
        import datasets.config
        import huggingface_hub.constants as hub

        hub.HF_HUB_OFFLINE, datasets.config.HF_HUB_OFFLINE = self.saved


def _check_hub_reachable(label: str) -> None:
    """Fail at once, in one line, when the hub cannot be reached (instead of the libraries'
    retries with back-off, which take half a minute and print a warning each)."""
    import socket
    from urllib.parse import urlparse

    import huggingface_hub.constants as hub

    url = urlparse(hub.ENDPOINT)
    host, port = url.hostname or "huggingface.co", url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((host, port), timeout=5).close()
    except OSError as error:
        raise DataError(f"Hugging Face dataset {label} is not in the local cache and {host} cannot be reached "
                        f"({error.strerror or error}); connect to the network once, or use local files") from None


def _load_hub(dataset_id: str, config: str | None, mapping: dict[str, str] | None, input_field: str | None,
              target_field: str | None) -> dict[str, tuple[Example, ...]]:
    import datasets
    import huggingface_hub.constants as hub

    from huggingface_hub.utils import logging as hub_logging

    datasets.logging.set_verbosity_error()
    datasets.disable_progress_bars()
    hub_logging.set_verbosity_error()
    label = dataset_id + (f" (config {config!r})" if config else "")
    roles = _hub_split_map(mapping)  # a bad mapping fails before any loading
    try:
        with _HubOffline():
            loaded = datasets.load_dataset(dataset_id, config)
    except Exception as offline_error:
        if hub.HF_HUB_OFFLINE:  # the user asked for offline mode: do not try the network
            first = str(offline_error).strip().splitlines()[0] if str(offline_error).strip() else ""
            raise DataError(f"Hugging Face dataset {label} is not in the local cache and HF_HUB_OFFLINE is set"
                            f" ({first})") from None
        _check_hub_reachable(label)
        try:  # not cached: this is the one place where the project goes to the network
            loaded = datasets.load_dataset(dataset_id, config)
        except Exception as error:
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise DataError(f"cannot load Hugging Face dataset {label}: not in the local cache, and from the "
                            f"hub: {first}") from None
    available = ", ".join(loaded)
    splits = {}
    for role, name in roles.items():
        if name not in loaded:
            if role in (mapping or {}):
                raise DataError(f"Hugging Face dataset {label} has no split {name!r} (it has: {available})")
            continue
        splits[role] = tuple(
            Example(id=f"{name}-{i}", input=question, target=target)
            for i, record in enumerate(loaded[name], 1)
            for question, target in [_fields(record, f"{dataset_id}[{name}] row {i}", input_field, target_field)]
        )
    if "eval" not in splits:
        raise DataError(f"Hugging Face dataset {label} has no split {roles['eval']!r} for the eval (dev) split "
                        f"(it has: {available}); map one with --splits eval=NAME")
    return splits


def load_task(spec: str, *, seed: int = 0, input_field: str | None = None, target_field: str | None = None,
              metric: str | None = None, dataset_config: str | None = None,
              splits: dict[str, str] | None = None) -> Task:
    """A built-in task, a directory of split files, one data file, or `hf:<id>` (module docstring)."""
    options = {k: v for k, v in dict(input_field=input_field, target_field=target_field, metric=metric,
                                     dataset_config=dataset_config, splits=splits).items() if v}
    if spec in BUILTIN_TASKS:
        if options:
            raise DataError(f"the built-in task {spec!r} takes no data options "
                            f"(got {', '.join('--' + k.replace('_', '-') for k in options)})")
        built = {k: tuple(v) for k, v in builtin_splits(spec, seed).items()}
        builtin = BUILTIN_TASKS[spec]
        return Task(name=spec, source=f"builtin:{spec}", rule=builtin.rule, splits=built,
                    initial_prompt=builtin.initial_prompt, max_tokens=builtin.max_tokens,
                    optimize_defaults=dict(builtin.optimize_defaults))
    if (dataset_config or splits) and not spec.startswith(HUB_PREFIX):
        raise DataError(f"--dataset-config and --splits apply to Hugging Face datasets ({HUB_PREFIX}<id>), "
                        f"not to {spec!r}")
    if spec.startswith(HUB_PREFIX):
        dataset_id = spec[len(HUB_PREFIX):].strip()
        if not dataset_id:
            raise DataError(f"{spec!r}: write the Hugging Face dataset id after {HUB_PREFIX!r}, e.g. hf:openai/gsm8k")
        loaded = _load_hub(dataset_id, dataset_config, splits, input_field, target_field)
        base = dataset_id.rsplit("/", 1)[-1]
        name = base + (f"-{dataset_config}" if dataset_config else "")
        # The hub copies of GSM8K, WSC and WebNLG keep their answer rules (GSM8K's "#### n"
        # answers are understood); other datasets need --metric.
        dataset = base.lower() if base.lower() in ("gsm8k", "wsc", "webnlg") else None
        return Task(name=name, source=spec, rule=_rule(dataset, name, metric), splits=loaded,
                    initial_prompt=DEFAULT_PROMPT, options=options)
    path = Path(spec).expanduser()
    if path.is_file():
        if path.suffix not in FILE_FORMATS:
            raise DataError(f"{path}: unsupported file type {path.suffix or '(none)'!r}; "
                            f"use {', '.join(FILE_FORMATS)} or a directory of split files")
        rows = read_split_file(path, "eval", input_field=input_field, target_field=target_field)
        if not rows:
            raise DataError(f"{path}: no examples (the file is empty)")
        return Task(name=path.stem, source=str(path.resolve()), rule=_rule(None, path.stem, metric),
                    splits={"eval": rows, "format": rows}, initial_prompt=DEFAULT_PROMPT, options=options)
    if not path.is_dir():
        raise _unknown_task(spec)
    loaded = {}
    for split in SPLITS:
        found = [path / f"{split}{ext}" for ext in FILE_FORMATS if (path / f"{split}{ext}").is_file()]
        if len(found) > 1:
            raise DataError(f"{path}: several files for the {split!r} split ({', '.join(f.name for f in found)}); "
                            "keep one")
        if found:
            loaded[split] = read_split_file(found[0], split, input_field=input_field, target_field=target_field)
    if not loaded:
        raise DataError(f"{path}: no split files found (expected {', '.join(s + '.jsonl' for s in SPLITS)}, "
                        f"or .json/.csv/.parquet)")
    dataset = _dataset_of(path)
    return Task(name=path.name, source=str(path.resolve()), rule=_rule(dataset, path.name, metric),
                splits=loaded, initial_prompt=_initial_prompt(dataset, path.name), options=options)
