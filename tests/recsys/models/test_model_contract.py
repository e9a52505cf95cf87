"""The contract every registered model passes (parametrised over ``MODELS``)."""

from __future__ import annotations

import re

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone

from recsys.errors import NotFittedError
from recsys.models import MODELS, Popularity, Recommender, load_model, make_model, save_model

# tiny, fast parameters; single-threaded so results are bit-for-bit reproducible
FAST_PARAMS: dict[str, dict] = {
    "popularity": {},
    "item_knn": {"k_neighbours": 10},
    "als": {"factors": 4, "iterations": 3, "num_threads": 1},
    "bpr": {"factors": 4, "iterations": 5, "num_threads": 1},
    "ease": {"l2": 10.0},
}
# item-kNN ranks only the items its similarity matrix links to a user's history
RANKS_EVERY_ITEM = {"popularity": True, "item_knn": False, "als": True, "bpr": True, "ease": True}

N_USERS, N_ITEMS = 30, 20
COLD_USER = 5
HEAVY_USER = 7  # has all but 3 items


def test_every_registered_model_is_covered() -> None:
    assert set(FAST_PARAMS) == set(MODELS) == set(RANKS_EVERY_ITEM)


def _interactions(n_users: int, n_items: int, seed: int) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    dense = (rng.random((n_users, n_items)) < 0.25) * rng.integers(1, 5, (n_users, n_items))
    dense[COLD_USER] = 0
    dense[HEAVY_USER] = 1
    dense[HEAVY_USER, -3:] = 0
    return sp.csr_matrix(dense.astype(np.float32))


@pytest.fixture(scope="module")
def X() -> sp.csr_matrix:
    return _interactions(N_USERS, N_ITEMS, seed=0)


@pytest.fixture(params=sorted(MODELS))
def kind(request: pytest.FixtureRequest) -> str:
    return request.param


def _model(kind: str, **extra: object) -> Recommender:
    return make_model(kind, {**FAST_PARAMS[kind], **extra})


@pytest.fixture
def fitted(kind: str, X: sp.csr_matrix) -> Recommender:
    return _model(kind).fit(X)


def _warm_users(X: sp.csr_matrix) -> np.ndarray:
    return np.flatnonzero(np.diff(X.indptr) > 0)


# ---------------------------------------------------------------- estimator API
def test_fit_returns_self(kind: str, X: sp.csr_matrix) -> None:
    model = _model(kind)
    assert model.fit(X) is model


def test_fit_does_not_modify_or_alias_the_input(kind: str, X: sp.csr_matrix) -> None:
    X_in = X.copy()
    model = _model(kind).fit(X_in)
    assert (X_in != X).nnz == 0
    assert not np.shares_memory(model.user_items_.data, X_in.data)


def test_get_params_set_params_and_clone(kind: str, X: sp.csr_matrix) -> None:
    model = _model(kind).fit(X)
    params = model.get_params()
    assert params["unknown_users"] == "error"
    assert set(FAST_PARAMS[kind]) <= set(params)
    copy = clone(model)
    assert type(copy) is type(model)
    assert copy.get_params() == params
    assert not hasattr(copy, "n_items_")
    assert copy.set_params(unknown_users="popular") is copy
    assert copy.get_params()["unknown_users"] == "popular"
    assert model.get_params()["unknown_users"] == "error"


def test_constructor_only_stores_parameters(kind: str) -> None:
    model = MODELS[kind]()
    assert {k for k in vars(model)} == set(model.get_params())


def test_invalid_unknown_users_is_rejected_by_fit(kind: str, X: sp.csr_matrix) -> None:
    with pytest.raises(
        ValueError, match=re.escape("unknown_users: expected 'error' or 'popular', got 'maybe'")
    ):
        _model(kind, unknown_users="maybe").fit(X)


