"""APE (Zhou et al. 2022): instruction induction from demonstrations, selection on the dev
split, then iterative Monte Carlo resampling around the best instructions.

Step 0 induces C instructions, each from its own seeded sample of input/output demonstrations
(from the train split, or the format split when there is none). Every later step asks for C
variations that keep the meaning of the best prompts scored so far (the top min(C, 4), in
turn). A step costs C optimizer calls and scores at most C new prompts; the trajectory records
the best prompt scored so far after each step (APE selects by dev score, it does not move).
"""

from __future__ import annotations

import random

from gpo_local.algorithm.budget import fill, reference_calls
from gpo_local.algorithm.draws import candidate_seed
from gpo_local.algorithm.method import Method

DEMONSTRATIONS = 5
PARENTS = 4


def render_induction(demonstrations) -> str:
    shown = "\n\n".join(f"Input:\n{e.input}\nOutput:\n{e.shown_target}" for e in demonstrations)
    return "\n\n".join(
        [
            "Someone was given an instruction and the inputs below. Following the instruction, they "
            "wrote the output shown after each input.",
            shown,
            "What was the instruction? Put it between <START> and <END>.",
        ]
    )


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

    def _demonstrations(self, step: int, j: int):
        pool = self.task.split("train") if "train" in self.task.splits else self.task.split("format")
        rng = random.Random(candidate_seed(self.config.seed, self.task.name, step, f"demos{j}"))
        return rng.sample(list(pool), min(DEMONSTRATIONS, len(pool)))

    def step(self, step: int, state) -> None:
        calls = self.plan()[step]
        if step == 0:
            metas = [render_induction(self._demonstrations(step, j)) for j in range(calls)]
            parents = [None] * calls
        else:
            top = [p for p, _ in state.ranked()[: min(PARENTS, self.config.candidates)]]
            parents = [top[j % len(top)] for j in range(calls)]
            metas = [render_resample(p) for p in parents]
        proposal = self.propose(metas, step=step, state=state, parents=parents)
        self.score_candidates(step, state, proposal.candidates, parent=proposal.parents)
        self.choose_best(step, state, meta_prompt=proposal.metas[0])
