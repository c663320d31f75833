"""The quality-benchmark harness with a fake cell runner: no model is loaded here."""

import csv
import io
import json
import os
import stat
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import SHARED_DATA

from gpo_local import quality
from gpo_local.app.cli import main
from gpo_local.errors import ConfigError
from gpo_local.quality import SubprocessRunner, check_cells, load_config, run_bench
from gpo_local.tasks.builtin import BUILTIN_TASKS
from gpo_local.tasks.suite import SUITE_CONFIRMATION, SUITE_TUNING


def make_task_dir(root, name, n=6):
    directory = root / name
    directory.mkdir(parents=True)
    lines = "".join(json.dumps({"input": f"q{i}", "target": "yes"}) + "\n" for i in range(n))
    for split in ("train", "eval", "format"):
        (directory / f"{split}.jsonl").write_text(lines)
    return directory


@pytest.fixture
def layout(tmp_path):
    """A repository-like layout: benchmarks/configs/ and, beside the repo, shared/data/bbh/<task>."""
    make_task_dir(tmp_path / "shared" / "data" / "bbh", "navigate")
    make_task_dir(tmp_path / "shared" / "data" / "bbh", "hyperbaton")
    configs = tmp_path / "repo" / "benchmarks" / "configs"
    configs.mkdir(parents=True)
    return configs


BASE = """
[bench]
tasks = ["../../../shared/data/bbh/navigate", "../../../shared/data/bbh/hyperbaton"]
methods = ["gpo", "opro"]
seeds = [0, 1, 2]
[optimize]
steps = 2
candidates = 2
test-holdout = 2
no-cache = true
[methods.opro]
candidates = 4
[variants.linear]
schedule = "linear"
[variants.opro-short]
method = "opro"
steps = 1
"""


def write_config(configs, text=BASE, name="quick.toml"):
    path = configs / name
    path.write_text(text)
    return path


class FakeRunner:
    """Writes the files optimize would: config.json at the start, result.json at the end.
    final_test = 0.1 * (row index + 1) + 0.1 * seed (+ 0.05 on hyperbaton)."""

    ROWS = ["gpo", "opro", "linear", "opro-short"]

    def __init__(self, fail=(), interrupt=()):
        self.calls = []
        self.fail, self.interrupt = set(fail), set(interrupt)

    def __call__(self, cell, *, resume):
        key = (cell.row.name, cell.task.name, cell.seed)
        self.calls.append((*key, resume))
        (cell.run_dir / "config.json").write_text("{}")
        if key in self.interrupt:
            self.interrupt.discard(key)
            raise KeyboardInterrupt
        if key in self.fail:
            return "exit code 1: Error: the optimizer exploded"
        score = round(
            0.1 * (self.ROWS.index(cell.row.name) + 1)
            + 0.1 * cell.seed
            + (0.05 if cell.task.name == "hyperbaton" else 0),
            4,
        )
        result = {
            "task": cell.task.name,
            "method": cell.row.method,
            "initial": {"prompt": "p0", "dev_score": 0.25, "step": -1},
            "final": {"prompt": "p1", "dev_score": 0.5, "step": 1},
            "initial_test": 0.2,
            "final_test": score,
            "test_outcomes": {"initial": None, "final": None},
            "task_generations": 40,
            "dev_scorings": 20 + cell.seed,
            "optimizer_calls": 4,
            "task_tokens": 1000,
            "optimizer_tokens": 300,
            "seconds": 12.5,
            "cpu_seconds": 24.0,
            "stopped": "completed",
            "candidate_replies": 8,
            "drops": {"truncated": 1} if cell.seed == 0 else {},
        }
        (cell.run_dir / "result.json").write_text(json.dumps(result))
        return None


