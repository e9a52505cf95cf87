"""The contract every registered re-ranker passes (parametrised over ``RERANKERS``)."""

from __future__ import annotations

import re

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone

import recsys.rerank
from recsys.errors import NotFittedError
from recsys.rerank import RERANKERS, Reranker

N_USERS, N_ITEMS, N_CAND, K = 12, 30, 15, 5
COLD_USER = 3  # no training history
SHORT_ROW, EMPTY_ROW = 4, 5  # rows with 3 candidates and with none


def _attributes(key: str) -> dict[str, np.ndarray]:
    """The fit attributes of each re-ranker, chosen so that every one of them reorders."""
    rng = np.random.default_rng(1)
    return {
        "fair_share": lambda: {"protected_items": rng.random(N_ITEMS) < 0.3},
        "exposure_budget": lambda: {"protected_items": rng.random(N_ITEMS) < 0.3},
        "calibration": lambda: {"item_category": rng.integers(0, 4, N_ITEMS)},
        "category_share": lambda: {
            "item_category": rng.integers(0, 4, N_ITEMS),
            "users": USERS,
            **dict(zip(("candidate_ids", "candidate_scores"), _make_candidates())),
        },
        "user_blend": lambda: {"user_group": np.arange(N_USERS) % 2 == 0},
    }[key]()


# re-rankers whose lists depend on the user's row alone (a catalogue-level budget
# couples the users, so its rows are not independent)
PER_USER = {"fair_share", "calibration", "category_share", "user_blend"}
COVERED = PER_USER | {"exposure_budget"}


def test_every_registered_reranker_is_covered() -> None:
    assert set(RERANKERS) == COVERED
    assert all(issubclass(cls, Reranker) for cls in RERANKERS.values())
    exported = set(recsys.rerank.__all__)
    assert {"RERANKERS", "Reranker"} | {cls.__name__ for cls in RERANKERS.values()} <= exported


@pytest.fixture(scope="module")
def X() -> sp.csr_matrix:
    rng = np.random.default_rng(0)
    dense = (rng.random((N_USERS, N_ITEMS)) < 0.3) * rng.integers(1, 5, (N_USERS, N_ITEMS))
    dense[COLD_USER] = 0
    return sp.csr_matrix(dense.astype(np.float32))


def _make_candidates() -> tuple[np.ndarray, np.ndarray]:
    """Distinct items per row, sorted scores with ties, one short and one empty row."""
    rng = np.random.default_rng(2)
    ids = np.argsort(rng.random((N_USERS, N_ITEMS)), axis=1)[:, :N_CAND].astype(np.int64)
    scores = -np.sort(-rng.integers(0, 6, (N_USERS, N_CAND)), axis=1).astype(np.float32)
    ids[SHORT_ROW, 3:], scores[SHORT_ROW, 3:] = -1, -np.inf
    ids[EMPTY_ROW], scores[EMPTY_ROW] = -1, -np.inf
    return ids, scores


@pytest.fixture(scope="module")
def candidates() -> tuple[np.ndarray, np.ndarray]:
    return _make_candidates()


USERS = np.arange(N_USERS)


@pytest.fixture(params=sorted(RERANKERS))
def key(request: pytest.FixtureRequest) -> str:
    return request.param


def _fitted(key: str, X: sp.csr_matrix, **params: object) -> Reranker:
    return RERANKERS[key](**params).fit(X, **_attributes(key))


# ---------------------------------------------------------------- estimator API
def test_fit_returns_self(key: str, X: sp.csr_matrix) -> None:
    rr = RERANKERS[key]()
    assert rr.fit(X, **_attributes(key)) is rr


def test_get_params_set_params_and_clone(key: str, X: sp.csr_matrix) -> None:
    rr = RERANKERS[key](strength=0.7)
    assert rr.get_params()["strength"] == 0.7
    assert rr.set_params(strength=0.2) is rr and rr.strength == 0.2
    rr.fit(X, **_attributes(key))
    copy = clone(rr)
    assert copy.get_params() == rr.get_params()
    assert not hasattr(copy, "n_items_")  # clone drops learned state


def test_rerank_before_fit_is_an_error(key: str, candidates: tuple) -> None:
    ids, scores = candidates
    name = RERANKERS[key].__name__
    with pytest.raises(
        NotFittedError,
        match=re.escape(f"This {name} is not fitted yet: call fit(X) before using it."),
    ):
        RERANKERS[key]().rerank(ids, scores, users=USERS, k=K)


@pytest.mark.parametrize("strength", [1.5, -0.1, True, "0.5", None])
def test_fit_rejects_a_bad_strength(key: str, X: sp.csr_matrix, strength: object) -> None:
    with pytest.raises(
        ValueError, match=re.escape(f"strength: expected a float in [0, 1], got {strength!r}")
    ):
        RERANKERS[key](strength=strength).fit(X, **_attributes(key))


