"""ExposureBudgetReranker(cost="calibrated"): moves priced in expected DCG from a learned calibration."""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import event, given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.isotonic import IsotonicRegression

from recsys.rerank import ExposureBudgetReranker

W = 1.0 / np.log2(np.arange(2, 12))  # rank weights for ranks 1..10
PROTECTED = np.array([False, False, False, False, True, True])
X6 = sp.csr_matrix((4, 6), dtype=np.float32)

# validation lists: non-protected candidates relevant from score 0.9 up (none at 0.5 or below),
# protected ones from 0.5 up (none at 0.2 or below); the isotonic fits interpolate in between
V_IDS = np.array([[0, 4, 1, 5], [2, 5, 3, 4]])
V_SCORES = np.array([[1.0, 0.9, 0.5, 0.2], [0.9, 0.5, 0.4, 0.1]])
V_REL = np.array([[True, True, False, False], [True, True, False, False]])

IDS = np.array([[0, 1, 4, 2], [2, 3, 5, 0]])
SCORES = np.array([[1.0, 0.9, 0.1, 0.0], [1.0, 0.5, 0.45, 0.0]], dtype=np.float32)


def _fit(strength: float, **validation: np.ndarray) -> ExposureBudgetReranker:
    v = {"validation_ids": V_IDS, "validation_scores": V_SCORES, "validation_relevant": V_REL}
    return ExposureBudgetReranker(strength=strength, cost="calibrated").fit(
        X6, protected_items=PROTECTED, **{**v, **validation}
    )


def test_the_calibration_is_isotonic_per_item_group() -> None:
    rr = _fit(0.1)
    # non-protected: 0 up to 0.5, 1 from 0.9, linear between; protected: 0 to 0.2, 1 from 0.5
    np.testing.assert_allclose(np.interp([0.0, 0.5, 0.7, 0.9, 1.0], *rr.head_calibration_), [0, 0, 0.5, 1, 1])
    np.testing.assert_allclose(np.interp([0.1, 0.2, 0.45, 0.5], *rr.tail_calibration_), [0, 0, 5 / 6, 1])
    # the same as scikit-learn's own prediction
    iso = IsotonicRegression(out_of_bounds="clip").fit(V_SCORES[PROTECTED[V_IDS]], V_REL[PROTECTED[V_IDS]])
    grid = np.linspace(-1, 2, 61)
    np.testing.assert_allclose(np.interp(grid, *rr.tail_calibration_), iso.predict(grid))


def test_the_move_with_a_negative_price_comes_first() -> None:
    # user 0: protected item 4 (p = 0) passing item 1 (p = 1) costs 1 per unit of exposure;
    # user 1: item 5 (p = 5/6) passing item 3 (p = 0) costs -5/6. Total exposure 2 (1 + w2) = 3.26;
    # 10% of it is 0.326, less than the w2 = 0.63 that user 1's move gives
    ids, scores = _fit(0.1).rerank(IDS, SCORES, users=np.array([0, 1]), k=2)
    assert ids.tolist() == [[0, 1], [2, 5]]
    np.testing.assert_allclose(scores, [[1.0, 0.9], [1.0, 0.45]])  # the input scores


def test_a_higher_target_moves_the_likely_relevant_item_to_the_top() -> None:
    # 30% needs 0.98: user 1's item 5 passing item 2 (price 1 - 5/6, gain 1 - w2) is cheaper
    # than user 0's item 4 entering (price 1): exposure 1 / 3.26 = 0.307, where the score cost
    # brings item 4 in instead ([[0, 4], [2, 5]])
    ids, _ = _fit(0.3).rerank(IDS, SCORES, users=np.array([0, 1]), k=2)
    assert ids.tolist() == [[0, 1], [5, 2]]
    score_cost = ExposureBudgetReranker(strength=0.3).fit(X6, protected_items=PROTECTED)
    assert score_cost.rerank(IDS, SCORES, users=np.array([0, 1]), k=2)[0].tolist() == [[0, 4], [2, 5]]


