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

Imports only the core modules (gpo_local.core, gpo_local.errors).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from gpo_local.core import Example
from gpo_local.errors import DataError, OptionValue
from gpo_local.tasks.answer_length import family_max_tokens
from gpo_local.tasks.answers import BBH_TASKS, rule_for, rule_for_metric
from gpo_local.tasks.builtin import BUILTIN_TASKS, builtin_splits
from gpo_local.tasks.hub import HUB_PREFIX, load_hub
from gpo_local.tasks.readers import FILE_FORMATS, SPLITS, read_split_file

DATASETS = ("bbh", "mmlu", "gsm8k", "wsc", "webnlg")  # folder names whose answer rules are known
DEFAULT_PROMPT = "Let's think step by step."
MMLU_HEADER = "The following are multiple choice questions about"


@dataclass(frozen=True)
class Task:
    name: str
    source: str  # "builtin:<name>" or the directory
    rule: Any  # an AnswerRule: followup(), normalize(), is_correct(), score(), two_rounds
    splits: dict[str, tuple[Example, ...]] = field(repr=False)
    initial_prompt: str = DEFAULT_PROMPT
    max_tokens: tuple[int, int] = (256, 100)  # round 1, round 2 (the original evaluation's limits)
    # Optimize options this task suggests where the user gives none (built-in tasks are sized
    # for a laptop); explicit options always win.
    optimize_defaults: dict = field(default_factory=dict)
    # Models this task suggests where the user names none ({"task_model": catalog name}).
    suggested_models: dict = field(default_factory=dict)
    # A built-in task's human reference instruction (the `reference` method's prompt), else None.
    reference_prompt: str | None = None
    # The loading options given with it (fields, metric, hub config and splits), so that a run's
    # config.json can load the same task again on resume.
    options: dict = field(default_factory=dict)

    def split(self, name: str, limit: int | None = None) -> tuple[Example, ...]:
        if name not in self.splits:
            if Path(self.source).is_dir():
                where = (f"{Path(self.source) / (name + '.jsonl')} not found",)
            elif self.source.startswith(HUB_PREFIX):
                where = ("not mapped (see ", OptionValue("splits"), ")")
            else:
                where = (f"not in {self.source}",)
            known = ", ".join(s for s in SPLITS if s in self.splits)
            raise DataError(
                f"task {self.name!r} has no {name!r} split: ", *where, f" (it has: {known or 'none'})"
            )
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
            raise DataError(
                f"task {self.name!r}: ",
                OptionValue("test_holdout", count),
                f" must be between 1 and {len(dev) - 1} (the eval split has {len(dev)} examples)",
            )
        held_out = {e.id for e in dev[-count:]}
        splits = dict(self.splits, eval=dev[:-count], test=dev[-count:])
        if "format" in splits:  # exemplars drawn from the dev rows must not show a test question
            splits["format"] = tuple(e for e in splits["format"] if e.id not in held_out)
        return replace(self, splits=splits, source=self.source)

    def adapt_prompt(self, prompt: str) -> str:
        """As in the original code: an MMLU prompt starting with the generic header gets the subject."""
        if self.initial_prompt.startswith(MMLU_HEADER) and prompt.startswith(MMLU_HEADER):
            return self.initial_prompt
        return prompt


def _dataset_of(directory: Path) -> str | None:
    """Which known dataset a GPO-layout folder is: by its parent (bbh, mmlu) or its own name."""

    parent, name = directory.parent.name.lower(), directory.name.lower()
    if parent in ("bbh", "big-bench-hard") or name in BBH_TASKS:
        return "bbh"
    if parent == "mmlu":
        return "mmlu"
    if name in ("gsm8k", "wsc", "webnlg"):
        return name
    return None


def task_rule(dataset: str | None, name: str, metric: str | None):

    try:
        if metric:
            return rule_for_metric(metric, name)
        return rule_for(dataset or "generic", name)
    except ValueError as error:
        raise DataError(str(error)) from None


def _initial_prompt(dataset: str | None, name: str) -> str:
    # As in the original code, MMLU starts from a subject-specific header.
    if dataset == "mmlu":
        return f"{MMLU_HEADER} {name.replace('_', ' ')}."
    return DEFAULT_PROMPT


def _unknown_task(spec: str) -> DataError:
    known = ", ".join(sorted(BUILTIN_TASKS))
    return DataError(
        f"unknown task {spec!r}: not a built-in task ({known}), nor an existing directory or "
        f"{'/'.join(e[1:] for e in FILE_FORMATS)} file; directories whose answer rules are known: "
        f"{', '.join({'bbh': 'bbh/<task>', 'mmlu': 'mmlu/<subject>'}.get(d, d) for d in DATASETS)}; "
        f"a Hugging Face dataset is written {HUB_PREFIX}<id>"
    )


