"""The estimator contract every fairrec recommender follows.

scikit-learn conventions: the constructor only stores keyword arguments;
``fit(X)`` validates, learns and returns ``self``; learned state ends in ``_``;
``random_state`` is turned into a generator inside ``fit``.

``X`` is a user x item CSR matrix (rows = internal user indices, values =
interaction weights). ``recommend(users, k)`` is batched and returns two
``[n_users, k]`` arrays, ``ids`` (internal item indices, ``-1`` where fewer
than ``k`` items are left) and ``scores`` (``-inf`` at the padding), best
first. Items the user has in ``X`` are excluded unless
``exclude_seen=False``.

Users are internal indices. An index outside ``[0, n_users_)`` is an error
(raised with the offending ids) unless ``unknown_users="popular"``. A known
user with no training interactions ("cold") gets the training popularity
ranking; :meth:`Recommender.personalised` tells which users those are.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Literal

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator

from recsys.errors import NotFittedError

__all__ = ["Recommender", "check_fitted", "check_user_items", "top_k"]

UnknownUsers = Literal["error", "popular"]


def check_user_items(X: object, *, name: str = "X") -> sp.csr_matrix:
    """Validate a user x item interaction matrix and return it as float32 CSR."""
    if not sp.issparse(X):
        raise TypeError(
            f"{name}: expected a scipy sparse user x item matrix, got {type(X).__name__}"
        )
    # copy: the caller's matrix must not be re-sorted in place or aliased by the model
    X = sp.csr_matrix(X, dtype=np.float32, copy=True)
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"{name}: expected a non-empty matrix, got shape {X.shape}")
    if X.nnz and not np.all(np.isfinite(X.data)):
        raise ValueError(f"{name}: interaction weights must be finite")
    if X.nnz and X.data.min() < 0:
        raise ValueError(f"{name}: interaction weights must be >= 0, got minimum {X.data.min()}")
    # duplicate (user, item) entries are one interaction; stored zeros are none
    X.sum_duplicates()
    X.eliminate_zeros()
    X.sort_indices()
    return X


def check_fitted(est: object, attribute: str = "n_items_") -> None:
    if not hasattr(est, attribute):
        raise NotFittedError(
            f"This {type(est).__name__} is not fitted yet: call fit(X) before using it."
        )


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Best ``k`` columns per row of a dense score matrix, best first.

    Entries equal to ``-inf`` are never returned: their ids become ``-1``.
    Ties are broken by the lower item index, so results are deterministic.

    >>> ids, sc = top_k(np.array([[0.25, 0.75, -np.inf, 0.5]]), 3)
    >>> ids.tolist(), sc.tolist()
    ([[1, 3, 0]], [[0.75, 0.5, 0.25]])
    >>> top_k(np.array([[1.0, 2.0, 1.0, 1.0]]), 3)[0].tolist()  # ties: lower index first
    [[1, 0, 2]]
    """
    scores = np.asarray(scores, dtype=np.float32)
    if np.isnan(scores).any():  # a NaN score is not a ranking: treat it as -inf
        scores = np.where(np.isnan(scores), np.float32(-np.inf), scores)
    n_rows, n_cols = scores.shape
    kk = min(k, n_cols)
    if kk < n_cols:
        # argpartition picks arbitrarily among items tied with the k-th best score, so
        # choose the set explicitly: everything above the k-th score, then the
        # lowest-index items equal to it. Rows where more items tie than fit are
        # the rare case (float scores), so only they pay for finding the lowest
        # indices; the rest take every tied item (4x faster on 4096 x 27,000
        # scores than a cumulative count of ties over every row).
        kth = np.partition(scores, n_cols - kk, axis=1)[:, n_cols - kk : n_cols - kk + 1]
        above = scores > kth
        tied = scores == kth
        need = kk - np.count_nonzero(above, axis=1)
        excess = np.flatnonzero(np.count_nonzero(tied, axis=1) > need)
        if excess.size > n_rows // 2:  # keep the lowest-index tied items that fit
            tied &= np.cumsum(tied, axis=1, dtype=np.int32) <= need[:, None]
        elif excess.size:
            t = tied[excess]
            tied[excess] = t & (np.cumsum(t, axis=1, dtype=np.int32) <= need[excess, None])
        chosen = np.logical_or(above, tied, out=above)
        part = np.nonzero(chosen)[1].reshape(n_rows, kk)
    else:
        part = np.broadcast_to(np.arange(n_cols), (n_rows, n_cols))
    part_scores = np.take_along_axis(scores, part, axis=1)
    # sort by score descending, then by item index ascending
    order = np.lexsort((part, -part_scores), axis=1)
    ids = np.take_along_axis(part, order, axis=1).astype(np.int64)
    sc = np.take_along_axis(part_scores, order, axis=1)
    if kk < k:
        ids = np.pad(ids, ((0, 0), (0, k - kk)), constant_values=-1)
        sc = np.pad(sc, ((0, 0), (0, k - kk)), constant_values=-np.inf)
    invalid = ~np.isfinite(sc) & (sc < 0)
    ids[invalid] = -1
    return ids, sc


