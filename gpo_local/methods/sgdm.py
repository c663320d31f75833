"""SGDM: textual stochastic gradient descent with momentum, as a preset of GPO's switches.

    --gradient feedback        the stochastic gradient: problems behind the wrong answers of a
                               train minibatch (one optimizer call per step)
    --momentum feedback        momentum over gradients, not over prompts...
    --momentum-update real-time   ...kept as a running summary that each new gradient is folded
                               into (one call per step from the second on): the textual
                               counterpart of v <- beta * v + g
    --update edit              the update edits the current prompt along the momentum (theta <-
                               theta - lr * v), with the gradient section shown
    --schedule fixed           a constant step size of --lr-init words, as plain SGDM has

Why this preset: it is the closest analogue of SGD with momentum in GPO's design space, and it
differs from GPO exactly in GPO's two contributions (update direction: retrieval of relevant
earlier prompts instead of gradient momentum; update method: generation under a decaying
step size instead of edits under a constant one), so GPO vs SGDM measures them. The cold start
(GPO's `--cold-start induce`: candidates induced from examples while every prompt scores 0) is
shared for the same reason; its steps make no gradient call.

Budget: a step makes C candidate calls, one gradient call and (from the second step) one
momentum call, so within GPO's budget of T*C calls SGDM runs fewer steps (the longest prefix
of steps that fits).
"""

from __future__ import annotations

from dataclasses import replace

from gpo_local.algorithm.config import SGDM_PRESET
from gpo_local.algorithm.optimizer import GPO

__all__ = ["SGDM", "SGDM_PRESET"]


class SGDM(GPO):
    name = "sgdm"

    @classmethod
    def configure(cls, config):
        # The one place the preset is applied (settings.py calls this too, for config.json).
        return replace(config, method="sgdm", **SGDM_PRESET)
