"""The option table's options besides GPOConfig's (config.OPTIONS): when a run stops early,
where and with what it runs, how its task is loaded, and the run itself.

Groups: "limit" (the fields of Limits in config.py, checked at step boundaries), "runtime" (the
models and llama.cpp settings, Ray and MLflow), "task" (how TASK is loaded: tasks.load_task) and
"run" (the initial prompt, the run directory, output). settings.py resolves them into a run's
settings; only the "limit" group is a dataclass of its own.
"""

from __future__ import annotations

from gpo_local.algorithm.option import Option, parse_directory, parse_splits
from gpo_local.backends.catalog import DEFAULT_EMBEDDER, DEFAULT_MODEL
from gpo_local.tasks.answers import DATASETS, METRICS


def metric_names() -> tuple[str, ...]:

    return (*METRICS, *(d for d in DATASETS if d != "bbh"))


_O = Option
# When to stop early (Limits), checked at step boundaries.
LIMIT_OPTIONS: tuple[Option, ...] = (
    _O(
        "max_optimizer_calls",
        int,
        None,
        "Stop before a step that would exceed this many optimizer calls (resumable).",
        group="limit",
        minimum=0,
        maximum=10**9,
    ),
    _O(
        "max_task_tokens",
        int,
        None,
        "Budget of the whole run, not a per-answer limit (that is "
        "--answer-max-tokens): stop at the first step boundary after the task model "
        "generated this many tokens in all (resumable).",
        group="limit",
        minimum=0,
        maximum=10**15,
    ),
    _O(
        "time_limit",
        float,
        None,
        "Stop at the first step boundary after this many seconds (resumable).",
        group="limit",
        minimum=0,
        maximum=10**9,
    ),
)
# The models and llama.cpp.
RUNTIME_OPTIONS: tuple[Option, ...] = (
    _O(
        "task_model",
        str,
        DEFAULT_MODEL,
        "Catalog name or GGUF path of the model that answers the task, or a "
        "served model: URL or URL#name (OpenAI-compatible server).",
        group="runtime",
        show_default=True,
        section="essentials",
    ),
    _O(
        "optimizer_model",
        str,
        None,
        "Catalog name, GGUF path, URL or URL#name (default: the task model).",
        group="runtime",
        section="essentials",
    ),
    _O(
        "embedder",
        str,
        DEFAULT_EMBEDDER,
        "Catalog name, local path or locally cached sentence-transformers model.",
        group="runtime",
        show_default=True,
    ),
    _O(
        "n_ctx",
        int,
        4096,
        "Context size in tokens",
        group="runtime",
        minimum=256,
        maximum=2**20,
        show_default=True,
        bound="at most the model's training context unless --force",
    ),
    _O(
        "threads",
        int,
        None,
        "CPU threads (default: all, up to 8)",
        group="runtime",
        minimum=1,
        maximum=1024,
        bound="at most the CPU count unless --force",
    ),
    _O(
        "n_gpu_layers",
        int,
        0,
        "Layers offloaded to the GPU (-1: all); needs a CUDA or Metal build of llama-cpp-python.",
        group="runtime",
        minimum=-1,
        maximum=10_000,
        show_default=True,
    ),
    _O(
        "parallel",
        int,
        16,
        "Sequences decoded together (each holds up to --n-ctx tokens of KV cache)",
        group="runtime",
        minimum=1,
        maximum=4096,
        show_default=True,
        bound="their KV cache must fit in memory",
    ),
    _O("no_cache", bool, False, "Do not read or write the generation memo cache.", group="runtime"),
    # where the task model runs (cluster.py): not saved with a run, as it does not change its results
    _O(
        "ray",
        str,
        None,
        "Score on a Ray cluster (auto: the one running on this machine; needs the ray extra).",
        group="runtime",
    ),
    _O(
        "ray_actors",
        int,
        None,
        "Ray actors holding the task model, each with --threads threads [default: 2].",
        group="runtime",
        minimum=1,
        maximum=1024,
    ),
    _O(
        "force",
        bool,
        False,
        "Allow --threads above the CPU count and --n-ctx above the model's training "
        "context (the memory checks stay).",
        group="runtime",
    ),
    # tracking (app/mlflow_observer.py): not saved with a run either; a resume given it continues
    # the run's MLflow run
    _O(
        "mlflow",
        str,
        None,
        "Track the run in MLflow: --mlflow alone uses $MLFLOW_TRACKING_URI, else a "
        "local store under $GPO_LOCAL_HOME/mlruns; --mlflow URI a tracking URI "
        "(needs the mlflow extra).",
        group="runtime",
        flag_value="default",
    ),
)
# How TASK is loaded (tasks.load_task).
TASK_OPTIONS: tuple[Option, ...] = (
    _O(
        "input_field",
        str,
        None,
        "Field (column) holding the question [default: input].",
        group="task",
        section="essentials",
    ),
    _O(
        "target_field",
        str,
        None,
        "Field (column) holding the answer [default: target, else output].",
        group="task",
        section="essentials",
    ),
    _O(
        "metric",
        str,
        None,
        "How answers are scored [default: from the folder name (bbh/<task>, "
        "mmlu/<subject>, gsm8k, wsc, webnlg), else exact].",
        group="task",
        choices=metric_names,
        section="essentials",
    ),
    _O("dataset_config", str, None, "Configuration name of a Hugging Face dataset (hf:<id>).", group="task"),
    _O(
        "splits",
        dict,
        None,
        "Splits of a Hugging Face dataset, as ROLE=NAME,... "
        "[default: train=train,eval=validation,test=test,format=train].",
        group="task",
        parse=parse_splits,
    ),
)
# The run.
RUN_OPTIONS: tuple[Option, ...] = (
    _O(
        "initial_prompt",
        str,
        None,
        "Starting prompt (default: the task's).",
        group="run",
        section="essentials",
    ),
    _O(
        "run_dir",
        str,
        None,
        "Run directory (default: a new folder under $GPO_LOCAL_HOME/runs).",
        group="run",
        parse=parse_directory,
    ),
    _O("quiet", bool, False, "No progress output.", group="run"),
)
