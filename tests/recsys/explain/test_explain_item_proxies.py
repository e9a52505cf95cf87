"""History items that are proxies of a sensitive attribute (closed-form AUC and U test)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from recsys.explain import detect_item_proxies, detect_proxies


def test_hand_worked_rates():
    # item 0: F 2/2, M 0/3 -> AUC 1; item 1: F 1/2, M 3/3 -> 0.75; item 2: F 0/2, M 1/3 -> 0.667
    X = sp.csr_matrix(np.array([
        [1, 1, 0], [1, 0, 0], [0, 1, 1], [0, 1, 0], [0, 1, 0],
    ]))
    labels = np.array(["F", "F", "M", "M", "M"])
    # the effect-size boundary alone: five users show nothing significant
    assert detect_item_proxies(X, labels, threshold=0.76, alpha=None).tolist() == [0]
    assert detect_item_proxies(X, labels, threshold=0.75, alpha=None).tolist() == [0, 1]
    assert detect_item_proxies(X, labels, threshold=0.66, alpha=None).tolist() == [0, 1, 2]
    assert detect_item_proxies(X, labels, threshold=0.66).tolist() == []


def test_stored_values_do_not_matter_only_presence():
    X = sp.csr_matrix(np.array([[5.0, 0.5], [2.0, 0.0], [0.0, 4.0], [0.0, 1.0]]))
    labels = np.array(["F", "F", "M", "M"])
    binary = sp.csr_matrix((X.toarray() > 0).astype(float))
    # alpha=None: four users are never significant, and [] == [] would show nothing
    got = detect_item_proxies(X, labels, alpha=None).tolist()
    assert got == detect_item_proxies(binary, labels, alpha=None).tolist() == [0, 1]


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n_groups=st.integers(2, 4),
    threshold=st.floats(0.5, 1.0),
)
def test_agrees_with_detect_proxies_on_the_dense_binary_columns(seed, n_groups, threshold):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, n_groups, 30)
    labels[:n_groups] = np.arange(n_groups)  # every group present
    X = (rng.random((30, 8)) < rng.random(8)).astype(np.float64)
    names = [str(j) for j in range(8)]
    # the AUC criterion alone (on 30 rows the two tests differ: exact here, normal there)
    expected = detect_proxies(X, labels, names, threshold=threshold, alpha=None)
    got = detect_item_proxies(sp.csr_matrix(X), labels, threshold=threshold, alpha=None).tolist()
    assert got == sorted(int(n) for n in expected)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), n_groups=st.integers(2, 3))
def test_agrees_with_detect_proxies_where_the_normal_approximation_is_used(seed, n_groups):
    # 600 users, groups of 200, rates in [0.1, 0.9]: every expected count is at least 5
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(n_groups), 200)
    rates = rng.uniform(0.1, 0.9, (n_groups, 40))
    X = (rng.random((labels.size, 40)) < rates[labels]).astype(np.float64)
    holders = X.sum(axis=0)
    assert (200 * np.minimum(holders, labels.size - holders) / labels.size >= 5).all()
    names = [str(j) for j in range(40)]
    expected = detect_proxies(X, labels, names, alpha=0.01)
    got = detect_item_proxies(sp.csr_matrix(X), labels, alpha=0.01).tolist()
    assert got == sorted(int(n) for n in expected)
    assert got  # rates this far apart make some items proxies


def test_inputs_are_checked():
    X = sp.csr_matrix(np.eye(4))
    with pytest.raises(TypeError, match="user_items: expected a scipy sparse users x items matrix"):
        detect_item_proxies(np.eye(4), np.array(list("FFMM")))
    with pytest.raises(ValueError, match=r"sensitive_labels: expected one label per user \(shape \(4,\)\)"):
        detect_item_proxies(X, np.array(list("FFM")))
    with pytest.raises(ValueError, match="sensitive_labels: expected at least two groups"):
        detect_item_proxies(X, np.array(list("FFFF")))
    with pytest.raises(ValueError, match=r"threshold: expected a number in \[0.5, 1\], got 1.5"):
        detect_item_proxies(X, np.array(list("FFMM")), threshold=1.5)
    with pytest.raises(ValueError, match=r"alpha: expected None \(effect size only\) or a number "
                                         r"in \(0, 1\), got 0"):
        detect_item_proxies(X, np.array(list("FFMM")), alpha=0)
