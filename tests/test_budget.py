"""Budget limits, counters, result.json and --dry-run, through the optimize command with the
fake models (no model file is loaded)."""

import json

import pytest
from click.testing import CliRunner
from conftest import difficulty_task, task_model, trajectory_records
from fake_models import install, smart_optimizer

from gpo_local.algorithm.config import GPOConfig, Limits
from gpo_local.algorithm.index import TrajectoryIndex
from gpo_local.algorithm.optimizer import GPO
from gpo_local.app.cli import main
from gpo_local.methods import estimate as budget
from gpo_local.runs.directory import JsonlLog
from gpo_local.testing import HashingEmbedder

RESULT_KEYS = {
    "task",
    "method",
    "initial",
    "final",
    "initial_test",
    "final_test",
    "test_outcomes",
    "task_generations",
    "dev_scorings",
    "optimizer_calls",
    "task_tokens",
    "optimizer_tokens",
    "seconds",
    "stopped",
}


@pytest.fixture
def task_dir(tmp_path):
    """The difficulty task in the GPO layout (one-round exact match)."""
    directory = tmp_path / "difficulty"
    directory.mkdir()
    for split, examples in difficulty_task().splits.items():
        (directory / f"{split}.jsonl").write_text(
            "".join(json.dumps({"input": e.input, "target": e.target}) + "\n" for e in examples)
        )
    return directory


def optimize(task_dir, run_dir, *args):
    # The scripted optimizers here repeat themselves; without the reply quota a run's calls follow its
    # plan exactly, which is what these budget tests count (tests/test_quota.py covers the quota).
    result = CliRunner().invoke(
        main,
        [
            "optimize",
            str(task_dir),
            "--run-dir",
            str(run_dir),
            "--quiet",
            "--steps",
            "4",
            "--candidates",
            "3",
            "--no-reply-quota",
            *args,
        ],
    )
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


trajectory = trajectory_records


