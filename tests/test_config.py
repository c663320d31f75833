"""The one declaration of the options (config.OPTIONS) and what is derived from it."""

import dataclasses
import inspect
import subprocess
import sys

import click

from gpo_local import quality
from gpo_local.algorithm.config import (
    BY_NAME,
    HEADLINE_SWITCHES,
    METHOD_NAMES,
    METHOD_SWITCHES,
    OPTIONS,
    SWITCHES,
    GPOConfig,
    Limits,
    names,
)
from gpo_local.algorithm.evaluator import Evaluator
from gpo_local.app.cli_options import optimize_parser
from gpo_local.app.settings import FILE_OPTIONS, RUNTIME_DEFAULTS
from gpo_local.methods import METHODS
from gpo_local.quality.config import CONTRACT_OPTIONS
from gpo_local.tasks.prompting import DEFAULT_POSITION

# The bench contract before issue 11 (quality/config.py listed it by hand).
CONTRACT_BEFORE = {
    "gradient",
    "momentum",
    "selection",
    "momentum-update",
    "k",
    "update",
    "schedule",
    "lr-init",
    "lr-final",
    "warmup",
    "max-optimizer-calls",
    "max-task-tokens",
    "time-limit",
    "optimizer-model",
    "embedder",
    "steps",
    "candidates",
    "optimizer-max-tokens",
    "max-prompt-words",
    "dev-limit",
    "test-limit",
    "test-holdout",
    "initial-prompt",
    "position",
    "n-ctx",
    "threads",
    "n-gpu-layers",
    "parallel",
    "no-cache",
}


def test_dataclasses_are_the_declared_groups_with_their_defaults():
    assert [f.name for f in dataclasses.fields(GPOConfig)] == list(names("config"))
    assert [f.name for f in dataclasses.fields(Limits)] == list(names("limit"))
    declared = {o.name: o.default for o in OPTIONS}
    assert all(f.default == declared[f.name] for f in dataclasses.fields(GPOConfig))
    assert GPOConfig().steps == 18 and GPOConfig().schedule == "cosine" and Limits().time_limit is None


def test_written_out_dataclasses_match_the_table_exactly():
    """GPOConfig and Limits are written out field by field: their names, order, defaults and
    types are the table's."""
    annotation = {int: "int", float: "float", str: "str", bool: "bool"}
    for cls, group in ((GPOConfig, "config"), (Limits, "limit")):
        declared = [o for o in OPTIONS if o.group == group]
        fields = dataclasses.fields(cls)
        assert [f.name for f in fields] == [o.name for o in declared]
        for f, option in zip(fields, declared):
            assert f.default == option.default and type(f.default) is type(option.default), f.name
            kind = annotation[option.kind]
            assert f.type == (f"{kind} | None" if option.default is None else kind), f.name
        assert cls.__dataclass_params__.frozen


def test_every_number_is_bounded_and_every_text_switch_is_a_choice():
    for option in OPTIONS:
        if option.kind in (int, float):
            assert option.minimum is not None and option.maximum is not None, option.name
    for name in (
        "method",
        "gradient",
        "momentum",
        "selection",
        "momentum_update",
        "update",
        "schedule",
        "position",
        "racing_order",
        "metric",
    ):
        assert BY_NAME[name].allowed(), name


def test_the_method_list_and_the_switch_sets_are_declared_once():
    assert list(METHODS) == list(METHOD_NAMES) == list(quality.METHODS)
    assert METHOD_SWITCHES["gpo"] == SWITCHES and METHOD_SWITCHES["empty"] == ()
    assert METHOD_SWITCHES["sgdm"] == ("lr_init", "warmup")
    assert METHOD_SWITCHES["pe2"] == ("schedule", "lr_init", "lr_final", "warmup")
    assert HEADLINE_SWITCHES == dict(
        gradient="none",
        momentum="para",
        selection="relevance",
        k=3,
        momentum_update="k-list",
        update="generate-without",
        schedule="cosine",
    )
    assert GPOConfig().position == DEFAULT_POSITION == "Q_begin"
    assert inspect.signature(Evaluator).parameters["position"].default == DEFAULT_POSITION


def test_click_types_come_from_the_table():
    params = {p.name: p for p in optimize_parser().params}
    assert isinstance(params["gradient"].type, click.Choice)
    assert params["gradient"].type.choices == ("none", "feedback")
    assert params["method"].type.choices == METHOD_NAMES
    assert (params["steps"].type.min, params["steps"].type.max) == (1, BY_NAME["steps"].maximum)
    # the original's spellings are taken and made canonical
    assert params["selection"].type.convert("relavance", None, None) == "relevance"
    assert params["schedule"].type.convert("consine", None, None) == "cosine"


def test_command_line_file_and_bench_options_come_from_the_declaration():
    flags = {
        opt[2:] for p in optimize_parser().params for opt in getattr(p, "opts", ()) if opt.startswith("--")
    }
    declared = {o.flag[2:] for o in OPTIONS if o.cli}
    assert flags == declared | {"config", "resume", "dry-run"}
    assert set(FILE_OPTIONS) == {o.name for o in OPTIONS if o.cli}
    assert RUNTIME_DEFAULTS["task_model"] == "smollm2-135m-instruct" and RUNTIME_DEFAULTS["n_ctx"] == 4096
    # Derived, the contract also names --train-batch (which optimize always had), the new
    # --optimizer-temperature, issue 10's --grammar, --leak-check, --copy-guard and --optimizer-min-p
    # and issue 12's racing options, and --force (machine and model bounds).
    assert CONTRACT_OPTIONS == CONTRACT_BEFORE | {
        "train-batch",
        "optimizer-temperature",
        "grammar",
        "leak-check",
        "copy-guard",
        "optimizer-min-p",
        "racing",
        "racing-error",
        "racing-rounds",
        "racing-order",
        "force",
        "reply-quota",
        "format-examples",
        "answer-max-tokens",
        "mlflow",
        "cold-start",
        "induced-candidates",
    }


def test_the_library_never_imports_the_command_line():
    code = (
        "import sys, gpo_local, gpo_local.app.api, gpo_local.quality, gpo_local.app.settings, "
        "gpo_local.algorithm.optimizer; "
        "print('gpo_local.app.cli' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
