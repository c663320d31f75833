"""A run directory read back as data, for `show` and `report`.

Reads config.json, trajectory.jsonl (init / candidate / step records, see algorithm/method.py),
result.json and events.jsonl, whichever exist: an unfinished run has no result.json and maybe a
step whose candidates were recorded without its closing `step` record. Steps are numbered as
recorded (-1 is the initial prompt); displays show them 1-based (`StepView.label`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from statistics import mean

from gpo_local.errors import ConfigError
from gpo_local.runs.health import DAMAGED, WRONG_SHAPE, check_run


@dataclass
class StepView:
    step: int  # -1: the initial prompt
    prompt: str
    dev_score: float
    budget: int | None = None
    candidates: list[dict] = field(default_factory=list)
    drops: dict = field(default_factory=dict)  # dropped optimizer replies by reason
    replies: int | None = None  # the candidate replies those drops are out of (None: not counted)
    cuts: int = 0  # constrained prompts cut back to a full sentence at their word cap (grammar.py)
    # The reply quota (algorithm/quota.py): optimizer calls made for the step's candidates, the
    # candidates wanted, the usable new ones obtained (None: the quota was off)
    asks: int | None = None
    wanted: int | None = None
    usable: int | None = None
    start: str | None = None  # "induce": a cold-start step, its candidates induced from examples

    @property
    def induced(self) -> bool:
        return self.start == "induce"

    @property
    def label(self) -> str:
        return "init" if self.step < 0 else str(self.step + 1)

    @property
    def distances(self) -> list[int]:
        return [c["edit_distance"] for c in self.candidates if c.get("edit_distance") is not None]

    @property
    def mean_distance(self) -> float | None:
        return mean(self.distances) if self.distances else None


@dataclass
class RunView:
    path: Path
    config: dict
    steps: list[StepView]
    pending: list[dict]  # candidates of a step that was not completed
    result: dict | None
    events: list[dict]

    @property
    def task(self) -> str:
        return (self.result or {}).get("task") or self.config.get("task") or self.path.name

    @property
    def method(self) -> str:
        return (
            (self.result or {}).get("method")
            or self.config.get("method")
            or self.config.get("config", {}).get("method")
            or "gpo"
        )

    @property
    def finished(self) -> bool:
        return self.result is not None

    @property
    def steps_planned(self) -> int | None:
        return self.config.get("config", {}).get("steps")

    @property
    def name(self) -> str:
        return f"{self.task} / {self.method} ({self.path.name})"


def read_events(path: Path) -> list[dict]:
    """The records of an events.jsonl, torn lines skipped; [] when there is none."""
    if not path.exists():
        return []
    events = []
    for line in path.read_bytes().splitlines():
        try:
            event = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            continue  # a torn line from a kill: progress records are not state
        if isinstance(event, dict):
            events.append(event)
    return events


def load_run(path: Path) -> RunView:
    """The run in `path` as recorded; a damaged or wrongly shaped file is one error that says
    what is wrong and the command that repairs it (runs/health.py). A torn last line is what a
    kill (or a running run) leaves: the records before it are shown."""
    path = Path(path)
    files = check_run(path)
    for problem in files.problems:
        if problem.path.name == "config.json" or problem.state in (DAMAGED, WRONG_SHAPE):
            raise ConfigError(str(problem))
    steps: list[StepView] = []
    pending: list[dict] = []
    for record in files.records:
        kind = record.get("kind")
        if kind == "candidate":
            pending.append(record)
        elif kind in ("init", "step"):
            steps.append(
                StepView(
                    step=record["step"],
                    prompt=record["prompt"],
                    dev_score=record["dev_score"],
                    budget=record.get("budget"),
                    candidates=pending,
                    drops=record.get("drops") or {},
                    replies=record.get("replies"),
                    cuts=record.get("cut_to_sentence", 0),
                    asks=record.get("asks"),
                    wanted=record.get("wanted"),
                    usable=record.get("usable"),
                    start=record.get("start"),
                )
            )
            pending = []
    return RunView(
        path=path,
        config=files.config,
        steps=steps,
        pending=pending,
        result=files.result,
        events=read_events(path / "events.jsonl"),
    )


def outcome_changes(result: dict | None) -> dict | None:
    """Per-example changes on the test split between the initial and the final prompt:
    {"fixed": [...], "broken": [...], "same_right": [...], "same_wrong": [...]}, each a list of
    (initial outcome, final outcome) pairs by example id; None without per-example outcomes."""
    outcomes = (result or {}).get("test_outcomes") or {}
    initial, final = outcomes.get("initial"), outcomes.get("final")
    if not initial or not final:
        return None
    final_by_id = {o["example_id"]: o for o in final}
    changes = {"fixed": [], "broken": [], "same_right": [], "same_wrong": []}
    for before in initial:
        after = final_by_id.get(before["example_id"])
        if after is None:
            continue
        if after["score"] > before["score"]:
            changes["fixed"].append((before, after))
        elif after["score"] < before["score"]:
            changes["broken"].append((before, after))
        elif before["score"] > 0:
            changes["same_right"].append((before, after))
        else:
            changes["same_wrong"].append((before, after))
    return changes
