"""Throughput benchmark of the evaluator's hot path (issue 3, item 5).

One fixed workload, measured in one process and one run:

* the bundled SmolLM2-135M-Instruct GGUF, 2 threads, greedy decoding;
* the first 24 dev ("eval" split) questions of BBH navigate from ``../shared/data/bbh/navigate``
  relative to the repository root (the built-in ``sentiment`` task when that is absent);
* the 8 candidate prompts in ``PROMPTS``, instruction after the question (``Q_end``);
* two-round extraction: up to 128 new tokens, then the rule's follow-up with up to 16.

Contenders:

(a) the obvious user loop: ``Llama.create_chat_completion`` per (prompt, question) pair, prompt by
    prompt, both rounds, temperature 0 (it reuses the longest common prefix with the previous call);
(b) the project's ``Evaluator`` on ``LlamaCppModel`` (batched decoder), memo cache disabled;
(c) ``llama-server -np 16 -kvu`` (prompt cache on, warmed) driven through /v1/chat/completions with
    16 concurrent requests, when a binary is given (``--llama-server`` or ``GPO_LOCAL_LLAMA_SERVER``);
(d) the evaluator wrapped in ``MemoizedLLM`` over a temporary SQLite file, run twice: the second
    run's time as a share of (b).

Plus the prompt-processing rate (one ``Llama.eval`` of a ~512-token prompt on a fresh context,
timed before (a) and again right after (b); the faster of the two readings) and the compute-limit
estimate: tokens (b) had to decode (unique prompt tokens after prefix sharing + generated tokens,
from the decoder's stats) divided by that rate.

Run: ``python benchmarks/throughput.py [--json FILE] [--llama-server PATH] [--questions 24]
[--threads 2]`` or ``gpo-local bench throughput ...``. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import os
import platform
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
NAVIGATE_DIR = REPO_ROOT.parent / "shared" / "data" / "bbh" / "navigate"
FALLBACK_TASK = "sentiment"
MODEL_NAME = "smollm2-135m-instruct"
MAX_TOKENS = (128, 16)
POSITION = "Q_end"
N_CTX = 1024  # per sequence, for every contender
PARALLEL = 16
SERVER_ENV = "GPO_LOCAL_LLAMA_SERVER"
REQUEST_TIMEOUT = 300.0  # seconds per HTTP request to llama-server
SERVER_START_TIMEOUT = 120.0

# The 8 fixed candidate prompts (instruction placed after the question).
PROMPTS = (
    "Let's think step by step.",
    "Answer Yes or No.",
    "Track your position after each step, then answer.",
    "Think carefully about directions and give the final answer.",
    "Work it out step by step and finish with 'The answer is Yes' or 'The answer is No'.",
    "Explain your reasoning briefly, then answer.",
    "Solve the problem.",
    "Count the net steps along each axis, then answer.",
)


# --------------------------------------------------------------------------- helpers
def _peak_rss_mb(who: int = resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024.0  # ru_maxrss is in KiB on Linux


def _load_workload(questions: int, say):
    from gpo_local.tasks import load_task

    if NAVIGATE_DIR.is_dir():
        task = load_task(str(NAVIGATE_DIR))
        source = str(NAVIGATE_DIR)
    else:
        say(
            f"[yellow]{NAVIGATE_DIR} not found: falling back to the built-in {FALLBACK_TASK!r} task "
            f"(figures are not comparable with the navigate workload)[/yellow]"
        )
        task = load_task(FALLBACK_TASK)
        source = f"builtin:{FALLBACK_TASK}"
    task = dataclasses.replace(task, max_tokens=MAX_TOKENS)
    examples = task.split("eval", questions)
    return task, source, examples


def _pairs(n_prompts: int, n_examples: int, *, prompt_major: bool) -> list[tuple[int, int]]:
    if prompt_major:
        return [(p, e) for p in range(n_prompts) for e in range(n_examples)]
    return [(p, e) for e in range(n_examples) for p in range(n_prompts)]


def _load_plain_llama(model_path: Path, threads: int):
    """The Llama a user would load, with the backend's settings (flash attention, the AMX guard)."""
    from gpo_local.backends.llama_cpp import load_llama

    return load_llama(
        model_path,
        n_ctx=N_CTX,
        n_threads=threads,
        n_threads_batch=threads,
        n_batch=512,
        flash_attn=True,
        verbose=False,
    )


