"""GPO's candidate replies under other meta-prompt wordings, replayed on recorded meta-prompts.

Workload: the step records of finished GPO runs (`meta_prompt` as sent, the word cap stated in
it). Each is asked again of the run's optimizer model exactly as the run asked it: the same
seeds (optimizer.candidate_seed), grammar, token limit and copy guard, through the memo cache
(so the `recorded` wording costs nothing and reproduces the run's replies, which the script
checks against the step's recorded drops). Each other wording is the recorded meta-prompt with
some sentences replaced (WORDINGS); a replacement that does not apply is an error, not a silent
no-op. Step 1 and 2 meta-prompts keep the history the recorded wording produced: a replay, not
a new run.

A reply is usable when the run's own checks keep it (replies.classify_replies: truncation, the
cap, the exemplar-leak check against the task's format exemplars and dev/train inputs, meta
talk). Meta talk is matched by phrase (leaks.META_PHRASES), and a wording that stops using a
phrase could hide talk the list no longer catches. The audit counts the kept candidates that
still say "prompt", "score" or "the examples"/"these examples", which an instruction to the
task model has little reason to say; `--show` prints them to be read. Replies are counted one
by one: duplicates are not marked and no candidate is scored, so a row that wins here can still
lose in a run (min-p 0.05 did: benchmarks/README.md, "Min-p"; so did `plain-request`, 97.2% here
and 93.1% in real runs against the default wording's 94.4%: "The `plain-request` wording in real
runs").

A wording may name a min-p for the sampler after an `@` (`recorded@0.05`: the recorded
meta-prompts, sampled with min-p truncation 0.05, `--optimizer-min-p`); without one, the run's.

    python benchmarks/meta_wording.py RUN_DIR [RUN_DIR ...] [--wordings recorded,plain,recorded@0.05] [--show]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gpo_local.algorithm.draws import candidate_seed, pick_exemplars  # noqa: E402
from gpo_local.app.resuming import resolve_resume  # noqa: E402
from gpo_local.backends.catalog import resolve_model  # noqa: E402
from gpo_local.backends.copy_guard import CopyGuard  # noqa: E402
from gpo_local.backends.llama_cpp import LlamaCppModel  # noqa: E402
from gpo_local.backends.registry import memoized  # noqa: E402
from gpo_local.replies.grammar import prompt_grammar, reply_token_limit  # noqa: E402
from gpo_local.replies.leaks import LeakDetector, leak_references, talks_to_optimizer  # noqa: E402
from gpo_local.replies.parser import classify_replies  # noqa: E402
from gpo_local.runs.directory import JsonlLog  # noqa: E402

STATED_CAP = re.compile(r"Write at most (\d+) words between the tags\.\s*$")
CURRENT = re.compile(r"\n\nThe current prompt is:\n(.*?)\n\nStudy ", re.DOTALL)
AUDIT = re.compile(r"\bprompts?\b|\bscores?\b|\b(?:the|these) examples\b", re.IGNORECASE)

# A one-shot demonstration of a reply, for a task none of the benchmarks has; a wording that
# shows it guards against it and checks for it as for a format exemplar.
DEMO = "Sort the words of the input in alphabetical order and answer with the sorted words only."
# The sentences a wording replaces: (recorded text, replacement).
FORMAT = "Put the new prompt between <START> and <END>."
# The reply is the text the task model reads: say so where the format is asked for.
PLAIN = (
    FORMAT,
    f"{FORMAT[:-1]}: only the words the model will read before it answers, written to the model, "
    "with no title, comment or explanation.",
)
# The request itself asks for an instruction to the model.
REQUEST = (
    " Write an instruction for the whole task; do not copy an example.",
    " Write it as an instruction to the model, for the whole task; do not copy an example.",
)
# A demonstration of what a reply looks like, for another task.
SHOWN = (
    FORMAT,
    f"{FORMAT} The prompt speaks to the model directly. For another task, sorting words, a reply "
    f"would be:\n<START>{DEMO}<END>",
)
WORDINGS: dict[str, tuple[tuple[str, str], ...]] = {
    "recorded": (),
    "plain": (PLAIN,),
    "plain-request": (REQUEST, PLAIN),
    "demo": (SHOWN,),
    "demo-request": (REQUEST, SHOWN),
}


def reword(meta: str, wording: str) -> str:
    for old, new in WORDINGS[wording]:
        if old not in meta:
            raise SystemExit(f"wording {wording!r}: {old!r} is not in the recorded meta-prompt")
        meta = meta.replace(old, new)
    return meta


def recorded_steps(run_dir: Path) -> tuple[dict, list[dict]]:
    config = json.loads((run_dir / "config.json").read_text())
    steps = [
        r
        for r in JsonlLog(run_dir / "trajectory.jsonl").records()
        if r["kind"] == "step" and r.get("meta_prompt")
    ]
    return config, steps


def parse_rows(text: str) -> list[tuple[str, str, float | None]]:
    """(row label, wording, min-p or None for the run's own) of each `wording[@min-p]`."""
    rows = []
    for spec in text.split(","):
        name, _, min_p = spec.partition("@")
        if name not in WORDINGS:
            raise SystemExit(f"unknown wording {name!r}; known: {', '.join(WORDINGS)}")
        if min_p and not 0 <= float(min_p) < 1:
            raise SystemExit(f"{spec!r}: min-p must be in [0, 1)")
        rows.append((spec, name, float(min_p) if min_p else None))
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--wordings", default="recorded,plain")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--show", action="store_true", help="print every dropped or audited candidate")
    args = parser.parse_args(argv)
    rows = parse_rows(args.wordings)
    wordings = [label for label, _, _ in rows]
    models: dict[str, object] = {}
    totals = {w: Counter() for w in wordings}
    audited = {w: 0 for w in wordings}
    seconds = Counter()
    for run_dir in args.runs:
        config, steps = recorded_steps(run_dir)
        saved = resolve_resume(run_dir, config, {})  # the run's task and config, as a resume reads them
        cfg, task = saved.config, saved.task
        path = config["models"]["optimizer"]["path"]
        if path not in models:
            models[path] = memoized(
                LlamaCppModel(resolve_model(path), n_ctx=4096, n_threads=args.threads, parallel=8), False
            )
        llm = models[path]
        exemplars = pick_exemplars(task, cfg.format_examples, cfg.seed)
        shown_texts = leak_references(exemplars)
        references = leak_references(exemplars, task.splits.get("eval", ()), task.splits.get("train", ()))
        for step in steps:
            meta, cap = step["meta_prompt"], int(STATED_CAP.search(step["meta_prompt"]).group(1))
            current = CURRENT.search(meta).group(1)
            limit = reply_token_limit(cfg.optimizer_max_tokens, cap)
            seeds = [candidate_seed(cfg.seed, task.name, step["step"], j) for j in range(cfg.candidates)]
            line = []
            for wording, name, min_p in rows:
                asked = reword(meta, name)
                shown = [DEMO] if DEMO in asked else []
                guard = (
                    CopyGuard(avoid=tuple(shown_texts + shown), allow=(current,)) if cfg.copy_guard else None
                )
                detector = LeakDetector(references + shown)
                started = time.perf_counter()
                replies = llm.generate(
                    [asked] * cfg.candidates,
                    max_tokens=limit,
                    temperature=cfg.optimizer_temperature,
                    seeds=seeds,
                    stop=("<END>",),
                    grammar=prompt_grammar(cap),
                    copy_guard=guard,
                    min_p=cfg.optimizer_min_p if min_p is None else min_p,
                )
                seconds[wording] += time.perf_counter() - started
                parsed, reasons = classify_replies(
                    replies,
                    llm,
                    max_tokens=limit,
                    max_words=cap,
                    leaks=detector.leaks,
                    meta_talk=talks_to_optimizer,
                    constrained=True,
                )
                counts = Counter(reason or "usable" for reason in reasons)
                if wording == "recorded":
                    recorded = Counter(step.get("drops", {}))
                    if +Counter({k: v for k, v in counts.items() if k != "usable"}) != +recorded:
                        print(
                            f"  note: replayed drops {dict(counts)} differ from the recorded {dict(recorded)}"
                        )
                flagged = [p for p in parsed if p is not None and AUDIT.search(p)]
                audited[wording] += len(flagged)
                totals[wording].update(counts)
                line.append(f"{wording} {counts['usable']}/{cfg.candidates} audit {len(flagged)}")
                if args.show:
                    for reply, prompt, reason in zip(replies, parsed, reasons):
                        if reason or (prompt and AUDIT.search(prompt)):
                            print(f"    [{wording}: {reason or 'audit'}] {reply.strip()[:300]!r}")
            print(f"{str(run_dir)[-44:]:44s} step {step['step']}  " + "  ".join(line), flush=True)
    print(
        "\nwording          usable         drops                                   audited  usable, not "
        "audited  seconds"
    )
    for wording in wordings:
        counts = totals[wording]
        asked = max(sum(counts.values()), 1)
        drops = {k: v for k, v in counts.items() if k != "usable"}
        clean = counts["usable"] - audited[wording]
        print(
            f"{wording:16s} {counts['usable']:3d}/{asked:<3d} {100 * counts['usable'] / asked:5.1f}%  "
            f"{str(drops):38s} {audited[wording]:5d}   {clean:3d} {100 * clean / asked:5.1f}%  "
            f"{seconds[wording]:9.1f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
