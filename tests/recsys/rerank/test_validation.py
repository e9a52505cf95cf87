"""validation_candidates: candidate lists from a split of the training data, with their relevance."""

from __future__ import annotations

import re

import numpy as np
import pytest
import scipy.sparse as sp

from recsys.models import EASE, Popularity
from recsys.rerank import validation_candidates


@pytest.fixture(scope="module")
def X() -> sp.csr_matrix:
    rng = np.random.default_rng(0)
    return sp.csr_matrix((rng.random((30, 25)) < 0.4).astype(np.float32))


def test_relevant_marks_exactly_the_held_out_interactions(X: sp.csr_matrix) -> None:
    # with every item a candidate, the candidates are the items outside the kept part, so a
    # candidate is relevant exactly when it is a training interaction of the user
    vc = validation_candidates(lambda m: Popularity().fit(m), X, n_candidates=X.shape[1],
                               holdout_fraction=0.2, random_state=3)
    dense = X.toarray() > 0
    valid = vc.ids >= 0
    np.testing.assert_array_equal(vc.relevant, valid & dense[vc.users[:, None], np.where(valid, vc.ids, 0)])
    counts = dense.sum(axis=1)[vc.users]
    # random_holdout's rule: round half up, at least one interaction kept
    np.testing.assert_array_equal(vc.relevant.sum(axis=1), np.minimum(np.floor(0.2 * counts + 0.5), counts - 1))
    assert set(vc.users.tolist()) == set(np.flatnonzero(np.floor(0.2 * dense.sum(axis=1) + 0.5) > 0).tolist())


def test_the_model_is_fitted_on_the_kept_part_only(X: sp.csr_matrix) -> None:
    fitted = []

    def fit(m: sp.csr_matrix) -> EASE:
        fitted.append(m)
        return EASE(l2=10.0).fit(m)

    vc = validation_candidates(fit, X, n_candidates=5, random_state=1)
    (kept,) = fitted
    assert kept.nnz + int(vc.relevant.sum()) <= X.nnz  # held-out items are not in the fit
    assert (kept.multiply(X) != kept).nnz == 0  # a subset of X
    again = validation_candidates(lambda m: EASE(l2=10.0).fit(m), X, n_candidates=5, random_state=1)
    np.testing.assert_array_equal(again.ids, vc.ids)  # seeded


def test_bad_n_candidates_is_named(X: sp.csr_matrix) -> None:
    with pytest.raises(ValueError, match=re.escape("n_candidates: expected a positive integer, got 0")):
        validation_candidates(lambda m: Popularity().fit(m), X, n_candidates=0)
