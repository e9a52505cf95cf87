"""Proxy detection asks for significance (Bonferroni-corrected U test) as well as effect size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.stats import mannwhitneyu
from sklearn.metrics import roc_auc_score

from recsys.data import load_movielens_100k
from recsys.explain import detect_item_proxies, detect_proxies

# group sizes of MovieLens 100K's occupations, doubled, the largest topped up to 2000 users
_OCCUPATION_LIKE = np.array([14, 14, 18, 24, 24, 28, 32, 36, 52, 54, 56, 62, 64, 90, 102, 132,
                             134, 158, 190, 210, 506])


def _smallest_p(x: np.ndarray, labels: np.ndarray, threshold: float) -> float:
    """scipy's smallest U-test p-value over the groups whose direction-free AUC passes."""
    ps = []
    for g in np.unique(labels):
        auc = roc_auc_score(labels == g, x)
        if max(auc, 1 - auc) >= threshold:
            ps.append(mannwhitneyu(x[labels == g], x[labels != g], method="asymptotic").pvalue)
    return min(ps)


# ------------------------------------------------------------ real proxies
def test_a_strong_proxy_in_a_large_sample_is_detected():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.array(["F", "M"]), 1000)
    proxy = (labels == "F") * 0.5 + rng.normal(size=2000)  # AUC ~0.64
    X = np.column_stack([proxy, rng.normal(size=2000)])
    assert detect_proxies(X, labels, ["proxy", "noise"]) == {"proxy"}
    # an item 50% of F and 25% of M hold (AUC 0.625), among 100 unrelated items
    held = rng.random((2000, 101)) < 0.3
    held[:, 0] = rng.random(2000) < np.where(labels == "F", 0.5, 0.25)
    assert detect_item_proxies(sp.csr_matrix(held), labels).tolist() == [0]


def test_a_significant_but_weak_relation_is_not_a_proxy():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.array(["F", "M"]), 10_000)
    x = (labels == "F") * 0.15 + rng.normal(size=20_000)
    assert mannwhitneyu(x[labels == "F"], x[labels == "M"]).pvalue < 1e-20
    assert roc_auc_score(labels == "F", x) < 0.6
    assert detect_proxies(x[:, None], labels, ["x"]) == set()


# ------------------------------------------------------------ chance proxies
def test_a_chance_proxy_in_a_tiny_sample_needs_alpha_none():
    labels = np.array(list("FFFFMMMM"))
    x = np.array([3.0, 1.0, 4.0, 1.5, 2.0, 0.0, 0.5, 2.5])  # 12 of the 16 F-M pairs in order
    assert roc_auc_score(labels == "F", x) == 0.75
    assert detect_proxies(x[:, None], labels, ["x"], alpha=None) == {"x"}
    assert detect_proxies(x[:, None], labels, ["x"]) == set()  # p = 0.31


def test_an_item_all_four_women_and_no_man_hold_is_not_enough_evidence():
    labels = np.array(list("FFFFMMMM"))
    held = sp.csr_matrix(np.repeat([[1.0], [0.0]], 4, axis=0))  # AUC 1
    # exact p = 2 * P(a = 4) = 2 / C(8, 4) = 2 / 70 = 0.0286
    assert detect_item_proxies(held, labels, alpha=None).tolist() == [0]
    assert detect_item_proxies(held, labels).tolist() == []
    assert detect_item_proxies(held, labels, alpha=0.029).tolist() == [0]
    assert detect_item_proxies(held, labels, alpha=0.028).tolist() == []


def test_random_items_of_2000_users_have_no_proxies():
    rng = np.random.default_rng(0)
    labels = rng.permutation(np.repeat(np.arange(_OCCUPATION_LIKE.size), _OCCUPATION_LIKE))
    assert labels.size == 2000
    held = sp.csr_matrix(rng.random((2000, 500)) < rng.uniform(0.01, 0.3, 500))
    assert detect_item_proxies(held, labels, alpha=None).size > 20  # small groups, by chance
    assert detect_item_proxies(held, labels, alpha=0.01).size == 0


