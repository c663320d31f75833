"""Racing a step's candidates on growing dev prefixes (gpo_local/racing.py, issue 12)."""

import json

import pytest
from conftest import (
    build_method,
    difficulty_task,
    optimizer_model,
    question_and_instruction,
    task_model,
    trajectory_records,
)
from fake_models import Killed, killing_after

from gpo_local.algorithm.config import GPOConfig
from gpo_local.algorithm.index import TrajectoryIndex
from gpo_local.algorithm.optimizer import GPO
from gpo_local.algorithm.racing import (
    RacingConfig,
    can_catch_up,
    dev_order,
    informative_order,
    prefix_sizes,
    question_order,
    race,
    serfling_margin,
    sign_test,
)
from gpo_local.backends.memo import Memo, MemoizedLLM
from gpo_local.errors import ConfigError
from gpo_local.runs.directory import JsonlLog
from gpo_local.testing import HashingEmbedder, ScriptedLLM

N = 48


def scripted(rows):
    """A scorer reading scripted outcomes: rows[candidate][question]; records what was asked."""
    asked = []

    def score(candidates, questions):
        asked.append((tuple(candidates), tuple(questions)))
        return [[rows[c][q] for q in questions] for c in candidates]

    return score, asked


def test_prefix_sizes_double_up_to_the_split():
    assert prefix_sizes(48, 4) == [6, 12, 24, 48]
    assert prefix_sizes(47, 4) == [6, 12, 24, 47]
    assert prefix_sizes(48, 1) == [48]
    assert prefix_sizes(3, 4) == [2, 3]  # single-question rounds tell nothing apart


def test_question_order_is_a_seeded_permutation():
    order = question_order(48, 0, "navigate")
    assert sorted(order) == list(range(48)) and order != list(range(48))
    assert order == question_order(48, 0, "navigate") and order != question_order(48, 1, "navigate")


def test_the_informative_order_puts_the_questions_prompts_disagree_on_first():
    order = [3, 0, 4, 1, 2]
    history = [
        {0: 1.0, 1: 1.0, 2: 0.0, 3: 1.0, 4: 1.0},
        {0: 0.0, 1: 1.0, 2: 0.0, 3: 1.0, 4: 1.0},
        {0: 1.0, 1: 0.0, 2: 0.0, 3: 1.0},
    ]  # question 4 scored by two prompts only
    # Spreads: q0 and q1 2/9 (one of three differs), q2 and q3 0 (all agree), q4 0 (two agree);
    # ties keep the seeded order.
    assert informative_order(order, history) == [0, 1, 3, 4, 2]
    assert informative_order(order, []) == order and informative_order(order, history[:1]) == order
    # ROUGE-L-like fractions: the variance, not a count of disagreements.
    assert informative_order([0, 1], [{0: 0.4, 1: 0.1}, {0: 0.5, 1: 0.9}]) == [1, 0]


def test_dev_order_reads_scores_by_example_id():
    ids = [f"eval-{i}" for i in range(6)]
    seeded = question_order(6, 0, "t")
    assert dev_order(ids, 0, "t", "random", [{"eval-5": 1.0}, {"eval-5": 0.0}]) == seeded
    assert dev_order(ids, 0, "t", "informative", []) == seeded
    informative = dev_order(ids, 0, "t", "informative", [{"eval-5": 1.0, "other-1": 1.0}, {"eval-5": 0.0}])
    assert informative[0] == 5 and [q for q in informative if q != 5] == [q for q in seeded if q != 5]


def test_sign_test_and_bounds():
    assert sign_test(6, 0) == pytest.approx(1 / 64)
    assert sign_test(3, 3) == pytest.approx(42 / 64)
    assert sign_test(0, 0) == 1.0
    assert serfling_margin(12, 48, 0.05 / 3) == pytest.approx(0.7254, abs=1e-3)
    assert can_catch_up([1.0] * 10, 20) and not can_catch_up([1.0] * 11, 20)


def test_eliminations_at_the_right_rounds():
    # 0 always right; 1 always wrong: 6-0 on the first 6 questions, p = 1/64 <= 0.05/3;
    # 2 right on the first 6 only: tied then, 6-0 behind after 12; 3 equals 0: never dropped.
    rows = [[1.0] * N, [0.0] * N, [1.0] * 6 + [0.0] * 42, [1.0] * N]
    score, asked = scripted(rows)
    result = race(score, 4, list(range(N)), RacingConfig(error=0.05, rounds=4), binary=True)
    assert result.dropped_after == (None, 0, 1, None)
    assert [len(s) for s in result.scores] == [48, 6, 12, 48]
    assert asked == [
        ((0, 1, 2, 3), tuple(range(6))),
        ((0, 2, 3), tuple(range(6, 12))),
        ((0, 3), tuple(range(12, 24))),
        ((0, 3), tuple(range(24, 48))),
    ]
    assert result.pairs == 114


