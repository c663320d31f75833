"""PE2 (Ye et al. 2023, "Prompt Engineering a Prompt Engineer"): a meta-prompt that describes
the task of prompt engineering in two steps, specifies the context the prompt is used in, and
walks the optimizer through step-by-step reasoning over a batch of the model's answers before
it writes the new prompt. It verbalizes the optimizer concepts PE2 studies: the batch (the
examples inspected), the step size (the schedule's "change at most N words", as in GPO), and
the optimization history (earlier versions of the prompt with their scores).

Each step refines the best prompt scored so far: it is scored on the step's train minibatch;
each of the C calls inspects its own pair of those examples (wrong answers first) and proposes
one prompt. A step costs C optimizer calls and scores at most C new prompts; the trajectory
records the best prompt scored so far.
"""

from __future__ import annotations

from gpo_local.algorithm.budget import fill, reference_calls
from gpo_local.algorithm.method import Method
from gpo_local.algorithm.updates import SCORE_SCALE, WHERE, format_score, render_scored
from gpo_local.replies.parsing import PLACEHOLDER

BATCH_SHOWN = 2
HISTORY = 3
MAX_OUTPUT_CHARS = 600


def render_pe2(*, prompt: str, score: float, history, shown, position: str, budget: int | None) -> str:
    """`shown`: (example, outcome) pairs; `history`: earlier trajectory entries, newest first."""
    examples = []
    for example, outcome in shown:
        verdict = "correct" if outcome.score >= 1 else "wrong"
        examples.append(
            f"Input:\n{example.input}\nModel output:\n{outcome.first_answer.strip()[:MAX_OUTPUT_CHARS]}\n"
            f"Final answer: {outcome.final_answer.strip()}\nExpected answer: {example.shown_target}\n"
            f"Result: {verdict}"
        )
    sections = [
        "A prompt is a short text that tells a language model what to do with an input and what form its "
        "answer "
        "must take. Your task has two steps: first, inspect how the model did with the current prompt on a "
        "batch "
        "of examples; second, write an improved prompt.",
        f"The prompt goes {WHERE[position]} ({PLACEHOLDER} below stands for it): the model reads the input "
        f"and "
        "the prompt, writes its reasoning, and is then asked for its final answer.",
        f"The current prompt is:\n{prompt}\nIts score on the dev examples is {format_score(score)} (0 to "
        f"100).",
    ]
    if history:
        sections.append(
            f"Earlier versions of the prompt, newest first. {SCORE_SCALE}\n\n"
            + "\n\n".join(render_scored(e.prompt, e.dev_score) for e in history)
        )
    sections.append(f"Here is a batch of {len(examples)} examples answered with the current prompt:")
    sections.extend(examples)
    sections.append(
        "Reason step by step. For each example: is the final answer correct? If not, where did the model go "
        "wrong, and could the prompt have caused it? Does the prompt describe the task and the expected "
        "answer "
        "correctly? Which changes would help? Then write the improved prompt."
    )
    if budget is not None:
        sections.append(f"You may change at most {budget} words of the current prompt.")
    sections.append("Give your reasoning first, then put the new prompt between <START> and <END>.")
    return "\n\n".join(sections)


class PE2(Method):
    name = "pe2"
    needs_train = True
    uses_format = False
    # "Give your reasoning first", yet constrained replies get no room for it (reasons_first off):
    # on recorded PE2 meta-prompts, room to reason gave fewer usable replies at about twice the
    # seconds (benchmarks/reasoning_grammar.py measures both).
    reasons_first = False

    @classmethod
    def plan_for(cls, config) -> list[int]:
        return fill(reference_calls(config), config.candidates)

    def step(self, step: int, state) -> None:
        calls = self.plan()[step]
        parent, score = state.ranked()[0]
        batch, outcomes = self.train_outcomes(step, parent)
        pairs = sorted(zip(batch, outcomes), key=lambda pair: pair[1].score >= 1)  # wrong first, stable
        history = [e for e in reversed(state.trajectory) if e.prompt != parent][:HISTORY]
        budget = self.schedule(len(state.trajectory)) if self.schedule else None
        metas = []
        for j in range(calls):
            shown = [pairs[(BATCH_SHOWN * j + i) % len(pairs)] for i in range(min(BATCH_SHOWN, len(pairs)))]
            metas.append(
                render_pe2(
                    prompt=parent,
                    score=score,
                    history=history,
                    shown=shown,
                    position=self.config.position,
                    budget=budget,
                )
            )
        proposal = self.propose(metas, step=step, state=state, current=parent, budget=budget, parents=parent)
        self.score_candidates(step, state, proposal.candidates, parent=proposal.parents, budget=budget)
        self.choose_best(
            step, state, meta_prompt=proposal.metas[0], budget=budget, train_batch=[e.id for e in batch]
        )