def test_cell_matrix_paths_options_and_commands(layout, tmp_path):
    config = load_config(write_config(layout))
    assert [t.name for t in config.tasks] == ["navigate", "hyperbaton"]
    assert config.tasks[0].target == str((tmp_path / "shared" / "data" / "bbh" / "navigate").resolve())
    assert config.tasks[0].benchmark == "BBH"
    assert [r.name for r in config.rows] == ["gpo", "opro", "linear", "opro-short"]
    out = tmp_path / "out"
    cells = config.cells(out)
    assert len(cells) == 3 * 2 * 4
    assert [(c.seed, c.task.name, c.row.name) for c in cells[:5]] == [
        (0, "navigate", "gpo"),
        (0, "navigate", "opro"),
        (0, "navigate", "linear"),
        (0, "navigate", "opro-short"),
        (0, "hyperbaton", "gpo"),
    ]
    assert cells[0].run_dir == out / "runs" / "navigate" / "gpo" / "seed0"
    by_row = {c.row.name: c for c in cells if c.seed == 1 and c.task.name == "navigate"}
    # [optimize] < [methods.<method>] < [variants.<name>]
    assert by_row["gpo"].options() == {
        "method": "gpo",
        "seed": 1,
        "task-model": "smollm2-135m-instruct",
        "steps": 2,
        "candidates": 2,
        "test-holdout": 2,
        "no-cache": True,
    }
    assert by_row["opro"].row.options["candidates"] == 4
    assert by_row["linear"].row.options["schedule"] == "linear" and by_row["linear"].row.method == "gpo"
    assert by_row["opro-short"].row.options == {
        "steps": 1,
        "candidates": 4,
        "test-holdout": 2,
        "no-cache": True,
    }
    argv = by_row["opro"].argv(resume=False)
    assert argv[:2] == ["optimize", config.tasks[0].target]
    assert "--method" in argv and argv[argv.index("--method") + 1] == "opro"
    assert argv[argv.index("--candidates") + 1] == "4" and "--no-cache" in argv
    assert argv[argv.index("--seed") + 1] == "1" and argv[argv.index("--run-dir") + 1] == str(
        by_row["opro"].run_dir
    )
    assert "--method" not in by_row["gpo"].argv(resume=False)  # gpo is optimize's default
    assert by_row["gpo"].argv(resume=True) == [
        "optimize",
        config.tasks[0].target,
        "--run-dir",
        str(by_row["gpo"].run_dir),
        "--resume",
        "--quiet",
    ]


def test_several_task_models_get_a_folder_level(layout, tmp_path):
    text = BASE.replace(
        "seeds = [0, 1, 2]", 'seeds = [0]\ntask_models = ["smollm2-135m-instruct", "/m/big-7b.Q4.gguf"]'
    )
    cells = load_config(write_config(layout, text)).cells(tmp_path / "o")
    assert len(cells) == 2 * 2 * 4
    assert {c.run_dir.name for c in cells} == {"smollm2-135m-instruct", "big-7b.Q4"}


def test_runs_every_cell_writes_three_files_and_skips_finished_cells(layout, tmp_path):
    config = load_config(write_config(layout))
    out = tmp_path / "out"
    runner = FakeRunner()
    results = run_bench(config, out, runner=runner)
    assert len(runner.calls) == 24 and not any(resume for *_, resume in runner.calls)
    assert results["counts"] == {"done": 24}
    for name in ("results.json", "results.csv", "results.md"):
        assert (out / name).is_file()
    cell_dir = out / "runs" / "navigate" / "opro" / "seed2"
    written = tomllib.loads((cell_dir / "cell.toml").read_text())
    assert written == {
        "method": "opro",
        "seed": 2,
        "task-model": "smollm2-135m-instruct",
        "steps": 2,
        "candidates": 4,
        "test-holdout": 2,
        "no-cache": True,
    }
    assert json.loads((cell_dir / "bench.json").read_text())["attempts"] == 1
    events = [json.loads(line)["event"] for line in (out / "events.jsonl").read_text().splitlines()]
    assert (
        events[0] == "bench_started"
        and events[-1] == "bench_finished"
        and events.count("cell_finished") == 24
    )

    again = FakeRunner()
    results = run_bench(config, out, runner=again)
    assert again.calls == [] and results["counts"] == {"done": 24}


def test_a_killed_run_resumes_the_unfinished_cell_and_continues(layout, tmp_path):
    config = load_config(write_config(layout))
    out = tmp_path / "out"
    killed = FakeRunner(interrupt={("linear", "navigate", 0)})
    with pytest.raises(KeyboardInterrupt):
        run_bench(config, out, runner=killed)
    assert [c[:3] for c in killed.calls] == [
        ("gpo", "navigate", 0),
        ("opro", "navigate", 0),
        ("linear", "navigate", 0),
    ]
    partial = json.loads((out / "results.json").read_text())
    statuses = {(c["method"], c["task"], c["seed"]): c["status"] for c in partial["cells"]}
    assert statuses[("gpo", "navigate", 0)] == "done" and statuses[("linear", "navigate", 0)] == "unfinished"
    assert statuses[("gpo", "hyperbaton", 0)] == "pending"
    assert "| gpo | 10.0 (1) | n/a | 10.0 (1 of 2 tasks) | 35.43 |" in (out / "results.md").read_text()

    restarted = FakeRunner()
    results = run_bench(config, out, runner=restarted)
    assert restarted.calls[0] == ("linear", "navigate", 0, True)  # resumed with --resume
    assert len(restarted.calls) == 22 and not any(resume for *_, resume in restarted.calls[1:])
    assert results["counts"] == {"done": 24}


