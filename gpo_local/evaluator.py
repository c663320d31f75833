"""Scoring prompts on a split with the task model: the loss function of GPO.

Every (prompt, example) pair is one conversation: round 1 asks the question with the
instruction in place (tasks/prompting.py); round 2, for two-round tasks, continues the same
conversation with the rule's follow-up and its reply is normalized and judged (GPO_SPEC 4.3).
All pairs of a call are sent to the model together, in chunks, so a batching backend can share
prefixes; with the instruction after the question, pairs are ordered question by question so
that consecutive conversations share the chat header and the question.
"""

from __future__ import annotations

from collections import Counter
from typing import Callable, Sequence

from .backends import LLM, two_rounds
from .core import EvalResult, Example, Outcome
from .tasks import Task
from .tasks.prompting import assemble

Progress = Callable[[int, int], None]


class Evaluator:
    # 64 pairs per call: both rounds of a pair run as one chain in the batched decoder (the
    # second turn continues the first's KV), so a chunk only drains the batch at its end; four
    # times the decoder's 16 slots keeps that tail small while progress and the memo cache
    # still advance every few seconds.
    def __init__(self, llm: LLM, task: Task, *, position: str = "Q_end", chunk_size: int = 64,
                 on_progress: Progress | None = None):
        self.llm, self.task, self.position = llm, task, position
        self.chunk_size = chunk_size
        self.on_progress = on_progress
        self.generations = 0  # task-model generations requested (memo hits included)
        # (prompt, example) scorings requested per split, memo hits included: the budget counts
        # what the algorithm asks for, not what the cache happened to hold.
        self.scorings: Counter = Counter()

    def _pairs(self, prompts: Sequence[str], examples: Sequence[Example]) -> list[tuple[int, int]]:
        if self.position == "Q_end":
            return [(p, e) for e in range(len(examples)) for p in range(len(prompts))]
        return [(p, e) for p in range(len(prompts)) for e in range(len(examples))]

    def _run_chunk(self, prompts, examples, pairs) -> list[Outcome]:
        rule = self.task.rule
        first_limit, second_limit = self.task.max_tokens
        asks = [assemble(prompts[p], examples[e].input, self.position) for p, e in pairs]
        if rule.two_rounds:
            def second_turn(i: int, answer: str):
                return [{"role": "user", "content": asks[i]}, {"role": "assistant", "content": answer.strip()},
                        {"role": "user", "content": rule.followup(examples[pairs[i][1]].input)}]

            replies = two_rounds(self.llm, asks, second_turn, max_tokens=(first_limit, second_limit))
            first = [a1 for a1, _ in replies]
            finals = [a1 if a2 is None else a2 for a1, a2 in replies]
            self.generations += 2 * len(asks)
        else:
            first = self.llm.generate(asks, max_tokens=first_limit, temperature=0.0)
            finals = list(first)
            self.generations += len(asks)
        outcomes = []
        for (p, e), a1, a2 in zip(pairs, first, finals):
            prediction = rule.normalize(a2)
            outcomes.append(Outcome(example_id=examples[e].id, first_answer=a1, final_answer=a2,
                                    prediction=prediction,
                                    score=float(rule.is_correct(prediction, examples[e].target))))
        return outcomes

    def evaluate(self, prompts: Sequence[str], split: str, *, limit: int | None = None) -> list[EvalResult]:
        """One EvalResult per prompt, in order, each with its per-example outcomes."""
        return self.evaluate_examples(prompts, self.task.split(split, limit), split)

    def evaluate_examples(self, prompts: Sequence[str], examples: Sequence[Example], split: str) -> list[EvalResult]:
        """Score prompts on given examples of `split` (a train minibatch, for instance)."""
        self.scorings[split] += len(prompts) * len(examples)
        pairs = self._pairs(prompts, examples)
        by_prompt: list[dict[int, Outcome]] = [{} for _ in prompts]
        done = 0
        if self.on_progress:
            self.on_progress(0, len(pairs))  # the pass starts: rates and ETA count from here
        for start in range(0, len(pairs), self.chunk_size):
            chunk = pairs[start:start + self.chunk_size]
            for (p, e), outcome in zip(chunk, self._run_chunk(prompts, examples, chunk)):
                by_prompt[p][e] = outcome
            done += len(chunk)
            if self.on_progress:
                self.on_progress(done, len(pairs))
        results = []
        for prompt, outcomes in zip(prompts, by_prompt):
            ordered = tuple(outcomes[e] for e in range(len(examples)))
            score = sum(o.score for o in ordered) / len(ordered)
            results.append(EvalResult(prompt=prompt, split=split, score=score, outcomes=ordered))
        return results

    def score(self, prompt: str, split: str, *, limit: int | None = None) -> EvalResult:
        return self.evaluate([prompt], split, limit=limit)[0]
