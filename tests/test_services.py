"""One service per command: `gpo_local.evaluate` and `gpo-local eval` are the same scoring, with
the same defaults; library errors name options by their Python names, the CLI by flags."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import bundled_model_path

import gpo_local
from gpo_local.algorithm.config import GPOConfig
from gpo_local.app.cli import flag, main
from gpo_local.errors import ConfigError, OptionValue
from gpo_local.testing import ScriptedLLM

PROMPT = "Answer with one word."


def cli_eval(*args: str) -> dict:
    result = CliRunner().invoke(main, ["eval", *map(str, args), "--json", "--no-cache"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output[result.output.index("{") :])  # notices go to stderr, before the JSON


def directory_task(root: Path) -> Path:
    folder = root / "colours"
    folder.mkdir()
    rows = [
        ("the sky", "blue"),
        ("grass", "green"),
        ("snow", "white"),
        ("coal", "black"),
        ("blood", "red"),
        ("a banana", "yellow"),
    ]
    for split in ("train", "eval", "test"):
        lines = [
            json.dumps({"input": f"What colour is {thing}?", "target": colour}) for thing, colour in rows
        ]
        (folder / f"{split}.jsonl").write_text("\n".join(lines) + "\n")
    return folder


@pytest.fixture(params=["antonyms", "sentiment", "directory"])
def task(request, tmp_path):
    return str(directory_task(tmp_path)) if request.param == "directory" else request.param


@pytest.mark.integration
def test_python_and_the_shell_score_a_prompt_alike_on_the_bundled_model(task):
    model = str(bundled_model_path())
    shell = cli_eval(
        task,
        "--prompt",
        PROMPT,
        "--split",
        "test",
        "--limit",
        "3",
        "--task-model",
        model,
        "--n-ctx",
        "1024",
        "--threads",
        "2",
        "--parallel",
        "4",
    )
    python = gpo_local.evaluate(
        task,
        PROMPT,
        split="test",
        limit=3,
        task_model=model,
        no_cache=True,
        n_ctx=1024,
        threads=2,
        parallel=4,
    )
    assert shell["score"] == python.score and shell["n"] == python.n == 3
    assert shell["outcomes"] == [asdict(o) for o in python.outcomes]
    assert shell["position"] == python.position and shell["prompt"] == python.prompt
    assert shell["model"] == dict(python.model)


class Recording(ScriptedLLM):
    """A scripted task model dressed as a loaded GGUF: answers by a hash of the conversation."""

    def __init__(self, path: Path):
        super().__init__(
            lambda messages, t, s: ("yes", "no", "hot", "blue")[len(messages[0]["content"]) % 4],
            fingerprint=f"fake:{path.name}",
        )
        self.path = path


def test_python_and_the_shell_choose_the_same_defaults(task, tmp_path, monkeypatch):
    """No model or position named: both take the shared position and the task's suggested model."""
    import gpo_local.backends.catalog as catalog
    import gpo_local.backends.llama_cpp as llama_cpp

    loaded = []

    def load_models(task_spec, optimizer_spec, **options):
        model = Recording(Path(f"/fake/{task_spec}.gguf"))
        loaded.append(task_spec)
        return model, model

    monkeypatch.setenv("GPO_LOCAL_SUGGESTED_MODELS", "1")
    monkeypatch.setattr(catalog, "is_installed", lambda name: True)
    monkeypatch.setattr(llama_cpp, "load_models", load_models)
    shell = cli_eval(task, "--prompt", PROMPT, "--split", "test", "--limit", "4")
    python = gpo_local.evaluate(task, PROMPT, split="test", limit=4, no_cache=True)
    assert loaded[0] == loaded[1] and shell["model"] == dict(python.model)
    assert shell["position"] == python.position and shell["score"] == python.score
    assert shell["outcomes"] == [asdict(o) for o in python.outcomes]
    assert python.position == GPOConfig.position  # the shared default, as `optimize` takes it
    if task == "antonyms":  # the task's suggested model
        assert loaded[0] == "qwen2.5-coder-0.5b-instruct"
    if task == "sentiment":
        assert loaded[0] == "smollm2-135m-instruct"


def test_an_option_error_names_python_names_in_python_and_flags_on_the_command_line(tmp_path):
    with pytest.raises(ConfigError) as error:
        gpo_local.optimize(
            "sentiment",
            momentum="feedback",
            task_model=ScriptedLLM(lambda m, t, s: "x"),
            run_dir=tmp_path / "run",
        )
    assert (
        str(error.value) == "momentum='feedback' (momentum over gradients) needs gradient='feedback' "
        "(got gradient='none')"
    )
    assert (error.value.option, error.value.value) == ("momentum", "feedback")
    result = CliRunner().invoke(
        main, ["optimize", "sentiment", "--momentum", "feedback", "--task-model", "/never-loaded.gguf"]
    )
    assert result.exit_code == 1
    assert (
        "Error: --momentum feedback (momentum over gradients) needs --gradient feedback (got --gradient none)"
    ) in result.output


def test_flags_spell_values_switches_and_mappings():
    assert flag(OptionValue("n_ctx", 300)) == "--n-ctx 300" and flag(OptionValue("n_ctx")) == "--n-ctx"
    assert flag(OptionValue("resume", True)) == "--resume"
    assert flag(OptionValue("grammar", False)) == "--no-grammar"
    assert flag(OptionValue("splits", {"eval": "NAME"})) == "--splits eval=NAME"
    assert OptionValue("splits", {"eval": "NAME"}).python() == "splits={'eval': 'NAME'}"


def test_evaluate_refuses_options_of_other_commands():
    with pytest.raises(ConfigError, match="optimizer_model does not apply to evaluate"):
        gpo_local.evaluate("sentiment", PROMPT, optimizer_model="x")
    with pytest.raises(ConfigError, match="limit=0 must be an int of at least 1"):
        gpo_local.evaluate("sentiment", PROMPT, limit=0)
