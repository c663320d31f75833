"""Tasks: where the examples come from and how answers are judged.

A task is a name, its splits (train / eval / test / format / few_shot_examples), an answer
rule (tasks/answers.py, or a rule of a built-in task), a default initial prompt and the
generation limits of its two rounds. TASK on the command line is a built-in task name or a
directory in the GPO layout (`<split>.jsonl` files with `input` and `target` or `output`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..core import Example
from ..errors import DataError
from .builtin import BUILTIN_TASKS, SENTIMENT_RULE, builtin_splits

SPLITS = ("train", "eval", "test", "few_shot_examples", "format")
DATASETS = ("bbh", "mmlu", "gsm8k", "wsc")  # folder names whose answer rules are known
DEFAULT_PROMPT = "Let's think step by step."


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

    def split(self, name: str, limit: int | None = None) -> tuple[Example, ...]:
        if name not in self.splits:
            where = Path(self.source) / f"{name}.jsonl" if not self.source.startswith("builtin:") else self.source
            raise DataError(f"task {self.name!r} has no {name!r} split: {where} not found")
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
        splits = dict(self.splits, eval=dev[:-count], test=dev[-count:])
        return replace(self, splits=splits, source=self.source)


def read_jsonl(path: Path, split: str) -> tuple[Example, ...]:
    examples = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise DataError(f"{path}:{number}: malformed JSON ({error.msg})") from None
            if not isinstance(record, dict) or "input" not in record:
                raise DataError(f"{path}:{number}: missing field 'input'")
            if "target" in record:
                target = record["target"]
            elif "output" in record:
                target = record["output"]
            else:
                raise DataError(f"{path}:{number}: missing field 'target' (or 'output')")
            examples.append(Example(id=f"{split}-{number}", input=str(record["input"]), target=target))
    return tuple(examples)


def _rule_for_directory(directory: Path):
    from .answers import BBH_TASKS, rule_for

    parent = directory.parent.name.lower()
    name = directory.name.lower()
    if parent in ("bbh", "big-bench-hard") or name in BBH_TASKS:
        return rule_for("bbh", name)
    if parent == "mmlu":
        return rule_for("mmlu", name)
    if name in ("gsm8k", "wsc"):
        return rule_for(name, name)
    return rule_for("generic", name)


def _initial_prompt(directory: Path) -> str:
    # GPO_SPEC 1.4: MMLU starts from a subject-specific header.
    if directory.parent.name.lower() == "mmlu":
        return f"The following are multiple choice questions about {directory.name.replace('_', ' ')}."
    return DEFAULT_PROMPT


def load_task(spec: str, *, seed: int = 0) -> Task:
    """A built-in task name or a GPO-layout directory."""
    if spec in BUILTIN_TASKS:
        splits = {k: tuple(v) for k, v in builtin_splits(spec, seed).items()}
        return Task(name=spec, source=f"builtin:{spec}", rule=SENTIMENT_RULE, splits=splits,
                    initial_prompt=BUILTIN_TASKS[spec].initial_prompt, max_tokens=(48, 8),
                    optimize_defaults=dict(BUILTIN_TASKS[spec].optimize_defaults))
    directory = Path(spec).expanduser()
    if not directory.is_dir():
        known = ", ".join(sorted(BUILTIN_TASKS))
        raise DataError(f"unknown task {spec!r}: not a built-in task ({known}) nor a directory")
    splits = {}
    for split in SPLITS:
        path = directory / f"{split}.jsonl"
        if path.is_file():
            splits[split] = read_jsonl(path, split)
    if not splits:
        raise DataError(f"{directory}: no split files found (expected {', '.join(s + '.jsonl' for s in SPLITS)})")
    return Task(name=directory.name, source=str(directory.resolve()), rule=_rule_for_directory(directory),
                splits=splits, initial_prompt=_initial_prompt(directory))
