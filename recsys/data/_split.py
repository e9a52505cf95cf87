"""Train/test splits of :class:`Interactions`, seeded, vectorised and leak-free.

Every split assigns each stored entry to exactly one side, so no (user, item)
pair is in both and ``train`` and ``test`` together are the input. Both sides
keep the input's vocabularies (same shape, same internal indices).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from recsys.data._types import Interactions
from recsys.errors import DataError

__all__ = ["Split", "apply_relevance_threshold", "leave_last_k", "random_holdout", "time_cutoff"]


@dataclass(frozen=True, eq=False)
class Split:
    """A train/test pair on the same vocabularies."""

    train: Interactions
    test: Interactions


def random_holdout(
    data: Interactions,
    *,
    test_fraction: float = 0.25,
    min_train: int = 1,
    random_state: int | None = 0,
) -> Split:
    """Hold out a random ``test_fraction`` of each user's interactions.

    A user with ``n`` interactions gives ``min(round_half_up(test_fraction * n),
    n - min_train)`` of them (never fewer than 0) to test, chosen uniformly at
    random; so a user with at most ``min_train`` interactions stays in train.

    Examples
    --------
    >>> it = Interactions.from_arrays(user_index=[0, 0, 0, 0, 1], item_index=[0, 1, 2, 3, 0],
    ...                               user_ids=["a", "b"], item_ids=[1, 2, 3, 4])
    >>> s = random_holdout(it, test_fraction=0.5, random_state=1)
    >>> s.train.matrix.getnnz(axis=1).tolist(), s.test.matrix.getnnz(axis=1).tolist()
    ([2, 1], [2, 0])
    """
    _check_data(data)
    _check_fraction("test_fraction", test_fraction)
    _check_int("min_train", min_train, low=0)
    counts = np.diff(data.matrix.indptr)
    n_test = np.floor(test_fraction * counts + 0.5).astype(np.int64)
    n_test = np.clip(np.minimum(n_test, counts - min_train), 0, None)
    rows = data.row_index()
    rng = np.random.default_rng(random_state)
    order = np.lexsort((rng.random(rows.size), rows))  # random order within each user
    rank = np.arange(rows.size) - data.matrix.indptr[rows[order]]
    is_test = np.empty(rows.size, dtype=bool)
    is_test[order] = rank < n_test[rows[order]]
    return _split(data, is_test)


def leave_last_k(data: Interactions, *, k: int = 1, min_train: int = 1) -> Split:
    """Hold out each user's ``k`` most recent interactions.

    Entries are ordered by timestamp; among equal timestamps the higher item
    index counts as more recent. A user with ``n`` interactions gives
    ``min(k, n - min_train)`` (never fewer than 0) to test.

    Raises
    ------
    DataError
        If ``data`` has no timestamps.

    Examples
    --------
    >>> it = Interactions.from_arrays(user_index=[0, 0, 0, 1], item_index=[0, 1, 2, 0],
    ...                               user_ids=["a", "b"], item_ids=[1, 2, 3],
    ...                               timestamps=[30, 10, 20, 5])
    >>> s = leave_last_k(it, k=1)
    >>> s.test.matrix.toarray().tolist()
    [[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
    """
    _check_data(data)
    _check_int("k", k, low=1)
    _check_int("min_train", min_train, low=0)
    ts = _require_timestamps(data, "leave_last_k")
    m = data.matrix
    counts = np.diff(m.indptr)
    n_test = np.clip(np.minimum(k, counts - min_train), 0, None)
    rows = data.row_index()
    order = np.lexsort((m.indices, ts, rows))  # oldest first within each user
    from_end = m.indptr[rows[order] + 1] - 1 - np.arange(rows.size)
    is_test = np.empty(rows.size, dtype=bool)
    is_test[order] = from_end < n_test[rows[order]]
    return _split(data, is_test)


def time_cutoff(
    data: Interactions, *, cutoff: int | None = None, test_fraction: float | None = None
) -> Split:
    """Split at one global time: entries with ``timestamp >= cutoff`` go to test.

    Give exactly one of ``cutoff`` and ``test_fraction``. With ``test_fraction``
    the cutoff is the timestamp of the ``round_half_up(test_fraction * n)``-th
    most recent entry, so entries tied with it also go to test (the test share
    can exceed ``test_fraction``). A user can end up only in test.

    Examples
    --------
    >>> it = Interactions.from_arrays(user_index=[0, 0, 1, 1], item_index=[0, 1, 0, 1],
    ...                               user_ids=["a", "b"], item_ids=[1, 2],
    ...                               timestamps=[10, 20, 30, 40])
    >>> time_cutoff(it, cutoff=30).test.n_interactions
    2
    >>> time_cutoff(it, test_fraction=0.25).test.timestamps.tolist()
    [40]
    """
    _check_data(data)
    if (cutoff is None) == (test_fraction is None):
        raise ValueError(
            f"time_cutoff: give exactly one of cutoff and test_fraction, "
            f"got cutoff={cutoff!r}, test_fraction={test_fraction!r}"
        )
    ts = _require_timestamps(data, "time_cutoff")
    if cutoff is None:
        _check_fraction("test_fraction", test_fraction)
        n_test = int(np.floor(test_fraction * ts.size + 0.5))
        if n_test == 0:
            cutoff = int(ts.max()) + 1 if ts.size else 0
        else:
            cutoff = int(np.partition(ts, ts.size - n_test)[ts.size - n_test])
    else:
        _check_int("cutoff", cutoff, low=None)
    return _split(data, ts >= cutoff)


def apply_relevance_threshold(split: Split, threshold: float | None) -> Split:
    """Keep only test entries with ``value >= threshold``; ``train`` is unchanged.

    ``None`` returns ``split`` itself.

    Examples
    --------
    >>> it = Interactions.from_arrays(user_index=[0, 0], item_index=[0, 1],
    ...                               user_ids=["a"], item_ids=[1, 2], values=[2.0, 5.0])
    >>> s = apply_relevance_threshold(Split(train=it.select([False, False]), test=it), 4.0)
    >>> s.test.matrix.data.tolist()
    [5.0]
    """
    if threshold is None:
        return split
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real) or not np.isfinite(threshold):
        raise ValueError(f"threshold: expected a finite number or None, got {threshold!r}")
    return Split(train=split.train, test=split.test.select(split.test.matrix.data >= threshold))


def _split(data: Interactions, is_test: np.ndarray) -> Split:
    return Split(train=data.select(~is_test), test=data.select(is_test))


def _check_data(data: object) -> None:
    if not isinstance(data, Interactions):
        raise TypeError(f"data: expected Interactions, got {type(data).__name__}")


def _require_timestamps(data: Interactions, name: str) -> np.ndarray:
    if data.timestamps is None:
        raise DataError(f"{name}: the interactions have no timestamps (expected one per entry)")
    return data.timestamps


def _check_fraction(name: str, value: object) -> None:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and 0 < value < 1
    if not ok:
        raise ValueError(f"{name}: expected a number in the open interval (0, 1), got {value!r}")


def _check_int(name: str, value: object, *, low: int | None) -> None:
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if not ok or (low is not None and value < low):
        allowed = "an integer" if low is None else f"an integer >= {low}"
        raise ValueError(f"{name}: expected {allowed}, got {value!r}")
