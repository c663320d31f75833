"""Scoring prompts on a split with the task model: the loss function of GPO.

Every (prompt, example) pair is one conversation: round 1 asks the question with the
instruction in place (tasks/prompting.py); round 2, for two-round tasks, continues the same
conversation with the rule's follow-up and its reply is normalized and judged (the original
evaluation's two-round extraction).
All pairs of a call are sent to the model together, in chunks, so a batching backend can share
prefixes; with the instruction after the question, pairs are ordered question by question so
that consecutive conversations share the chat header and the question.

A conversation that does not fit the model's context (an over-long candidate prompt, usually)
is not sent: its outcome is scored 0 and flagged `too_long`, and a warning event says so, so
one bad candidate cannot abort a run. `score()`, used for the user's own prompt, is strict: a
prompt or question that does not fit there is the user's error (PromptTooLongError).
"""

from __future__ import annotations

from collections import Counter
from typing import Callable, Sequence

from gpo_local.backends import LLM, complete_llm
from gpo_local.core import EvalResult, Example, Outcome
from gpo_local.errors import OptionValue, PromptTooLongError
from gpo_local.runs import faults
from gpo_local.tasks import Task
from gpo_local.tasks.answer_length import score_neutral_tokens
from gpo_local.tasks.prompting import DEFAULT_POSITION, assemble

Progress = Callable[[int, int], None]
Event = Callable[[str, dict], None]


