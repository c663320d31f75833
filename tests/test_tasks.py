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
    assert [(e.id, e.input, e.target) for e in task.split("eval")] == [
        ("eval-1", "q1", "Yes"),
        ("eval-2", "q2", "No"),
    ]
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


@pytest.mark.parametrize(
    "line,fragment",
    [
        ('{"input": "q", "target": "a"', "eval.jsonl:2: malformed JSON"),
        ('{"question": "q", "target": "a"}', "eval.jsonl:2: missing field 'input'"),
        (
            '{"input": "q"}',
            "eval.jsonl:2: missing field 'target' (or 'output'; choose one with target_field); "
            "fields present: input",
        ),
    ],
)
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


@pytest.mark.parametrize(
    "position,expected",
    [("Q_end", "Q?\nDo it."), ("Q_begin", "Do it.\nQ?"), ("A_begin", "Q: Q?\nA: Do it. ")],
)
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
    (directory / "eval.jsonl").write_text(
        "".join(f'{{"input": "q{i}", "target": "a{i}"}}\n' for i in range(10))
    )
    task = load_task(str(directory)).with_holdout(3)
    assert [e.input for e in task.split("eval")] == [f"q{i}" for i in range(7)]
    assert [e.input for e in task.split("test")] == ["q7", "q8", "q9"]
    with pytest.raises(DataError, match="test_holdout=10 must be between 1 and 9"):
        load_task(str(directory)).with_holdout(10)


# --- files, field mapping, metrics, hub datasets (issue 5) --------------------------------------------------


def test_csv_with_custom_columns_and_a_metric(tmp_path):
    path = tmp_path / "arith.csv"
    path.write_text('id,question,answer\n1,"What is 2+2?",4\n2,"What is 10, minus 3?",7\n')
    task = load_task(str(path), input_field="question", target_field="answer", metric="number")
    assert task.name == "arith" and task.rule.family == "numeric" and task.rule.two_rounds
    assert [(e.id, e.input, str(e.target)) for e in task.split("eval")] == [
        ("eval-1", "What is 2+2?", "4"),
        ("eval-2", "What is 10, minus 3?", "7"),
    ]
    assert task.split("format") == task.split("eval")  # one file: exemplars come from its rows
    assert task.options == {"input_field": "question", "target_field": "answer", "metric": "number"}
    assert task.rule.score("The answer is 4.", task.split("eval")[0].target) == 1.0


def test_parquet_json_list_and_a_directory_of_csv_splits(tmp_path):
    import pandas as pd

    pd.DataFrame({"input": ["a", "b"], "target": ["x", "y"]}).to_parquet(tmp_path / "t.parquet")
    assert [e.target for e in load_task(str(tmp_path / "t.parquet")).split("eval")] == ["x", "y"]
    (tmp_path / "list.json").write_text(json.dumps([{"input": "q", "output": "a"}]))
    assert load_task(str(tmp_path / "list.json")).split("eval")[0].target == "a"
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "eval.csv").write_text("input,target\nq1,a1\n")
    (folder / "train.csv").write_text("input,target\nq2,a2\n")
    task = load_task(str(folder))
    assert set(task.splits) == {"eval", "train"} and task.rule.family == "exact" and not task.rule.two_rounds


def test_holdout_of_a_single_file_keeps_test_rows_out_of_the_exemplars(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps({"input": f"q{i}", "target": "a"}) + "\n" for i in range(6)))
    task = load_task(str(path)).with_holdout(2)
    assert [e.input for e in task.split("test")] == ["q4", "q5"]
    assert [e.input for e in task.split("format")] == ["q0", "q1", "q2", "q3"]


