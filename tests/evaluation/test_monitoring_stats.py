"""Drift statistics of the served-list monitor: exact hand-worked values and properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evaluation._monitoring import (
    RatioMoments,
    mix_test,
    population_stability_index,
    proportion_interval,
    ratio_difference,
)


def test_psi_hand_worked() -> None:
    # shares (0.5, 0.5) -> (0.8, 0.2): 0.3 ln(1.6) + (-0.3) ln(0.4)
    expected = 0.3 * math.log(1.6) - 0.3 * math.log(0.4)
    assert population_stability_index([5, 5], [8, 2]) == pytest.approx(expected, abs=1e-12)


def test_psi_floor_keeps_empty_category_finite() -> None:
    value = population_stability_index([1, 1], [1, 0], floor=1e-4)
    assert value == pytest.approx(0.5 * math.log(2) + (1e-4 - 0.5) * math.log(1e-4 / 0.5), abs=1e-9)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(1, 100), min_size=2, max_size=8), st.integers(0, 1000))
def test_psi_non_negative_symmetric_zero_on_same(counts: list[int], seed: int) -> None:
    other = np.random.default_rng(seed).permutation(counts)
    a, b = population_stability_index(counts, other), population_stability_index(other, counts)
    assert a >= 0 and a == pytest.approx(b)
    assert population_stability_index(counts, [3 * c for c in counts]) == pytest.approx(0.0, abs=1e-12)


def test_psi_errors_name_parameter() -> None:
    with pytest.raises(ValueError, match="observed: expected 2 categories like expected, got 3"):
        population_stability_index([1, 1], [1, 1, 1])
    with pytest.raises(ValueError, match="expected: expected a non-empty 1-D array"):
        population_stability_index([-1, 1], [1, 1])


def test_mix_test_hand_worked_contingency() -> None:
    # scaled table [[50, 50], [90, 10]]: E = 70, 30 per row; chi2 = 2 (400/70 + 400/30)
    stat, p = mix_test([5, 5], [9, 1], n_reference=100, n_observed=100)
    assert stat == pytest.approx(2 * (400 / 70 + 400 / 30))
    assert p < 1e-8


def test_mix_test_scales_to_lists_not_items() -> None:
    # same shares, ten times the items but the same lists: same statistic
    a = mix_test([5, 5], [9, 1], n_reference=20, n_observed=20)
    b = mix_test([50, 50], [90, 10], n_reference=20, n_observed=20)
    assert a == pytest.approx(b)


def test_mix_test_drops_categories_empty_in_both() -> None:
    assert mix_test([5, 5, 0], [9, 1, 0], n_reference=10, n_observed=10) == pytest.approx(
        mix_test([5, 5], [9, 1], n_reference=10, n_observed=10))


def test_ratio_moments_add_like_concatenation() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.random(50), rng.random(50) + 1
    whole = RatioMoments.of(a, b)
    parts = RatioMoments.of(a[:20], b[:20]) + RatioMoments.of(a[20:], b[20:])
    np.testing.assert_allclose(whole.as_array(), parts.as_array())


def test_ratio_interval_constant_denominator_is_mean_interval() -> None:
    # b constant: R is the mean of a; variance = s^2 / n
    a = np.array([0.0, 1.0, 2.0, 3.0])
    m = RatioMoments.of(a, np.ones(4))
    assert m.ratio == 1.5
    assert m.variance() == pytest.approx(np.var(a, ddof=1) / 4)
    iv = m.interval(0.95)
    assert iv.high - iv.estimate == pytest.approx(1.959963984540054 * math.sqrt(np.var(a, ddof=1) / 4))


def test_ratio_difference_and_outside() -> None:
    ref = RatioMoments.of(np.array([1.0, 0.0] * 50), np.ones(100))
    same = ratio_difference(ref, ref)
    assert same.estimate == 0.0 and not same.outside(0.0)
    # variance of each: 0.25 * 100/99 / 100
    half = 1.959963984540054 * math.sqrt(2 * 0.25 * 100 / 99 / 100)
    assert same.high == pytest.approx(half)
    dropped = ratio_difference(RatioMoments.of(np.zeros(100), np.ones(100)), ref)
    assert dropped.outside(0.3) and not dropped.outside(0.6)


def test_proportion_interval_wilson() -> None:
    iv = proportion_interval(3, 10)
    z = 1.959963984540054
    centre = (3 + z * z / 2) / (10 + z * z)
    half = z / (10 + z * z) * math.sqrt(10 * 0.3 * 0.7 + z * z / 4)
    assert iv.low == pytest.approx(centre - half) and iv.high == pytest.approx(centre + half)
    assert math.isnan(proportion_interval(0, 0).estimate)
    with pytest.raises(ValueError, match="successes, n: expected integers with 0 <= successes <= n, got 4, 3"):
        proportion_interval(4, 3)
    with pytest.raises(ValueError, match="confidence: expected a number strictly between 0 and 1, got 1.5"):
        proportion_interval(1, 3, confidence=1.5)
