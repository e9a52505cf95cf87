"""Catalogue-level calibration: one score offset per item category, no user attribute.

Steck's calibration (:class:`~recsys.rerank.CalibratedReranker`) makes *each*
user's list match that user's history over categories. Bias amplification is a
statement about averages (a user group's mean share of a category in its lists
versus in its histories), and on real data most of it is shared by all groups:
models over-recommend the same categories to everyone. Correcting that shared
part needs no per-user constraint and no sensitive attribute: add one offset per
category to the per-user min-max normalised first-stage scores, chosen so that
the mean category shares of the top-k lists move towards the mean category
shares of the users' histories.

Written by hand (none of our libraries has it). The offsets are the dual
variables of "mean top-k share of category c = target c", found by projected
dual ascent on the candidate lists of training users at fit time; they are
then fixed, so serving a single user re-ranks exactly as the evaluation did.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recsys.rerank._base import Reranker, _check_unit_interval, minmax_rows

__all__ = ["CategoryShareReranker", "fit_users_sample"]


def fit_users_sample(users: np.ndarray, max_users: int, seed: int) -> np.ndarray:
    """The training users whose candidate lists fit the offsets: all of ``users`` (ascending)
    up to ``max_users``, else a seeded sample of that many (ascending). Both engines draw it here.

    >>> fit_users_sample(np.arange(5), 10, 0).tolist()
    [0, 1, 2, 3, 4]
    >>> fit_users_sample(np.arange(100), 3, 0).size
    3
    """
    users = np.sort(np.asarray(users, dtype=np.int64))
    if users.size > max_users:
        users = np.sort(np.random.default_rng(seed).choice(users, size=max_users, replace=False))
    return users


class CategoryShareReranker(Reranker):
    """Shift category scores so that lists' mean category shares approach the histories' mean.

    Parameters
    ----------
    strength : float in [0, 1]
        Target shares are ``base + strength * (history - base)``, where ``base`` is the
        mean top-k share of each category without re-ranking and ``history`` the mean
        share in users' training histories (each user weighted equally). 0 keeps the
        input order.
    k : int
        List length the offsets are fitted for (the evaluation's cut-off).
    max_iter, step : dual ascent budget and step size (in units of normalised score).

    Attributes
    ----------
    offsets_ : ndarray (n_categories,)   the score offset of each category
    target_share_, achieved_share_ : ndarray (n_categories,)   on the fitting lists

    Examples
    --------
    >>> X = sp.csr_matrix(np.array([[1, 0, 1, 0], [0, 1, 0, 1]]))  # histories: half category 1
    >>> cat = np.array([0, 0, 1, 1])
    >>> ids = np.array([[0, 1, 2, 3], [0, 1, 2, 3]])  # the model ranks category 0 first
    >>> sc = np.array([[1.0, 0.9, 0.8, 0.0], [1.0, 0.9, 0.8, 0.0]])
    >>> rr = CategoryShareReranker(strength=1.0, k=2).fit(
    ...     X, item_category=cat, users=np.array([0, 1]), candidate_ids=ids, candidate_scores=sc)
    >>> rr.achieved_share_.tolist()
    [0.5, 0.5]
    >>> rr.rerank(ids, sc, users=np.array([0, 1]), k=2)[0].tolist()
    [[2, 0], [2, 0]]
    """

    def __init__(self, strength: float = 0.5, *, k: int = 10, max_iter: int = 200, step: float = 0.5) -> None:
        self.strength = strength
        self.k = k
        self.max_iter = max_iter
        self.step = step

    def fit(
        self,
        X: sp.spmatrix,
        y: None = None,
        *,
        item_category: np.ndarray,
        users: np.ndarray,
        candidate_ids: np.ndarray,
        candidate_scores: np.ndarray,
    ) -> CategoryShareReranker:
        """Fit the offsets on first-stage candidate lists of training ``users`` (rows aligned)."""
        X = self._check_fit_input(X)
        if not isinstance(self.k, (int, np.integer)) or self.k < 1:
            raise ValueError(f"k: expected a positive integer, got {self.k!r}")
        if not isinstance(self.max_iter, (int, np.integer)) or self.max_iter < 1:
            raise ValueError(f"max_iter: expected a positive integer, got {self.max_iter!r}")
        _check_unit_interval("step", self.step, open_low=True)
        category = self._check_attribute(
            "item_category", item_category, kind="iu", size=self.n_items_, what="item"
        ).astype(np.int64)
        if category.min() < 0:
            raise ValueError(f"item_category: expected category codes >= 0, got {category.min()}")
        self.item_category_ = category
        self.n_categories_ = int(category.max()) + 1
        ids, scores, users = self._check_rerank_input(candidate_ids, candidate_scores, users, int(self.k))
        history = self._history_share(X[users])
        self.offsets_ = np.zeros(self.n_categories_)
        valid = ids >= 0
        if ids.shape[0] == 0 or not valid.any():
            self.target_share_ = self.achieved_share_ = np.zeros(self.n_categories_)
            return self
        z = minmax_rows(scores, valid)
        cat = np.where(valid, category[np.where(valid, ids, 0)], 0)
        base = self._list_share(z, valid, cat, np.zeros(self.n_categories_))
        target = base + float(self.strength) * (history - base)
        offsets, best, best_gap = np.zeros(self.n_categories_), np.zeros(self.n_categories_), np.inf
        if self.strength > 0:
            for _ in range(int(self.max_iter)):
                share = self._list_share(z, valid, cat, offsets)
                gap = float(np.abs(share - target).max())
                if gap < best_gap:
                    best, best_gap = offsets.copy(), gap
                if gap < 1e-3:
                    break
                offsets = offsets - float(self.step) * (share - target)
        self.offsets_ = best
        self.target_share_ = target
        self.achieved_share_ = self._list_share(z, valid, cat, best)
        return self

    def _history_share(self, X: sp.csr_matrix) -> np.ndarray:
        """Mean over users (with any history) of each user's share of each category."""
        one_hot = sp.csr_matrix(
            (np.ones(self.n_items_), (np.arange(self.n_items_), self.item_category_)),
            shape=(self.n_items_, self.n_categories_),
        )
        mass = np.asarray((X.astype(np.float64) @ one_hot).todense())
        total = mass.sum(axis=1, keepdims=True)
        has = total[:, 0] > 0
        if not has.any():
            return np.zeros(self.n_categories_)
        return (mass[has] / total[has]).mean(axis=0)

    def _top(self, z: np.ndarray, valid: np.ndarray, cat: np.ndarray, offsets: np.ndarray, k: int) -> np.ndarray:
        adjusted = np.where(valid, z + offsets[cat], -np.inf)
        return np.argsort(-adjusted, axis=1, kind="stable")[:, :k]

    def _list_share(self, z: np.ndarray, valid: np.ndarray, cat: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        k = min(int(self.k), z.shape[1])
        top = self._top(z, valid, cat, offsets, k)
        chosen = np.take_along_axis(valid, top, axis=1)
        counts = np.zeros((z.shape[0], self.n_categories_))
        rows = np.broadcast_to(np.arange(z.shape[0])[:, None], top.shape)
        np.add.at(counts, (rows[chosen], np.take_along_axis(cat, top, axis=1)[chosen]), 1.0)
        n = counts.sum(axis=1, keepdims=True)
        has = n[:, 0] > 0
        return (counts[has] / n[has]).mean(axis=0) if has.any() else np.zeros(self.n_categories_)

    def _select(self, ids: np.ndarray, scores: np.ndarray, users: np.ndarray, k: int) -> np.ndarray:
        valid = ids >= 0
        z = minmax_rows(scores, valid)
        cat = np.where(valid, self.item_category_[np.where(valid, ids, 0)], 0)
        top = self._top(z, valid, cat, self.offsets_, k)
        return np.where(np.take_along_axis(valid, top, axis=1), top, -1)
