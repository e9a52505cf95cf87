"""Evidence about disparities: exact estimates and tests on hand-made data, and the tests' error rates."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from evaluation._disparity import group_disparity, relative_drop, share_evidence


def test_rate_disparity_is_fishers_test_on_worst_vs_best() -> None:
    y = np.r_[np.ones(20), np.zeros(20), np.ones(36), np.zeros(4)]
    g = np.array(["A"] * 40 + ["B"] * 40)
    d = group_disparity(y, g, attribute="x", kind="rate", n_resamples=200)
    assert (d.worst, d.best, d.sizes, d.judged) == ("A", "B", {"A": 40, "B": 40}, ("A", "B"))
    assert d.ratio == pytest.approx(0.5 / 0.9)
    assert d.p_value == pytest.approx(stats.fisher_exact([[20, 20], [36, 4]]).pvalue)
    assert d.ci[0] < d.ratio < d.ci[1]
    assert d.relative == pytest.approx({"A": 0.5 / 0.9, "B": 1.0})


def test_rates_of_three_groups_are_bonferroni_adjusted_over_pairs() -> None:
    y = np.r_[np.ones(10), np.zeros(30), np.ones(25), np.zeros(15), np.ones(20), np.zeros(20)]
    g = np.array(["A"] * 40 + ["B"] * 40 + ["C"] * 40)
    d = group_disparity(y, g, attribute="x", kind="rate", n_resamples=100)
    raw = stats.fisher_exact([[10, 30], [25, 15]]).pvalue
    assert d.p_value == pytest.approx(min(1.0, 3 * raw))  # 3 pairs among 3 groups
    assert "x3 pairs" in d.test


def test_small_groups_are_reported_but_not_judged() -> None:
    values = np.r_[np.full(50, 0.5), np.full(50, 0.6), np.full(5, 0.1)]
    g = np.array(["a"] * 50 + ["b"] * 50 + ["tiny"] * 5)
    d = group_disparity(values, g, attribute="x", kind="mean", min_size=30, n_resamples=100)
    assert d.judged == ("a", "b") and d.sizes["tiny"] == 5
    assert d.ratio == pytest.approx(0.5 / 0.6)
    assert d.relative["tiny"] == pytest.approx(0.1 / 0.6)
    flat = d.flat("gate.utility_parity.x")
    assert flat["gate.utility_parity.x.n.tiny"] == 5.0
    assert flat["gate.utility_parity.x.relative.tiny"] == pytest.approx(0.1 / 0.6)


@pytest.mark.parametrize(
    ("values", "groups", "code"),
    [
        (np.zeros(80), ["a"] * 40 + ["b"] * 40, 1),  # 0/0
        (np.ones(80), ["a"] * 80, 2),  # one group
        (np.ones(45), ["a"] * 40 + ["b"] * 5, 2),  # one group large enough
    ],
)
def test_undefined_ratios_say_why(values, groups, code) -> None:
    d = group_disparity(values, np.array(groups), attribute="x", kind="rate", n_resamples=100)
    assert d.undefined == code and np.isnan(d.ratio)
    assert "gate.x.ratio" not in d.flat("gate.x") and d.flat("gate.x")["gate.x.undefined"] == code


def test_identical_groups_give_ratio_one_and_p_one() -> None:
    values = np.tile(np.linspace(0, 1, 50), 2)
    g = np.array(["a"] * 50 + ["b"] * 50)
    d = group_disparity(values, g, attribute="x", kind="mean", n_resamples=200)
    assert d.ratio == pytest.approx(1.0) and d.p_value == 1.0


def test_separated_groups_give_the_smallest_p_value() -> None:
    rng = np.random.default_rng(1)
    values = np.r_[rng.uniform(0.0, 0.3, 60), rng.uniform(0.7, 1.0, 60)]
    g = np.array(["low"] * 60 + ["high"] * 60)
    d = group_disparity(values, g, attribute="x", kind="mean", n_resamples=500)
    assert d.worst == "low" and d.p_value == pytest.approx(1 / 501)


def test_seeded_and_deterministic() -> None:
    rng = np.random.default_rng(0)
    values, g = rng.random(300), rng.choice(["a", "b", "c"], 300)
    one = group_disparity(values, g, attribute="x", kind="mean", random_state=7, n_resamples=300)
    two = group_disparity(values, g, attribute="x", kind="mean", random_state=7, n_resamples=300)
    assert one == two


def test_the_permutation_test_holds_its_level_under_no_difference() -> None:
    # 60 null data sets (groups of 120 and 80 from one distribution): rejections at 0.05 stay near 5%.
    rejections = 0
    for seed in range(60):
        rng = np.random.default_rng(seed)
        values = rng.beta(2, 5, 200)
        g = np.array(["a"] * 120 + ["b"] * 80)
        rejections += group_disparity(values, g, attribute="x", kind="mean", n_resamples=199,
                                      random_state=seed).p_value < 0.05
    assert rejections <= 8  # binomial(60, 0.05): P(X > 8) < 1%


def test_large_data_uses_the_normal_limit_with_the_same_answer() -> None:
    rng = np.random.default_rng(3)
    values = np.r_[rng.beta(2, 5, 6000), rng.beta(2, 4, 6000)]
    g = np.array(["a"] * 6000 + ["b"] * 6000)
    exact = group_disparity(values, g, attribute="x", kind="mean", n_resamples=500)
    limit = group_disparity(values, g, attribute="x", kind="mean", n_resamples=5000)  # over the exact limit
    assert exact.ratio == limit.ratio
    assert limit.ci == pytest.approx(exact.ci, abs=0.01)


def test_relative_drop_and_its_test() -> None:
    before = np.ones(200)
    after = np.r_[np.full(100, 0.9), np.ones(100)]
    e = relative_drop(before, after, tolerance=0.02, n_resamples=500)
    assert e.drop == pytest.approx(0.05) and e.n == 200
    assert e.ci[0] < 0.05 < e.ci[1] and e.p_value < 0.01
    within = relative_drop(before, after, tolerance=0.10, n_resamples=500)
    assert within.p_value > 0.5


def test_share_evidence_by_hand() -> None:
    part, whole = np.array([0.0, 1.0, 1.0, 0.0] * 50), np.full(200, 2.0)
    e = share_evidence(part, whole, floor=0.3, n_resamples=500)
    assert e.share == pytest.approx(0.25) and e.ci[0] < 0.25 < e.ci[1]
    assert e.p_value < 0.05  # clearly below 0.3
    assert share_evidence(part, whole, floor=0.2, n_resamples=500).p_value > 0.5


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: group_disparity(np.ones(3), np.array(["a", "b"]), attribute="x", kind="mean"), "same length"),
        (lambda: group_disparity(np.array([0.5, 1.0]), np.array(["a", "b"]), attribute="x", kind="rate"),
         "0/1 outcomes"),
        (lambda: group_disparity(np.array([np.nan, 1.0]), np.array(["a", "b"]), attribute="x", kind="mean"),
         "finite numbers"),
        (lambda: group_disparity(np.ones(2), np.array(["a", "b"]), attribute="x", kind="mean", min_size=0),
         "min_size: expected a positive integer, got 0"),
    ],
)
def test_bad_input_is_named(call, message) -> None:
    with pytest.raises(ValueError, match=message):
        call()
