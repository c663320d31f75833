"""APE (Zhou et al. 2022): instruction induction from demonstrations, selection on the dev
split, then iterative Monte Carlo resampling around the best instructions.

Step 0 induces C instructions, each from its own seeded sample of input/output demonstrations
(from the train split, or the format split when there is none). Every later step asks for C
variations that keep the meaning of the best prompts scored so far (the top min(C, 4), in
turn). A step costs C optimizer calls and scores at most C new prompts; the trajectory records
the best prompt scored so far after each step (APE selects by dev score, it does not move).
"""

from __future__ import annotations

from gpo_local.algorithm.budget import fill, reference_calls
from gpo_local.algorithm.draws import pick_demonstrations
from gpo_local.algorithm.method import Method
from gpo_local.algorithm.updates import render_induction

DEMONSTRATIONS = 5
PARENTS = 4


def render_resample(prompt: str) -> str:
    return "\n\n".join(
        [
            "Write a variation of the following instruction. Keep its meaning; change its wording.",
            f"Instruction: {prompt}",
            "Put the variation between <START> and <END>.",
        ]
    )


class APE(Method):
    name = "ape"
    uses_format = False

    @classmethod
    def plan_for(cls, config) -> list[int]:
        return fill(reference_calls(config), config.candidates)

    def step(self, step: int, state) -> None:
        calls = self.plan()[step]
        if step == 0:
            metas = [
                render_induction(pick_demonstrations(self.task, DEMONSTRATIONS, self.config.seed, step, j))
                for j in range(calls)
            ]
            parents = [None] * calls
        else:
            top = [p for p, _ in state.ranked()[: min(PARENTS, self.config.candidates)]]
            parents = [top[j % len(top)] for j in range(calls)]
            metas = [render_resample(p) for p in parents]
        proposal = self.propose(metas, step=step, state=state, parents=parents)
        self.score_candidates(step, state, proposal.candidates, parent=proposal.parents)
        self.choose_best(step, state, meta_prompt=proposal.metas[0])
