"""The gradient of a GPO step (the paper's analogical gradient) and its momentum over feedback.

Feedback gradient: the wrong examples are the train-minibatch outcomes scoring below 1 (for
exact match: the wrong ones), in batch order, shown with the round-2 (final) answer; a batch
without wrong answers makes no optimizer call, its gradient is a fixed sentence and the
momentum over feedback is left as it was.

Every strategy is a registry entry (strategy.py): `(context, state) -> (result, new_state)`.
Gradients take a `GradientContext` and give a `Gradient`; momentum over feedback takes a
`FeedbackContext` and gives the text shown in the meta-prompt. Neither sees the optimizer
object: the context holds what they use (the optimizer's `ask`, the train minibatch's outcomes
and the run's options for a gradient; the gradient history and the embedder for the momentum),
bound to the step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from gpo_local.algorithm.config import GPOConfig
from gpo_local.algorithm.directions import GradientEntry, canonical_selection, get_selector
from gpo_local.algorithm.strategy import Ask, Strategy
from gpo_local.algorithm.updates import render_feedback, render_feedback_merge
from gpo_local.core import Example, Outcome
from gpo_local.replies.parsing import parse_candidate

NO_WRONG_ANSWERS = "The current prompt answered every example of the last batch correctly."


@dataclass(frozen=True)
class Gradient:
    text: str | None  # None: no gradient
    wrong: bool = False  # whether the batch had wrong answers (only then may the momentum move)
    record: dict = field(default_factory=dict)  # what the step record keeps of it


@dataclass(frozen=True)
class GradientContext:
    """What a gradient strategy reads at a step."""

    step: int
    prompt: str  # the current prompt
    ask: Ask
    config: GPOConfig  # the run's options, so a gradient reads its own
    # The step's train minibatch and the current prompt's outcomes on it, scored when called.
    train_outcomes: Callable[[], tuple[Sequence[Example], Sequence[Outcome]]]


@dataclass(frozen=True)
class FeedbackContext:
    """What a momentum over feedback reads at a step."""

    step: int
    gradient: Gradient  # the step's new gradient
    history: tuple[GradientEntry, ...]  # the run's gradients, oldest first, the new one last
    k: int
    selection: str
    embed: Callable[[Sequence[str]], Any]  # texts -> unit vectors (the FAISS index's embedder)
    ask: Ask


def no_gradient(context: GradientContext, state):
    return Gradient(None), state


def feedback_gradient(context: GradientContext, state):
    """The problems behind the wrong answers of the step's train minibatch."""
    batch, outcomes = context.train_outcomes()
    record: dict = {"train_batch": [e.id for e in batch]}
    wrong = [(example, o.final_answer.strip()) for example, o in zip(batch, outcomes) if o.score < 1]
    if wrong:
        meta = render_feedback(context.prompt, wrong)
        reply = context.ask([meta], tag="gradient", temperature=0.0)[0]
        text = parse_candidate(reply) or NO_WRONG_ANSWERS
        record["gradient_meta_prompt"] = meta
    else:
        text = NO_WRONG_ANSWERS
    record["gradient"] = text
    return Gradient(text, bool(wrong), record), state


GRADIENTS: dict[str, Strategy] = {"none": Strategy(no_gradient), "feedback": Strategy(feedback_gradient)}


def as_is(context: FeedbackContext, state):
    """No momentum over feedback: the gradient itself."""
    return context.gradient.text, state


def k_list_feedback(context: FeedbackContext, state):
    """The k gradients of the history chosen by the selection (k items in total)."""
    history = context.history
    similarities = []
    if canonical_selection(context.selection) == "relevance":
        vectors = context.embed([g.text for g in history])
        similarities = (vectors @ vectors[-1]).tolist()
    select = get_selector(context.selection, over="feedback")
    return "\n\n".join(g.text for g in select(history, context.k, similarities)), state


def real_time_feedback(context: FeedbackContext, state):
    """A running summary the new gradient is folded into (one optimizer call), when it has
    wrong answers to add: the textual v <- beta * v + g."""
    gradient = context.gradient
    if state is not None and gradient.wrong:
        reply = context.ask([render_feedback_merge(state, gradient.text)], tag="merge", temperature=0.0)[0]
        state = parse_candidate(reply) or gradient.text
    elif state is None:
        state = gradient.text
    return state, state


FEEDBACK_MOMENTA: dict[str, Strategy] = {
    "none": Strategy(as_is),
    "k-list": Strategy(k_list_feedback),
    "real-time": Strategy(real_time_feedback, state_key="feedback_momentum"),
}


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
