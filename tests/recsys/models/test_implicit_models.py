"""The implicit wrappers: exact item-kNN scores, planted structure for ALS, conversions."""

from __future__ import annotations

import re

import numpy as np
import pytest
import scipy.sparse as sp
from threadpoolctl import threadpool_info

from recsys.models import ALS, BPR, ItemKNN
from recsys.models._implicit import _fit_inner, _from_implicit

FLT_MAX = np.finfo(np.float32).max


def _random_weights(n_users: int, n_items: int, seed: int) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    dense = (rng.random((n_users, n_items)) < 0.4) * rng.uniform(1, 3, (n_users, n_items))
    return sp.csr_matrix(dense.astype(np.float32))


# ------------------------------------------------------------------- item-kNN
def test_item_knn_cosine_equals_numpy() -> None:
    X = _random_weights(40, 12, seed=0)
    dense = X.toarray().astype(np.float64)
    unit = dense / np.linalg.norm(dense, axis=0)
    cosine = unit.T @ unit
    model = ItemKNN(k_neighbours=12).fit(X)  # no truncation: every neighbour kept
    np.testing.assert_allclose(model.similarity_.toarray(), cosine, rtol=1e-5, atol=1e-6)
    users = np.flatnonzero(np.diff(X.indptr))  # users with a history (the rest are cold)
    dense = dense[users]
    expected = dense @ cosine
    np.testing.assert_allclose(model._score(users), expected, rtol=1e-5, atol=1e-5)
    ids, scores = model.recommend(users, k=3)
    masked = np.where(dense > 0, -np.inf, expected)
    np.testing.assert_array_equal(ids, np.argsort(-masked, axis=1, kind="stable")[:, :3])
    np.testing.assert_allclose(scores, np.take_along_axis(masked, ids, axis=1), rtol=1e-5)


def test_item_knn_keeps_k_neighbours_per_item() -> None:
    model = ItemKNN(k_neighbours=3).fit(_random_weights(40, 12, seed=0))
    assert isinstance(model.similarity_, sp.csr_matrix)
    assert model.similarity_.dtype == np.float32
    assert np.diff(model.similarity_.indptr).max() <= 3


@pytest.mark.parametrize("similarity", ["bm25", "tfidf"])
def test_item_knn_weightings_give_finite_similarities(similarity: str) -> None:
    # user 3 has 4 of 5 items, so TF-IDF/BM25 give it weight 0 and item 3 a zero
    # vector: implicit's TF-IDF similarity is then NaN, which the wrapper sets to 0
    X = sp.csr_matrix(
        np.array([[1, 1, 0, 0, 0], [0, 1, 1, 0, 0], [1, 0, 0, 0, 1], [1, 1, 1, 1, 0]], np.float32)
    )
    model = ItemKNN(similarity=similarity, k_neighbours=5).fit(X)
    assert np.isfinite(model.similarity_.data).all()
    ids, scores = model.recommend(np.arange(4), k=5)
    assert not np.isnan(scores).any()


def test_item_knn_never_returns_seen_items_even_with_large_k() -> None:
    # implicit returns already-liked items with score 0 once the neighbours run out
    X = sp.csr_matrix(np.array([[1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 0, 1]], np.float32))
    ids, scores = ItemKNN(k_neighbours=4).fit(X).recommend([0, 2], k=4)
    assert ids.tolist() == [[2, -1, -1, -1], [-1, -1, -1, -1]]
    assert scores[0, 0] == pytest.approx(1 / np.sqrt(2))


def test_item_knn_rejects_an_unknown_similarity() -> None:
    message = "similarity: expected one of ['cosine', 'bm25', 'tfidf'], got 'jaccard'"
    with pytest.raises(ValueError, match=re.escape(message)):
        ItemKNN(similarity="jaccard").fit(_random_weights(5, 4, seed=0))


# ------------------------------------------------------------------ ALS, BPR
def _blocks(seed: int) -> sp.csr_matrix:
    """Users 0-19 use items 0-9, users 20-39 items 10-19; each user 6 of their 10."""
    rng = np.random.default_rng(seed)
    dense = np.zeros((40, 20), dtype=np.float32)
    for u in range(40):
        block = 0 if u < 20 else 10
        dense[u, block + rng.choice(10, size=6, replace=False)] = 1
    return sp.csr_matrix(dense)


def test_als_recommends_items_from_the_users_block() -> None:
    # two factors for the two planted blocks
    model = ALS(factors=2, iterations=10, regularization=0.1, num_threads=1).fit(_blocks(0))
    ids, _ = model.recommend(np.arange(40), k=3)
    assert np.all(ids[:20] < 10)
    assert np.all(ids[20:] >= 10)


