"""The evaluator's decoder with more sequences (issue 12): 16 against 32 and 48, in one run.

The throughput workload of benchmarks/throughput.py (8 prompts x 24 BBH navigate questions, two
rounds, greedy, 2 threads, the bundled SmolLM2-135M), scored by the Evaluator on LlamaCppModel
with the evaluator's decoder carrying 16 (the former limit), then each of --slots sequences, in
the same process one after the other. Reported per contender: wall seconds, pairs/s, the ratio
to the 16-sequence peer, the compute-limit estimate (tokens decoded / prompt-processing rate,
measured once) and its share of it, and agreement of final predictions with the 16-sequence peer.

    python benchmarks/wide_decoder.py [--slots 32,48] [--questions 24] [--threads 2] [--json FILE]
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from throughput import (
    MODEL_NAME,
    N_CTX,
    PARALLEL,
    PROMPTS,
    _load_plain_llama,
    _load_workload,  # noqa: E402
    measure_prompt_rate,
    run_evaluator,
)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slots", default="32,48")
    parser.add_argument("--questions", type=int, default=24)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    from gpo_local.backends.catalog import resolve_model
    from gpo_local.backends.llama_cpp import LlamaCppModel

    task, source, examples = _load_workload(args.questions, print)
    path = resolve_model(MODEL_NAME).resolve()
    llama = _load_plain_llama(path, args.threads)
    rate = measure_prompt_rate(llama, examples)["tokens_per_second"]
    del llama
    gc.collect()
    pairs = len(PROMPTS) * len(examples)
    rows, base = [], None
    for slots in [PARALLEL] + [int(s) for s in args.slots.split(",")]:
        model = LlamaCppModel(
            path, n_ctx=N_CTX, n_threads=args.threads, parallel=PARALLEL, eval_parallel=slots
        )
        seconds, answers = run_evaluator(model, task, len(examples))
        decoder = model.__dict__.get("eval_decoder") or model.decoder
        stats = dataclasses.asdict(decoder.stats)
        decoded = stats["prompt_tokens_decoded"] + stats["generated_tokens"]
        base = base or (seconds, answers)
        same = sum(answers[k][2] == base[1][k][2] for k in answers) / len(answers)
        rows.append(
            {
                "slots": slots,
                "seconds": seconds,
                "pairs_per_second": pairs / seconds,
                "speedup_over_16": base[0] / seconds,
                "limit_seconds": decoded / rate,
                "over_limit": seconds / (decoded / rate),
                "same_predictions_as_16": same,
                "decode_calls": stats["decode_calls"],
                "tokens_decoded": decoded,
            }
        )
        del model, decoder
        gc.collect()
    print(f"workload: {pairs} pairs of {source}; prompt processing {rate:.0f} tokens/s")
    print(f"{'slots':>5} {'wall s':>7} {'pairs/s':>8} {'vs 16':>6} {'limit s':>8} {'x limit':>8} {'same':>6}")
    for r in rows:
        print(
            f"{r['slots']:>5} {r['seconds']:>7.1f} {r['pairs_per_second']:>8.2f} "
            f"{r['speedup_over_16']:>5.2f}x "
            f"{r['limit_seconds']:>8.1f} {r['over_limit']:>7.2f}x {r['same_predictions_as_16']:>6.0%}"
        )
    if args.json:
        args.json.write_text(json.dumps({"prompt_tokens_per_second": rate, "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