def test_methods_before_fit_raise_not_fitted(kind: str, tmp_path) -> None:
    model = _model(kind)
    message = re.escape(f"This {type(model).__name__} is not fitted yet: call fit(X)")
    with pytest.raises(NotFittedError, match=message):
        model.recommend([0], k=3)
    with pytest.raises(NotFittedError, match=message):
        model.personalised([0])
    with pytest.raises(NotFittedError, match=message):
        model._score(np.array([0]))
    with pytest.raises(NotFittedError, match=message):
        save_model(model, tmp_path / "m")


# ------------------------------------------------------------------ recommend
def test_recommend_shapes_dtypes_and_order(fitted: Recommender, X: sp.csr_matrix) -> None:
    users = np.arange(N_USERS)
    ids, scores = fitted.recommend(users, k=6)
    assert ids.shape == scores.shape == (N_USERS, 6)
    assert ids.dtype == np.int64
    assert scores.dtype == np.float32
    assert np.all(scores[:, :-1] >= scores[:, 1:]), "scores must be sorted descending"
    assert np.array_equal(ids == -1, np.isneginf(scores)), "-1 ids exactly at -inf scores"
    assert np.all((ids >= -1) & (ids < N_ITEMS))


def test_no_duplicates_and_padding_only_at_the_end(fitted: Recommender) -> None:
    ids, _ = fitted.recommend(np.arange(N_USERS), k=N_ITEMS)
    for row in ids:
        valid = row[row >= 0]
        assert len(np.unique(valid)) == len(valid)
        assert np.all(row[len(valid) :] == -1)


def test_exclude_seen_removes_seen_items(fitted: Recommender, X: sp.csr_matrix) -> None:
    users = np.arange(N_USERS)
    ids, _ = fitted.recommend(users, k=N_ITEMS)
    for u in users:
        assert not set(ids[u][ids[u] >= 0]) & set(X[u].indices), f"user {u} got a seen item"


def test_seen_items_allowed_without_exclude_seen(
    kind: str, fitted: Recommender, X: sp.csr_matrix
) -> None:
    ids, scores = fitted.recommend(_warm_users(X), k=N_ITEMS, exclude_seen=False)
    for row, u in zip(ids, _warm_users(X), strict=True):
        assert set(X[u].indices) <= set(row), f"user {u}: seen items missing"
    if RANKS_EVERY_ITEM[kind]:
        assert np.all(ids >= 0)


def test_padding_when_k_exceeds_unseen_items(kind: str, fitted: Recommender) -> None:
    k = N_ITEMS + 4
    ids, scores = fitted.recommend([HEAVY_USER], k=k)
    n_valid = int((ids[0] >= 0).sum())
    if RANKS_EVERY_ITEM[kind]:
        assert n_valid == 3
    assert 1 <= n_valid <= 3
    assert set(ids[0, :n_valid]) <= {N_ITEMS - 3, N_ITEMS - 2, N_ITEMS - 1}
    assert np.all(ids[0, n_valid:] == -1)
    assert np.all(np.isneginf(scores[0, n_valid:]))
    assert np.all(np.isfinite(scores[0, :n_valid]))


def test_empty_user_list_gives_empty_arrays(fitted: Recommender) -> None:
    ids, scores = fitted.recommend([], k=3)
    assert ids.shape == scores.shape == (0, 3)
    assert (ids.dtype, scores.dtype) == (np.int64, np.float32)


def test_batching_does_not_change_results(fitted: Recommender) -> None:
    users = np.arange(N_USERS)
    ids, scores = fitted.recommend(users, k=5)
    ids_b, scores_b = fitted.recommend(users, k=5, batch_size=4)
    np.testing.assert_array_equal(ids, ids_b)
    np.testing.assert_array_equal(scores, scores_b)


def test_score_agrees_with_recommend(fitted: Recommender, X: sp.csr_matrix) -> None:
    users = _warm_users(X)
    dense = fitted._score(users)
    assert dense.shape == (users.size, N_ITEMS)
    assert dense.dtype == np.float32
    ids, scores = fitted.recommend(users, k=5)
    for row, u in enumerate(users):
        valid = ids[row] >= 0
        np.testing.assert_allclose(
            scores[row, valid], dense[row, ids[row, valid]], rtol=1e-5, atol=1e-6
        )
        if not valid.any():
            continue
        others = np.setdiff1d(np.arange(N_ITEMS), np.concatenate([ids[row, valid], X[u].indices]))
        if others.size:
            assert dense[row, others].max() <= scores[row, valid].min() + 1e-5


