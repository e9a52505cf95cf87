"""The few data types every part of fairrec passes around.

* :class:`Interactions` - a user x item CSR matrix (one stored entry per
  (user, item) pair, ``data`` = rating or weight), an optional timestamp per
  stored entry aligned with ``matrix.data``, and the two id vocabularies that
  map internal row/column indices back to external ids.
* :class:`Dataset` - interactions plus a user attribute table and an item
  attribute table, both aligned with the vocabularies (row ``i`` describes
  internal index ``i``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys.data._errors import DataError

__all__ = ["Dataset", "Interactions"]


@dataclass(frozen=True, eq=False)
class Interactions:
    """User-item interactions as CSR plus id vocabularies.

    Parameters
    ----------
    matrix : scipy.sparse.csr_matrix of shape (n_users, n_items)
        One stored entry per observed (user, item) pair with sorted column
        indices; ``data`` holds the rating (explicit data) or weight (implicit
        data, 1.0 by default).
    user_ids, item_ids : ndarray
        External ids; ``user_ids[u]`` is the id of row ``u``.
    timestamps : ndarray of int64 or None
        Seconds since the epoch, aligned with ``matrix.data``.
    has_ratings : bool
        Whether ``matrix.data`` holds explicit ratings (kept in artifacts).

    Examples
    --------
    >>> it = Interactions.from_arrays(
    ...     user_index=[0, 0, 1], item_index=[1, 0, 1], values=[5.0, 3.0, 4.0],
    ...     user_ids=["a", "b"], item_ids=[10, 20])
    >>> it.matrix.toarray()
    array([[3., 5.],
           [0., 4.]], dtype=float32)
    >>> it.n_interactions
    3
    """

    matrix: sp.csr_matrix
    user_ids: np.ndarray
    item_ids: np.ndarray
    timestamps: np.ndarray | None = None
    has_ratings: bool = False
    _checked: bool = field(default=False, repr=False)

    def __post_init__(self) -> None:
        m = self.matrix
        if not sp.isspmatrix_csr(m) and not isinstance(m, sp.csr_array):
            raise TypeError(f"Interactions.matrix: expected a scipy CSR matrix, got {type(m).__name__}")
        if m.shape != (len(self.user_ids), len(self.item_ids)):
            raise ValueError(
                f"Interactions.matrix: shape {m.shape} does not match the vocabularies "
                f"({len(self.user_ids)} users, {len(self.item_ids)} items)"
            )
        if self.timestamps is not None and len(self.timestamps) != m.nnz:
            raise ValueError(
                f"Interactions.timestamps: expected {m.nnz} values (one per stored entry), "
                f"got {len(self.timestamps)}"
            )

    # ------------------------------------------------------------------ build
    @classmethod
    def from_arrays(
        cls,
        *,
        user_index: np.ndarray | list[int],
        item_index: np.ndarray | list[int],
        user_ids: np.ndarray | list,
        item_ids: np.ndarray | list,
        values: np.ndarray | list[float] | None = None,
        timestamps: np.ndarray | list[int] | None = None,
        has_ratings: bool = False,
    ) -> Interactions:
        """Build from parallel index arrays (coordinates into the vocabularies).

        Duplicate (user, item) pairs are an error: loaders decide how to
        aggregate before calling this.
        """
        ui = np.asarray(user_index, dtype=np.int64)
        ii = np.asarray(item_index, dtype=np.int64)
        n_users, n_items = len(user_ids), len(item_ids)
        if ui.shape != ii.shape:
            raise ValueError("user_index and item_index must have the same length")
        if ui.size and (ui.min() < 0 or ui.max() >= n_users):
            raise ValueError(f"user_index: values must lie in [0, {n_users}), got [{ui.min()}, {ui.max()}]")
        if ii.size and (ii.min() < 0 or ii.max() >= n_items):
            raise ValueError(f"item_index: values must lie in [0, {n_items}), got [{ii.min()}, {ii.max()}]")
        vals = (
            np.ones(ui.size, dtype=np.float32)
            if values is None
            else np.asarray(values, dtype=np.float32)
        )
        order = np.lexsort((ii, ui))
        ui, ii, vals = ui[order], ii[order], vals[order]
        ts = None if timestamps is None else np.asarray(timestamps, dtype=np.int64)[order]
        if ui.size > 1:
            dup = (ui[1:] == ui[:-1]) & (ii[1:] == ii[:-1])
            if dup.any():
                k = int(np.flatnonzero(dup)[0])
                raise DataError(
                    f"duplicate interaction for user {user_ids[ui[k]]!r} and item "
                    f"{item_ids[ii[k]]!r}: aggregate duplicates before building Interactions"
                )
        indptr = np.zeros(n_users + 1, dtype=np.int64)
        np.cumsum(np.bincount(ui, minlength=n_users), out=indptr[1:])
        matrix = sp.csr_matrix(
            (vals, ii.astype(np.int32), indptr), shape=(n_users, n_items)
        )
        return cls(
            matrix=matrix,
            user_ids=np.asarray(user_ids),
            item_ids=np.asarray(item_ids),
            timestamps=ts,
            has_ratings=has_ratings,
        )

    def with_matrix(self, matrix: sp.csr_matrix, timestamps: np.ndarray | None) -> Interactions:
        """A new Interactions on the same vocabularies (used by splits)."""
        return Interactions(
            matrix=matrix,
            user_ids=self.user_ids,
            item_ids=self.item_ids,
            timestamps=timestamps,
            has_ratings=self.has_ratings,
        )

    def select(self, mask: np.ndarray) -> Interactions:
        """Keep the stored entries where ``mask`` (aligned with ``matrix.data``) is true."""
        mask = np.asarray(mask, dtype=bool)
        m = self.matrix
        rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))[mask]
        indptr = np.zeros(m.shape[0] + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=m.shape[0]), out=indptr[1:])
        out = sp.csr_matrix((m.data[mask], m.indices[mask], indptr), shape=m.shape)
        ts = None if self.timestamps is None else self.timestamps[mask]
        return self.with_matrix(out, ts)

    # ------------------------------------------------------------------ views
    @property
    def n_users(self) -> int:
        return self.matrix.shape[0]

    @property
    def n_items(self) -> int:
        return self.matrix.shape[1]

    @property
    def n_interactions(self) -> int:
        return int(self.matrix.nnz)

    def row_index(self) -> np.ndarray:
        """Internal user index of every stored entry (aligned with ``matrix.data``)."""
        return np.repeat(np.arange(self.n_users, dtype=np.int64), np.diff(self.matrix.indptr))

    def binary(self) -> sp.csr_matrix:
        """The same sparsity pattern with every value set to 1 (float32)."""
        m = self.matrix
        return sp.csr_matrix(
            (np.ones(m.nnz, dtype=np.float32), m.indices, m.indptr), shape=m.shape
        )

    def to_frame(self) -> pd.DataFrame:
        """Long format with external ids: ``user_id, item_id[, rating][, timestamp]``."""
        cols: dict[str, np.ndarray] = {
            "user_id": self.user_ids[self.row_index()],
            "item_id": self.item_ids[self.matrix.indices],
        }
        if self.has_ratings:
            cols["rating"] = self.matrix.data
        if self.timestamps is not None:
            cols["timestamp"] = self.timestamps
        return pd.DataFrame(cols)


@dataclass(frozen=True, eq=False)
class Dataset:
    """Interactions with the user and item attribute tables.

    ``users`` has one row per internal user index with column ``user_id``
    first, then attributes (e.g. ``gender``, ``age_group``,
    ``activity_level``). ``items`` likewise with ``item_id`` first, then
    ``category`` (one label per item, used for diversity and exposure),
    optionally ``genres`` (``|``-joined labels), ``provider``, ``title``.
    """

    interactions: Interactions
    users: pd.DataFrame
    items: pd.DataFrame
    name: str = "dataset"

    def __post_init__(self) -> None:
        it = self.interactions
        for label, table, ids, col in (
            ("users", self.users, it.user_ids, "user_id"),
            ("items", self.items, it.item_ids, "item_id"),
        ):
            if col not in table.columns:
                raise DataError(f"Dataset.{label}: missing column {col!r}")
            if len(table) != len(ids) or not np.array_equal(table[col].to_numpy(), ids):
                raise DataError(
                    f"Dataset.{label}: rows must be aligned with the interaction vocabulary "
                    f"({len(ids)} ids), got {len(table)} rows"
                )

    @property
    def sensitive_columns(self) -> list[str]:
        return [c for c in self.users.columns if c != "user_id"]
