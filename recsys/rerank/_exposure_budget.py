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

Raw scores are not comparable across users, so ``cost="calibrated"`` prices
moves in expected DCG instead. ``fit`` learns ``P(relevant | score)`` for each
item group with scikit-learn's ``IsotonicRegression`` on candidate lists whose
relevance is known (a validation split carved from the training data, see
:func:`~recsys.rerank.validation_candidates`). A move lets one protected item
overtake the non-protected item just above it: at 0-based positions ``r`` and
``r + 1`` it gains ``w_r - w_{r+1}`` of protected exposure (``w_r`` at the
cut-off, where the overtaken item drops out) and costs that times
``p_head - p_protected`` of expected DCG. The price per unit of exposure is
therefore ``p_head - p_protected`` for every move, whatever its position.
Moves are taken in order of price across all users until the target is met
(moves with a negative price, a protected item more likely relevant than the
one above it, come first); within a user, prices rise in the order that keeps
each group's own order, so every prefix is a valid set of lists. As in a
fractional knapsack, once a move with a positive price has been paid for, no
other reordering reaches as much protected exposure with more expected DCG
(the tests check this by enumeration); the same order decides how many
protected slots each user gets. The first-stage scores are only read through
the calibration, never changed: returned scores are the input scores.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import scipy.sparse as sp
from sklearn.isotonic import IsotonicRegression

from recsys.models._base import check_fitted
from recsys.rerank._base import Reranker, _check_candidates, minmax_rows

__all__ = ["ExposureBudgetReranker"]

_COSTS = ("score", "calibrated")


