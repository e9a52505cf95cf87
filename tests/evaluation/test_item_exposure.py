"""Item-side exposure: rank_exposure, group_exposure, popularity_groups, long_tail_share."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from evaluation import group_exposure, long_tail_share, popularity_groups, rank_exposure

A = 1 / math.log2(3)  # attention at rank 2


def _train(counts: list[int]) -> sp.csr_matrix:
    """A user x item matrix whose item j has counts[j] interactions (users 0, 1, ...)."""
    rows = [u for c in counts for u in range(c)]
    cols = [j for j, c in enumerate(counts) for _ in range(c)]
    return sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(max(counts), len(counts)))


# ------------------------------------------------------------- rank_exposure
def test_rank_exposure_hand_values():
    # ranks 1, 2, 3 -> 1, 1/log2(3), 1/2; padding gets nothing
    exposure = rank_exposure(np.array([[0, 1, 2], [2, -1, -1]]), 4)
    assert exposure.tolist() == pytest.approx([1.0, A, 0.5 + 1.0, 0.0])


def test_rank_exposure_custom_weight():
    exposure = rank_exposure(np.array([[1, 0], [1, -1]]), 2, weight=np.array([1.0, 0.25]))
    assert exposure.tolist() == [0.25, 2.0]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_items": 0}, r"n_items: expected a positive integer, got 0"),
        (
            {"weight": np.array([0.5, 1.0])},
            r"rank_weight: expected finite, non-negative, non-increasing",
        ),
        (
            {"weight": np.ones(3)},
            r"rank_weight: expected one weight per rank \(2\), got shape \(3,\)",
        ),
    ],
)
def test_rank_exposure_errors(kwargs, message):
    args = {"n_items": 3, **kwargs}
    with pytest.raises(ValueError, match=message):
        rank_exposure(np.array([[0, 1]]), **args)


# ------------------------------------------------------------ group_exposure
def test_group_exposure_hand_worked():
    # items 0, 1 in "a", items 2, 3, 4 in "b"; exposure item 0: 1 + A, item 1: 1, item 3: A
    ids = np.array([[0, 3], [1, 0]])
    relevant = sp.csr_matrix([[1, 0, 0, 1, 1], [0, 0, 1, 0, 0]])
    rep = group_exposure(ids, np.array(["a", "a", "b", "b", "b"]), relevant=relevant)
    total = 2 + 2 * A
    assert rep.groups == ["a", "b"]
    assert rep.exposure_share == pytest.approx({"a": (2 + A) / total, "b": A / total})
    assert rep.catalog_share == pytest.approx({"a": 0.4, "b": 0.6})
    # relevant entries: items 0, 3, 4, 2 -> a 1/4, b 3/4
    assert rep.relevant_share == {"a": 0.25, "b": 0.75}
    # per-size exposure: a ((2 + A)/total)/0.4, b (A/total)/0.6; ratio = min / max
    assert rep.exposure_ratio == pytest.approx((A / 0.6) / ((2 + A) / 0.4))


def test_group_exposure_equal_per_item_exposure_gives_ratio_one():
    rep = group_exposure(np.array([[0], [1], [2]]), np.array(["x", "y", "y"]))
    assert rep.exposure_share == pytest.approx({"x": 1 / 3, "y": 2 / 3})
    assert rep.exposure_ratio == pytest.approx(1.0)
    assert rep.relevant_share is None


def test_group_exposure_without_any_item_is_nan():
    rep = group_exposure(np.array([[-1, -1]]), np.array(["x", None]))
    assert rep.groups == ["unknown", "x"]
    assert all(math.isnan(v) for v in rep.exposure_share.values())
    assert math.isnan(rep.exposure_ratio)


def test_group_exposure_errors():
    message = r"relevant: expected 2 columns \(one per item of item_group\), got 3"
    with pytest.raises(ValueError, match=message):
        group_exposure(np.array([[0]]), np.array(["a", "b"]), relevant=sp.csr_matrix((1, 3)))
    with pytest.raises(ValueError, match=r"ids: item indices must lie in \[0, 2\)"):
        group_exposure(np.array([[5]]), np.array(["a", "b"]))


# --------------------------------------------------------- popularity_groups
def test_popularity_groups_hand_case():
    # counts [5, 3, 1, 1]: 5 + 3 = 8 >= 0.8 * 10, so the head is the first two items
    assert popularity_groups(_train([5, 3, 1, 1])).tolist() == ["head", "head", "tail", "tail"]
    # head_share 0.5: item 0 alone already holds 5 / 10
    assert popularity_groups(_train([5, 3, 1, 1]), head_share=0.5).tolist() == [
        "head", "tail", "tail", "tail"
    ]


def test_popularity_groups_ties_by_item_index_and_unseen_items_are_tail():
    # counts [1, 3, 3, 1, 0]: order 1, 2 (tie, lower index first), 0, 3, 4
    train = _train([1, 3, 3, 1, 0])
    assert popularity_groups(train, head_share=0.3).tolist() == [
        "tail", "head", "tail", "tail", "tail"
    ]
    assert popularity_groups(train, head_share=1.0).tolist() == [
        "head", "head", "head", "head", "tail"
    ]


def test_popularity_groups_counts_entries_not_ratings():
    train = sp.csr_matrix([[5.0, 1.0], [0.0, 1.0]])  # item 1 has two interactions
    assert popularity_groups(train, head_share=0.5).tolist() == ["tail", "head"]


def test_popularity_groups_errors():
    with pytest.raises(ValueError, match=r"head_share: expected a number in \(0, 1\], got 0"):
        popularity_groups(_train([1]), head_share=0)
    with pytest.raises(ValueError, match=r"train: expected at least one interaction"):
        popularity_groups(sp.csr_matrix((2, 3)))


# ----------------------------------------------------------- long_tail_share
def test_long_tail_share_hand_value():
    # tail items 1, 2 at ranks 2, 3: (A + 1/2) / (1 + A + 1/2)
    share = long_tail_share(np.array([[0, 1, 2]]), np.array([False, True, True]))
    assert share == pytest.approx((A + 0.5) / (1.5 + A))
    assert math.isnan(long_tail_share(np.array([[-1]]), np.array([True])))
    with pytest.raises(ValueError, match=r"is_tail: expected a non-empty 1-D boolean array"):
        long_tail_share(np.array([[0]]), np.array([1]))


# ----------------------------------------------------------------- properties
@st.composite
def lists_and_groups(draw):
    n_items = draw(st.integers(1, 8))
    k = draw(st.integers(1, 5))
    rows = []
    for _ in range(draw(st.integers(1, 5))):
        order = draw(st.permutations(range(n_items)))
        length = draw(st.integers(0, min(k, n_items)))
        rows.append(list(order[:length]) + [-1] * (k - length))
    groups = np.array(draw(st.lists(st.sampled_from("pqr"), min_size=n_items, max_size=n_items)))
    return np.array(rows, dtype=np.int64), groups


@settings(max_examples=150, deadline=None)
@given(lists_and_groups())
def test_shares_sum_to_one_and_ratio_is_bounded(case):
    ids, groups = case
    rep = group_exposure(ids, groups)
    assert sum(rep.catalog_share.values()) == pytest.approx(1.0)
    if (ids >= 0).any():
        assert sum(rep.exposure_share.values()) == pytest.approx(1.0)
        assert 0.0 <= rep.exposure_ratio <= 1.0 + 1e-12
        assert 0.0 <= long_tail_share(ids, groups == "p") <= 1.0
    else:
        assert math.isnan(rep.exposure_ratio)


@settings(max_examples=100, deadline=None)
@given(lists_and_groups(), st.randoms(use_true_random=False))
def test_exposure_invariant_to_item_relabelling(case, rnd):
    ids, groups = case
    perm = list(range(groups.size))
    rnd.shuffle(perm)
    perm = np.array(perm)
    new_ids = np.where(ids >= 0, perm[np.maximum(ids, 0)], -1)
    new_groups = np.empty_like(groups)
    new_groups[perm] = groups
    rep, new = group_exposure(ids, groups), group_exposure(new_ids, new_groups)
    np.testing.assert_allclose(list(new.exposure_share.values()), list(rep.exposure_share.values()))
    np.testing.assert_allclose(new.exposure_ratio, rep.exposure_ratio)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 6), min_size=1, max_size=8).filter(any), st.floats(0.05, 1.0))
def test_head_is_the_shortest_popular_prefix(counts, head_share):
    labels = popularity_groups(_train(counts), head_share=head_share)
    head = labels == "head"
    c = np.array(counts)
    # holds at least head_share of the interactions; dropping its least popular item would not
    assert c[head].sum() / c.sum() >= head_share - 1e-12
    assert (c[head].sum() - c[head].min()) / c.sum() < head_share
    # no tail item is more popular than a head item
    assert not (c[~head] > c[head].min()).any()
    assert (c[c == 0] == 0).all() and not head[c == 0].any()
