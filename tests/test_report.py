"""`show` and `report` on run directories made by the real CLI with fakes, and on fabricated
result files (per-example outcomes, a bench quality results.json)."""

import base64
import json
import re

import fake_cli
from click.testing import CliRunner

from gpo_local.app.cli import main
from gpo_local.app.report import render_report, word_diff
from gpo_local.runs.rundata import load_run, outcome_changes

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def data_uris(html: str) -> list[str]:
    """The images' sources in a report."""
    return re.findall(r'<img [^>]*src="([^"]+)"', html)


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def make_run(tmp_path, monkeypatch, name="run", *args):
    run_dir = tmp_path / name
    result = fake_cli.optimize(monkeypatch, run_dir, "--quiet", *args)
    assert result.exit_code == 0, result.output
    return run_dir


def outcome(example_id, score, prediction):
    return {
        "example_id": example_id,
        "first_answer": f"so {prediction}",
        "final_answer": prediction,
        "prediction": prediction,
        "score": score,
    }


def test_show_lists_steps_budgets_distances_candidates_and_scores(tmp_path, monkeypatch):
    run_dir = make_run(tmp_path, monkeypatch)
    out = run("show", run_dir)
    assert out.exit_code == 0, out.output
    view = load_run(run_dir)
    lines = out.output.splitlines()
    for step in view.steps[1:]:
        dists = step.distances
        row = next(line for line in lines if re.match(rf"│\s+{step.label} │", line))
        cells = [c.strip() for c in row.strip("│").split("│")]
        assert cells[1] == str(step.budget)
        assert cells[2] == f"{sum(dists) / len(dists):.1f} ({min(dists)}-{max(dists)})"
        assert cells[3] == str(len(step.candidates))
        assert cells[4] == step.prompt and cells[5] == f"{100 * step.dev_score:.1f}"
    assert [c["budget"] for s in view.steps[1:] for c in s.candidates][:1] == [40]
    summary = json.loads((run_dir / "result.json").read_text())
    assert f"final prompt (step {summary['final']['step'] + 1}): {summary['final']['prompt']}" in out.output
    assert f"test {100 * summary['final_test']:.1f}" in out.output


def test_report_has_every_section_embedded_plots_and_a_word_diff(tmp_path, monkeypatch):
    run_dir = make_run(tmp_path, monkeypatch)
    out = run("report", run_dir)
    assert out.exit_code == 0, out.output
    html = (run_dir / "report.html").read_text()
    for heading in (
        "Dev score per step",
        "Edit budget and measured edit distance",
        "Final prompt against the initial prompt (word-level diff)",
        "Test split: per-example changes",
        "Models, configuration and seeds",
    ):
        assert f"<h3>{heading}</h3>" in html
    images = data_uris(html)
    assert len(images) == 2
    for uri in images:
        assert uri.startswith("data:image/png;base64,")
        assert base64.b64decode(uri.split(",", 1)[1])[:8] == PNG_MAGIC
    # Nothing is fetched: no http(s) reference, no script, no external stylesheet.
    assert not re.search(r"(src|href)=\"(https?:)?//", html) and "<script" not in html
    summary = json.loads((run_dir / "result.json").read_text())
    assert "<del>Let&#39;s</del>" in html and f"<ins>{summary['final']['prompt'].split()[0]}</ins>" in html
    config = json.loads((run_dir / "config.json").read_text())
    assert "fake-task" in html and config["models"]["task"]["spec"] in html and "Seed: <b>0</b>" in html


def test_word_diff_marks_deleted_and_inserted_words():
    assert word_diff("Let's think step by step.", "Let's think carefully step by step, please.") == [
        ("same", "Let's think"),
        ("ins", "carefully"),
        ("same", "step by"),
        ("del", "step."),
        ("ins", "step, please."),
    ]
    assert word_diff("same words", "same words") == [("same", "same words")]


