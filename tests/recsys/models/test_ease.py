"""EASE: B against a hand-inverted example and a numpy computation."""

from __future__ import annotations

import re

import numpy as np
import pytest
import scipy.sparse as sp

from recsys.errors import DataError
from recsys.models import EASE

# item users: item 0 -> {0, 1, 2}, item 1 -> {0, 2}, item 2 -> {2, 3}
X = sp.csr_matrix(np.array([[1, 1, 0], [1, 0, 0], [1, 1, 1], [0, 0, 1]], dtype=np.float32))
# G = XᵀX + I = [[4, 2, 1], [2, 3, 1], [1, 1, 3]], det 21,
# P = G⁻¹ = [[8, -5, -1], [-5, 11, -2], [-1, -2, 8]] / 21, B_ij = -P_ij / P_jj
B_HAND = np.array([[0, 5 / 11, 1 / 8], [5 / 8, 0, 1 / 4], [1 / 8, 2 / 11, 0]])


def test_b_matches_the_hand_computed_inverse() -> None:
    model = EASE(l2=1.0).fit(X)
    assert model.B_.dtype == np.float32
    np.testing.assert_allclose(model.B_, B_HAND, rtol=1e-6)
    assert np.all(np.diag(model.B_) == 0)


def test_recommend_scores_are_history_times_b() -> None:
    ids, scores = EASE(l2=1.0).fit(X).recommend([1, 3], k=2)
    assert ids.tolist() == [[1, 2], [1, 0]]
    np.testing.assert_allclose(scores, [[5 / 11, 1 / 8], [2 / 11, 1 / 8]], rtol=1e-6)


def test_b_matches_numpy_on_random_data() -> None:
    rng = np.random.default_rng(0)
    dense = (rng.random((50, 12)) < 0.3).astype(np.float64)
    P = np.linalg.inv(dense.T @ dense + 7.0 * np.eye(12))
    expected = -P / np.diag(P)
    np.fill_diagonal(expected, 0.0)
    model = EASE(l2=7.0).fit(sp.csr_matrix(dense))
    np.testing.assert_allclose(model.B_, expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(model._score(np.arange(50)), dense @ expected, rtol=1e-4, atol=1e-6)


def test_binary_ignores_weights_unless_switched_off() -> None:
    weighted = X.copy()
    weighted.data *= np.arange(1, weighted.nnz + 1, dtype=np.float32)
    np.testing.assert_array_equal(EASE(l2=1.0).fit(weighted).B_, EASE(l2=1.0).fit(X).B_)
    assert not np.allclose(EASE(l2=1.0, binary=False).fit(weighted).B_, B_HAND)


@pytest.mark.parametrize(
    ("l2", "message"),
    [
        (0.0, "l2 == 0.0, must be > 0.0."),
        (-1.0, "l2 == -1.0, must be > 0.0."),
        (float("nan"), "l2: expected a finite number > 0, got nan"),
    ],
)
def test_l2_must_be_positive(l2: float, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        EASE(l2=l2).fit(X)


def test_binary_must_be_a_bool() -> None:
    with pytest.raises(TypeError, match=re.escape("binary: expected a bool, got 'yes'")):
        EASE(binary="yes").fit(X)


def test_refuses_more_items_than_max_items() -> None:
    message = (
        "X: EASE inverts a dense n_items x n_items matrix; n_items=3 needs about 0.0 GiB of "
        "memory, above max_items=2."
    )
    with pytest.raises(DataError, match=re.escape(message)):
        EASE(max_items=2).fit(X)