def test_a_failed_cell_is_recorded_and_the_others_go_on(layout, tmp_path):
    config = load_config(write_config(layout))
    out = tmp_path / "out"
    results = run_bench(config, out, runner=FakeRunner(fail={("opro", "hyperbaton", 1)}))
    assert results["counts"] == {"done": 23, "failed": 1}
    failed = next(c for c in results["cells"] if c["status"] == "failed")
    assert (failed["method"], failed["task"], failed["seed"]) == ("opro", "hyperbaton", 1)
    assert failed["error"] == "exit code 1: Error: the optimizer exploded"
    assert "the optimizer exploded" in (out / "results.md").read_text()
    summary = next(s for s in results["summary"] if (s["method"], s["task"]) == ("opro", "hyperbaton"))
    assert summary["n_seeds"] == 2 and summary["seeds"] == [0, 2]
    # A restart retries it (resumed, since its optimize had started) and clears the failure.
    retry = FakeRunner()
    results = run_bench(config, out, runner=retry)
    assert retry.calls == [("opro", "hyperbaton", 1, True)]
    assert results["counts"] == {"done": 24}


def test_a_runner_exception_or_missing_result_fails_only_that_cell(layout, tmp_path):
    config = load_config(write_config(layout, BASE.replace("seeds = [0, 1, 2]", "seeds = [0]")))

    def runner(cell, *, resume):
        if cell.row.name == "gpo":
            raise RuntimeError("no such file")
        if cell.row.name == "opro":
            return None  # claims success but wrote nothing
        return FakeRunner()(cell, resume=resume)

    results = run_bench(config, tmp_path / "out", runner=runner)
    errors = {c["method"]: c["error"] for c in results["cells"] if c["status"] == "failed"}
    assert errors == {
        "gpo": "RuntimeError: no such file",
        "opro": "optimize ended without writing result.json",
    }
    assert results["counts"] == {"done": 4, "failed": 4}


def test_aggregation_over_seeds_and_tasks(layout, tmp_path):
    config = load_config(write_config(layout))
    results = run_bench(config, tmp_path / "out", runner=FakeRunner())
    summary = {(s["method"], s["task"]): s for s in results["summary"]}
    gpo_nav = summary[("gpo", "navigate")]
    # seeds 0, 1, 2 -> 0.1, 0.2, 0.3: mean 0.2, sample std 0.1
    assert gpo_nav["test_scores"] == [0.1, 0.2, 0.3]
    assert gpo_nav["test_mean"] == pytest.approx(0.2) and gpo_nav["test_std"] == pytest.approx(0.1)
    assert gpo_nav["n_seeds"] == 3 and gpo_nav["initial_test_mean"] == pytest.approx(0.2)
    assert gpo_nav["dev_scorings"] == pytest.approx(21.0) and gpo_nav["dev_mean"] == pytest.approx(0.5)
    assert summary[("opro", "hyperbaton")]["test_mean"] == pytest.approx(0.35)
    means = {m["method"]: m for m in results["method_means"]}
    # gpo: navigate 0.2, hyperbaton 0.25 -> 0.225; per-seed means 0.125, 0.225, 0.325 -> std 0.1
    assert means["gpo"]["test_mean_over_tasks"] == pytest.approx(0.225)
    assert means["gpo"]["test_std_over_seeds"] == pytest.approx(0.1)
    assert means["gpo"]["complete"] and means["gpo"]["seeds_complete"] == 3
    assert means["gpo"]["benchmark_means"] == {"BBH": pytest.approx(0.225)}
    assert means["linear"]["test_mean_over_tasks"] == pytest.approx(0.425) and means["linear"]["variant"]
    assert means["gpo"]["optimizer_calls"] == 4 and means["gpo"]["seconds"] == 12.5
    assert means["gpo"]["cells_done"] == 6
    # 8 candidate replies a cell, 1 dropped in each seed-0 cell (2 tasks): 46 of 48 usable.
    assert (means["gpo"]["candidate_replies"], means["gpo"]["usable_replies"]) == (48, 46)


