"""Counting the stored entries of a user x item matrix: per item, and per (user, item code).

These passes over the training matrix are the costliest list-independent steps
of the evaluation (15M entries at the scale benchmark's size). A run counts
entries per item once (:func:`item_counts`) and gives the counts both to the
relevance evaluation (popularity, for novelty) and to the fairness metrics
(popularity head and tail); only bias amplification also needs each user's
entries per item category (:func:`_category_counts`).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from evaluation._ranking import _as_binary_csr

try:  # the C kernels behind ``csr_array @ vector`` and ``csr_array.toarray``: private, but
    # unchanged since scipy 0.x; called directly they skip building a csr_array per slice,
    # which checks the index arrays and copies a slice's indices out of the matrix's
    from scipy.sparse._sparsetools import csr_matvec as _csr_matvec
    from scipy.sparse._sparsetools import csr_todense as _csr_todense
except ImportError:  # pragma: no cover - a scipy that moved them: the public calls below
    _csr_matvec = _csr_todense = None

__all__ = ["item_counts"]

#: Matrix entries handled at once: a slice's indices, codes and ones stay in cache.
_PASS_ENTRIES = 1 << 18
#: The same for :func:`_category_counts`, whose per-slice cost is higher (measured).
_PACKED_PASS_ENTRIES = 1 << 19

#: :func:`_category_counts` counts in 8-bit lanes, 8 codes to a uint64 word.
_LANE_BITS = 8
_LANES = 64 // _LANE_BITS
#: Entries per piece of a row: no 8-bit lane can overflow.
_PIECE = (1 << _LANE_BITS) - 1
#: Longest row whose pieces' lanes, summed in 16-bit lanes, cannot overflow.
_MAX_ROW = (1 << 16) - 1
_EVEN_BYTES = np.uint64(0x00FF00FF00FF00FF)


def item_counts(train: sp.spmatrix | sp.sparray) -> np.ndarray:
    """Stored nonzero entries per item (column) of a user x item matrix, as int64.

    Pass the result as ``item_counts`` to :func:`evaluation.evaluate_rankings`
    and :func:`evaluation.fairness_baseline` to count a run's training matrix
    once for both.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> item_counts(sp.csr_matrix([[1, 0, 2], [3, 0, 0]])).tolist()
    [2, 0, 1]
    """
    return _item_counts(_as_binary_csr(train, name="train"))


def _counted_entries(counts: object) -> int | None:
    """The entries given ``item_counts`` add up to (None unless an integer array).

    They count the stored nonzero entries of the matrix they were made from, so
    :func:`evaluation._ranking._as_binary_csr` can skip its scan for stored
    zeros when they add up to all stored entries (counts not made by
    :func:`item_counts` of the same matrix break that contract).
    """
    arr = np.asarray(counts) if counts is not None else None
    if arr is None or arr.dtype.kind not in "iu":
        return None
    return int(arr.sum())


def _check_item_counts(counts: object, matrix: sp.csr_matrix | sp.csr_array) -> np.ndarray:
    """Counts given for ``matrix`` (checked CSR): one per column, summing to its entries."""
    arr = np.asarray(counts)
    n_items = matrix.shape[1]
    if arr.shape != (n_items,) or arr.dtype.kind not in "iu":
        raise ValueError(
            f"item_counts: expected one integer count per item, shape ({n_items},), "
            f"got dtype {arr.dtype} and shape {arr.shape}"
        )
    lo, hi = (arr.min(), arr.max()) if arr.size else (0, 0)
    if lo < 0 or int(arr.sum()) != matrix.nnz:
        raise ValueError(
            f"item_counts: expected item_counts(train) (non-negative, summing to train's "
            f"{matrix.nnz} stored entries), got counts in [{lo}, {hi}] "
            f"summing to {int(arr.sum())}"
        )
    return arr.astype(np.int64, copy=False)


def _item_counts(matrix: sp.csr_matrix | sp.csr_array) -> np.ndarray:
    """Stored entries per column of a canonical CSR matrix.

    Counted as scipy's ``csr_array`` docstring builds a term-document array
    (:func:`_scatter_add` with ones, a slice's entries forming one row with
    their column as column). That C loop reads the int32 indices as they are,
    where ``np.bincount`` casts them to intp and scans them for their range
    first: about half its time on 15M entries. Works through the matrix in
    slices of ``_PASS_ENTRIES`` entries, so a slice's indices stay in cache.
    """
    n_items, nnz = matrix.shape[1], matrix.nnz
    indices = matrix.indices
    counts = np.zeros(n_items, dtype=np.int64)
    if nnz == 0:
        return counts
    width = min(_PASS_ENTRIES, nnz)
    ones = np.ones(width, dtype=np.int64)
    in_slice = np.empty((1, n_items), dtype=np.int64)
    for start in range(0, nnz, width):
        part = indices[start : start + width]
        _scatter_add(
            ones[: part.size], part, np.array([0, part.size], dtype=indices.dtype), out=in_slice
        )
        counts += in_slice[0]
    return counts


def _category_counts(
    matrix: sp.csr_matrix | sp.csr_array,
    item_codes: np.ndarray,
    n_codes: int,
    dtype: type = np.int64,
) -> np.ndarray:
    """Stored entries per (row, code of their column), shape ``(n_rows, n_codes)``.

    ``item_codes`` holds one code in ``[0, n_codes)`` per column of the
    canonical CSR ``matrix``. See :func:`_row_code_counts`.
    """
    return _row_code_counts(
        matrix.indptr, matrix.indices, matrix.shape[1], item_codes, n_codes, dtype=dtype
    )


def _row_code_counts(
    indptr: np.ndarray,
    indices: np.ndarray,
    n_columns: int,
    column_codes: np.ndarray,
    n_codes: int,
    dtype: type = np.int64,
) -> np.ndarray:
    """Entries per (row, code of their column), shape ``(n_rows, n_codes)``, of ``dtype``.

    Row ``r`` holds the columns ``indices[indptr[r]:indptr[r + 1]]`` (in any
    order; a repeated column counts each time), ``column_codes`` one code in
    ``[0, n_codes)`` per column, and ``indptr`` and ``indices`` share an
    integer dtype.

    Written by hand: numpy and scipy have no per-row histogram of gathered
    codes. scipy's sparse matrix-vector product gathers and adds in one C
    loop, so packing turns its sum into a histogram: column ``i`` gets the
    value ``1 << 8 * (code % 8)`` in word ``code // 8`` (one uint64 per 8
    codes), and a row's product holds its count of each code in one byte as
    long as no count exceeds 255. Rows are therefore cut into pieces of at
    most 255 entries, each piece gets its product, and the pieces of a row
    are summed after the even and the odd bytes are spread apart into 16-bit
    lanes, which hold the counts of any row of up to 65,535 entries. A matrix
    with a longer row falls back to gathering the codes and scattering them
    (:func:`_scatter_add`). About 0.65x the time of that fallback on the scale
    benchmark's 15M training entries (``benchmarks/fairness_speed.py`` prints
    both).
    """
    n_rows, nnz = indptr.size - 1, int(indptr[-1])
    lengths = np.diff(indptr)
    if nnz == 0:
        return np.zeros((n_rows, n_codes), dtype=dtype)
    if lengths.max() > _MAX_ROW:
        return _scattered_code_counts(indptr, indices, column_codes, n_codes).astype(dtype)
    # the pieces: row r's start and then every _PIECE entries
    one_piece = lengths.max() <= _PIECE
    if one_piece:  # ranked lists: every row is one piece (empty rows too)
        first = np.arange(n_rows + 1, dtype=np.int64)  # first piece of each row
        piece_ptr = indptr.astype(np.int64, copy=False)
    else:
        pieces = -(-lengths // _PIECE)
        first = np.zeros(n_rows + 1, dtype=np.int64)
        np.cumsum(pieces, out=first[1:])
        piece_ptr = np.empty(int(first[-1]) + 1, dtype=np.int64)
        piece_ptr[:-1] = np.repeat(indptr[:-1] - _PIECE * first[:-1], pieces)
        piece_ptr[:-1] += _PIECE * np.arange(piece_ptr.size - 1)
        piece_ptr[-1] = nnz
    n_pieces = piece_ptr.size - 1
    # one word per 8 codes: column i has a one in byte (code % 8) of word (code // 8)
    n_words = -(-n_codes // _LANES)
    word, lane = np.divmod(np.asarray(column_codes, dtype=np.int64), _LANES)
    packed = np.zeros((n_words, n_columns), dtype=np.uint64)
    packed[word, np.arange(n_columns)] = np.left_shift(
        np.uint64(1), (_LANE_BITS * lane).astype(np.uint64)
    )
    per_piece = np.zeros((n_words, n_pieces), dtype=np.uint64)  # the kernel adds to it
    step = _PACKED_PASS_ENTRIES
    cuts = np.searchsorted(piece_ptr, np.arange(step, nnz, step))
    bounds = np.unique(np.concatenate([[0], cuts, [n_pieces]]))
    ones = np.ones(int(np.diff(piece_ptr[bounds]).max()), dtype=np.uint64)
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        start, stop = int(piece_ptr[lo]), int(piece_ptr[hi])
        ptr = (piece_ptr[lo : hi + 1] - start).astype(indices.dtype)
        data, columns = ones[: stop - start], indices[start:stop]
        if _csr_matvec is not None:  # a third less time than the public product per slice
            for w in range(n_words):
                _csr_matvec(hi - lo, n_columns, ptr, columns, data, packed[w], per_piece[w, lo:hi])
            continue
        part = sp.csr_array((data, columns, ptr), shape=(hi - lo, n_columns))
        for w in range(n_words):
            per_piece[w, lo:hi] = part @ packed[w]
    if one_piece:  # a row's bytes are its counts (little-endian lanes)
        lanes = per_piece.T.astype("<u8", order="C").view("<u1")  # (n_rows, n_words * 8)
        return lanes[:, :n_codes].astype(dtype)
    # sum each row's pieces in 16-bit lanes: even bytes, then odd bytes
    starts = np.minimum(first[:-1], n_pieces - 1)  # an empty row's value is zeroed below
    out = np.empty((n_rows, n_words, _LANES // 2, 2), dtype=np.uint16)  # one cast at the end
    for w in range(n_words):
        for parity in (0, 1):
            bytes_ = (per_piece[w] >> np.uint64(_LANE_BITS * parity)) & _EVEN_BYTES
            sums = np.add.reduceat(bytes_, starts)
            # little-endian 16-bit lanes, in lane order on any host
            out[:, w, :, parity] = sums.astype("<u8", copy=False).view("<u2").reshape(-1, 4)
    counts = out.reshape(n_rows, n_words * _LANES)[:, :n_codes]
    counts[lengths == 0] = 0
    return counts.astype(dtype)


def _scattered_code_counts(
    indptr: np.ndarray, indices: np.ndarray, column_codes: np.ndarray, n_codes: int
) -> np.ndarray:
    """:func:`_row_code_counts` by gathering each entry's code and scattering it per row."""
    n_rows, nnz = indptr.size - 1, int(indptr[-1])
    index = indices.dtype  # every index array in one dtype: scipy then casts none of them
    code_of = np.asarray(column_codes).astype(index)
    counts = np.empty((n_rows, n_codes), dtype=np.int64)
    cuts = np.searchsorted(indptr, np.arange(_PASS_ENTRIES, nnz, _PASS_ENTRIES))
    bounds = np.unique(np.concatenate([[0], cuts, [n_rows]]))
    ones = np.ones(int(np.diff(indptr[bounds]).max(initial=0)), dtype=np.int64)
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        start, stop = int(indptr[lo]), int(indptr[hi])
        codes = np.take(code_of, indices[start:stop])
        row_ptr = (indptr[lo : hi + 1] - start).astype(index, copy=False)
        _scatter_add(ones[: stop - start], codes, row_ptr, out=counts[lo:hi])
    return counts


def _scatter_add(
    values: np.ndarray, columns: np.ndarray, indptr: np.ndarray, *, out: np.ndarray
) -> None:
    """``out[r, columns[j]] += values[j]`` for the entries ``j`` of row ``r``, in entry order.

    Row ``r`` holds entries ``indptr[r]`` to ``indptr[r + 1]``; ``out``, a
    C-contiguous array of the values' dtype, is zeroed first. A CSR array
    with repeated column indices, whose ``toarray`` adds the duplicates up
    in one C loop (with ones as values: scipy's term-document example);
    that loop is called directly when the arrays' dtypes already match.
    """
    if (
        _csr_todense is not None and values.dtype == out.dtype
        and columns.dtype == indptr.dtype and out.flags.c_contiguous
    ):
        out[...] = 0
        _csr_todense(out.shape[0], out.shape[1], indptr, columns, values, out)
        return
    sp.csr_array((values, columns, indptr), shape=out.shape).toarray(out=out)