def test_a_stricter_error_level_drops_later():
    rows = [[1.0] * N, [0.0] * N]
    result = race(scripted(rows)[0], 2, list(range(N)), RacingConfig(error=0.01, rounds=4), binary=True)
    assert result.dropped_after == (None, 1)  # 6-0 (p = 1/64) is not enough at 0.01/3; 12-0 is


def test_a_tie_keeps_both_and_the_earliest_leads():
    rows = [[1.0, 0.0] * 24, [0.0, 1.0] * 24, [1.0, 0.0] * 24]
    result = race(scripted(rows)[0], 3, list(range(N)), RacingConfig(), binary=True)
    assert result.dropped_after == (None, None, None) and result.pairs == 3 * N


def test_an_all_equal_step_scores_everything():
    rows = [[0.0] * N for _ in range(5)]
    result = race(scripted(rows)[0], 5, list(range(N)), RacingConfig(), binary=True)
    assert set(result.dropped_after) == {None} and result.pairs == 5 * N


def test_fractional_scores_use_the_serfling_bound():
    rows = [[0.9] * N, [0.1] * N, [0.85] * N]
    result = race(scripted(rows)[0], 3, list(range(N)), RacingConfig(), binary=False)
    # A 0.8 gap: the margin is 1.106 after 6 questions and 0.725 after 12; 0.05 never drops.
    assert result.dropped_after == (None, 1, None)


def test_racing_options_are_checked():
    with pytest.raises(ConfigError, match=r"^racing_error must be below 1 \(got 1.5\)"):
        GPOConfig(racing=True, racing_error=1.5).validate()
    with pytest.raises(ConfigError, match=r"^racing_rounds must be at least 1 \(got 0\)"):
        GPOConfig(racing=True, racing_rounds=0).validate()
    with pytest.raises(ConfigError, match="racing_order='sorted'"):
        GPOConfig(racing_order="sorted").validate()


# -- racing inside a GPO run --------------------------------------------------------------------


def make_gpo(run_dir, *, racing, task_llm=None, steps=3, candidates=6):
    config = GPOConfig(steps=steps, candidates=candidates, racing=racing, racing_error=0.05)
    return GPO(
        task=difficulty_task(n_eval=N),
        task_llm=task_llm or task_model(),
        optimizer_llm=optimizer_model(),
        index=TrajectoryIndex(run_dir / "indexes", HashingEmbedder()),
        config=config,
        log=JsonlLog(run_dir / "trajectory.jsonl"),
    )


records = trajectory_records


def sharp_task_model():
    """Right on every question with a prompt of 5 words or more, wrong on all with a shorter one:
    racing tells the two kinds apart after the first round."""

    def answer(messages, temperature, seed):
        prompt = question_and_instruction(messages[-1]["content"], r"difficulty \d+; say yes")[1]
        return "yes" if len(prompt.split()) >= 5 else "no"

    return ScriptedLLM(answer, fingerprint="fake-sharp")


def test_racing_chooses_as_full_scoring_with_fewer_pairs(tmp_path):
    full = make_gpo(tmp_path / "full", racing=False, task_llm=sharp_task_model()).run()
    raced = make_gpo(tmp_path / "raced", racing=True, task_llm=sharp_task_model()).run()
    assert [e.prompt for e in raced.trajectory] == [e.prompt for e in full.trajectory]
    assert [e.dev_score for e in raced.trajectory] == [e.dev_score for e in full.trajectory]
    # Step 0: 2 of the 5 distinct candidates are short, dropped after 6 questions: 3 x 48 + 2 x 6.
    step0 = [r for r in records(tmp_path / "raced") if r["kind"] == "candidate" and r["step"] == 0]
    assert sorted(r["dev_questions"] for r in step0) == [6, 6, 48, 48, 48]
    # Later steps generate the dropped ones again, with no long candidate left to beat them (GPO
    # moves to the best never-selected prompt): their races go on from the 6 recorded questions.
    assert raced.usage["dev_scorings"] <= full.usage["dev_scorings"]
    # With the graded difficulty model the choices agree too (candidates differ by 0.2 or more).
    assert [e.prompt for e in make_gpo(tmp_path / "a", racing=True).run().trajectory] == [
        e.prompt for e in make_gpo(tmp_path / "b", racing=False).run().trajectory
    ]
    cands = [r for r in records(tmp_path / "raced") if r["kind"] == "candidate" and r["new"]]
    dropped = [r for r in cands if r["eliminated"]]
    assert dropped and all(
        r["dev_questions"] < N and len(r["dev_outcomes"]) == r["dev_questions"] for r in dropped
    )
    kept = [r for r in cands if not r["eliminated"]]
    assert all(r["dev_questions"] == N and len(r["dev_outcomes"]) == N for r in kept)
    # Full scoring records every new candidate's per-question outcomes too (for benchmarks/racing.py).
    assert all(
        len(r["dev_outcomes"]) == N
        for r in records(tmp_path / "full")
        if r["kind"] == "candidate" and r["new"]
    )


