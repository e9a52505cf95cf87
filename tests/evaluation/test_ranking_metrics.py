"""Per-user ranking metrics: hand-worked values, padding, errors and properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from evaluation import (
    average_precision_at_k,
    hit_matrix,
    hit_rate_at_k,
    log_rank_weight,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
    reciprocal_rank_at_k,
)

LOG2_3 = math.log2(3)


def _all_metrics(hits: np.ndarray, n_rel: np.ndarray) -> dict[str, np.ndarray]:
    return {
        "precision": precision_at_k(hits),
        "recall": recall_at_k(hits, n_rel),
        "ndcg": ndcg_at_k(hits, n_rel),
        "map": average_precision_at_k(hits, n_rel),
        "mrr": reciprocal_rank_at_k(hits),
        "hit_rate": hit_rate_at_k(hits),
    }


def _relevance(sets: list[set[int]], n_items: int) -> sp.csr_matrix:
    rows = [u for u, s in enumerate(sets) for _ in s]
    cols = [i for s in sets for i in sorted(s)]
    return sp.csr_matrix(
        (np.ones(len(rows)), (rows, cols)), shape=(len(sets), n_items)
    )


# ------------------------------------------------------------ hand-worked cases
def test_two_hits_out_of_three_with_two_relevant():
    # hits [1, 0, 1], 2 relevant:
    #   precision 2/3; recall 2/2 = 1
    #   DCG = 1/log2(2) + 1/log2(4) = 1 + 1/2; IDCG = 1 + 1/log2(3)
    #   AP = (P@1 + P@3) / 2 = (1 + 2/3) / 2 = 5/6; RR = 1/1; hit 1
    m = _all_metrics(np.array([[True, False, True]]), np.array([2]))
    assert m["precision"][0] == pytest.approx(2 / 3)
    assert m["recall"][0] == 1.0
    assert m["ndcg"][0] == pytest.approx((1 + 1 / 2) / (1 + 1 / LOG2_3))
    assert m["map"][0] == pytest.approx((1 + 2 / 3) / 2)
    assert m["mrr"][0] == 1.0
    assert m["hit_rate"][0] == 1.0


def test_single_hit_at_rank_two():
    # hits [0, 1, 0], 1 relevant: precision 1/3, recall 1, DCG 1/log2(3) over IDCG 1,
    # AP = P@2 / 1 = 1/2, RR = 1/2
    m = _all_metrics(np.array([[False, True, False]]), np.array([1]))
    assert m["precision"][0] == pytest.approx(1 / 3)
    assert m["recall"][0] == 1.0
    assert m["ndcg"][0] == pytest.approx(1 / LOG2_3)
    assert m["map"][0] == 0.5
    assert m["mrr"][0] == 0.5
    assert m["hit_rate"][0] == 1.0


def test_more_relevant_items_than_k():
    # hits [1, 1] with 5 relevant: precision 2/2, recall 2/5; the ideal DCG and the AP
    # denominator use min(k, 5) = 2, so a full top-2 scores nDCG 1 and AP (1 + 1)/2 = 1
    m = _all_metrics(np.array([[True, True]]), np.array([5]))
    assert m["precision"][0] == 1.0
    assert m["recall"][0] == pytest.approx(2 / 5)
    assert m["ndcg"][0] == 1.0
    assert m["map"][0] == 1.0
    assert m["mrr"][0] == 1.0


def test_no_hit_scores_zero_everywhere():
    m = _all_metrics(np.array([[False, False, False]]), np.array([3]))
    for name, values in m.items():
        assert values.tolist() == [0.0], name


def test_rows_are_independent_and_float64():
    hits = np.array([[True, False, True], [False, True, False], [False, False, False]])
    m = _all_metrics(hits, np.array([2, 1, 3]))
    for values in m.values():
        assert values.dtype == np.float64 and values.shape == (3,)
    assert m["mrr"].tolist() == [1.0, 0.5, 0.0]
    assert m["map"].tolist() == pytest.approx([5 / 6, 1 / 2, 0.0])


def test_custom_rank_weight():
    # weights [1, 1/2, 1/4]; hits [0, 1, 1] with 3 relevant:
    # DCG = 1/2 + 1/4 = 3/4; IDCG = 1 + 1/2 + 1/4 = 7/4 -> 3/7
    got = ndcg_at_k(
        np.array([[False, True, True]]), np.array([3]), rank_weight=np.array([1.0, 0.5, 0.25])
    )
    assert got[0] == pytest.approx(3 / 7)


def test_log_rank_weight_values():
    assert log_rank_weight(3).tolist() == pytest.approx([1.0, 1 / LOG2_3, 0.5])


def test_integer_zero_one_hits_are_accepted():
    assert precision_at_k(np.array([[1, 0, 1, 0]])).tolist() == [0.5]


def test_empty_batch_gives_empty_vectors():
    hits = np.zeros((0, 3), dtype=bool)
    for values in _all_metrics(hits, np.zeros(0, dtype=np.int64)).values():
        assert values.shape == (0,)


# ------------------------------------------------------------------ hit_matrix
def test_hit_matrix_with_padding():
    # user 0 relevant {1, 3}; user 1 relevant {0}
    relevant = _relevance([{1, 3}, {0}], n_items=4)
    ids = np.array([[3, 0, -1], [0, -1, -1]])
    assert hit_matrix(ids, relevant, np.array([0, 1])).tolist() == [
        [True, False, False],
        [True, False, False],
    ]


def test_padding_is_never_a_hit_even_when_key_collides():
    # -1 for user 1 encodes as user 0's last item (n_items - 1), which is relevant to user 0
    relevant = _relevance([{2}, {0}], n_items=3)
    hits = hit_matrix(np.array([[-1, -1]]), relevant, np.array([1]))
    assert hits.tolist() == [[False, False]]


def test_hit_matrix_rows_follow_users_in_any_order_with_repeats():
    relevant = _relevance([{0}, {1}, {2}], n_items=3)
    ids = np.array([[0, 1, 2]] * 4)
    hits = hit_matrix(ids, relevant, np.array([2, 0, 2, 1]))
    assert hits.tolist() == [
        [False, False, True],
        [True, False, False],
        [False, False, True],
        [False, True, False],
    ]


def test_explicit_zeros_and_unsorted_indices_are_handled_without_mutating_input():
    # row 0 stores items 3, 1 (unsorted) and an explicit zero on item 2
    relevant = sp.csr_matrix(
        (np.array([1.0, 1.0, 0.0]), np.array([3, 1, 2]), np.array([0, 3])), shape=(1, 4)
    )
    hits = hit_matrix(np.array([[1, 2, 3, 0]]), relevant, np.array([0]))
    assert hits.tolist() == [[True, False, True, False]]
    assert relevant.indices.tolist() == [3, 1, 2]
    assert relevant.nnz == 3


def test_hit_matrix_accepts_csr_array_and_coo():
    dense = np.array([[0, 1], [1, 0]])
    for rel in (sp.csr_array(dense), sp.coo_matrix(dense)):
        assert hit_matrix(np.array([[1, 0]]), rel, np.array([0])).tolist() == [[True, False]]


# ---------------------------------------------------------------------- errors
def test_zero_relevant_items_raise():
    with pytest.raises(
        ValueError,
        match=r"n_relevant: every row needs at least one relevant item \(drop users without "
        r"held-out items before scoring\), got 1 row\(s\) with fewer, e\.g\. rows \[1\]",
    ):
        recall_at_k(np.array([[True], [False]]), np.array([1, 0]))


@pytest.mark.parametrize("metric", [recall_at_k, ndcg_at_k, average_precision_at_k])
def test_every_relevance_metric_raises_on_zero_relevant(metric):
    with pytest.raises(ValueError, match=r"^n_relevant: every row needs at least one"):
        metric(np.array([[False]]), np.array([0]))


def test_more_hits_than_relevant_raise():
    with pytest.raises(
        ValueError,
        match=r"n_relevant: a row cannot have more hits than relevant items, got 1 such "
        r"row\(s\), e\.g\. rows \[0\]",
    ):
        ndcg_at_k(np.array([[True, True]]), np.array([1]))


def test_n_relevant_length_mismatch():
    with pytest.raises(
        ValueError,
        match=r"n_relevant: expected a 1-D array with one count per row of hits \(2\), "
        r"got shape \(3,\)",
    ):
        recall_at_k(np.zeros((2, 2), dtype=bool), np.array([1, 1, 1]))


def test_n_relevant_must_be_integral():
    with pytest.raises(ValueError, match=r"n_relevant: expected integer counts, got dtype float64"):
        recall_at_k(np.zeros((1, 2), dtype=bool), np.array([1.5]))


def test_hits_must_be_two_dimensional_with_a_rank():
    with pytest.raises(
        ValueError,
        match=r"hits: expected a 2-D boolean array \[n_users, k\] with k >= 1, got shape \(3,\)",
    ):
        precision_at_k(np.array([True, False, True]))
    with pytest.raises(ValueError, match=r"with k >= 1, got shape \(2, 0\)"):
        hit_rate_at_k(np.zeros((2, 0), dtype=bool))


def test_hits_must_be_boolean_or_zero_one():
    with pytest.raises(
        ValueError, match=r"hits: expected boolean \(or 0/1\) values, got dtype int64"
    ):
        precision_at_k(np.array([[2, 0]]))


def test_rank_weight_shape_and_order():
    hits, n = np.array([[True, False]]), np.array([1])
    with pytest.raises(
        ValueError, match=r"rank_weight: expected one weight per rank \(2\), got shape \(3,\)"
    ):
        ndcg_at_k(hits, n, rank_weight=np.ones(3))
    with pytest.raises(
        ValueError,
        match=r"rank_weight: expected finite, non-negative, non-increasing weights with a "
        r"positive first weight, got \[0\.5, 1\.0\]",
    ):
        ndcg_at_k(hits, n, rank_weight=np.array([0.5, 1.0]))


def test_log_rank_weight_rejects_bad_k():
    with pytest.raises(ValueError, match=r"k: expected a positive integer, got 0"):
        log_rank_weight(0)


def test_hit_matrix_input_errors():
    rel = _relevance([{0}, {1}], n_items=3)
    users = np.array([0])
    with pytest.raises(
        ValueError,
        match=r"ids: expected a 2-D integer array of item indices \[n_users, k\], "
        r"got dtype float64 and shape \(1, 2\)",
    ):
        hit_matrix(np.array([[0.0, 1.0]]), rel, users)
    with pytest.raises(
        ValueError,
        match=r"ids: item indices must lie in \[0, 3\) \(or be -1 for padding\), got 3",
    ):
        hit_matrix(np.array([[3, 0]]), rel, users)
    with pytest.raises(
        ValueError, match=r"ids: item indices must be >= 0 \(or -1 for padding\), got -2"
    ):
        hit_matrix(np.array([[-2, 0]]), rel, users)
    with pytest.raises(ValueError, match=r"users: expected one user per row of ids \(1\), got 2"):
        hit_matrix(np.array([[0, 1]]), rel, np.array([0, 1]))
    with pytest.raises(
        ValueError,
        match=r"users: user indices must lie in \[0, 2\) \(the rows of the relevance matrix\), "
        r"got \[2, 2\]",
    ):
        hit_matrix(np.array([[0, 1]]), rel, np.array([2]))
    with pytest.raises(
        TypeError,
        match=r"relevant: expected a scipy sparse user x item matrix, got ndarray",
    ):
        hit_matrix(np.array([[0, 1]]), rel.toarray(), users)


# ----------------------------------------------------------------- properties
@st.composite
def ranking_cases(draw):
    """Relevance sets, users per row (any order, repeats allowed) and padded rankings."""
    n_items = draw(st.integers(1, 12))
    n_users = draw(st.integers(1, 5))
    k = draw(st.integers(1, 8))
    sets = [draw(st.sets(st.integers(0, n_items - 1), max_size=n_items)) for _ in range(n_users)]
    users = draw(st.lists(st.integers(0, n_users - 1), min_size=1, max_size=7))
    rows = []
    for _ in users:
        order = draw(st.permutations(range(n_items)))
        length = draw(st.integers(0, min(k, n_items)))
        rows.append(list(order[:length]) + [-1] * (k - length))
    return sets, n_items, np.array(users), np.array(rows, dtype=np.int64)


def _slow_hits(ids, sets, users):
    return np.array(
        [[item >= 0 and item in sets[u] for item in row] for row, u in zip(ids.tolist(), users)],
        dtype=bool,
    ).reshape(ids.shape)


def _brute_ndcg(row_hits, n_rel):
    dcg = sum(1 / math.log2(r + 2) for r, h in enumerate(row_hits) if h)
    idcg = sum(1 / math.log2(r + 2) for r in range(min(len(row_hits), n_rel)))
    return dcg / idcg


@settings(max_examples=150, deadline=None)
@given(ranking_cases())
def test_hit_matrix_matches_set_reference(case):
    sets, n_items, users, ids = case
    got = hit_matrix(ids, _relevance(sets, n_items), users)
    np.testing.assert_array_equal(got, _slow_hits(ids, sets, users))


@settings(max_examples=150, deadline=None)
@given(ranking_cases())
def test_metrics_are_bounded_and_match_brute_force(case):
    sets, n_items, users, ids = case
    n_rel = np.array([len(sets[u]) for u in users])
    keep = n_rel > 0
    if not keep.any():
        return
    hits = hit_matrix(ids[keep], _relevance(sets, n_items), users[keep])
    m = _all_metrics(hits, n_rel[keep])
    for name, values in m.items():
        assert np.all((values >= 0) & (values <= 1 + 1e-12)), name
    k = ids.shape[1]
    for row, n, p, g in zip(hits.tolist(), n_rel[keep], m["precision"], m["ndcg"]):
        assert p == pytest.approx(sum(row) / k)
        assert g == pytest.approx(_brute_ndcg(row, int(n)))


@settings(max_examples=150, deadline=None)
@given(ranking_cases())
def test_perfect_ranking_scores_one(case):
    sets, n_items, users, ids = case
    k = ids.shape[1]
    # every relevant item first, then the rest, padded to k
    perfect = []
    for u in users:
        rest = [i for i in range(n_items) if i not in sets[u]]
        row = (sorted(sets[u]) + rest)[:k]
        perfect.append(row + [-1] * (k - len(row)))
    perfect = np.array(perfect, dtype=np.int64)
    n_rel = np.array([len(sets[u]) for u in users])
    keep = n_rel > 0
    if not keep.any():
        return
    hits = hit_matrix(perfect[keep], _relevance(sets, n_items), users[keep])
    n = n_rel[keep]
    assert ndcg_at_k(hits, n).tolist() == [1.0] * int(keep.sum())
    assert average_precision_at_k(hits, n).tolist() == [1.0] * int(keep.sum())
    np.testing.assert_allclose(recall_at_k(hits, n), np.minimum(k, n) / n)
    np.testing.assert_allclose(precision_at_k(hits), np.minimum(k, n) / k)
    assert reciprocal_rank_at_k(hits).tolist() == [1.0] * int(keep.sum())


@settings(max_examples=100, deadline=None)
@given(ranking_cases(), st.randoms(use_true_random=False))
def test_invariant_to_item_relabelling(case, rnd):
    sets, n_items, users, ids = case
    perm = list(range(n_items))
    rnd.shuffle(perm)
    perm = np.array(perm)
    relabelled_ids = np.where(ids >= 0, perm[np.maximum(ids, 0)], -1)
    relabelled_sets = [{int(perm[i]) for i in s} for s in sets]
    before = hit_matrix(ids, _relevance(sets, n_items), users)
    after = hit_matrix(relabelled_ids, _relevance(relabelled_sets, n_items), users)
    np.testing.assert_array_equal(before, after)
    n_rel = np.array([len(sets[u]) for u in users])
    keep = n_rel > 0
    if keep.any():
        m0, m1 = _all_metrics(before[keep], n_rel[keep]), _all_metrics(after[keep], n_rel[keep])
        for name in m0:
            np.testing.assert_array_equal(m0[name], m1[name])


@pytest.mark.parametrize(
    "data, expected",
    [
        (np.array([1.0, 5.0, 0.5], dtype=np.float32), False),  # positive: the minimum decides
        (np.array([1.0, 0.0, 2.0]), True),
        (np.array([-1.0, 2.0, -0.5]), False),  # negative feedback is stored, not zero
        (np.array([-1.0, -0.0, 3.0]), True),  # a negative zero is a zero
        (np.array([np.nan, 1.0]), False),  # nan is stored (and not zero)
        (np.array([3, 0, 1], dtype=np.int8), True),
        (np.array([True, True]), False),
        (np.array([True, False]), True),
        (np.array([], dtype=np.float32), False),
    ],
)
def test_explicit_zero_check(data, expected):
    from evaluation._ranking import _has_explicit_zeros

    assert _has_explicit_zeros(data) is expected
