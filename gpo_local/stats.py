"""Error bars for scores: standard errors, intervals and paired comparisons, as pure functions.

Two units of repetition appear in gpo-local's measurements:

- the question: a prompt's score on a split is the mean of its per-question outcomes (0/1 for
  exact match, a fraction for ROUGE-L). Its standard error, and the paired bootstrap interval of
  a gain (final against initial prompt on the same test questions), treat the questions as the
  sample;
- the (task, seed) cell of a benchmark: a method's mean over cells gets a Student-t interval,
  and two methods are compared cell by cell (paired).

Everything here is deterministic: the bootstrap and the permutation test's sampled branch draw
from a fixed seed. No import from the rest of gpo_local, so any layer may use it.
"""

from __future__ import annotations

import itertools
import math
import random
from typing import Sequence

import numpy as np

CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 10_000
# Up to this many non-zero differences the sign-flip test enumerates every sign pattern (2^16);
# beyond, it draws SIGN_FLIP_DRAWS patterns from a fixed seed, so the p-value is reproducible.
SIGN_FLIP_EXACT = 16
SIGN_FLIP_DRAWS = 20_000


def _values(values: Sequence[float], name: str) -> np.ndarray:
    array = np.asarray(list(values), dtype=float)
    if array.ndim != 1:
        raise ValueError(f"{name} must be a flat sequence of numbers")
    return array


def standard_error(outcomes: Sequence[float]) -> float | None:
    """Standard error of the mean of `outcomes` (one per question): the sample standard deviation
    (n - 1) over sqrt(n). None below two outcomes, where it is not defined."""
    array = _values(outcomes, "outcomes")
    if len(array) < 2:
        return None
    return float(array.std(ddof=1) / math.sqrt(len(array)))


def paired_bootstrap_interval(
    final: Sequence[float],
    initial: Sequence[float],
    *,
    seed: int = 0,
    resamples: int = BOOTSTRAP_RESAMPLES,
    confidence: float = CONFIDENCE,
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean difference `final - initial`, where both are the
    outcomes of two prompts on the same questions (in the same order): questions are resampled
    with replacement, each keeping its pair. Seeded, so the same inputs give the same interval;
    identical vectors give exactly (0.0, 0.0)."""
    final_array, initial_array = _values(final, "final"), _values(initial, "initial")
    if len(final_array) != len(initial_array):
        raise ValueError(
            f"paired outcomes differ in length: {len(final_array)} final, {len(initial_array)} initial"
        )
    if len(final_array) == 0:
        raise ValueError("paired_bootstrap_interval needs at least one question")
    if resamples < 1:
        raise ValueError(f"resamples={resamples} must be >= 1")
    differences = final_array - initial_array
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(differences), size=(resamples, len(differences)))
    means = differences[picks].mean(axis=1)
    tail = (1 - confidence) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return float(low), float(high)


def _regularized_beta(x: float, a: float, b: float) -> float:
    """I_x(a, b), by the continued fraction of Numerical Recipes (modified Lentz)."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    if x > (a + 1) / (a + b + 2):  # the fraction converges fast below this point only
        return 1.0 - _regularized_beta(1 - x, b, a)
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    front = math.exp(log_front) / a
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    result = d
    for m in range(1, 400):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            result *= c * d
        if abs(c * d - 1.0) < 1e-15:
            break
    return front * result


def t_quantile(probability: float, df: int) -> float:
    """The `probability` quantile of Student's t with `df` degrees of freedom (0.5 < p < 1), by
    bisection on its distribution function."""
    if not 0.5 < probability < 1:
        raise ValueError(f"probability={probability} must be between 0.5 and 1")
    if df < 1:
        raise ValueError(f"df={df} must be >= 1")

    def upper_tail(t: float) -> float:  # P(T > t) for t >= 0
        return 0.5 * _regularized_beta(df / (df + t * t), df / 2, 0.5)

    low, high = 0.0, 1.0
    while upper_tail(high) > 1 - probability:
        high *= 2
    for _ in range(200):
        middle = (low + high) / 2
        if upper_tail(middle) > 1 - probability:
            low = middle
        else:
            high = middle
    return (low + high) / 2


def mean_interval(
    values: Sequence[float], *, confidence: float = CONFIDENCE
) -> tuple[float, float, float] | None:
    """(mean, low, high): the mean of `values` (one per (task, seed) cell) with its Student-t
    interval, mean ± t(n - 1) · s / sqrt(n). For one value the interval is the value itself
    (nothing to estimate a spread from); None for none."""
    array = _values(values, "values")
    if len(array) == 0:
        return None
    mean = float(array.mean())
    if len(array) == 1:
        return mean, mean, mean
    t = t_quantile(1 - (1 - confidence) / 2, len(array) - 1)
    half = t * float(array.std(ddof=1)) / math.sqrt(len(array))
    return mean, mean - half, mean + half


def sign_flip_p_value(differences: Sequence[float]) -> float:
    """Two-sided paired permutation (sign-flip) test of mean difference 0: the share of sign
    patterns of the differences whose |sum| is at least the observed one. No normality assumed;
    zero differences carry no sign and are left out (1.0 when none is left). Exact (every
    pattern) up to SIGN_FLIP_EXACT non-zero differences, a seeded draw beyond."""
    values = [float(d) for d in differences if d != 0]
    if not values:
        return 1.0
    observed = abs(sum(values)) - 1e-12  # float slack: the observed pattern always counts
    if len(values) <= SIGN_FLIP_EXACT:
        hits = sum(
            abs(sum(s * v for s, v in zip(signs, values))) >= observed
            for signs in itertools.product((1, -1), repeat=len(values))
        )
        return hits / 2 ** len(values)
    draw = random.Random(0)
    hits = sum(
        abs(sum(v if draw.random() < 0.5 else -v for v in values)) >= observed for _ in range(SIGN_FLIP_DRAWS)
    )
    return (hits + 1) / (SIGN_FLIP_DRAWS + 1)


def paired_comparison(
    method: Sequence[float], other: Sequence[float], *, confidence: float = CONFIDENCE
) -> dict:
    """Two methods compared over the same (task, seed) cells, `method[i]` and `other[i]` being the
    same cell's scores: the mean difference (method - other) with its Student-t interval, the
    wins / ties / losses of `method`, and the p-value of the two-sided paired permutation
    (sign-flip) test of no difference (`sign_flip_p_value`)."""
    first, second = _values(method, "method"), _values(other, "other")
    if len(first) != len(second):
        raise ValueError(f"paired scores differ in length: {len(first)} against {len(second)}")
    differences = first - second
    interval = mean_interval(differences, confidence=confidence)
    return {
        "cells": len(differences),
        "mean_difference": None if interval is None else interval[0],
        "ci_low": None if interval is None or len(differences) < 2 else interval[1],
        "ci_high": None if interval is None or len(differences) < 2 else interval[2],
        "wins": int((differences > 0).sum()),
        "ties": int((differences == 0).sum()),
        "losses": int((differences < 0).sum()),
        "p_value": sign_flip_p_value(differences.tolist()) if len(differences) else None,
    }
