"""The one place where a model spec becomes a model: `get_model` for the task or the optimizer,
`get_models` for the pair a run uses, `get_embedder` for the retrieval embedder, and `memoized`
for the memo cache in front of a model. The Python API, the command line, the dry run's timing
and the Ray engine all load through here, so a spec means the same model everywhere.

A spec is a catalog name (catalog.toml), a path to a GGUF file, or the URL of a served model.
Where it runs follows from the role and the runtime options: the task model goes to a pool of
Ray actors when `ray` is given (cluster.py), the optimizer always runs in this process (a few
sampled calls per step are not worth shipping). A local GGUF file is loaded by
`llama_cpp.load_models`, which loads a file serving both roles once (and which tests replace
with scripted fakes).
"""

from __future__ import annotations

from typing import Mapping

from gpo_local.backends import LLM, catalog, embeddings, llama_cpp
from gpo_local.backends.cluster import ray_request, task_model_pool
from gpo_local.backends.embeddings import Embedder
from gpo_local.backends.memo import Memo, MemoizedLLM
from gpo_local.runs.directory import home_dir

ROLES = ("task", "optimizer")
SERVED_PREFIXES = ("http://", "https://")


def is_served(spec: str) -> bool:
    """Whether `spec` names a model served over HTTP rather than a local file."""
    return str(spec).startswith(SERVED_PREFIXES)


def get_model(
    spec: str,
    *,
    role: str = "task",
    n_ctx: int = 4096,
    threads: int | None = None,
    n_gpu_layers: int = 0,
    parallel: int = 16,
    ray: Mapping | None = None,
) -> LLM:
    """The model `spec` names, for `role` ("task" or "optimizer"). `ray` is a `ray_request`
    ({"address", "actors"}, or empty): given, the task model runs as a pool of Ray actors."""

    if role not in ROLES:
        raise ValueError(f"role {role!r} is not one of {', '.join(ROLES)}")
    if is_served(spec):  # an OpenAI-compatible server (served.py): no actor, its server batches
        return llama_cpp.load_model(
            spec, n_ctx=n_ctx, n_threads=threads, n_gpu_layers=n_gpu_layers, parallel=parallel
        )
    if ray and role == "task":
        return task_model_pool(
            catalog.resolve_model(spec),
            **ray,
            n_ctx=n_ctx,
            threads=threads,
            n_gpu_layers=n_gpu_layers,
            parallel=parallel,
        )
    pair = llama_cpp.load_models(
        spec, spec, n_ctx=n_ctx, n_threads=threads, n_gpu_layers=n_gpu_layers, parallel=parallel
    )
    return pair[ROLES.index(role)]


def runtime_options(runtime: Mapping) -> dict:
    """The loading options of `get_model` from a run's runtime options (config.OPTIONS, group
    "runtime"; `threads` None lets llama.cpp's model pick)."""
    return {
        "n_ctx": runtime["n_ctx"],
        "threads": runtime.get("threads"),
        "n_gpu_layers": runtime["n_gpu_layers"],
        "parallel": runtime["parallel"],
    }


def get_models(task_spec: str, optimizer_spec: str | None, runtime: Mapping) -> tuple[LLM, LLM]:
    """The task and the optimizer model of a run (the optimizer is the task model when
    `optimizer_spec` is None). One local file serving both roles is loaded once."""

    optimizer_spec = optimizer_spec or task_spec
    options, ray = runtime_options(runtime), ray_request(runtime)
    if ray or is_served(task_spec) or is_served(optimizer_spec):
        return (
            get_model(task_spec, role="task", ray=ray, **options),
            get_model(optimizer_spec, role="optimizer", **options),
        )
    return llama_cpp.load_models(
        task_spec,
        optimizer_spec,
        n_ctx=options["n_ctx"],
        n_threads=options["threads"],
        n_gpu_layers=options["n_gpu_layers"],
        parallel=options["parallel"],
    )


def check_embedder(spec: str) -> None:
    """Fail now, before any model loads, when the embedder `spec` is not on this machine."""
    embeddings.resolve_embedder(spec)


def get_embedder(spec: str) -> Embedder:
    """The sentence-transformers embedder `spec` names (a catalog name, a directory, or a model
    in the local Hugging Face cache)."""
    return embeddings.SentenceTransformerEmbedder(spec)


def memoized(llm: LLM, no_cache: bool = False) -> LLM:
    """`llm` behind the memo cache of $GPO_LOCAL_HOME (cache.sqlite), or as it is with `no_cache`."""
    if no_cache:
        return llm
    return MemoizedLLM(llm, Memo(home_dir() / "cache.sqlite"))
