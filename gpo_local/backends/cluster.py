"""Ray as an optional engine (README "Running on a cluster"): connecting to a cluster, the
`--ray` / `--ray-actors` options of optimize and eval (declared in config.OPTIONS, read by
ray_request), and the task model as a pool of actors.

Ray is an extra (`pip install "gpo-local[ray]"`): nothing here imports it before `--ray` is
given, and without it `--ray` is one error line saying what to install.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gpo_local.backends.ray_pool import ModelSpec, RayPoolLLM, VocabOnlyModel
from gpo_local.backends.served import is_served_spec
from gpo_local.errors import ConfigError, OptionValue

if TYPE_CHECKING:  # pragma: no cover
    from gpo_local.backends.ray_pool import RayPoolLLM

INSTALL_HINT = 'pip install "gpo-local[ray]" (or pip install "ray==2.60.0")'


def import_ray():
    try:
        import ray
    except ImportError:
        raise ConfigError(OptionValue("ray"), f" needs Ray, which is not installed: {INSTALL_HINT}") from None
    return ray


def connect(address: str):
    """The `ray` module, connected to the cluster at `address` ("auto": the one `ray start`
    runs on this machine). A connection made earlier in this process (a test's local head, a
    notebook's ray.init) is kept as it is."""
    ray = import_ray()
    if ray.is_initialized():
        return ray
    try:
        # Workers' logs stay on the workers: the driver's terminal shows gpo-local's progress only.
        ray.init(address=address, log_to_driver=False, logging_level="ERROR")
    except (ConnectionError, ValueError, RuntimeError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ConfigError(
            OptionValue("ray", address),
            f": cannot connect to a Ray cluster ({first_line}); start one with `ray start --head`",
        ) from None
    return ray


def ray_request(options: dict) -> dict:
    """Where the task model runs, from the declared options `ray` and `ray_actors` (config.OPTIONS,
    group "runtime"): {} (here) or {"address", "actors"}. They are not saved with a run: where a
    run is scored does not change its results."""
    address, actors = options.get("ray"), options.get("ray_actors")
    if actors is not None and not address:
        raise ConfigError(
            OptionValue("ray_actors"),
            " needs ",
            OptionValue("ray", "ADDRESS"),
            " (the cluster to start the actors on)",
        )
    return {"address": address, "actors": actors or 2} if address else {}


def task_model_pool(
    path, *, address: str, actors: int, n_ctx: int, threads: int | None, n_gpu_layers: int, parallel: int
) -> "RayPoolLLM":
    """The task model as `actors` Ray actors, each loading the GGUF at `path` with its own batched
    decoder and `threads` threads (1 when not given: on a cluster, the actors are the parallelism)."""

    ray = connect(address)
    spec = ModelSpec(
        path=str(path), n_ctx=n_ctx, threads=threads or 1, n_gpu_layers=n_gpu_layers, parallel=parallel
    )
    local = VocabOnlyModel(
        path, n_ctx=n_ctx, n_threads=spec.threads
    )  # tokenizes and checks fits on the driver
    return RayPoolLLM.start(
        ray, spec, actors, local=local, num_cpus=spec.threads, num_gpus=1 if n_gpu_layers else 0
    )


def served_ray_notice(task_spec: str, runtime: dict) -> str | None:
    """The one line saying that --ray does not apply to a served task model, or None."""
    if not (runtime.get("ray") and is_served_spec(task_spec)):
        return None
    return (
        f"note: the task model {task_spec} is served: its server does the batching, so --ray "
        f"{runtime['ray']} is not used for it"
    )