@pytest.mark.parametrize(
    "name,rows,error",
    [
        (
            "bad.csv",
            'input,target\n"unclosed,a\n',
            r"bad.csv: row 2: field 'target' is empty|bad.csv: cannot read as CSV",
        ),
        (
            "cols.csv",
            "question,answer\nq,a\n",
            r"cols.csv: row 2: missing field 'input' \(choose one with input_field\); "
            r"fields present: question, answer",
        ),
        ("empty.csv", "input,target\n", r"empty.csv: no examples \(the file is empty\)"),
        ("data.txt", "x", r"data.txt: unsupported file type '.txt'"),
        ("latin.jsonl", b'{"input": "caf\xe9", "target": "a"}\n', r"latin.jsonl: not UTF-8 text"),
    ],
)
def test_bad_files_name_the_file_and_row(tmp_path, name, rows, error):
    path = tmp_path / name
    path.write_bytes(rows if isinstance(rows, bytes) else rows.encode())
    with pytest.raises(DataError, match=error):
        load_task(str(path))


def test_data_options_are_checked(tmp_path):
    with pytest.raises(
        DataError, match=r"the built-in task 'sentiment' takes no data options \(got input_field\)"
    ):
        load_task("sentiment", input_field="q")
    write_split(tmp_path / "t", "eval", [{"input": "q", "target": "a"}])
    with pytest.raises(DataError, match="dataset_config and splits apply to Hugging Face datasets"):
        load_task(str(tmp_path / "t"), dataset_config="main")
    with pytest.raises(DataError, match="unknown metric 'bleu'"):
        load_task(str(tmp_path / "t"), metric="bleu")
    with pytest.raises(DataError, match=r"has no 'test' split: .*test.jsonl not found \(it has: eval\)"):
        load_task(str(tmp_path / "t")).split("test")


class FakeHub:
    """Stands in for datasets.load_dataset: records whether the hub was switched off."""

    def __init__(self, cached: dict | None, online: dict | None = None):
        self.cached, self.online, self.calls = cached, online, []

    def __call__(self, dataset_id, config=None, **kwargs):
        import datasets.config

        offline = datasets.config.HF_HUB_OFFLINE
        self.calls.append((dataset_id, config, offline))
        found = self.cached if offline else self.online
        if found is None:
            raise FileNotFoundError(f"Dataset {dataset_id} is not cached")
        return found


GSM8K_HUB = {
    "train": [{"question": "1+1?", "answer": "1+1=2\n#### 2"}],
    "test": [{"question": "2+3?", "answer": "#### 5"}, {"question": "4+4?", "answer": "#### 8"}],
}


def test_hub_dataset_from_the_cache_with_the_hub_switched_off(monkeypatch):
    import datasets
    import huggingface_hub.constants

    hub = FakeHub(GSM8K_HUB)
    monkeypatch.setattr(datasets, "load_dataset", hub)
    task = load_task(
        "hf:openai/gsm8k",
        dataset_config="main",
        input_field="question",
        target_field="answer",
        splits={"eval": "test"},
    )
    assert hub.calls == [("openai/gsm8k", "main", True)]  # only the cache was asked
    assert (
        huggingface_hub.constants.HF_HUB_OFFLINE is False or huggingface_hub.constants.HF_HUB_OFFLINE is True
    )
    assert task.name == "gsm8k-main" and task.source == "hf:openai/gsm8k" and task.rule.family == "numeric"
    assert [e.input for e in task.split("eval")] == ["2+3?", "4+4?"] and task.split("format")[
        0
    ].input == "1+1?"
    assert task.rule.score("5", task.split("eval")[0].target) == 1.0
    assert "test" not in task.splits  # mapped to eval; --test-holdout makes one
    assert task.options["splits"] == {"eval": "test"}