def test_fixed_and_broken_examples_from_the_test_outcomes(tmp_path, monkeypatch):
    run_dir = make_run(tmp_path, monkeypatch)
    summary = json.loads((run_dir / "result.json").read_text())
    summary["test_outcomes"] = {
        "initial": [
            outcome("t1", 0.0, "negative"),
            outcome("t2", 1.0, "positive"),
            outcome("t3", 1.0, "positive"),
            outcome("t4", 0.0, "<b>odd</b>"),
            outcome("t5", 0.0, "negative"),
        ],
        "final": [
            outcome("t1", 1.0, "positive"),
            outcome("t2", 0.0, "negative"),
            outcome("t3", 1.0, "positive"),
            outcome("t4", 1.0, "positive"),
            outcome("t5", 0.0, "negative"),
        ],
    }
    (run_dir / "result.json").write_text(json.dumps(summary))
    changes = outcome_changes(summary)
    assert {k: [b["example_id"] for b, _ in v] for k, v in changes.items()} == {
        "fixed": ["t1", "t4"],
        "broken": ["t2"],
        "same_right": ["t3"],
        "same_wrong": ["t5"],
    }
    html = render_report([run_dir])
    counts = re.search(
        r'<td class="num fixed">(\d+)</td><td class="num broken">(\d+)</td>\s*'
        r'<td class="num">(\d+)</td><td class="num">(\d+)</td>',
        html,
    )
    assert counts.groups() == ("2", "1", "1", "1")
    assert "&lt;b&gt;odd&lt;/b&gt;" in html and "<b>odd</b>" not in html  # predictions are escaped


def test_prompts_are_html_escaped(tmp_path, monkeypatch):
    run_dir = make_run(tmp_path, monkeypatch, "run", "--initial-prompt", "<script>alert(1)</script> & answer")
    html = render_report([run_dir])
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; answer" in html


def test_missing_pieces_are_said(tmp_path, monkeypatch):
    run_dir = make_run(tmp_path, monkeypatch)
    # No test split: the scores are null and there are no outcomes.
    summary = json.loads((run_dir / "result.json").read_text())
    summary.update(initial_test=None, final_test=None, test_outcomes={"initial": None, "final": None})
    (run_dir / "result.json").write_text(json.dumps(summary))
    assert "this run has no test split" in render_report([run_dir])
    # Unfinished: no result.json, and a step cut after its candidates.
    (run_dir / "result.json").unlink()
    lines = (run_dir / "trajectory.jsonl").read_text().splitlines(keepends=True)
    (run_dir / "trajectory.jsonl").write_text("".join(lines[:-1]))
    html = render_report([run_dir])
    assert "Unfinished" in html and "the run is unfinished: the test split is scored at the end" in html
    assert f"continue it with <code>gpo-local optimize sentiment --resume --run-dir {run_dir}</code>" in html
    assert "(incomplete step)" in html and "best so far" in html and len(data_uris(html)) == 2
    out = run("show", run_dir)
    assert out.exit_code == 0 and "candidates of an unfinished step are recorded" in out.output
    # Nothing recorded at all.
    (run_dir / "trajectory.jsonl").unlink()
    html = render_report([run_dir])
    assert "Nothing recorded in trajectory.jsonl yet." in html and data_uris(html) == []


def test_several_runs_get_a_section_each_and_an_overlay(tmp_path, monkeypatch):
    first = make_run(tmp_path, monkeypatch, "a")
    second = make_run(tmp_path, monkeypatch, "b", "--seed", "1")
    out = run("report", first, second, "-o", tmp_path / "both.html")
    assert out.exit_code == 0, out.output
    html = (tmp_path / "both.html").read_text()
    assert html.count('<h2 id="section-') == 2 and "<h2>All runs</h2>" in html
    assert len(data_uris(html)) == 1 + 2 * 2


