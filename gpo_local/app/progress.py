"""Progress of long commands: a live display on stderr (rich) and a JSON-lines events log.

The optimizer and the evaluator know nothing about either: they call `on_event(kind, data)` and
`on_progress(done, total)`, and a `Progress` turns those calls into

* a live display on stderr (silent with ``quiet=True``, e.g. ``--quiet``): a line per step
  (budget, candidates, the chosen prompt) above up to three bars: an optional outer bar (e.g.
  the cells of a benchmark, see `overall`), the optimization steps (step k of T, candidates
  scored so far, the best dev score so far, the run's ETA) and the current work (scoring:
  questions per second, generated tokens per second, ETA; or waiting for the optimizer model);
* an events log (``events_path``, normally ``RUN_DIR/events.jsonl``): one JSON object per line,
  ``{"time": <unix seconds>, "event": <kind>, ...data}``, appended and flushed per event, so it
  survives a kill and a resumed run appends to it. Kinds (CONTRACT.md): run_started, initial,
  step_started (step, steps, budget), candidates (counts), scoring (done, total,
  questions_per_second, tokens_per_second), chosen (step, prompt, dev_score, best), warning,
  run_finished (run_failed / run_interrupted when the command stops on an error or Ctrl-C);
  any other kind a caller sends (resumed, trajectory, ...) is logged as is.

Use::

    with Progress(quiet=False, events_path=run_dir / "events.jsonl", tokens=count_tokens) as ui:
        ui.event("run_started", {"task": ...})
        gpo = GPO(..., on_event=ui.event, on_progress=ui.progress)
        result = gpo.run()
    ui.finish({...})  # logs run_finished once the results are written

`tokens` is an optional zero-argument callable returning the number of tokens generated so far
by the models (see `generated_tokens`); without it tokens per second are not shown.

A benchmark that runs many optimizations keeps ONE Progress (rich allows one live display at a
time): call ``ui.overall(i, n, "cells")`` as cells complete and ``ui.log_to(cell_dir /
"events.jsonl")`` before each cell, and pass ``ui.event`` / ``ui.progress`` to each run.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable, TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, ProgressColumn, TextColumn
from rich.progress import Progress as RichProgress
from rich.text import Text

from gpo_local.app.formatting import percent
from gpo_local.replies.drops import describe
from gpo_local.runs import faults
from gpo_local.runs.storage import naming

# The optimizer's own names for some events, and the names the events log uses (CONTRACT.md).
EVENT_NAMES = {"step": "step_started"}


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-:--"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def generated_tokens(*models) -> Callable[[], int]:
    """A counter of the tokens generated so far by llama.cpp models (their batched decoder's
    statistics; a model that has not generated yet counts 0, other LLMs are ignored)."""
    distinct = list({id(m): m for m in models}.values())

    def count() -> int:
        total = 0
        for model in distinct:
            decoder = vars(model).get("decoder")  # a cached_property: absent until first use
            stats = getattr(decoder, "stats", None)
            total += getattr(stats, "generated_tokens", 0) if stats is not None else 0
        return total

    return count


class EventLog:
    """Append-only JSON lines, flushed per event (not fsynced: progress is not state)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._handle: TextIO | None = None

    def write(self, kind: str, data: dict) -> None:
        if self._handle is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = self.path.open("a", encoding="utf-8")
        record = {"time": round(time.time(), 3), "event": kind, **data}

        faults.point("events-append")

        with naming(self.path):
            self._handle.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
            self._handle.flush()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


class _Info(ProgressColumn):
    """The text after a bar: the work bar's live rates, or a bar's own `info` field."""

    def __init__(self, ui: "Progress"):
        super().__init__()
        self.ui = ui

    def render(self, task) -> Text:
        return Text(self.ui.work_info() if task.id == self.ui._work else task.fields.get("info", ""))