def test_the_first_method_is_compared_with_each_other_cell_by_cell(layout, tmp_path):
    config = load_config(write_config(layout))
    # gpo's cells score 0.1 below opro's everywhere; opro fails on navigate seed 0, which leaves
    # that cell out of the pairing (5 pairs, not 6).
    results = run_bench(config, tmp_path / "out", runner=FakeRunner(fail={("opro", "navigate", 0)}))
    paired = {c["against"]: c for c in results["paired"]}
    assert list(paired) == ["opro", "linear", "opro-short"]
    assert paired["opro"] == {
        "method": "gpo",
        "against": "opro",
        "task_model": config.task_models[0],
        "cells": 5,
        "mean_difference": pytest.approx(-0.1),
        "wins": 0,
        "ties": 0,
        "losses": 5,
        "p_value": pytest.approx(2 / 32, abs=1e-4),
        # every difference is -0.1: the interval has no width
        "ci_low": pytest.approx(-0.1),
        "ci_high": pytest.approx(-0.1),
    }
    assert (paired["linear"]["cells"], paired["linear"]["mean_difference"]) == (6, pytest.approx(-0.2))
    assert paired["linear"]["p_value"] == pytest.approx(2 / 64, abs=1e-4)  # rounded to 4 digits
    md = (tmp_path / "out" / "results.md").read_text()
    assert "## gpo against each method, cell by cell" in md
    assert "| opro | 5 | -10.0 | [-10.0, -10.0] | 0 / 0 / 5 | 0.062 |" in md
    paired_rows = list(csv.DictReader(io.StringIO((tmp_path / "out" / "paired.csv").read_text())))
    assert [(r["against"], r["cells"], r["wins"], r["losses"]) for r in paired_rows] == [
        ("opro", "5", "0", "5"),
        ("linear", "6", "0", "6"),
        ("opro-short", "6", "0", "6"),
    ]
    assert float(paired_rows[0]["ci_low"]) == pytest.approx(-0.1)
    assert float(paired_rows[0]["p_value"]) == 0.0625


def test_intervals_over_cells_and_in_paired_comparisons(layout, tmp_path):
    config = load_config(write_config(layout))
    results = run_bench(config, tmp_path / "out", runner=FakeRunner())
    means = {m["method"]: m for m in results["method_means"]}
    # gpo's six cells: 0.1, 0.2, 0.3 and 0.15, 0.25, 0.35; s = sqrt(0.04375 / 5), t(0.975, 5) = 2.5706.
    assert means["gpo"]["cells_with_scores"] == 6 and means["gpo"]["cell_mean"] == pytest.approx(0.225)
    assert (means["gpo"]["cell_ci_low"], means["gpo"]["cell_ci_high"]) == (0.1268, 0.3232)
    md = (tmp_path / "out" / "results.md").read_text()
    assert "## Mean over (task, seed) cells, with 95% interval" in md
    assert "| gpo | 6 | 22.5 | [12.7, 32.3] |" in md
    rows = list(csv.DictReader(io.StringIO((tmp_path / "out" / "results.csv").read_text())))
    gpo_mean = next(r for r in rows if r["method"] == "gpo" and r["task"] == quality.MEAN_ROW)
    assert (gpo_mean["cells_with_scores"], gpo_mean["cell_ci_low"], gpo_mean["cell_ci_high"]) == (
        "6",
        "0.1268",
        "0.3232",
    )
    gpo_nav = next(r for r in rows if r["method"] == "gpo" and r["task"] == "navigate")
    assert gpo_nav["cell_ci_low"] == ""  # per-task rows keep their seed std only


def test_paired_interval_with_varying_differences(layout, tmp_path):
    class Uneven(FakeRunner):
        def __call__(self, cell, *, resume):
            error = super().__call__(cell, resume=resume)
            if cell.row.name == "opro" and cell.seed == 2:  # opro 0.3 higher there: differences vary
                result = json.loads((cell.run_dir / "result.json").read_text())
                result["final_test"] = round(result["final_test"] + 0.3, 4)
                (cell.run_dir / "result.json").write_text(json.dumps(result))
            return error

    config = load_config(write_config(layout))
    results = run_bench(config, tmp_path / "out", runner=Uneven())
    opro = next(c for c in results["paired"] if c["against"] == "opro")
    # differences -0.1 (4 cells) and -0.4 (2 cells): mean -0.2, s = sqrt(0.12 / 5), t(0.975, 5) = 2.5706
    assert opro["mean_difference"] == pytest.approx(-0.2)
    assert (opro["ci_low"], opro["ci_high"]) == (-0.3626, -0.0374)
    assert (opro["wins"], opro["ties"], opro["losses"], opro["p_value"]) == (0, 0, 6, 0.0312)


