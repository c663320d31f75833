import json

from click.testing import CliRunner
from conftest import build_method, optimizer_model

from gpo_local.algorithm.config import GPOConfig
from gpo_local.app.cli import main
from gpo_local.tasks.builtin import BUILTIN_TASKS


def run(*args):
    return CliRunner().invoke(main, list(args))


def test_unknown_task_is_one_line_and_exit_1():
    result = run("eval", "no-such-task", "--prompt", "x")
    assert result.exit_code == 1
    assert result.output.strip() == (
        f"Error: unknown task 'no-such-task': not a built-in task ({', '.join(sorted(BUILTIN_TASKS))}), "
        "nor an existing directory or "
        "jsonl/json/csv/parquet file; directories whose answer rules are known: bbh/<task>, "
        "mmlu/<subject>, gsm8k, "
        "wsc, webnlg; a Hugging Face dataset is written hf:<id>"
    )


def test_missing_split_fails_before_any_model_loads(tmp_path):
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "eval.jsonl").write_text('{"input": "q", "target": "a"}\n')
    result = run(
        "eval", str(tmp_path / "t"), "--prompt", "x", "--split", "test", "--task-model", "/nonexistent.gguf"
    )
    assert result.exit_code == 1
    assert "has no 'test' split" in result.output and "test.jsonl not found" in result.output
    assert "Traceback" not in result.output


def test_bad_model_path_and_options():
    result = run("eval", "sentiment", "--prompt", "x", "--task-model", "/nope/model.gguf")
    assert result.exit_code == 1 and "model '/nope/model.gguf' is neither a catalog name" in result.output
    result = run("optimize", "sentiment", "--candidates", "0")
    assert result.exit_code == 2 and "--candidates" in result.output
    result = run("optimize", "sentiment", "--resume")
    assert result.exit_code == 2 and "--resume needs --run-dir" in result.output


def test_not_a_gguf_file(tmp_path):
    fake = tmp_path / "model.gguf"
    fake.write_text("hello")
    result = run("eval", "sentiment", "--prompt", "x", "--task-model", str(fake))
    assert result.exit_code == 1 and "is not a GGUF file" in result.output


def test_tasks_lists_builtin():
    result = run("tasks")
    lines = result.output.splitlines()
    assert result.exit_code == 0 and lines[0].startswith("antonyms: ") and lines[3].startswith("sentiment: ")
    # A built-in task sets only its sizes (and its suggested task model): no position of its own.
    assert lines[1] == (
        "  defaults: steps=4, candidates=6, optimizer_max_tokens=128, max_prompt_words=100, "
        "task_model=qwen2.5-coder-0.5b-instruct"
    )
    assert lines[2] == "  suite: tuning half; reference prompt: 'Give the opposite of the word.'"
    assert lines[4] == "  defaults: candidates=4, optimizer_max_tokens=128, max_prompt_words=50"


def test_show_renders_a_run(tmp_path):
    config = GPOConfig(steps=2, candidates=3)
    result = build_method(tmp_path, config, optimizer_model()).run()
    (tmp_path / "config.json").write_text(json.dumps({"task": "difficulty"}))
    out = run("show", str(tmp_path))
    assert out.exit_code == 0
    assert "Answer." in out.output and "no result.json yet" in out.output
    assert f"{100 * result.trajectory[1].dev_score:.1f}" in out.output


def test_show_on_a_folder_that_is_not_a_run(tmp_path):
    out = run("show", str(tmp_path))
    assert out.exit_code == 1 and "config.json not found" in out.output


def test_eval_places_and_answers_as_the_main_job_does_unless_told(monkeypatch, tmp_path):
    # `gpo-local eval antonyms --prompt P` must score a main-job prompt as the run did: the
    # default position (Q_begin) and the task's suggested task model (the 0.5B), where not given.
    import gpo_local.backends.catalog as catalog
    import gpo_local.backends.llama_cpp as llama_cpp
    from gpo_local.testing import ScriptedLLM

    seen, loaded = [], []

    class Model(ScriptedLLM):
        def __init__(self, path, **options):
            super().__init__(
                lambda messages, temperature, seed: seen.append(messages[0]["content"]) or "cold",
                fingerprint="fake",
            )
            self.path = path
            loaded.append(path.name)

    monkeypatch.setenv("GPO_LOCAL_SUGGESTED_MODELS", "1")
    monkeypatch.setattr(catalog, "is_installed", lambda name: True)
    monkeypatch.setattr(catalog, "resolve_model", lambda spec: tmp_path / f"{spec}.gguf")
    monkeypatch.setattr(llama_cpp, "LlamaCppModel", Model)
    prompt = "Give the antonym of the word."
    for extra, position, model in (
        ([], "Q_begin", "qwen2.5-coder-0.5b-instruct"),
        (["--position", "Q_end", "--task-model", "m"], "Q_end", "m"),
    ):
        seen.clear()
        result = run("eval", "antonyms", "--prompt", prompt, "--limit", "2", "--json", "--no-cache", *extra)
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)["position"] == position and loaded[-1] == f"{model}.gguf"
        assert len(seen) == 2 and all(text.startswith(prompt) == (position == "Q_begin") for text in seen)
