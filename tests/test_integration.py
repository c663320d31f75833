"""Integration tests with the real bundled GGUF (SmolLM2-135M-Instruct) and the real embedder."""

import json
import socket

import pytest
from click.testing import CliRunner
from conftest import SHARED_DATA, bundled_model_path

from gpo_local.app.cli import main
from gpo_local.backends.catalog import DEFAULT_MODEL, load_catalog
from gpo_local.backends.llama_cpp import LlamaCppModel, cpu_has_amx
from gpo_local.errors import ModelError, PromptTooLongError

pytestmark = pytest.mark.integration

MODEL_PATH = bundled_model_path()


@pytest.fixture(scope="module")
def model():
    return LlamaCppModel(MODEL_PATH, n_ctx=512, n_threads=2)


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open an outbound network connection fails the test."""
    attempts = []

    def refuse(self, address, *args):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            attempts.append(address)
            raise OSError(f"network blocked by the test: {address}")
        return original_connect(self, address, *args)

    original_connect = socket.socket.connect
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    yield attempts


def test_catalog_sha256_matches_the_bundled_file(model):
    assert model.fingerprint == load_catalog()[DEFAULT_MODEL].sha256


def test_greedy_is_deterministic_and_sampling_follows_the_seed(model):
    question = ["Is the sun a star? Answer yes or no."]
    assert model.generate(question, max_tokens=8) == model.generate(question, max_tokens=8)
    poem = ["Write one line about rain."]
    a = model.generate(poem * 2, max_tokens=16, temperature=1.0, seeds=[1, 2])
    model.generate(["Something else first."], max_tokens=4)
    b = model.generate(poem, max_tokens=16, temperature=1.0, seeds=[2])
    assert a[1] == b[0]  # a seeded sample does not depend on what the context did before
    assert a[0] != a[1]


def test_both_rounds_in_one_call_equal_two_separate_calls(model):
    # The evaluator's path: each second turn continues its first turn's sequence inside one
    # decoder call. Greedy replies must equal the round-by-round path (two generate calls).
    from gpo_local.backends import two_rounds

    first = [
        f"How many legs does a {animal} have? Think step by step." for animal in ("cat", "spider", "bird")
    ]
    first += ["No second round for this one."]

    def follow_up(i, reply):
        if i == 3:
            return None
        return [
            {"role": "user", "content": first[i]},
            {"role": "assistant", "content": reply.strip()},
            {"role": "user", "content": "So the answer is? Reply with a number only."},
        ]

    class RoundByRound:  # hides generate_two_rounds, so two_rounds falls back to two calls
        def generate(self, *args, **kwargs):
            return model.generate(*args, **kwargs)

    native = two_rounds(model, first, follow_up, max_tokens=(24, 6))
    assert native == two_rounds(RoundByRound(), first, follow_up, max_tokens=(24, 6))
    assert native[3][1] is None and all(second for _, second in native[:3])


def test_stop_strings_cut_the_reply(model):
    reply = model.generate(["Count from 1 to 10, separated by commas."], max_tokens=40, stop=["5"])[0]
    assert "5" not in reply and "6" not in reply


def test_prompt_longer_than_the_context_names_both_lengths(model):
    with pytest.raises(
        PromptTooLongError, match=r"prompt of \d+ tokens does not fit the context of 512 tokens"
    ):
        model.generate(["word " * 600], max_tokens=4)


def test_truncated_gguf_is_a_clear_error(tmp_path):
    truncated = tmp_path / "truncated.gguf"
    with MODEL_PATH.open("rb") as source:
        truncated.write_bytes(source.read(1 << 20))
    with pytest.raises(ModelError, match="cannot load GGUF model .*truncated.gguf"):
        LlamaCppModel(truncated, n_ctx=256, n_threads=2)


def test_amx_detection_reads_cpu_flags():
    assert cpu_has_amx("flags\t\t: fpu sse avx512f amx_bf16 amx_tile amx_int8\n")
    assert not cpu_has_amx("flags\t\t: fpu sse avx2 avx512f\n")


def test_eval_gives_the_same_score_twice():
    args = [
        "eval",
        "sentiment",
        "--prompt",
        "Let's think step by step.",
        "--limit",
        "6",
        "--json",
        "--no-cache",
        "--threads",
        "2",
        "--n-ctx",
        "1024",
    ]
    first, second = CliRunner().invoke(main, args), CliRunner().invoke(main, args)
    assert first.exit_code == 0, first.output
    a, b = json.loads(first.output), json.loads(second.output)
    assert a["n"] == 6 and 0.0 <= a["score"] <= 1.0
    assert a["score"] == b["score"]
    assert [o["final_answer"] for o in a["outcomes"]] == [o["final_answer"] for o in b["outcomes"]]
    assert a["model"]["sha256"] == load_catalog()[DEFAULT_MODEL].sha256


def test_short_optimization_offline_writes_a_valid_run_directory(tmp_path, no_network):
    run_dir = tmp_path / "run"
    result = CliRunner().invoke(
        main,
        [
            "optimize",
            "sentiment",
            "--steps",
            "2",
            "--candidates",
            "2",
            "--dev-limit",
            "8",
            "--test-limit",
            "8",
            "--threads",
            "2",
            "--n-ctx",
            "2048",
            "--run-dir",
            str(run_dir),
            "--quiet",
        ],
    )
    assert result.exit_code == 0, result.output
    assert no_network == []
    assert (
        'initial prompt: "Let\'s think step by step."' in result.output and "final prompt:" in result.output
    )
    config = json.loads((run_dir / "config.json").read_text())
    assert config["models"]["task"]["sha256"] == load_catalog()[DEFAULT_MODEL].sha256
    assert config["config"]["steps"] == 2 and config["config"]["seed"] == 0
    assert config["versions"]["llama-cpp-python"] != "not installed"
    records = [json.loads(line) for line in (run_dir / "trajectory.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["kind"] in ("init", "step")] == [-1, 0, 1]
    for r in records:
        if r["kind"] == "candidate":
            assert (
                r["budget"] in (30, 10) and isinstance(r["edit_distance"], int) and 0 <= r["dev_score"] <= 1
            )
    index_meta = json.loads((run_dir / "indexes" / "trajectory.json").read_text())
    assert len(index_meta["rows"]) == 3 and index_meta["dimension"] == 384
    summary = json.loads((run_dir / "result.json").read_text())
    trajectory_scores = [r["dev_score"] for r in records if r["kind"] in ("init", "step")]
    assert summary["final"]["dev_score"] == max(trajectory_scores)
    assert summary["initial_test"] is not None and summary["final_test"] is not None
    assert summary["cpu_seconds"] > 0  # the real model's work, counted on every thread of the process
    show = CliRunner().invoke(main, ["show", str(run_dir)])
    assert show.exit_code == 0 and "final prompt" in show.output


@pytest.mark.skipif(not (SHARED_DATA / "bbh" / "navigate").is_dir(), reason="../shared/data is not present")
def test_eval_on_a_gpo_layout_directory():
    result = CliRunner().invoke(
        main,
        [
            "eval",
            str(SHARED_DATA / "bbh" / "navigate"),
            "--prompt",
            "Let's think step by step.",
            "--limit",
            "2",
            "--threads",
            "2",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["n"] == 2 and data["task"] == "navigate"
    missing = CliRunner().invoke(
        main, ["eval", str(SHARED_DATA / "bbh" / "navigate"), "--prompt", "x", "--split", "test"]
    )
    assert missing.exit_code == 1 and "test.jsonl not found" in missing.output


# Kill-and-resume at named points: tests/test_faults.py.
