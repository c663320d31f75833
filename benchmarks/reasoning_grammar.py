"""PE2's constrained replies with and without room to reason first (grammar.py), in one process.

Workload: the recorded meta-prompts of PE2 runs (each step record's `meta_prompt`, the word cap
already stated in it), asked again of the optimizer model with REPLIES sampled replies (seeds
0..REPLIES-1, temperature 1, stop <END>) in two modes:
- `tags-only`: the grammar of a bare tagged prompt (what every built-in method, PE2 included,
  uses), the token limit sized to the cap from --max-tokens;
- `reasoning`: free reasoning before `<START>` (prompt_grammar(cap, reasoning=True)), the token
  limit --max-tokens for the reasoning plus what the cap needs.
A reply is usable when replies.classify_replies keeps it (truncation, the cap, the meta-talk
check; no exemplar-leak check: PE2 shows no format exemplars). Prints per meta-prompt and mode
the usable count, the drop reasons and the seconds, then the totals.

Run: python benchmarks/reasoning_grammar.py RUN_DIR [RUN_DIR ...] [--model NAME_OR_PATH]
        [--replies 4] [--steps 1] [--max-tokens 128] [--modes tags-only,reasoning] [--threads 2]
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gpo_local.backends.catalog import resolve_model  # noqa: E402
from gpo_local.backends.llama_cpp import LlamaCppModel  # noqa: E402
from gpo_local.replies.grammar import prompt_grammar, reply_token_limit  # noqa: E402
from gpo_local.replies.leaks import talks_to_optimizer  # noqa: E402
from gpo_local.replies.parser import classify_replies  # noqa: E402
from gpo_local.runs.directory import JsonlLog  # noqa: E402

STATED_CAP = re.compile(r"Write at most (\d+) words between the tags\.\s*$")


def recorded_meta_prompts(run_dir: Path, steps: int) -> list[tuple[str, int]]:
    """(meta-prompt, its stated word cap) of the first `steps` step records that stated one."""
    found = []
    for record in JsonlLog(run_dir / "trajectory.jsonl").records():
        if record["kind"] == "step" and record.get("meta_prompt"):
            stated = STATED_CAP.search(record["meta_prompt"])
            if stated:
                found.append((record["meta_prompt"], int(stated.group(1))))
    return found[:steps]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--model", default="qwen2.5-coder-1.5b-instruct")
    parser.add_argument("--replies", type=int, default=4)
    parser.add_argument("--steps", type=int, default=1, help="meta-prompts per run")
    parser.add_argument("--max-tokens", type=int, default=128, help="--optimizer-max-tokens of the runs")
    parser.add_argument("--modes", default="tags-only,reasoning")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    model = LlamaCppModel(resolve_model(args.model), n_ctx=4096, n_threads=args.threads, parallel=8)
    totals: dict[str, Counter] = {}
    seconds: Counter = Counter()
    for run_dir in args.runs:
        for meta, cap in recorded_meta_prompts(run_dir, args.steps):
            for mode in args.modes.split(","):
                reasoning = mode == "reasoning"
                limit = reply_token_limit(args.max_tokens, cap, reasoning)
                start = time.perf_counter()
                replies = model.generate(
                    [meta] * args.replies,
                    max_tokens=limit,
                    temperature=1.0,
                    seeds=list(range(args.replies)),
                    stop=("<END>",),
                    grammar=prompt_grammar(cap, reasoning),
                )
                spent = time.perf_counter() - start
                _, reasons = classify_replies(
                    replies,
                    model,
                    max_tokens=limit,
                    max_words=cap,
                    meta_talk=talks_to_optimizer,
                    constrained=True,
                )
                counts = Counter(reason or "usable" for reason in reasons)
                totals.setdefault(mode, Counter()).update(counts)
                seconds[mode] += spent
                print(
                    f"{str(run_dir)[-40:]:40s} cap {cap:3d} {mode:9s} usable "
                    f"{counts['usable']}/{args.replies} "
                    f"{spent:6.1f} s  drops {dict((k, v) for k, v in counts.items() if k != 'usable')}",
                    flush=True,
                )
    print("\nmode       usable  drops                                  seconds")
    for mode, counts in totals.items():
        asked = sum(counts.values())
        print(
            f"{mode:9s} {counts['usable']:3d}/{asked:<3d} "
            f"{str(dict((k, v) for k, v in counts.items() if k != 'usable')):38s} "
            f"{seconds[mode]:7.1f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
