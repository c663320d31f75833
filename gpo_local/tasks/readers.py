"""Task readers: local split files (JSON lines, JSON, CSV, Parquet) into Examples. A bad line
is named with its number; CSV and Parquet go through `datasets`, with the hub switched off."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from gpo_local.core import Example
from gpo_local.errors import DataError, OptionValue
from gpo_local.tasks.offline import HubOffline

SPLITS = ("train", "eval", "test", "few_shot_examples", "format")
FILE_FORMATS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}


def _blank(value: Any) -> bool:
    """None, NaN (a missing cell of a DataFrame or CSV) or text that is only white space."""
    return (
        value is None
        or (isinstance(value, float) and math.isnan(value))
        or (isinstance(value, str) and not value.strip())
    )


def _scalar(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, (str, int))


def checked_question(value: Any, where: str, field: str) -> str:
    """A question is text (a number counts: it has one text form); empty, white space or
    structured values are refused, naming the row and the field."""
    if _blank(value):
        raise DataError(f"{where}: field {field!r} is empty: every question needs text")
    if isinstance(value, bool) or not _scalar(value):
        raise DataError(
            f"{where}: field {field!r} is {type(value).__name__} {_clip(value)}, not text: "
            "a question is one text"
        )
    return str(value)


def checked_target(value: Any, where: str, field: str, *, structured: bool = False) -> Any:
    """A target is a text, number or boolean, or a non-empty list of those (the accepted answers,
    or ROUGE-L's references, as every answer rule reads a list). Empty ones are refused (an empty
    reply would match them); so are dicts and nested lists, which no answer rule defines, unless
    `structured` (a metric of the user's own, which decides what its targets mean)."""
    if structured:
        if _blank(value) or (isinstance(value, (list, tuple, dict)) and not value):
            raise DataError(f"{where}: field {field!r} is empty")
        return value
    answers = list(value) if isinstance(value, (list, tuple)) else [value]
    if not answers:
        raise DataError(f"{where}: field {field!r} is an empty list: give at least one accepted answer")
    for answer in answers:
        if _blank(answer):
            in_list = " in its list" if isinstance(value, (list, tuple)) else ""
            raise DataError(
                f"{where}: field {field!r} is empty{in_list}: an empty reply would count as "
                "right; give the expected answer"
            )
        if not _scalar(answer):
            kind = type(answer).__name__
            raise DataError(
                f"{where}: field {field!r} holds {kind} {_clip(answer)}: a target is a text or a "
                "list of accepted answers (a metric of your own, in the Python API, may define "
                "other targets)"
            )
    return value


def _clip(value: Any, width: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def record_fields(
    record: Any,
    where: str,
    input_field: str | None,
    target_field: str | None,
    *,
    structured_targets: bool = False,
) -> tuple[str, Any]:
    """The (input, target) of one record; a missing field names itself and the fields there are,
    an empty or structured value names itself too (`checked_question`, `checked_target`)."""
    if not isinstance(record, dict):
        raise DataError(f"{where}: expected a JSON object with fields, got {type(record).__name__}")
    present = ", ".join(map(str, record)) or "none"
    name = input_field or "input"
    if name not in record:
        hint = () if input_field else (" (choose one with ", OptionValue("input_field"), ")")
        raise DataError(f"{where}: missing field {name!r}", *hint, f"; fields present: {present}")
    if target_field:
        if target_field not in record:
            raise DataError(f"{where}: missing field {target_field!r}; fields present: {present}")
        target = record[target_field]
    elif "target" in record:
        target = record["target"]
    elif "output" in record:
        target = record["output"]
    else:
        raise DataError(
            f"{where}: missing field 'target' (or 'output'; choose one with ",
            OptionValue("target_field"),
            f"); fields present: {present}",
        )
    target_name = target_field or ("target" if "target" in record else "output")
    question = checked_question(record[name], where, name)
    return question, checked_target(target, where, target_name, structured=structured_targets)


def read_jsonl(
    path: Path, split: str, *, input_field: str | None = None, target_field: str | None = None
) -> tuple[Example, ...]:
    """A JSON-lines file; a `.json` file may instead hold one list of objects."""
    try:
        text = path.read_text(encoding="utf-8-sig")  # a byte-order mark is read, as for a CSV file
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
        # Lines end at "\n" only: str.splitlines() would also cut at U+0085 or U+2028 inside a JSON
        # string (MMLU's nutrition questions hold a U+0085).
        for number, line in enumerate(text.split("\n"), 1):
            if not line.strip():
                continue
            try:
                numbered.append((f"{path}:{number}", number, json.loads(line)))
            except json.JSONDecodeError as error:
                raise DataError(f"{path}:{number}: malformed JSON ({error.msg})") from None
    examples = []
    for where, number, record in numbered:
        question, target = record_fields(record, where, input_field, target_field)
        examples.append(Example(id=f"{split}-{number}", input=question, target=target))
    return tuple(examples)


def read_with_datasets(
    path: Path, split: str, input_field: str | None, target_field: str | None
) -> tuple[Example, ...]:
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
        with HubOffline():
            table = datasets.load_dataset(FILE_FORMATS[path.suffix], data_files=str(path), split="train")
    except Exception as error:  # pandas / pyarrow errors of every kind: name the file, keep one line
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DataError(f"{path}: cannot read as {path.suffix[1:].upper()} ({message})") from None
    header_lines = 1 if path.suffix == ".csv" else 0
    return tuple(
        Example(id=f"{split}-{i}", input=question, target=target)
        for i, record in enumerate(table, 1)
        for question, target in [
            record_fields(record, f"{path}: row {i + header_lines}", input_field, target_field)
        ]
    )


def read_split_file(
    path: Path, split: str, *, input_field: str | None = None, target_field: str | None = None
) -> tuple[Example, ...]:
    if FILE_FORMATS.get(path.suffix) == "json":
        return read_jsonl(path, split, input_field=input_field, target_field=target_field)
    return read_with_datasets(path, split, input_field, target_field)
