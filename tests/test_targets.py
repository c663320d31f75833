"""A JSONL target that is a list holds several accepted answers: any of them counts."""

from gpo_local.tasks import load_task
from gpo_local.tasks.answers import rule_for
from gpo_local.tasks.families import answer_is_correct


def test_a_list_target_accepts_any_of_its_answers():
    assert answer_is_correct("y", ["yes", "y"], "generic")
    assert answer_is_correct("yes", ("yes", "y"), "generic")
    assert not answer_is_correct("no", ["yes", "y"], "generic")
    assert not answer_is_correct("['yes', 'y']", ["yes", "y"], "generic")  # no longer the list's str()


def test_a_jsonl_file_with_list_targets_scores_each_accepted_answer(tmp_path):
    path = tmp_path / "answers.jsonl"
    path.write_text(
        '{"input": "Is water wet?", "target": ["yes", "y"]}\n{"input": "Two plus two?", "target": 4}\n'
    )
    task = load_task(str(path))
    first, second = task.split("eval")
    assert first.target == ["yes", "y"] and second.target == 4
    rule = task.rule
    assert [rule.grade(p, first.target) for p in ("yes", "y", "no")] == [1.0, 1.0, 0.0]
    assert rule.grade("4", second.target) == 1.0
    assert rule_for("generic", "x").grade("y", ["yes", "y"]) == 1.0
