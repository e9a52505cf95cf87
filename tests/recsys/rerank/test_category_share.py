"""CategoryShareReranker: offsets fitted on candidate lists move mean category shares to the target."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recsys.models import EASE
from recsys.rerank import CategoryShareReranker
from recsys.serving import load_bundle, save_bundle


def _shares(ids: np.ndarray, category: np.ndarray, n_cat: int) -> np.ndarray:
    """Mean over rows of each row's category shares (straightforward loop: the reference)."""
    rows = []
    for row in ids:
        row = row[row >= 0]
        rows.append(np.bincount(category[row], minlength=n_cat) / row.size)
    return np.mean(rows, axis=0)


@pytest.fixture(scope="module")
def fitted() -> dict:
    rng = np.random.default_rng(4)
    n_users, n_items, n_cat = 300, 120, 4
    category = rng.integers(0, n_cat, n_items)
    # histories spread over categories; the model over-ranks category 0 (popular items)
    X = sp.csr_matrix((rng.random((n_users, n_items)) < 0.08).astype(np.float64))
    model = EASE(l2=20.0).fit(X)
    users = np.arange(n_users)
    ids, scores = model.recommend(users, 40)
    return {"X": X, "category": category, "n_cat": n_cat, "users": users, "ids": ids, "scores": scores}


def _fit(f: dict, strength: float) -> CategoryShareReranker:
    return CategoryShareReranker(strength=strength, k=10).fit(
        f["X"], item_category=f["category"], users=f["users"],
        candidate_ids=f["ids"], candidate_scores=f["scores"],
    )


def test_the_doc_example_exactly() -> None:
    X = sp.csr_matrix(np.array([[1, 0, 1, 0], [0, 1, 0, 1]]))
    ids = np.array([[0, 1, 2, 3], [0, 1, 2, 3]])
    sc = np.array([[1.0, 0.9, 0.8, 0.0], [1.0, 0.9, 0.8, 0.0]])
    rr = CategoryShareReranker(strength=1.0, k=2).fit(
        X, item_category=np.array([0, 0, 1, 1]), users=np.array([0, 1]), candidate_ids=ids, candidate_scores=sc
    )
    assert rr.target_share_.tolist() == [0.5, 0.5]  # base [1, 0] moved all the way to the histories' [.5, .5]
    assert rr.achieved_share_.tolist() == [0.5, 0.5]
    out, out_scores = rr.rerank(ids, sc, users=np.array([0, 1]), k=2)
    assert out.tolist() == [[2, 0], [2, 0]] and out_scores.tolist() == [[0.8, 1.0], [0.8, 1.0]]


def test_strength_zero_is_the_input_order_and_fits_zero_offsets(fitted: dict) -> None:
    rr = _fit(fitted, 0.0)
    assert np.array_equal(rr.offsets_, np.zeros(fitted["n_cat"]))
    ids, _ = rr.rerank(fitted["ids"], fitted["scores"], users=fitted["users"], k=10)
    assert np.array_equal(ids, fitted["ids"][:, :10])


@pytest.mark.parametrize("strength", [0.5, 1.0])
def test_fitted_offsets_reach_the_target_and_rerank_reproduces_the_fit(fitted: dict, strength: float) -> None:
    rr = _fit(fitted, strength)
    cat, n_cat = fitted["category"], fitted["n_cat"]
    base = _shares(fitted["ids"][:, :10], cat, n_cat)
    history = np.mean([np.bincount(cat[r.indices], minlength=n_cat) / r.indices.size
                       for r in fitted["X"] if r.nnz], axis=0)
    assert np.allclose(rr.target_share_, base + strength * (history - base))
    ids, _ = rr.rerank(fitted["ids"], fitted["scores"], users=fitted["users"], k=10)
    got = _shares(ids, cat, n_cat)
    assert np.allclose(got, rr.achieved_share_)  # fixed offsets: same lists at rerank time
    assert np.abs(got - rr.target_share_).max() <= 0.01
    assert np.abs(got - rr.target_share_).max() < np.abs(base - rr.target_share_).max() / 5
    # it only reorders candidates: every returned item was a candidate of that row, no repeats
    for row, cand in zip(ids, fitted["ids"]):
        assert set(row) <= set(cand) and len(set(row)) == 10


def test_bad_input_names_the_parameter(fitted: dict) -> None:
    with pytest.raises(ValueError, match=r"item_category: expected an integer array with one entry per item \(120,\)"):
        CategoryShareReranker().fit(fitted["X"], item_category=np.zeros(5, int), users=fitted["users"],
                                    candidate_ids=fitted["ids"], candidate_scores=fitted["scores"])
    with pytest.raises(ValueError, match="k: expected a positive integer, got 0"):
        CategoryShareReranker(k=0).fit(fitted["X"], item_category=fitted["category"], users=fitted["users"],
                                       candidate_ids=fitted["ids"], candidate_scores=fitted["scores"])


def test_a_bundle_serves_the_same_reranked_lists(fitted: dict, tmp_path) -> None:
    rr = _fit(fitted, 1.0)
    model = EASE(l2=20.0).fit(fitted["X"])
    n_items = fitted["X"].shape[1]
    import pandas as pd

    save_bundle(tmp_path, name="c", model=model, reranker=rr, n_candidates=40,
                user_ids=np.arange(300), item_ids=np.arange(n_items),
                items=pd.DataFrame({"item_id": np.arange(n_items)}))
    bundle = load_bundle(tmp_path)
    expected, _ = rr.rerank(fitted["ids"], fitted["scores"], users=fitted["users"], k=10)
    for user in (0, 17, 299):  # one user at a time, as the service asks
        got, _ = bundle.recommend(np.array([user]), 10)
        assert got[0].tolist() == expected[user].tolist()
