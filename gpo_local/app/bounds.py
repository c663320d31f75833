"""The bounds of the options that follow from this machine and the chosen models, checked
before any model loads (the fixed bounds are declared in config.OPTIONS and checked where a
value is parsed).

- `threads` at most the CPU count, `n_ctx` at most the model's training context (read from its
  GGUF header, no weights loaded), unless `force`;
- `parallel`: the KV cache llama.cpp allocates for it (n_ctx cells per sequence, plus the
  tokenizer's context and the evaluator's short sequences) must fit in this machine's memory;
- `candidates`: the replies a step plans (each up to optimizer_max_tokens) must fit in memory;
- edit budgets (`lr_init`, `lr_final`) within reach: at most `max_prompt_words`, and the reply
  the grammar allows for them must fit the context. A budget that grows is a warning.

Messages name the options by their Python names and give the estimate they compare.
"""

from __future__ import annotations

import os
from pathlib import Path

from gpo_local.algorithm.config import GPOConfig
from gpo_local.backends.catalog import load_catalog
from gpo_local.backends.gguf_info import GGUFInfo, read_gguf_info
from gpo_local.backends.llama_cpp import EVAL_PARALLEL, EVAL_SEQ_CTX
from gpo_local.backends.packs import target_path
from gpo_local.errors import ConfigError, ModelError
from gpo_local.replies.grammar import TAG_TOKENS, TOKENS_PER_WORD
from gpo_local.runs.directory import home_dir

# What a planned candidate reply holds besides its text (request, messages, bookkeeping) and
# per token of text: a deliberately generous estimate, so that the bound errs towards refusing
# only what could never fit.
REPLY_OVERHEAD_BYTES = 4096
REPLY_BYTES_PER_TOKEN = 16


def memory_bytes() -> int:
    """This machine's physical memory (a fixed ceiling: what is free changes from run to run)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0  # unknown: the memory bounds are not checked


def gib(size: float) -> str:
    return f"{size / 2**40:.1f} TiB" if size >= 2**40 else f"{size / 2**30:.1f} GiB"


def model_file(spec: str) -> Path | None:
    """The GGUF file of a model spec where it is on disk already (a chunked pack is never
    assembled here), else None: the bounds that need it are then left to the loader."""
    entry = load_catalog().get(spec)
    if entry is None:
        path = Path(spec).expanduser()
        return path if path.is_file() else None
    if entry.kind != "gguf":
        return None
    if entry.chunks:
        path = target_path(entry.pack(), home_dir() / "models")
        return path if path.is_file() else None
    try:
        return entry.resolve()
    except ModelError:
        return None


def model_info(spec: str) -> GGUFInfo | None:
    """The GGUF header of a model on disk; None where it is not on disk or unreadable (the
    loader then says what is wrong with the file)."""
    path = model_file(spec)
    try:
        return read_gguf_info(path) if path is not None else None
    except ModelError:
        return None


def check_threads(threads: int | None, force: bool) -> None:
    cpus = os.cpu_count() or 1
    if threads is not None and threads > cpus and not force:
        raise ConfigError(
            f"threads={threads} is more than the {cpus} CPUs of this machine (force=True runs it anyway)"
        )


def kv_cache_bytes(info: GGUFInfo, n_ctx: int, parallel: int) -> int | None:
    """The KV cache llama.cpp allocates for one model (llama_cpp.LlamaCppModel): the Llama's own
    context, `parallel` sequences of n_ctx cells, and the evaluator's short sequences."""
    per_token = info.kv_bytes_per_token()
    if per_token is None:
        return None
    cells = n_ctx + n_ctx * parallel + EVAL_PARALLEL * min(EVAL_SEQ_CTX, n_ctx)
    return cells * per_token


def check_model_runtime(specs: list[str], n_ctx: int, parallel: int, force: bool) -> None:
    """n_ctx within each model's training context, and their KV caches within memory."""
    memory, planned, described = memory_bytes(), 0, []
    for spec in dict.fromkeys(specs):  # one model loaded once
        info = model_info(spec)
        if info is None:
            continue
        if info.context_length and n_ctx > info.context_length and not force:
            raise ConfigError(
                f"n_ctx={n_ctx} is more than the training context of {spec} "
                f"({info.context_length} tokens; force=True runs it anyway)"
            )
        size = kv_cache_bytes(info, n_ctx, parallel)
        if size is not None:
            planned += size
            described.append(f"{spec} {gib(size)}")
    if memory and planned > memory:
        raise ConfigError(
            f"parallel={parallel} with n_ctx={n_ctx} plans a KV cache of about {gib(planned)} "
            f"({', '.join(described)}), more than the {gib(memory)} of memory of this machine: "
            "lower parallel or n_ctx"
        )


def check_replies(config: GPOConfig) -> None:
    """The replies a step plans, each up to optimizer_max_tokens, within memory."""
    memory = memory_bytes()
    planned = config.candidates * (REPLY_OVERHEAD_BYTES + REPLY_BYTES_PER_TOKEN * config.optimizer_max_tokens)
    if memory and planned > memory:
        raise ConfigError(
            f"candidates={config.candidates} plans replies of about {gib(planned)} per step "
            f"(up to optimizer_max_tokens={config.optimizer_max_tokens} tokens each, an estimate), "
            f"more than the {gib(memory)} of memory of this machine"
        )


def check_edit_budgets(config: GPOConfig, n_ctx: int, budgets: set[str]) -> list[str]:
    """The edit budgets named in `budgets` (those the user set, of those the method takes)
    within the prompt's and the grammar's reach; a warning for one that grows."""
    for name in sorted(budgets):
        words = getattr(config, name)
        if config.max_prompt_words is not None and words > config.max_prompt_words:
            raise ConfigError(
                f"{name}={words} is more words than max_prompt_words={config.max_prompt_words} "
                "lets a prompt have"
            )
        reply = TOKENS_PER_WORD * words + TAG_TOKENS
        if config.grammar and reply >= n_ctx:
            raise ConfigError(
                f"{name}={words}: a reply of that many new words takes about {reply} tokens, "
                f"more than n_ctx={n_ctx}"
            )
    if budgets and config.schedule not in ("none", "fixed") and config.lr_final > config.lr_init:
        return [
            f"warning: the edit budget grows from lr_init={config.lr_init} to lr_final={config.lr_final} "
            "words over the run (GPO's schedules decay it)"
        ]
    return []


def check_runtime(
    runtime: dict, *, force: bool, roles: tuple[str, ...] = ("task_model", "optimizer_model")
) -> None:
    """The machine's and the models' bounds of the runtime options, before any model loads."""
    check_threads(runtime.get("threads"), force)
    specs = [runtime.get(role) or runtime["task_model"] for role in roles]  # no optimizer model: the task's
    check_model_runtime(specs, runtime["n_ctx"], runtime["parallel"], force)


def check_run(config: GPOConfig, runtime: dict, *, force: bool, budgets: set[str] = frozenset()) -> list[str]:
    """Every machine and model bound of a run; returns its warnings."""
    check_runtime(runtime, force=force)
    check_replies(config)
    return check_edit_budgets(config, runtime["n_ctx"], budgets)
