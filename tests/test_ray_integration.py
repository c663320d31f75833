"""Ray with the real bundled model (SmolLM2-135M): eval, a short optimize and a small bench
sweep through a local Ray head give what the local paths give. Run under the model lock."""

import json

import pytest
from click.testing import CliRunner
from conftest import bundled_model_path
from ray_head import comparable, deadline, ray_head  # noqa: F401 (fixtures)

from gpo_local.app.cli import main

pytestmark = pytest.mark.integration

bundled_model_path()  # skips the module where the bundled model is not installed

RAY = ["--ray", "auto", "--ray-actors", "2"]


def run(args):
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    return result.output


def test_eval_through_two_actors_equals_the_local_evaluator(ray_head, deadline):
    args = [
        "eval",
        "sentiment",
        "--prompt",
        "Classify the review.",
        "--limit",
        "8",
        "--json",
        "--no-cache",
        "--threads",
        "1",
        "--n-ctx",
        "1024",
    ]
    local, remote = json.loads(run(args)), json.loads(run(args + RAY))
    assert remote == local and local["n"] == 8


def timeless(path):
    """trajectory.jsonl records without their clock fields."""
    records = [json.loads(line) for line in path.read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in ("time", "seconds", "elapsed", "usage")} for r in records]


def test_short_optimize_through_two_actors_has_the_local_trajectory(ray_head, deadline, tmp_path):
    args = [
        "optimize",
        "sentiment",
        "--steps",
        "1",
        "--candidates",
        "2",
        "--dev-limit",
        "6",
        "--test-limit",
        "4",
        "--threads",
        "1",
        "--n-ctx",
        "1024",
        "--no-cache",
        "--quiet",
    ]
    run(args + ["--run-dir", str(tmp_path / "local")])
    run(args + RAY + ["--run-dir", str(tmp_path / "ray")])
    assert timeless(tmp_path / "ray" / "trajectory.jsonl") == timeless(
        tmp_path / "local" / "trajectory.jsonl"
    )
    local, remote = (json.loads((tmp_path / d / "result.json").read_text()) for d in ("local", "ray"))
    for key in ("initial", "final", "initial_test", "final_test", "task_generations", "test_outcomes"):
        assert remote[key] == local[key]


def test_a_bench_sweep_on_ray_gives_the_local_results(ray_head, deadline, tmp_path):
    config = tmp_path / "tiny.toml"
    config.write_text(
        '[bench]\ntasks = ["sentiment"]\nmethods = ["empty", "cot"]\nseeds = [0]\n'
        "[optimize]\ndev-limit = 4\ntest-limit = 4\nthreads = 1\nn-ctx = 1024\nno-cache = true\n"
    )
    base = ["bench", "quality", "--config", str(config)]
    run(base + ["--out", str(tmp_path / "local")])
    run(base + ["--out", str(tmp_path / "ray"), "--ray", "auto"])

    assert comparable(tmp_path / "ray") == comparable(tmp_path / "local")
    assert comparable(tmp_path / "local")["counts"] == {"done": 2}
    show = CliRunner().invoke(main, ["show", str(tmp_path / "ray" / "runs" / "sentiment" / "cot" / "seed0")])
    assert show.exit_code == 0 and "final prompt" in show.output
