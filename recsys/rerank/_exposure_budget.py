"""A catalogue-level exposure target for a protected item group, met at the least cost.

FA*IR (:class:`~recsys.rerank.FairShareReranker`) guarantees a share in every
list prefix, so every user pays for it, including users for whom the
protected items are poor matches. Here the target is the protected group's
share of *total* rank-weighted exposure over all lists (the number the
evaluation reports as ``exposure_share``), and protected items go to the
users for whom they cost the least relevance.

Written by hand: none of our libraries offers a re-ranker with a global
exposure budget. Method: for user u, swap j replaces the j-th lowest-scored
non-protected item of the top-k with the j-th best protected candidate outside
it; its cost is the drop in per-user min-max normalised first-stage score.
Costs grow with j, so taking swaps in order of cost across all users (and of j
within a user) gives the cheapest way to each exposure level; the smallest
prefix of that order that reaches ``strength`` is applied. Swapped-in items
sit below the kept ones (their scores are lower), so the kept order is intact.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recsys.models._base import check_fitted
from recsys.rerank._base import Reranker, minmax_rows

__all__ = ["ExposureBudgetReranker"]


class ExposureBudgetReranker(Reranker):
    """Raise a protected item group's share of rank-weighted exposure to ``strength``.

    Parameters
    ----------
    strength : float in [0, 1]
        Target share of total exposure (weights ``1 / log2(rank + 1)``) for the
        protected items; 0 leaves every list as it is. If the candidates cannot
        reach the target, every available swap is made.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> X = sp.csr_matrix(np.ones((2, 6)) * 0)  # no history needed
    >>> rr = ExposureBudgetReranker(strength=0.1).fit(X, protected_items=np.array([0, 0, 0, 0, 1, 1], bool))
    >>> ids = np.array([[0, 1, 4, 2], [2, 3, 5, 0]])
    >>> scores = np.array([[1.0, 0.9, 0.1, 0.0], [1.0, 0.5, 0.45, 0.0]], dtype=np.float32)
    >>> rr.rerank(ids, scores, users=np.array([0, 1]), k=2)[0].tolist()  # user 1 swaps more cheaply
    [[0, 1], [2, 5]]
    """

    def __init__(self, strength: float = 0.1) -> None:
        self.strength = strength

    def fit(self, X: sp.spmatrix, y: None = None, *, protected_items: np.ndarray) -> ExposureBudgetReranker:
        X = self._check_fit_input(X)
        self.protected_items_ = self._check_attribute(
            "protected_items", protected_items, kind="b", size=X.shape[1], what="item"
        ).copy()
        return self

    def _select(self, ids: np.ndarray, scores: np.ndarray, users: np.ndarray, k: int) -> np.ndarray:
        raise NotImplementedError("ExposureBudgetReranker re-ranks all users at once in rerank()")

    def rerank(
        self, ids: np.ndarray, scores: np.ndarray, *, users: np.ndarray, k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        check_fitted(self)
        ids, scores, users = self._check_rerank_input(ids, scores, users, k)
        n, n_cand = ids.shape
        kk = min(k, n_cand)
        out_ids = np.full((n, k), -1, dtype=np.int64)
        out_scores = np.full((n, k), -np.inf, dtype=scores.dtype)
        out_ids[:, :kk], out_scores[:, :kk] = ids[:, :kk], scores[:, :kk]
        if self.strength == 0 or kk == 0 or n == 0 or kk == n_cand:
            return out_ids, out_scores
        pos = self._positions(ids, scores, kk)
        chosen = pos >= 0
        safe = np.where(chosen, pos, 0)
        out_ids[:, :kk] = np.where(chosen, np.take_along_axis(ids, safe, axis=1), -1)
        out_scores[:, :kk] = np.where(chosen, np.take_along_axis(scores, safe, axis=1), -np.inf)
        return out_ids, out_scores

    def _positions(self, ids: np.ndarray, scores: np.ndarray, k: int) -> np.ndarray:
        n = ids.shape[0]
        valid = ids >= 0
        prot = valid & self.protected_items_[np.where(valid, ids, 0)]
        top_valid, top_prot = valid[:, :k], prot[:, :k]
        top_head = top_valid & ~top_prot
        z = minmax_rows(scores, valid)  # per-user normalised scores over the valid candidates
        # heads of the top-k from the bottom, and protected candidates below the top-k, best first
        head_from_bottom = np.argsort(np.where(top_head, -np.arange(k), 1), axis=1, kind="stable")
        n_heads = top_head.sum(axis=1)
        below = prot[:, k:]
        tail_order = np.argsort(~below, axis=1, kind="stable")[:, :k] + k
        n_tails = np.minimum(below.sum(axis=1), k)
        m = np.minimum(n_heads, n_tails)  # swaps available per user
        j = np.arange(k)
        usable = j[None, :] < m[:, None]
        head_pos = np.where(usable, head_from_bottom, 0)
        tail_pos = np.where(usable, tail_order, 0)
        cost = np.take_along_axis(z, head_pos, axis=1) - np.take_along_axis(z, tail_pos, axis=1)
        cost = np.maximum.accumulate(np.where(usable, cost, np.inf), axis=1)  # keep swaps in order
        # exposure of the protected items after n swaps, for n = 0..k
        w = 1.0 / np.log2(np.arange(2, k + 2))
        heads_after = np.cumsum(top_head[:, ::-1], axis=1)[:, ::-1] - top_head  # heads strictly below p
        exposure = np.empty((n, k + 1))
        for swaps in range(k + 1):
            removed_before = np.maximum(0, swaps - heads_after)
            new_rank = np.clip(j[None, :] - removed_before, 0, k - 1)
            kept = (top_prot * w[new_rank]).sum(axis=1)
            added = w[k - swaps :].sum() if swaps else 0.0
            exposure[:, swaps] = kept + added
        total = (top_valid * w[None, :]).sum()
        need = self.strength * total - exposure[:, 0].sum()
        n_swaps = np.zeros(n, dtype=np.int64)
        if need > 0:
            gain = np.diff(exposure, axis=1)[:, :k]
            order = np.lexsort((np.broadcast_to(j, (n, k)).ravel(), cost.ravel()))
            order = order[np.isfinite(cost.ravel()[order])]
            reached = np.cumsum(gain.ravel()[order]) >= need
            take = order[: int(np.argmax(reached)) + 1] if reached.any() else order
            np.add.at(n_swaps, take // k, 1)
        # final lists: kept top-k entries (original order) then the swapped-in protected items
        rank_from_bottom = np.empty_like(head_from_bottom)
        np.put_along_axis(rank_from_bottom, head_from_bottom, np.broadcast_to(j, (n, k)), axis=1)
        removed = top_head & (rank_from_bottom < n_swaps[:, None])
        key_top = np.where(top_valid & ~removed, j[None, :], 2 * k + 1)
        key_add = np.where(j[None, :] < n_swaps[:, None], k + j[None, :], 2 * k + 1)
        keys = np.concatenate([key_top, key_add], axis=1)
        cols = np.concatenate([np.broadcast_to(j, (n, k)), tail_order], axis=1)
        best = np.argsort(keys, axis=1, kind="stable")[:, :k]
        picked = np.take_along_axis(cols, best, axis=1)
        return np.where(np.take_along_axis(keys, best, axis=1) <= 2 * k, picked, -1)
