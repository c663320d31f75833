"""OPRO (Yang et al. 2023): the meta-prompt lists the best 20 instructions scored so far in
ascending score order (the best last, nearest the request), then task exemplars with the
placeholder where the instruction goes, and asks for a new instruction different from all of
them; 8 proposals per step from the same meta-prompt, sampled at the optimizer temperature.

Budget: OPRO keeps its 8 proposals per step, so its steps are fewer (or more) than GPO's: it
runs ceil(B / 8) steps for GPO's budget of B calls, the last one with the remainder, so the
totals match. Each step records the best prompt scored so far.
"""

from __future__ import annotations

from gpo_local.algorithm.budget import fill, reference_calls
from gpo_local.algorithm.method import Method
from gpo_local.algorithm.updates import SCORE_SCALE, format_score, render_exemplar
from gpo_local.replies.parsing import PLACEHOLDER

PROPOSALS = 8
SHOWN = 20


def render_opro(scored: list[tuple[str, float]], exemplars, position: str) -> str:
    """`scored` is every prompt scored so far, best first."""
    shown = sorted(scored[:SHOWN], key=lambda item: item[1])  # ascending; stable for ties
    listing = "\n\n".join(f"Instruction: {p if p else '(empty)'}\nScore: {format_score(s)}" for p, s in shown)
    return "\n\n".join(
        [
            f"Your task is to write an instruction for the task shown below. Here are instructions written "
            f"so far, with their scores, from the lowest score to the highest. {SCORE_SCALE}",
            listing,
            f"Here are examples of the task. In each input, {PLACEHOLDER} marks where the instruction goes; "
            "the output is the correct answer.",
            *(render_exemplar(e, position) for e in exemplars),
            "Write a new instruction that differs from every instruction above and scores as high as "
            "possible.",
            "Put the new instruction between <START> and <END>.",
        ]
    )


class OPRO(Method):
    name = "opro"

    @classmethod
    def plan_for(cls, config) -> list[int]:
        return fill(reference_calls(config), PROPOSALS)

    def step(self, step: int, state) -> None:
        calls = self.plan()[step]
        ranked = state.ranked()
        meta = render_opro(ranked, self.exemplars, self.config.position)
        proposal = self.propose([meta] * calls, step=step, state=state, parents=ranked[0][0])
        meta = proposal.metas[0] if proposal.metas else meta
        self.score_candidates(step, state, proposal.candidates, parent=proposal.parents)
        self.choose_best(step, state, meta_prompt=meta)
