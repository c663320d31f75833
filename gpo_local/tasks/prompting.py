"""Where the instruction goes around a question (the positions of the original code).

Positions without the Q:/A: frame put the instruction on its own line before (`Q_begin`) or
after (`Q_end`, the GPO default) the question. `A_begin` only exists in the Q:/A: frame, so it
uses that frame. An empty instruction is left out with its separator.
"""

from __future__ import annotations

POSITIONS = ("Q_end", "Q_begin", "A_begin")
# Where the instruction goes unless the user says otherwise: before the question, so that every
# dev question of a candidate shares the candidate as its prefix (the evaluator decodes it once).
DEFAULT_POSITION = "Q_begin"


def assemble(instruction: str, question: str, position: str) -> str:
    if position == "Q_end":
        return f"{question}\n{instruction}" if instruction else question
    if position == "Q_begin":
        return f"{instruction}\n{question}" if instruction else question
    if position == "A_begin":
        return f"Q: {question}\nA: {instruction} " if instruction else f"Q: {question}\nA:"
    raise ValueError(f"unknown position {position!r}; known: {', '.join(POSITIONS)}")
