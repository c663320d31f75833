"""From optimizer replies to candidates: the step's reply grammar and word cap
(grammar.py), the exemplar-leak check (leaks.py) and the drop reasons (drops.py).

`ReplyParser` belongs to one run: it parses a call's replies and collects the drop reasons of
the current step, which the step record takes (`take_step`). It is given what it reads (the
config, the optimizer model, the exemplars shown, the examples a reply must not restate, the
run's records), not the method that owns it.
"""

from __future__ import annotations

from typing import Callable, Iterable, Sequence

from gpo_local.backends.copy_guard import CopyGuard
from gpo_local.replies.drops import (
    classify,
    is_truncated,
    mark_duplicates,
    reply_total,
    totals,
)
from gpo_local.replies.drops import (
    count as count_drops,
)
from gpo_local.replies.grammar import prompt_grammar, reply_token_limit, state_word_cap, word_cap
from gpo_local.replies.leaks import LeakDetector, leak_references, talks_to_optimizer
from gpo_local.replies.parsing import parse_candidate


def constrained_request(
    meta_prompts: Sequence[str], cap: int | None, max_tokens: int, reasoning: bool = False
) -> tuple[list[str], str, int]:
    """A constrained call for replies of at most `cap` words: the meta-prompts with the cap
    stated, the grammar, and the token limit raised to what the cap needs (grammar.py); with
    `reasoning`, free reasoning before the tags. The run (Method.propose) and the dry run's
    timing (walltime.py) both ask this way."""
    return (
        [state_word_cap(m, cap) for m in meta_prompts],
        prompt_grammar(cap, reasoning),
        reply_token_limit(max_tokens, cap, reasoning),
    )


def classify_replies(
    replies: Sequence[str],
    llm,
    *,
    max_tokens: int,
    max_words: int | None,
    require_tags: bool = False,
    leaks=None,
    meta_talk=None,
    constrained: bool = False,
) -> tuple[list[str | None], list[str | None]]:
    """(candidates, drop reasons) of a call's replies, each judged by drops.classify: truncated
    when its tokens (`llm`'s tokenizer) reach the call's `max_tokens`; `constrained` replies at
    their cap cut back to their last full sentence. The run (ReplyParser.parse) and the dry
    run's timing (walltime.py) parse this way."""
    parsed, reasons = [], []
    for reply in replies:
        truncated = bool(reply) and is_truncated(llm.count_tokens(reply), max_tokens)
        prompt, reason = classify(
            reply,
            require_tags=require_tags,
            truncated=truncated,
            leaks=leaks,
            meta_talk=meta_talk,
            max_words=max_words,
            constrained=constrained,
        )
        parsed.append(prompt)
        reasons.append(reason)
    return parsed, reasons


