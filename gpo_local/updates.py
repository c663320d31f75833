"""The update rule: the meta-prompt sent to the optimizer model and the parsing of its reply.

All meta-prompt wording lives in this module, in the project's own words (the original has no
licence). Structure follows GPO_SPEC 3.1: task line, history block, current prompt, optional
problems section, exemplar explanation, exemplars, request, step-size line, output format.

Decisions (GPO_SPEC section 8):
- 8.3 scores are shown on the 0-100 scale the text announces, rounded to 1 decimal;
- 8.8 parsing takes the first <START>...<END> pair non-greedily, removes stray tags,
  `**` and wrapping quotes; without tags the whole reply is kept (the original's behaviour,
  `require_tags=True` drops it instead); empty results are dropped;
- 8.6 de-duplication is ordered and whitespace-normalized, and the caller registers p0.
"""

from __future__ import annotations

import re
from typing import Iterable, Sequence

from .core import Example, TrajectoryEntry
from .tasks.prompting import assemble

PLACEHOLDER = "<Prompt>"
_WHERE = {
    "Q_end": "at the end of the question",
    "Q_begin": "at the beginning of the question",
    "A_begin": "at the beginning of the answer",
}
UPDATE_METHODS = ("generate", "edit", "generate-without", "edit-without")


def format_score(score: float) -> str:
    return f"{100 * score:.1f}"


def render_exemplar(example: Example, position: str) -> str:
    """An exemplar as the task model would see it, with the placeholder where the prompt goes."""
    return f"Input:\n{assemble(PLACEHOLDER, example.input, position).rstrip()}\nOutput:\n{example.target}"


def render_history(history: Sequence[TrajectoryEntry]) -> str:
    header = (
        "Here are earlier prompts with their scores. A score is the share of examples the model "
        "answered correctly, from 0 to 100; higher is better."
    )
    items = [f"Prompt: {e.prompt}\nScore: {format_score(e.dev_score)}" for e in history]
    return "\n\n".join([header, *items])


def render_update(
    *,
    method: str,
    history: Sequence[TrajectoryEntry],
    current: str,
    exemplars: Sequence[Example],
    position: str,
    budget: int | None = None,
    gradient: str | None = None,
) -> str:
    """The update meta-prompt. `method` is generate / edit, optionally `-without` the problems
    section; `history` is the direction (already selected); `budget` the step size in words."""
    if method not in UPDATE_METHODS:
        raise ValueError(f"unknown update method {method!r}; known: {', '.join(UPDATE_METHODS)}")
    editing = method.startswith("edit")
    noun = "modified prompt" if editing else "new prompt"
    if editing:
        task = f"Your task is to revise the current prompt so that it better replaces {PLACEHOLDER} in the task inputs below."
    else:
        task = f"Your task is to write a prompt that replaces {PLACEHOLDER} in the task inputs below."
    sections = [task]
    if history:
        sections.append(render_history(history))
    sections.append(f"The current prompt is:\n{current}")
    if not method.endswith("-without"):
        if not gradient:
            raise ValueError(f"update method {method!r} needs a gradient text (use {method}-without otherwise)")
        sections.append(f"These are the problems found with the current prompt:\n{gradient}")
    sections.append(
        f"In each input below, {PLACEHOLDER} stands for the prompt. An output counts as wrong when it "
        "differs from the given output, and as right when it matches it."
    )
    sections.extend(render_exemplar(e, position) for e in exemplars)
    where = _WHERE[position]
    if editing:
        request = (f"Study the prompts and scores above, then change the current prompt into a better one "
                   f"to put in place of {PLACEHOLDER} {where}.")
    else:
        request = (f"Study the prompts and scores above, then write a new, better prompt "
                   f"to put in place of {PLACEHOLDER} {where}.")
    if budget is not None:
        request += f"\nYou may change at most {budget} words of the current prompt."
    sections.append(request)
    sections.append(f"Put the {noun} between <START> and <END>.")
    return "\n\n".join(sections)


_TAGGED = re.compile(r"<START>(.*?)(?:<END>|</END>|$)", re.DOTALL | re.IGNORECASE)
_STRAY = re.compile(r"</?(?:START|END)>|" + re.escape(PLACEHOLDER), re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # control characters, except tab and newline
_SPACES = re.compile(r"[ \t]{2,}")
_QUOTES = "\"'“”‘’`"


def parse_candidate(reply: str | None, *, require_tags: bool = False) -> str | None:
    """Extract the prompt from an optimizer reply; None when nothing usable is left.

    Replies of every shape are handled without raising: empty or whitespace-only replies, tags
    with nothing (or only the `<Prompt>` placeholder) between them, a reply cut off after
    `<START>`, control characters. A reply without tags is kept whole (the original's
    behaviour) unless `require_tags`; a very long one is not cut here: `max_prompt_words`
    drops it, and one that does not fit the task model's context is scored 0 (evaluator)."""
    if not reply:
        return None
    match = _TAGGED.search(reply)
    if match:
        text = match.group(1)
    elif require_tags:
        return None
    else:
        text = reply
    text = _STRAY.sub(" ", _CONTROL.sub("", text)).replace("**", "")
    text = _SPACES.sub(" ", text).strip()
    if len(text) >= 2 and text[0] in _QUOTES and text[-1] in _QUOTES:
        text = text[1:-1].strip()
    if not text:
        return None
    return text[0].upper() + text[1:]


def normalize_prompt(prompt: str) -> str:
    """The identity used for de-duplication: whitespace runs folded."""
    return " ".join(prompt.split())


def dedupe_ordered(candidates: Iterable[str | None], seen: Iterable[str] = ()) -> list[str]:
    """Keep the first occurrence of each prompt, in order, dropping None and prompts already in
    `seen` (compared whitespace-normalized)."""
    known = {normalize_prompt(p) for p in seen}
    kept = []
    for c in candidates:
        if c is None:
            continue
        key = normalize_prompt(c)
        if key not in known:
            known.add(key)
            kept.append(c)
    return kept


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