def test_every_move_is_made_when_the_target_is_out_of_reach() -> None:
    ids, _ = _fit(1.0).rerank(IDS, SCORES, users=np.array([0, 1]), k=2)
    assert ids.tolist() == [[4, 0], [5, 2]]  # each protected item passes every non-protected one


def test_all_candidates_within_k_are_still_reordered() -> None:
    # four candidates, k = 4: nothing can come in, but the protected item can move up
    ids, _ = _fit(0.5).rerank(IDS[1:], SCORES[1:], users=np.array([1]), k=4)
    assert ids.tolist() == [[5, 2, 3, 0]]


def test_strength_zero_and_refitting_give_the_input_and_the_same_lists() -> None:
    ids, scores = _fit(0.0).rerank(IDS, SCORES, users=np.array([0, 1]), k=3)
    assert ids.tolist() == IDS[:, :3].tolist() and np.array_equal(scores, SCORES[:, :3])
    rr = _fit(0.3)
    again = clone(rr).fit(X6, protected_items=PROTECTED, validation_ids=V_IDS,
                          validation_scores=V_SCORES, validation_relevant=V_REL)
    np.testing.assert_array_equal(rr.rerank(IDS, SCORES, users=np.array([0, 1]), k=2)[0],
                                  again.rerank(IDS, SCORES, users=np.array([0, 1]), k=2)[0])


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("params", "fit_kwargs", "message"),
    [
        ({"cost": "dcg"}, {}, "cost: expected one of ['score', 'calibrated'], got 'dcg'"),
        (
            {"cost": "calibrated"},
            {"validation_ids": V_IDS},
            "validation_ids, validation_scores, validation_relevant: all three are required "
            "with cost='calibrated'",
        ),
        (
            {},
            {"validation_ids": V_IDS},
            "validation_ids, validation_scores, validation_relevant: only used with "
            "cost='calibrated', got cost='score'",
        ),
        (
            {"cost": "calibrated"},
            {"validation_ids": V_IDS, "validation_scores": V_SCORES,
             "validation_relevant": V_REL.astype(int)},
            "validation_relevant: expected a boolean array of the same shape as validation_ids "
            "(2, 4), got dtype int64 and shape (2, 4)",
        ),
        (
            {"cost": "calibrated"},
            {"validation_ids": V_IDS, "validation_scores": V_SCORES[:, :3], "validation_relevant": V_REL},
            "validation_scores: expected a float array of the same shape as validation_ids (2, 4), "
            "got dtype float64 and shape (2, 3)",
        ),
        (
            {"cost": "calibrated"},
            {"validation_ids": V_IDS[:, [0, 2]], "validation_scores": V_SCORES[:, [0, 2]],
             "validation_relevant": V_REL[:, [0, 2]]},
            "validation_ids: expected protected candidates to calibrate cost='calibrated', got none",
        ),
        (
            {"cost": "calibrated"},
            {"validation_ids": V_IDS, "validation_scores": V_SCORES[:, ::-1].copy(),
             "validation_relevant": V_REL},
            "scores: expected each row sorted best first (non-increasing), row 0 is not",
        ),
    ],
)
def test_bad_fit_input_is_named(params: dict, fit_kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        ExposureBudgetReranker(strength=0.1, **params).fit(X6, protected_items=PROTECTED, **fit_kwargs)


# ------------------------------------------------- optimality on small instances
def _merges(n_head: int, n_tail: int) -> list[tuple[bool, ...]]:
    """Every interleaving of the two groups that keeps each group's order (True = protected)."""
    out = []
    for tail_slots in itertools.combinations(range(n_head + n_tail), n_tail):
        out.append(tuple(s in tail_slots for s in range(n_head + n_tail)))
    return out


def _list_value(order: tuple[bool, ...], p_head: np.ndarray, p_tail: np.ndarray, k: int) -> tuple[float, float]:
    """(expected DCG, protected exposure) of the top k of a merge."""
    h = t = 0
    dcg = exposure = 0.0
    for rank, is_tail in enumerate(order[:k]):
        if is_tail:
            dcg, exposure, t = dcg + W[rank] * p_tail[t], exposure + W[rank], t + 1
        else:
            dcg, h = dcg + W[rank] * p_head[h], h + 1
    return dcg, exposure


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 10_000), target=st.floats(0.0, 0.7))
def test_no_reordering_reaches_the_same_exposure_with_more_expected_dcg(seed: int, target: float) -> None:
    rng = np.random.default_rng(seed)
    n_users, n_items, n_cand, k = 3, 12, 5, 3
    protected = rng.random(n_items) < 0.4
    protected[:2] = [False, True]  # both groups exist
    v_ids = np.stack([rng.permutation(n_items) for _ in range(20)])
    v_scores = -np.sort(-rng.random(v_ids.shape), axis=1)
    v_rel = rng.random(v_ids.shape) < v_scores * np.where(protected[v_ids], 0.9, 0.5)
    rr = ExposureBudgetReranker(strength=target, cost="calibrated").fit(
        sp.csr_matrix((n_users, n_items)), protected_items=protected, validation_ids=v_ids,
        validation_scores=v_scores, validation_relevant=v_rel,
    )
    ids = np.stack([rng.permutation(n_items)[:n_cand] for _ in range(n_users)])
    scores = -np.sort(-rng.random((n_users, n_cand)), axis=1)
    out, out_scores = rr.rerank(ids, scores, users=np.arange(n_users), k=k)

    valid = ids >= 0
    prot = protected[ids]
    p = rr._relevance(scores, prot, valid)
    per_user = []  # (expected DCG, exposure) of every order-keeping merge of each user
    for u in range(n_users):
        merges = _merges(int((~prot[u]).sum()), int(prot[u].sum()))
        per_user.append([_list_value(m, p[u][~prot[u]], p[u][prot[u]], k) for m in merges])
        # the output is one of them: each group keeps its input order, input scores kept
        rows = [list(ids[u]).index(i) for i in out[u]]
        assert [c for c in rows if prot[u, c]] == sorted(c for c in rows if prot[u, c])
        assert [c for c in rows if not prot[u, c]] == sorted(c for c in rows if not prot[u, c])
        assert out_scores[u].tolist() == scores[u, rows].tolist()
    got = [_list_value(tuple(protected[out[u]]), p[u][~prot[u]], p[u][prot[u]], k) for u in range(n_users)]
    got_dcg, got_exposure = sum(g[0] for g in got), sum(g[1] for g in got)
    total = n_users * W[:k].sum()
    combos = [
        (sum(c[0] for c in combo), sum(c[1] for c in combo)) for combo in itertools.product(*per_user)
    ]
    reachable = max(e for _, e in combos)
    assert got_exposure >= min(target * total, reachable) - 1e-9
    base_dcg = sum(_list_value(tuple(prot[u]), p[u][~prot[u]], p[u][prot[u]], k)[0] for u in range(n_users))
    if got_dcg < base_dcg - 1e-9:
        # it paid for the target, so it has made every move that gains expected DCG (negative
        # price, taken first): then nothing with as much protected exposure has more expected DCG
        assert all(d <= got_dcg + 1e-6 for d, e in combos if e >= got_exposure - 1e-9)
        event("paid for the target")