def test_sign_flip_p_values():
    from gpo_local.stats import sign_flip_p_value

    assert sign_flip_p_value([0.1, 0.1, 0.1]) == pytest.approx(2 / 8)
    # |±3 ±1 ±1| >= 3 in 6 of the 8 sign patterns.
    assert sign_flip_p_value([3, 1, -1]) == pytest.approx(6 / 8)
    assert sign_flip_p_value([1, -1]) == 1.0 and sign_flip_p_value([0, 0]) == 1.0
    assert sign_flip_p_value([0, 0.2, 0.2]) == pytest.approx(2 / 4)  # zeros carry no sign
    # Beyond the exact limit: a seeded draw, reproducible, near the exact 2 / 2^20.
    many = [1.0] * 20
    assert sign_flip_p_value(many) == sign_flip_p_value(many) < 0.001


def test_single_seed_has_no_std(layout, tmp_path):
    config = load_config(write_config(layout, BASE.replace("seeds = [0, 1, 2]", "seeds = [0]")))
    results = run_bench(config, tmp_path / "out", runner=FakeRunner())
    assert all(s["test_std"] is None for s in results["summary"])
    assert "±" not in (tmp_path / "out" / "results.md").read_text().split("## Cost")[0].split("|---")[1]


def test_paper_figures_for_methods_only(layout, tmp_path):
    config = load_config(write_config(layout))
    results = run_bench(config, tmp_path / "out", runner=FakeRunner())
    assert results["paper"] == [
        {"method": "gpo", "task": "BBH", "score": 0.3543, "source": quality.PAPER_SOURCE},
        {"method": "opro", "task": "BBH", "score": 0.3329, "source": quality.PAPER_SOURCE},
    ]
    assert "Llama-2-7b-chat" in quality.PAPER_SOURCE


def test_json_csv_and_markdown_contents(layout, tmp_path):
    config = load_config(write_config(layout))
    out = tmp_path / "out"
    run_bench(config, out, runner=FakeRunner())
    data = json.loads((out / "results.json").read_text())
    assert set(data) >= {"config", "cells", "summary", "method_means", "paper"}
    assert data["config"]["settings"]["optimize"]["steps"] == 2
    cell = data["cells"][0]
    for key in (
        "method",
        "task",
        "seed",
        "task_model",
        "run_dir",
        "status",
        "initial_test",
        "final_test",
        "final_dev",
        "dev_scorings",
        "optimizer_calls",
        "task_tokens",
        "optimizer_tokens",
        "seconds",
        "stopped",
    ):
        assert key in cell
    assert cell["final_test"] == 0.1 and cell["stopped"] == "completed" and cell["optimizer_tokens"] == 300

    rows = list(csv.DictReader(io.StringIO((out / "results.csv").read_text())))
    assert len(rows) == 4 * 2 + 4
    gpo_nav = next(r for r in rows if r["method"] == "gpo" and r["task"] == "navigate")
    assert float(gpo_nav["test_mean"]) == pytest.approx(0.2) and float(gpo_nav["test_std"]) == pytest.approx(
        0.1
    )
    assert gpo_nav["n_seeds"] == "3" and gpo_nav["benchmark"] == "BBH"
    gpo_mean = next(r for r in rows if r["method"] == "gpo" and r["task"] == quality.MEAN_ROW)
    assert float(gpo_mean["test_mean"]) == pytest.approx(0.225) and float(gpo_mean["paper_score"]) == 0.3543
    linear_mean = next(r for r in rows if r["method"] == "linear" and r["task"] == quality.MEAN_ROW)
    assert linear_mean["paper_score"] == ""

    md = (out / "results.md").read_text()
    lines = md.splitlines()
    header = next(line for line in lines if line.startswith("| method | navigate"))
    assert header == "| method | navigate | hyperbaton | mean over tasks | paper BBH ¹ |"
    assert "| gpo | 20.0 ± 10.0 (3) | 25.0 ± 10.0 (3) | 22.5 ± 10.0 | 35.43 |" in lines
    assert "| linear (gpo) | 40.0 ± 10.0 (3) | 45.0 ± 10.0 (3) | 42.5 ± 10.0 |  |" in lines
    assert "¹ The paper's figure, not ours" in md and "cells: 24 of 24 done" in md
    assert "| gpo | 6 | 21 | 4 | 1,000 | 300 | 12.5 | 24 |" in md  # optimize s, then CPU s
    assert any(line.startswith("| gpo | 6 | 21 |") and line.endswith("| 46 of 48 (96%) |") for line in lines)


def test_relative_task_paths_fall_back_to_the_working_directory(tmp_path, monkeypatch):
    make_task_dir(tmp_path / "work" / "data" / "bbh", "navigate")
    configs = tmp_path / "elsewhere"
    configs.mkdir()
    path = write_config(configs, '[bench]\ntasks = ["data/bbh/navigate", "sentiment"]\nmethods = ["gpo"]\n')
    monkeypatch.chdir(tmp_path / "work")
    config = load_config(path)
    assert config.tasks[0].target == str((tmp_path / "work" / "data" / "bbh" / "navigate").resolve())
    assert config.tasks[1].target == "sentiment" and config.tasks[1].benchmark is None
    assert config.seeds == (0,) and config.task_models == ("smollm2-135m-instruct",)


