"""Every optimization method on the same loop, evaluator and budget (method.Method).

    gpo    GPO with its strategy switches (optimizer.GPO)
    sgdm   a preset of GPO's switches: textual SGD with momentum (sgdm.py)
    empty  no instruction; cot  "Let's think step by step." (evaluation only, no steps)
    reference  the task's human reference instruction (evaluation only, no steps)
    ape    instruction induction from demonstrations, then iterative resampling (ape.py)
    apo    ProTeGi: textual gradients from minibatch errors, edits, paraphrases, beam (apo.py)
    opro   the top-20 scored instructions in ascending order with exemplars (opro.py)
    pe2    the step-by-step reasoning meta-prompt of PE2 (pe2.py)

Budget fairness: the budget of a configuration is the number of optimizer calls GPO makes
under it (T steps of C candidates, plus its gradient and momentum calls; `reference_calls`).
Every method plans its steps so that its planned calls fit in that budget (a step is never
split), and scores at most one new prompt per optimizer call on the dev split, so its dev
scorings never exceed GPO's. Each method's docstring gives its per-step cost.

Imports the algorithm layer and everything below it; nothing above.
"""

from __future__ import annotations

from gpo_local.algorithm.method import Method
from gpo_local.algorithm.optimizer import GPO
from gpo_local.algorithm.options_method import METHOD_NAMES
from gpo_local.errors import ConfigError, OptionValue
from gpo_local.methods.ape import APE
from gpo_local.methods.apo import APO
from gpo_local.methods.opro import OPRO
from gpo_local.methods.pe2 import PE2
from gpo_local.methods.sgdm import SGDM, SGDM_PRESET
from gpo_local.methods.simple import CoT, Empty, Reference

# Keyed by each class's name, in the order --method lists them (options_method.METHOD_NAMES).
METHODS: dict[str, type[Method]] = {
    cls.name: cls
    for cls in sorted(
        (GPO, Empty, CoT, APE, APO, OPRO, PE2, SGDM, Reference), key=lambda cls: METHOD_NAMES.index(cls.name)
    )
}

__all__ = ["METHODS", "SGDM_PRESET", "get_method"]


def get_method(name: str) -> type[Method]:
    if name not in METHODS:
        raise ConfigError("unknown ", OptionValue("method", name), f"; known: {', '.join(METHODS)}")
    return METHODS[name]
