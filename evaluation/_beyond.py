"""Beyond-accuracy metrics: coverage, exposure concentration, popularity, novelty, diversity.

Inputs are ranked lists as 2-D ``ids`` arrays (``[n_users, k]``, internal
item indices, best first, ``-1`` = padding) plus per-item vectors indexed by
internal item index. Catalogue metrics return one float; the others return
one float64 per row. Padding is ignored everywhere.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from evaluation._counts import _item_counts
from evaluation._ranking import _CHUNK, _as_binary_csr, _check_ids

__all__ = [
    "average_popularity",
    "catalog_coverage",
    "exposure_gini",
    "intra_list_diversity",
    "novelty",
    "popularity_share",
]


def _check_n_items(n_items: object) -> int:
    if isinstance(n_items, bool) or not isinstance(n_items, (int, np.integer)) or n_items < 1:
        raise ValueError(f"n_items: expected a positive integer, got {n_items!r}")
    return int(n_items)


def _check_popularity(item_popularity: object) -> np.ndarray:
    pop = np.asarray(item_popularity, dtype=np.float64)
    if pop.ndim != 1 or pop.size == 0:
        raise ValueError(
            "item_popularity: expected a non-empty 1-D array (one share per item), "
            f"got shape {pop.shape}"
        )
    if not np.all(np.isfinite(pop)) or pop.min() < 0 or pop.max() > 1:
        raise ValueError(
            "item_popularity: expected shares in [0, 1], got values in "
            f"[{np.nanmin(pop)}, {np.nanmax(pop)}]"
        )
    return pop


def _recommendation_counts(ids: np.ndarray, n_items: int) -> np.ndarray:
    ids = _check_ids(ids, n_items=n_items)
    return np.bincount(ids[ids >= 0], minlength=n_items)


def _mean_over_valid(ids: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Row means of ``values[ids]`` over non-padding entries (nan for all-padding rows)."""
    valid = ids >= 0
    per_rank = np.where(valid, values[np.where(valid, ids, 0)], 0.0)
    n_valid = np.count_nonzero(valid, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return per_rank.sum(axis=1) / n_valid


def popularity_share(train: sp.spmatrix | sp.sparray) -> np.ndarray:
    """Share of users (rows of ``train``) with a stored nonzero entry on each item.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> popularity_share(sp.csr_matrix([[1, 0, 1], [1, 0, 0]])).tolist()
    [1.0, 0.0, 0.5]
    """
    csr = _as_binary_csr(train, name="train")
    return _popularity(csr, _item_counts(csr))


def _popularity(train: sp.csr_matrix | sp.csr_array, counts: np.ndarray) -> np.ndarray:
    """:func:`popularity_share` of a checked ``train`` from its entries per item."""
    if train.shape[0] == 0 or train.shape[1] == 0:
        raise ValueError(f"train: expected a non-empty matrix, got shape {train.shape}")
    return counts / np.float64(train.shape[0])


def catalog_coverage(ids: np.ndarray, n_items: int) -> float:
    """Share of the catalogue recommended to at least one user.

    Examples
    --------
    >>> catalog_coverage(np.array([[0, 1], [1, -1]]), n_items=4)
    0.5
    """
    n_items = _check_n_items(n_items)
    counts = _recommendation_counts(ids, n_items)
    return float(np.count_nonzero(counts) / n_items)


def exposure_gini(ids: np.ndarray, n_items: int) -> float:
    """Gini coefficient of recommendation counts over all ``n_items`` items.

    0 means every item is recommended equally often; values near 1 mean a few
    items take all slots (the maximum is ``(n_items - 1) / n_items``). Items
    never recommended count as 0. With the counts sorted ascending,
    ``x_1 <= ... <= x_n``::

        G = sum_i (2 i - n - 1) x_i / (n * sum_i x_i)

    A list set with no valid item at all returns 0.0.

    Examples
    --------
    >>> exposure_gini(np.array([[0, 1], [1, 0]]), n_items=2)
    0.0
    >>> exposure_gini(np.array([[0], [0]]), n_items=2)   # counts [0, 2]
    0.5
    """
    n_items = _check_n_items(n_items)
    counts = np.sort(_recommendation_counts(ids, n_items)).astype(np.float64)
    total = counts.sum()
    if total == 0:
        return 0.0
    coef = 2.0 * np.arange(1, n_items + 1, dtype=np.float64) - n_items - 1.0
    return float(coef @ counts / (n_items * total))


def average_popularity(ids: np.ndarray, item_popularity: np.ndarray) -> np.ndarray:
    """Mean popularity of each user's recommended items (padding ignored).

    Parameters
    ----------
    ids : ndarray of int, shape (n_rows, k)
    item_popularity : ndarray of float, shape (n_items,)
        Share of training users who interacted with each item (see
        :func:`popularity_share`), in ``[0, 1]``.

    Returns
    -------
    ndarray of float64, shape (n_rows,)
        ``nan`` for a row that holds only padding.

    Examples
    --------
    >>> average_popularity(np.array([[0, 1], [2, -1]]), np.array([0.5, 0.1, 0.2])).tolist()
    [0.3, 0.2]
    """
    pop = _check_popularity(item_popularity)
    ids = _check_ids(ids, n_items=pop.size)
    return _mean_over_valid(ids, pop)


def novelty(ids: np.ndarray, item_popularity: np.ndarray, *, floor: float = 1e-12) -> np.ndarray:
    """Mean self-information ``-log2(p)`` of each user's recommended items.

    Parameters
    ----------
    ids : ndarray of int, shape (n_rows, k)
    item_popularity : ndarray of float, shape (n_items,)
        Share of training users who interacted with each item, in ``[0, 1]``.
    floor : float, default 1e-12
        Popularities below ``floor`` are raised to it, so an item no training
        user touched gets a large but finite ``-log2(floor)`` bits instead of
        infinity. Must lie in ``(0, 1]``. The harness passes half a user,
        ``0.5 / n_training_users``.

    Returns
    -------
    ndarray of float64, shape (n_rows,)
        In bits; ``nan`` for a row that holds only padding.

    Examples
    --------
    >>> novelty(np.array([[0, 1], [2, -1]]), np.array([0.5, 0.25, 0.0]), floor=1 / 8).tolist()
    [1.5, 3.0]
    """
    if not isinstance(floor, (float, int, np.floating, np.integer)) or not 0 < floor <= 1:
        raise ValueError(f"floor: expected a number in (0, 1], got {floor!r}")
    pop = _check_popularity(item_popularity)
    ids = _check_ids(ids, n_items=pop.size)
    bits = -np.log2(np.maximum(pop, float(floor)))
    return _mean_over_valid(ids, bits)


def intra_list_diversity(ids: np.ndarray, item_category: np.ndarray) -> np.ndarray:
    """Share of item pairs within each list whose category labels differ.

    Parameters
    ----------
    ids : ndarray of int, shape (n_rows, k)
    item_category : ndarray of int, shape (n_items,)
        One integer category code per item.

    Returns
    -------
    ndarray of float64, shape (n_rows,)
        Over the ``m * (m - 1) / 2`` pairs of the ``m`` non-padding items;
        0.0 for a list with fewer than two items.

    Examples
    --------
    >>> cats = np.array([0, 0, 1, 2])
    >>> intra_list_diversity(np.array([[0, 1, 2], [0, 3, -1], [2, -1, -1]]), cats).round(4).tolist()
    [0.6667, 1.0, 0.0]
    """
    cat = np.asarray(item_category)
    if cat.ndim != 1 or cat.size == 0 or not np.issubdtype(cat.dtype, np.integer):
        raise ValueError(
            "item_category: expected a non-empty 1-D array of integer category codes, "
            f"got dtype {cat.dtype} and shape {cat.shape}"
        )
    ids = _check_ids(ids, n_items=cat.size)
    first, second = np.triu_indices(ids.shape[1], k=1)
    out = np.zeros(ids.shape[0], dtype=np.float64)
    for start in range(0, ids.shape[0], _CHUNK):
        block = ids[start : start + _CHUNK]
        valid = block >= 0
        codes = cat[np.where(valid, block, 0)]
        pair_valid = valid[:, first] & valid[:, second]
        differ = pair_valid & (codes[:, first] != codes[:, second])
        n_pairs = np.count_nonzero(pair_valid, axis=1)
        out[start : start + _CHUNK] = np.where(
            n_pairs > 0, np.count_nonzero(differ, axis=1) / np.maximum(n_pairs, 1), 0.0
        )
    return out
