"""The one declaration of the options (config.OPTIONS) and what is derived from it."""

import dataclasses
import subprocess
import sys

from gpo_local.app.cli_options import optimize_parser
from gpo_local.algorithm.config import OPTIONS, GPOConfig, Limits, names
from gpo_local.quality.config import CONTRACT_OPTIONS
from gpo_local.app.settings import FILE_OPTIONS, RUNTIME_DEFAULTS

# The bench contract before issue 11 (quality/config.py listed it by hand).
CONTRACT_BEFORE = {
    "gradient", "momentum", "selection", "momentum-update", "k", "update", "schedule", "lr-init", "lr-final",
    "warmup", "max-optimizer-calls", "max-task-tokens", "time-limit",
    "optimizer-model", "embedder", "steps", "candidates", "optimizer-max-tokens", "max-prompt-words",
    "dev-limit", "test-limit", "test-holdout", "initial-prompt", "position",
    "n-ctx", "threads", "n-gpu-layers", "parallel", "no-cache",
}


def test_dataclasses_are_the_declared_groups_with_their_defaults():
    assert [f.name for f in dataclasses.fields(GPOConfig)] == list(names("config"))
    assert [f.name for f in dataclasses.fields(Limits)] == list(names("limit"))
    declared = {o.name: o.default for o in OPTIONS}
    assert all(f.default == declared[f.name] for f in dataclasses.fields(GPOConfig))
    assert GPOConfig().steps == 18 and GPOConfig().schedule == "cosine" and Limits().time_limit is None


def test_command_line_file_and_bench_options_come_from_the_declaration():
    flags = {opt[2:] for p in optimize_parser().params for opt in getattr(p, "opts", ()) if opt.startswith("--")}
    declared = {o.flag[2:] for o in OPTIONS if o.cli}
    assert flags == declared | {"config", "resume", "dry-run"}
    assert set(FILE_OPTIONS) == {o.name for o in OPTIONS if o.cli}
    assert RUNTIME_DEFAULTS["task_model"] == "smollm2-135m-instruct" and RUNTIME_DEFAULTS["n_ctx"] == 4096
    # Derived, the contract also names --train-batch (which optimize always had), the new
    # --optimizer-temperature, issue 10's --grammar, --leak-check, --copy-guard and --optimizer-min-p
    # and issue 12's racing options.
    assert CONTRACT_OPTIONS == CONTRACT_BEFORE | {"train-batch", "optimizer-temperature", "grammar", "leak-check",
                                                  "copy-guard", "optimizer-min-p", "racing", "racing-error",
                                                  "racing-rounds", "racing-order", "format-examples",
                                                  "answer-max-tokens"}


def test_the_library_never_imports_the_command_line():
    code = ("import sys, gpo_local, gpo_local.app.api, gpo_local.quality, gpo_local.app.settings, gpo_local.algorithm.optimizer; "
            "print('gpo_local.app.cli' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