def bench_results():
    def summary(method, task, mean, std):
        return {"method": method, "task": task, "test_mean": mean, "test_std": std, "n_seeds": 2}

    def cell(method, task, seed, final):
        return {
            "method": method,
            "task": task,
            "seed": seed,
            "task_model": "smollm2-135m-instruct",
            "run_dir": f"runs/{task}/{method}/seed{seed}",
            "status": "done",
            "initial_test": 0.5,
            "final_test": final,
            "final_dev": 0.6,
            "dev_scorings": 40,
            "optimizer_calls": 4,
            "task_tokens": 1000,
            "optimizer_tokens": 300,
            "seconds": 12.5,
            "stopped": "completed",
        }

    return {
        "config": {
            "bench": {
                "tasks": ["sentiment", "../shared/data/bbh/navigate"],
                "methods": ["gpo", "opro"],
                "seeds": [0, 1],
            }
        },
        "cells": [
            cell(m, t, s, 0.5 + 0.1 * s)
            for m in ("gpo", "opro")
            for t in ("sentiment", "navigate")
            for s in (0, 1)
        ],
        "summary": [
            summary("gpo", "sentiment", 0.75, 0.05),
            summary("opro", "sentiment", 0.625, 0.0),
            summary("gpo", "navigate", 0.5, 0.1),
            summary("opro", "navigate", 0.5625, 0.02),
        ],
        "method_means": [
            {
                "method": "gpo",
                "test_mean_over_tasks": 0.625,
                "dev_scorings": 80,
                "optimizer_calls": 8,
                "task_tokens": 2000,
                "seconds": 25.0,
            },
            {
                "method": "opro",
                "test_mean_over_tasks": 0.59375,
                "dev_scorings": 80,
                "optimizer_calls": 8,
                "task_tokens": 2100,
                "seconds": 27.0,
            },
        ],
        "paper": [
            {
                "method": "gpo",
                "task": "navigate",
                "score": 0.62,
                "source": "GPO paper (GPO_SPEC 6.2), Llama-2-7b-chat task model",
            }
        ],
    }


def test_bench_quality_directory_gives_the_comparison_table_and_a_bar_chart(tmp_path):
    bench = tmp_path / "bench"
    bench.mkdir()
    (bench / "results.json").write_text(json.dumps(bench_results()))
    out = run("report", bench, "-o", tmp_path / "bench.html")
    assert out.exit_code == 0, out.output
    html = (tmp_path / "bench.html").read_text()
    assert "Benchmark: methods × tasks" in html
    rows = {m: re.search(rf"<tr><td>{m}</td>(.*?)</tr>", html, re.S).group(1) for m in ("gpo", "opro")}
    cells = {m: re.findall(r'<td class="num( best)?">([^<]*)</td>', row) for m, row in rows.items()}
    assert cells["gpo"][:3] == [(" best", "75.0 ± 5.0"), ("", "50.0 ± 10.0"), ("", "62.5")]
    assert cells["opro"][:3] == [("", "62.5"), (" best", "56.2 ± 2.0"), ("", "59.4")]
    assert [c[1] for c in cells["gpo"][3:]] == ["80", "8", "2000", "25.0"]
    assert "Llama-2-7b-chat task model" in html and ">62.0<" in html
    assert html.count("runs/sentiment/gpo/seed") == 2
    [uri] = data_uris(html)
    assert base64.b64decode(uri.split(",", 1)[1])[:8] == PNG_MAGIC
    assert "cell by cell" not in html  # a results.json from before the paired comparison


def test_bench_report_shows_the_paired_comparison(tmp_path):
    bench = tmp_path / "bench"
    bench.mkdir()
    paired = {
        "method": "gpo",
        "against": "opro",
        "task_model": "smollm2-135m-instruct",
        "cells": 4,
        "mean_difference": 0.03125,
        "wins": 2,
        "ties": 1,
        "losses": 1,
        "p_value": 0.75,
    }
    (bench / "results.json").write_text(json.dumps({**bench_results(), "paired": [paired]}))
    out = run("report", bench, "-o", tmp_path / "bench.html")
    assert out.exit_code == 0, out.output
    html = (tmp_path / "bench.html").read_text()
    assert "<h3>gpo against each method, cell by cell</h3>" in html
    row = re.search(r"<tr><td>opro</td><td class=\"num\">4</td>(.*?)</tr>", html, re.S).group(1)
    assert re.findall(r'<td class="num">([^<]*)</td>', row) == ["+3.1", "2 / 1 / 1", "0.750"]


def test_report_on_a_folder_that_is_not_a_run(tmp_path):
    out = run("report", tmp_path)
    assert out.exit_code == 1 and "config.json not found" in out.output
