"""History LIME: lime's ridge surrogate over perturbed histories."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recsys.explain import HistoryLimeExplainer, ScoresHistory
from recsys.models import EASE, Recommender

PLANTED = 3


class PlantedModel(Recommender):
    """score = sqrt(sum of history weights), item 3 weighing 5 and every other item 0.1."""

    def _fit(self, X: sp.csr_matrix) -> None:
        self.w_ = np.full(X.shape[1], 0.1)
        self.w_[PLANTED] = 5.0

    def score_history(self, history: sp.csr_matrix, items: np.ndarray) -> np.ndarray:
        s = np.sqrt(np.asarray(history @ self.w_, dtype=np.float64).reshape(-1))
        return np.repeat(s[:, None], len(items), axis=1)

    def _score(self, users: np.ndarray) -> np.ndarray:
        return self.score_history(self.user_items_[users], np.arange(self.n_items_))


@pytest.fixture(scope="module")
def planted() -> PlantedModel:
    X = sp.csr_matrix((np.random.default_rng(0).random((20, 15)) < 0.6).astype(np.float32))
    X[0, PLANTED] = 1.0
    return PlantedModel().fit(X)


def test_the_planted_dominant_history_item_comes_first(planted):
    assert isinstance(planted, ScoresHistory)
    (e,) = HistoryLimeExplainer(planted, n_samples=300).explain(0, [7])
    assert e.method == "lime" and e.extra["space"] == "history"
    assert e.features[int(np.argmax(e.weights))] == PLANTED
    assert e.top_features(1) == (PLANTED,)
    assert 0.0 <= e.extra["r2"] <= 1.0
    assert e.score == pytest.approx(planted._score(np.array([0]))[0, 7])


def test_r2_is_in_the_unit_interval_and_near_one_for_a_linear_model():
    rng = np.random.default_rng(1)
    X = sp.csr_matrix((rng.random((50, 25)) < 0.3).astype(np.float32))
    model = EASE(l2=2.0).fit(X)
    explanations = HistoryLimeExplainer(model, n_samples=200).explain(4, np.arange(10))
    r2 = np.array([e.extra["r2"] for e in explanations])
    assert np.all((r2 >= 0) & (r2 <= 1 + 1e-12))
    # EASE is exactly linear in the binary history mask: the surrogate fits it
    # up to the ridge penalty
    assert r2.min() > 0.95


def test_explanations_are_reproducible_for_a_seed_and_vary_across_seeds(planted):
    a = HistoryLimeExplainer(planted, n_samples=100, random_state=1).explain(0, [7])[0]
    b = HistoryLimeExplainer(planted, n_samples=100, random_state=1).explain(0, [7])[0]
    c = HistoryLimeExplainer(planted, n_samples=100, random_state=2).explain(0, [7])[0]
    np.testing.assert_array_equal(a.weights, b.weights)
    assert not np.array_equal(a.weights, c.weights)


def test_n_samples_is_checked(planted):
    with pytest.raises(ValueError, match="n_samples: expected an integer >= 2, got 1"):
        HistoryLimeExplainer(planted, n_samples=1).explain(0, [7])


def test_every_items_surrogate_is_the_one_limebase_fits():
    """One multi-target ridge for all items equals lime's LimeBase, item by item."""
    from lime.lime_base import LimeBase
    from sklearn.metrics import pairwise_distances

    from recsys.explain import history_scorer
    from recsys.explain._history import _lime_kernel, _lime_masks
    from recsys.explain._scorers import _masked_histories

    rng = np.random.default_rng(2)
    X = sp.csr_matrix((rng.random((40, 20)) < 0.35).astype(np.float32))
    model = EASE(l2=3.0).fit(X)
    user, items, n_samples, seed = 5, np.array([0, 4, 9, 13]), 120, 3
    explanations = HistoryLimeExplainer(model, n_samples=n_samples, random_state=seed).explain(
        user, items
    )
    # LimeBase on the same neighbourhood, one item at a time
    row = X[user]
    masks = _lime_masks(np.random.default_rng(seed), row.nnz, n_samples)
    scores = history_scorer(model).score_history(_masked_histories(row, masks), items)
    distances = pairwise_distances(masks, masks[:1], metric="cosine").ravel() * 100
    base = LimeBase(_lime_kernel, random_state=seed)
    for k, e in enumerate(explanations):
        intercept, pairs, r2, local = base.explain_instance_with_data(
            masks, scores, distances, k, row.nnz, feature_selection="none"
        )
        expected = np.zeros(row.nnz)
        for j, w in pairs:
            expected[j] = w
        np.testing.assert_allclose(e.weights, expected, rtol=1e-9, atol=1e-12)
        assert e.base_value == pytest.approx(float(intercept), rel=1e-9, abs=1e-12)
        assert e.extra["r2"] == pytest.approx(float(r2), rel=1e-9, abs=1e-12)
        assert e.extra["local_prediction"] == pytest.approx(float(np.ravel(local)[0]), rel=1e-9)
