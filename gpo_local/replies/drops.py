"""Why optimizer replies did not become candidates: one reason per dropped reply, counted per
step (the `drops` field of step records), per run (result.json), in `gpo-local show` and in
the HTML report.

Reasons, checked in this order:
- `empty`: nothing usable (an empty reply, or tags with nothing between them);
- `missing_tags`: no `<START>` tag while tags are required (`require_tags`);
- `truncated`: the reply used (almost) all of its token limit, so it was cut off: the stop
  string `<END>` is trimmed from replies, so a cut reply is recognized by its length (at least
  TRUNCATED_SHARE of `max_tokens` tokens, a margin for re-tokenization differences);
- `tag_leak`: the prompt itself contains a `<START>`/`<END>` tag (the `<Prompt>` placeholder is
  stripped, as the original does: measured, prompts that say "the opposite of <Prompt>" work);
- `too_long`: more words than the cap (`max_prompt_words`; with a grammar, the step's cap);
- `leaks_example`: it restates a task example (leaks.py);
- `meta_talk`: it talks about the prompt instead of being one, in the meta-prompt's words
  ("Change at most 40 words of the current prompt.", "The current prompt is too vague"; leaks.py);
- `duplicate`: the same prompt (whitespace-normalized) as an earlier reply of the same call (with
  the reply quota, of the same step's earlier asks).
A grammar-constrained reply (grammar.py) cannot be empty, untagged, leak tags or exceed the cap;
it can still be truncated, leak an example, talk about the prompt or repeat another. One that
reached its cap is cut back to its last full sentence (grammar.cut_to_sentence): kept, and
counted as `cut_to_sentence` in the step record, not as a drop.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Callable, Iterable, Sequence

from gpo_local.core import STEP
from gpo_local.replies.grammar import cut_to_sentence
from gpo_local.replies.parsing import TAGGED_REPLY, normalize_prompt, parse_candidate

DROP_REASONS = (
    "empty",
    "missing_tags",
    "truncated",
    "tag_leak",
    "too_long",
    "leaks_example",
    "meta_talk",
    "duplicate",
)
TRUNCATED_SHARE = 0.98
_LEAKED_TAG = re.compile(r"</?(?:START|END)>", re.IGNORECASE)


def is_truncated(tokens: int, max_tokens: int) -> bool:
    return tokens >= TRUNCATED_SHARE * max_tokens


def classify(
    reply: str | None,
    *,
    require_tags: bool = False,
    truncated: bool = False,
    max_words: int | None = None,
    leaks: Callable[[str], bool] | None = None,
    meta_talk: Callable[[str], bool] | None = None,
    constrained: bool = False,
) -> tuple[str | None, str | None]:
    """(the candidate, None) for a usable reply, else (None, the drop reason). A `constrained`
    reply that reached its cap `max_words` is cut back to its last full sentence
    (grammar.cut_to_sentence) before the leak check, which judges the prompt that is kept."""
    if not reply or not reply.strip():
        return None, "empty"
    match = TAGGED_REPLY.search(reply)
    if match is None and require_tags:
        return None, "missing_tags"
    if truncated:
        return None, "truncated"
    if _LEAKED_TAG.search(match.group(1) if match else reply):
        return None, "tag_leak"
    prompt = parse_candidate(reply, require_tags=require_tags)
    if prompt is None:
        return None, "empty"
    if max_words is not None and len(prompt.split()) > max_words:
        return None, "too_long"
    if constrained:
        prompt = cut_to_sentence(prompt, max_words)
    if leaks is not None and leaks(prompt):
        return None, "leaks_example"
    if meta_talk is not None and meta_talk(prompt):
        return None, "meta_talk"
    return prompt, None


def mark_duplicates(
    prompts: Sequence[str | None], reasons: list[str | None], seen: Iterable[str] = ()
) -> list[str | None]:
    """Drop later repeats of a prompt within one call, or of a normalized prompt in `seen`
    (reason `duplicate`), in place."""
    seen, kept = set(seen), []
    for i, prompt in enumerate(prompts):
        if prompt is not None:
            key = normalize_prompt(prompt)
            if key in seen:
                reasons[i], prompt = "duplicate", None
            seen.add(key)
        kept.append(prompt)
    return kept


def count(reasons: Iterable[str | None]) -> dict[str, int]:
    """Counts of the drop reasons present, in DROP_REASONS order."""
    counts = Counter(r for r in reasons if r)
    return {r: counts[r] for r in DROP_REASONS if counts[r]}


def totals(records: Iterable[dict]) -> dict[str, int]:
    """Drop counts summed over the step records of a run."""
    return summed(r.get("drops") or {} for r in records if r.get("kind") == STEP)


def reply_total(records: Iterable[dict]) -> int | None:
    """Candidate replies parsed, summed over the step records of a run; None when a step record
    has no count (written before the count existed)."""
    return _counted_sum(r.get("replies") for r in records if r.get("kind") == STEP)


def _counted_sum(counts: Iterable[int | None]) -> int | None:
    counts = list(counts)
    return None if None in counts else sum(counts)


def summed(counts: Iterable[dict[str, int]]) -> dict[str, int]:
    total: Counter = Counter()
    for c in counts:
        total.update(c)
    return {r: total[r] for r in DROP_REASONS if total[r]}


def describe(counts: dict[str, int], replies: int | None = None) -> str:
    """'2 truncated, 1 leaks example' (or 'none'); with the number of replies they are out of,
    '3 of 24: 2 truncated, 1 leaks example' (or 'none of 24')."""
    parts = [f"{n} {reason.replace('_', ' ')}" for reason, n in counts.items() if n]
    text = ", ".join(parts) if parts else "none"
    if replies is None:
        return text
    return f"{sum(counts.values())} of {replies}: {text}" if parts else f"none of {replies}"


def describe_cuts(steps) -> str:
    """'; 3 kept, cut back to a full sentence at the word cap' for a run's step views
    (rundata.StepView) with such cuts (grammar.cut_to_sentence), else ''."""
    cuts = sum(s.cuts for s in steps)
    return f"; {cuts} kept, cut back to a full sentence at the word cap" if cuts else ""


def describe_asks(steps) -> str:
    """'; the reply quota asked 9 times for 6 candidates, 6 usable' for a run's step views
    (rundata.StepView) that recorded the quota's counts (algorithm/quota.py), else ''."""
    counted = [s for s in steps if s.asks is not None]
    if not counted:
        return ""
    asks, wanted = sum(s.asks for s in counted), sum(s.wanted or 0 for s in counted)
    usable = sum(s.usable or 0 for s in counted)
    return f"; the reply quota asked {asks} times for {wanted} candidates, {usable} usable"


def step_views_total(steps) -> tuple[dict[str, int], int | None]:
    """(drop counts, candidate replies) summed over a run's step views (rundata.StepView); the
    replies are None when a step did not count them."""
    return summed(s.drops for s in steps), _counted_sum(s.replies for s in steps if s.step >= 0)