@pytest.mark.parametrize(
    "change, message",
    [
        (("[optimize]", "[optimise]"), "quick.toml: optimise: unknown section"),
        (("seeds = [0, 1, 2]", "seeds = [0]\ntask = 1"), "quick.toml: [bench] task: unknown key"),
        (("steps = 2", "stepz = 2"), "quick.toml: [optimize] stepz: unknown optimize option"),
        (("steps = 2", "seed = 3"), "quick.toml: [optimize] seed: set by [bench] seeds, not here"),
        (
            ('methods = ["gpo", "opro"]', 'methods = ["gpo", "gpt"]'),
            "quick.toml: [bench] methods: 'gpt' is not a method",
        ),
        (("[methods.opro]", "[methods.sgd]"), "quick.toml: [methods.sgd]: 'sgd' is not a method"),
        (
            ('schedule = "linear"', 'schedul = "linear"'),
            "quick.toml: [variants.linear] schedul: unknown optimize option",
        ),
        (
            ('method = "opro"', 'method = "oprah"'),
            "quick.toml: [variants.opro-short] method: 'oprah' is not a method",
        ),
        (
            ("[variants.linear]", "[variants.opro]"),
            "quick.toml: [variants.opro]: the name 'opro' is already a row",
        ),
        (
            ("bbh/hyperbaton", "bbh/hyperbatn"),
            "quick.toml: [bench] tasks: '../../../shared/data/bbh/hyperbatn' is "
            "neither a built-in task nor a directory",
        ),
        (
            ("seeds = [0, 1, 2]", 'seeds = "0"'),
            "quick.toml: [bench] seeds: must be a non-empty list of integers",
        ),
        (("steps = 2", "steps = [2]"), "quick.toml: [optimize] steps: must be a string, number or boolean"),
        (("[bench]", "[bench]\n[bench2]"), "quick.toml: bench2: unknown section"),
    ],
)
def test_config_errors_name_the_file_section_and_key(layout, change, message):
    path = write_config(layout, BASE.replace(*change))
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert str(error.value).startswith(message.replace("quick.toml", str(path), 1))
    assert "\n" not in str(error.value)


def test_config_without_rows_or_tasks(layout):
    with pytest.raises(ConfigError, match=r"\[bench\] methods: no rows"):
        load_config(write_config(layout, '[bench]\ntasks = ["sentiment"]\n'))
    with pytest.raises(ConfigError, match=r"\[bench\] tasks: missing"):
        load_config(write_config(layout, '[bench]\nmethods = ["gpo"]\n'))
    with pytest.raises(ConfigError, match="malformed TOML"):
        load_config(write_config(layout, "[bench\n"))
    with pytest.raises(ConfigError, match=r"\[bench\] is missing"):
        load_config(write_config(layout, "[optimize]\nsteps = 1\n"))


def test_a_task_directory_without_data_is_a_config_error(layout):
    (layout / "empty-task").mkdir()
    with pytest.raises(ConfigError, match=r"\[bench\] tasks: 'empty-task': .*no split files found"):
        load_config(write_config(layout, '[bench]\ntasks = ["empty-task"]\nmethods = ["gpo"]\n'))


def test_check_cells_parses_each_command_with_the_installed_optimize(layout, tmp_path):
    text = (
        '[bench]\ntasks = ["sentiment"]\nmethods = ["gpo"]\n[optimize]\nsteps = '
        "1\n[variants.none]\ncandidates = 0\n"
    )
    config = load_config(write_config(layout, text))
    with pytest.raises(ConfigError) as error:
        check_cells(config, tmp_path / "out")
    assert str(error.value).startswith(
        f"{layout / 'quick.toml'}: [variants.none] candidates: Invalid value for '--candidates'"
    )
    good = load_config(write_config(layout, text.replace("candidates = 0", "candidates = 1")))
    check_cells(good, tmp_path / "out")


def test_changed_options_of_a_started_cell_are_refused(layout, tmp_path):
    out = tmp_path / "out"
    run_bench(load_config(write_config(layout)), out, runner=FakeRunner())
    changed = load_config(write_config(layout, BASE.replace("candidates = 4", "candidates = 5")))
    with pytest.raises(ConfigError, match="the options of cell opro / navigate / seed 0 changed"):
        run_bench(changed, out, runner=FakeRunner())


