"""GBNF grammars for optimizer replies that are always a prompt.

With grammar-constrained sampling (llama.cpp's grammar sampler, see backends/constrained.py)
the optimizer's reply is exactly `<START>w1 w2 ... wk<END>`: the tag format parse_candidate
expects, no `<` or `>` inside (so no tag or `<Prompt>` placeholder can leak into the prompt), at
most `max_words` words. No reply is then lost to missing tags, runaway length or leaked tags; a
reply can still be cut by the token limit.

Words are separated by a short run of spaces, tabs and newlines (`GAP`), and such a run may also
open and close the prompt: a grammar that allowed single spaces only forbade what the model
wanted to write next whenever that was a line break (a list, a paragraph, the newline before
`<END>`), and sampling from what was left gave junk: non-ASCII fragments ("...the starting
point or不够.-answer") and replies run to the word cap (benchmarks/grammar_replies.py).

The word cap of a step: a prompt that changes at most `budget` words of the current prompt
(word edit distance) has at most len(current) + budget words, so that is the cap, tightened by
`max_prompt_words` when set. Without a step size the cap is `max_prompt_words` or none. A
prompt that reaches the cap was ended by the grammar, often mid-word: it is cut back to its last
full sentence (`cut_to_sentence`, applied by drops.classify).

The token limit of a constrained reply is sized to its cap (`reply_token_limit`): the grammar
ends the reply after `cap` words anyway, so a limit below what those words take only cuts
replies the grammar would have closed.

Reasoning first (`reasoning=True`, for a method with Method.reasons_first): a free preamble
before `<START>` (any text without `<`), and a token limit of --optimizer-max-tokens for it plus
what the cap needs. PE2 asks for reasoning first ("Give your reasoning first, then put the new
prompt between <START> and <END>"), and under the bare grammar its reasoning has nowhere to go
but between the tags: 30 of its 95 constrained candidates in the `local.toml` cells of seeds 0
and 1 were reasoning ("The current prompt is too vague and ..."), dropped now as meta talk
(leaks.py). Room to reason did not give more usable replies, though (benchmarks/
reasoning_grammar.py: 9 of 16 at 128 tokens of reasoning, 12 of 16 at 320, 13 of 16 without;
the reasoning runs past the limit), so PE2 does not take it.
"""

from __future__ import annotations

import re

WORD_CHARS = r"[^ \t\n\r<>]"
GAP = r"[ \t\n]{1,3}"  # between words, and optionally after <START> and before <END>
MAX_WORD_CHARS = 40  # a "word" longer than this is not an instruction word (and bounds tokens)
# Tokens a capped reply may need: Qwen2.5's and SmolLM2's tokenizers take 1.3-1.5 tokens per
# English word, more for words with quotes or punctuation attached; 3 per word plus the tags
# leaves room for those without raising the limit much (a reply stops at <END> anyway).
TOKENS_PER_WORD, TAG_TOKENS = 3, 8


# A full stop, question or exclamation mark (closing quotes and brackets attached) that ends a
# sentence: followed by whitespace, so "e.g.x" or "`a.b`" inside a word is not one; and not a
# list marker opening a line ("1.", "a.", "IV.") nor an abbreviation with inner dots ("e.g.",
# "i.e."): 3 of the 86 prompts cut by the first version ended "...key elements:\n1.", and a
# `local.toml` cell's "...for each step.\nIV.".
_SENTENCE_END = re.compile(r"(\S*?)[.!?][\"'”’)\]`]*(?=\s)")
_LIST_MARKER, _ABBREVIATION = re.compile(r"\d+|\w|[IVXLC]+|[ivxlc]+"), re.compile(r"\(?(?:\w+\.)+\w+")
# How a prompt that needs no cut ends: a sentence or a colon (closing quotes and brackets attached).
COMPLETE_ENDING = re.compile(r"[.!?:][\"'”’)\]`]*$")


def _ends_a_sentence(prompt: str, end: re.Match) -> bool:
    """Whether a _SENTENCE_END match in `prompt` ends a sentence (not a marker, not an abbreviation)."""
    word, line_start = end.group(1), end.start() == 0 or prompt[end.start() - 1] == "\n"
    return not (_ABBREVIATION.fullmatch(word) or (line_start and _LIST_MARKER.fullmatch(word)))


def cut_to_sentence(prompt: str, cap: int | None) -> str:
    """A constrained prompt that reached its word cap, cut back to the end of its last full
    sentence; any other prompt as it is.

    At the cap the grammar, not the model, ends the reply: the model's next word is forbidden,
    and sampling from what is left continues the last word with junk until `<END>` ("...After
    that, makeerek", "...determine if,只要有正确的顺序"); benchmarks/cut_at_cap.py counts what
    the cut does on recorded candidates.
    A prompt without a full sentence to keep stays whole."""
    if cap is None or len(prompt.split()) < cap or COMPLETE_ENDING.search(prompt):
        return prompt
    ends = [m.end() for m in _SENTENCE_END.finditer(prompt) if _ends_a_sentence(prompt, m)]
    return prompt[: ends[-1]] if ends else prompt


def word_cap(current: str, budget: int | None, max_prompt_words: int | None) -> int | None:
    caps = [
        c
        for c in ((len(current.split()) + budget) if budget is not None else None, max_prompt_words)
        if c is not None
    ]
    return min(caps) if caps else None


def reply_token_limit(max_tokens: int, cap: int | None, reasoning: bool = False) -> int:
    """The token limit of a constrained reply of at most `cap` words: `max_tokens`, raised to
    what the cap needs; with `reasoning` first, `max_tokens` for it plus what the cap needs."""
    if cap is None:
        return max_tokens
    prompt = TOKENS_PER_WORD * cap + TAG_TOKENS
    return max_tokens + prompt if reasoning else max(max_tokens, prompt)


def prompt_grammar(max_words: int | None = None, reasoning: bool = False) -> str:
    """The GBNF of a tagged prompt of 1..max_words words (unbounded when None), after free
    reasoning without `<` when `reasoning`."""
    if max_words is not None and max_words < 1:
        raise ValueError(f"max_words must be at least 1, got {max_words}")
    if max_words is None:
        more = "(gap word)*"
    elif max_words == 1:
        more = ""
    else:
        more = f"(gap word){{0,{max_words - 1}}}"
    preamble = "reasoning " if reasoning else ""
    return "\n".join(
        [
            f'root ::= {preamble}"<START>" gap? word {more} gap? "<END>"'.replace("  ", " "),
            f"word ::= {WORD_CHARS}{{1,{MAX_WORD_CHARS}}}",
            f"gap ::= {GAP}",
            *(["reasoning ::= [^<]*"] if reasoning else []),
            "",
        ]
    )


def state_word_cap(meta_prompt: str, cap: int | None) -> str:
    """The meta-prompt with the replies' word cap stated, when there is one: a constrained reply
    is cut at the cap, so the optimizer should write a prompt that ends before it."""
    return meta_prompt if cap is None else f"{meta_prompt}\nWrite at most {cap} words between the tags."