def measure_prompt_rate(llama, examples, n_tokens: int = 512, repeats: int = 2) -> dict:
    """Tokens/s of one ``Llama.eval`` of an ``n_tokens`` prompt on a fresh (reset) context;
    the best of ``repeats`` timed runs after a short warm-up."""
    text = "\n\n".join(e.input for e in examples) * 8
    tokens = llama.tokenize(text.encode("utf-8"), add_bos=False)[:n_tokens]
    llama.reset()
    llama.eval(tokens[:16])  # warm-up: graph allocation, page faults
    best = float("inf")
    for _ in range(repeats):
        llama.reset()
        t0 = time.perf_counter()
        llama.eval(tokens)
        best = min(best, time.perf_counter() - t0)
    llama.reset()
    return {"tokens": len(tokens), "seconds": best, "tokens_per_second": len(tokens) / best}


# --------------------------------------------------------------------------- (a)
def run_sequential(llama, task, examples, advance) -> dict:
    rule = task.rule
    first_limit, second_limit = task.max_tokens
    from gpo_local.tasks.prompting import assemble

    evaluated = [0]
    original_eval = llama.eval

    def counting_eval(tokens):  # every token pushed through the model (prompt suffixes + feedback)
        evaluated[0] += len(tokens)
        return original_eval(tokens)

    llama.eval = counting_eval
    usage = {"prompt_tokens": 0, "completion_tokens": 0}
    answers = {}
    llama.reset()
    t0 = time.perf_counter()
    try:
        for p, e in _pairs(len(PROMPTS), len(examples), prompt_major=True):
            question = examples[e].input
            ask = assemble(PROMPTS[p], question, POSITION)
            messages = [{"role": "user", "content": ask}]
            r1 = llama.create_chat_completion(messages=messages, max_tokens=first_limit, temperature=0.0)
            a1 = r1["choices"][0]["message"]["content"] or ""
            for k in usage:
                usage[k] += r1["usage"][k]
            a2 = a1
            if rule.two_rounds:
                messages = messages + [
                    {"role": "assistant", "content": a1.strip()},
                    {"role": "user", "content": rule.followup(question)},
                ]
                r2 = llama.create_chat_completion(messages=messages, max_tokens=second_limit, temperature=0.0)
                a2 = r2["choices"][0]["message"]["content"] or ""
                for k in usage:
                    usage[k] += r2["usage"][k]
            prediction = rule.normalize(a2)
            answers[(p, e)] = (a1, a2, prediction, float(rule.is_correct(prediction, examples[e].target)))
            advance()
    finally:
        del llama.eval
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "answers": answers, "usage": usage, "tokens_decoded": evaluated[0]}


# --------------------------------------------------------------------------- (b), (d)
def run_evaluator(llm, task, n_questions: int, on_progress=None) -> tuple[float, dict]:
    from gpo_local.algorithm.evaluator import Evaluator

    evaluator = Evaluator(llm, task, position=POSITION, on_progress=on_progress)
    t0 = time.perf_counter()
    results = evaluator.evaluate(list(PROMPTS), "eval", limit=n_questions)
    seconds = time.perf_counter() - t0
    answers = {
        (p, e): (o.first_answer, o.final_answer, o.prediction, o.score)
        for p, result in enumerate(results)
        for e, o in enumerate(result.outcomes)
    }
    return seconds, answers


