"""The answer-length cap (tasks/answer_length.py): `answer_max_tokens`, the answer families'
default limits, the per-question limit past which an exact-match reply cannot score, and
`format_examples` as an option a user can set."""

import json

import fake_cli
import pytest
from click.testing import CliRunner

from gpo_local.algorithm.config import GPOConfig
from gpo_local.algorithm.evaluator import Evaluator
from gpo_local.app.cli import main
from gpo_local.app.resuming import resolve_resume
from gpo_local.app.settings import resolve
from gpo_local.core import Example
from gpo_local.errors import ConfigError
from gpo_local.tasks import Task, load_task
from gpo_local.tasks.answer_length import (
    EXACT_MARGIN,
    answer_limits,
    family_max_tokens,
    parse_answer_max_tokens,
    score_neutral_tokens,
)
from gpo_local.tasks.answers import rule_for, rule_for_metric
from gpo_local.tasks.builtin import BUILTIN_TASKS
from gpo_local.tasks.rules import MetricRule
from gpo_local.tasks.suite import NUMBER_RULE, PHRASE_RULE, TRANSLATION_RULE, UPPERCASE_RULE
from gpo_local.testing import ScriptedLLM


def words(text: str) -> int:
    return len(text.split())


def test_the_option_is_n_or_n1_n2():
    assert parse_answer_max_tokens("24") == "24" and parse_answer_max_tokens(" 48 , 8 ") == "48,8"
    assert parse_answer_max_tokens(24) == "24" and parse_answer_max_tokens((48, 8)) == "48,8"
    assert parse_answer_max_tokens(None) is None
    for bad in ("0", "a", "1,2,3", "24,", True, "-3"):
        with pytest.raises(ConfigError, match=r"answer_max_tokens=.* must be N or N1,N2"):
            parse_answer_max_tokens(bad)
    assert answer_limits("24", (256, 100), two_rounds=True) == (24, 24)
    assert answer_limits("24", (24, 0), two_rounds=False) == (24, 0)
    assert answer_limits("48,8", (256, 100), two_rounds=True) == (48, 8)
    assert answer_limits(None, (48, 8), two_rounds=True) == (48, 8)


def test_family_defaults_and_built_in_tasks_keep_their_limits():
    assert family_max_tokens(rule_for_metric("exact", "t")) == (32, 0)
    assert family_max_tokens(rule_for_metric("rouge-l", "t")) == (256, 0)
    for two_rounds in (
        rule_for_metric("number", "t"),
        rule_for_metric("choice", "t"),
        rule_for("bbh", "navigate"),
    ):
        assert family_max_tokens(two_rounds) == (256, 100)  # round 1 reasons freely, as before
    assert family_max_tokens(MetricRule(lambda p, e: 1.0)) == (256, 100)
    assert load_task("antonyms").max_tokens == BUILTIN_TASKS["antonyms"].max_tokens == (24, 0)
    assert load_task("sentiment").max_tokens == (48, 8)


def test_a_directory_task_gets_its_family_limit(tmp_path):
    (tmp_path / "eval.jsonl").write_text('{"input": "q", "target": "a"}\n')
    assert load_task(str(tmp_path), metric="exact").max_tokens == (32, 0)
    assert load_task(str(tmp_path), metric="number").max_tokens == (256, 100)


class Truncating(ScriptedLLM):
    """A scripted model that stops each reply at `max_tokens` words (its tokens), as decoding does."""

    def generate(self, conversations, *, max_tokens, **options):
        replies = super().generate(conversations, max_tokens=max_tokens, **options)
        return [r if words(r) <= max_tokens else " ".join(r.split(" ")[:max_tokens]) for r in replies]

    def count_tokens(self, text):
        return words(text)


