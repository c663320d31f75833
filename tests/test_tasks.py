import json

import pytest

from conftest import SHARED_DATA
from gpo_local.errors import DataError
from gpo_local.tasks import load_task
from gpo_local.tasks.builtin import builtin_splits
from gpo_local.tasks.prompting import assemble


def write_split(directory, name, rows):
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_gpo_layout_with_target_or_output(tmp_path):
    task_dir = tmp_path / "bbh" / "navigate"
    write_split(task_dir, "eval", [{"input": "q1", "target": "Yes"}, {"input": "q2", "target": "No"}])
    write_split(task_dir, "format", [{"input": "f1", "output": "Yes"}])
    task = load_task(str(task_dir))
    assert task.name == "navigate" and task.rule.family == "boolean" and task.rule.two_rounds
    assert [(e.id, e.input, e.target) for e in task.split("eval")] == [("eval-1", "q1", "Yes"), ("eval-2", "q2", "No")]
    assert task.split("format")[0].target == "Yes"
    assert len(task.split("eval", limit=1)) == 1


def test_mmlu_gets_the_subject_header(tmp_path):
    task_dir = tmp_path / "mmlu" / "abstract_algebra"
    write_split(task_dir, "eval", [{"input": "q\n(A) 1\n(B) 2\n(C) 3\n(D) 4", "output": "(A)"}])
    task = load_task(str(task_dir))
    assert task.initial_prompt == "The following are multiple choice questions about abstract algebra."
    assert "(D)" in task.rule.followup(task.split("eval")[0].input)


def test_missing_split_names_the_file(tmp_path):
    write_split(tmp_path / "t", "eval", [{"input": "q", "target": "a"}])
    task = load_task(str(tmp_path / "t"))
    with pytest.raises(DataError, match=r"has no 'test' split: .*t/test.jsonl not found"):
        task.split("test")


@pytest.mark.parametrize("line,fragment", [
    ('{"input": "q", "target": "a"', "eval.jsonl:2: malformed JSON"),
    ('{"question": "q", "target": "a"}', "eval.jsonl:2: missing field 'input'"),
    ('{"input": "q"}', "eval.jsonl:2: missing field 'target' (or 'output'; choose one with --target-field); "
                       "fields present: input"),
])
def test_bad_lines_name_file_and_line(tmp_path, line, fragment):
    directory = tmp_path / "t"
    directory.mkdir()
    (directory / "eval.jsonl").write_text('{"input": "ok", "target": "a"}\n' + line + "\n")
    with pytest.raises(DataError) as error:
        load_task(str(directory))
    assert fragment in str(error.value)


def test_empty_split_and_unknown_task(tmp_path):
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "eval.jsonl").write_text("\n")
    with pytest.raises(DataError, match="the 'eval' split is empty"):
        load_task(str(tmp_path / "t")).split("eval")
    with pytest.raises(DataError, match="unknown task 'nope'.*sentiment"):
        load_task("nope")


def test_builtin_task_is_seeded_and_balanced():
    a, b, c = builtin_splits("sentiment", 0), builtin_splits("sentiment", 0), builtin_splits("sentiment", 1)
    assert a == b and a != c
    assert [len(a[s]) for s in ("train", "eval", "test")] == [8, 16, 24]
    assert {e.target for e in a["eval"]} == {"positive", "negative"}
    assert not {e.input for e in a["eval"]} & {e.input for e in a["test"]}
    rule = load_task("sentiment").rule
    assert rule.score("The review is Positive.", "positive") == 1.0
    assert rule.score("It is negative", "positive") == 0.0


@pytest.mark.parametrize("position,expected", [("Q_end", "Q?\nDo it."), ("Q_begin", "Do it.\nQ?"),
                                               ("A_begin", "Q: Q?\nA: Do it. ")])
def test_assemble_positions(position, expected):
    assert assemble("Do it.", "Q?", position) == expected
    assert assemble("", "Q?", "Q_end") == "Q?"


@pytest.mark.skipif(not (SHARED_DATA / "bbh" / "navigate").is_dir(), reason="../shared/data is not present")
def test_loads_shared_bbh_navigate_without_test_split():
    task = load_task(str(SHARED_DATA / "bbh" / "navigate"))
    assert len(task.split("eval")) == 48 and len(task.split("train")) == 48
    assert "test" not in task.splits


def test_holdout_takes_the_last_dev_examples_as_test(tmp_path):
    directory = tmp_path / "toy"
    directory.mkdir()
    (directory / "eval.jsonl").write_text("".join(f'{{"input": "q{i}", "target": "a{i}"}}\n' for i in range(10)))
    task = load_task(str(directory)).with_holdout(3)
    assert [e.input for e in task.split("eval")] == [f"q{i}" for i in range(7)]
    assert [e.input for e in task.split("test")] == ["q7", "q8", "q9"]
    with pytest.raises(DataError, match="--test-holdout 10 must be between 1 and 9"):
        load_task(str(directory)).with_holdout(10)
