"""The contract every fairrec re-ranker follows.

A re-ranker is the last stage of the chain history -> candidates -> scorer ->
ranker -> re-ranker. It only *reorders* a first-stage model's candidate lists
(LensKit's rule): it never calls a model and never re-scores an item.

``fit(X, **attributes)`` follows the scikit-learn contract on the training
user x item CSR matrix plus the user or item attributes the method needs.
``rerank(ids, scores, *, users, k)`` takes ranked candidate lists
``[n_users, n_candidates]`` (internal item indices best first, ``-1`` padding
at the end, ``-inf`` scores at the padding) for the internal user indices
``users`` and returns the top ``k`` after re-ranking as ``[n_users, k]`` ids
with the *original* scores of the chosen items (so returned scores need not be
sorted), padded with ``-1`` / ``-inf`` when a row has fewer than ``k``
candidates.

Every re-ranker has ``strength`` in ``[0, 1]``: ``0`` returns exactly the input
order truncated to ``k``; larger values trade relevance for the fairness target.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import ClassVar

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator

from recsys.models._base import check_fitted, check_user_items

__all__ = ["Reranker"]


class Reranker(BaseEstimator):
    """Base for fairrec's re-rankers (validation and the ``strength=0`` shortcut).

    Subclasses define ``fit(X, y=None, *, <attributes>)``, which calls
    :meth:`_check_fit_input` first, and ``_select``, which picks candidate
    positions for a block of users.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> from recsys.rerank import FairShareReranker
    >>> rr = FairShareReranker(strength=0.0).fit(
    ...     sp.csr_matrix(np.ones((1, 4))), protected_items=np.array([0, 0, 1, 1], bool))
    >>> ids, scores = rr.rerank(np.array([[3, 1, 0, -1]]), np.array([[0.9, 0.5, 0.1, -np.inf]]),
    ...                         users=np.array([0]), k=4)
    >>> ids.tolist(), scores.tolist()  # strength 0: the input, padded to k
    ([[3, 1, 0, -1]], [[0.9, 0.5, 0.1, -inf]])
    """

    strength: float

    #: users per block in :meth:`rerank` (bounds memory; blocks are vectorised)
    _block_rows: ClassVar[int] = 8192

    # --------------------------------------------------------------- fitting
    def _check_fit_input(self, X: object) -> sp.csr_matrix:
        """Validate ``strength`` and ``X``; set ``n_users_`` and ``n_items_``."""
        _check_unit_interval("strength", self.strength)
        X = check_user_items(X)
        self.n_users_, self.n_items_ = X.shape
        return X

    def _check_attribute(
        self, name: str, values: object, *, kind: str, size: int, what: str
    ) -> np.ndarray:
        """A 1-D attribute array with one entry per user or item, of dtype kind ``kind``."""
        arr = np.asarray(values)
        ok_kind = arr.dtype == np.bool_ if kind == "b" else arr.dtype.kind in kind
        if arr.shape != (size,) or not ok_kind:
            expected = {"b": "a boolean", "iu": "an integer", "iuf": "a numeric"}[kind]
            raise ValueError(
                f"{name}: expected {expected} array with one entry per {what} ({size},), "
                f"got dtype {arr.dtype} and shape {arr.shape}"
            )
        return arr

    # ------------------------------------------------------------ re-ranking
    def rerank(
        self,
        ids: np.ndarray,
        scores: np.ndarray,
        *,
        users: np.ndarray,
        k: int,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Re-rank candidate lists and keep the best ``k`` of each.

        Parameters
        ----------
        ids : ndarray of shape (n_users, n_candidates), integer
            Candidate item indices per user, best first, ``-1`` padding at the end.
        scores : ndarray of shape (n_users, n_candidates), float
            First-stage scores, non-increasing along each row, ``-inf`` exactly at
            the padding.
        users : ndarray of shape (n_users,), integer
            Internal user index of each row, in ``[0, n_users_)``.
        k : int
            Length of the returned lists.

        Returns
        -------
        ids_k : ndarray of shape (n_users, k), int64
            Chosen items in their new order, ``-1`` padding.
        scores_k : ndarray of shape (n_users, k)
            The input scores of the chosen items (never re-computed), ``-inf`` at
            the padding; same dtype as ``scores``.
        """
        check_fitted(self)
        ids, scores, users = self._check_rerank_input(ids, scores, users, k)
        n_rows, n_cand = ids.shape
        kk = min(k, n_cand)
        out_ids = np.full((n_rows, k), -1, dtype=np.int64)
        out_scores = np.full((n_rows, k), -np.inf, dtype=scores.dtype)
        if self.strength == 0 or kk == 0:
            out_ids[:, :kk] = ids[:, :kk]
            out_scores[:, :kk] = scores[:, :kk]
            return out_ids, out_scores
        for start in range(0, n_rows, self._block_rows):
            rows = slice(start, start + self._block_rows)
            pos = self._select(ids[rows], scores[rows], users[rows], kk)
            chosen = pos >= 0
            safe = np.where(chosen, pos, 0)
            out_ids[rows, :kk] = np.where(chosen, np.take_along_axis(ids[rows], safe, axis=1), -1)
            out_scores[rows, :kk] = np.where(
                chosen, np.take_along_axis(scores[rows], safe, axis=1), -np.inf
            )
        return out_ids, out_scores

    @abstractmethod
    def _select(
        self, ids: np.ndarray, scores: np.ndarray, users: np.ndarray, k: int
    ) -> np.ndarray:
        """Columns of ``ids`` holding the re-ranked top ``k``: ``[n_rows, k]``, ``-1`` padding.

        ``k <= n_candidates``; only called when ``strength > 0``.
        """
        # BaseEstimator is not an ABC, so @abstractmethod alone would not enforce this
        raise NotImplementedError(f"{type(self).__name__} must implement _select")

    def _check_rerank_input(
        self, ids: object, scores: object, users: object, k: object
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
            raise ValueError(f"k: expected a positive integer, got {k!r}")
        ids = np.asarray(ids)
        if ids.ndim != 2 or not np.issubdtype(ids.dtype, np.integer):
            raise ValueError(
                "ids: expected a 2-D integer array [n_users, n_candidates], "
                f"got dtype {ids.dtype} and shape {ids.shape}"
            )
        ids = ids.astype(np.int64, copy=False)
        scores = np.asarray(scores)
        if scores.shape != ids.shape or not np.issubdtype(scores.dtype, np.floating):
            raise ValueError(
                f"scores: expected a float array of the same shape as ids {ids.shape}, "
                f"got dtype {scores.dtype} and shape {scores.shape}"
            )
        users = np.asarray(users)
        if users.ndim == 1 and users.size == 0:
            users = users.astype(np.int64)  # np.asarray([]) is float64
        if users.shape != (ids.shape[0],) or not np.issubdtype(users.dtype, np.integer):
            raise ValueError(
                f"users: expected a 1-D integer array with one user index per row of ids "
                f"({ids.shape[0]},), got dtype {users.dtype} and shape {users.shape}"
            )
        users = users.astype(np.int64, copy=False)
        unknown = (users < 0) | (users >= self.n_users_)
        if unknown.any():
            raise ValueError(
                f"users: {int(unknown.sum())} index(es) outside the fitted users "
                f"[0, {self.n_users_}), e.g. {users[unknown][:5].tolist()}"
            )
        _check_candidates(ids, scores, self.n_items_)
        return ids, scores, users


def _check_candidates(ids: np.ndarray, scores: np.ndarray, n_items: int) -> None:
    """Ranked-list convention: valid ids first, -1/-inf padding after, sorted, unique."""
    bad = (ids < -1) | (ids >= n_items)
    if bad.any():
        raise ValueError(
            f"ids: expected -1 (padding) or item indices in [0, {n_items}), "
            f"got {ids[bad][:5].tolist()}"
        )
    valid = ids >= 0
    mismatch = valid == np.isneginf(scores)
    if mismatch.any():
        raise ValueError(
            "scores: expected -inf exactly where ids is -1 (padding), "
            f"got {int(mismatch.sum())} mismatching entries"
        )
    not_finite = valid & ~np.isfinite(scores)
    if not_finite.any():
        raise ValueError(
            f"scores: expected finite scores for the candidates, got "
            f"{scores[not_finite][:5].tolist()}"
        )
    late = np.flatnonzero((valid[:, 1:] & ~valid[:, :-1]).any(axis=1))
    if late.size:
        raise ValueError(
            f"ids: expected the -1 padding after every candidate of a row, row {late[0]} "
            "has a candidate after padding"
        )
    # -inf - -inf is nan at padding pairs; compare instead of subtracting
    unsorted = np.flatnonzero((scores[:, 1:] > scores[:, :-1]).any(axis=1))
    if unsorted.size:
        raise ValueError(
            f"scores: expected each row sorted best first (non-increasing), row {unsorted[0]} "
            "is not"
        )
    if ids.shape[1] > 1:
        srt = np.sort(ids, axis=1)
        dup = (srt[:, 1:] == srt[:, :-1]) & (srt[:, 1:] >= 0)
        dup_rows = np.flatnonzero(dup.any(axis=1))
        if dup_rows.size:
            r = dup_rows[0]
            item = srt[r, 1:][dup[r]][0]
            raise ValueError(
                f"ids: expected each item at most once per row, row {r} repeats item {item}"
            )


def _check_unit_interval(name: str, value: object, *, open_low: bool = False) -> float:
    """A real number in ``[0, 1]`` (``(0, 1]`` when ``open_low``)."""
    ok = (
        isinstance(value, (int, float, np.integer, np.floating))
        and not isinstance(value, bool)
        and (0 < value <= 1 if open_low else 0 <= value <= 1)
    )
    if not ok:
        interval = "(0, 1]" if open_low else "[0, 1]"
        raise ValueError(f"{name}: expected a float in {interval}, got {value!r}")
    return float(value)  # type: ignore[arg-type]


def minmax_rows(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Min-max normalise each row over its ``valid`` entries to ``[0, 1]`` (float64).

    A row whose valid entries are all equal becomes 0; invalid entries become 0.

    >>> minmax_rows(np.array([[3.0, 1.0, 2.0], [5.0, 5.0, -np.inf]]),
    ...             np.array([[True, True, True], [True, True, False]])).tolist()
    [[1.0, 0.0, 0.5], [0.0, 0.0, 0.0]]
    """
    v = np.asarray(values, dtype=np.float64)
    lo = np.where(valid, v, np.inf).min(axis=1, keepdims=True)
    hi = np.where(valid, v, -np.inf).max(axis=1, keepdims=True)
    span = hi - lo  # -inf for a row without valid entries
    has_span = span > 0
    with np.errstate(invalid="ignore"):  # padding: -inf - lo
        out = (v - lo) / np.where(has_span, span, 1.0)
    return np.where(valid & has_span, out, 0.0)