def test_a_run_records_the_checkout_commit_and_the_cpu():
    import subprocess
    from pathlib import Path

    from gpo_local.runs.directory import package_versions

    versions = package_versions()
    assert versions["cpu"].endswith("logical cores") and len(versions["cpu"]) > len(", 1 logical cores")
    source = Path(budget.__file__).resolve().parents[2]
    if not (source / ".git").exists():
        assert "gpo-local commit" not in versions  # an installed wheel: its version says it
        return
    head = subprocess.run(
        ["git", "-C", str(source), "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    assert versions["gpo-local commit"] in (head, f"{head}+changes")


@pytest.mark.parametrize("method", ["gpo", "empty", "cot", "ape", "apo", "opro", "pe2", "sgdm"])
def test_every_method_writes_a_normal_run_directory(monkeypatch, tmp_path, task_dir, method):
    install(monkeypatch, optimizer_llm=smart_optimizer(max_words=3))
    out = optimize(task_dir, tmp_path / "run", "--method", method)
    assert out.exit_code == 0, out.output
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert RESULT_KEYS <= set(result) and result["method"] == method and result["stopped"] == "completed"
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["config"]["method"] == method and config["limits"]["max_optimizer_calls"] is None
    kinds = [r["kind"] for r in trajectory(tmp_path / "run")]
    assert kinds[0] == "init" and kinds.count("step") == result["budget"]["steps_planned"]
    assert result["optimizer_calls"] <= result["budget"]["reference_optimizer_calls"] == 12
    assert result["dev_scorings"] <= 6 * (1 + 12)
    assert result["task_generations"] >= result["dev_scorings"] and result["task_tokens"] > 0
    assert (result["optimizer_tokens"] > 0) == (method not in ("empty", "cot"))


def test_max_optimizer_calls_stops_at_a_step_boundary_and_resume_continues(monkeypatch, tmp_path, task_dir):
    install(monkeypatch)
    whole, limited = tmp_path / "whole", tmp_path / "limited"
    optimize(task_dir, whole)
    out = optimize(task_dir, limited, "--max-optimizer-calls", "7")
    assert out.exit_code == 0 and "stopped early (max_optimizer_calls)" in out.output
    result = json.loads((limited / "result.json").read_text())
    assert result["stopped"] == "max_optimizer_calls" and result["optimizer_calls"] == 6  # 2 steps of 3 calls
    assert [r["kind"] for r in trajectory(limited)].count("step") == 2
    assert result["final"]["dev_score"] == max(
        r["dev_score"] for r in trajectory(limited) if r["kind"] != "candidate"
    )
    # Resuming with the same limit stops again at once; a larger one continues to the end.
    again = CliRunner().invoke(
        main, ["optimize", str(task_dir), "--run-dir", str(limited), "--resume", "--quiet"]
    )
    assert json.loads((limited / "result.json").read_text())["stopped"] == "max_optimizer_calls", again.output
    CliRunner().invoke(
        main, ["optimize", "--run-dir", str(limited), "--resume", "--quiet", "--max-optimizer-calls", "100"]
    )
    result = json.loads((limited / "result.json").read_text())
    assert result["stopped"] == "completed" and result["optimizer_calls"] == 12
    assert trajectory(limited) == trajectory(whole)
    assert json.loads((limited / "config.json").read_text())["limits"]["max_optimizer_calls"] == 100
    # A complete run resumed is a no-op that reprints the result.
    out = CliRunner().invoke(main, ["optimize", "--run-dir", str(limited), "--resume"])
    assert (
        out.exit_code == 0 and "nothing to resume" in out.output and trajectory(limited) == trajectory(whole)
    )


def test_max_task_tokens_stops_after_the_step_that_reached_it(monkeypatch, tmp_path, task_dir):
    install(monkeypatch)
    out = optimize(task_dir, tmp_path / "run", "--max-task-tokens", "1")
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    # p0's 6 dev answers of one token each already reach the limit: no step runs.
    assert result["stopped"] == "max_task_tokens" and result["optimizer_calls"] == 0, out.output
    assert result["final"]["prompt"] == "Let's think step by step." and result["final_test"] is not None


def test_time_limit_stops_at_a_step_boundary_and_resume_gives_the_same_run(tmp_path):
    ticks = iter(range(0, 10_000, 10))  # every clock reading advances 10 s

    def make(run_dir, limits, clock=None):
        kwargs = {"clock": clock} if clock else {}
        return GPO(
            task=difficulty_task(),
            task_llm=task_model(),
            optimizer_llm=smart_optimizer(),
            index=TrajectoryIndex(run_dir / "i", HashingEmbedder()),
            config=GPOConfig(steps=4, candidates=3),
            log=JsonlLog(run_dir / "t.jsonl"),
            limits=limits,
            **kwargs,
        )

    stopped = make(tmp_path / "a", Limits(time_limit=25), clock=lambda: next(ticks)).run()
    assert stopped.stopped == "time_limit" and 0 < len(stopped.trajectory) - 1 < 4
    resumed = make(tmp_path / "a", Limits()).run()
    whole = make(tmp_path / "b", Limits()).run()
    assert resumed.stopped == "completed" and resumed.trajectory == whole.trajectory
    assert resumed.usage["optimizer_calls"] == whole.usage["optimizer_calls"] == 12


def test_dry_run_prints_the_budget_and_creates_nothing(monkeypatch, tmp_path, task_dir):
    from gpo_local.app import walltime  # issue 12: the rates are timed as the evaluator batches

    monkeypatch.setattr(
        walltime,
        "measure",
        lambda settings: {
            "seconds_per_pair": 0.5,
            "load_seconds": 0.0,
            "seconds_per_optimizer_call": 2.0,
            "measured_pairs": 8,
        },
    )
    home = tmp_path / "home"
    out = CliRunner().invoke(
        main,
        [
            "optimize",
            str(task_dir),
            "--steps",
            "4",
            "--candidates",
            "3",
            "--dry-run",
            "--run-dir",
            str(tmp_path / "run"),
        ],
    )
    assert out.exit_code == 0, out.output
    assert "optimizer calls:         12" in out.output
    # 1 + 4*3 prompts x 6 dev examples; one round; tests of p0 and the final prompt: 2 x 4.
    assert "dev scorings:            <= 78" in out.output
    assert "task-model generations:  <= 86 (1 round per scoring)" in out.output
    # Expected: p0's 6 dev pairs, the candidates' 72 at the share of replies that become new
    # candidates, the 8 test pairs; at most: every reply a new candidate.
    expected = (6 + 72 * walltime.NEW_SHARE + 8) * 0.5 + 12 * 2.0
    assert f"estimated wall time:     {expected / 60:.1f} min without racing" in out.output
    raced = (
        6 + 72 * walltime.NEW_SHARE * walltime.raced_share(6) + 8
    ) * 0.5 + 12 * 2.0  # p0 and the tests are never raced
    assert f"({raced / 60:.1f} min with; at most {(86 * 0.5 + 12 * 2.0) / 60:.1f} min if every" in out.output
    assert not (tmp_path / "run").exists() and not (home / "runs").exists()


def test_a_constrained_run_expects_every_reply_to_be_a_new_candidate(monkeypatch, tmp_path, task_dir):
    from gpo_local.app import walltime

    rates = {
        "seconds_per_pair": 0.5,
        "load_seconds": 0.0,
        "seconds_per_optimizer_call": 2.0,
        "measured_pairs": 8,
        "new_share": walltime.NEW_SHARE_CONSTRAINED,
    }
    monkeypatch.setattr(walltime, "measure", lambda settings: rates)
    out = CliRunner().invoke(
        main,
        [
            "optimize",
            str(task_dir),
            "--steps",
            "4",
            "--candidates",
            "3",
            "--dry-run",
            "--run-dir",
            str(tmp_path / "run"),
        ],
    )
    assert out.exit_code == 0, out.output
    expected = (6 + 72 * walltime.NEW_SHARE_CONSTRAINED + 8) * 0.5 + 12 * 2.0
    assert f"estimated wall time:     {expected / 60:.1f} min without racing" in out.output
    assert f"{walltime.NEW_SHARE_CONSTRAINED:.0%} assumed" in out.output


def test_a_dry_run_times_a_variant_when_no_reply_parses(monkeypatch, tmp_path, task_dir):
    from gpo_local.testing import ScriptedLLM

    task, optimizer = install(monkeypatch, optimizer_llm=ScriptedLLM(lambda *a: "", fingerprint="mute"))
    out = CliRunner().invoke(
        main,
        [
            "optimize",
            str(task_dir),
            "--steps",
            "2",
            "--candidates",
            "3",
            "--dry-run",
            "--run-dir",
            str(tmp_path / "run"),
        ],
    )
    assert out.exit_code == 0, out.output
    assert (
        "12 pairs of the initial prompt and a variant of it batched" in out.output
    )  # 2 prompts x 6 questions
    assert len(task.calls) == 12


def test_raced_share_follows_the_replays_by_dev_size():
    from gpo_local.app import walltime

    assert walltime.raced_share(8) == walltime.raced_share(24) == 0.955
    assert walltime.raced_share(40) == 0.671 and walltime.raced_share(200) == 0.551
    assert walltime.raced_share(32) == pytest.approx((0.955 + 0.671) / 2)
    assert walltime.raced_share(40, "random") == 0.711 and walltime.raced_share(48, "random") == 0.717


def test_estimate_formula_for_two_rounds_gradients_and_momentum():
    from gpo_local.tasks import load_task

    task = load_task("sentiment")  # 2 rounds; 16 dev, 24 test, 8 train
    est = budget.estimate(
        GPOConfig(
            steps=3,
            candidates=4,
            gradient="feedback",
            update="generate",
            momentum="para",
            momentum_update="real-time",
        ),
        task,
    )
    assert est.optimizer_calls == 3 * 4 + 3 + 2
    assert est.prompts_scored == 1 + 3 * 4 + 2  # + the summarized prompts of steps 1 and 2
    assert est.task_generations == 2 * (est.prompts_scored * 16 + 3 * 8 + 2 * 24)
    assert budget.estimate(GPOConfig(method="cot", steps=3), task).task_generations == 2 * (16 + 48)


def test_dry_run_times_an_evaluator_chunk_and_optimizer_replies(monkeypatch, tmp_path, task_dir):
    # issue 12: walltime.measure with the scripted models standing in for llama.cpp.
    task, optimizer = install(monkeypatch)
    out = CliRunner().invoke(
        main,
        [
            "optimize",
            str(task_dir),
            "--steps",
            "2",
            "--candidates",
            "3",
            "--dry-run",
            "--racing",
            "--run-dir",
            str(tmp_path / "run"),
        ],
    )
    assert out.exit_code == 0, out.output
    assert "min with racing" in out.output and "min without; at most" in out.output
    # The initial prompt and the 3 candidates the optimizer wrote (smart_optimizer: seeds 1-3),
    # on the 6 dev questions: 24 pairs, one round each.
    assert "24 pairs of the initial prompt and 3 candidates the optimizer wrote batched" in out.output
    assert len(task.calls) == 24 and len(optimizer.calls) == 3  # min(C, 8) replies in one batch
    timed = {call["messages"][-1]["content"].lower() for call in task.calls}
    assert any("think think v1" in text for text in timed)
    assert any("think think think think v0" in text for text in timed)
    assert not (tmp_path / "run").exists()


def write_events(run_dir, events):
    (run_dir / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))


# A recorded run's events (calibration.recorded_rates): 2 steps of 3 replies; in step 2 one
# scoring chunk is a memo hit and one a paused process, both left out.
RECORDED = [
    {"time": 1000.0, "event": "run_started"},
    {"time": 1000.0, "event": "step_started", "step": 0},
    {"time": 1006.0, "event": "candidates", "step": 0, "replies": 3, "new": 1},
    {"time": 1008.0, "event": "scoring", "done": 4, "total": 6},
    {"time": 1009.0, "event": "scoring", "done": 6, "total": 6},
    {"time": 1009.0, "event": "chosen", "step": 0},
    {"time": 1009.0, "event": "step_started", "step": 1},
    {"time": 1012.0, "event": "candidates", "step": 1, "replies": 3, "new": 2},
    {"time": 1012.001, "event": "scoring", "done": 6, "total": 6},  # memo: 6000 pairs a second
    {"time": 1100.0, "event": "scoring", "done": 6, "total": 6},  # paused: 14.7 s a pair
    {"time": 1103.0, "event": "scoring", "done": 6, "total": 6},
    {"time": 1103.0, "event": "chosen", "step": 1},
    {"time": 1105.0, "event": "scoring", "done": 4, "total": 4},  # the test split
    {"time": 1105.0, "event": "run_finished"},
]


def test_recorded_rates_come_from_a_finished_runs_events(tmp_path):
    from gpo_local.app import calibration

    write_events(tmp_path, RECORDED)
    # Asking: 6 + 3 s for 6 replies, 3 new; scoring: 4 + 2 + 6 + 4 pairs in 2 + 1 + 3 + 2 s; the
    # paused chunk's 87.999 s apart.
    assert calibration.recorded_rates(tmp_path) == {
        "ask_seconds": pytest.approx(9.0),
        "replies": 6,
        "new": 3,
        "score_seconds": pytest.approx(8.0),
        "pairs": 16,
        "paused_seconds": pytest.approx(87.999),
    }
    write_events(tmp_path, RECORDED[:-1])
    assert calibration.recorded_rates(tmp_path) is None  # not finished
    write_events(tmp_path, RECORDED[:1] + RECORDED)
    assert calibration.recorded_rates(tmp_path) is None  # resumed: its times span the restart


def test_a_dry_run_takes_the_rates_of_earlier_runs_of_the_same_workload(monkeypatch, tmp_path, task_dir):
    from gpo_local.app import calibration

    install(monkeypatch)
    # The fake model scores in microseconds a pair, so every recorded run would look slowed
    # beside the rate the dry run times (pooled_rates' `reference`; tested on its own below).
    monkeypatch.setattr(calibration, "BUSY_FACTOR", float("inf"))
    runs = tmp_path / "runs"
    assert optimize(task_dir, runs / "same", "--steps", "1").exit_code == 0
    write_events(runs / "same", RECORDED)
    # Another method's run is another workload: its rates (all 10 times slower) are not used.
    other = runs / "other"
    other.mkdir()
    config = json.loads((runs / "same" / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**config, "method": "ape"}))
    write_events(other, [{**e, "time": 1000 + 10 * (e["time"] - 1000)} for e in RECORDED])
    out = CliRunner().invoke(
        main,
        [
            "optimize",
            str(task_dir),
            "--steps",
            "4",
            "--candidates",
            "3",
            "--dry-run",
            "--run-dir",
            str(runs / "new"),
        ],
    )
    assert out.exit_code == 0, out.output
    assert (
        "from 1 earlier run of the same workload: 0.50 s per scored pair, 1.50 s per optimizer reply, "
        "50% of replies new candidates"
    ) in out.output
    # p0's 6 dev pairs, the candidates' 72 at the recorded 50%, 8 test pairs; 12 replies.
    expected = (6 + 72 * 0.5 + 8) * 0.5 + 12 * 1.5
    assert f"estimated wall time:     {expected / 60:.1f} min without racing" in out.output
    assert "timed now instead:" in out.output and not (runs / "new").exists()


