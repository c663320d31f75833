"""What cutting constrained prompts back to their last full sentence does (issue 10), offline,
on the candidates of recorded runs: no model is run.

A grammar-constrained reply that reaches its word cap is ended by the grammar, not by the model,
and sampling from the tokens the grammar still allows continues the last word with junk
("...After that, makeerek"). `grammar.cut_to_sentence` cuts such a prompt back to the end of
its last full sentence. This applies it to the candidates recorded by runs made before the cut
existed (trajectory.jsonl; each step record's `grammar_words` is its cap) and counts: prompts at
the cap, those that end mid-sentence, those cut and the words cut off, and prompts holding
non-ASCII characters (the tasks and meta-prompts are English) before and after.

Run: python benchmarks/cut_at_cap.py RUN_DIR [RUN_DIR ...]   (run directories or parents of them)
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from gpo_local.replies.grammar import COMPLETE_ENDING, cut_to_sentence
from gpo_local.runs.directory import JsonlLog

NON_ASCII = re.compile(r"[^\x00-\x7f]")


def constrained_candidates(run: Path):
    """(prompt, its step's word cap) of a run's candidates, for steps whose replies were constrained."""
    records = list(JsonlLog(run / "trajectory.jsonl").records())
    caps = {r["step"]: r.get("grammar_words") for r in records if r.get("kind") == "step"}
    return [
        (r["prompt"], caps[r["step"]])
        for r in records
        if r.get("kind") == "candidate" and caps.get(r["step"])
    ]


def main(paths: list[str]) -> None:
    runs = sorted({p.parent for arg in paths for p in Path(arg).rglob("trajectory.jsonl")})
    counts = dict.fromkeys(
        (
            "runs",
            "candidates",
            "at the cap",
            "mid-sentence",
            "cut",
            "words cut off",
            "left mid-sentence",
            "non-ASCII before",
            "non-ASCII after",
        ),
        0,
    )
    for run in runs:
        candidates = constrained_candidates(run)
        counts["runs"] += bool(candidates)
        for prompt, cap in candidates:
            kept = cut_to_sentence(prompt, cap)
            counts["candidates"] += 1
            counts["non-ASCII before"] += bool(NON_ASCII.search(prompt))
            counts["non-ASCII after"] += bool(NON_ASCII.search(kept))
            if len(prompt.split()) < cap:
                continue
            counts["at the cap"] += 1
            counts["mid-sentence"] += not COMPLETE_ENDING.search(prompt)
            counts["cut"] += kept != prompt
            counts["words cut off"] += len(prompt.split()) - len(kept.split())
            counts["left mid-sentence"] += not COMPLETE_ENDING.search(kept)
    for name, value in counts.items():
        print(f"{name:18s} {value}")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__.split("Run: ")[1].strip())
    main(sys.argv[1:])
