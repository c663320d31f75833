"""The GPO paper's headline test scores (its main results table), for a column beside ours.

They were measured with other models (task model Llama-2-7b-chat, optimizer gpt-3.5-turbo) on
the benchmarks' full test splits, BBH and MMLU macro-averaged over all their tasks, so they are a
point of orientation, not a target for the bundled 135M model on a few tasks. Scores are
fractions (0..1) like ours; WebNLG is ROUGE-L.
"""

from __future__ import annotations

from pathlib import Path

SOURCE = "GPO paper (main results), Llama-2-7b-chat task model, gpt-3.5-turbo optimizer"

BENCHMARKS = ("BBH", "GSM8K", "MMLU", "WSC", "WebNLG")

# Table 5, in percent as printed; one row per method, columns in BENCHMARKS order.
_TABLE5 = {
    "empty": (30.51, 22.00, 35.96, 60.67, 32.14),
    "cot": (29.91, 24.00, 36.36, 59.33, 31.11),
    "sgdm": (33.30, 27.33, 37.30, 64.00, 38.01),
    "ape": (32.94, 25.00, 37.53, 62.00, 36.49),
    "apo": (32.97, 25.33, 37.75, 62.00, 34.92),
    "opro": (33.29, 26.67, 37.88, 63.33, 37.89),
    "pe2": (33.43, 25.33, 38.15, 62.67, 39.10),
    "gpo": (35.43, 28.33, 39.14, 65.33, 42.51),
}


def paper_score(method: str, benchmark: str) -> float | None:
    """The paper's test score (0..1) of `method` on `benchmark`, or None if it reports none."""
    row = _TABLE5.get(method.lower())
    if row is None or benchmark not in BENCHMARKS:
        return None
    return round(row[BENCHMARKS.index(benchmark)] / 100, 4)


def benchmark_of(task_source: str) -> str | None:
    """The paper benchmark a task belongs to, from its directory (GPO layout: bbh/<task>,
    mmlu/<subject>, gsm8k, wsc, webnlg); None for built-in and other tasks."""
    if task_source.startswith("builtin:"):
        return None
    directory = Path(task_source)
    parent, name = directory.parent.name.lower(), directory.name.lower()
    if parent in ("bbh", "big-bench-hard"):
        return "BBH"
    if parent == "mmlu":
        return "MMLU"
    return {"gsm8k": "GSM8K", "wsc": "WSC", "webnlg": "WebNLG"}.get(name)