REPLIES = [
    "Paris",
    "  Paris.",
    '"Paris"',
    "paris!",
    "(b)",
    "b",
    "Paris is the capital of France, of course.",
    "The answer is Paris",
    "1",
    "true",
    "Yes.",
    "no",
    "-10",
    "10",
    "a quick brown fox jumps over the lazy dog",
    "A quick brown fox jumps over the lazy dog.",
    "Let's think step by step. " * 30 + "Paris",
]
TARGETS = [
    "Paris",
    ("b", "(b)"),
    "yes",
    "-10",
    "a quick brown fox jumps over the lazy dog",
    ("Paris", "Lyon"),
]


def test_the_exact_limit_never_changes_a_score_of_scripted_replies():
    rule = rule_for_metric("exact", "t")
    examples = tuple(
        Example(f"eval-{i}-{j}", f"question {i} {j}", target)
        for i, target in enumerate(TARGETS)
        for j in range(len(REPLIES))
    )
    reply_of = {e.input: REPLIES[int(e.id.split("-")[2])] for e in examples}
    task = Task(name="t", source="memory:t", rule=rule, splits={"eval": examples}, max_tokens=(256, 0))
    model = Truncating(lambda messages, temperature, seed: reply_of[messages[0]["content"].split("\n")[-1]])
    result = Evaluator(model, task, position="Q_begin").evaluate(["Answer."], "eval")[0]
    expected = [rule.grade_example(rule.normalize(reply_of[e.input]), e) for e in examples]
    assert [o.score for o in result.outcomes] == expected and sum(expected) >= 10
    limits = {call["max_tokens"] for call in model.calls}
    assert max(limits) < 256 and min(limits) >= 1 + EXACT_MARGIN  # the limits did apply
    cap = score_neutral_tokens(rule, "a quick brown fox jumps over the lazy dog", words)
    assert cap == 9 + EXACT_MARGIN


def test_rules_that_read_the_answer_out_of_a_reply_get_no_early_limit():
    for rule in (
        PHRASE_RULE,
        UPPERCASE_RULE,
        TRANSLATION_RULE,
        NUMBER_RULE,
        BUILTIN_TASKS["antonyms"].rule,
        BUILTIN_TASKS["sentiment"].rule,
        rule_for_metric("rouge-l", "t"),
        rule_for_metric("number", "t"),
        rule_for("bbh", "navigate"),
        MetricRule(lambda p, e: 1.0),
    ):
        assert score_neutral_tokens(rule, "Paris", words) is None
    # A suite task's replies are asked with its own limit only.
    task = load_task("first_letter")
    model = ScriptedLLM(lambda messages, temperature, seed: "The first letter is x.")
    Evaluator(model, task).evaluate(["Answer."], "eval", limit=5)
    assert {call["max_tokens"] for call in model.calls} == {task.max_tokens[0]}