# --------------------------------------------------------------------------- (c)
def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(url: str, body: dict, timeout: float = REQUEST_TIMEOUT) -> dict:
    data = json.dumps(body).encode("utf-8")
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def _server_command(binary: str, model_path: Path, threads: int, port: int) -> tuple[list[str], list[str]]:
    from gpo_local.backends.llama_cpp import cpu_has_amx

    help_text = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=60).stdout
    notes = []
    cmd = [
        binary,
        "-m",
        str(model_path),
        "-np",
        str(PARALLEL),
        "-kvu",
        "-c",
        str(N_CTX * PARALLEL),
        "-t",
        str(threads),
        "-tb",
        str(threads),
        "-b",
        "512",
        "-fa",
        "on",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    if "--no-webui" in help_text:
        cmd.append("--no-webui")
    if "--cache-prompt" in help_text:
        cmd.append("--cache-prompt")
    if cpu_has_amx():
        # The AMX extra buffer type crashes this llama.cpp during decode (see backends/llama_cpp.py).
        if "--no-repack" in help_text:
            cmd.append("--no-repack")
            notes.append("CPU has AMX: passed --no-repack")
        else:
            notes.append("CPU has AMX but this llama-server has no --no-repack flag; it may crash")
    return cmd, notes


def run_server(binary: str, model_path: Path, task, examples, threads: int, advance, say) -> dict:
    from gpo_local.tasks.prompting import assemble

    rule = task.rule
    first_limit, second_limit = task.max_tokens
    port = _free_port()
    cmd, notes = _server_command(binary, model_path, threads, port)
    base = f"http://127.0.0.1:{port}"
    log = tempfile.NamedTemporaryFile("w+", prefix="llama-server-", suffix=".log", delete=False)
    say("starting: " + " ".join(cmd))
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"llama-server exited with code {proc.returncode} (log: {log.name})")
            try:
                with urllib.request.urlopen(base + "/health", timeout=5) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"llama-server not healthy after {SERVER_START_TIMEOUT:.0f}s (log: {log.name})"
                )
            time.sleep(0.5)
        url = base + "/v1/chat/completions"
        # Warm-up: a short unrelated request (buffers, graphs), never the workload's prompts.
        _post(
            url,
            {
                "messages": [{"role": "user", "content": "Say hello."}],
                "max_tokens": 8,
                "temperature": 0.0,
                "cache_prompt": True,
            },
        )

        def ask(messages, limit):
            return _post(
                url,
                {
                    "messages": messages,
                    "max_tokens": limit,
                    "temperature": 0.0,
                    "cache_prompt": True,
                    "seed": 0,
                },
            )

        def job(p, e):
            question = examples[e].input
            messages = [{"role": "user", "content": assemble(PROMPTS[p], question, POSITION)}]
            replies = [ask(messages, first_limit)]
            a1 = replies[0]["choices"][0]["message"]["content"] or ""
            a2 = a1
            if rule.two_rounds:
                messages = messages + [
                    {"role": "assistant", "content": a1.strip()},
                    {"role": "user", "content": rule.followup(question)},
                ]
                replies.append(ask(messages, second_limit))
                a2 = replies[1]["choices"][0]["message"]["content"] or ""
            return a1, a2, replies

        answers = {}
        counts = {"prompt_tokens": 0, "completion_tokens": 0, "prompt_tokens_decoded": 0, "cached_tokens": 0}
        # Same pair order as the evaluator (question by question): concurrent requests share prefixes.
        pairs = _pairs(len(PROMPTS), len(examples), prompt_major=False)
        t0 = time.perf_counter()
        with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
            futures = {pool.submit(job, p, e): (p, e) for p, e in pairs}
            for future in as_completed(futures):
                p, e = futures[future]
                a1, a2, replies = future.result()
                for reply in replies:
                    counts["prompt_tokens"] += reply["usage"]["prompt_tokens"]
                    counts["completion_tokens"] += reply["usage"]["completion_tokens"]
                    timings = reply.get("timings") or {}
                    counts["prompt_tokens_decoded"] += int(timings.get("prompt_n", 0))
                    counts["cached_tokens"] += int(timings.get("cache_n", 0))
                prediction = rule.normalize(a2)
                answers[(p, e)] = (a1, a2, prediction, float(rule.is_correct(prediction, examples[e].target)))
                advance()
        seconds = time.perf_counter() - t0
        return {"seconds": seconds, "answers": answers, "counts": counts, "command": cmd, "notes": notes}
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=15)
        log.close()


# --------------------------------------------------------------------------- main entry
def _agreement(x: dict, y: dict) -> dict:
    keys = sorted(set(x) & set(y))
    if not keys:
        return {"pairs": 0}
    same_pred = sum(x[k][2] == y[k][2] for k in keys)
    same_raw = sum(x[k][0] == y[k][0] for k in keys)
    return {"pairs": len(keys), "predictions": same_pred / len(keys), "round1_text": same_raw / len(keys)}


def _accuracy(answers: dict) -> float:
    return sum(a[3] for a in answers.values()) / len(answers) if answers else float("nan")


