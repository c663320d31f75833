"""From an optimizer reply to a prompt: the `<START>..<END>` tags, cleaning, and the
identity used to tell prompts apart."""

from __future__ import annotations

import re

# Where the prompt goes in the meta-prompt's task examples; stripped from a reply that repeats it.
PLACEHOLDER = "<Prompt>"

# The prompt of a reply: after <START>, up to <END> (or </END>, or the end of a cut-off reply).
TAGGED_REPLY = re.compile(r"<START>(.*?)(?:<END>|</END>|$)", re.DOTALL | re.IGNORECASE)
_STRAY = re.compile(r"</?(?:START|END)>|" + re.escape(PLACEHOLDER), re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # control characters, except tab and newline
# A closing tag the optimizer garbled on a line of its own at the end ("END", "<END", "END>"),
# measured in a final prompt of the local bench: "...Options: Yes or No\n \nEND".
_GARBLED_END = re.compile(r"\n\s*<?/?END>?\s*$")
_SPACES = re.compile(r"[ \t]{2,}")
_QUOTES = "\"'“”‘’`"
# A label the optimizer puts before its prompt, copied from the meta-prompt's "Prompt: <text>"
# lines of earlier prompts; a small optimizer does so now and then, and such a prompt can end
# as a run's final prompt.
_LABEL = re.compile(r"^(?:(?:new|improved|revised|updated|better)\s+)?prompt\s*:\s*", re.IGNORECASE)


def parse_candidate(reply: str | None, *, require_tags: bool = False) -> str | None:
    """Extract the prompt from an optimizer reply; None when nothing usable is left.

    Replies of every shape are handled without raising: empty or whitespace-only replies, tags
    with nothing (or only the `<Prompt>` placeholder) between them, a reply cut off after
    `<START>`, control characters. A reply without tags is kept whole (the original's
    behaviour) unless `require_tags`; a very long one is not cut here: `max_prompt_words`
    drops it, and one that does not fit the task model's context is scored 0 (evaluator)."""
    if not reply:
        return None
    match = TAGGED_REPLY.search(reply)
    if match:
        text = match.group(1)
    elif require_tags:
        return None
    else:
        text = reply
    text = _STRAY.sub(" ", _GARBLED_END.sub("", _CONTROL.sub("", text))).replace("**", "")
    text = _LABEL.sub("", _SPACES.sub(" ", text).strip())
    if len(text) >= 2 and text[0] in _QUOTES and text[-1] in _QUOTES:
        text = text[1:-1].strip()
    if not text:
        return None
    return text[0].upper() + text[1:]


def parse_all(reply: str) -> list[str]:
    """Every <START>...<END> item of a reply, cleaned like a candidate (for replies that list
    several reasons); the whole reply when it has no tags."""
    items = [
        parse_candidate(f"<START>{m}<END>")
        for m in re.findall(r"<START>(.*?)(?:<END>|</END>)", reply, re.DOTALL | re.IGNORECASE)
    ]
    items = [i for i in items if i]
    if not items and "<START>" not in reply.upper():
        single = parse_candidate(reply)
        items = [single] if single else []
    return items


def normalize_prompt(prompt: str) -> str:
    """The identity used for de-duplication: whitespace runs folded."""
    return " ".join(prompt.split())
