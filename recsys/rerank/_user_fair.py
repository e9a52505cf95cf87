"""User-side fairness: blend item popularity into a disadvantaged user group's lists."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recsys.rerank._base import Reranker, minmax_rows

__all__ = ["UserGroupBlendReranker"]


class UserGroupBlendReranker(Reranker):
    """Re-rank the candidates of a disadvantaged user group towards popular items.

    For users in the group, candidates are ordered by::

        (1 - strength) * minmax(score) + strength * minmax(log1p(popularity))

    with both terms min-max normalised per user over that user's candidates
    (ties keep the input order). Popularity is an item property learned at
    ``fit``, so this only reorders the candidates; no model is called. Users
    outside the group keep their input order.

    This helps a group whose histories are too thin for the first-stage model
    to rank well (for example low-activity users, for whom popular items are
    the better bet): their lists lean on what many users liked. It cannot
    close a gap whose cause is elsewhere (item coverage, labels, the metric,
    data the group never produced), and it can narrow a gap by making the
    group's lists worse. The evaluation compares each group with its
    un-reranked baseline and flags such levelling down.

    Parameters
    ----------
    strength : float in [0, 1], default 0.5
        Weight of popularity in the group's blend; ``1`` sorts the group's
        candidates by popularity alone.

    Attributes
    ----------
    user_group_ : ndarray of shape (n_users,), bool
        Copy of ``user_group`` (True = disadvantaged).
    item_log_popularity_ : ndarray of shape (n_items,), float64
        ``log1p`` of the item popularity used in the blend.
    n_users_, n_items_ : int
        Shape of the training matrix.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> X = sp.csr_matrix([[1, 0, 0], [0, 1, 1], [0, 0, 1]])  # popularity [1, 1, 2]
    >>> rr = UserGroupBlendReranker(strength=1.0).fit(X, user_group=np.array([True, False, False]))
    >>> ids = np.array([[0, 1, 2], [0, 1, 2]])
    >>> scores = np.array([[3.0, 2.0, 1.0], [3.0, 2.0, 1.0]])
    >>> rr.rerank(ids, scores, users=np.array([0, 1]), k=2)[0].tolist()  # only user 0 changes
    [[2, 0], [0, 1]]
    """

    def __init__(self, *, strength: float = 0.5) -> None:
        self.strength = strength

    def fit(
        self,
        X: sp.spmatrix,
        y: None = None,
        *,
        user_group: np.ndarray,
        item_popularity: np.ndarray | None = None,
    ) -> UserGroupBlendReranker:
        """Store the user group and the item popularity.

        Parameters
        ----------
        X : sparse matrix of shape (n_users, n_items)
            Training interactions.
        y : None
            Ignored (scikit-learn signature).
        user_group : ndarray of shape (n_users,), bool
            True for the users whose lists are re-ranked (the disadvantaged group).
        item_popularity : ndarray of shape (n_items,), optional
            Non-negative popularity per item; default: the number of distinct
            training users of each item in ``X``.

        Returns
        -------
        UserGroupBlendReranker
            ``self``.
        """
        X = self._check_fit_input(X)
        group = self._check_attribute(
            "user_group", user_group, kind="b", size=self.n_users_, what="user"
        )
        if item_popularity is None:
            popularity = np.bincount(X.indices, minlength=self.n_items_).astype(np.float64)
        else:
            popularity = self._check_attribute(
                "item_popularity", item_popularity, kind="iuf", size=self.n_items_, what="item"
            ).astype(np.float64)
            bad = ~np.isfinite(popularity) | (popularity < 0)
            if bad.any():
                raise ValueError(
                    "item_popularity: expected finite values >= 0, got "
                    f"{popularity[bad][:5].tolist()}"
                )
        self.user_group_ = group.copy()
        self.item_log_popularity_ = np.log1p(popularity)
        return self

    def _select(
        self, ids: np.ndarray, scores: np.ndarray, users: np.ndarray, k: int
    ) -> np.ndarray:
        n_rows, n_cand = ids.shape
        valid = ids >= 0
        pos = np.where(valid[:, :k], np.arange(k), -1)  # input order for everyone ...
        in_group = self.user_group_[users]
        if not in_group.any():
            return pos
        # ... then the group's rows re-ordered by the blend
        lam = float(self.strength)
        g_ids, g_valid = ids[in_group], valid[in_group]
        log_pop = self.item_log_popularity_[np.where(g_valid, g_ids, 0)]
        blend = (1.0 - lam) * minmax_rows(scores[in_group], g_valid) + lam * minmax_rows(
            log_pop, g_valid
        )
        blend[~g_valid] = -np.inf
        order = np.argsort(-blend, axis=1, kind="stable")[:, :k]  # ties: input order
        pos[in_group] = np.where(np.take_along_axis(g_valid, order, axis=1), order, -1)
        return pos
