"""Tasks from in-memory data (the Python API): a list of dicts, a pandas DataFrame or a
`datasets.Dataset`, or a mapping of split names to those.

One collection of rows is the eval (dev) split, and the format exemplars are drawn from it,
as for one data file on the command line; a mapping names the splits itself (train, eval,
test, format, as in the GPO layout; format defaults to train, else eval). `input_field` and
`target_field` name the fields as for files.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from gpo_local.core import Example
from gpo_local.errors import DataError
from gpo_local.tasks import DEFAULT_PROMPT, Task, task_rule
from gpo_local.tasks.answer_length import family_max_tokens
from gpo_local.tasks.readers import SPLITS, record_fields
from gpo_local.tasks.rules import MetricRule


def _records(rows: Any, where: str) -> list:
    if hasattr(rows, "to_dict") and hasattr(rows, "columns"):  # a pandas DataFrame
        return rows.to_dict("records")
    if isinstance(rows, (str, bytes)) or not hasattr(rows, "__iter__"):
        raise DataError(
            f"{where}: expected rows (a list of dicts, a DataFrame or a datasets.Dataset), "
            f"got {type(rows).__name__}"
        )
    return list(rows)  # a list, or a datasets.Dataset (iterates dicts)


def _examples(
    rows: Any,
    split: str,
    name: str,
    input_field: str | None,
    target_field: str | None,
    structured_targets: bool = False,
) -> tuple:
    records = _records(rows, f"task {name!r} {split} split")
    if not records:
        raise DataError(f"task {name!r}: the {split!r} split is empty")
    out = []
    for number, record in enumerate(records, 1):
        question, target = record_fields(
            record,
            f"task {name!r} {split} row {number}",
            input_field,
            target_field,
            structured_targets=structured_targets,
        )
        out.append(Example(id=f"{split}-{number}", input=question, target=target))
    return tuple(out)


def task_from_rows(
    data: Any,
    *,
    name: str = "data",
    input_field: str | None = None,
    target_field: str | None = None,
    metric: str | Callable | None = None,
    initial_prompt: str = DEFAULT_PROMPT,
) -> Task:
    """A Task from in-memory rows (module docstring); `metric` is a metric name or a callable
    `(prediction, example) -> float in [0, 1]`."""
    if isinstance(data, Mapping):
        unknown = [key for key in data if key not in SPLITS]
        if unknown:
            raise DataError(f"task {name!r}: unknown split {unknown[0]!r}; known: {', '.join(SPLITS)}")
        splits = {
            key: _examples(rows, key, name, input_field, target_field, callable(metric))
            for key, rows in data.items()
        }
        if "eval" not in splits:
            raise DataError(f"task {name!r}: no 'eval' split (the dev rows the prompts are scored on)")
        splits.setdefault("format", splits.get("train", splits["eval"]))
    else:
        rows = _examples(data, "eval", name, input_field, target_field, callable(metric))
        splits = {"eval": rows, "format": rows}
    rule = (
        MetricRule(metric) if callable(metric) else task_rule(None, name, metric.lower() if metric else None)
    )
    return Task(
        name=name,
        source=f"memory:{name}",
        rule=rule,
        splits=splits,
        initial_prompt=initial_prompt,
        max_tokens=family_max_tokens(rule),
    )