def load_task(
    spec: str,
    *,
    seed: int = 0,
    input_field: str | None = None,
    target_field: str | None = None,
    metric: str | None = None,
    dataset_config: str | None = None,
    splits: dict[str, str] | None = None,
) -> Task:
    """A built-in task, a directory of split files, one data file, or `hf:<id>` (module docstring)."""
    options = {
        k: v
        for k, v in dict(
            input_field=input_field,
            target_field=target_field,
            metric=metric,
            dataset_config=dataset_config,
            splits=splits,
        ).items()
        if v
    }
    if spec in BUILTIN_TASKS:
        return _builtin_task(spec, seed, options)
    if (dataset_config or splits) and not spec.startswith(HUB_PREFIX):
        raise DataError(
            OptionValue("dataset_config"),
            " and ",
            OptionValue("splits"),
            f" apply to Hugging Face datasets ({HUB_PREFIX}<id>), not to {spec!r}",
        )
    if spec.startswith(HUB_PREFIX):
        return _hub_task(spec, options, input_field, target_field, metric, dataset_config, splits)
    path = Path(spec).expanduser()
    if path.is_file():
        return _file_task(path, options, input_field, target_field, metric)
    if not path.is_dir():
        raise _unknown_task(spec)
    return _directory_task(path, options, input_field, target_field, metric)


def _builtin_task(spec: str, seed: int, options: dict) -> Task:
    """A built-in task, its splits generated from `seed`; it takes no data options."""
    if options:
        named = [part for key in options for part in (", ", OptionValue(key))][1:]
        raise DataError(f"the built-in task {spec!r} takes no data options (got ", *named, ")")
    built = {k: tuple(v) for k, v in builtin_splits(spec, seed).items()}
    builtin = BUILTIN_TASKS[spec]
    return Task(
        name=spec,
        source=f"builtin:{spec}",
        rule=builtin.rule,
        splits=built,
        initial_prompt=builtin.initial_prompt,
        max_tokens=builtin.max_tokens,
        optimize_defaults=dict(builtin.optimize_defaults),
        suggested_models=dict(builtin.suggested_models),
        reference_prompt=builtin.reference_prompt,
    )


def _hub_task(
    spec: str,
    options: dict,
    input_field: str | None,
    target_field: str | None,
    metric: str | None,
    dataset_config: str | None,
    splits: dict[str, str] | None,
) -> Task:
    """A Hugging Face dataset, `hf:<id>`."""
    dataset_id = spec[len(HUB_PREFIX) :].strip()
    if not dataset_id:
        raise DataError(
            f"{spec!r}: write the Hugging Face dataset id after {HUB_PREFIX!r}, e.g. hf:openai/gsm8k"
        )
    loaded = load_hub(dataset_id, dataset_config, splits, input_field, target_field)
    base = dataset_id.rsplit("/", 1)[-1]
    name = base + (f"-{dataset_config}" if dataset_config else "")
    # The hub copies of GSM8K, WSC and WebNLG keep their answer rules (GSM8K's "#### n"
    # answers are understood); other datasets need --metric.
    dataset = base.lower() if base.lower() in ("gsm8k", "wsc", "webnlg") else None
    rule = task_rule(dataset, name, metric)
    return Task(
        name=name,
        source=spec,
        rule=rule,
        splits=loaded,
        initial_prompt=DEFAULT_PROMPT,
        options=options,
        max_tokens=family_max_tokens(rule),
    )


def _file_task(
    path: Path, options: dict, input_field: str | None, target_field: str | None, metric: str | None
) -> Task:
    """One data file: its rows are the eval split and the format exemplars."""
    if path.suffix not in FILE_FORMATS:
        raise DataError(
            f"{path}: unsupported file type {path.suffix or '(none)'!r}; "
            f"use {', '.join(FILE_FORMATS)} or a directory of split files"
        )
    rows = read_split_file(path, "eval", input_field=input_field, target_field=target_field)
    if not rows:
        raise DataError(f"{path}: no examples (the file is empty)")
    rule = task_rule(None, path.stem, metric)
    return Task(
        name=path.stem,
        source=str(path.resolve()),
        rule=rule,
        splits={"eval": rows, "format": rows},
        initial_prompt=DEFAULT_PROMPT,
        options=options,
        max_tokens=family_max_tokens(rule),
    )


def _directory_task(
    path: Path, options: dict, input_field: str | None, target_field: str | None, metric: str | None
) -> Task:
    """A directory of split files (one file per split, in any of FILE_FORMATS)."""
    loaded = {}
    for split in SPLITS:
        found = [path / f"{split}{ext}" for ext in FILE_FORMATS if (path / f"{split}{ext}").is_file()]
        if len(found) > 1:
            raise DataError(
                f"{path}: several files for the {split!r} split ({', '.join(f.name for f in found)}); "
                "keep one"
            )
        if found:
            loaded[split] = read_split_file(
                found[0], split, input_field=input_field, target_field=target_field
            )
    if not loaded:
        raise DataError(
            f"{path}: no split files found (expected {', '.join(s + '.jsonl' for s in SPLITS)}, "
            f"or .json/.csv/.parquet)"
        )
    dataset = _dataset_of(path)
    rule = task_rule(dataset, path.name, metric)
    return Task(
        name=path.name,
        source=str(path.resolve()),
        rule=rule,
        splits=loaded,
        initial_prompt=_initial_prompt(dataset, path.name),
        options=options,
        max_tokens=family_max_tokens(rule),
    )
