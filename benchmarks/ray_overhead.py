"""What Ray costs on one machine (README "Running on a cluster").

1. Step scoring: the 192 (prompt, question) pairs of throughput.py's workload (8 prompts x 24
   BBH navigate questions, or the built-in sentiment task where ../shared/data is absent),
   scored by the local evaluator with 2 threads, then through a RayPoolLLM of 1 and of 2
   single-thread actors on a local Ray head (127.0.0.1, 2 CPUs). Printed: each wall time (model
   loading excluded), its ratio to the local one, and whether every outcome is the same.
2. Sweeps: a bench of small cells (method `empty`, 4 dev and 4 test questions, 2 threads per cell
   so that Ray runs them one at a time like the local harness) run locally and through Ray.
   Printed: the wall time per cell of each, and Ray's overhead per cell.

On a 2-core machine this shows the overhead, not a speed-up: the local evaluator already uses
both cores. Run under the model lock on a shared machine; the figures are of that machine.

    python benchmarks/ray_overhead.py [--questions 24] [--cells 4] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import throughput  # noqa: E402  (the workload: prompts, questions, decoding limits)


def score_local(model_path, task, questions: int) -> tuple[float, dict]:
    from gpo_local.backends.llama_cpp import LlamaCppModel

    model = LlamaCppModel(model_path, n_ctx=throughput.N_CTX, n_threads=2, parallel=throughput.PARALLEL)
    return throughput.run_evaluator(model, task, questions)


def score_on_actors(ray, model_path, task, questions: int, actors: int) -> tuple[float, dict]:
    from gpo_local.backends.ray_pool import ModelSpec, RayPoolLLM, VocabOnlyModel

    spec = ModelSpec(path=str(model_path), n_ctx=throughput.N_CTX, threads=1, parallel=throughput.PARALLEL)
    pool = RayPoolLLM.start(ray, spec, actors, local=VocabOnlyModel(model_path, n_ctx=throughput.N_CTX))
    try:
        return throughput.run_evaluator(pool, task, questions)
    finally:
        pool.close()


def sweep(ray, cells: int, work: Path) -> dict:
    """Seconds per cell of a bench of `cells` small cells, locally and through Ray."""
    from gpo_local.quality import SubprocessRunner, load_config, run_bench
    from gpo_local.quality.ray_run import RayCells

    config_path = work / "sweep.toml"
    config_path.write_text(
        f'[bench]\ntasks = ["sentiment"]\nmethods = ["empty"]\nseeds = {list(range(cells))}\n'
        "[optimize]\ndev-limit = 4\ntest-limit = 4\nthreads = 2\nn-ctx = 1024\nno-cache = true\n"
    )
    config = load_config(config_path)
    walls = {}
    for name, run_cells in (("local", None), ("ray", RayCells(ray))):
        started = time.perf_counter()
        results = run_bench(config, work / name, runner=SubprocessRunner(), run_cells=run_cells)
        walls[name] = (time.perf_counter() - started) / cells
        assert results["counts"] == {"done": cells}, results["counts"]
    return {
        "cells": cells,
        "local_seconds_per_cell": round(walls["local"], 2),
        "ray_seconds_per_cell": round(walls["ray"], 2),
        "ray_overhead_seconds_per_cell": round(walls["ray"] - walls["local"], 2),
    }


def run(questions: int, cells: int) -> dict:
    import ray

    from gpo_local.backends.catalog import resolve_model

    say = print
    task, source, examples = throughput._load_workload(questions, say)
    model_path = resolve_model(throughput.MODEL_NAME).resolve()
    pairs = len(throughput.PROMPTS) * len(examples)
    say(f"workload: {pairs} pairs of {source}")
    local_seconds, local_answers = score_local(model_path, task, questions)
    figures = {
        "pairs": pairs,
        "source": source,
        "local_2_threads_seconds": round(local_seconds, 1),
        "actors": {},
    }
    say(f"local evaluator, 2 threads: {local_seconds:.1f} s")
    temp = tempfile.mkdtemp(prefix="gpo-ray-", dir="/tmp")
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        _temp_dir=temp,
        log_to_driver=False,
        logging_level="ERROR",
    )
    try:
        for actors in (1, 2):
            seconds, answers = score_on_actors(ray, model_path, task, questions, actors)
            # The actors decode with 1 thread each and other batch compositions than the local
            # 2-thread evaluator, so a few greedy generations may differ in their last bits (the
            # tests compare equal settings, where they are identical): count them, and the scores.
            other_text = sum(answers[k][:3] != local_answers[k][:3] for k in local_answers)
            other_score = sum(answers[k][3] != local_answers[k][3] for k in local_answers)
            mean = {
                name: sum(a[3] for a in got.values()) / len(got)
                for name, got in (("local", local_answers), ("actors", answers))
            }
            figures["actors"][actors] = {
                "seconds": round(seconds, 1),
                "ratio_to_local": round(seconds / local_seconds, 2),
                "same_outcomes": answers == local_answers,
                "pairs_with_other_text": other_text,
                "pairs_with_other_score": other_score,
                "mean_score_local": round(mean["local"], 4),
                "mean_score_actors": round(mean["actors"], 4),
            }
            say(
                f"{actors} single-thread actor(s): {seconds:.1f} s = {seconds / local_seconds:.2f} x local; "
                f"generations differing from the local ones: {other_text} of {pairs} ({other_score} scored "
                f"differently; mean score {mean['actors']:.3f} vs {mean['local']:.3f})"
            )
        work = Path(tempfile.mkdtemp(prefix="gpo-sweep-"))
        try:
            figures["sweep"] = sweep(ray, cells, work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        say(f"sweep of {cells} cells: {figures['sweep']}")
    finally:
        ray.shutdown()
        shutil.rmtree(temp, ignore_errors=True)
    return figures


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=24)
    parser.add_argument("--cells", type=int, default=4)
    parser.add_argument("--json", dest="json_path", default=None)
    args = parser.parse_args(argv)
    figures = run(args.questions, args.cells)
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