class ReplyParser:
    def __init__(
        self,
        config,
        *,
        optimizer,
        exemplars: Sequence = (),
        leak_sources: Sequence[Sequence] = (),
        reasons_first: bool = False,
        records: Callable[[], Iterable[dict]] = tuple,
    ):
        """`config`: the run's GPOConfig; `optimizer`: the optimizer model (whether it takes a
        grammar, its tokenizer); `exemplars`: the format exemplars the meta-prompts show;
        `leak_sources`: the splits whose examples a reply must not restate; `reasons_first`:
        free reasoning before a constrained reply's tags (Method.reasons_first); `records`: the
        run's records, for the run's totals."""
        self.config, self.optimizer, self.exemplars = config, optimizer, tuple(exemplars)
        self.leak_sources, self.reasons_first, self.records = leak_sources, reasons_first, records
        self._step_drops: list[str | None] = []
        self._step_cuts = 0
        self._leak_detector: LeakDetector | None = None

    @property
    def constrained(self) -> bool:
        """Whether candidate replies are grammar-constrained: --grammar, and a model that can."""
        return bool(self.config.grammar and self.optimizer.supports_grammar)

    def request(
        self, meta_prompts: Sequence[str], current: str, budget: int | None
    ) -> tuple[list[str], str | None, int, int | None]:
        """The step's candidate call: (the meta-prompts as sent, the GBNF grammar, the token
        limit, the word cap). Constrained: the step's cap (grammar.word_cap), stated, with its
        grammar and sized limit (`constrained_request`; reasoning first for a method that asks
        for it, Method.reasons_first); otherwise the meta-prompts as they are,
        no grammar, --optimizer-max-tokens and --max-prompt-words."""
        cfg = self.config
        if not self.constrained:
            return list(meta_prompts), None, cfg.optimizer_max_tokens, cfg.max_prompt_words
        cap = word_cap(current, budget, cfg.max_prompt_words)
        return (*constrained_request(meta_prompts, cap, cfg.optimizer_max_tokens, self.reasons_first), cap)

    def copy_guard(self, current: str) -> CopyGuard | None:
        """The step's copy guard (backends/copy_guard.py): replies may not copy runs of the format
        exemplars the meta-prompts show (inputs and answers), except what the current prompt
        already says. None with --no-copy-guard, for a method that shows no
        exemplars, or for a model without its own sampler."""
        if not (self.config.copy_guard and self.exemplars and self.optimizer.supports_grammar):
            return None
        if not getattr(self.optimizer, "supports_copy_guard", True):  # a served model: config.json says so
            return None
        return CopyGuard(avoid=tuple(leak_references(self.exemplars)), allow=(current,) if current else ())

    def leak_detector(self) -> LeakDetector:
        if self._leak_detector is None:
            self._leak_detector = LeakDetector(leak_references(self.exemplars, *self.leak_sources))
        return self._leak_detector

    def parse(
        self,
        replies: Sequence[str],
        *,
        max_words: int | None = None,
        max_tokens: int | None = None,
        seen: Iterable[str] = (),
    ) -> list[str | None]:
        """Candidates of the replies, None for a dropped one; the drop reasons are collected
        for the step's record. `max_tokens`: the replies' token limit, when not
        --optimizer-max-tokens; `seen`: normalized prompts of earlier asks, whose repeats are
        dropped as duplicates."""
        cfg = self.config
        parsed, reasons = classify_replies(
            replies,
            self.optimizer,
            max_tokens=max_tokens or cfg.optimizer_max_tokens,
            max_words=cfg.max_prompt_words if max_words is None else max_words,
            require_tags=cfg.require_tags,
            leaks=self.leak_detector().leaks if cfg.leak_check else None,
            meta_talk=talks_to_optimizer if cfg.leak_check else None,
            constrained=self.constrained,
        )
        # A kept prompt shorter than its reply's text was cut back to a full sentence at the cap.
        self._step_cuts += sum(
            1
            for reply, prompt in zip(replies, parsed)
            if prompt is not None and prompt != parse_candidate(reply, require_tags=cfg.require_tags)
        )
        parsed = mark_duplicates(parsed, reasons, seen)
        self._step_drops.extend(reasons)
        return parsed

    def step_drops(self) -> dict[str, int]:
        """The drop counts of the current step so far."""
        return count_drops(self._step_drops)

    def take_step(self) -> dict:
        """The step record's fields of the current step, which ends: the candidate replies parsed
        (`replies`), the drop counts (`drops`) and, when there were any, the constrained prompts
        cut back to a full sentence at their cap (`cut_to_sentence`)."""
        step = {"replies": len(self._step_drops), "drops": count_drops(self._step_drops)}
        if self._step_cuts:
            step["cut_to_sentence"] = self._step_cuts
        self._step_drops, self._step_cuts = [], 0
        return step

    def totals(self) -> dict[str, int]:
        """Drop counts summed over the step records of the run."""
        return totals(self.records())

    def reply_total(self) -> int | None:
        """Candidate replies parsed over the step records of the run (None for a run whose step
        records predate the count)."""
        return reply_total(self.records())
