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
step size instead of edits under a constant one), so GPO vs SGDM measures them.

Budget: a step makes C candidate calls, one gradient call and (from the second step) one
momentum call, so within GPO's budget of T*C calls SGDM runs fewer steps (the longest prefix
of steps that fits).
"""

from __future__ import annotations

from dataclasses import replace

from ..optimizer import GPO

SGDM_PRESET = dict(gradient="feedback", momentum="feedback", momentum_update="real-time", update="edit",
                   schedule="fixed")


class SGDM(GPO):
    name = "sgdm"

    def __init__(self, *, config, **kwargs):
        super().__init__(config=replace(config, method="sgdm", **SGDM_PRESET), **kwargs)
