"""What a question and a target may be (tasks/readers.py): text questions, non-empty targets,
lists as accepted answers, dicts only for a metric of the user's own; refused values are one line
naming the file and row, before any model loads."""

import json
import re

import pytest
from click.testing import CliRunner

import gpo_local
from gpo_local.app.cli import main
from gpo_local.errors import DataError
from gpo_local.tasks import load_task


def write_jsonl(path, *rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


REFUSED = {
    "empty question": ({"input": "", "target": "a"}, r"field 'input' is empty: every question needs text"),
    "white-space question": (
        {"input": " \t\n", "target": "a"},
        r"field 'input' is empty: every question needs text",
    ),
    "list question": (
        {"input": ["a", "b"], "target": "a"},
        r"field 'input' is list \['a', 'b'\], not text: a question is one text",
    ),
    "dict question": ({"input": {"q": 1}, "target": "a"}, r"field 'input' is dict \{'q': 1\}, not text"),
    "boolean question": ({"input": True, "target": "a"}, r"field 'input' is bool True, not text"),
    "null question": ({"input": None, "target": "a"}, r"field 'input' is empty"),
    "empty target": (
        {"input": "q", "target": ""},
        r"field 'target' is empty: an empty reply would count as right",
    ),
    "white-space output": (
        {"input": "q", "output": "  "},
        r"field 'output' is empty: an empty reply would count",
    ),
    "empty list target": (
        {"input": "q", "target": []},
        r"field 'target' is an empty list: give at least one",
    ),
    "empty answer in a list": ({"input": "q", "target": ["a", ""]}, r"field 'target' is empty in its list"),
    "dict target": (
        {"input": "q", "target": {"answer": "a"}},
        r"field 'target' holds dict \{'answer': 'a'\}: a target is a text or a list of accepted answers",
    ),
    "nested list target": ({"input": "q", "target": [["a"]]}, r"field 'target' holds list \['a'\]"),
}


@pytest.mark.parametrize("case", REFUSED)
def test_a_refused_row_is_one_line_naming_file_and_row(case, tmp_path):
    row, expected = REFUSED[case]
    path = write_jsonl(tmp_path / "data.jsonl", {"input": "fine", "target": "a"}, row)
    result = CliRunner().invoke(main, ["eval", str(path), "--prompt", "x"])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    lines = [line for line in result.output.splitlines() if line.startswith("Error: ")]
    assert len(lines) == 1 and "Traceback" not in result.output
    assert re.fullmatch(re.escape(f"Error: {path}:2: ") + expected + ".*", lines[0]), lines[0]


@pytest.mark.parametrize("case", ["empty question", "dict target", "empty target"])
def test_in_memory_rows_follow_the_same_rules(case):
    row, expected = REFUSED[case]
    with pytest.raises(DataError, match="task 'data' eval row 2: " + expected):
        gpo_local.load_task([{"input": "fine", "target": "a"}, row])


def test_a_metric_of_ones_own_defines_its_structured_targets():
    def metric(prediction, example):
        return float(prediction == example.target["answer"])

    task = gpo_local.load_task([{"input": "q", "target": {"answer": "a", "why": "b"}}], metric=metric)
    assert task.split("eval")[0].target == {"answer": "a", "why": "b"}
    with pytest.raises(DataError, match="field 'target' is empty"):
        gpo_local.load_task([{"input": "q", "target": {}}], metric=metric)


def test_accepted_values(tmp_path):
    path = write_jsonl(
        tmp_path / "data.jsonl",
        {"input": "q1", "target": ["yes", "y"]},
        {"input": 17, "target": 4},
        {"input": "q3", "target": False},
        {"input": "q4", "output": "x"},
    )
    task = load_task(str(path))
    assert [(e.input, e.target) for e in task.split("eval")] == [
        ("q1", ["yes", "y"]),
        ("17", 4),
        ("q3", False),
        ("q4", "x"),
    ]
    assert task.rule.grade_example("y", task.split("eval")[0]) == 1.0  # a list holds the accepted answers


def test_a_jsonl_file_with_a_byte_order_mark_is_read_like_a_csv_file(tmp_path):
    jsonl = tmp_path / "bom.jsonl"
    jsonl.write_bytes(b"\xef\xbb\xbf" + b'{"input": "q", "target": "a"}\n')
    csv = tmp_path / "bom.csv"
    csv.write_bytes(b"\xef\xbb\xbfinput,target\nq,a\n")
    assert [(e.input, e.target) for e in load_task(str(jsonl)).split("eval")] == [("q", "a")]
    assert [(e.input, e.target) for e in load_task(str(csv)).split("eval")] == [("q", "a")]


def test_a_line_separator_inside_a_json_string_does_not_cut_the_line(tmp_path):
    path = tmp_path / "nel.jsonl"
    path.write_text(
        json.dumps({"input": "one\x85two\u2028three", "target": "a"}, ensure_ascii=False) + "\n",
        encoding="utf-8",
    )
    assert load_task(str(path)).split("eval")[0].input == "one\x85two\u2028three"


def test_an_empty_cell_of_a_csv_file_names_its_row(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("input,target\nq1,a\n,b\n")
    with pytest.raises(DataError, match=re.escape(f"{path}: row 3: field 'input' is empty")):
        load_task(str(path))
