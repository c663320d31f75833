"""Tokenize a chat as the template's markers plus text: nothing from data, prompts or replies
may become a control token.

llama.cpp parses special tokens anywhere in a string when asked to (`special=True`), which the
chat template's own markers (`<|im_start|>`, `<|im_end|>`) need. Tokenizing the whole rendered
conversation that way would also turn a question or a candidate prompt containing
`<|im_end|>\n<|im_start|>system` into real turn boundaries: data could inject chat turns. So
message contents are tokenized with `special=False` and only the template's pieces around them
with `special=True`.

A content without any special-token text tokenizes the same either way, so a conversation made
only of such contents keeps the exact tokens of the whole rendered string (greedy outputs of
ordinary text do not change, whatever the tokenizer does at piece boundaries). Only a
conversation with special-token text in a content is rendered with placeholders and tokenized
piece by piece.
"""

from __future__ import annotations

import re
import uuid
from typing import Callable

from gpo_local.errors import ModelError

Tokenize = Callable[[str, bool], list]  # (text, parse special tokens) -> token ids
Render = Callable[[list], str]  # messages -> the chat template's text


def has_special_text(tokenize: Tokenize, text: str) -> bool:
    """Whether `text` holds the text of a special token (it tokenizes differently when parsed)."""
    return bool(text) and tokenize(text, True) != tokenize(text, False)


def conversation_tokens(tokenize: Tokenize, render: Render, messages: list[dict]) -> list:
    """The tokens of the rendered conversation, message contents always as plain text."""
    if not any(has_special_text(tokenize, str(m.get("content") or "")) for m in messages):
        return tokenize(render(messages), True)
    nonce = uuid.uuid4().hex
    marks = {f"@@gpo-text-{nonce}-{i}@@": str(m.get("content") or "") for i, m in enumerate(messages)}
    rendered = render([{**m, "content": mark} for m, mark in zip(messages, marks)])
    for mark in marks:
        if rendered.count(mark) != 1:
            raise ModelError(
                "the model's chat template changes message text, so data cannot be kept apart from "
                "its control tokens; use another model, or remove special-token text from the data"
            )
    tokens: list = []
    for piece in re.split("(" + "|".join(map(re.escape, marks)) + ")", rendered):
        if piece in marks:
            tokens += tokenize(marks[piece], False) if marks[piece] else []
        elif piece:
            tokens += tokenize(piece, True)
    return tokens