class Recommender(BaseEstimator):
    """Base for fairrec's recommenders (a thin shared layer, not a framework).

    Subclasses implement ``_fit(X)`` and either ``_score(users)`` (dense
    scores for a batch of users) or override ``_recommend_known``.

    There is no scikit-learn ``score(X, y)``: it returns one quality number,
    which needs a metric, and metrics live in :mod:`evaluation` (a metric never
    takes a model; ``recsys`` never imports ``evaluation``). Score the lists of
    :meth:`recommend` with ``evaluation.evaluate_rankings``.
    """

    unknown_users: UnknownUsers

    # --------------------------------------------------------------- fitting
    def fit(self, X: sp.spmatrix, y: None = None) -> Recommender:
        unknown_users = getattr(self, "unknown_users", "error")
        if unknown_users not in ("error", "popular"):
            raise ValueError(
                f"unknown_users: expected 'error' or 'popular', got {unknown_users!r}"
            )
        X = check_user_items(X)
        self._fit(X)
        self.n_users_, self.n_items_ = X.shape
        self.user_items_ = X
        counts = np.diff(X.indptr)
        self.cold_users_ = counts == 0
        self.item_popularity_ = np.bincount(X.indices, minlength=X.shape[1]).astype(np.float32)
        return self

    @abstractmethod
    def _fit(self, X: sp.csr_matrix) -> None:
        # BaseEstimator is not an ABC, so @abstractmethod alone would not stop a
        # subclass without _fit from "fitting" nothing
        raise NotImplementedError(f"{type(self).__name__} must implement _fit(X)")

    def _score(self, users: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    # ------------------------------------------------------------ predicting
    def personalised(self, users: np.ndarray | list[int]) -> np.ndarray:
        """True where ``recommend`` ranks with the user's own history."""
        check_fitted(self)
        users = np.asarray(users, dtype=np.int64)
        known = (users >= 0) & (users < self.n_users_)
        out = np.zeros(users.shape, dtype=bool)
        out[known] = ~self.cold_users_[users[known]]
        return out

    def recommend(
        self,
        users: np.ndarray | list[int],
        k: int = 10,
        *,
        exclude_seen: bool = True,
        batch_size: int = 4096,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` items for each user in ``users``; see the module docstring."""
        check_fitted(self)
        if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
            raise ValueError(f"k: expected a positive integer, got {k!r}")
        if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size: expected a positive integer, got {batch_size!r}")
        users = np.asarray(users)
        if users.ndim == 1 and users.size == 0:
            users = users.astype(np.int64)  # np.asarray([]) is float64
        if users.ndim != 1 or not np.issubdtype(users.dtype, np.integer):
            raise ValueError(
                f"users: expected a 1-D array of integer user indices, got dtype {users.dtype} "
                f"and shape {users.shape}"
            )
        users = users.astype(np.int64)
        unknown = (users < 0) | (users >= self.n_users_)
        if unknown.any() and getattr(self, "unknown_users", "error") == "error":
            bad = users[unknown][:5].tolist()
            raise ValueError(
                f"users: {int(unknown.sum())} index(es) outside the training users "
                f"[0, {self.n_users_}), e.g. {bad}; pass unknown_users='popular' to give them "
                "the popularity ranking"
            )
        ids = np.full((users.size, k), -1, dtype=np.int64)
        scores = np.full((users.size, k), -np.inf, dtype=np.float32)
        cold = unknown.copy()
        cold[~unknown] = self.cold_users_[users[~unknown]]
        warm = np.flatnonzero(~cold)
        for start in range(0, warm.size, batch_size):
            rows = warm[start : start + batch_size]
            ids[rows], scores[rows] = self._recommend_known(users[rows], k, exclude_seen)
        if cold.any():
            ids[cold], scores[cold] = self._recommend_popular(users[cold], k, exclude_seen)
        return ids, scores

    def _recommend_known(
        self, users: np.ndarray, k: int, exclude_seen: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        scores = np.asarray(self._score(users), dtype=np.float32)
        if exclude_seen:
            self._mask_seen(scores, users)
        return top_k(scores, k)

    def _mask_seen(self, scores: np.ndarray, users: np.ndarray) -> None:
        sub = self.user_items_[users]
        rows = np.repeat(np.arange(len(users)), np.diff(sub.indptr))
        scores[rows, sub.indices] = -np.inf

    def _recommend_popular(
        self, users: np.ndarray, k: int, exclude_seen: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        scores = np.broadcast_to(self.item_popularity_, (users.size, self.n_items_)).copy()
        if exclude_seen:
            known = (users >= 0) & (users < self.n_users_)
            if known.any():
                sub_scores = scores[known]
                self._mask_seen(sub_scores, users[known])
                scores[known] = sub_scores
        return top_k(scores, k)
