"""Usable optimizer replies with and without the GBNF grammar (issue 10, item 4), in one process.

Workload: GPO's step-1 update meta-prompt as `benchmarks/configs/local.toml` sends it, for each
of the BBH tasks given (format exemplars of seed 0 from ../shared/data/bbh/TASK; the built-in
`sentiment` task when ../shared is absent): current prompt "Let's think step by step.", step
size 50 words, --max-prompt-words 60, --optimizer-max-tokens 128, temperature 1, REPLIES
sampled replies (seeds 0..REPLIES-1, stop <END>). Three modes:
- `free`: free-form replies, the word cap not stated (the code before the cap was stated);
- `free+cap`: free-form, the cap stated (`updates.state_word_cap`): today's `--no-grammar`;
- `grammar`: the cap stated, the step's grammar (word cap min(5 + 50, 60) = 55) and the token
  limit sized to it (`grammar.reply_token_limit`): today's `--grammar`.
A reply is usable when `replies.classify_replies` (drops.classify) keeps it (the cap, truncation
against the mode's token limit, the exemplar-leak check against the exemplars, dev and train
questions, the meta-talk check since the seventh session). Prints per task
and mode the usable count, the drop reasons and the wall time, then the totals; and two signs of
a reply forced off its course: non-ASCII characters in the prompt (the tasks and meta-prompts
are English; the 1.5B drifts into Chinese when the grammar forbids its next token) and prompts
at the word cap; and non-ASCII characters left in the usable candidates, after a constrained
prompt at its cap is cut back to its last full sentence (grammar.cut_to_sentence).

Run: python benchmarks/grammar_replies.py [--model NAME_OR_PATH] [--tasks navigate,boolean_expressions]
        [--replies 12] [--threads 2]
"""

from __future__ import annotations

import argparse
import re
import time
from collections import Counter
from pathlib import Path

from gpo_local.algorithm.draws import pick_exemplars
from gpo_local.algorithm.updates import render_update
from gpo_local.backends.catalog import resolve_model
from gpo_local.backends.llama_cpp import LlamaCppModel
from gpo_local.replies.grammar import prompt_grammar, reply_token_limit, state_word_cap, word_cap
from gpo_local.replies.leaks import LeakDetector, leak_references, talks_to_optimizer
from gpo_local.replies.parser import classify_replies
from gpo_local.replies.parsing import parse_candidate
from gpo_local.tasks import load_task

BBH = Path(__file__).resolve().parents[2] / "shared" / "data" / "bbh"
CURRENT, BUDGET, MAX_WORDS, MAX_TOKENS, TEMPERATURE = "Let's think step by step.", 50, 60, 128, 1.0


NON_ASCII = re.compile(r"[^\x00-\x7f]")


def forced(replies, cap):
    """(replies whose prompt holds non-ASCII characters, replies whose prompt is at the cap)."""
    prompts = [parse_candidate(reply) or "" for reply in replies]
    return sum(bool(NON_ASCII.search(p)) for p in prompts), sum(len(p.split()) >= cap for p in prompts)


def measure(model, meta, n, grammar, max_tokens, max_words, detector):
    """(seconds, drop reasons counted, replies, the usable candidates)."""
    model.decoder.reset()
    started = time.perf_counter()
    replies = model.generate(
        [meta] * n,
        max_tokens=max_tokens,
        temperature=TEMPERATURE,
        seeds=list(range(n)),
        stop=("<END>",),
        grammar=grammar,
    )
    seconds = time.perf_counter() - started
    parsed, dropped = classify_replies(
        replies,
        model,
        max_tokens=max_tokens,
        max_words=max_words,
        leaks=detector.leaks,
        meta_talk=talks_to_optimizer,
        constrained=grammar is not None,
    )
    return seconds, Counter(reason or "usable" for reason in dropped), replies, [p for p in parsed if p]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="qwen2.5-coder-1.5b-instruct")
    parser.add_argument("--tasks", default="navigate,boolean_expressions")
    parser.add_argument("--replies", type=int, default=12)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    model = LlamaCppModel(resolve_model(args.model), n_ctx=4096, n_threads=args.threads, parallel=8)
    cap = word_cap(CURRENT, BUDGET, MAX_WORDS)
    totals: dict[str, Counter] = {}
    seconds: Counter = Counter()
    junk: Counter = Counter()
    names = args.tasks.split(",") if BBH.is_dir() else ["sentiment"]
    for name in names:
        task = load_task(str(BBH / name) if BBH.is_dir() else name)
        exemplars = pick_exemplars(task, 3, 0)
        detector = LeakDetector(
            leak_references(exemplars, *(task.split(s) for s in ("eval", "train") if s in task.splits))
        )
        meta = render_update(
            method="generate-without",
            history=[],
            current=CURRENT,
            exemplars=exemplars,
            position="Q_end",
            budget=BUDGET,
        )
        modes = (
            ("free", meta, None, MAX_TOKENS, MAX_WORDS),
            ("free+cap", state_word_cap(meta, MAX_WORDS), None, MAX_TOKENS, MAX_WORDS),
            (
                "grammar",
                state_word_cap(meta, cap),
                prompt_grammar(cap),
                reply_token_limit(MAX_TOKENS, cap),
                cap,
            ),
        )
        for mode, text, grammar, max_tokens, max_words in modes:
            spent, reasons, replies, kept = measure(
                model, text, args.replies, grammar, max_tokens, max_words, detector
            )
            totals.setdefault(mode, Counter()).update(reasons)
            seconds[mode] += spent
            non_ascii, at_cap = forced(replies, max_words)
            junk[mode, "non-ASCII"] += non_ascii
            junk[mode, "at cap"] += at_cap
            kept_non_ascii = sum(bool(NON_ASCII.search(p)) for p in kept)
            junk[mode, "kept"] += kept_non_ascii
            print(
                f"{name:20s} {mode:9s} usable {reasons['usable']:2d}/{args.replies}  {spent:6.1f} s  "
                f"drops {dict((k, v) for k, v in reasons.items() if k != 'usable')}  "
                f"non-ASCII {non_ascii}, at the cap {at_cap}, non-ASCII kept {kept_non_ascii}",
                flush=True,
            )
            for reply in replies[:2]:
                print(f"    {' '.join(reply.split())[:110]!r}")
    for mode, reasons in totals.items():
        n = sum(reasons.values())
        print(
            f"total {mode:9s} usable {reasons['usable']}/{n} ({100 * reasons['usable'] / n:.0f}%)  "
            f"{seconds[mode]:.0f} s  drops {dict((k, v) for k, v in reasons.items() if k != 'usable')}  "
            f"non-ASCII {junk[mode, 'non-ASCII']}/{n}, at the cap {junk[mode, 'at cap']}/{n}, "
            f"non-ASCII kept {junk[mode, 'kept']}/{reasons['usable']}"
        )
    print(
        f"(model {args.model}, {args.threads} threads, temperature {TEMPERATURE}, {args.replies} replies a "
        f"task and mode)"
    )


if __name__ == "__main__":
    main()