class ExposureBudgetReranker(Reranker):
    """Raise a protected item group's share of rank-weighted exposure to ``strength``.

    Parameters
    ----------
    strength : float in [0, 1]
        Target share of total exposure (weights ``1 / log2(rank + 1)``) for the
        protected items; 0 leaves every list as it is. If the candidates cannot
        reach the target, every available swap is made.
    cost : {"score", "calibrated"}, default "score"
        How a move is priced: the drop in per-user min-max normalised score
        (``"score"``), or the expected DCG lost per unit of exposure gained,
        from a relevance probability per score and item group learned at fit
        time (``"calibrated"``; ``fit`` then needs ``validation_ids``,
        ``validation_scores`` and ``validation_relevant``).

    Attributes
    ----------
    protected_items_ : ndarray of bool (n_items,)
    head_calibration_, tail_calibration_ : ndarray of shape (2, n_thresholds)
        ``P(relevant | score)`` of non-protected and of protected candidates
        (``cost="calibrated"`` only): the isotonic fit's thresholds (row 0,
        scores) and values (row 1), interpolated linearly and clipped at the
        ends as ``IsotonicRegression.predict`` does; kept as arrays so that a
        model bundle can store them.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> X = sp.csr_matrix(np.ones((2, 6)) * 0)  # no history needed
    >>> rr = ExposureBudgetReranker(strength=0.1).fit(X, protected_items=np.array([0, 0, 0, 0, 1, 1], bool))
    >>> ids = np.array([[0, 1, 4, 2], [2, 3, 5, 0]])
    >>> scores = np.array([[1.0, 0.9, 0.1, 0.0], [1.0, 0.5, 0.45, 0.0]], dtype=np.float32)
    >>> rr.rerank(ids, scores, users=np.array([0, 1]), k=2)[0].tolist()  # user 1 swaps more cheaply
    [[0, 1], [2, 5]]

    With ``cost="calibrated"`` the price is a difference of relevance probabilities,
    here learned from validation lists in which the top-scored non-protected
    candidates and the protected candidates scored 0.5 or more were relevant:

    >>> v_ids = np.array([[0, 4, 1, 5], [2, 5, 3, 4]])
    >>> v_scores = np.array([[1.0, 0.9, 0.5, 0.2], [0.9, 0.5, 0.4, 0.1]])
    >>> v_rel = np.array([[True, True, False, False], [True, True, False, False]])
    >>> rr = ExposureBudgetReranker(strength=0.3, cost="calibrated").fit(
    ...     X, protected_items=np.array([0, 0, 0, 0, 1, 1], bool), validation_ids=v_ids,
    ...     validation_scores=v_scores, validation_relevant=v_rel)
    >>> rr.rerank(ids, scores, users=np.array([0, 1]), k=2)[0].tolist()  # item 5 likely relevant
    [[0, 1], [5, 2]]
    """

    def __init__(self, strength: float = 0.1, cost: Literal["score", "calibrated"] = "score") -> None:
        self.strength = strength
        self.cost = cost

    def fit(
        self,
        X: sp.spmatrix,
        y: None = None,
        *,
        protected_items: np.ndarray,
        validation_ids: np.ndarray | None = None,
        validation_scores: np.ndarray | None = None,
        validation_relevant: np.ndarray | None = None,
    ) -> ExposureBudgetReranker:
        """Store the protected items; with ``cost="calibrated"`` learn the relevance calibration.

        ``validation_ids`` and ``validation_scores`` are ranked candidate lists
        (the layout :meth:`rerank` takes) from the first stage fitted on part of
        the training data, ``validation_relevant`` (bool, same shape) marks the
        candidates found in the held-out part.
        """
        X = self._check_fit_input(X)
        if self.cost not in _COSTS:
            raise ValueError(f"cost: expected one of {list(_COSTS)}, got {self.cost!r}")
        self.protected_items_ = self._check_attribute(
            "protected_items", protected_items, kind="b", size=X.shape[1], what="item"
        ).copy()
        given = [v is not None for v in (validation_ids, validation_scores, validation_relevant)]
        for name in ("head_calibration_", "tail_calibration_"):  # nothing left from an earlier fit
            vars(self).pop(name, None)
        if self.cost == "score":
            if any(given):
                raise ValueError(
                    "validation_ids, validation_scores, validation_relevant: only used with "
                    "cost='calibrated', got cost='score'"
                )
            return self
        if not all(given):
            raise ValueError(
                "validation_ids, validation_scores, validation_relevant: all three are required "
                "with cost='calibrated'"
            )
        self.head_calibration_, self.tail_calibration_ = self._fit_calibration(
            validation_ids, validation_scores, validation_relevant
        )
        return self

    def _fit_calibration(
        self, ids: object, scores: object, relevant: object
    ) -> tuple[np.ndarray, np.ndarray]:
        ids, scores = np.asarray(ids), np.asarray(scores)
        if ids.ndim != 2 or not np.issubdtype(ids.dtype, np.integer):
            raise ValueError(
                "validation_ids: expected a 2-D integer array [n_users, n_candidates], "
                f"got dtype {ids.dtype} and shape {ids.shape}"
            )
        if scores.shape != ids.shape or not np.issubdtype(scores.dtype, np.floating):
            raise ValueError(
                f"validation_scores: expected a float array of the same shape as validation_ids "
                f"{ids.shape}, got dtype {scores.dtype} and shape {scores.shape}"
            )
        relevant = np.asarray(relevant)
        if relevant.shape != ids.shape or relevant.dtype != np.bool_:
            raise ValueError(
                f"validation_relevant: expected a boolean array of the same shape as "
                f"validation_ids {ids.shape}, got dtype {relevant.dtype} and shape {relevant.shape}"
            )
        _check_candidates(ids.astype(np.int64), scores, self.n_items_)
        valid = ids >= 0
        prot = self.protected_items_[np.where(valid, ids, 0)]
        fitted = []
        for group, name in ((False, "non-protected"), (True, "protected")):
            mask = valid & (prot == group)
            if not mask.any():
                raise ValueError(
                    f"validation_ids: expected {name} candidates to calibrate cost='calibrated', "
                    "got none"
                )
            iso = IsotonicRegression(out_of_bounds="clip", increasing=True).fit(
                scores[mask].astype(np.float64), relevant[mask].astype(np.float64)
            )
            fitted.append(np.vstack([iso.X_thresholds_, iso.y_thresholds_]))
        return fitted[0], fitted[1]

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
        # with every candidate in the top k, swaps have nothing to bring in (moves still reorder)
        if self.strength == 0 or kk == 0 or n == 0 or (kk == n_cand and self.cost == "score"):
            return out_ids, out_scores
        if self.cost == "calibrated":
            check_fitted(self, "tail_calibration_")
            pos = self._calibrated_positions(ids, scores, kk)
        else:
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

    def _relevance(self, scores: np.ndarray, prot: np.ndarray, valid: np.ndarray) -> np.ndarray:
        """Calibrated relevance per candidate, strictly decreasing along each group's order.

        The isotonic maps are non-decreasing in the score, so within a group
        ``p`` never rises down a row; ``1e-9`` per column makes ties strict so
        that every user's moves have distinct prices in the order they must
        happen (a head overtaken before the one above it).
        """
        flat = np.where(valid, scores, 0.0).astype(np.float64).ravel()
        p = np.where(
            prot.ravel(), np.interp(flat, *self.tail_calibration_), np.interp(flat, *self.head_calibration_)
        ).reshape(scores.shape)
        return np.where(valid, p - 1e-9 * np.arange(scores.shape[1]), 0.0)  # padding: never used

    def _calibrated_positions(self, ids: np.ndarray, scores: np.ndarray, k: int) -> np.ndarray:
        n = ids.shape[0]
        valid = ids >= 0
        prot = valid & self.protected_items_[np.where(valid, ids, 0)]
        p = self._relevance(scores, prot, valid)
        head_col, n_h = _first_columns(valid & ~prot, k)  # the first k of each group, in order
        tail_col, n_t = _first_columns(prot, k)
        j = np.arange(k)
        # pair (i, j): the i-th non-protected and the j-th protected candidate of a row
        pair = (j[None, :, None] < n_h[:, None, None]) & (j[None, None, :] < n_t[:, None, None])
        above = pair & (tail_col[:, None, :] < head_col[:, :, None])  # protected j already above
        price = (
            np.take_along_axis(p, np.maximum(head_col, 0), axis=1)[:, :, None]
            - np.take_along_axis(p, np.maximum(tail_col, 0), axis=1)[:, None, :]
        )
        w = np.concatenate([1.0 / np.log2(np.arange(2, k + 2)), np.zeros(k + 1)])
        gain = w[j[:, None] + j[None, :]] - w[j[:, None] + j[None, :] + 1]  # j passes i: i+j+1 -> i+j
        total = (valid[:, :k] * w[None, :k]).sum()
        need = self.strength * total - (prot[:, :k] * w[None, :k]).sum()
        applied = above.copy()
        if need > 0:
            user, i_head, j_tail = np.nonzero(pair & ~above)
            order = np.lexsort((j_tail, i_head, user, price[user, i_head, j_tail]))
            reached = np.cumsum(gain[i_head[order], j_tail[order]]) >= need - 1e-12 * total
            take = order[: int(np.argmax(reached)) + 1] if reached.any() else order
            applied[user[take], i_head[take], j_tail[take]] = True
        # merged positions: a protected item sits below the non-protected ones it has not passed
        tail_rank = j[None, :] + (pair & ~applied).sum(axis=1)
        head_rank = j[None, :] + applied.sum(axis=2)
        out = np.full((n, k), -1, dtype=np.int64)
        for col, rank, count in ((head_col, head_rank, n_h), (tail_col, tail_rank, n_t)):
            keep = (j[None, :] < count[:, None]) & (rank < k)
            rows = np.broadcast_to(np.arange(n)[:, None], keep.shape)
            out[rows[keep], rank[keep]] = col[keep]
        return out


def _first_columns(mask: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Columns of the first ``k`` true entries of each row (``-1`` padding) and their count."""
    cols = np.argsort(~mask, axis=1, kind="stable")[:, :k]
    count = np.minimum(mask.sum(axis=1), k)
    return np.where(np.arange(cols.shape[1])[None, :] < count[:, None], cols, -1), count
