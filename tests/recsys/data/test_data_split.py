"""Splits: hand-worked assignments, leak-freedom, seeding, boundaries and parameter errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recsys.data import (
    DataError,
    Interactions,
    Split,
    apply_relevance_threshold,
    generate_synthetic,
    leave_last_k,
    random_holdout,
    time_cutoff,
)


def _build(users: list[int], items: list[int], ts: list[int] | None = None,
           values: list[float] | None = None) -> Interactions:
    return Interactions.from_arrays(
        user_index=users, item_index=items, values=values, timestamps=ts,
        user_ids=[f"u{u}" for u in range(max(users) + 1)], item_ids=list(range(100, 100 + max(items) + 1)),
        has_ratings=values is not None,
    )


def _assert_partition(data: Interactions, split: Split) -> None:
    """Same vocabularies, no pair on both sides, and together exactly the input."""
    for side in (split.train, split.test):
        assert side.user_ids is data.user_ids and side.item_ids is data.item_ids
        assert side.matrix.shape == data.matrix.shape
    assert split.train.binary().multiply(split.test.binary()).nnz == 0
    union = pd.concat([split.train.to_frame(), split.test.to_frame()]).sort_values(["user_id", "item_id"])
    pd.testing.assert_frame_equal(union.reset_index(drop=True), data.to_frame())


# Users 0..3 with 4, 2, 1 and 5 interactions.
COUNTS = [4, 2, 1, 5]
HAND = _build(
    users=[u for u, n in enumerate(COUNTS) for _ in range(n)],
    items=[i for n in COUNTS for i in range(n)],
    ts=list(range(sum(COUNTS))),
)


@pytest.mark.parametrize(
    ("fraction", "min_train", "expected_test"),
    [
        (0.5, 1, [2, 1, 0, 3]),  # round half up: 2, 1, 0.5 -> 1 but capped by n - 1 = 0, 2.5 -> 3
        (0.25, 1, [1, 1, 0, 1]),  # 1, 0.5 -> 1, 0.25 -> 0, 1.25 -> 1
        (0.5, 2, [2, 0, 0, 3]),  # keeps two in train: caps 2, 0, 0, 3
        (0.5, 0, [2, 1, 1, 3]),  # nothing kept back: the single-interaction user goes to test
        (0.9, 1, [3, 1, 0, 4]),  # 3.6 -> 4 capped to 3, 1.8 -> 2 capped to 1, 4.5 -> 5 capped to 4
    ],
)
def test_random_holdout_counts_per_user(fraction: float, min_train: int, expected_test: list[int]) -> None:
    split = random_holdout(HAND, test_fraction=fraction, min_train=min_train, random_state=7)
    assert split.test.matrix.getnnz(axis=1).tolist() == expected_test
    assert split.train.matrix.getnnz(axis=1).tolist() == [n - t for n, t in zip(COUNTS, expected_test, strict=True)]
    _assert_partition(HAND, split)


def test_random_holdout_seeding() -> None:
    data = generate_synthetic(n_users=100, n_items=80, n_interactions=2_000).interactions
    a = random_holdout(data, random_state=1)
    b = random_holdout(data, random_state=1)
    c = random_holdout(data, random_state=2)
    assert (a.test.matrix != b.test.matrix).nnz == 0
    assert (a.test.matrix != c.test.matrix).nnz > 0
    np.testing.assert_array_equal(a.test.matrix.getnnz(axis=1), c.test.matrix.getnnz(axis=1))


def test_random_holdout_picks_every_position() -> None:
    # Over seeds, each of user 3's five interactions lands in test sometimes.
    seen = np.zeros(5)
    for seed in range(40):
        seen += random_holdout(HAND, test_fraction=0.25, random_state=seed).test.matrix[3].toarray()[0]
    assert (seen > 0).all()


def test_leave_last_k_picks_the_latest() -> None:
    # u0: item 0 at t=10, 1 at 30, 2 at 30, 3 at 20 -> order 0, 3, 1, 2 (tie: higher item index is later)
    # u1: a single interaction; u2: item 0 at 50, item 1 at 40.
    data = _build(users=[0, 0, 0, 0, 1, 2, 2], items=[0, 1, 2, 3, 0, 0, 1], ts=[10, 30, 30, 20, 5, 50, 40])
    one = leave_last_k(data, k=1)
    assert _pairs(one.test) == {(0, 2), (2, 0)}
    two = leave_last_k(data, k=2)
    assert _pairs(two.test) == {(0, 1), (0, 2), (2, 0)}  # u2 keeps min_train = 1 in train
    none_kept = leave_last_k(data, k=3, min_train=0)
    assert _pairs(none_kept.test) == {(0, 1), (0, 2), (0, 3), (1, 0), (2, 0), (2, 1)}
    for split in (one, two, none_kept):
        _assert_partition(data, split)


def test_time_cutoff_boundary() -> None:
    data = _build(users=[0, 0, 1, 1, 2], items=[0, 1, 0, 1, 0], ts=[10, 20, 30, 40, 40])
    split = time_cutoff(data, cutoff=30)
    assert sorted(split.test.timestamps.tolist()) == [30, 40, 40]  # >= cutoff goes to test
    assert sorted(split.train.timestamps.tolist()) == [10, 20]
    _assert_partition(data, split)
    assert sorted(time_cutoff(data, test_fraction=0.4).test.timestamps.tolist()) == [40, 40]
    # 0.2 * 5 = 1 entry, but its timestamp ties with another one: both go to test.
    assert sorted(time_cutoff(data, test_fraction=0.2).test.timestamps.tolist()) == [40, 40]
    assert time_cutoff(data, test_fraction=0.6).test.n_interactions == 3
    assert time_cutoff(data, test_fraction=0.05).test.n_interactions == 0  # 0.25 rounds to 0
    assert time_cutoff(data, cutoff=41).test.n_interactions == 0


def test_relevance_threshold() -> None:
    data = _build(users=[0, 0, 1, 1], items=[0, 1, 0, 1], ts=[1, 2, 3, 4], values=[1.0, 3.0, 4.0, 5.0])
    split = time_cutoff(data, cutoff=2)
    kept = apply_relevance_threshold(split, 4.0)
    assert kept.train is split.train
    assert kept.test.matrix.data.tolist() == [4.0, 5.0]
    assert kept.test.timestamps.tolist() == [3, 4]
    assert apply_relevance_threshold(split, None) is split
    assert apply_relevance_threshold(split, 3).test.n_interactions == 3


@settings(max_examples=60, deadline=None)
@given(
    cells=st.sets(st.tuples(st.integers(0, 6), st.integers(0, 8)), min_size=1, max_size=50),
    fraction=st.floats(0.05, 0.95),
    k=st.integers(1, 4),
    seed=st.integers(0, 2**32 - 1),
)
def test_every_split_is_a_partition(cells: set, fraction: float, k: int, seed: int) -> None:
    users, items = zip(*sorted(cells), strict=True)
    rng = np.random.default_rng(seed)
    data = _build(list(users), list(items), ts=rng.integers(0, 5, len(cells)).tolist())
    counts = data.matrix.getnnz(axis=1)
    per_user = (random_holdout(data, test_fraction=fraction, random_state=seed), leave_last_k(data, k=k))
    for split in (*per_user, time_cutoff(data, test_fraction=fraction)):
        _assert_partition(data, split)
    for split in per_user:  # min_train=1: every user keeps an interaction in train
        assert (split.train.matrix.getnnz(axis=1) >= np.minimum(counts, 1)).all()


def test_min_train_is_kept_in_train() -> None:
    data = generate_synthetic(n_users=200, n_items=50, n_interactions=3_000).interactions
    counts = data.matrix.getnnz(axis=1)
    holdout = random_holdout(data, test_fraction=0.9, min_train=2)
    assert counts.min() >= 3
    # n_test = min(round_half_up(0.9 n), n - 2), so train = max(n - round_half_up(0.9 n), 2).
    expected = np.maximum(counts - np.floor(0.9 * counts + 0.5), 2)
    np.testing.assert_array_equal(holdout.train.matrix.getnnz(axis=1), expected)
    last = leave_last_k(data, k=10, min_train=2)
    np.testing.assert_array_equal(last.test.matrix.getnnz(axis=1), np.minimum(10, counts - 2))


def _pairs(it: Interactions) -> set[tuple[int, int]]:
    return set(zip(it.row_index().tolist(), it.matrix.indices.tolist(), strict=True))


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: random_holdout(HAND, test_fraction=1.0), ValueError,
         r"test_fraction: expected a number in the open interval \(0, 1\), got 1\.0"),
        (lambda: random_holdout(HAND, test_fraction=0), ValueError,
         r"test_fraction: expected a number in the open interval \(0, 1\), got 0"),
        (lambda: random_holdout(HAND, min_train=-1), ValueError, "min_train: expected an integer >= 0, got -1"),
        (lambda: leave_last_k(HAND, k=0), ValueError, "k: expected an integer >= 1, got 0"),
        (lambda: leave_last_k(HAND, k=1.5), ValueError, r"k: expected an integer >= 1, got 1\.5"),
        (lambda: time_cutoff(HAND), ValueError,
         "time_cutoff: give exactly one of cutoff and test_fraction, got cutoff=None, test_fraction=None"),
        (lambda: time_cutoff(HAND, cutoff=3, test_fraction=0.2), ValueError,
         "time_cutoff: give exactly one of cutoff and test_fraction, got cutoff=3, test_fraction=0.2"),
        (lambda: time_cutoff(HAND, cutoff="3"), ValueError, "cutoff: expected an integer, got '3'"),
        (lambda: time_cutoff(HAND, test_fraction=1.5), ValueError,
         r"test_fraction: expected a number in the open interval \(0, 1\), got 1\.5"),
        (lambda: leave_last_k(_build([0], [0])), DataError,
         r"leave_last_k: the interactions have no timestamps \(expected one per entry\)"),
        (lambda: time_cutoff(_build([0], [0]), cutoff=1), DataError,
         r"time_cutoff: the interactions have no timestamps \(expected one per entry\)"),
        (lambda: apply_relevance_threshold(Split(train=HAND, test=HAND), float("nan")), ValueError,
         "threshold: expected a finite number or None, got nan"),
        (lambda: random_holdout(HAND.matrix), TypeError, "data: expected Interactions, got csr_matrix"),
    ],
)
def test_invalid_arguments(call, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=f"^{message}$"):
        call()
