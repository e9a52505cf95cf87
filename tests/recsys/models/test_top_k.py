"""top_k: the best k columns per row, ties to the lower index, -inf and NaN never returned."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.models._base import top_k


def _reference(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """A full stable sort by (score descending, index ascending), NaN as -inf, -inf as padding."""
    s = np.where(np.isnan(scores), -np.inf, scores).astype(np.float32)
    n_rows, n_cols = s.shape
    order = np.lexsort((np.broadcast_to(np.arange(n_cols), s.shape), -s), axis=1)[:, :k]
    sc = np.take_along_axis(s, order, axis=1)
    ids = np.where(np.isneginf(sc), -1, order)
    if k > n_cols:
        ids = np.pad(ids, ((0, 0), (0, k - n_cols)), constant_values=-1)
        sc = np.pad(sc, ((0, 0), (0, k - n_cols)), constant_values=-np.inf)
    return ids, sc


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("k", [1, 3, 7, 12, 15])
def test_equals_a_full_stable_sort(seed: int, k: int) -> None:
    rng = np.random.default_rng(seed)
    n_rows, n_cols = 60, 12
    floats = rng.random((n_rows, n_cols)).astype(np.float32)  # no ties: the fast path
    ties = rng.integers(0, 3, (n_rows, n_cols)).astype(np.float32)  # ties in most rows
    mixed = floats.copy()
    mixed[:5] = ties[:5]  # ties in a few rows only: the per-row path
    holes = mixed.copy()
    holes[rng.random(holes.shape) < 0.4] = -np.inf
    holes[rng.random(holes.shape) < 0.1] = np.nan
    for scores in (floats, ties, mixed, holes):
        ids, sc = top_k(scores, k)
        ref_ids, ref_sc = _reference(scores, k)
        np.testing.assert_array_equal(ids, ref_ids)
        np.testing.assert_array_equal(sc, ref_sc)


def test_hand_worked_ties_and_padding() -> None:
    scores = np.array([
        [1.0, 2.0, 1.0, 1.0, 0.5],  # 2.0, then the 1.0s by index
        [-np.inf, 3.0, -np.inf, np.nan, -np.inf],  # one real item, the rest padding
        [4.0, 4.0, 4.0, 4.0, 4.0],  # all tie
    ])
    ids, sc = top_k(scores, 3)
    assert ids.tolist() == [[1, 0, 2], [1, -1, -1], [0, 1, 2]]
    assert sc[0].tolist() == [2.0, 1.0, 1.0] and sc[1, 0] == 3.0 and np.isneginf(sc[1, 1:]).all()
