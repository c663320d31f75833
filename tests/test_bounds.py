"""Bounds of every numeric option (declared in config.OPTIONS) and the ones that follow from the
machine and the model (app/bounds.py): each bad value is one line and a non-zero exit, before any
model loads. The fakes stand in for the models; the bundled model's GGUF header is read, never
its weights."""

import json

import pytest
from click.testing import CliRunner
from fake_models import install

from gpo_local import optimize as api_optimize
from gpo_local.algorithm.config import BY_NAME, OPTIONS, GPOConfig, check_value
from gpo_local.app import bounds
from gpo_local.app.cli import main
from gpo_local.backends.catalog import resolve_model
from gpo_local.backends.gguf_info import read_gguf_info
from gpo_local.errors import ConfigError, ModelError
from gpo_local.testing import ScriptedLLM

SMALL = ["--dev-limit", "4", "--test-limit", "4", "--optimizer-max-tokens", "48", "--no-cache", "--quiet"]


def run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.output.strip()


def one_error_line(output):
    lines = [line for line in output.splitlines() if line.startswith("Error: ")]
    assert len(lines) == 1 and "Traceback" not in output, output
    return lines[0]


@pytest.fixture
def no_model(monkeypatch):
    """Any model load fails the test: every case here must stop before one."""
    import gpo_local.backends.llama_cpp as backend

    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded")

    # optimize and eval both load through the registry, which calls llama_cpp.load_models
    monkeypatch.setattr(backend, "load_models", refuse)


