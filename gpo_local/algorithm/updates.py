"""The update rule: the meta-prompt sent to the optimizer model and the parsing of its reply.

All meta-prompt wording lives in this module, in the project's own words (the original has no
licence). Structure follows the original's update meta-prompt: task line, history block, current
prompt, optional problems section, exemplar explanation, exemplars, request, step-size line,
output format.

Decisions where the original code is buggy or silent:
- scores are shown on the 0-100 scale the text announces, rounded to 1 decimal;
- parsing takes the first <START>...<END> pair non-greedily, removes stray tags,
  `**` and wrapping quotes; without tags the whole reply is kept (the original's behaviour,
  `require_tags=True` drops it instead); empty results are dropped;
- de-duplication is ordered and whitespace-normalized, and the caller registers p0.

The update rules are registry entries (strategy.py), one per `update` switch value:
`(UpdateContext, state) -> (the meta-prompt, state)`; they are stateless.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from gpo_local.algorithm.strategy import Strategy
from gpo_local.core import Example, TrajectoryEntry
from gpo_local.replies.parsing import PLACEHOLDER
from gpo_local.tasks.prompting import assemble

WHERE = {
    "Q_end": "at the end of the question",
    "Q_begin": "at the beginning of the question",
    "A_begin": "at the beginning of the answer",
}
UPDATE_METHODS = ("generate", "edit", "generate-without", "edit-without")


def format_score(score: float) -> str:
    return f"{100 * score:.1f}"


def render_exemplar(example: Example, position: str) -> str:
    """An exemplar as the task model would see it, with the placeholder where the prompt goes."""
    return (
        f"Input:\n{assemble(PLACEHOLDER, example.input, position).rstrip()}\nOutput:\n{example.shown_target}"
    )


HISTORY_HEADERS = {
    # (a) no momentum: the current prompt alone; (b) para k-list; (c) para real-time summary.
    "current": "Here is the current prompt with its score.",
    "list": "Here are earlier prompts with their scores.",
    "summary": "Here is a prompt summarizing the earlier ones, with its score.",
}
SCORE_SCALE = (
    "A score is the share of examples the model answered correctly, from 0 to 100; higher is better."
)


def render_scored(prompt: str, score: float) -> str:
    return f"Prompt: {prompt}\nScore: {format_score(score)}"


def render_history(history: Sequence[TrajectoryEntry], kind: str = "list") -> str:
    """The history block of the update meta-prompt; `kind` picks the header of mode a, b or c."""
    items = [render_scored(e.prompt, e.dev_score) for e in history]
    return "\n\n".join([f"{HISTORY_HEADERS[kind]} {SCORE_SCALE}", *items])


def render_request(
    editing: bool, has_history: bool, history_kind: str, position: str, budget: int | None
) -> str:
    """The request section of the update meta-prompt: what to study, what to write and where it
    goes, and the step size in words when a schedule sets one."""
    where = WHERE[position]
    study = {
        "current": "the prompt and score above",
        "list": "the prompts and scores above",
        "summary": "the summarizing prompt and its score above",
    }[history_kind]
    if not has_history:
        study = "the current prompt"
    if editing:
        request = (
            f"Study {study} and the examples, then change the current prompt into a better one "
            f"to put in place of {PLACEHOLDER} {where}."
        )
    else:
        request = (
            f"Study {study} and the examples, then write a new, better prompt "
            f"to put in place of {PLACEHOLDER} {where}."
        )
    request += " Write an instruction for the whole task; do not copy an example."
    if budget is not None:
        request += f"\nYou may change at most {budget} words of the current prompt."
    return request


def render_update(
    *,
    method: str,
    history: Sequence[TrajectoryEntry],
    current: str,
    exemplars: Sequence[Example],
    position: str,
    budget: int | None = None,
    gradient: str | None = None,
    history_kind: str = "list",
) -> str:
    """The update meta-prompt. `method` is generate / edit, optionally `-without` the problems
    section; `history` is the direction (already selected) and `history_kind` its header
    ("current" without momentum, "list" for a k-list, "summary" for real-time momentum);
    `budget` the step size in words; `gradient` the problems text (or its momentum)."""
    if method not in UPDATE_METHODS:
        raise ValueError(f"unknown update method {method!r}; known: {', '.join(UPDATE_METHODS)}")
    editing = method.startswith("edit")
    noun = "modified prompt" if editing else "new prompt"
    if editing:
        task = (
            f"Your task is to revise the current prompt so that it better replaces {PLACEHOLDER} in the "
            f"task inputs below."
        )
    else:
        task = f"Your task is to write a prompt that replaces {PLACEHOLDER} in the task inputs below."
    # The examples come first and are explained plainly, so that a small optimizer model induces
    # the task from them instead of rewording the current prompt: with the history first (the
    # original code's order) Qwen2.5-Coder-1.5B rarely named the task of the built-in `antonyms`;
    # with this order it often does.
    sections = [
        task,
        (
            f"Below are examples of the task. In each input, {PLACEHOLDER} stands for the prompt; the "
            f"output is "
            "the answer the model must give (an answer that differs from it counts as wrong). Work out "
            "what the "
            "examples have in common: what must the model do with the input to get the output? A good prompt "
            "says exactly that, for every input."
        ),
    ]
    sections.extend(render_exemplar(e, position) for e in exemplars)
    if history:
        sections.append(render_history(history, history_kind))
    sections.append(f"The current prompt is:\n{current}")
    if not method.endswith("-without"):
        if not gradient:
            raise ValueError(
                f"update method {method!r} needs a gradient text (use {method}-without otherwise)"
            )
        sections.append(f"These are the problems found with the current prompt:\n{gradient}")
    sections.append(render_request(editing, bool(history), history_kind, position, budget))
    sections.append(f"Put the {noun} between <START> and <END>.")
    return "\n\n".join(sections)


@dataclass(frozen=True)
class UpdateContext:
    """What an update rule reads at a step: the direction (already selected) with its header
    kind, the current prompt, the gradient text shown (or None), the format exemplars, the
    instruction position and the step size in words (None: no schedule)."""

    history: tuple[TrajectoryEntry, ...]
    history_kind: str
    current: str
    gradient: str | None
    exemplars: tuple[Example, ...]
    position: str
    budget: int | None


def _update_rule(method: str) -> Strategy:
    def apply(context: UpdateContext, state):
        return render_update(
            method=method,
            history=context.history,
            history_kind=context.history_kind,
            current=context.current,
            exemplars=context.exemplars,
            position=context.position,
            budget=context.budget,
            gradient=context.gradient,
        ), state

    return Strategy(apply)


UPDATES: dict[str, Strategy] = {method: _update_rule(method) for method in UPDATE_METHODS}


def render_feedback(prompt: str, wrong: Sequence[tuple[Example, str]]) -> str:
    """The feedback-gradient meta-prompt (the paper's analogical gradient): the current prompt and the train
    examples it got wrong, each with the model's final answer and the expected one."""
    shown = "\n\n".join(
        f"Question:\n{example.input}\nWrong answer: {answer}\nExpected answer: {example.shown_target}"
        for example, answer in wrong
    )
    return "\n\n".join(
        [
            "Your task is to find out what is wrong with a prompt, from the examples it fails on.",
            f"The current prompt is:\n{prompt}",
            "With this prompt, the model answers the following examples wrongly. Compare each wrong "
            "answer with the expected one.",
            shown,
            "Explain why the prompt could have led to these wrong answers.",
            "Put the explanation between <START> and <END>.",
        ]
    )


def render_induction(demonstrations: Sequence[Example]) -> str:
    """Instruction induction (APE's forward template, in our words): the optimizer is shown
    input/output pairs and asked for the instruction behind them. APE starts from it; GPO's cold
    start uses it while no prompt has scored above 0, when refining the current prompt has no
    signal to follow."""
    shown = "\n\n".join(f"Input:\n{e.input}\nOutput:\n{e.shown_target}" for e in demonstrations)
    return "\n\n".join(
        [
            "Someone was given an instruction and the inputs below. Following the instruction, they "
            "wrote the output shown after each input.",
            shown,
            "What was the instruction? Put it between <START> and <END>.",
        ]
    )


def render_feedback_merge(previous: str, new: str) -> str:
    """Real-time momentum over feedback (the paper's real-time momentum): fold the new problems
    into the running summary of earlier ones."""
    return "\n\n".join(
        [
            "Your task is to combine two lists of problems found with a prompt into one.",
            f"Problems found with earlier versions of the prompt:\n{previous}",
            f"Problems found with the current prompt:\n{new}",
            "Write one combined description of the problems, keeping what still matters.",
            "Put the combined description between <START> and <END>.",
        ]
    )


def render_prompt_summary(previous: TrajectoryEntry, current: TrajectoryEntry) -> str:
    """Real-time momentum over prompts (the paper's real-time momentum): summarize the previous
    momentum prompt and the current prompt, each with its score, into one prompt."""
    return "\n\n".join(
        [
            "Your task is to summarize two prompts into one prompt.",
            f"Here are the two prompts with their scores. {SCORE_SCALE}",
            render_scored(previous.prompt, previous.dev_score),
            render_scored(current.prompt, current.dev_score),
            "Write one prompt that keeps what makes the better-scoring prompt work.",
            "Put the summarized prompt between <START> and <END>.",
        ]
    )


def word_edit_distance(a: str, b: str) -> int:
    """Levenshtein distance between the whitespace-separated words of two prompts: what the
    "change up to N words" budget asks for, measured (the original never measured it)."""
    x, y = a.split(), b.split()
    previous = list(range(len(y) + 1))
    for i, word in enumerate(x, 1):
        current = [i]
        for j, other in enumerate(y, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (word != other)))
        previous = current
    return previous[-1]
