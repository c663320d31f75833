import math

import pytest

from gpo_local.stats import (
    mean_interval,
    paired_bootstrap_interval,
    paired_comparison,
    sign_flip_p_value,
    standard_error,
    t_quantile,
)


def test_standard_error_by_hand():
    # mean 0.5, sample variance (4 * 0.25) / 3 = 1/3, so se = sqrt(1/3) / 2.
    assert standard_error([1, 0, 1, 0]) == pytest.approx(math.sqrt(1 / 3) / 2)
    assert standard_error([1, 1, 1]) == 0.0
    assert standard_error([1]) is None and standard_error([]) is None


def test_bootstrap_of_identical_outcomes_is_exactly_zero():
    outcomes = [1, 0, 1, 1, 0, 0, 1, 0, 1, 1]
    assert paired_bootstrap_interval(outcomes, outcomes, seed=3) == (0.0, 0.0)


def test_bootstrap_of_a_constant_gain_is_that_gain():
    assert paired_bootstrap_interval([1, 1, 1, 1], [0, 0, 0, 0]) == (1.0, 1.0)


def test_bootstrap_small_case_by_hand():
    # Differences (1, 0): a resample's mean is 0, 0.5 or 1 with probabilities 1/4, 1/2, 1/4, so the
    # 2.5% and 97.5% quantiles are 0 and 1.
    assert paired_bootstrap_interval([1, 0], [0, 0]) == (0.0, 1.0)


def test_bootstrap_of_a_fixed_vector_gives_a_fixed_interval():
    # 40 test questions: the final prompt right on 24, the initial on 10, 8 of them in common.
    final = [1] * 24 + [0] * 16
    initial = [1] * 8 + [0] * 16 + [1] * 2 + [0] * 14
    low, high = paired_bootstrap_interval(final, initial, seed=0)
    assert (low, high) == paired_bootstrap_interval(final, initial, seed=0)  # seeded
    assert (round(low, 4), round(high, 4)) == (0.175, 0.525)
    assert low < (24 - 10) / 40 < high
    # With few resamples the quantiles fall between grid points, and the seed shows.
    few = [paired_bootstrap_interval(final, initial, seed=seed, resamples=20) for seed in (0, 1)]
    assert [(round(a, 6), round(b, 6)) for a, b in few] == [(0.211875, 0.47625), (0.17125, 0.514375)]


def test_bootstrap_refuses_unpaired_vectors():
    with pytest.raises(ValueError, match="differ in length"):
        paired_bootstrap_interval([1, 0], [1])


def test_t_quantiles_match_the_tables():
    assert t_quantile(0.975, 1) == pytest.approx(12.7062, abs=1e-4)
    assert t_quantile(0.975, 2) == pytest.approx(4.3027, abs=1e-4)
    assert t_quantile(0.975, 14) == pytest.approx(2.1448, abs=1e-4)
    assert t_quantile(0.975, 1000) == pytest.approx(1.9623, abs=1e-4)


def test_mean_interval_by_hand():
    # mean 2, s = 1, n = 3: 2 ± 4.3027 / sqrt(3).
    mean, low, high = mean_interval([1, 2, 3])
    assert mean == 2 and low == pytest.approx(2 - 4.30265 / math.sqrt(3), abs=1e-4)
    assert high == pytest.approx(2 + 4.30265 / math.sqrt(3), abs=1e-4)
    assert mean_interval([0.4]) == (0.4, 0.4, 0.4) and mean_interval([]) is None


def test_paired_comparison_by_hand():
    method = [0.5, 0.6, 0.7, 0.4]
    other = [0.3, 0.6, 0.4, 0.5]  # differences 0.2, 0, 0.3, -0.1
    result = paired_comparison(method, other)
    assert (result["cells"], result["wins"], result["ties"], result["losses"]) == (4, 2, 1, 1)
    assert result["mean_difference"] == pytest.approx(0.1)
    # s of (0.2, 0, 0.3, -0.1) = sqrt(0.1 / 3); t(0.975, 3) = 3.1824.
    half = 3.18245 * math.sqrt(0.1 / 3) / 2
    assert result["ci_low"] == pytest.approx(0.1 - half, abs=1e-4)
    assert result["ci_high"] == pytest.approx(0.1 + half, abs=1e-4)
    # Non-zero differences 0.2, 0.3, -0.1 (sum 0.4): |sum| >= 0.4 for (+,+,-), (+,+,+) and their
    # negations, 4 of 8 patterns.
    assert result["p_value"] == pytest.approx(4 / 8)


def test_paired_comparison_of_equal_methods():
    result = paired_comparison([0.5, 0.5], [0.5, 0.5])
    assert (result["mean_difference"], result["ci_low"], result["ci_high"]) == (0.0, 0.0, 0.0)
    assert (result["ties"], result["p_value"]) == (2, 1.0)


def test_sign_flip_p_value_exact_and_sampled():
    assert sign_flip_p_value([0.1, 0.1, 0.1]) == pytest.approx(2 / 8)
    assert sign_flip_p_value([3, 1, -1]) == pytest.approx(6 / 8)
    many = [1.0] * 20
    assert sign_flip_p_value(many) == sign_flip_p_value(many) < 0.001