class Evaluator:
    # 64 pairs per call: both rounds of a pair run as one chain in the batched decoder (the
    # second turn continues the first's KV), so a chunk only drains the batch at its end; four
    # times the decoder's 16 slots keeps that tail small while progress and the memo cache
    # still advance every few seconds.
    def __init__(
        self,
        llm: LLM,
        task: Task,
        *,
        position: str = DEFAULT_POSITION,
        chunk_size: int = 64,
        on_progress: Progress | None = None,
        on_event: Event | None = None,
    ):
        # The whole LLM protocol (fits, n_ctx, generate_two_rounds), defaulted for a bare model.
        self.llm, self.task, self.position = complete_llm(llm), task, position
        self.chunk_size = chunk_size
        slots = self.llm.eval_slots  # four times a wider decoder's sequences
        if slots is not None and 4 * slots > chunk_size:
            self.chunk_size = 4 * slots
        self.on_progress = on_progress
        self.on_event = on_event
        self.generations = 0  # task-model generations requested (memo hits included)
        # (prompt, example) scorings requested per split, memo hits included: the budget counts
        # what the algorithm asks for, not what the cache happened to hold.
        self.scorings: Counter = Counter()
        self._neutral: dict[str, int | None] = {}  # example id -> its score-neutral round-1 limit

    def _fits(self, conversation) -> bool:
        return self.llm.fits(conversation)

    def _pairs(self, prompts: Sequence[str], examples: Sequence[Example]) -> list[tuple[int, int]]:
        if self.position == "Q_end":
            return [(p, e) for e in range(len(examples)) for p in range(len(prompts))]
        return [(p, e) for p in range(len(prompts)) for e in range(len(examples))]

    def _run_chunk(self, prompts, examples, pairs) -> list[Outcome]:
        rule = self.task.rule
        first_limit, second_limit = self.task.max_tokens
        asks = [assemble(prompts[p], examples[e].input, self.position) for p, e in pairs]
        # Both rounds as one chain (backends.two_rounds); a single-round task simply has no second
        # turn. A pair whose first or second turn does not fit the context is not sent (or not
        # continued) and is flagged too long.
        fit = [self._fits(a) for a in asks]
        sent = [i for i, ok in enumerate(fit) if ok]

        def second_turn(j: int, answer: str):
            if not rule.two_rounds:
                return None
            i = sent[j]
            conversation = [
                {"role": "user", "content": asks[i]},
                {"role": "assistant", "content": answer.strip()},
                {"role": "user", "content": rule.followup(examples[pairs[i][1]].input)},
            ]
            if not self._fits(conversation):
                fit[i] = False
                return None
            return conversation

        # Each reply's limits: the task's, lower where a reply can no longer change its score
        # (tasks/answer_length.py); the replies of one limit are asked together, in order.
        limits = [self._limits(examples[pairs[i][1]], first_limit, second_limit) for i in sent]
        replies: list = [None] * len(sent)
        for limit in dict.fromkeys(limits):
            members = [j for j, own in enumerate(limits) if own == limit]

            def member_turn(k: int, answer: str, members=members):
                return second_turn(members[k], answer)

            asked = self.llm.generate_two_rounds(
                [asks[sent[j]] for j in members], member_turn, max_tokens=limit
            )
            for j, reply in zip(members, asked):
                replies[j] = reply
        first, finals = [""] * len(asks), [""] * len(asks)
        for i, (a1, a2) in zip(sent, replies):
            # The last reply is judged: the second turn's, or the first's for single-round tasks
            # (a second turn that did not fit is flagged above and never judged).
            first[i], finals[i] = a1, a1 if a2 is None else a2
        self.generations += len(sent) + sum(a2 is not None for _, a2 in replies)
        return [self._judge(examples[e], a1, a2, ok) for (_, e), a1, a2, ok in zip(pairs, first, finals, fit)]

    def _judge(self, example: Example, first_answer: str, final_answer: str, fits: bool) -> Outcome:
        """The outcome of one conversation: its last reply normalized and graded, or 0 and flagged
        `too_long` when the conversation did not fit the context."""
        if not fits:
            return Outcome(
                example_id=example.id,
                first_answer=first_answer,
                final_answer="",
                prediction="",
                score=0.0,
                too_long=True,
            )
        prediction = self.task.rule.normalize(final_answer)
        return Outcome(
            example_id=example.id,
            first_answer=first_answer,
            final_answer=final_answer,
            prediction=prediction,
            score=float(self.task.rule.grade_example(prediction, example)),
        )

    def _limits(self, example: Example, first: int, second: int) -> tuple[int, int]:
        """(round 1, round 2) token limits of one question's replies: the task's, round 1 capped
        where the rule says a longer reply cannot score (answer_length.score_neutral_tokens),
        rounded up to a multiple of 8 so that a chunk's questions share few limits."""
        if example.id not in self._neutral:
            cap = score_neutral_tokens(self.task.rule, example.target, self.llm.count_tokens)
            self._neutral[example.id] = None if cap is None else -(-cap // 8) * 8
        cap = self._neutral[example.id]
        return (first if cap is None else min(first, cap)), second

    def evaluate(self, prompts: Sequence[str], split: str, *, limit: int | None = None) -> list[EvalResult]:
        """One EvalResult per prompt, in order, each with its per-example outcomes."""
        return self.evaluate_examples(prompts, self.task.split(split, limit), split)

    def evaluate_examples(
        self, prompts: Sequence[str], examples: Sequence[Example], split: str
    ) -> list[EvalResult]:
        """Score prompts on given examples of `split` (a train minibatch, for instance)."""
        self.scorings[split] += len(prompts) * len(examples)
        pairs = self._pairs(prompts, examples)
        by_prompt: list[dict[int, Outcome]] = [{} for _ in prompts]
        done = 0
        if self.on_progress:
            self.on_progress(0, len(pairs))  # the pass starts: rates and ETA count from here
        for start in range(0, len(pairs), self.chunk_size):
            chunk = pairs[start : start + self.chunk_size]
            for (p, e), outcome in zip(chunk, self._run_chunk(prompts, examples, chunk)):
                by_prompt[p][e] = outcome
            done += len(chunk)
            faults.point("scoring")
            if self.on_progress:
                self.on_progress(done, len(pairs))
        results = []
        for prompt, outcomes in zip(prompts, by_prompt):
            ordered = tuple(outcomes[e] for e in range(len(examples)))
            score = sum(o.score for o in ordered) / len(ordered)
            result = EvalResult(prompt=prompt, split=split, score=score, outcomes=ordered)
            if result.too_long and self.on_event:
                self.on_event(
                    "warning",
                    {
                        "message": f"prompt {_clip(prompt)!r} ({len(prompt.split())} words) does not fit "
                        f"the model's "
                        f"context with {result.too_long} of {result.n} {split} questions: scored 0 on them "
                        "(raise --n-ctx or cap candidates with --max-prompt-words)",
                        "too_long": result.too_long,
                        "split": split,
                        "prompt": prompt,
                    },
                )
            results.append(result)
        return results

    def score(self, prompt: str, split: str, *, limit: int | None = None) -> EvalResult:
        """The user's prompt on a split. Strict: if the prompt with some question does not fit the
        model's context, that is an error naming the question (nothing is scored)."""
        for example in self.task.split(split, limit):
            if not self._fits(assemble(prompt, example.input, self.position)):
                alone = "" if self._fits(example.input) else " (the question alone does not fit)"
                n_ctx = self.llm.n_ctx
                context = f"the context of {n_ctx} tokens" if n_ctx else "the model's context"
                # context_note is " (n_ctx=300, which llama.cpp set to 512)" or nothing
                raise PromptTooLongError(
                    f"prompt {_clip(prompt)!r} with {split} question {example.id} of task "
                    f"{self.task.name!r} does "
                    f"not fit {context}",
                    *self.llm.context_note,
                    f"{alone}: raise ",
                    OptionValue("n_ctx"),
                    " or shorten the prompt",
                )
        return self.evaluate([prompt], split, limit=limit)[0]


def _clip(text: str, width: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."