# ------------------------------------------- the re-ranker contract, calibrated cost
# (tests/recsys/rerank/test_rerank_contract.py runs the default cost="score")
@pytest.mark.parametrize("k", [1, 5, 15, 18])
@pytest.mark.parametrize("strength", [0.0, 0.3, 1.0])
def test_the_lists_keep_the_contract_with_padding_and_empty_rows(k: int, strength: float) -> None:
    rng = np.random.default_rng(3)
    n_users, n_items, n_cand = 12, 30, 15
    protected = rng.random(n_items) < 0.3
    ids = np.argsort(rng.random((n_users, n_items)), axis=1)[:, :n_cand].astype(np.int64)
    scores = -np.sort(-rng.integers(0, 6, (n_users, n_cand)), axis=1).astype(np.float32)  # ties
    ids[4, 3:], scores[4, 3:] = -1, -np.inf  # a short row
    ids[5], scores[5] = -1, -np.inf  # an empty row
    rr = ExposureBudgetReranker(strength=strength, cost="calibrated").fit(
        sp.csr_matrix((n_users, n_items)), protected_items=protected, validation_ids=ids[:8],
        validation_scores=scores[:8].astype(np.float64), validation_relevant=rng.random((8, n_cand)) < 0.3,
    )
    ids_in, scores_in = ids.copy(), scores.copy()
    out, out_scores = rr.rerank(ids_in, scores_in, users=np.arange(n_users), k=k)
    assert np.array_equal(ids_in, ids) and np.array_equal(scores_in, scores)  # inputs untouched
    assert out.shape == out_scores.shape == (n_users, k) and out_scores.dtype == np.float32
    for row in range(n_users):
        chosen = out[row][out[row] >= 0]
        assert chosen.size == min(k, int((ids[row] >= 0).sum()))
        assert (out[row, chosen.size :] == -1).all() and np.isneginf(out_scores[row, chosen.size :]).all()
        assert len(set(chosen.tolist())) == chosen.size
        score_of = dict(zip(ids[row].tolist(), scores[row].tolist(), strict=True))
        assert out_scores[row, : chosen.size].tolist() == [score_of[i] for i in chosen.tolist()]
    if strength == 0.0:
        assert np.array_equal(out[:, : min(k, n_cand)], ids[:, :k])
    if strength == 1.0 and k < n_cand:  # every protected candidate that fits is in, above the others
        for row in range(n_users):
            n_prot = int(protected[ids[row][ids[row] >= 0]].sum())
            chosen = out[row][out[row] >= 0]
            assert protected[chosen].tolist() == sorted(protected[chosen].tolist(), reverse=True)
            assert int(protected[chosen].sum()) == min(n_prot, chosen.size)


