"""Popularity: exact rankings on hand-made matrices."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recsys.models import Popularity

# item users: item 0 -> {0, 1, 3}, item 1 -> {1}, item 2 -> {0, 2}, item 3 -> {2}, item 4 -> {}
X = sp.csr_matrix(
    np.array(
        [
            [1, 0, 1, 0, 0],
            [1, 1, 0, 0, 0],
            [0, 0, 1, 1, 0],
            [5, 0, 0, 0, 0],
        ],
        dtype=np.float32,
    )
)


def test_popularity_counts_users_not_weights() -> None:
    model = Popularity().fit(X)
    assert model.item_popularity_.tolist() == [3.0, 1.0, 2.0, 1.0, 0.0]
    assert model.item_popularity_.dtype == np.float32


def test_ranking_excludes_seen_and_breaks_ties_by_item_index() -> None:
    ids, scores = Popularity().fit(X).recommend([3, 0], k=4)
    # user 3 saw item 0: items 1 and 3 tie at 1 -> lower index first
    assert ids.tolist() == [[2, 1, 3, 4], [1, 3, 4, -1]]
    assert scores.tolist() == [[2.0, 1.0, 1.0, 0.0], [1.0, 1.0, 0.0, -np.inf]]


def test_ranking_with_seen_items() -> None:
    ids, scores = Popularity().fit(X).recommend([3], k=3, exclude_seen=False)
    assert ids.tolist() == [[0, 2, 1]]
    assert scores.tolist() == [[3.0, 2.0, 1.0]]


def test_ties_at_the_cut_off_go_to_the_lowest_indices() -> None:
    # 40 items with one user each: every top-5 is a tie at the cut-off
    X_ties = sp.csr_matrix(np.eye(40, dtype=np.float32))
    ids, _ = Popularity().fit(X_ties).recommend([0, 3], k=5)
    assert ids.tolist() == [[1, 2, 3, 4, 5], [0, 1, 2, 4, 5]]


def test_duplicate_entries_count_once_and_stored_zeros_not_at_all() -> None:
    # user 0: item 0 twice (summed), item 1 stored as an explicit zero
    X_raw = sp.csr_matrix(
        (
            np.array([1.0, 1.0, 0.0, 1.0], dtype=np.float32),
            np.array([0, 0, 1, 2]),
            np.array([0, 3, 4]),
        ),
        shape=(2, 3),
    )
    model = Popularity().fit(X_raw)
    assert model.item_popularity_.tolist() == [1.0, 0.0, 1.0]
    ids, _ = model.recommend([0], k=2)
    assert ids.tolist() == [[2, 1]]  # item 1 is not "seen"


def test_score_is_the_popularity_for_every_user() -> None:
    model = Popularity().fit(X)
    expected = np.tile(model.item_popularity_, (2, 1))
    np.testing.assert_array_equal(model._score(np.array([0, 2])), expected)
