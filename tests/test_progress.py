"""The progress display and the events log (RUN_DIR/events.jsonl), through the real CLI with fakes."""

import io
import json

import fake_cli
from rich.console import Console

from gpo_local.app.progress import Progress, generated_tokens


def events(run_dir):
    return [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]


def test_events_log_of_an_optimize_run(tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    result = fake_cli.optimize(monkeypatch, run_dir, "--quiet")
    assert result.exit_code == 0, result.output
    log = events(run_dir)
    kinds = [e["event"] for e in log]
    assert kinds[0] == "run_started" and kinds[-1] == "run_finished"
    assert all(isinstance(e["time"], float) for e in log)
    assert log[0]["task"] == "sentiment" and log[0]["steps"] == 3 and log[0]["dev_questions"] == 8
    assert log[0]["resumed"] is False
    assert [e["step"] for e in log if e["event"] == "step_started"] == [0, 1, 2]
    assert [(e["steps"], e["budget"]) for e in log if e["event"] == "step_started"] == [
        (3, 40),
        (3, 20),
        (3, 10),
    ]
    # The chosen prompts in the log are the trajectory's, with the best dev score so far.
    trajectory = [json.loads(line) for line in (run_dir / "trajectory.jsonl").read_text().splitlines()]
    steps = [r for r in trajectory if r["kind"] == "step"]
    chosen = [e for e in log if e["event"] == "chosen"]
    assert [(c["prompt"], c["dev_score"]) for c in chosen] == [(s["prompt"], s["dev_score"]) for s in steps]
    init = trajectory[0]["dev_score"]
    assert [c["best"] for c in chosen] == [
        max([init] + [s["dev_score"] for s in steps[: i + 1]]) for i in range(len(steps))
    ]
    candidates = [e for e in log if e["event"] == "candidates"]
    assert [c["new"] for c in candidates] == [
        sum(r["new"] for r in trajectory if r["kind"] == "candidate" and r["step"] == s) for s in range(3)
    ]
    # Every scoring pass ends with a record of all its pairs: the initial prompt's 8 dev questions, then 8 per
    # new candidate, then the test split (12 questions x 2 prompts, or 12 if the final prompt is the initial
    # one).
    finished = [(e["done"], e["total"]) for e in log if e["event"] == "scoring" and e["done"] == e["total"]]
    new_counts = [c["new"] for c in candidates if c["new"]]
    summary = json.loads((run_dir / "result.json").read_text())
    test_pairs = 12 if summary["final"]["prompt"] == summary["initial"]["prompt"] else 24
    assert finished == [(8, 8)] + [(8 * n, 8 * n) for n in new_counts] + [(test_pairs, test_pairs)]
    assert all(
        e["questions_per_second"] > 0 and e["tokens_per_second"] == 0 for e in log if e["event"] == "scoring"
    )
    end = log[-1]
    assert end["final"] == summary["final"] and end["final_test"] == summary["final_test"]


def test_resume_appends_to_the_events_log(tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    assert fake_cli.optimize(monkeypatch, run_dir, "--quiet").exit_code == 0
    before = events(run_dir)
    (run_dir / "result.json").unlink()  # pretend the run stopped after its last step
    again = fake_cli.optimize(monkeypatch, run_dir, "--quiet", "--resume")
    assert again.exit_code == 0, again.output
    after = events(run_dir)
    assert after[: len(before)] == before
    added = after[len(before) :]
    assert added[0]["event"] == "run_started" and added[0]["resumed"] is True
    assert {"event": "resumed", "completed_steps": 3}.items() <= added[1].items()
    assert added[-1]["event"] == "run_finished"


def test_quiet_prints_no_progress_but_the_result(tmp_path, monkeypatch):
    quiet = fake_cli.optimize(monkeypatch, tmp_path / "quiet", "--quiet")
    assert quiet.exit_code == 0
    assert "step 1/3" not in quiet.output and "run directory: " in quiet.output.splitlines()[-1]
    assert quiet.output.startswith("initial prompt: ")
    loud = fake_cli.optimize(monkeypatch, tmp_path / "loud")
    assert loud.exit_code == 0
    assert "step 1/3, budget 40 words: asking the optimizer" in loud.output
    assert "initial prompt: dev" in loud.output and "chosen (dev " in loud.output


def test_failed_run_is_logged(tmp_path, monkeypatch):
    fake_cli.install_fakes(monkeypatch)
    import gpo_local.algorithm.optimizer as optimizer

    def explode(self):
        raise RuntimeError("boom")

    monkeypatch.setattr(optimizer.GPO, "run", explode)
    result = fake_cli.optimize(monkeypatch, tmp_path / "run", "--quiet")
    assert result.exit_code != 0
    log = events(tmp_path / "run")
    assert [e["event"] for e in log] == ["run_started", "run_failed"] and log[-1][
        "error"
    ] == "RuntimeError: boom"


def _rendered(ui_calls, quiet=False):
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=160, color_system=None)
    with Progress(quiet, console=console, tokens=lambda: 0) as ui:
        ui_calls(ui)
        ui.bars.refresh()
        return out.getvalue()


def test_bars_show_step_candidates_rates_eta_and_best():
    def calls(ui):
        ui.event("run_started", {"steps": 4})
        ui.event("trajectory", {"entry": {"prompt": "p", "dev_score": 0.25, "step": -1}})
        ui.event("step", {"step": 0, "steps": 4, "budget": 30})
        ui.event("candidates", {"step": 0, "replies": 3, "usable": 3, "new": 3, "dropped": 0, "drops": {}})
        ui.progress(0, 24)
        ui.progress(16, 24)

    text = _rendered(calls)
    assert "step 1/4, budget 30 words: asking the optimizer" in text
    assert "0/4" in text and "best dev 25.0" in text and "3 candidates scored" in text
    assert "16/24" in text and "q/s" in text and "tok/s" in text and "ETA" in text
    assert _rendered(calls, quiet=True) == ""


def test_generated_tokens_reads_the_decoder_stats_of_each_distinct_model():
    class Stats:
        generated_tokens = 7

    class Decoder:
        stats = Stats()

    class Model:
        pass

    loaded, idle = Model(), Model()
    loaded.decoder = Decoder()  # as the cached_property leaves it in the instance dict
    assert generated_tokens(loaded, loaded, idle)() == 7


def test_eval_writes_events_and_keeps_json_output_clean(tmp_path, monkeypatch):
    from click.testing import CliRunner

    import gpo_local.backends.catalog as catalog
    import gpo_local.backends.llama_cpp as llama_cpp
    from gpo_local.app.cli import main

    monkeypatch.setattr(catalog, "resolve_model", lambda spec: tmp_path / "fake.gguf")
    monkeypatch.setattr(
        llama_cpp,
        "LlamaCppModel",
        lambda path, **options: fake_cli._Model(fake_cli._sentiment_answer, "fake-task"),
    )
    log = tmp_path / "eval-events.jsonl"
    result = CliRunner().invoke(
        main,
        [
            "eval",
            "sentiment",
            "--prompt",
            "Think.",
            "--limit",
            "5",
            "--json",
            "--no-cache",
            "--events",
            str(log),
        ],
    )
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output)  # no progress mixed into the JSON
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["event"] for r in records] == ["run_started", "scoring", "run_finished"]
    assert records[0]["questions"] == 5 and (records[1]["done"], records[1]["total"]) == (5, 5)
    assert records[2]["score"] == printed["score"] and records[2]["n"] == 5