def test_optimize_takes_the_option_records_it_and_resume_keeps_it(tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    out = fake_cli.optimize(monkeypatch, run_dir, "--quiet", "--answer-max-tokens", "16,4", "--steps", "1")
    assert out.exit_code == 0, out.output
    config = json.loads((run_dir / "config.json").read_text())
    assert config["config"]["answer_max_tokens"] == "16,4"
    settings = resolve_resume(run_dir, config, {}, set())
    assert settings.task.max_tokens == (16, 4)
    # A run recorded before the option existed keeps the limits it had.
    older = {**config, "config": {k: v for k, v in config["config"].items() if k != "answer_max_tokens"}}
    assert resolve_resume(run_dir, older, {}, set()).task.max_tokens == (48, 8)  # built-in: its own
    data = tmp_path / "data"
    data.mkdir()
    (data / "eval.jsonl").write_text('{"input": "q", "target": "a"}\n')
    from_files = {"task": "data", "task_source": str(data), "task_options": {"metric": "exact"}}
    assert resolve_resume(run_dir, {**older, **from_files}, {}, set()).task.max_tokens == (256, 100)
    unset = {**config, **from_files, "config": {**config["config"], "answer_max_tokens": None}}
    assert resolve_resume(run_dir, unset, {}, set()).task.max_tokens == (32, 0)


def test_the_task_model_is_asked_with_the_given_limits(tmp_path, monkeypatch):
    fake_cli.install_fakes(monkeypatch)
    import gpo_local.backends.llama_cpp as llama_cpp

    task_model, _ = llama_cpp.load_models("a", "b")
    task_model.calls.clear()
    out = CliRunner().invoke(
        main,
        [
            "optimize",
            "sentiment",
            "--steps",
            "1",
            "--candidates",
            "2",
            "--dev-limit",
            "4",
            "--test-limit",
            "4",
            "--no-cache",
            "--quiet",
            "--run-dir",
            str(tmp_path / "r"),
            "--answer-max-tokens",
            "16,4",
        ],
    )
    assert out.exit_code == 0, out.output
    assert {call["max_tokens"] for call in task_model.calls} == {16, 4}


def test_a_bad_value_is_one_line_naming_the_option(tmp_path, monkeypatch):
    out = fake_cli.optimize(monkeypatch, tmp_path / "run", "--answer-max-tokens", "0")
    assert out.exit_code == 2 and "answer_max_tokens='0' must be N or N1,N2" in out.output
    config = tmp_path / "c.toml"
    config.write_text('answer-max-tokens = "24,x"\n')
    with pytest.raises(ConfigError, match="answer_max_tokens='24,x'"):
        resolve("sentiment", {}, set(), config)


def test_format_examples_is_an_option_of_the_command_line_the_config_file_and_the_api(tmp_path, monkeypatch):
    out = fake_cli.optimize(
        monkeypatch, tmp_path / "run", "--quiet", "--format-examples", "5", "--steps", "1"
    )
    assert out.exit_code == 0, out.output
    assert json.loads((tmp_path / "run" / "config.json").read_text())["config"]["format_examples"] == 5
    config = tmp_path / "c.toml"
    config.write_text("format-examples = 6\n")
    assert resolve("sentiment", {}, set(), config).config.format_examples == 6
    # A built-in task shows the shared number of examples; a user's value wins.
    assert resolve("antonyms", {}, set()).config.format_examples == GPOConfig.format_examples
    assert resolve("antonyms", {"format_examples": 2}, {"format_examples"}).config.format_examples == 2
    with pytest.raises(ConfigError, match="format-examples"):
        config.write_text("format-examples = -1\n")
        resolve("sentiment", {}, set(), config)
    help_text = CliRunner().invoke(main, ["optimize", "--help"]).output
    assert "--format-examples" in help_text and "--answer-max-tokens" in help_text
    assert "not a per-answer limit" in " ".join(help_text.split())


def test_eval_takes_the_option_too(tmp_path, monkeypatch):
    from gpo_local.backends import catalog, llama_cpp

    asked = []

    class Model(ScriptedLLM):
        def __init__(self, path, **options):
            super().__init__(lambda messages, temperature, seed: "positive", fingerprint="fake")
            self.path = path

        def generate(self, conversations, *, max_tokens, **options):
            asked.append(max_tokens)
            return super().generate(conversations, max_tokens=max_tokens, **options)

    # eval loads through the registry, which calls llama_cpp.load_models (as fake_cli replaces it)
    monkeypatch.setattr(
        llama_cpp, "load_models", lambda task, optimizer, **options: (Model(task), Model(optimizer))
    )
    monkeypatch.setattr(catalog, "resolve_model", lambda spec: tmp_path / f"{spec}.gguf")
    out = CliRunner().invoke(
        main,
        [
            "eval",
            "sentiment",
            "--prompt",
            "Answer.",
            "--limit",
            "2",
            "--no-cache",
            "--quiet",
            "--answer-max-tokens",
            "12,3",
            "--task-model",
            "m",
        ],
    )
    assert out.exit_code == 0, out.output
    assert set(asked) == {12, 3}
    # "positive" is right on the first question only: outcomes 1, 0, standard error 0.707 / sqrt(2) = 0.5
    assert out.output == "sentiment eval: 50.0 ± 50.0 (1/2)\n"
    bad = CliRunner().invoke(main, ["eval", "sentiment", "--prompt", "Answer.", "--answer-max-tokens", "x"])
    assert bad.exit_code == 2 and "answer_max_tokens='x'" in bad.output