def test_random_features_of_30_rows_have_no_proxies():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 200))
    labels = np.repeat(np.array(["F", "M"]), 15)
    names = [f"x{j}" for j in range(200)]
    assert len(detect_proxies(X, labels, names, alpha=None)) > 40  # AUC >= 0.6 by chance
    assert detect_proxies(X, labels, names, alpha=0.01) == set()


# ------------------------------------------------------------ Bonferroni
@pytest.mark.parametrize("n_groups", [2, 3])
def test_bonferroni_counts_every_feature_and_group(n_groups):
    # m = n_features with two groups (F vs rest is M vs rest), n_features * n_groups otherwise
    rng = np.random.default_rng(3)
    labels = np.repeat(np.arange(n_groups), 20)
    x = (labels == 0) * 1.2 + rng.normal(size=labels.size)
    p = _smallest_p(x, labels, 0.6)
    tests_per_feature = 1 if n_groups == 2 else n_groups
    alone, among = x[:, None], np.column_stack([x, np.zeros((labels.size, 9))])
    names = [f"x{j}" for j in range(10)]
    for X, m in ((alone, tests_per_feature), (among, 10 * tests_per_feature)):
        assert m * p < 1
        assert detect_proxies(X, labels, names[: X.shape[1]], alpha=m * p * 1.000001) == {"x0"}
        assert detect_proxies(X, labels, names[: X.shape[1]], alpha=m * p * 0.999999) == set()
    # detected alone at an alpha where the same column among ten is not
    assert detect_proxies(alone, labels, ["x0"], alpha=2 * tests_per_feature * p) == {"x0"}
    assert detect_proxies(among, labels, names, alpha=2 * tests_per_feature * p) == set()


def test_bonferroni_over_items_hand_worked():
    # the item of the test above (p = 2/70) among nine items nobody holds: p <= alpha / 10
    labels = np.array(list("FFFFMMMM"))
    held = sp.csr_matrix(np.column_stack([np.repeat([1.0, 0.0], 4), np.zeros((8, 9))]))
    assert detect_item_proxies(held, labels, alpha=0.029).tolist() == []
    assert detect_item_proxies(held, labels, alpha=0.29).tolist() == [0]
    assert detect_item_proxies(held, labels, alpha=0.28).tolist() == []
    # three groups: 30 tests, and the F-vs-rest p-value is 2 * P(a = 4) = 2 / C(12, 4) = 2/495
    three = np.array(list("FFFFMMMMXXXX"))
    held3 = sp.csr_matrix(np.column_stack([np.repeat([1.0, 0.0, 0.0], 4), np.zeros((12, 9))]))
    assert detect_item_proxies(held3, three, alpha=30 * 2 / 495 * 1.000001).tolist() == [0]
    assert detect_item_proxies(held3, three, alpha=30 * 2 / 495 * 0.999999).tolist() == []


# ------------------------------------------------------------ alpha
@pytest.mark.parametrize("alpha", [0, 1, 1.5, -0.01, float("nan"), "0.01", True])
def test_alpha_is_checked(alpha):
    message = rf"alpha: expected None \(effect size only\) or a number in \(0, 1\), got {alpha!r}"
    labels = np.array(list("FFMM"))
    with pytest.raises(ValueError, match=message):
        detect_proxies(np.zeros((4, 1)), labels, ["a"], alpha=alpha)
    with pytest.raises(ValueError, match=message):
        detect_item_proxies(sp.csr_matrix(np.eye(4)), labels, alpha=alpha)


# ------------------------------------------------------------ MovieLens 100K
@pytest.mark.ml100k
def test_movielens_100k_item_proxies_before_and_after_the_test(ml100k_dir: Path):
    ds = load_movielens_100k(ml100k_dir)
    found = {
        (attribute, alpha): detect_item_proxies(
            ds.interactions.matrix, ds.users[attribute].to_numpy(), alpha=alpha
        ).size
        for attribute in ("gender", "age_group", "occupation")
        for alpha in (None, 0.01)
    }
    assert found == {
        ("gender", None): 0, ("gender", 0.01): 0,
        ("age_group", None): 38, ("age_group", 0.01): 2,  # Scream, Chasing Amy (18-24)
        ("occupation", None): 218, ("occupation", 0.01): 1,  # Scream (students)
    }
