"""Prompt and decode rates of GGUF models on this machine, to name the machine beside a figure.

Job times differ several-fold between the 2-core VMs this project runs on (an AMD EPYC Zen 1
reads the 0.5B's prompts at 45 tokens/s, a Zen 3 at 98, earlier VMs at about 175), so a wall time
is only comparable with the rates measured on the same machine. Per model: prompt processing of
512 tokens in one llama_eval call (best of 2) and one-token decode steps after a 16-token prefix.

Run: python benchmarks/model_rates.py [MODEL ...] [--threads N]   (catalog names or GGUF paths;
default: every GGUF model of the catalog that is installed)
"""

from __future__ import annotations

import argparse
import time

from gpo_local.backends.catalog import is_installed, load_catalog, resolve_model
from gpo_local.backends.llama_cpp import load_llama

PROMPT_TOKENS, PREFIX_TOKENS, DECODE_TOKENS = 512, 16, 32


def rates(spec: str, threads: int) -> tuple[float, float]:
    """(prompt tokens/s, decode tokens/s) of one model."""
    llm = load_llama(str(resolve_model(spec)), n_ctx=1024, n_threads=threads, verbose=False)
    tokens = llm.tokenize(("The quick brown fox jumps over the lazy dog. " * 60).encode())[:PROMPT_TOKENS]
    best = float("inf")
    for _ in range(2):  # the first call also warms the caches
        llm.reset()
        start = time.perf_counter()
        llm.eval(tokens)
        best = min(best, time.perf_counter() - start)
    llm.reset()
    llm.eval(tokens[:PREFIX_TOKENS])
    start = time.perf_counter()
    for token in tokens[PREFIX_TOKENS : PREFIX_TOKENS + DECODE_TOKENS]:
        llm.eval([token])
    return len(tokens) / best, DECODE_TOKENS / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    models = args.models or [
        name for name, entry in load_catalog().items() if entry.kind == "gguf" and is_installed(name)
    ]
    for spec in models:
        prompt, decode = rates(spec, args.threads)
        print(
            f"{spec}: prompt {prompt:.0f} tokens/s, decode {decode:.1f} tokens/s ({args.threads} threads)",
            flush=True,
        )


if __name__ == "__main__":
    main()