def test_a_dry_run_says_when_it_left_out_every_earlier_run(monkeypatch, tmp_path, task_dir):
    from gpo_local.app import walltime

    install(monkeypatch)
    # The fake model scores in microseconds a pair: beside that timing, a recorded run at 0.5 s a
    # pair is over BUSY_FACTOR times slower, so it is left out and the timed rates stand.
    runs = tmp_path / "runs"
    assert optimize(task_dir, runs / "same", "--steps", "1").exit_code == 0
    write_events(runs / "same", RECORDED)
    out = CliRunner().invoke(
        main,
        [
            "optimize",
            str(task_dir),
            "--steps",
            "4",
            "--candidates",
            "3",
            "--dry-run",
            "--run-dir",
            str(runs / "new"),
        ],
    )
    assert out.exit_code == 0, out.output
    assert (
        f"1 earlier run of the same workload left out: it scored over {walltime.BUSY_FACTOR:.0f}x slower a "
        "pair than timed now, so the timing below stands"
    ) in out.output
    assert "from 1 earlier run" not in out.output and "timed now instead:" not in out.output


def test_a_run_slowed_throughout_is_left_out_of_the_pool(tmp_path):
    from gpo_local.app import calibration

    quiet, busy = tmp_path / "quiet", tmp_path / "busy"
    quiet.mkdir(), busy.mkdir()
    write_events(quiet, RECORDED)  # 0.5 s a pair
    # Every chunk 20 times slower (a machine busy all along): the per-chunk filter keeps them all.
    write_events(busy, [{**e, "time": 1000 + 20 * (e["time"] - 1000)} for e in RECORDED])
    assert calibration.recorded_rates(busy)["score_seconds"] == pytest.approx(20 * 8.0)
    pair = [(quiet, {}), (busy, {})]
    rates = calibration.pooled_rates(pair, n_dev=6)
    assert (rates["runs"], rates["left_out"], rates["seconds_per_pair"]) == (1, 1, 0.5)
    # Alone, the busy run is left out against the rate the dry run timed, kept against a slower one.
    assert calibration.pooled_rates([(busy, {})], n_dev=6, reference=0.6) == {"runs": 0, "left_out": 1}
    assert calibration.pooled_rates([], n_dev=6, reference=0.6) is None
    assert calibration.pooled_rates([(busy, {})], n_dev=6, reference=2.0)[
        "seconds_per_pair"
    ] == pytest.approx(10.0)
    # A run 5 times slower is a slower machine, not a stopped one: pooled.
    write_events(busy, [{**e, "time": 1000 + 5 * (e["time"] - 1000)} for e in RECORDED])
    rates = calibration.pooled_rates(pair, n_dev=6)
    assert (rates["runs"], rates["left_out"], rates["seconds_per_pair"]) == (2, 0, pytest.approx(1.5))


