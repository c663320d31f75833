"""The gradient of a GPO step (the paper's analogical gradient) and its momentum over feedback.

Feedback gradient: the wrong examples are the train-minibatch outcomes scoring below 1 (for
exact match: the wrong ones), in batch order, shown with the round-2 (final) answer; a batch
without wrong answers makes no optimizer call, its gradient is a fixed sentence and the
momentum over feedback is left as it was.

Every strategy is a registry entry. Gradients: `(run, step, prompt) -> Gradient`. Momentum over
feedback: `(run, step, gradient, state) -> (text shown, new state)`; a strategy with a
`state_key` has its state recorded under that key of the step record, so resume restores it
generically (the latest recorded value). `run` is the GPO method: it asks the optimizer
(`run.ask`), scores train batches (`run.train_outcomes`) and holds the gradient history.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from gpo_local.algorithm.directions import GradientEntry, canonical_selection
from gpo_local.algorithm.updates import render_feedback, render_feedback_merge
from gpo_local.replies.parsing import parse_candidate

NO_WRONG_ANSWERS = "The current prompt answered every example of the last batch correctly."


@dataclass(frozen=True)
class Gradient:
    text: str | None  # None: no gradient
    wrong: bool = False  # whether the batch had wrong answers (only then may the momentum move)
    record: dict = field(default_factory=dict)  # what the step record keeps of it


def no_gradient(run, step: int, prompt: str) -> Gradient:
    return Gradient(None)


def feedback_gradient(run, step: int, prompt: str) -> Gradient:
    """The problems behind the wrong answers of the step's train minibatch."""
    batch, outcomes = run.train_outcomes(step, prompt)
    record: dict = {"train_batch": [e.id for e in batch]}
    wrong = [(example, o.final_answer.strip()) for example, o in zip(batch, outcomes) if o.score < 1]
    if wrong:
        meta = render_feedback(prompt, wrong)
        reply = run.ask([meta], step=step, tag="gradient", temperature=0.0)[0]
        text = parse_candidate(reply) or NO_WRONG_ANSWERS
        record["gradient_meta_prompt"] = meta
    else:
        text = NO_WRONG_ANSWERS
    record["gradient"] = text
    return Gradient(text, bool(wrong), record)


GRADIENTS: dict[str, Callable[..., Gradient]] = {"none": no_gradient, "feedback": feedback_gradient}


def as_is(run, step: int, gradient: Gradient, state):
    """No momentum over feedback: the gradient itself."""
    return gradient.text, state


def k_list_feedback(run, step: int, gradient: Gradient, state):
    """The k gradients of the history chosen by the selection (k items in total)."""
    cfg, history = run.config, run.gradients
    similarities = []
    if canonical_selection(cfg.selection) == "relevance":
        vectors = run.index.embedder.encode([g.text for g in history])
        similarities = (vectors @ vectors[-1]).tolist()
    return "\n\n".join(g.text for g in run.select(history, cfg.k, similarities)), state


def real_time_feedback(run, step: int, gradient: Gradient, state):
    """A running summary the new gradient is folded into (one optimizer call), when it has
    wrong answers to add: the textual v <- beta * v + g."""
    if state is not None and gradient.wrong:
        reply = run.ask([render_feedback_merge(state, gradient.text)], step=step, tag="merge", temperature=0.0)[0]
        state = parse_candidate(reply) or gradient.text
    elif state is None:
        state = gradient.text
    return state, state


real_time_feedback.state_key = "feedback_momentum"
FEEDBACK_MOMENTA: dict[str, Callable] = {"none": as_is, "k-list": k_list_feedback, "real-time": real_time_feedback}


def feedback_momentum_name(config) -> str:
    return config.momentum_update if config.momentum == "feedback" else "none"


def gradient_history(records: list[dict]) -> list[GradientEntry]:
    """The gradients of the complete step records, each with its step's dev-score change."""
    history, previous = [], None
    for record in records:
        if record["kind"] == "step" and record.get("gradient") is not None:
            improvement = record["dev_score"] - previous if previous is not None else None
            history.append(GradientEntry(record["gradient"], record["step"], improvement))
        if record["kind"] in ("init", "step"):
            previous = record["dev_score"]
    return history
