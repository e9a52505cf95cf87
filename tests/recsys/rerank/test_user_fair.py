"""UserGroupBlendReranker: only the group's lists move, towards popular candidates."""

from __future__ import annotations

import re

import numpy as np
import pytest
import scipy.sparse as sp

from recsys.rerank import UserGroupBlendReranker

# item popularity (distinct training users) [1, 1, 3, 7]: log1p = ln 2 * (1, 1, 2, 3)
# -> min-max over the four items (0, 0, 1/2, 1)
_DENSE = np.zeros((8, 4), dtype=np.float32)
_DENSE[:7, 3] = 1
_DENSE[:3, 2] = 2  # weights do not count, users do
_DENSE[0, 1] = 1
_DENSE[7, 0] = 1
HAND_X = sp.csr_matrix(_DENSE)
GROUP = np.array([True, False, True, False, False, False, False, False])


def test_popularity_defaults_to_distinct_training_users() -> None:
    rr = UserGroupBlendReranker().fit(HAND_X, user_group=GROUP)
    np.testing.assert_allclose(rr.item_log_popularity_, np.log1p([1, 1, 3, 7]))


@pytest.mark.parametrize(
    ("strength", "expected"),
    [
        # scores (10, 9, 6, 0) -> (1, 0.9, 0.6, 0); popularity (0, 0, 0.5, 1)
        # 0.5: blend (0.5, 0.45, 0.55, 0.5): items 0 and 3 tie exactly, input order
        (0.5, [2, 0, 3, 1]),
        # 0.8: blend (0.2, 0.18, 0.52, 0.8)
        (0.8, [3, 2, 0, 1]),
        # 0.2: blend (0.8, 0.72, 0.58, 0.2): the input order
        (0.2, [0, 1, 2, 3]),
    ],
)
def test_hand_worked_blend(strength: float, expected: list[int]) -> None:
    rr = UserGroupBlendReranker(strength=strength).fit(HAND_X, user_group=GROUP)
    ids = np.array([[0, 1, 2, 3], [0, 1, 2, 3]])
    scores = np.array([[10.0, 9.0, 6.0, 0.0]] * 2)
    out_ids, out_scores = rr.rerank(ids, scores, users=np.array([0, 1]), k=4)
    assert out_ids.tolist() == [expected, [0, 1, 2, 3]]  # user 1 is not in the group
    assert out_scores[0].tolist() == [[10.0, 9.0, 6.0, 0.0][i] for i in expected]


def _random_lists(seed: int, n_users: int, n_items: int, n_cand: int) -> tuple:
    rng = np.random.default_rng(seed)
    dense = (rng.random((n_users, n_items)) < rng.random(n_items)) * 1.0
    X = sp.csr_matrix(dense.astype(np.float32))
    ids = np.argsort(rng.random((n_users, n_items)), axis=1)[:, :n_cand]
    scores = -np.sort(-rng.random((n_users, n_cand)), axis=1)
    ids[1, 6:], scores[1, 6:] = -1, -np.inf  # a group user with few candidates
    return X, ids, scores


@pytest.mark.parametrize("strength", [0.3, 1.0])
def test_only_the_group_lists_change(strength: float) -> None:
    X, ids, scores = _random_lists(0, 40, 50, 20)
    group = np.arange(40) % 3 == 1
    rr = UserGroupBlendReranker(strength=strength).fit(X, user_group=group)
    out_ids, out_scores = rr.rerank(ids, scores, users=np.arange(40), k=8)
    np.testing.assert_array_equal(out_ids[~group], ids[~group, :8])
    np.testing.assert_array_equal(out_scores[~group], scores[~group, :8])
    assert (out_ids[group] != ids[group, :8]).any(axis=1).sum() > group.sum() // 2


def test_strength_one_sorts_the_group_by_popularity_among_candidates() -> None:
    X, ids, scores = _random_lists(1, 40, 50, 20)
    group = np.arange(40) % 2 == 1
    rr = UserGroupBlendReranker(strength=1.0).fit(X, user_group=group)
    out_ids, _ = rr.rerank(ids, scores, users=np.arange(40), k=8)
    popularity = np.asarray((X > 0).sum(axis=0)).ravel()
    for user in np.flatnonzero(group):
        cand = ids[user][ids[user] >= 0]
        # most popular first; equal popularity keeps the input order (stable sort)
        expected = cand[np.argsort(-popularity[cand], kind="stable")][:8]
        got = out_ids[user][out_ids[user] >= 0]
        assert got.tolist() == expected.tolist()


def test_given_popularity_replaces_the_training_counts() -> None:
    rr = UserGroupBlendReranker(strength=1.0).fit(
        HAND_X, user_group=GROUP, item_popularity=np.array([9.0, 0.0, 5.0, 1.0])
    )
    ids, scores = np.array([[0, 1, 2, 3]]), np.array([[4.0, 3.0, 2.0, 1.0]])
    assert rr.rerank(ids, scores, users=np.array([2]), k=3)[0].tolist() == [[0, 2, 3]]


def test_a_group_without_members_changes_nothing() -> None:
    X, ids, scores = _random_lists(2, 10, 30, 12)
    rr = UserGroupBlendReranker(strength=1.0).fit(X, user_group=np.zeros(10, dtype=bool))
    np.testing.assert_array_equal(rr.rerank(ids, scores, users=np.arange(10), k=5)[0], ids[:, :5])


def test_bad_attributes_are_named() -> None:
    with pytest.raises(
        ValueError,
        match=re.escape(
            "user_group: expected a boolean array with one entry per user (8,), "
            "got dtype int64 and shape (8,)"
        ),
    ):
        UserGroupBlendReranker().fit(HAND_X, user_group=GROUP.astype(np.int64))
    with pytest.raises(
        ValueError,
        match=re.escape("item_popularity: expected finite values >= 0, got [-1.0, nan]"),
    ):
        UserGroupBlendReranker().fit(
            HAND_X, user_group=GROUP, item_popularity=np.array([1.0, -1.0, np.nan, 2.0])
        )
    with pytest.raises(
        ValueError,
        match=re.escape(
            "item_popularity: expected a numeric array with one entry per item (4,), "
            "got dtype float64 and shape (3,)"
        ),
    ):
        UserGroupBlendReranker().fit(HAND_X, user_group=GROUP, item_popularity=np.ones(3))