def test_subprocess_runner_reports_the_error_line(layout, tmp_path):
    fake_python = tmp_path / "fake-python"
    fake_python.write_text(
        "#!/bin/sh\necho loading\necho 'Error: model not found' >&2\necho 'Aborted!' >&2\nexit 1\n"
    )
    fake_python.chmod(fake_python.stat().st_mode | stat.S_IEXEC)
    config = load_config(write_config(layout, '[bench]\ntasks = ["sentiment"]\nmethods = ["gpo"]\n'))
    cell = config.cells(tmp_path / "out")[0]
    cell.run_dir.mkdir(parents=True)
    runner = SubprocessRunner(python=str(fake_python))
    assert runner(cell, resume=False) == "exit code 1: Error: model not found"
    log = (cell.run_dir / "optimize.log").read_text()
    assert log.startswith("$ gpo-local optimize sentiment --seed 0") and "loading" in log
    ok_python = tmp_path / "ok-python"
    ok_python.write_text("#!/bin/sh\nexit 0\n")
    ok_python.chmod(0o755)
    assert SubprocessRunner(python=str(ok_python))(cell, resume=True) is None


# Options every version of optimize has, so that the CLI's check_cells() passes.
GPO_ONLY = (
    BASE.replace('methods = ["gpo", "opro"]', 'methods = ["gpo"]').split("[methods.opro]")[0]
    + """
[variants.linear]
candidates = 1
[variants.opro-short]
steps = 1
"""
)


