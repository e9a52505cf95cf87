"""Calibrated recommendations: the list's category mix follows the user's history."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recsys.rerank._base import Reranker, _check_unit_interval, minmax_rows

__all__ = ["CalibratedReranker", "calibration_kl"]


def calibration_kl(p: np.ndarray, q: np.ndarray, smoothing: float) -> np.ndarray:
    """``KL(p || (1 - smoothing) * q + smoothing * p)`` per row (Steck 2018, eq. 2-3).

    ``p`` and ``q`` are ``[n, n_categories]`` distributions; terms with ``p = 0``
    are 0. With ``smoothing > 0`` the result is finite.

    >>> round(float(calibration_kl(np.array([[0.5, 0.5]]), np.array([[1.0, 0.0]]), 0.0)[0]), 6)
    inf
    >>> calibration_kl(np.array([[0.5, 0.5]]), np.array([[0.5, 0.5]]), 0.01).tolist()
    [0.0]
    """
    q_smooth = (1.0 - smoothing) * q + smoothing * p
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(p / q_smooth), 0.0)
    return terms.sum(axis=1)


class CalibratedReranker(Reranker):
    """Greedy calibration of each list's category mix (Steck, RecSys 2018).

    ``fit`` learns each user's category distribution ``p(c|u)`` from the
    training history (weighted by the interaction values in ``X``). ``rerank``
    builds the list one position at a time, adding the candidate that maximises::

        (1 - strength) * sum_i rel(i) - strength * KL(p(.|u) || q~(.|u))

    over the list so far plus that candidate, where ``rel`` is the first-stage
    score min-max normalised per user over the candidates, ``q`` the category
    distribution of the list (each item weighs the same) and
    ``q~ = (1 - smoothing) * q + smoothing * p``. Each item has one category.
    Users without training history have no ``p``; their lists keep the input order.

    Parameters
    ----------
    strength : float in [0, 1], default 0.5
        Weight ``lambda`` of the calibration term.
    smoothing : float in (0, 1], default 0.01
        Steck's ``alpha``; keeps the KL finite when the list misses a category.

    Attributes
    ----------
    item_category_ : ndarray of shape (n_items,), int64
        Copy of ``item_category``.
    n_categories_ : int
        ``item_category.max() + 1``.
    user_category_dist_ : ndarray of shape (n_users, n_categories_), float64
        ``p(c|u)``; all zero for users without history.
    n_users_, n_items_ : int
        Shape of the training matrix.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> X = sp.csr_matrix([[1, 0, 0, 0, 1]])  # history: one item of category 0, one of 1
    >>> category = np.array([0, 0, 0, 0, 1])
    >>> rr = CalibratedReranker(strength=0.9).fit(X, item_category=category)
    >>> ids, scores = np.array([[0, 1, 2, 3, 4]]), np.array([[5.0, 4.0, 3.0, 2.0, 1.0]])
    >>> rr.rerank(ids, scores, users=np.array([0]), k=2)[0].tolist()
    [[0, 4]]
    >>> rr.set_params(strength=0.0).rerank(ids, scores, users=np.array([0]), k=2)[0].tolist()
    [[0, 1]]
    """

    def __init__(self, *, strength: float = 0.5, smoothing: float = 0.01) -> None:
        self.strength = strength
        self.smoothing = smoothing

    def fit(
        self, X: sp.spmatrix, y: None = None, *, item_category: np.ndarray
    ) -> CalibratedReranker:
        """Learn each user's category distribution from the training history.

        Parameters
        ----------
        X : sparse matrix of shape (n_users, n_items)
            Training interactions; the values weigh the history.
        y : None
            Ignored (scikit-learn signature).
        item_category : ndarray of shape (n_items,), integer
            Category code (``>= 0``) of each item.

        Returns
        -------
        CalibratedReranker
            ``self``.
        """
        _check_unit_interval("smoothing", self.smoothing, open_low=True)
        X = self._check_fit_input(X)
        category = self._check_attribute(
            "item_category", item_category, kind="iu", size=self.n_items_, what="item"
        ).astype(np.int64)
        if category.min() < 0:
            raise ValueError(
                f"item_category: expected category codes >= 0, got {category.min()}"
            )
        n_categories = int(category.max()) + 1
        one_hot = sp.csr_matrix(
            (np.ones(self.n_items_), (np.arange(self.n_items_), category)),
            shape=(self.n_items_, n_categories),
        )
        mass = np.asarray((X.astype(np.float64) @ one_hot).todense())
        total = mass.sum(axis=1, keepdims=True)
        self.user_category_dist_ = np.divide(
            mass, total, out=np.zeros_like(mass), where=total > 0
        )
        self.item_category_ = category
        self.n_categories_ = n_categories
        return self

    def _select(
        self, ids: np.ndarray, scores: np.ndarray, users: np.ndarray, k: int
    ) -> np.ndarray:
        n_rows, n_cand = ids.shape
        n_cat = self.n_categories_
        lam, smoothing = float(self.strength), float(self.smoothing)
        valid = ids >= 0
        relevance = minmax_rows(scores, valid)
        category = np.where(valid, self.item_category_[np.where(valid, ids, 0)], n_cat)
        rows = np.arange(n_rows)

        # Candidates grouped by category, each group in input order; padding last.
        # Within a category the gain falls with the position (the KL part is the same
        # for all its items, relevance falls), so only the earliest candidate not yet
        # taken of each category can win: a "head" pointer per (user, category)
        # replaces a pass over all n_cand candidates at every step.
        key_type = np.int16 if n_cat < np.iinfo(np.int16).max else np.int64
        order = np.argsort(category.astype(key_type), axis=1, kind="stable")  # radix sort
        per_cat = np.bincount(
            (rows[:, None] * (n_cat + 1) + category).ravel(), minlength=n_rows * (n_cat + 1)
        ).reshape(n_rows, n_cat + 1)
        first = (np.cumsum(per_cat, axis=1) - per_cat)[:, :n_cat]
        available = per_cat[:, :n_cat]
        taken = np.zeros((n_rows, n_cat))  # = category counts of the list so far
        head_pos = np.where(
            available > 0, np.take_along_axis(order, np.minimum(first, n_cand - 1), axis=1), n_cand
        )
        head_rel = np.where(
            available > 0,
            (1.0 - lam) * np.take_along_axis(relevance, np.minimum(head_pos, n_cand - 1), axis=1),
            -np.inf,
        )

        # KL part. With t items chosen, let a_d = (1 - smoothing) * counts_d / (t + 1)
        # + smoothing * p_d and step = (1 - smoothing) / (t + 1). Adding an item of
        # category c gives q~_d = a_d + [d == c] * step, so
        #   KL_c = sum_d p_d log p_d - sum_d p_d log a_d - p_c log(1 + step / a_c).
        # The first two sums are the same for every candidate of the user, so the
        # argmax of (1 - strength) * rel - strength * KL_c is that of
        #   (1 - strength) * rel + strength * p_c * log1p(step / a_c),
        # [n_rows, n_categories] per step. Where p_c = 0 the term is 0; 1 is added to a_c
        # there only to keep the division finite.
        p = self.user_category_dist_[users]  # zero rows (no history): no KL term
        lam_p = lam * p
        smooth_p = smoothing * p + (p == 0)
        pos = np.full((n_rows, k), -1, dtype=np.int64)
        for t in range(k):
            step = (1.0 - smoothing) / (t + 1)
            gain = head_rel + lam_p * np.log1p(step / (taken * step + smooth_p))
            # ties between categories: the earliest candidate, i.e. the input order
            best_gain = gain.max(axis=1, keepdims=True)
            best = np.where(gain == best_gain, head_pos, n_cand).min(axis=1)
            ok = best < n_cand
            pos[:, t] = np.where(ok, best, -1)
            # advance the chosen category's head
            r = rows[ok]
            c = category[r, best[ok]]
            taken[r, c] += 1.0
            more = taken[r, c] < available[r, c]
            nxt = order[r, np.minimum(first[r, c] + taken[r, c].astype(np.int64), n_cand - 1)]
            head_pos[r, c] = np.where(more, nxt, n_cand)
            head_rel[r, c] = np.where(more, (1.0 - lam) * relevance[r, nxt], -np.inf)
        return pos
