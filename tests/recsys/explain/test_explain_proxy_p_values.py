"""The p-values behind proxy detection: Mann-Whitney U, asymptotic and, on 0/1 columns, exact."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import fisher_exact, mannwhitneyu, norm, rankdata

from recsys.explain._reliance import (
    _binary_p_values,
    _binary_u_test_p_values,
    _exact_binary_p_values,
    _tie_term,
    _u_test_p_values,
)


def _columns(seed: int, n: int = 60) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.column_stack([
        rng.normal(size=n),                      # no ties
        rng.integers(0, 4, n).astype(float),     # heavy ties
        rng.integers(0, 2, n).astype(float),     # binary
        rng.normal(size=n).round(1),             # some ties
        np.r_[np.zeros(n - 3), 1.0, 2.0, 3.0],   # a long tie and a few distinct values
        np.full(n, 7.0),                         # constant
    ])


def test_tie_term_hand_worked():
    X = np.array([[1.0, 0.0, 5.0], [1.0, 1.0, 5.0], [2.0, 2.0, 5.0], [3.0, 3.0, 5.0],
                  [3.0, 4.0, 5.0], [3.0, 5.0, 5.0]])
    # column 0: ties of 2 and 3 -> (8 - 2) + (27 - 3) = 30; column 1: none; column 2: one of 6
    assert _tie_term(X).tolist() == [30.0, 0.0, 210.0]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_u_test_p_values_equal_scipy_asymptotic_with_continuity(seed):
    X = _columns(seed)
    labels = np.random.default_rng(seed + 10).integers(0, 3, X.shape[0])
    ranks, ties = rankdata(X, axis=0), _tie_term(X)
    for g in range(3):
        positive = labels == g
        n1, n2 = int(positive.sum()), int((~positive).sum())
        u = ranks[positive].sum(axis=0) - n1 * (n1 + 1) / 2
        expected = mannwhitneyu(X[positive], X[~positive], axis=0, method="asymptotic").pvalue
        np.testing.assert_allclose(_u_test_p_values(u, n1, n2, ties), expected, rtol=1e-12)
    assert _u_test_p_values(np.array([32.0]), 8, 8, np.array([16.0**3 - 16])).tolist() == [1.0]


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_binary_closed_form_equals_scipy_on_the_dense_column(seed):
    rng = np.random.default_rng(seed)
    n = 300
    labels = rng.integers(0, 3, n)
    X = (rng.random((n, 12)) < rng.uniform(0.02, 0.9, 12)).astype(float)
    X[:, 0] = 0.0  # nobody holds it: p = 1, as in scipy
    for g in range(3):
        positive = labels == g
        a, n_g, k = X[positive].sum(axis=0), int(positive.sum()), X.sum(axis=0)
        expected = mannwhitneyu(X[positive], X[~positive], axis=0, method="asymptotic").pvalue
        got = _binary_u_test_p_values(a.astype(int), np.full(12, n_g), k.astype(int), n)
        np.testing.assert_allclose(got, expected, rtol=1e-10)


def test_binary_closed_form_is_the_pooled_two_proportion_z_test_hand_worked():
    # 100 users, 50 in the group; 35 of them and 15 of the rest hold the item
    # p_g = 0.7, p_r = 0.3, pooled 0.5: z0 = 0.4 / sqrt(0.25 * (1/50 + 1/50)) = 4;
    # U's z is z0 * sqrt(99 / 100) less the continuity 1/n over sd(a) = sqrt(50^4 / (100^2 * 99))
    z = 4 * np.sqrt(0.99) - 0.01 / np.sqrt(50**4 / (100**2 * 99))
    got = _binary_u_test_p_values(np.array([35]), np.array([50]), np.array([50]), 100)
    assert got[0] == pytest.approx(2 * norm.sf(z), rel=1e-12)


def test_exact_branch_hand_worked():
    # 4 of 4 F and 0 of 4 M hold the item: P(a = 4) = 1 / C(8, 4) = 1/70, doubled
    assert _exact_binary_p_values(np.array([4]), np.array([4]), np.array([4]), 8)[0] == (
        pytest.approx(2 / 70, rel=1e-12)
    )
    # the expected a is 2: both tails hold at least half the mass, so p = 1
    assert _exact_binary_p_values(np.array([2]), np.array([4]), np.array([4]), 8)[0] == 1.0


@pytest.mark.parametrize(("a", "n_g", "k", "n"), [
    (3, 7, 10, 943), (0, 9, 40, 943), (5, 273, 5, 943), (1, 12, 2, 50), (6, 6, 30, 100),
])
def test_exact_branch_is_the_doubled_one_sided_fisher_test(a, n_g, k, n):
    table = [[a, n_g - a], [k - a, n - n_g - k + a]]
    one_sided = min(fisher_exact(table, alternative="greater").pvalue,
                    fisher_exact(table, alternative="less").pvalue)
    got = _exact_binary_p_values(np.array([a]), np.array([n_g]), np.array([k]), n)[0]
    assert got == pytest.approx(min(1.0, 2 * one_sided), rel=1e-9)


def test_the_exact_branch_is_taken_below_five_expected_users_per_cell():
    # 100 users, 50 in the group: the smallest expected count is k * 50 / 100
    a, n_g = np.array([8, 7]), np.array([50, 50])
    k = np.array([10, 9])  # expected 5.0 (normal) and 4.5 (exact)
    got = _binary_p_values(a, n_g, k, 100)
    assert got[0] == _binary_u_test_p_values(a[:1], n_g[:1], k[:1], 100)[0]
    assert got[1] == _exact_binary_p_values(a[1:], n_g[1:], k[1:], 100)[0]