def run(
    *,
    json_path: str | Path | None = None,
    llama_server: str | None = None,
    questions: int = 24,
    threads: int = 2,
    console=None,
    eval_parallel: int | None = None,
) -> dict:
    """Run the whole benchmark, print the figures and return them (also written to ``json_path``)."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    class PairRate(ProgressColumn):
        def render(self, task):
            speed = task.finished_speed or task.speed
            return Text("" if speed is None else f"{speed:.2f} pairs/s")

    from rich.table import Table

    from gpo_local.backends.batched import DecoderStats
    from gpo_local.backends.catalog import resolve_model
    from gpo_local.backends.llama_cpp import LlamaCppModel, cpu_has_amx, use_extra_buffer_types
    from gpo_local.backends.memo import Memo, MemoizedLLM

    console = console or Console()
    say = console.print
    llama_server = llama_server or os.environ.get(SERVER_ENV) or None

    task, source, examples = _load_workload(questions, say)
    n_pairs = len(PROMPTS) * len(examples)
    model_path = resolve_model(MODEL_NAME).resolve()
    import llama_cpp

    figures: dict = {
        "workload": {
            "task": task.name,
            "source": source,
            "questions": len(examples),
            "prompts": len(PROMPTS),
            "pairs": n_pairs,
            "two_rounds": bool(task.rule.two_rounds),
            "max_tokens": list(MAX_TOKENS),
            "position": POSITION,
            "threads": threads,
            "n_ctx_per_sequence": N_CTX,
            "parallel": PARALLEL,
            "model": str(model_path),
        },
        "machine": {
            "cpus": os.cpu_count(),
            "cpu_has_amx": cpu_has_amx(),
            "extra_buffer_types": use_extra_buffer_types(),
            "python": platform.python_version(),
            "llama_cpp_python": llama_cpp.__version__,
        },
    }
    say(
        f"workload: {len(PROMPTS)} prompts x {len(examples)} questions of {source} = {n_pairs} pairs, "
        f"{'two rounds' if task.rule.two_rounds else 'one round'} (max {MAX_TOKENS[0]}/{MAX_TOKENS[1]} "
        f"tokens), "
        f"greedy, {threads} threads, {model_path.name}"
    )

    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        PairRate(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )
    with progress:
        # -- load and measure the prompt-processing rate on the plain Llama ---------------------
        llama = _load_plain_llama(model_path, threads)
        pp = measure_prompt_rate(llama, examples)
        figures["prompt_processing"] = pp
        say(
            f"prompt processing: {pp['tokens']} tokens in {pp['seconds']:.2f}s = "
            f"{pp['tokens_per_second']:.0f} tokens/s"
        )

        # -- (a) -------------------------------------------------------------------------------
        bar = progress.add_task("(a) create_chat_completion loop", total=n_pairs)
        a = run_sequential(llama, task, examples, lambda: progress.advance(bar))
        a_rss = _peak_rss_mb()
        del llama
        gc.collect()

        # -- (b) -------------------------------------------------------------------------------
        model = LlamaCppModel(
            model_path, n_ctx=N_CTX, n_threads=threads, parallel=PARALLEL, eval_parallel=eval_parallel
        )  # issue 12: the evaluator's wide decoder
        bar = progress.add_task("(b) evaluator, no cache", total=n_pairs)
        b_seconds, b_answers = run_evaluator(
            model, task, len(examples), lambda done, total: progress.update(bar, completed=done)
        )
        used = model.__dict__.get("eval_decoder") or model.decoder  # the decoder (b) ran on (issue 12)
        stats = dataclasses.asdict(used.stats)
        b_rss = _peak_rss_mb()
        # The rate is timed again right after (b): on a shared VM it moved between 242 and 336
        # tokens/s from one run to the next, so a single reading taken before (a) could make the
        # limit ratio differ by a quarter for the same (b). The faster reading is the floor.
        llama = _load_plain_llama(model_path, threads)
        pp_after = measure_prompt_rate(llama, examples)
        del llama
        gc.collect()
        figures["prompt_processing_after_b"] = pp_after
        say(
            f"prompt processing after (b): {pp_after['tokens']} tokens in {pp_after['seconds']:.2f}s = "
            f"{pp_after['tokens_per_second']:.0f} tokens/s"
        )

        # -- (d) -------------------------------------------------------------------------------
        used.reset()
        used.stats = DecoderStats()
        with tempfile.TemporaryDirectory(prefix="gpo-bench-memo-") as tmp:
            memo = Memo(Path(tmp) / "memo.sqlite")
            memoized = MemoizedLLM(model, memo)
            bar = progress.add_task("(d) memoized, first run", total=n_pairs)
            d1_seconds, d1_answers = run_evaluator(
                memoized, task, len(examples), lambda done, total: progress.update(bar, completed=done)
            )
            hits_before = memoized.hits
            bar = progress.add_task("(d) memoized, second run", total=n_pairs)
            d2_seconds, d2_answers = run_evaluator(
                memoized, task, len(examples), lambda done, total: progress.update(bar, completed=done)
            )
            d_hits, d_misses = memoized.hits - hits_before, memoized.misses
            memo.close()
        d_same = sum(d1_answers[k] == d2_answers[k] for k in d1_answers) / len(d1_answers)

        # -- (c) -------------------------------------------------------------------------------
        c = None
        c_skip = None
        if not llama_server:
            c_skip = f"no llama-server binary given (--llama-server PATH or ${SERVER_ENV})"
        elif not (shutil.which(llama_server) or Path(llama_server).is_file()):
            c_skip = f"llama-server binary {llama_server!r} not found"
        if c_skip:
            say(f"[yellow](c) skipped: {c_skip}[/yellow]")
        else:
            del model  # free the decoder's KV before the server allocates its own
            gc.collect()
            bar = progress.add_task("(c) llama-server -np 16 -kvu", total=n_pairs)
            try:
                c = run_server(
                    shutil.which(llama_server) or llama_server,
                    model_path,
                    task,
                    examples,
                    threads,
                    lambda: progress.advance(bar),
                    say,
                )
            except (
                RuntimeError,
                OSError,
                urllib.error.URLError,
                TimeoutError,
                KeyError,
                ValueError,
            ) as error:
                c_skip = f"failed: {error}"
                say(f"[red](c) {c_skip}[/red]")

    # -- figures ----------------------------------------------------------------------------
    b_decoded = stats["prompt_tokens_decoded"] + stats["generated_tokens"]
    rate = max(pp["tokens_per_second"], pp_after["tokens_per_second"])
    limit_seconds = b_decoded / rate
    figures["a"] = {
        "name": "create_chat_completion loop",
        "seconds": a["seconds"],
        "pairs_per_second": n_pairs / a["seconds"],
        "prompt_tokens": a["usage"]["prompt_tokens"],
        "completion_tokens": a["usage"]["completion_tokens"],
        "tokens_decoded": a["tokens_decoded"],
        "accuracy": _accuracy(a["answers"]),
        "peak_rss_mb": a_rss,
    }
    figures["b"] = {
        "name": "Evaluator (batched decoder), cache disabled",
        "seconds": b_seconds,
        "pairs_per_second": n_pairs / b_seconds,
        "prompt_tokens": stats["prompt_tokens"],
        "completion_tokens": stats["generated_tokens"],
        "tokens_decoded": b_decoded,
        "decoder_stats": stats,
        "accuracy": _accuracy(b_answers),
        "peak_rss_mb": b_rss,
    }
    if c is not None:
        counts = c["counts"]
        figures["c"] = {
            "name": "llama-server -np 16 -kvu, 16 concurrent requests",
            "seconds": c["seconds"],
            "pairs_per_second": n_pairs / c["seconds"],
            "prompt_tokens": counts["prompt_tokens"],
            "completion_tokens": counts["completion_tokens"],
            "tokens_decoded": counts["prompt_tokens_decoded"] + counts["completion_tokens"],
            "cached_prompt_tokens": counts["cached_tokens"],
            "accuracy": _accuracy(c["answers"]),
            "server_peak_rss_mb": _peak_rss_mb(resource.RUSAGE_CHILDREN),
            "command": c["command"],
            "notes": c["notes"],
        }
    else:
        figures["c"] = {"skipped": c_skip}
    figures["d"] = {
        "name": "Evaluator + MemoizedLLM, second run",
        "first_run_seconds": d1_seconds,
        "seconds": d2_seconds,
        "share_of_b": d2_seconds / b_seconds,
        "hits": d_hits,
        "misses": d_misses,
        "identical_to_first_run": d_same,
    }
    figures["ratios"] = {
        "b_over_a": a["seconds"] / b_seconds,
        "b_over_c": (c["seconds"] / b_seconds) if c is not None else None,
    }
    figures["agreement_b_a"] = _agreement(b_answers, a["answers"])
    if c is not None:
        figures["agreement_b_c"] = _agreement(b_answers, c["answers"])
    figures["compute_limit"] = {
        "tokens_to_decode": b_decoded,
        "prompt_tokens_per_second": rate,
        "seconds": limit_seconds,
        "b_over_limit": b_seconds / limit_seconds,
    }
    figures["peak_rss_mb"] = _peak_rss_mb()

    table = Table(
        title=f"throughput: {n_pairs} (prompt, question) pairs, {source}",
        caption="prompt tok: prompt tokens requested; generated: new tokens; decoded: tokens "
        "pushed through the model (prompt tokens not served from a cache + generated)",
    )
    for column in ("", "wall s", "pairs/s", "prompt tok", "generated", "decoded", "accuracy"):
        table.add_column(column, justify="right" if column else "left")
    labels = {"a": "(a) chat loop", "b": "(b) evaluator", "c": "(c) llama-server"}
    for key in ("a", "b", "c"):
        f = figures[key]
        if "skipped" in f:
            table.add_row(labels[key], "skipped", "", "", "", "", "")
            continue
        table.add_row(
            labels[key],
            f"{f['seconds']:.1f}",
            f"{f['pairs_per_second']:.2f}",
            str(f["prompt_tokens"]),
            str(f["completion_tokens"]),
            str(f["tokens_decoded"]),
            f"{f['accuracy']:.1%}",
        )
    d = figures["d"]
    table.add_row("(d) memo re-run", f"{d['seconds']:.4f}", f"{n_pairs / d['seconds']:.0f}", "", "", "0", "")
    console.print(table)
    ratios, agree, limit = figures["ratios"], figures["agreement_b_a"], figures["compute_limit"]
    say(f"(b)/(a): {ratios['b_over_a']:.2f}x faster")
    say(
        f"(b)/(c): {ratios['b_over_c']:.2f}x faster"
        if ratios["b_over_c"] is not None
        else f"(b)/(c): n/a ((c) skipped: {c_skip})"
    )
    say(
        f"(b) agrees with (a) on {agree['predictions']:.1%} of final predictions and "
        f"{agree['round1_text']:.1%} of round-1 texts ({agree['pairs']} pairs)"
    )
    if "agreement_b_c" in figures:
        ag = figures["agreement_b_c"]
        say(
            f"(b) agrees with (c) on {ag['predictions']:.1%} of final predictions and "
            f"{ag['round1_text']:.1%} of round-1 texts"
        )
    say(
        f"(d) memoized second run: {d['seconds'] * 1000:.1f} ms = {d['share_of_b']:.3%} of (b) "
        f"({d['hits']} hits, {d['misses']} misses over both runs; identical answers: "
        f"{d['identical_to_first_run']:.0%})"
    )
    say(
        f"compute limit: {limit['tokens_to_decode']} tokens to decode "
        f"({stats['prompt_tokens_decoded']} unique prompt + {stats['generated_tokens']} generated) / "
        f"{limit['prompt_tokens_per_second']:.0f} tokens/s = {limit['seconds']:.1f}s; "
        f"(b) takes {limit['b_over_limit']:.2f}x that"
    )
    say(
        f"peak RSS: {figures['peak_rss_mb']:.0f} MB (after (a): {a_rss:.0f} MB, after (b): {b_rss:.0f} MB)"
        + (f"; llama-server peak RSS {figures['c']['server_peak_rss_mb']:.0f} MB" if c is not None else "")
    )
    if json_path:
        Path(json_path).write_text(json.dumps(figures, indent=2) + "\n")
        say(f"figures written to {json_path}")
    return figures


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", dest="json_path", metavar="FILE", help="Write the figures as JSON to FILE.")
    parser.add_argument(
        "--llama-server",
        metavar="PATH",
        default=None,
        help=f"llama-server binary for contender (c) (default: ${SERVER_ENV}).",
    )
    parser.add_argument(
        "--questions", type=int, default=24, help="Dev questions (default 24; the fixed workload)."
    )
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (default 2; the fixed workload).")
    parser.add_argument(
        "--eval-parallel",
        type=int,
        default=None,
        help="Sequences of the evaluator's decoder for (b) (default: the backend's EVAL_PARALLEL).",
    )
    args = parser.parse_args(argv)
    if args.questions < 1 or args.threads < 1:
        parser.error("--questions and --threads must be >= 1")
    run(
        json_path=args.json_path,
        llama_server=args.llama_server,
        questions=args.questions,
        threads=args.threads,
        eval_parallel=args.eval_parallel,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