def test_cli_bench_quality(layout, tmp_path, monkeypatch):
    path = write_config(layout, GPO_ONLY)
    runner = FakeRunner()
    monkeypatch.setattr(quality, "SubprocessRunner", lambda: runner)
    result = CliRunner().invoke(
        main, ["bench", "quality", "--config", str(path), "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 0, result.output
    assert len(runner.calls) == 18 and (tmp_path / "o" / "results.md").is_file()
    # the default output directory is under $GPO_LOCAL_HOME/bench/<config name>
    result = CliRunner().invoke(main, ["bench", "quality", "--config", str(path), "--dry-run"])
    assert result.exit_code == 0
    home = os.environ["GPO_LOCAL_HOME"]
    assert f"--run-dir {home}/bench/quick/runs/navigate/gpo/seed0" in result.output
    assert "[18/18] opro-short / hyperbaton / seed 2 (to run)" in result.output


def test_cli_config_error_is_one_line(layout):
    path = write_config(layout, BASE.replace("steps = 2", "stepz = 2"))
    result = CliRunner().invoke(main, ["bench", "quality", "--config", str(path)])
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and result.output.startswith(f"Error: {path}: [optimize] stepz")


CONFIGS = Path(__file__).resolve().parents[1] / "benchmarks" / "configs"


def test_suite_configs_run_the_two_halves():
    suite = load_config(CONFIGS / "suite.toml")
    assert tuple(t.name for t in suite.tasks) == SUITE_CONFIRMATION and suite.seeds == (0, 1, 2)
    assert [r.name for r in suite.rows] == [
        "gpo",
        "sgdm",
        "ape",
        "apo",
        "opro",
        "pe2",
        "cot",
        "empty",
        "reference",
    ]
    assert suite.task_models == ("qwen2.5-coder-0.5b-instruct",)
    assert suite.rows[0].options == {
        "optimizer-model": "qwen2.5-coder-1.5b-instruct",
        "steps": 4,
        "candidates": 6,
        "optimizer-max-tokens": 128,
        "max-prompt-words": 100,
    }
    tuning = load_config(CONFIGS / "suite-tuning.toml")
    assert tuple(t.name for t in tuning.tasks) == SUITE_TUNING and tuning.rows == suite.rows


@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason=f"benchmark data not found at {SHARED_DATA}")
def test_shipped_configs_load(tmp_path, monkeypatch):
    monkeypatch.setenv("GPO_LOCAL_DATA", str(SHARED_DATA))
    names = sorted(p.name for p in CONFIGS.glob("*.toml"))
    assert {
        "quick.toml",
        "paper.toml",
        "ablation-schedule.toml",
        "ablation-gradient.toml",
        "ablation-momentum.toml",
        "ablation-selection.toml",
        "ablation-momentum-update.toml",
        "ablation-update.toml",
        "ablation-warmup.toml",
    } <= set(names)
    for name in names:
        config = load_config(CONFIGS / name)
        if not name.startswith("suite"):  # the suite's tasks are built-in ones
            assert all(t.benchmark == "BBH" for t in config.tasks), name
    quick = load_config(CONFIGS / "quick.toml")
    # BBH tasks have no human reference prompt, so no `reference` row.
    assert [r.name for r in quick.rows] == [m for m in quality.METHODS if m != "reference"]
    assert len(quick.tasks) >= 2
    assert len(load_config(CONFIGS / "paper.toml").tasks) == len(
        [p for p in (SHARED_DATA / "bbh").iterdir() if p.is_dir()]
    )
    schedules = load_config(CONFIGS / "ablation-schedule.toml")
    assert {r.name: r.options["schedule"] for r in schedules.rows} == {
        "cosine": "cosine",
        "linear": "linear",
        "fixed": "fixed",
        "none": "none",
    }


def test_relative_model_paths_resolve_beside_the_config(layout):
    (layout / "models").mkdir()
    (layout / "models" / "tiny.gguf").write_bytes(b"GGUF")
    text = (
        '[bench]\ntasks = ["sentiment"]\nmethods = ["gpo"]\ntask_models = ["models/tiny.gguf", '
        '"smollm2-135m-instruct"]\n'
    )
    config = load_config(write_config(layout, text))
    assert config.task_models == (str((layout / "models" / "tiny.gguf").resolve()), "smollm2-135m-instruct")


DATA_ROOT_CONFIG = """
[bench]
data_root = "../../../shared/data"
tasks = ["bbh/navigate"]
methods = ["gpo"]
"""


def test_data_root_precedence_flag_then_environment_then_config(layout, tmp_path, monkeypatch):
    monkeypatch.delenv("GPO_LOCAL_DATA", raising=False)
    path = write_config(layout, DATA_ROOT_CONFIG)
    shared = tmp_path / "shared" / "data"
    assert load_config(path).tasks[0].target == str(shared / "bbh" / "navigate")  # the config's key
    other = tmp_path / "other"
    make_task_dir(other / "bbh", "navigate")
    monkeypatch.setenv("GPO_LOCAL_DATA", str(other))  # the environment beats the config
    assert load_config(path).tasks[0].target == str(other / "bbh" / "navigate")
    assert load_config(path).data_root == other
    flag = tmp_path / "flag"
    make_task_dir(flag / "bbh", "navigate")  # the flag beats both
    assert load_config(path, data_root=flag).tasks[0].target == str(flag / "bbh" / "navigate")
    # relative to the working directory
    assert load_config(path, data_root="flag", cwd=tmp_path).tasks[0].target == str(flag / "bbh" / "navigate")


def test_a_missing_data_folder_is_one_line_naming_it_and_what_to_put_there(layout, tmp_path, monkeypatch):
    path = write_config(layout, DATA_ROOT_CONFIG)
    monkeypatch.setenv("GPO_LOCAL_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert str(error.value) == (
        f"data folder {tmp_path / 'nowhere'} not found: set GPO_LOCAL_DATA or --data-root to a folder "
        f"holding "
        "bbh/navigate/{train,eval,format}.jsonl (docs/benchmarking.md)"
    )
    (tmp_path / "nowhere").mkdir()  # the first missing folder on the way to the task is named
    with pytest.raises(ConfigError, match=f"^data folder {tmp_path / 'nowhere' / 'bbh'} not found: "):
        load_config(path)
    monkeypatch.delenv("GPO_LOCAL_DATA")
    result = CliRunner().invoke(
        main,
        ["bench", "quality", "--config", str(path), "--dry-run", "--data-root", str(tmp_path / "elsewhere")],
    )
    assert result.exit_code == 1
    assert result.output == (
        f"Error: data folder {tmp_path / 'elsewhere'} not found: set GPO_LOCAL_DATA or "
        "--data-root to a folder holding bbh/navigate/{train,eval,format}.jsonl "
        "(docs/benchmarking.md)\n"
    )


def test_data_root_must_be_a_string(layout):
    with pytest.raises(ConfigError, match=r"\[bench\] data_root: must be a non-empty string"):
        load_config(write_config(layout, DATA_ROOT_CONFIG.replace('"../../../shared/data"', "3")))


def test_shipped_configs_without_data_fail_in_one_line_naming_the_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("GPO_LOCAL_DATA", str(tmp_path))
    for path in sorted(CONFIGS.glob("*.toml")):
        if all(task in BUILTIN_TASKS for task in tomllib.loads(path.read_text())["bench"]["tasks"]):
            load_config(path)  # built-in tasks only (the suite): nothing to read from the data root
            continue
        with pytest.raises(
            ConfigError, match=f"^data folder {tmp_path / 'bbh'} not found: set GPO_LOCAL_DATA"
        ):
            load_config(path)
