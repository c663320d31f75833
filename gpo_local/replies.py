"""From optimizer replies to candidates (issue 10): the step's reply grammar and word cap
(grammar.py), the exemplar-leak check (leaks.py) and the drop reasons (drops.py).

`ReplyParser` belongs to one Method: it parses a call's replies and collects the drop
reasons of the current step, which the step record takes (`take_step`).
"""

from __future__ import annotations

from typing import Sequence

from .drops import classify, count as count_drops, is_truncated, mark_duplicates, reply_total, totals
from .grammar import prompt_grammar, reply_token_limit, word_cap
from .leaks import LeakDetector, leak_references


class ReplyParser:
    def __init__(self, method):
        self.method = method
        self._step_drops: list[str | None] = []
        self._leak_detector: LeakDetector | None = None

    @property
    def constrained(self) -> bool:
        """Whether candidate replies are grammar-constrained: --grammar, and a model that can."""
        return bool(self.method.config.grammar and self.method.optimizer_llm.supports_grammar)

    def grammar(self, current: str, budget: int | None) -> tuple[str | None, int | None]:
        """The GBNF grammar of the step's candidate replies and their word cap (grammar.py);
        (None, --max-prompt-words) when constraining is off or the model cannot."""
        cfg = self.method.config
        if not self.constrained:
            return None, cfg.max_prompt_words
        cap = word_cap(current, budget, cfg.max_prompt_words)
        return prompt_grammar(cap), cap

    def token_limit(self, grammar: str | None, cap: int | None) -> int:
        """The token limit of the replies: --optimizer-max-tokens, raised to what a constrained
        reply's word cap needs (grammar.reply_token_limit)."""
        limit = self.method.config.optimizer_max_tokens
        return reply_token_limit(limit, cap) if grammar is not None else limit

    def leak_detector(self) -> LeakDetector:
        if self._leak_detector is None:
            method = self.method
            splits = [method.task.splits.get(name, ()) for name in ("eval", "train")]
            self._leak_detector = LeakDetector(leak_references(method.exemplars, *splits))
        return self._leak_detector

    def parse(self, replies: Sequence[str], *, max_words: int | None = None,
              max_tokens: int | None = None) -> list[str | None]:
        """Candidates of the replies, None for a dropped one; the drop reasons are collected
        for the step's record. `max_tokens`: the replies' token limit, when not
        --optimizer-max-tokens."""
        cfg, llm = self.method.config, self.method.optimizer_llm
        leaks = self.leak_detector().leaks if cfg.leak_check else None
        parsed, reasons = [], []
        for reply in replies:
            truncated = bool(reply) and is_truncated(llm.count_tokens(reply), max_tokens or cfg.optimizer_max_tokens)
            prompt, reason = classify(reply, require_tags=cfg.require_tags, truncated=truncated, leaks=leaks,
                                      max_words=cfg.max_prompt_words if max_words is None else max_words)
            parsed.append(prompt)
            reasons.append(reason)
        parsed = mark_duplicates(parsed, reasons)
        self._step_drops.extend(reasons)
        return parsed

    def step_drops(self) -> dict[str, int]:
        """The drop counts of the current step so far."""
        return count_drops(self._step_drops)

    def take_step(self) -> dict:
        """The step record's fields of the current step, which ends: the candidate replies parsed
        (`replies`) and the drop counts (`drops`)."""
        step, self._step_drops = {"replies": len(self._step_drops), "drops": count_drops(self._step_drops)}, []
        return step

    def totals(self) -> dict[str, int]:
        """Drop counts summed over the step records of the run."""
        return totals(self.method.log.records())

    def reply_total(self) -> int | None:
        """Candidate replies parsed over the step records of the run (None for a run whose step
        records predate the count)."""
        return reply_total(self.method.log.records())
