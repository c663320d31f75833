"""Optimizer replies with and without the GBNF grammar (issue 10, item 4), in one process.

Workload: GPO's update meta-prompt for BBH navigate (format exemplars from
../shared/data/bbh/navigate, the built-in `sentiment` task when that is absent), current prompt
"Let's think step by step.", step size 10 words; REPLIES sampled replies (temperature 1,
seeds 0..REPLIES-1, max 256 tokens, stop <END>) from the optimizer model, constrained to the
step's grammar (word cap 15) and free-form. Prints, for each mode, the share of replies that
give a usable candidate (drops.classify with tags required, the word cap and the exemplar-leak
check against the exemplars and dev questions), the drop reasons, and the wall time; then the
constrained/free-form time ratio measured in the same run.

Run: python benchmarks/grammar_replies.py [--model NAME_OR_PATH] [--replies 16] [--threads 2]
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from pathlib import Path

from gpo_local.backends.llama_cpp import LlamaCppModel
from gpo_local.catalog import resolve_model
from gpo_local.drops import classify, is_truncated
from gpo_local.grammar import prompt_grammar, word_cap
from gpo_local.leaks import LeakDetector, leak_references
from gpo_local.optimizer import pick_exemplars
from gpo_local.tasks import load_task
from gpo_local.updates import render_update

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "bbh" / "navigate"
CURRENT, BUDGET, MAX_TOKENS = "Let's think step by step.", 10, 256


def measure(model, meta, n, grammar, cap, detector):
    started = time.perf_counter()
    replies = model.generate([meta] * n, max_tokens=MAX_TOKENS, temperature=1.0, seeds=list(range(n)),
                             stop=("<END>",), grammar=grammar)
    seconds = time.perf_counter() - started
    reasons = Counter()
    for reply in replies:
        truncated = is_truncated(model.count_tokens(reply), MAX_TOKENS)
        reasons[classify(reply, require_tags=True, truncated=truncated, max_words=cap,
                         leaks=detector.leaks)[1] or "usable"] += 1
    return seconds, reasons, replies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--replies", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    task = load_task(str(DATA) if DATA.is_dir() else "sentiment")
    exemplars = pick_exemplars(task, 3, 0)
    detector = LeakDetector(leak_references(exemplars, task.split("eval")))
    meta = render_update(method="generate-without", history=[], current=CURRENT, exemplars=exemplars,
                         position="Q_end", budget=BUDGET)
    model = LlamaCppModel(resolve_model(args.model), n_ctx=2048, n_threads=args.threads, parallel=8)
    cap = word_cap(CURRENT, BUDGET, None)
    results = {}
    for mode, grammar in (("grammar", prompt_grammar(cap)), ("free-form", None)):
        seconds, reasons, replies = measure(model, meta, args.replies, grammar, cap, detector)
        results[mode] = seconds
        print(f"{mode:9s} usable {reasons['usable']}/{args.replies}  {seconds:6.1f} s  "
              f"drops {dict((k, v) for k, v in reasons.items() if k != 'usable')}")
        for reply in replies[:3]:
            print(f"    {' '.join(reply.split())[:110]!r}")
    print(f"time ratio grammar/free-form: {results['grammar'] / results['free-form']:.2f} "
          f"(task {task.name}, model {args.model}, {args.threads} threads)")


if __name__ == "__main__":
    main()
