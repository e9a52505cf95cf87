"""Entry counts of the training matrix: per item, and per (user, item category).

``_category_counts`` packs eight category counts into the bytes of one uint64 per
row piece; these tests hold it to plain dense counts where the packing could go
wrong: pieces of a long row, counts past a byte, several words of codes, the
16-bit limit of the row sums, and the fallback beyond it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import evaluation._counts as counts_module
from evaluation import evaluate_rankings, fairness_baseline, fairness_metrics, item_counts
from evaluation._counts import (
    _category_counts,
    _item_counts,
    _row_code_counts,
    _scattered_code_counts,
)

SEEDS = range(10)


def _dense_category_counts(dense: np.ndarray, codes: np.ndarray, n_codes: int) -> np.ndarray:
    return np.stack([dense[:, codes == c].sum(axis=1) for c in range(n_codes)], axis=1)


@pytest.mark.parametrize("kernel", ["scipy's C kernel", "public product"])
@pytest.mark.parametrize("seed", SEEDS)
def test_counts_in_small_slices_equal_dense_counts(seed, kernel, monkeypatch):
    if kernel == "public product":  # the path for a scipy without the private kernel
        monkeypatch.setattr(counts_module, "_csr_matvec", None)
    rng = np.random.default_rng(seed)
    n_items, n_codes = 40, int(rng.integers(1, 20))  # up to three words of codes
    dense = rng.random((30, n_items)) < rng.uniform(0.05, 0.6)
    dense[[0, 7, 29]] = False  # empty rows at the start, inside and at the end
    codes = rng.integers(0, n_codes, n_items)
    matrix = sp.csr_matrix(dense * rng.integers(1, 6, dense.shape).astype(float))
    monkeypatch.setattr(counts_module, "_PASS_ENTRIES", int(rng.integers(1, 8)))
    monkeypatch.setattr(counts_module, "_PACKED_PASS_ENTRIES", int(rng.integers(1, 8)))
    expected = _dense_category_counts(dense, codes, n_codes)
    np.testing.assert_array_equal(_item_counts(matrix), dense.sum(axis=0))
    np.testing.assert_array_equal(_category_counts(matrix, codes, n_codes), expected)
    scattered = _scattered_code_counts(matrix.indptr, matrix.indices, codes, n_codes)
    np.testing.assert_array_equal(scattered, expected)


def test_long_rows_are_counted_past_a_byte_in_every_lane():
    """Rows of many pieces, and single codes holding more than 255 of a row's entries."""
    n_items, n_codes = 3000, 11  # two words
    codes = np.arange(n_items) % n_codes
    rows = [
        np.flatnonzero(codes == 3)[:260],  # 260 entries of one code: one byte would overflow
        np.flatnonzero(codes == 10),  # all 272 of code 10: the second word's last used lane
        np.arange(n_items),  # 3000 entries: 12 pieces, every code 272 or 273 times
        np.array([], dtype=np.int64),
        np.arange(0, n_items, 7),
    ]
    dense = np.zeros((len(rows), n_items), dtype=bool)
    for r, items in enumerate(rows):
        dense[r, items] = True
    counts = _category_counts(sp.csr_matrix(dense.astype(np.float32)), codes, n_codes)
    np.testing.assert_array_equal(counts, _dense_category_counts(dense, codes, n_codes))
    assert counts[0, 3] == 260 and counts[1, 10] == 272


@pytest.mark.parametrize("row_length, packed", [(65_535, True), (65_536, False)])
def test_the_longest_row_decides_between_packed_lanes_and_the_scatter(
    row_length, packed, monkeypatch
):
    """16-bit row sums hold 65,535 entries of one code; one more takes the scatter."""
    codes = np.zeros(row_length + 3, dtype=np.int64)
    codes[-3:] = [1, 2, 1]
    indices = np.concatenate([np.arange(row_length), [row_length + 1, row_length + 2]])
    matrix = sp.csr_matrix(
        (np.ones(indices.size), indices, [0, row_length, row_length, indices.size]),
        shape=(3, codes.size),
    )
    calls = []

    def scattered(*args):
        calls.append(True)
        return _scattered_code_counts(*args)

    monkeypatch.setattr(counts_module, "_scattered_code_counts", scattered)
    counts = _category_counts(matrix, codes, 3)
    np.testing.assert_array_equal(counts, [[row_length, 0, 0], [0, 0, 0], [0, 1, 1]])
    assert bool(calls) is not packed


def test_item_counts_count_stored_nonzero_entries_once():
    matrix = sp.coo_matrix(  # a duplicate (0, 1) and an explicit zero at (1, 2)
        ([4.0, 1.0, 2.0, 0.0, 5.0], ([0, 0, 0, 1, 1], [1, 1, 2, 2, 0])), shape=(2, 4)
    )
    assert item_counts(matrix).tolist() == [1, 1, 1, 0]
    assert item_counts(matrix).dtype == np.int64


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.array([1, 1, 1]), r"shape \(4,\).*got dtype int64 and shape \(3,\)"),
        (np.array([1.0, 1.0, 1.0, 0.0]), r"integer count per item.*got dtype float64"),
        (np.array([1, 1, 0, 0]), r"summing to train's 3 stored entries.*summing to 2"),
        (np.array([2, 2, 0, -1]), r"non-negative.*got counts in \[-1, 2\]"),
    ],
)
def test_counts_that_do_not_belong_to_train_are_refused(bad, message):
    train = sp.csr_matrix([[1, 1, 0, 0], [0, 0, 1, 0]])
    relevant = sp.csr_matrix([[0, 0, 1, 0], [0, 1, 0, 0]])
    ids, users = np.array([[2, 3], [0, 1]]), np.array([0, 1])
    with pytest.raises(ValueError, match="item_counts: .*" + message):
        evaluate_rankings(ids, users=users, relevant=relevant, train=train, item_counts=bad)
    with pytest.raises(ValueError, match="item_counts: .*" + message):
        fairness_baseline(
            users=users, users_table=pd.DataFrame({"g": ["a", "b"]}),
            items_table=pd.DataFrame({"category": list("xxyy")}), train=train,
            relevant=relevant, sensitive=["g"], item_counts=bad,
        )