def test_the_chosen_prompt_is_scored_on_the_full_split(tmp_path):
    run = make_gpo(tmp_path, racing=True).run()
    steps = [r for r in records(tmp_path) if r["kind"] == "step"]
    check = make_gpo(tmp_path / "check", racing=False)
    for step in steps:
        mine = [
            r
            for r in records(tmp_path)
            if r["kind"] == "candidate"
            and r["step"] == step["step"]
            and r["prompt"] == step["prompt"]
            and r["new"]
        ]
        assert all(r["dev_questions"] == N and not r["eliminated"] for r in mine)
        assert step["dev_score"] == check.evaluator.score(step["prompt"], "eval").score
    assert run.final.dev_score == max(s["dev_score"] for s in steps + [records(tmp_path)[0]])


@pytest.mark.parametrize("order", ["informative", "random"])
def test_a_raced_run_races_each_step_on_its_order(tmp_path, order):
    config = GPOConfig(steps=3, candidates=6, racing=True, racing_error=0.05, racing_order=order)
    build_method(tmp_path, config, optimizer_model(), task=difficulty_task(n_eval=N)).run()
    ids = [f"eval-{i}" for i in range(N)]
    seeded = question_order(N, 0, "difficulty")
    history, checked, reordered = [], 0, False
    cands = [r for r in records(tmp_path) if r["kind"] == "candidate"]
    for step in sorted({r["step"] for r in cands}):
        expected = dev_order(ids, 0, "difficulty", order, history)
        reordered |= expected != seeded
        for r in cands:
            if r["step"] == step and r["new"] and r["eliminated"]:
                # a dropped candidate was scored on a prefix of its step's order
                assert set(r["dev_outcomes"]) == {ids[q] for q in expected[: r["dev_questions"]]}
                checked += 1
        history += [r["dev_outcomes"] for r in cands if r["step"] == step and r.get("dev_outcomes")]
    assert checked >= 2
    # The informative order differs from the shuffle once candidates were scored: the questions
    # of difficulty 1 and 2, which every candidate of 2 words or more answers, come last.
    assert reordered == (order == "informative")


@pytest.mark.parametrize("kill_after", [60, 150, 260])
def test_resume_in_the_middle_of_a_raced_step(tmp_path, kill_after):
    make_gpo(tmp_path / "whole", racing=True).run()
    broken = tmp_path / "broken"
    with pytest.raises(Killed):
        make_gpo(broken, racing=True, task_llm=killing_after(kill_after, task_model())).run()
    make_gpo(broken, racing=True).run()
    assert records(broken) == records(tmp_path / "whole")


def test_memo_hits_are_free(tmp_path):
    memo = Memo(tmp_path / "memo.sqlite")
    first = task_model()
    make_gpo(tmp_path / "a", racing=True, task_llm=MemoizedLLM(first, memo)).run()
    again = task_model()
    make_gpo(tmp_path / "b", racing=True, task_llm=MemoizedLLM(again, memo)).run()
    assert first.calls and not again.calls  # every pair came from the memo
    assert records(tmp_path / "b") == records(tmp_path / "a")  # the budget counts them all the same


def test_known_scores_are_not_asked_again():
    # Candidate 1 was dropped at an earlier step after the first 6 questions: its race goes on
    # from the recorded scores, and only the others are asked for those questions.
    rows = [[1.0] * N, [0.0] * N, [1.0] * 6 + [0.0] * 42, [1.0] * N]
    score, asked = scripted(rows)
    result = race(
        score, 4, list(range(N)), RacingConfig(), binary=True, known={1: {q: 0.0 for q in range(6)}}
    )
    assert asked[0] == ((0, 2, 3), tuple(range(6))) and result.dropped_after == (None, 0, 1, None)
    assert result.pairs == 114  # the known pairs count in the race, not in what was asked