def test_no_users_gives_empty_lists() -> None:
    out, out_scores = _fit(0.5).rerank(np.zeros((0, 4), dtype=np.int64), np.zeros((0, 4)), users=[], k=2)
    assert out.shape == out_scores.shape == (0, 2)


def test_a_bundle_keeps_the_calibration(tmp_path) -> None:
    import pandas as pd

    from recsys.models import EASE
    from recsys.serving import load_bundle, save_bundle

    rng = np.random.default_rng(5)
    X = sp.csr_matrix((rng.random((40, 6)) < 0.5).astype(np.float32))
    rr = _fit(0.3)
    save_bundle(tmp_path, name="b", model=EASE(l2=1.0).fit(X), reranker=rr, n_candidates=4,
                user_ids=np.arange(40), item_ids=np.arange(6), items=pd.DataFrame({"item_id": np.arange(6)}))
    loaded = load_bundle(tmp_path).reranker
    np.testing.assert_array_equal(loaded.tail_calibration_, rr.tail_calibration_)
    users = np.array([0, 1])
    assert loaded.rerank(IDS, SCORES, users=users, k=2)[0].tolist() == [[0, 1], [5, 2]]


def test_refitting_with_the_score_cost_drops_the_calibration() -> None:
    rr = _fit(0.3).set_params(cost="score").fit(X6, protected_items=PROTECTED)
    assert not hasattr(rr, "tail_calibration_") and not hasattr(rr, "head_calibration_")
    assert rr.rerank(IDS, SCORES, users=np.array([0, 1]), k=2)[0].tolist() == [[0, 4], [2, 5]]
