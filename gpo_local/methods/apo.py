"""APO / ProTeGi (Pryzant et al. 2023): textual gradients from minibatch errors, edits along
them, paraphrases of the edits (Monte Carlo expansion), and a beam of the best prompts.

One step expands one beam member (the beam is the best 4 prompts scored so far; step t expands
member t mod 4, so the beam members are expanded in turn as ProTeGi expands all of them per
round): score it on the step's train minibatch; one optimizer call gives reasons for up to 4 of
its wrong answers (the textual gradient; skipped when there is none); ceil((C-1)/2) calls edit
the prompt along the reasons (one reason each, in turn); the remaining calls paraphrase the
edits. So a step costs C optimizer calls (2 when C = 1) and scores at most C - 1 new prompts;
the trajectory records the best prompt scored so far (the top of the beam).
"""

from __future__ import annotations

import math

from gpo_local.algorithm.budget import fill, reference_calls
from gpo_local.algorithm.method import Method
from gpo_local.replies.parsing import parse_all

BEAM = 4
ERRORS_SHOWN = 4
REASONS = 2


def _errors(wrong) -> str:
    return "\n\n".join(
        f"Input:\n{e.input}\nModel answer: {answer}\nCorrect answer: {e.shown_target}" for e, answer in wrong
    )


def render_reasons(prompt: str, wrong) -> str:
    return "\n\n".join(
        [
            f"A model is given this prompt together with each input of a task:\n{prompt}",
            "It answers the following inputs wrongly.",
            _errors(wrong),
            f"Give {REASONS} reasons why the prompt could have led to these wrong answers. "
            "Put each reason between <START> and <END>.",
        ]
    )


def render_edit(prompt: str, wrong, reason: str | None) -> str:
    if wrong:
        problem = ["It answers the following inputs wrongly.", _errors(wrong)]
        if reason:
            problem.append(f"A likely reason:\n{reason}")
        request = "Write an improved prompt that fixes this problem."
    else:
        problem = ["It answered every input of the last batch correctly."]
        request = "Write an improved prompt that is clearer and more robust."
    return "\n\n".join(
        [
            f"A model is given this prompt together with each input of a task:\n{prompt}",
            *problem,
            request,
            "Put the improved prompt between <START> and <END>.",
        ]
    )


def render_paraphrase(prompt: str) -> str:
    return "\n\n".join(
        [
            "Rewrite the following prompt in other words, keeping its meaning.",
            f"Prompt: {prompt}",
            "Put the rewritten prompt between <START> and <END>.",
        ]
    )


class APO(Method):
    name = "apo"
    needs_train = True
    uses_format = False

    @classmethod
    def plan_for(cls, config) -> list[int]:
        per_step = max(2, config.candidates)
        return [cost for cost in fill(reference_calls(config), per_step) if cost >= 2]

    @classmethod
    def scored_per_step(cls, config, cost: int, step: int) -> int:
        return cost - 1  # one call is the gradient

    def step(self, step: int, state) -> None:
        cost = self.plan()[step]
        beam = [p for p, _ in state.ranked()[:BEAM]]
        parent = beam[step % len(beam)]
        batch, outcomes = self.train_outcomes(step, parent)
        wrong = [(e, o.final_answer.strip()) for e, o in zip(batch, outcomes) if o.score < 1][:ERRORS_SHOWN]
        reasons: list[str] = []
        extra = {"train_batch": [e.id for e in batch], "parent": parent}
        if wrong:
            reasons = parse_all(
                self.ask([render_reasons(parent, wrong)], step=step, tag="reasons", temperature=0.0)[0]
            )[:REASONS]
            extra["gradient"] = "\n\n".join(reasons)
        n_edit = math.ceil((cost - 1) / 2)
        edit_metas = [
            render_edit(parent, wrong, reasons[j % len(reasons)] if reasons else None) for j in range(n_edit)
        ]
        edits = self.propose(edit_metas, step=step, state=state, tag="edit", parents=parent)
        usable = [e for e in edits.candidates if e] or [parent]
        sources = [usable[j % len(usable)] for j in range(cost - 1 - n_edit)]
        paraphrases = self.propose(
            [render_paraphrase(p) for p in sources], step=step, state=state, tag="paraphrase", parents=sources
        )
        self.score_candidates(
            step, state, edits.candidates + paraphrases.candidates, parent=edits.parents + paraphrases.parents
        )
        self.choose_best(step, state, meta_prompt=edits.metas[0], **extra)