def test_fit_rejects_attributes_of_the_wrong_size(key: str, X: sp.csr_matrix) -> None:
    attributes = _attributes(key)
    name, values = next(iter(attributes.items()))  # the item or user attribute comes first
    what, size = ("user", N_USERS) if name == "user_group" else ("item", N_ITEMS)
    kind = "a boolean" if values.dtype == np.bool_ else "an integer"
    with pytest.raises(
        ValueError,
        match=re.escape(
            f"{name}: expected {kind} array with one entry per {what} ({size},), "
            f"got dtype {values.dtype} and shape ({size - 1},)"
        ),
    ):
        RERANKERS[key]().fit(X, **{**attributes, name: values[:-1]})


# ------------------------------------------------------------- the ranked lists
@pytest.mark.parametrize("strength", [0.3, 1.0])
def test_output_is_a_reordering_of_the_candidates(
    key: str, X: sp.csr_matrix, candidates: tuple, strength: float
) -> None:
    ids, scores = candidates
    out_ids, out_scores = _fitted(key, X, strength=strength).rerank(
        ids, scores, users=USERS, k=K
    )
    assert out_ids.shape == out_scores.shape == (N_USERS, K)
    assert out_ids.dtype == np.int64 and out_scores.dtype == scores.dtype
    for row in range(N_USERS):
        chosen = out_ids[row][out_ids[row] >= 0]
        n_valid = int((ids[row] >= 0).sum())
        # as many items as the row can give, then padding; no item twice
        assert chosen.size == min(K, n_valid)
        assert (out_ids[row, chosen.size :] == -1).all()
        assert np.isneginf(out_scores[row, chosen.size :]).all()
        assert len(set(chosen.tolist())) == chosen.size
        # only candidates, each with its own input score (never re-scored)
        score_of = dict(zip(ids[row].tolist(), scores[row].tolist(), strict=True))
        assert set(chosen.tolist()) <= set(ids[row][ids[row] >= 0].tolist())
        assert out_scores[row, : chosen.size].tolist() == [score_of[i] for i in chosen.tolist()]


def test_the_rerankers_do_reorder_the_fixture(
    key: str, X: sp.csr_matrix, candidates: tuple
) -> None:
    # guards the contract tests above against a fixture in which nothing moves
    ids, scores = candidates
    out_ids, _ = _fitted(key, X, strength=1.0).rerank(ids, scores, users=USERS, k=K)
    assert (out_ids != ids[:, :K]).any()


@pytest.mark.parametrize("k", [1, K, N_CAND, N_CAND + 3])
def test_strength_zero_returns_the_input_truncated(
    key: str, X: sp.csr_matrix, candidates: tuple, k: int
) -> None:
    ids, scores = candidates
    out_ids, out_scores = _fitted(key, X, strength=0.0).rerank(ids, scores, users=USERS, k=k)
    kk = min(k, N_CAND)
    expected_ids = np.full((N_USERS, k), -1)
    expected_scores = np.full((N_USERS, k), -np.inf, dtype=np.float32)
    expected_ids[:, :kk], expected_scores[:, :kk] = ids[:, :kk], scores[:, :kk]
    np.testing.assert_array_equal(out_ids, expected_ids)
    np.testing.assert_array_equal(out_scores, expected_scores)


def test_k_above_the_candidates_pads(key: str, X: sp.csr_matrix, candidates: tuple) -> None:
    ids, scores = candidates
    out_ids, out_scores = _fitted(key, X, strength=1.0).rerank(
        ids, scores, users=USERS, k=N_CAND + 3
    )
    assert (out_ids[:, N_CAND:] == -1).all() and np.isneginf(out_scores[:, N_CAND:]).all()
    assert (np.sort(out_ids[:, :N_CAND], axis=1) == np.sort(ids, axis=1)).all()


def test_results_are_deterministic(key: str, X: sp.csr_matrix, candidates: tuple) -> None:
    ids, scores = candidates
    rr = _fitted(key, X, strength=0.6)
    first = rr.rerank(ids, scores, users=USERS, k=K)
    again = clone(rr).fit(X, **_attributes(key)).rerank(ids, scores, users=USERS, k=K)
    np.testing.assert_array_equal(again[0], first[0])
    np.testing.assert_array_equal(again[1], first[1])