def test_raced_runs_give_the_share_of_dev_pairs_racing_scored(tmp_path):
    from gpo_local.app import calibration, walltime

    write_events(tmp_path, RECORDED)
    # Two new candidates of a 6-question dev split: one raced out after 3 questions; a repeat
    # (not new) does not count.
    (tmp_path / "trajectory.jsonl").write_text(
        "".join(
            json.dumps(r) + "\n"
            for r in [
                {"kind": "candidate", "new": True, "dev_questions": 3},
                {"kind": "candidate", "new": True, "dev_questions": 6},
                {"kind": "candidate", "new": False, "dev_questions": 6},
            ]
        )
    )
    rates = calibration.pooled_rates([(tmp_path, {"config": {"racing": True}})], n_dev=6)
    assert rates == {
        "runs": 1,
        "left_out": 0,
        "seconds_per_pair": 0.5,
        "seconds_per_optimizer_call": 1.5,
        "new_share": 0.5,
        "raced_share": 0.75,
    }
    assert "raced_share" not in calibration.pooled_rates([(tmp_path, {"config": {"racing": False}})], n_dev=6)
    # With racing, the candidates' dev pairs are scaled by the recorded share, not the replays'.
    est = budget.Estimate(
        method="gpo",
        steps=4,
        optimizer_calls=12,
        prompts_scored=13,
        dev_scorings=78,
        train_scorings=0,
        test_scorings=8,
        task_generations=86,
        rounds=1,
    )
    assert walltime.dev_pairs(est, 6, True, 0.5, rates["raced_share"]) == 6 + 72 * 0.5 * 0.75
    assert walltime.seconds(est, rates, 6, True) == pytest.approx((6 + 72 * 0.5 * 0.75 + 8) * 0.5 + 12 * 1.5)