class Progress:
    """Live progress on stderr and the events log of one command (see the module docstring)."""

    def __init__(
        self,
        quiet: bool = False,
        *,
        events_path: Path | None = None,
        tokens: Callable[[], int] | None = None,
        console=None,
    ):
        self.quiet = quiet
        self.console = console or Console(stderr=True)
        self.log = EventLog(events_path) if events_path else None
        self.tokens = tokens or (lambda: 0)
        self.has_tokens = tokens is not None
        self.bars = RichProgress(
            TextColumn("{task.description}"),
            BarColumn(bar_width=30),
            MofNCompleteColumn(),
            _Info(self),
            console=self.console,
            disable=quiet,
            transient=True,
        )
        self._outer = self._steps = self._work = None
        self._new_run(None)
        # Scoring-pass state, for rates and ETA.
        self._pass_total: int | None = None
        self._pass_done = 0
        self._pass_started = time.time()
        self._pass_tokens = 0
        self._last_logged = 0.0
        self._last_mark, self._tokens_at_mark = time.time(), 0
        self._work_kind: str | None = None

    def _new_run(self, steps: int | None) -> None:
        """Run-level state for the steps bar (reset by each run_started event)."""
        self.best: float | None = None
        self.scored = 0  # candidates scored by this process
        self.steps_total = steps
        self.steps_done = 0
        self._steps_started_at: float | None = None
        self._steps_done_at_start = 0

    # -- context manager ------------------------------------------------------------------
    def __enter__(self) -> "Progress":
        self.bars.__enter__()
        return self

    def __exit__(self, exc_type, exc, traceback):
        try:
            return self.bars.__exit__(exc_type, exc, traceback)
        finally:
            if exc_type is KeyboardInterrupt:
                self._write("run_interrupted", {})
            elif exc_type is not None:
                self._write("run_failed", {"error": f"{exc_type.__name__}: {exc}"})
            if self.log:
                self.log.close()

    # -- public API -----------------------------------------------------------------------
    def count_tokens(self, tokens: Callable[[], int]) -> None:
        """Show tokens per second from this counter (set once the models are loaded)."""
        self.tokens, self.has_tokens = tokens, True

    def finish(self, data: dict) -> None:
        """Log run_finished (after the live display has closed) and close the log."""
        self._write("run_finished", data)
        if self.log:
            self.log.close()

    def log_to(self, events_path: Path | None) -> None:
        """Send the following events to another file (one run directory after another)."""
        if self.log:
            self.log.close()
        self.log = EventLog(events_path) if events_path else None

    def note(self, text: str, style: str | None = None) -> None:
        """A line above the bars (not logged)."""
        if not self.quiet:
            self.console.print(text, style=style, highlight=False, markup=False)

    def overall(self, done: int, total: int | None, label: str = "runs") -> None:
        """The outer bar, for commands that run several optimizations (e.g. benchmark cells)."""
        if self.quiet:
            return
        if self._outer is None:
            self._outer = self.bars.add_task(label, total=total, info="")
        self.bars.update(self._outer, description=label, completed=done, total=total)

    def progress(self, done: int, total: int) -> None:
        """Scoring progress: `done` of `total` (prompt, question) pairs of the current pass."""
        now = time.time()
        new_pass = (
            done <= 0
            or total != self._pass_total
            or done < self._pass_done
            or self._pass_done == self._pass_total
        )
        if new_pass:
            # The evaluator reports (0, total) as it starts; without that call, the pass began at
            # the last event (every scoring pass of the optimizer follows one immediately).
            started = now if done <= 0 else self._last_mark
            self._pass_total, self._pass_started, self._pass_tokens = total, started, self._tokens_at_mark
            if done <= 0:
                self._pass_tokens = self.tokens()
        self._pass_done = done
        elapsed = max(now - self._pass_started, 1e-6)
        rate = done / elapsed
        token_rate = (self.tokens() - self._pass_tokens) / elapsed
        # One record per chunk is plenty (chunks are 16 pairs); the last one always goes out.
        if done > 0 and self.log and (done >= total or now - self._last_logged >= 1.0):
            self._last_logged = now
            self._write(
                "scoring",
                {
                    "done": done,
                    "total": total,
                    "questions_per_second": round(rate, 3),
                    "tokens_per_second": round(token_rate, 1) if self.has_tokens else None,
                },
            )
        self._work_kind = "scoring"
        self._work_bar("scoring", done, total)

    def event(self, kind: str, data: dict) -> None:
        """An event from the optimizer (or the command): logged, and shown where it matters."""
        kind = EVENT_NAMES.get(kind, kind)
        self._last_mark, self._tokens_at_mark = time.time(), self.tokens()
        self._write(kind, data)
        if kind == "run_started":
            self._new_run(data.get("steps"))
            self._update_steps()  # the steps bar first, above the scoring bar
        elif kind == "initial":
            self.note(f"scoring the initial prompt {data['prompt']!r} on the dev split")
        elif kind == "resumed":
            self.steps_done = self._steps_done_at_start = data["completed_steps"]
            self.note(f"resuming after {data['completed_steps']} complete steps")
        elif kind == "trajectory":
            entry = data["entry"]
            self.best = entry["dev_score"] if self.best is None else max(self.best, entry["dev_score"])
            if entry["step"] == -1:
                self.note(f"  initial prompt: dev {percent(entry['dev_score'])}")
        elif kind == "step_started":
            self.steps_total = data["steps"]
            if self._steps_started_at is None:
                self._steps_started_at, self._steps_done_at_start = time.time(), data["step"]
            budget = "" if data.get("budget") is None else f", budget {data['budget']} words"
            if data.get("induce"):  # GPO's cold start: no step size is stated
                budget = ", every prompt at 0: inducing from examples"
            self.note(f"step {data['step'] + 1}/{data['steps']}{budget}: asking the optimizer")
            self._update_steps()
            self._work_kind, self._pass_started, self._pass_tokens = "optimizer", time.time(), self.tokens()
            self._work_bar("optimizer: generating candidates", 0, None)
        elif kind == "candidates":
            self.scored += data.get("new", 0)

            self.note(
                f"  {data['usable']} usable candidates ({data['new']} new; dropped: "
                f"{describe(data.get('drops', {}))})"
            )
            self._update_steps()
        elif kind == "chosen":
            self.best = data.get("best", self.best)
            self.steps_done = data["step"] + 1
            self.note(
                f"  chosen (dev {percent(data['dev_score'])}, best {percent(data.get('best'))}): "
                f"{data['prompt'][:100]!r}"
            )
            self._update_steps()
        elif kind == "warning":
            self.note(f"warning: {data['message']}", style="yellow")

    # -- internals ------------------------------------------------------------------------
    def _write(self, kind: str, data: dict) -> None:
        if self.log:
            self.log.write(kind, data)

    def _work_bar(self, description: str, done: int, total: int | None) -> None:
        if self.quiet:
            return
        if self._work is None:
            self._work = self.bars.add_task(description, total=total, info="")
        self.bars.update(self._work, description=description, completed=done, total=total)

    def work_info(self) -> str:
        """The current work's rates, computed when the display refreshes (10 times a second):
        the evaluator reports every 16 pairs, but tokens per second move while a chunk decodes."""
        elapsed = max(time.time() - self._pass_started, 1e-6)
        parts = []
        if self._work_kind == "scoring":
            rate = self._pass_done / elapsed
            eta = (self._pass_total - self._pass_done) / rate if rate > 0 and self._pass_total else None
            parts.append(f"{rate:.2f} q/s")
        if self.has_tokens:
            parts.append(f"{(self.tokens() - self._pass_tokens) / elapsed:.0f} tok/s")
        parts.append(f"{format_duration(elapsed)} elapsed")
        if self._work_kind == "scoring":
            parts.append(f"ETA {format_duration(eta)}")
        return " · ".join(parts)

    def _update_steps(self) -> None:
        if self.quiet or self.steps_total is None:
            return
        eta = None
        done_here = self.steps_done - self._steps_done_at_start
        if self._steps_started_at is not None and done_here > 0:
            per_step = (time.time() - self._steps_started_at) / done_here
            eta = per_step * (self.steps_total - self.steps_done)
        info = f"best dev {percent(self.best)} · {self.scored} candidates scored · ETA {format_duration(eta)}"
        if self._steps is None:
            self._steps = self.bars.add_task("steps", total=self.steps_total, info=info)
        self.bars.update(self._steps, completed=self.steps_done, total=self.steps_total, info=info)