def test_factor_shapes_and_the_bpr_bias_column() -> None:
    X = _blocks(0)
    als = ALS(factors=4, iterations=2, num_threads=1).fit(X)
    assert als.user_factors_.shape == (40, 4)
    assert als.item_factors_.shape == (20, 4)
    bpr = BPR(factors=4, iterations=2, num_threads=1).fit(X)
    assert bpr.user_factors_.shape == (40, 5)
    assert bpr.item_factors_.shape == (20, 5)
    assert np.all(bpr.user_factors_[:, -1] == 1.0)
    for model in (als, bpr):
        assert model.user_factors_.dtype == model.item_factors_.dtype == np.float32
        np.testing.assert_array_equal(
            model._score(np.array([0, 5])), model.user_factors_[[0, 5]] @ model.item_factors_.T
        )


def test_each_fit_builds_a_fresh_inner_model() -> None:
    X = _blocks(0)
    model = BPR(factors=4, iterations=3, num_threads=1)
    first = model.fit(X)._inner_
    factors = model.item_factors_.copy()
    second = model.fit(X)._inner_
    assert second is not first
    # cornac's BPR would continue from the old factors if the trained model were reused
    np.testing.assert_array_equal(model.item_factors_, factors)


@pytest.mark.parametrize("cls", [ALS, BPR])
def test_another_random_state_gives_other_factors(cls: type) -> None:
    first = cls(factors=4, iterations=2, num_threads=1, random_state=0).fit(_blocks(0))
    second = cls(factors=4, iterations=2, num_threads=1, random_state=1).fit(_blocks(0))
    assert not np.allclose(first.item_factors_, second.item_factors_)


def test_als_results_do_not_depend_on_threads() -> None:
    X = _blocks(0)
    one = ALS(factors=4, iterations=3, num_threads=1).fit(X)
    many = ALS(factors=4, iterations=3, num_threads=4).fit(X)
    np.testing.assert_allclose(one.item_factors_, many.item_factors_, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("model", "error", "message"),
    [
        (ALS(factors=0), ValueError, "factors == 0, must be >= 1."),
        (ALS(alpha=0.0), ValueError, "alpha == 0.0, must be > 0.0."),
        (
            ALS(random_state=-1),
            ValueError,
            "random_state: expected None or a non-negative integer, got -1",
        ),
        (BPR(learning_rate=0.0), ValueError, "learning_rate == 0.0, must be > 0.0."),
        (BPR(iterations=2.5), TypeError, "iterations must be an instance of int, not float."),
        (ItemKNN(num_threads=-1), ValueError, "num_threads == -1, must be >= 0."),
        (ItemKNN(show_progress=1), TypeError, "show_progress: expected a bool, got 1"),
    ],
)
def test_parameters_are_validated_by_fit(model: object, error: type, message: str) -> None:
    with pytest.raises(error, match=re.escape(message)):
        model.fit(_blocks(0))


# --------------------------------------------------------------- the plumbing
def test_from_implicit_turns_filtered_and_missing_entries_into_padding() -> None:
    # as implicit's ALS returns them for N = 5 with items 0 and 1 already liked
    ids = np.array([[3, 2, 4, 1, 0]], dtype=np.int32)
    scores = np.array([[0.5, 0.25, 0.25, -FLT_MAX, -FLT_MAX]], dtype=np.float32)
    out_ids, out_scores = _from_implicit(ids, scores, k=6, seen=None)
    assert out_ids.tolist() == [[3, 2, 4, -1, -1, -1]]
    assert out_scores.tolist() == [[0.5, 0.25, 0.25] + [-np.inf] * 3]


def test_from_implicit_drops_seen_items_and_reorders_ties() -> None:
    # as implicit's item-kNN returns them: liked items 0 and 1 at score 0, then -1 padding
    ids = np.array([[4, 2, 1, 0, -1], [3, 1, 0, 2, -1]], dtype=np.int32)
    scores = np.array([[0.5, 0.5, 0.0, 0.0, -FLT_MAX], [0.7, 0.2, 0.0, 0.0, -FLT_MAX]])
    seen = sp.csr_matrix(np.array([[1, 1, 0, 0, 0], [0, 0, 1, 0, 0]], dtype=np.float32))
    out_ids, out_scores = _from_implicit(ids, scores, k=3, seen=seen)
    assert out_ids.tolist() == [[2, 4, -1], [3, 1, 0]]
    assert out_scores[0].tolist() == [0.5, 0.5, -np.inf]
    np.testing.assert_allclose(out_scores[1], [0.7, 0.2, 0.0])


def test_fit_inner_limits_blas_to_one_thread_and_hides_progress() -> None:
    seen: dict[str, object] = {}

    class Recorder:
        def fit(self, X: sp.csr_matrix, show_progress: bool = True) -> None:
            blas = [i for i in threadpool_info() if i["user_api"] == "blas"]
            seen["blas_threads"] = {i["num_threads"] for i in blas}
            seen["show_progress"] = show_progress

    inner = Recorder()
    assert _fit_inner(inner, _blocks(0), show_progress=False) is inner
    assert seen["show_progress"] is False
    assert seen["blas_threads"] <= {1}