EVAL = ["eval", "sentiment", "--prompt", "Be brief.", "--limit", "1"]
CASES = {
    "nan temperature": (
        ["optimize", "sentiment", *SMALL, "--optimizer-temperature", "nan"],
        "Invalid value for '--optimizer-temperature': must be a finite number (got nan)",
    ),
    "infinite time limit": (
        ["optimize", "sentiment", *SMALL, "--time-limit", "inf"],
        "Invalid value for '--time-limit': must be a finite number (got inf)",
    ),
    "huge lr_init": (
        ["optimize", "sentiment", *SMALL, "--lr-init", "99999999999999999999"],
        "Invalid value for '--lr-init': must be at most 1000 (got 99999999999999999999)",
    ),
    "huge steps": (
        ["optimize", "sentiment", *SMALL, "--steps", "99999999999999999999999"],
        "Invalid value for '--steps': must be at most 10000 (got 99999999999999999999999)",
    ),
    "huge candidates": (
        ["optimize", "sentiment", *SMALL, "--steps", "2", "--candidates", "1000000000"],
        "Invalid value for '--candidates': must be at most 10000 (got 1000000000)",
    ),
    "eval parallel": (
        [*EVAL, "--parallel", "100000"],
        "Invalid value for '--parallel': must be at most 4096 (got 100000)",
    ),
    "eval threads": (
        [*EVAL, "--threads", "100000"],
        "Invalid value for '--threads': must be at most 1024 (got 100000)",
    ),
    "eval n_ctx": (
        [*EVAL, "--n-ctx", "1000000000"],
        "Invalid value for '--n-ctx': must be at most 1048576 (got 1000000000)",
    ),
    "racing error": (
        ["optimize", "sentiment", *SMALL, "--racing-error", "1"],
        "Invalid value for '--racing-error': must be below 1 (got 1.0)",
    ),
    "unknown gradient": (
        ["optimize", "sentiment", "--gradient", "hessian"],
        "Invalid value for '--gradient': 'hessian' is not one of 'none', 'feedback'.",
    ),
    "unknown schedule": (
        ["optimize", "sentiment", "--schedule", "cosinus"],
        "Invalid value for '--schedule': 'cosinus' is not one of 'none', 'fixed', 'linear', 'cosine'.",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_value_beyond_the_declared_bounds_is_one_line(case, no_model):
    args, message = CASES[case]
    code, output = run(*args)
    assert code == 2 and one_error_line(output) == f"Error: {message}"


def test_threads_beyond_the_cpus_unless_forced(no_model, monkeypatch):
    monkeypatch.setattr(bounds.os, "cpu_count", lambda: 2)
    code, output = run(*EVAL, "--threads", "64")
    assert code == 1
    assert one_error_line(output) == (
        "Error: threads=64 is more than the 2 CPUs of this machine (force=True runs it anyway)"
    )
    code, output = run("optimize", "sentiment", *SMALL, "--threads", "3")
    assert code == 1 and "threads=3 is more than the 2 CPUs" in one_error_line(output)
    with pytest.raises(AssertionError, match="a model was loaded"):  # forced: it gets as far as the model
        CliRunner().invoke(main, [*EVAL, "--threads", "64", "--force", "--no-cache"], catch_exceptions=False)


def test_n_ctx_beyond_the_models_training_context(no_model):
    trained = read_gguf_info(resolve_model("smollm2-135m-instruct")).context_length
    assert trained == 8192
    code, output = run(*EVAL, "--n-ctx", "16384")
    assert code == 1 and one_error_line(output) == (
        "Error: n_ctx=16384 is more than the training context of smollm2-135m-instruct (8192 tokens; "
        "force=True runs it anyway)"
    )


def test_a_kv_cache_beyond_memory_names_its_estimate(no_model, monkeypatch):
    monkeypatch.setattr(bounds, "memory_bytes", lambda: 24 * 2**30)
    code, output = run(*EVAL, "--parallel", "4000")
    line = one_error_line(output)
    # 23040 bytes a token (30 layers, 3 KV heads of 64, f16) x (4096 x 4001 + 16 x 1024) cells
    assert code == 1 and line == (
        "Error: parallel=4000 with n_ctx=4096 plans a KV cache of about 352.0 GiB "
        "(smollm2-135m-instruct 352.0 GiB), more than the 24.0 GiB of memory of this "
        "machine: lower parallel or n_ctx"
    )
    code, output = run("optimize", "sentiment", *SMALL, "--parallel", "4000")
    assert code == 1 and "plans a KV cache of about 352.0 GiB" in one_error_line(output)


def test_planned_replies_beyond_memory_name_their_estimate(monkeypatch):
    monkeypatch.setattr(bounds, "memory_bytes", lambda: 2**30)
    with pytest.raises(
        ConfigError,
        match=r"^candidates=10000 plans replies of about 1\.3 GiB per step \(up to "
        r"optimizer_max_tokens=8192 tokens each, an estimate\), more than the "
        r"1\.0 GiB of memory",
    ):
        bounds.check_replies(GPOConfig(candidates=10_000, optimizer_max_tokens=8192))
    bounds.check_replies(GPOConfig(candidates=100, optimizer_max_tokens=8192))


def test_edit_budgets_within_reach_and_a_growing_one_warns(monkeypatch, tmp_path, no_model):
    code, output = run("optimize", "sentiment", *SMALL, "--max-prompt-words", "20", "--lr-init", "30")
    assert code == 1 and one_error_line(output) == (
        "Error: lr_init=30 is more words than max_prompt_words=20 lets a prompt have"
    )
    # Constrained replies only: the grammar must give a reply room for the budget's words.
    code, output = run(
        "optimize",
        "sentiment",
        *SMALL,
        "--grammar",
        "--n-ctx",
        "1024",
        "--lr-init",
        "400",
        "--max-prompt-words",
        "1000",
    )
    assert code == 1 and one_error_line(output) == (
        "Error: lr_init=400: a reply of that many new words takes about 1208 tokens, more than n_ctx=1024"
    )
    install(monkeypatch, task_llm=ScriptedLLM(lambda messages, temperature, seed: "positive"))
    result = CliRunner().invoke(
        main,
        [
            "optimize",
            "sentiment",
            *SMALL,
            "--steps",
            "1",
            "--candidates",
            "2",
            "--lr-init",
            "5",
            "--lr-final",
            "500",
            "--max-prompt-words",
            "1000",
            "--run-dir",
            str(tmp_path / "run"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert (
        "warning: the edit budget grows from lr_init=5 to lr_final=500 words over the run (GPO's schedules "
        "decay it)"
    ) in result.output


def test_a_file_and_the_python_api_are_held_to_the_same_bounds(tmp_path, monkeypatch):
    (tmp_path / "opts.toml").write_text("optimizer-temperature = nan\n")
    code, output = run("optimize", "sentiment", "--config", tmp_path / "opts.toml")
    assert code == 1 and one_error_line(output).endswith(
        "opts.toml: option 'optimizer-temperature' must be a finite number (got nan)"
    )
    (tmp_path / "opts.toml").write_text("steps = 99999999999999\n")
    code, output = run("optimize", "sentiment", "--config", tmp_path / "opts.toml")
    assert code == 1 and "option 'steps' must be at most 10000 (got 99999999999999)" in one_error_line(output)
    with pytest.raises(
        ConfigError, match=r"option 'optimizer_temperature' must be a finite number \(got inf\)"
    ):
        api_optimize("sentiment", optimizer_temperature=float("inf"))
    with pytest.raises(ConfigError, match=r"^optimizer_temperature must be a finite number \(got nan\)"):
        GPOConfig(optimizer_temperature=float("nan")).validate()


def test_every_numeric_option_refuses_nan_and_its_maximum_plus_one():
    for option in OPTIONS:
        if option.kind not in (int, float):
            continue
        if option.kind is float:
            with pytest.raises(ConfigError, match="finite"):
                check_value(option, float("nan"))
        with pytest.raises(ConfigError, match="must be (at most|below)"):
            check_value(option, option.maximum + (0 if option.max_open else 1))
        assert (
            check_value(
                option,
                option.maximum
                - (1 if option.max_open and option.kind is int else 0)
                - (0.5 if option.max_open and option.kind is float else 0),
            )
            is not None
        )
    assert BY_NAME["seed"].maximum == 2**32 - 1


def test_the_gguf_header_reader(tmp_path):
    info = read_gguf_info(resolve_model("smollm2-135m-instruct"))
    assert (info.architecture, info.layers, info.embedding, info.heads, info.kv_heads) == (
        "llama",
        30,
        576,
        9,
        3,
    )
    assert info.kv_bytes_per_token() == 30 * 3 * (64 + 64) * 2
    (tmp_path / "x.gguf").write_bytes(b"GGUF\x03\x00")
    with pytest.raises(ModelError, match="unreadable GGUF header"):
        read_gguf_info(tmp_path / "x.gguf")
    (tmp_path / "y.gguf").write_bytes(b"nope" * 10)
    with pytest.raises(ModelError, match="is not a GGUF file"):
        read_gguf_info(tmp_path / "y.gguf")
    assert json.dumps(bounds.model_file("no-such-model")) == "null"
