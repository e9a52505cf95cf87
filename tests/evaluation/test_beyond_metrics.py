"""Beyond-accuracy metrics: coverage, exposure Gini, popularity, novelty, diversity."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from evaluation import (
    average_popularity,
    catalog_coverage,
    exposure_gini,
    intra_list_diversity,
    novelty,
    popularity_share,
)


# ------------------------------------------------------------ hand-worked cases
def test_catalog_coverage_counts_distinct_items_and_ignores_padding():
    # items {0, 1} of 4 recommended
    assert catalog_coverage(np.array([[0, 1], [1, -1]]), n_items=4) == 0.5
    assert catalog_coverage(np.array([[-1, -1]]), n_items=3) == 0.0


def test_exposure_gini_hand_values():
    # counts [1, 2, 3] sorted: sum (2i - n - 1) x_i = -2*1 + 0*2 + 2*3 = 4; n * sum = 18 -> 2/9
    # (mean absolute difference check: ordered pairs |1-2|,|1-3|,|2-3| twice = 8; 2 n^2 mean = 36)
    ids = np.array([[0, 1, 2], [1, 2, -1], [2, -1, -1]])
    assert exposure_gini(ids, n_items=3) == pytest.approx(2 / 9)
    # counts [0, 2]: (-1*0 + 1*2) / (2 * 2) = 1/2, the maximum (n - 1)/n for two items
    assert exposure_gini(np.array([[0], [0]]), n_items=2) == 0.5
    # equal counts -> 0
    assert exposure_gini(np.array([[0, 1], [1, 0]]), n_items=2) == 0.0


def test_exposure_gini_counts_never_recommended_items():
    # counts [2, 0, 0, 0]: sorted [0, 0, 0, 2]: (3 * 2) / (4 * 2) = 3/4
    assert exposure_gini(np.array([[0], [0]]), n_items=4) == 0.75


def test_exposure_gini_of_only_padding_is_zero():
    assert exposure_gini(np.array([[-1, -1]]), n_items=3) == 0.0


def test_average_popularity_hand_values():
    # (0.5 + 0.1) / 2 = 0.3; padding ignored: 0.2 / 1; all padding -> nan
    got = average_popularity(np.array([[0, 1], [2, -1], [-1, -1]]), np.array([0.5, 0.1, 0.2]))
    assert got[:2].tolist() == pytest.approx([0.3, 0.2])
    assert math.isnan(got[2])


def test_novelty_hand_values():
    # -log2(0.5) = 1, -log2(0.25) = 2 -> 1.5; p = 0 is floored at 1/8 -> 3 bits
    pop = np.array([0.5, 0.25, 0.0])
    got = novelty(np.array([[0, 1], [2, -1], [-1, -1]]), pop, floor=1 / 8)
    assert got[:2].tolist() == [1.5, 3.0]
    assert math.isnan(got[2])


def test_novelty_default_floor_is_tiny():
    # -log2(1e-12) = 12 * log2(10)
    assert novelty(np.array([[0]]), np.array([0.0]))[0] == pytest.approx(12 * math.log2(10))


def test_intra_list_diversity_hand_values():
    cats = np.array([0, 0, 1, 2])
    ids = np.array(
        [
            [0, 1, 2],  # pairs (0,0) same, (0,1) differ, (0,1) differ -> 2/3
            [0, 3, -1],  # one valid pair, categories differ -> 1
            [0, -1, 2],  # padding in the middle: one valid pair (0, 1) -> 1
            [2, -1, -1],  # fewer than two items -> 0
            [0, 1, -1],  # one pair, same category -> 0
        ]
    )
    got = intra_list_diversity(ids, cats)
    assert got.tolist() == pytest.approx([2 / 3, 1.0, 1.0, 0.0, 0.0])


def test_intra_list_diversity_with_k_one_is_zero():
    assert intra_list_diversity(np.array([[0], [1]]), np.array([0, 1])).tolist() == [0.0, 0.0]


def test_popularity_share_counts_users_not_weights():
    # item 0: users 0 and 1 (weight 5 counts once); item 1: explicit zero only -> 0;
    # item 2: user 2 -> 1/3
    train = sp.csr_matrix(
        (np.array([5.0, 0.0, 1.0, 1.0]), np.array([0, 1, 0, 2]), np.array([0, 2, 3, 4])),
        shape=(3, 3),
    )
    assert popularity_share(train).tolist() == pytest.approx([2 / 3, 0.0, 1 / 3])


# ---------------------------------------------------------------------- errors
def test_n_items_must_be_positive():
    with pytest.raises(ValueError, match=r"n_items: expected a positive integer, got 0"):
        catalog_coverage(np.array([[0]]), n_items=0)
    with pytest.raises(ValueError, match=r"n_items: expected a positive integer, got 2\.0"):
        exposure_gini(np.array([[0]]), n_items=2.0)


def test_ids_beyond_the_catalogue_raise():
    with pytest.raises(
        ValueError, match=r"ids: item indices must lie in \[0, 2\) \(or be -1 for padding\), got 5"
    ):
        catalog_coverage(np.array([[5]]), n_items=2)
    with pytest.raises(ValueError, match=r"ids: item indices must lie in \[0, 1\)"):
        average_popularity(np.array([[1]]), np.array([0.5]))


def test_item_popularity_must_be_shares():
    with pytest.raises(
        ValueError,
        match=r"item_popularity: expected shares in \[0, 1\], got values in \[0\.0, 3\.0\]",
    ):
        average_popularity(np.array([[0]]), np.array([0.0, 3.0]))
    with pytest.raises(
        ValueError,
        match=r"item_popularity: expected a non-empty 1-D array \(one share per item\), "
        r"got shape \(1, 1\)",
    ):
        novelty(np.array([[0]]), np.array([[0.5]]))


def test_novelty_floor_must_be_a_share():
    with pytest.raises(ValueError, match=r"floor: expected a number in \(0, 1\], got 0"):
        novelty(np.array([[0]]), np.array([0.5]), floor=0)


def test_item_category_must_be_integer_codes():
    with pytest.raises(
        ValueError,
        match=r"item_category: expected a non-empty 1-D array of integer category codes, "
        r"got dtype <U1 and shape \(2,\)",
    ):
        intra_list_diversity(np.array([[0, 1]]), np.array(["a", "b"]))


def test_popularity_share_needs_a_sparse_matrix():
    with pytest.raises(
        TypeError, match=r"train: expected a scipy sparse user x item matrix, got ndarray"
    ):
        popularity_share(np.ones((2, 2)))


# ----------------------------------------------------------------- properties
@st.composite
def list_sets(draw):
    """Padded top-k lists without repeats, plus popularity shares and category codes."""
    n_items = draw(st.integers(1, 10))
    k = draw(st.integers(1, 6))
    n_rows = draw(st.integers(1, 6))
    rows = []
    for _ in range(n_rows):
        order = draw(st.permutations(range(n_items)))
        length = draw(st.integers(0, min(k, n_items)))
        rows.append(list(order[:length]) + [-1] * (k - length))
    pop = np.array(draw(st.lists(st.floats(0, 1), min_size=n_items, max_size=n_items)))
    cats = np.array(draw(st.lists(st.integers(0, 3), min_size=n_items, max_size=n_items)))
    return np.array(rows, dtype=np.int64), n_items, pop, cats


def _relabel(ids, perm):
    return np.where(ids >= 0, perm[np.maximum(ids, 0)], -1)


@settings(max_examples=150, deadline=None)
@given(list_sets())
def test_bounded(case):
    ids, n_items, pop, cats = case
    assert 0.0 <= catalog_coverage(ids, n_items) <= 1.0
    assert 0.0 <= exposure_gini(ids, n_items) <= (n_items - 1) / n_items + 1e-12
    ap = average_popularity(ids, pop)
    assert np.all(np.isnan(ap) | ((ap >= 0) & (ap <= 1 + 1e-12)))
    nov = novelty(ids, pop)
    assert np.all(np.isnan(nov) | (nov >= 0))
    ild = intra_list_diversity(ids, cats)
    assert np.all((ild >= 0) & (ild <= 1))
    # nan exactly for all-padding rows
    empty = (ids < 0).all(axis=1)
    np.testing.assert_array_equal(np.isnan(ap), empty)


@settings(max_examples=150, deadline=None)
@given(list_sets())
def test_match_brute_force(case):
    ids, n_items, pop, cats = case
    counts = np.bincount(ids[ids >= 0], minlength=n_items).astype(float)
    if counts.sum():
        mad = np.abs(counts[:, None] - counts[None, :]).sum()
        expected_gini = mad / (2 * n_items**2 * counts.mean())
    else:
        expected_gini = 0.0
    assert exposure_gini(ids, n_items) == pytest.approx(expected_gini, abs=1e-12)
    for row, ild in zip(ids.tolist(), intra_list_diversity(ids, cats)):
        items = [i for i in row if i >= 0]
        pairs = list(itertools.combinations(items, 2))
        expected = sum(cats[a] != cats[b] for a, b in pairs) / len(pairs) if pairs else 0.0
        assert ild == pytest.approx(expected)


@settings(max_examples=100, deadline=None)
@given(list_sets(), st.randoms(use_true_random=False))
def test_invariant_to_item_relabelling(case, rnd):
    ids, n_items, pop, cats = case
    perm = list(range(n_items))
    rnd.shuffle(perm)
    perm = np.array(perm)
    new_ids = _relabel(ids, perm)
    # the item formerly at index i now lives at perm[i]
    new_pop, new_cats = np.empty_like(pop), np.empty_like(cats)
    new_pop[perm], new_cats[perm] = pop, cats
    assert catalog_coverage(new_ids, n_items) == catalog_coverage(ids, n_items)
    assert exposure_gini(new_ids, n_items) == pytest.approx(exposure_gini(ids, n_items), abs=1e-15)
    np.testing.assert_allclose(average_popularity(new_ids, new_pop), average_popularity(ids, pop))
    np.testing.assert_allclose(novelty(new_ids, new_pop), novelty(ids, pop))
    np.testing.assert_array_equal(
        intra_list_diversity(new_ids, new_cats), intra_list_diversity(ids, cats)
    )