def test_the_racing_benchmark_replays_a_recorded_run(tmp_path, capsys):
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "racing_bench", Path(__file__).resolve().parents[1] / "benchmarks" / "racing.py"
    )
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    make_gpo(tmp_path / "run", racing=False, task_llm=sharp_task_model()).run()
    _, steps = bench.load_steps(tmp_path / "run")
    replays = [bench.replay_step("gpo", s, None, 0, "difficulty") for s in steps]
    # Step 2 only repeats earlier candidates (nothing new to race): not replayed, not counted.
    assert len(steps) == 3 and replays[2] is None and all(r[0] for r in replays[:2])
    assert [len(s["history"]) for s in steps] == [0, 5, 6]  # the new candidates recorded before each step
    same, pairs, full = bench.replay_step("gpo", steps[0], RacingConfig(), 0, "difficulty")
    assert same and full == 5 * N and pairs < full  # the two short candidates drop after 6 questions
    assert (
        bench.main(
            [
                str(tmp_path / "run"),
                "--errors",
                "0.05",
                "--rounds",
                "4",
                "--orders",
                "3",
                "--order",
                "informative,random",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "2 steps to replay; full-scoring replay matches the record: True" in out
    rows = [line.split() for line in out.splitlines() if line.strip().startswith(("informative", "random"))]
    assert [(r[0], r[3], r[4]) for r in rows] == [("informative", "6", "100.0%"), ("random", "6", "100.0%")]
    # --own-order: the run's own seed and task order, once; its trajectory is kept whole.
    assert bench.main([str(tmp_path / "run"), "--errors", "0.05,0.999", "--rounds", "4", "--own-order"]) == 0
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines() if line.strip().startswith("informative")]
    assert [(r[2], r[3], r[4]) for r in rows] == [("0.05", "1", "1"), ("0.999", "1", "1")]
    assert float(rows[0][5].rstrip("%")) > 0  # the short candidates of step 0 were dropped early


def test_show_and_the_report_mark_raced_out_candidates(tmp_path):
    from click.testing import CliRunner

    from gpo_local.app.cli import main
    from gpo_local.app.report import render_report, run_context
    from gpo_local.runs.rundata import load_run

    make_gpo(tmp_path, racing=True, task_llm=sharp_task_model()).run()
    (tmp_path / "config.json").write_text(json.dumps({"task": "difficulty"}))
    out = CliRunner().invoke(main, ["show", str(tmp_path)])
    assert out.exit_code == 0, out.output
    assert out.output.count("raced out after 6 dev questions (partial dev 0.0)") == 2
    rows = run_context(load_run(tmp_path))["candidates"]
    assert [(r["step"], r["questions"]) for r in rows if r["eliminated"]] == [(1, 6), (1, 6)]
    assert render_report([tmp_path]).count("(raced out after 6 questions)") == 2


def test_the_dev_size_benchmark_replays_a_step_on_fewer_questions(tmp_path, capsys):
    import importlib.util
    import sys
    from pathlib import Path

    benchmarks = Path(__file__).resolve().parents[1] / "benchmarks"
    sys.path.insert(0, str(benchmarks))  # dev_size.py reuses racing.py's replay helpers
    try:
        spec = importlib.util.spec_from_file_location("dev_size_bench", benchmarks / "dev_size.py")
        bench = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(bench)
    finally:
        sys.path.remove(str(benchmarks))
    # "early" answers the first 2 of 4 questions, "late" the last 3: the whole split picks "late"
    # (0.75 against 0.5), the first 2 questions pick "early", which costs 25 points on the whole.
    outcomes = {
        "start": {"eval-0": 0.0, "eval-1": 0.0, "eval-2": 0.0, "eval-3": 0.0},
        "early": {"eval-0": 1.0, "eval-1": 1.0, "eval-2": 0.0, "eval-3": 0.0},
        "late": {"eval-0": 0.0, "eval-1": 1.0, "eval-2": 1.0, "eval-3": 1.0},
    }
    step = {
        "trajectory": [("start", 0.0)],
        "scores": {"start": ("start", 0.0)},
        "candidates": [{"prompt": "early", "dev_score": 0.5}, {"prompt": "late", "dev_score": 0.75}],
        "chosen": "late",
        "step": 0,
        "history": [],
    }
    assert bench.replay_step("gpo", step, outcomes, 4) == (True, 0.0)
    assert bench.replay_step("gpo", step, outcomes, 2) == (False, -0.25)
    assert bench.replay_step("gpo", step, outcomes, 5) is None  # more questions than recorded
    assert bench.replay_step("gpo", step, {"start": outcomes["start"]}, 2) is None  # outcomes missing
    raced_out = {**outcomes, "early": {"eval-0": 1.0, "eval-1": 1.0}}  # dropped after 2 questions
    assert bench.replay_step("gpo", step, raced_out, 2) is None
    # On a recorded run, the whole split replays every step's choice.
    make_gpo(tmp_path / "run", racing=False, task_llm=sharp_task_model()).run()
    assert bench.main([str(tmp_path / "run"), "--sizes", f"{N // 2},{N}"]) == 0
    out = capsys.readouterr().out
    assert "whole-split replay matches the record: True" in out
    assert [str(N), "3", "100.0%", "0.0", "100%"] in [line.split() for line in out.splitlines()]
