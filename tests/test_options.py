"""Options declared in config.OPTIONS reach the command line, TOML files and the run (one
declaration; see config.py)."""

import json

from click.testing import CliRunner
from fake_models import install

from gpo_local.app.cli import main
from gpo_local.testing import ScriptedLLM


def run(monkeypatch, tmp_path, *args):
    task, optimizer = install(
        monkeypatch, task_llm=ScriptedLLM(lambda messages, temperature, seed: "positive")
    )
    outcome = CliRunner().invoke(
        main,
        [
            "optimize",
            "sentiment",
            "--steps",
            "2",
            "--candidates",
            "2",
            "--dev-limit",
            "4",
            "--test-limit",
            "4",
            "--no-cache",
            "--quiet",
            "--run-dir",
            str(tmp_path / "run"),
            *args,
        ],
    )
    return outcome, optimizer


def test_optimizer_temperature_reaches_every_candidate_call(monkeypatch, tmp_path):
    outcome, optimizer = run(monkeypatch, tmp_path, "--optimizer-temperature", "0.3")
    assert outcome.exit_code == 0, outcome.output
    assert [call["temperature"] for call in optimizer.calls] == [0.3] * 4
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["config"]["optimizer_temperature"] == 0.3


def test_optimizer_temperature_from_a_file_and_its_range(monkeypatch, tmp_path):
    (tmp_path / "opts.toml").write_text("optimizer-temperature = 0\n")
    outcome, optimizer = run(monkeypatch, tmp_path, "--config", str(tmp_path / "opts.toml"))
    assert outcome.exit_code == 0, outcome.output
    assert {call["temperature"] for call in optimizer.calls} == {0.0}
    outcome, _ = run(monkeypatch, tmp_path, "--optimizer-temperature", "-1")
    assert outcome.exit_code == 2 and "-1.0 is not in the range x>=0" in outcome.output
