"""Per-user ranking-accuracy metrics.

Ranked lists follow the convention of :mod:`recsys.models._base`: a 2-D
integer array ``ids`` of shape ``[n_users, k]`` holding internal item indices,
best first, with ``-1`` as padding when fewer than ``k`` items were ranked.
Held-out relevance is a user x item scipy sparse matrix whose stored nonzero
entries mark the relevant items.

:func:`hit_matrix` turns ``ids`` plus relevance into a boolean ``hits``
matrix; every metric below is a pure function of ``hits`` (and, where needed,
each row's relevant count) returning one float64 value per row. All of them
are vectorised over users; none loops over users in Python.

Rows without any relevant item make recall, nDCG and AP undefined: those
metrics raise instead of returning ``nan`` (the harness drops such users
first, see :func:`evaluation.evaluate_rankings`).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = [
    "average_precision_at_k",
    "hit_matrix",
    "hit_rate_at_k",
    "log_rank_weight",
    "ndcg_at_k",
    "precision_at_k",
    "recall_at_k",
    "reciprocal_rank_at_k",
]

#: Rows processed at once where a temporary grows with ``n_users * k``.
_CHUNK = 65_536


# ---------------------------------------------------------------- validation
def _check_ids(ids: object, *, n_items: int | None = None, name: str = "ids") -> np.ndarray:
    """A 2-D integer array of item indices in ``[-1, n_items)``."""
    arr = np.asarray(ids)
    if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(
            f"{name}: expected a 2-D integer array of item indices [n_users, k], "
            f"got dtype {arr.dtype} and shape {arr.shape}"
        )
    if arr.size:
        lo, hi = int(arr.min()), int(arr.max())
        if lo < -1:
            raise ValueError(f"{name}: item indices must be >= 0 (or -1 for padding), got {lo}")
        if n_items is not None and hi >= n_items:
            raise ValueError(
                f"{name}: item indices must lie in [0, {n_items}) (or be -1 for padding), got {hi}"
            )
    return arr.astype(np.int64, copy=False)


def _check_users(users: object, *, n_rows: int, n_users: int, name: str = "users") -> np.ndarray:
    """A 1-D integer vector, one user index per row of ``ids``."""
    arr = np.asarray(users)
    if arr.ndim != 1 or not (np.issubdtype(arr.dtype, np.integer) or arr.size == 0):
        raise ValueError(
            f"{name}: expected a 1-D array of integer user indices, got dtype {arr.dtype} "
            f"and shape {arr.shape}"
        )
    if arr.size != n_rows:
        raise ValueError(f"{name}: expected one user per row of ids ({n_rows}), got {arr.size}")
    arr = arr.astype(np.int64, copy=False)
    if arr.size and (arr.min() < 0 or arr.max() >= n_users):
        raise ValueError(
            f"{name}: user indices must lie in [0, {n_users}) (the rows of the relevance "
            f"matrix), got [{arr.min()}, {arr.max()}]"
        )
    return arr


def _as_binary_csr(
    matrix: object, *, name: str, nonzero: int | None = None
) -> sp.csr_matrix | sp.csr_array:
    """CSR with sorted, unique indices and no explicit zeros (copied only if needed).

    ``nonzero``, when the caller knows it, is the number of the matrix's
    stored nonzero entries (the sum of ``item_counts`` of it): equal to its
    stored entries, it rules out stored zeros without a scan of the values.
    """
    if not sp.issparse(matrix) or matrix.ndim != 2:
        raise TypeError(
            f"{name}: expected a scipy sparse user x item matrix, got {type(matrix).__name__}"
        )
    csr = matrix.tocsr()
    if not csr.has_canonical_format or (
        nonzero != csr.nnz and _has_explicit_zeros(csr.data)
    ):
        csr = csr.copy()
        csr.sum_duplicates()
        csr.eliminate_zeros()
    return csr


def _has_explicit_zeros(data: np.ndarray) -> bool:
    """Whether a sparse matrix stores a zero; real data with a positive minimum stores none.

    The minimum (ratings, ones) is one reduction at about 0.65x the time of
    ``data.all()`` on 15M float32 values; anything else gets ``all()``.
    """
    if data.size == 0:
        return False
    if data.dtype.kind in "iuf" and data.min() > 0:
        return False
    return not data.all()


def _check_hits(hits: object) -> np.ndarray:
    """A 2-D boolean array with at least one rank column (0/1 numbers accepted)."""
    arr = np.asarray(hits)
    if arr.ndim != 2 or arr.shape[1] == 0:
        raise ValueError(
            f"hits: expected a 2-D boolean array [n_users, k] with k >= 1, got shape {arr.shape}"
        )
    if arr.dtype != bool:
        if not (np.issubdtype(arr.dtype, np.number) and np.isin(arr, (0, 1)).all()):
            raise ValueError(f"hits: expected boolean (or 0/1) values, got dtype {arr.dtype}")
        arr = arr.astype(bool)
    return arr


def _check_n_relevant(n_relevant: object, hits: np.ndarray) -> np.ndarray:
    """Relevant counts, one positive integer per row, never below the row's hits."""
    arr = np.asarray(n_relevant)
    if arr.ndim != 1 or arr.size != hits.shape[0]:
        raise ValueError(
            f"n_relevant: expected a 1-D array with one count per row of hits "
            f"({hits.shape[0]}), got shape {arr.shape}"
        )
    if arr.size and not (np.issubdtype(arr.dtype, np.number) and np.all(arr == np.round(arr))):
        raise ValueError(f"n_relevant: expected integer counts, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    zero = np.flatnonzero(arr < 1)
    if zero.size:
        raise ValueError(
            f"n_relevant: every row needs at least one relevant item (drop users without "
            f"held-out items before scoring), got {zero.size} row(s) with fewer, "
            f"e.g. rows {zero[:5].tolist()}"
        )
    over = np.flatnonzero(np.count_nonzero(hits, axis=1) > arr)
    if over.size:
        raise ValueError(
            f"n_relevant: a row cannot have more hits than relevant items, got "
            f"{over.size} such row(s), e.g. rows {over[:5].tolist()}"
        )
    return arr


def _check_rank_weight(rank_weight: object, k: int) -> np.ndarray:
    w = np.asarray(rank_weight, dtype=np.float64)
    if w.shape != (k,):
        raise ValueError(f"rank_weight: expected one weight per rank ({k}), got shape {w.shape}")
    if not np.all(np.isfinite(w)) or w[0] <= 0 or np.any(w < 0) or np.any(np.diff(w) > 0):
        raise ValueError(
            "rank_weight: expected finite, non-negative, non-increasing weights with a "
            f"positive first weight, got {w.tolist()}"
        )
    return w


# ------------------------------------------------------------------- metrics
def hit_matrix(
    ids: np.ndarray, relevant: sp.spmatrix | sp.sparray, users: np.ndarray
) -> np.ndarray:
    """Where each recommended item is relevant to its user.

    Parameters
    ----------
    ids : ndarray of int, shape (n_rows, k)
        Ranked item indices, best first; ``-1`` is padding.
    relevant : scipy sparse matrix, shape (n_users, n_items)
        Held-out relevance; a stored nonzero entry marks a relevant item.
    users : ndarray of int, shape (n_rows,)
        ``users[i]`` is the user (row of ``relevant``) that row ``i`` of
        ``ids`` belongs to.

    Returns
    -------
    ndarray of bool, shape (n_rows, k)
        ``True`` where ``ids[i, r]`` is relevant to ``users[i]``. Padding is
        never a hit.

    Notes
    -----
    Each (user, item) pair is encoded as ``user * n_items + item``. The keys of
    a canonical CSR matrix come out sorted, so membership is one
    :func:`numpy.searchsorted` over all rows (in blocks of 65,536 rows).

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> relevant = sp.csr_matrix([[1, 0, 1, 0], [0, 1, 0, 0]])
    >>> hit_matrix(np.array([[2, 1, 0], [1, -1, -1]]), relevant, np.array([0, 1])).tolist()
    [[True, False, True], [True, False, False]]
    """
    rel = _as_binary_csr(relevant, name="relevant")
    n_users, n_items = rel.shape
    ids = _check_ids(ids, n_items=n_items)
    users = _check_users(users, n_rows=ids.shape[0], n_users=n_users)
    out = np.zeros(ids.shape, dtype=bool)
    if rel.nnz == 0 or ids.size == 0:
        return out
    entry_users = np.repeat(np.arange(n_users, dtype=np.int64), np.diff(rel.indptr))
    keys = entry_users * n_items + rel.indices.astype(np.int64)
    # searchsorted is several times faster on needles that arrive in key order
    order = None if np.all(users[1:] >= users[:-1]) else np.argsort(users, kind="stable")
    if order is not None:
        ids, users = ids[order], users[order]
    for start in range(0, ids.shape[0], _CHUNK):
        block = ids[start : start + _CHUNK]
        query = users[start : start + _CHUNK, None] * n_items + block
        pos = np.minimum(np.searchsorted(keys, query), keys.size - 1)
        # padding (-1) encodes as another user's last item: mask it out explicitly
        out[start : start + _CHUNK] = (keys[pos] == query) & (block >= 0)
    if order is not None:
        unsorted = np.empty_like(out)
        unsorted[order] = out
        out = unsorted
    return out


def precision_at_k(hits: np.ndarray) -> np.ndarray:
    """Share of the ``k`` ranks that hold a relevant item.

    The denominator is ``k = hits.shape[1]`` even when a list is padded.

    Examples
    --------
    >>> precision_at_k(np.array([[True, False, True], [False, False, False]])).tolist()
    [0.6666666666666666, 0.0]
    """
    h = _check_hits(hits)
    return np.count_nonzero(h, axis=1) / np.float64(h.shape[1])


def recall_at_k(hits: np.ndarray, n_relevant: np.ndarray) -> np.ndarray:
    """Share of each user's relevant items found in the top ``k``.

    Parameters
    ----------
    hits : ndarray of bool, shape (n_rows, k)
    n_relevant : ndarray of int, shape (n_rows,)
        Number of relevant items per row; must be >= 1 (raises otherwise).

    Notes
    -----
    With ``n_relevant > k`` the best attainable recall is ``k / n_relevant``.

    Examples
    --------
    >>> hits = np.array([[True, False, True], [True, False, False]])
    >>> recall_at_k(hits, np.array([2, 4])).tolist()
    [1.0, 0.25]
    """
    h = _check_hits(hits)
    n = _check_n_relevant(n_relevant, h)
    return np.count_nonzero(h, axis=1) / n.astype(np.float64)


def log_rank_weight(k: int) -> np.ndarray:
    """The standard DCG discount ``1 / log2(rank + 1)`` for ranks ``1..k``.

    Examples
    --------
    >>> log_rank_weight(3).round(4).tolist()
    [1.0, 0.6309, 0.5]
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k: expected a positive integer, got {k!r}")
    return 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))


def ndcg_at_k(
    hits: np.ndarray, n_relevant: np.ndarray, *, rank_weight: np.ndarray | None = None
) -> np.ndarray:
    """Normalised discounted cumulative gain with binary gains.

    Parameters
    ----------
    hits : ndarray of bool, shape (n_rows, k)
    n_relevant : ndarray of int, shape (n_rows,)
        Number of relevant items per row; must be >= 1 (raises otherwise).
    rank_weight : ndarray of float, shape (k,), optional
        Weight of each rank, best first. Default :func:`log_rank_weight`.
        Must be non-negative and non-increasing with a positive first weight,
        which keeps the result in ``[0, 1]``.

    Returns
    -------
    ndarray of float64, shape (n_rows,)
        ``DCG / IDCG`` where ``DCG = sum of rank_weight over hit ranks`` and
        the ideal DCG sums the first ``min(k, n_relevant)`` weights.

    Examples
    --------
    >>> hits = np.array([[True, False, True]])
    >>> ndcg_at_k(hits, np.array([2])).round(4).tolist()    # (1 + 1/2) / (1 + 1/log2(3))
    [0.9197]
    >>> ndcg_at_k(hits, np.array([2]), rank_weight=np.array([1.0, 0.5, 0.25])).tolist()
    [0.8333333333333334]
    """
    h = _check_hits(hits)
    n = _check_n_relevant(n_relevant, h)
    k = h.shape[1]
    w = log_rank_weight(k) if rank_weight is None else _check_rank_weight(rank_weight, k)
    cum_w = np.cumsum(w)
    # a running sum along ranks (not a matmul) so a perfect ranking gives exactly 1.0
    dcg = np.cumsum(np.where(h, w, 0.0), axis=1)[:, -1]
    return dcg / cum_w[np.minimum(n, k) - 1]


def average_precision_at_k(hits: np.ndarray, n_relevant: np.ndarray) -> np.ndarray:
    """Average precision: mean of precision@rank over hit ranks.

    The sum of precision at each hit rank is divided by
    ``min(k, n_relevant)``, so a perfect top-``k`` scores 1 even when a user
    has more relevant items than ``k``.

    Examples
    --------
    >>> average_precision_at_k(np.array([[True, False, True]]), np.array([2])).round(4).tolist()
    [0.8333]
    """
    h = _check_hits(hits)
    n = _check_n_relevant(n_relevant, h)
    k = h.shape[1]
    ranks = np.arange(1, k + 1, dtype=np.float64)
    precision_at_rank = np.cumsum(h, axis=1) / ranks
    total = np.where(h, precision_at_rank, 0.0).sum(axis=1)
    return total / np.minimum(n, k).astype(np.float64)


def reciprocal_rank_at_k(hits: np.ndarray) -> np.ndarray:
    """``1 / rank`` of the first hit, 0 when the top ``k`` holds none.

    Examples
    --------
    >>> reciprocal_rank_at_k(np.array([[False, True, True], [False, False, False]])).tolist()
    [0.5, 0.0]
    """
    h = _check_hits(hits)
    first = np.argmax(h, axis=1)
    return np.where(h.any(axis=1), 1.0 / (first + 1.0), 0.0)


def hit_rate_at_k(hits: np.ndarray) -> np.ndarray:
    """1.0 where the top ``k`` holds at least one relevant item, else 0.0.

    Examples
    --------
    >>> hit_rate_at_k(np.array([[False, True], [False, False]])).tolist()
    [1.0, 0.0]
    """
    h = _check_hits(hits)
    return h.any(axis=1).astype(np.float64)