# ------------------------------------------------------------ users: unknown, cold
def test_unknown_users_raise_with_the_offending_ids(fitted: Recommender) -> None:
    message = (
        f"users: 2 index(es) outside the training users [0, {N_USERS}), e.g. [{N_USERS}, -1]; "
        "pass unknown_users='popular' to give them the popularity ranking"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        fitted.recommend([0, N_USERS, -1], k=3)


def test_unknown_users_get_popularity_when_asked(kind: str, X: sp.csr_matrix) -> None:
    model = _model(kind, unknown_users="popular").fit(X)
    popular_ids, popular_scores = Popularity().fit(X).recommend([COLD_USER], k=5)
    ids, scores = model.recommend([N_USERS, N_USERS + 10, -1], k=5)
    for row in range(3):
        np.testing.assert_array_equal(ids[row], popular_ids[0])
        np.testing.assert_array_equal(scores[row], popular_scores[0])
    assert not model.personalised([N_USERS, -1]).any()


def test_cold_users_get_popularity(fitted: Recommender, X: sp.csr_matrix) -> None:
    ids, scores = fitted.recommend([COLD_USER], k=5)
    popular_ids, popular_scores = Popularity().fit(X).recommend([COLD_USER], k=5)
    np.testing.assert_array_equal(ids, popular_ids)
    np.testing.assert_array_equal(scores, popular_scores)
    assert fitted.personalised([COLD_USER, 0]).tolist() == [False, True]


# ------------------------------------------------------------ state and seeds
def test_refit_does_not_leak_state(kind: str, X: sp.csr_matrix) -> None:
    other = _interactions(25, 15, seed=1)
    refitted = _model(kind).fit(X).fit(other)
    fresh = _model(kind).fit(other)
    assert (refitted.n_users_, refitted.n_items_) == (25, 15)
    users = np.arange(25)
    for a, b in zip(refitted.recommend(users, k=4), fresh.recommend(users, k=4), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(refitted._score(users), fresh._score(users))


def test_same_random_state_gives_identical_results(kind: str, X: sp.csr_matrix) -> None:
    users = np.arange(N_USERS)
    first = _model(kind).fit(X).recommend(users, k=5)
    second = _model(kind).fit(X).recommend(users, k=5)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)


def test_save_load_round_trip_is_identical(fitted: Recommender, tmp_path) -> None:
    save_model(fitted, tmp_path / "model")
    loaded = load_model(tmp_path / "model")
    assert type(loaded) is type(fitted)
    assert loaded.get_params() == fitted.get_params()
    users = np.arange(N_USERS)
    for exclude_seen in (True, False):
        before = fitted.recommend(users, k=N_ITEMS + 2, exclude_seen=exclude_seen)
        after = loaded.recommend(users, k=N_ITEMS + 2, exclude_seen=exclude_seen)
        for a, b in zip(before, after, strict=True):
            np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(loaded._score(users), fitted._score(users))


# ------------------------------------------------------------------ registry
def test_make_model_builds_the_registered_class(kind: str) -> None:
    model = make_model(kind, FAST_PARAMS[kind])
    assert type(model) is MODELS[kind]
    assert model.get_params().items() >= FAST_PARAMS[kind].items()


def test_make_model_rejects_an_unknown_kind() -> None:
    message = (
        "kind: unknown model 'svd'; expected one of "
        "['als', 'bpr', 'ease', 'item_knn', 'popularity']"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        make_model("svd", {})


def test_make_model_rejects_unknown_parameters() -> None:
    message = (
        "params: unknown parameter(s) ['lambda'] for model 'ease'; expected some of "
        "['binary', 'l2', 'max_items', 'unknown_users']"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        make_model("ease", {"lambda": 3.0})
