"""GPO's cold start (`cold_start`): while no prompt has scored above 0, `induce` (the default) makes
a step's candidates by instruction induction from input/output examples instead of refining the
current prompt; `refine` always refines, as the paper does. With the scripted fake LLM."""

import json

import pytest
from conftest import build_method, question_and_instruction, trajectory_records
from fake_models import Killed, killing_after

from gpo_local.algorithm.config import GPOConfig
from gpo_local.testing import ScriptedLLM

INDUCTION = "Someone was given an instruction"


def yes_when_told() -> ScriptedLLM:
    """Right ("yes") only when the instruction says "yes": the initial "Answer." scores 0."""

    def answer(messages, temperature, seed):
        _, prompt = question_and_instruction(messages[-1]["content"], r"difficulty (\d+); say yes")
        return "yes" if "yes" in prompt.lower() else "no"

    return ScriptedLLM(answer, fingerprint="fake-yes-task")


def optimizer(induced: str) -> ScriptedLLM:
    """Induction asks get `induced` (formatted with the seed); refinement asks a reworded prompt."""

    def reply(messages, temperature, seed):
        if messages[-1]["content"].startswith(INDUCTION):
            return f"<START>{induced.format(seed=seed)}<END>"
        return f"<START>Answer carefully, version {seed}.<END>"

    return ScriptedLLM(reply, fingerprint="fake-induction-optimizer")


def run(tmp_path, opt, events=None, **config):
    config = GPOConfig(**{"steps": 3, "candidates": 3, "format_examples": 3, "reply_quota": False, **config})
    on_event = (lambda kind, data: events.append((kind, data))) if events is not None else None
    method = build_method(tmp_path, config, opt, task_llm=yes_when_told(), on_event=on_event)
    return method.run(), [c["messages"][-1]["content"] for c in opt.calls]


def steps(tmp_path):
    return [r for r in trajectory_records(tmp_path) if r["kind"] == "step"]


def test_induce_starts_from_examples_then_refines_once_a_prompt_scores(tmp_path):
    opt = optimizer("Reply yes, variant {seed}.")
    result, sent = run(tmp_path, opt, cold_start="induce")
    induced, refined = sent[:3], sent[3:]
    assert all(text.startswith(INDUCTION) for text in induced)
    # Each induction shows its own sample of 3 train examples with their outputs.
    for text in induced:
        assert text.count("Input:\ndifficulty ") == 3 and text.count("Output:\nyes") == 3
        assert text.endswith("What was the instruction? Put it between <START> and <END>.")
    assert len(set(induced)) == 3
    # Once an induced prompt scores above 0, the steps refine it with the update meta-prompt.
    assert refined and not any(text.startswith(INDUCTION) for text in refined)
    assert "Reply yes, variant" in refined[0]
    records = steps(tmp_path)
    assert [r.get("start") for r in records] == ["induce", None, None]
    assert records[0]["prompt"].startswith("Reply yes") and records[0]["dev_score"] == 1.0
    assert result.initial.dev_score == 0.0 and result.final.dev_score == 1.0


def test_induce_goes_on_while_every_prompt_scores_zero(tmp_path):
    opt = optimizer("Give an answer, variant {seed}.")
    result, sent = run(tmp_path, opt, cold_start="induce")
    assert len(sent) == 9 and all(text.startswith(INDUCTION) for text in sent)
    assert [r.get("start") for r in steps(tmp_path)] == ["induce"] * 3
    # Every induced prompt scored 0: the next prompt stays the initial one.
    assert result.final.prompt == "Answer." and result.final.dev_score == 0.0


def test_induce_is_the_default_and_refine_never_induces(tmp_path):
    assert GPOConfig().cold_start == "induce"
    opt = optimizer("Reply yes, variant {seed}.")
    result, sent = run(tmp_path, opt, cold_start="refine")
    assert len(sent) == 9 and not any(text.startswith(INDUCTION) for text in sent)
    assert [r.get("start") for r in steps(tmp_path)] == [None] * 3


def test_induce_resumes_to_the_same_trajectory(tmp_path):
    run(tmp_path / "whole", optimizer("Reply yes, variant {seed}."), cold_start="induce")
    killed = killing_after(4, optimizer("Reply yes, variant {seed}."))  # in step 1
    with pytest.raises(Killed):
        run(tmp_path / "cut", killed, cold_start="induce")
    run(tmp_path / "cut", optimizer("Reply yes, variant {seed}."), cold_start="induce")
    assert trajectory_records(tmp_path / "cut") == trajectory_records(tmp_path / "whole")


def test_show_and_the_report_name_the_induced_steps(tmp_path):
    from click.testing import CliRunner

    from gpo_local.app.cli import main
    from gpo_local.app.report import run_context
    from gpo_local.runs.rundata import load_run

    run(tmp_path, optimizer("Reply yes, variant {seed}."), cold_start="induce")
    (tmp_path / "config.json").write_text(json.dumps({"task": "difficulty", "config": {"steps": 3}}))
    view = load_run(tmp_path)
    assert [s.start for s in view.steps] == [None, "induce", None, None]
    shown = CliRunner().invoke(main, ["show", str(tmp_path)], terminal_width=200).output
    budgets = [line.split("│")[2].strip() for line in shown.splitlines() if line.count("│") > 3]
    assert [b for b in budgets if b] == ["-", "induced", "20", "10"]
    assert [s["induced"] for s in run_context(view)["steps"]] == [False, True, False, False]


def test_the_step_events_and_the_progress_line_say_when_a_step_induces(tmp_path):
    import io

    from rich.console import Console

    from gpo_local.app.progress import Progress

    events = []
    run(tmp_path, optimizer("Reply yes, variant {seed}."), events=events)
    started = [data for kind, data in events if kind == "step_started"]
    assert [data["induce"] for data in started] == [True, False, False]
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=160, color_system=None)
    with Progress(False, console=console, tokens=lambda: 0) as ui:
        for data in started[:2]:
            ui.event("step_started", data)
    text = out.getvalue()
    assert "step 1/3, every prompt at 0: inducing from examples: asking the optimizer" in text
    assert f"step 2/3, budget {started[1]['budget']} words: asking the optimizer" in text


def test_induced_candidates_keep_inducing_beside_the_refinements(tmp_path):
    opt = optimizer("Reply yes, variant {seed}.")
    _, sent = run(tmp_path, opt, induced_candidates=1)
    assert all(text.startswith(INDUCTION) for text in sent[:3])  # the cold start
    # After it, each refining step writes two candidates from the update meta-prompt and induces
    # the last one from its own sample of examples, a new sample each step.
    refined_steps = [sent[3:6], sent[6:9]]
    for texts in refined_steps:
        assert [text.startswith(INDUCTION) for text in texts] == [False, False, True]
        assert texts[0] == texts[1] and "Reply yes, variant" in texts[0]
    assert refined_steps[0][2] != refined_steps[1][2]
    assert [r.get("induced_candidates") for r in steps(tmp_path)] == [None, 1, 1]


def test_induced_candidates_are_at_most_the_candidates():
    from gpo_local.errors import ConfigError

    assert GPOConfig().induced_candidates == 0
    GPOConfig(candidates=3, induced_candidates=3).validate()
    with pytest.raises(ConfigError, match=r"induced_candidates=4.* is more than .*candidates=3"):
        GPOConfig(candidates=3, induced_candidates=4).validate()