@pytest.mark.parametrize("key", sorted(PER_USER))
def test_rows_are_independent_of_each_other_and_of_blocking(
    key: str, X: sp.csr_matrix, candidates: tuple, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids, scores = candidates
    rr = _fitted(key, X, strength=0.6)
    whole = rr.rerank(ids, scores, users=USERS, k=K)
    reversed_rows = rr.rerank(ids[::-1], scores[::-1], users=USERS[::-1], k=K)
    monkeypatch.setattr(type(rr), "_block_rows", 5)  # several blocks, the last one short
    blocked = rr.rerank(ids, scores, users=USERS, k=K)
    for other in (blocked, (reversed_rows[0][::-1], reversed_rows[1][::-1])):
        np.testing.assert_array_equal(other[0], whole[0])
        np.testing.assert_array_equal(other[1], whole[1])


def test_rerank_does_not_modify_its_inputs(
    key: str, X: sp.csr_matrix, candidates: tuple
) -> None:
    ids, scores = candidates
    ids_in, scores_in, users_in = ids.copy(), scores.copy(), USERS.copy()
    _fitted(key, X, strength=1.0).rerank(ids_in, scores_in, users=users_in, k=K)
    np.testing.assert_array_equal(ids_in, ids)
    np.testing.assert_array_equal(scores_in, scores)
    np.testing.assert_array_equal(users_in, USERS)


def test_no_users_gives_empty_lists(key: str, X: sp.csr_matrix) -> None:
    out_ids, out_scores = _fitted(key, X).rerank(
        np.zeros((0, N_CAND), dtype=np.int64), np.zeros((0, N_CAND)), users=[], k=K
    )
    assert out_ids.shape == out_scores.shape == (0, K)


# ------------------------------------------------------------------ bad inputs
def _bad_inputs() -> list[tuple[str, dict, str]]:
    ids = np.array([[0, 1, 2, -1], [3, 4, -1, -1]])
    scores = np.array([[3.0, 2.0, 2.0, -np.inf], [1.0, 0.5, -np.inf, -np.inf]])
    good = {"ids": ids, "scores": scores, "users": np.array([0, 1]), "k": 2}

    def with_(**changes: object) -> dict:
        return {**good, **changes}

    def patched(name: str, index: tuple, value: float) -> np.ndarray:
        arr = good[name].copy()
        arr[index] = value
        return arr

    return [
        ("k=0", with_(k=0), "k: expected a positive integer, got 0"),
        ("k float", with_(k=2.0), "k: expected a positive integer, got 2.0"),
        (
            "ids 1-D",
            with_(ids=ids[0]),
            "ids: expected a 2-D integer array [n_users, n_candidates], got dtype int64 "
            "and shape (4,)",
        ),
        (
            "ids float",
            with_(ids=ids.astype(float)),
            "ids: expected a 2-D integer array [n_users, n_candidates], got dtype float64 "
            "and shape (2, 4)",
        ),
        (
            "scores shape",
            with_(scores=scores[:, :3]),
            "scores: expected a float array of the same shape as ids (2, 4), got dtype "
            "float64 and shape (2, 3)",
        ),
        (
            "scores int",
            with_(scores=np.zeros((2, 4), dtype=int)),
            "scores: expected a float array of the same shape as ids (2, 4), got dtype "
            "int64 and shape (2, 4)",
        ),
        (
            "users length",
            with_(users=np.array([0])),
            "users: expected a 1-D integer array with one user index per row of ids (2,), "
            "got dtype int64 and shape (1,)",
        ),
        (
            "users range",
            with_(users=np.array([-1, N_USERS])),
            f"users: 2 index(es) outside the fitted users [0, {N_USERS}), e.g. [-1, {N_USERS}]",
        ),
        (
            "ids range",
            with_(ids=patched("ids", (1, 1), N_ITEMS)),
            f"ids: expected -1 (padding) or item indices in [0, {N_ITEMS}), got [{N_ITEMS}]",
        ),
        (
            "padding without -inf",
            with_(scores=patched("scores", (0, 3), 0.0)),
            "scores: expected -inf exactly where ids is -1 (padding), got 1 mismatching entries",
        ),
        (
            "nan score",
            with_(scores=patched("scores", (0, 0), np.nan)),
            "scores: expected finite scores for the candidates, got [nan]",
        ),
        (
            "candidate after padding",
            with_(
                ids=np.array([[0, 1, 2, -1], [3, -1, 4, -1]]),
                scores=np.array([[3.0, 2.0, 2.0, -np.inf], [1.0, -np.inf, 0.5, -np.inf]]),
            ),
            "ids: expected the -1 padding after every candidate of a row, row 1 has a "
            "candidate after padding",
        ),
        (
            "unsorted",
            with_(scores=patched("scores", (1, 1), 1.5)),
            "scores: expected each row sorted best first (non-increasing), row 1 is not",
        ),
        (
            "duplicate",
            with_(ids=patched("ids", (1, 1), 3)),
            "ids: expected each item at most once per row, row 1 repeats item 3",
        ),
    ]


@pytest.mark.parametrize(
    ("kwargs", "message"), [pytest.param(kw, msg, id=case) for case, kw, msg in _bad_inputs()]
)
def test_bad_rerank_input_is_named(
    key: str, X: sp.csr_matrix, kwargs: dict, message: str
) -> None:
    rr = _fitted(key, X)
    kwargs = dict(kwargs)
    with pytest.raises(ValueError, match=re.escape(message)):
        rr.rerank(kwargs.pop("ids"), kwargs.pop("scores"), **kwargs)
