"""The evaluator's decoder with larger physical batches (issue 12): n_ubatch 63 against 512.

Why: the compute-limit estimate of throughput.py divides the tokens (b) decodes by the rate of
one `Llama.eval` of a 512-token prompt, which llama.cpp runs as one 512-row ubatch. The decoder
caps its ubatches at 63 rows (backends/context.py: under 64 query rows every row takes the
per-row attention kernel, which keeps greedy output bit-identical to a sequential run whatever
else the batch holds). This measures what that cap costs, in one process and one run:

* the prompt-processing rate with 512-row and with 63-row ubatches (the same 512-token prompt,
  a fresh context each, best of 2);
* the throughput workload of throughput.py (8 prompts x 24 BBH navigate questions, two rounds,
  greedy, 2 threads, the bundled SmolLM2-135M) scored by the Evaluator with the decoder at
  n_ubatch 63 (the default) and then each of --ubatches; per contender: wall seconds, the
  seconds inside `llama_decode` (the rest is Python: planning, sampling, detokenizing), decode
  calls, tokens decoded, the ratio to the 63-row peer, x the compute limit (throughput.py's,
  at the 512-row rate) and agreement of final predictions with the 63-row peer; and the
  `llama_decode` calls grouped by batch size (1-16 rows: mostly generation steps), with their
  tokens, seconds and rate.

    python benchmarks/ubatch.py [--ubatches 512] [--questions 24] [--threads 2] [--json FILE]
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from throughput import (
    MODEL_NAME,
    N_CTX,
    PARALLEL,
    PROMPTS,
    _load_workload,
    measure_prompt_rate,  # noqa: E402
    run_evaluator,
)

DEFAULT_UBATCH = 63  # the decoder's default (backends/batched.py)
ROW_GROUPS = ((1, 16), (17, 63), (64, 511), (512, 512))  # batch sizes: up to one row a sequence, then more


def prompt_rate(path: Path, threads: int, n_ubatch: int, examples) -> float:
    from gpo_local.backends.llama_cpp import load_llama

    llama = load_llama(
        path,
        n_ctx=N_CTX,
        n_threads=threads,
        n_threads_batch=threads,
        n_batch=512,
        n_ubatch=n_ubatch,
        flash_attn=True,
        verbose=False,
    )
    rate = measure_prompt_rate(llama, examples)["tokens_per_second"]
    del llama
    gc.collect()
    return rate


def time_decode_calls(decoder) -> list[tuple[int, float]]:
    """Record (tokens in the batch, seconds) of each of the decoder's llama_decode calls."""
    calls: list[tuple[int, float]] = []
    decode = decoder._decode

    def timed(n: int) -> None:
        t0 = time.perf_counter()
        decode(n)
        calls.append((n, time.perf_counter() - t0))

    decoder._decode = timed
    return calls


def by_rows(calls: list[tuple[int, float]]) -> list[dict]:
    """Decode calls grouped by batch size: a generation step carries at most 16 rows (one per
    sequence), so larger batches carry prompt tokens too."""
    rows = []
    for low, high in ROW_GROUPS:
        group = [(n, t) for n, t in calls if low <= n <= high]
        tokens, seconds = sum(n for n, _ in group), sum(t for _, t in group)
        rows.append(
            {
                "rows": f"{low}-{high}",
                "calls": len(group),
                "tokens": tokens,
                "seconds": seconds,
                "tokens_per_second": tokens / seconds if seconds else None,
            }
        )
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--ubatches", default="512", help="n_ubatch values to compare with 63, comma-separated"
    )
    parser.add_argument("--questions", type=int, default=24)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    from gpo_local.backends.batched import BatchedDecoder
    from gpo_local.backends.catalog import resolve_model
    from gpo_local.backends.llama_cpp import LlamaCppModel

    task, source, examples = _load_workload(args.questions, print)
    path = resolve_model(MODEL_NAME).resolve()
    ubatches = [DEFAULT_UBATCH] + [int(u) for u in args.ubatches.split(",")]
    rates = {u: prompt_rate(path, args.threads, u, examples) for u in sorted({512, *ubatches})}
    limit_rate = rates[512]  # throughput.py's yardstick
    pairs = len(PROMPTS) * len(examples)
    rows, base = [], None
    for ubatch in ubatches:
        model = LlamaCppModel(path, n_ctx=N_CTX, n_threads=args.threads, parallel=PARALLEL)
        decoder = BatchedDecoder(model.llama, n_seq_max=PARALLEL, n_ubatch=ubatch)
        model.__dict__["decoder"] = decoder  # the cached property, set before first use
        calls = time_decode_calls(decoder)
        seconds, answers = run_evaluator(model, task, len(examples))
        stats = dataclasses.asdict(decoder.stats)
        decoded = stats["prompt_tokens_decoded"] + stats["generated_tokens"]
        base = base or (seconds, answers)
        same = sum(answers[k][2] == base[1][k][2] for k in answers) / len(answers)
        rows.append(
            {
                "n_ubatch": ubatch,
                "seconds": seconds,
                "decode_seconds": stats["decode_seconds"],
                "python_seconds": seconds - stats["decode_seconds"],
                "decode_calls": stats["decode_calls"],
                "tokens_decoded": decoded,
                "speedup_over_63": base[0] / seconds,
                "limit_seconds": decoded / limit_rate,
                "over_limit": seconds / (decoded / limit_rate),
                "same_predictions_as_63": same,
                "by_batch_rows": by_rows(calls),
            }
        )
        decoder.close()
        del model, decoder
        gc.collect()
    print(f"workload: {pairs} pairs of {source}")
    print("prompt processing: " + ", ".join(f"{u}-row ubatches {r:.0f} tokens/s" for u, r in rates.items()))
    print(
        f"{'ubatch':>6} {'wall s':>7} {'decode s':>9} {'python s':>9} {'calls':>6} {'vs 63':>6} "
        f"{'limit s':>8} {'x limit':>8} {'same':>6}"
    )
    for r in rows:
        print(
            f"{r['n_ubatch']:>6} {r['seconds']:>7.1f} {r['decode_seconds']:>9.1f} "
            f"{r['python_seconds']:>9.1f} "
            f"{r['decode_calls']:>6} {r['speedup_over_63']:>5.2f}x {r['limit_seconds']:>8.1f} "
            f"{r['over_limit']:>7.2f}x {r['same_predictions_as_63']:>6.0%}"
        )
    for r in rows:
        print(
            f"n_ubatch {r['n_ubatch']}, llama_decode calls by batch size: "
            + "; ".join(
                f"{g['rows']} rows: {g['calls']} calls, {g['tokens']} tokens in {g['seconds']:.1f} s"
                + (f" ({g['tokens_per_second']:.0f} tokens/s)" if g["tokens_per_second"] else "")
                for g in r["by_batch_rows"]
            )
        )
    if args.json:
        args.json.write_text(
            json.dumps(
                {"prompt_tokens_per_second": {str(u): r for u, r in rates.items()}, "rows": rows}, indent=2
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