def test_hub_dataset_errors_are_one_line(monkeypatch):
    import datasets
    import huggingface_hub.constants as hub_constants

    monkeypatch.setattr(datasets, "load_dataset", FakeHub(GSM8K_HUB))
    with pytest.raises(
        DataError,
        match=r"openai/gsm8k has no split 'validation' for the eval \(dev\) split "
        r"\(it has: train, test\); map one with splits={'eval': 'NAME'}",
    ):
        load_task("hf:openai/gsm8k", input_field="question", target_field="answer")
    with pytest.raises(DataError, match=r"has no split 'dev' \(it has: train, test\)"):
        load_task("hf:openai/gsm8k", input_field="question", target_field="answer", splits={"eval": "dev"})
    with pytest.raises(DataError, match=r"openai/gsm8k\[train\] row 1: missing field 'input'"):
        load_task("hf:openai/gsm8k", splits={"eval": "test"})
    monkeypatch.setattr(datasets, "load_dataset", FakeHub(None))
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)  # the user's own offline setting is obeyed
    with pytest.raises(DataError, match="not in the local cache and HF_HUB_OFFLINE is set"):
        load_task("hf:nobody/nothing")


@pytest.mark.skipif(not (SHARED_DATA / "webnlg").is_dir(), reason="../shared/data is not present")
@pytest.mark.parametrize(
    "folder,family,two_rounds,size",
    [
        ("mmlu/anatomy", "multiple_choice", True, 20),
        ("gsm8k", "numeric", True, 100),
        ("wsc", "multiple_choice", True, 50),
        ("webnlg", "rouge_l", False, 100),
    ],
)
def test_shared_benchmarks_load_with_their_rules(folder, family, two_rounds, size):
    task = load_task(str(SHARED_DATA / folder))
    assert (task.rule.family, task.rule.two_rounds, len(task.split("eval"))) == (family, two_rounds, size)
    example = task.split("eval")[0]
    if folder == "mmlu/anatomy":
        assert task.initial_prompt == "The following are multiple choice questions about anatomy."
        assert "(A) and (D)" in task.rule.followup(example.input)
        assert task.adapt_prompt("The following are multiple choice questions about") == task.initial_prompt
    if folder == "wsc":
        assert "(A) and (B)" in task.rule.followup(example.input)
    if folder == "gsm8k":
        assert isinstance(example.target, int) and task.rule.score(
            f"The answer is {example.target}.", example.target
        )
    if folder == "webnlg":
        assert isinstance(example.target, list) and task.rule.score(example.target[0], example.target) > 0.5


def test_antonyms_splits_are_disjoint_and_seeded():
    from gpo_local.tasks.builtin import builtin_splits

    a, b = builtin_splits("antonyms", 0), builtin_splits("antonyms", 0)
    assert a == b
    words = {split: {e.input for e in examples} for split, examples in a.items()}
    assert {split: len(w) for split, w in words.items()} == {
        "train": 16,
        "eval": 40,
        "test": 40,
        "format": 8,
        "few_shot_examples": 3,
    }
    # No test word is ever seen during optimization.
    assert not words["test"] & (words["eval"] | words["train"] | words["format"] | words["few_shot_examples"])
    assert builtin_splits("antonyms", 1)["test"] != a["test"]


@pytest.mark.parametrize(
    "reply, target, prediction, correct",
    [
        ("cold", ("cold",), "cold", True),
        ('The antonym of the word "major" is "minor".', ("minor",), "minor", True),
        ("Answer: Small", ("small", "little"), "small", True),
        ("little", ("small", "little"), "little", True),  # a second accepted answer
        ("Let's think step by step. The word big", ("small", "little"), "let", False),
        ("", ("small",), "", False),
    ],
)
def test_word_rule_reads_the_stated_answer(reply, target, prediction, correct):
    from gpo_local.tasks.induction import WORD_RULE

    assert WORD_RULE.normalize(reply) == prediction
    assert WORD_RULE.score(reply, target) == float(correct)
    assert not WORD_RULE.two_rounds and WORD_RULE.followup("big") is None


def test_shown_target_is_the_first_accepted_answer():
    from gpo_local.core import Example

    assert Example("x", "big", ("small", "little")).shown_target == "small"
    assert Example("x", "q", "Yes").shown_target == "Yes"