@pytest.mark.parametrize("seed", range(4))
def test_shared_counts_give_the_numbers_of_counting_inside(seed):
    rng = np.random.default_rng(seed)
    n_users, n_items = 50, 30
    train = sp.random(n_users, n_items, density=0.3, random_state=seed, format="csr")
    relevant = sp.random(n_users, n_items, density=0.2, random_state=seed + 9, format="lil")
    relevant[0, 0] = 1.0  # someone is evaluated
    relevant = relevant.tocsr()
    users = np.arange(n_users)
    ids = np.argsort(rng.random((n_users, n_items)), axis=1)[:, :5]
    tables = {
        "users_table": pd.DataFrame({"g": rng.choice(["a", "b", "c"], n_users)}),
        "items_table": pd.DataFrame({"category": rng.choice(list("xyz"), n_items)}),
    }
    counts = item_counts(train)
    inside = evaluate_rankings(ids, users=users, relevant=relevant, train=train)
    shared = evaluate_rankings(
        ids, users=users, relevant=relevant, train=train, item_counts=counts
    )
    assert shared.summary() == inside.summary()
    fair = [
        fairness_metrics(
            report=inside, ids=ids, users=users, train=train, relevant=relevant,
            sensitive=["g"], item_counts=given, **tables,
        ).flat()
        for given in (None, counts)
    ]
    assert fair[1] == fair[0]
    assert "bias_amplification.g.category.mean_abs" in fair[0]  # the category pass ran


@pytest.mark.parametrize("seed", SEEDS)
def test_row_code_counts_take_unsorted_repeated_int64_columns(seed):
    """Ranked lists as rows: any order, repeats counted, int64 indices, short and long rows."""
    rng = np.random.default_rng(seed)
    n_columns, n_codes = 50, int(rng.integers(1, 12))
    lengths = rng.integers(0, 12, 40)
    lengths[int(rng.integers(0, 40))] = int(rng.integers(256, 700))  # one row of several pieces
    indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    indices = rng.integers(0, n_columns, indptr[-1]).astype(np.int64)
    codes = rng.integers(0, n_codes, n_columns)
    expected = np.zeros((lengths.size, n_codes), dtype=np.int64)
    for r in range(lengths.size):
        for column in indices[indptr[r] : indptr[r + 1]]:
            expected[r, codes[column]] += 1
    np.testing.assert_array_equal(
        _row_code_counts(indptr, indices, n_columns, codes, n_codes), expected
    )


def test_counts_of_a_matrix_with_stored_zeros_still_get_it_cleaned():
    """item_counts(train) skip nothing when train stores zeros: they add up to fewer entries."""
    train = sp.csr_matrix(  # (0, 2) and (1, 0) store zeros
        (np.array([1.0, 2.0, 0.0, 0.0, 4.0]), np.array([0, 1, 2, 0, 3]), [0, 3, 5]), shape=(2, 4)
    )
    relevant = sp.csr_matrix([[0, 0, 1, 1], [1, 1, 0, 0]])
    ids, users = np.array([[2, 3], [0, 1]]), np.array([0, 1])
    counts = item_counts(train)
    assert counts.tolist() == [1, 1, 0, 1]
    plain = evaluate_rankings(ids, users=users, relevant=relevant, train=train)
    shared = evaluate_rankings(
        ids, users=users, relevant=relevant, train=train, item_counts=counts
    )
    np.testing.assert_array_equal(shared.per_user["novelty"], plain.per_user["novelty"])
    tables = {
        "users_table": pd.DataFrame({"g": ["a", "b"]}),
        "items_table": pd.DataFrame({"category": list("xxyy")}),
    }
    flats = [
        fairness_metrics(report=plain, ids=ids, users=users, train=train, relevant=relevant,
                         sensitive=["g"], item_counts=given, **tables).flat()
        for given in (None, counts)
    ]
    assert flats[0].keys() == flats[1].keys()
    np.testing.assert_array_equal(list(flats[1].values()), list(flats[0].values()))


def test_counts_that_cover_every_stored_entry_spare_the_scan_for_zeros(monkeypatch):
    import evaluation._ranking as ranking_module

    train = sp.csr_matrix([[1.0, 2.0, 0.0], [0.0, 3.0, 1.0]])
    scan = ranking_module._has_explicit_zeros

    def no_scan(data):  # relevant is still scanned; train must not be
        if data is train.data:
            raise AssertionError("scanned train for stored zeros")
        return scan(data)

    relevant = sp.csr_matrix([[0, 0, 1], [1, 0, 0]])
    ids, users = np.array([[2, 0], [0, 1]]), np.array([0, 1])
    counts = item_counts(train)
    monkeypatch.setattr(ranking_module, "_has_explicit_zeros", no_scan)
    evaluate_rankings(ids, users=users, relevant=relevant, train=train, item_counts=counts)
    with pytest.raises(AssertionError, match="scanned"):
        evaluate_rankings(ids, users=users, relevant=relevant, train=train)
