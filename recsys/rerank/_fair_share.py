"""FA*IR: a minimum share of a protected item group in every prefix of the list."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.stats import binom

from recsys.rerank._base import Reranker

__all__ = ["FairShareReranker", "fair_mtable"]


def fair_mtable(k: int, p: float, alpha: float) -> np.ndarray:
    """FA*IR's table of the minimum number of protected items in each prefix.

    Entry ``i - 1`` is ``binom.ppf(alpha, i, p)`` for ``i = 1..k``: the fewest
    protected items a top-``i`` may hold before a binomial test at level
    ``alpha`` rejects that it was drawn with protected share ``p``.

    This is the *unadjusted* table: the paper's correction of ``alpha`` for
    testing ``k`` prefixes at once (Zehlike et al. 2017, section 4) is not
    applied, so the overall test is stricter than ``alpha`` suggests.

    >>> fair_mtable(5, 0.5, 0.1).tolist()
    [0, 0, 0, 1, 1]
    """
    # scipy's ppf is exact for the binomial and returns whole numbers as floats
    return binom.ppf(alpha, np.arange(1, k + 1), p).astype(np.int64)


class FairShareReranker(Reranker):
    """FA*IR re-ranking for a protected item group (Zehlike et al., CIKM 2017).

    Walks down the output positions; at position ``i`` the list must hold at
    least ``mtable[i]`` protected items (see :func:`fair_mtable`, with target
    share ``p = strength``). If it holds fewer, the best remaining protected
    candidate is taken (when any is left), otherwise the best remaining
    candidate of either group. Within each group the input order is kept.

    Parameters
    ----------
    strength : float in [0, 1], default 0.5
        Target protected share ``p``. ``0`` keeps the input order; ``1`` puts
        protected candidates first as long as any are left.
    alpha : float in (0, 1), default 0.1
        Significance level of FA*IR's per-prefix binomial test; a larger
        ``alpha`` demands more protected items earlier.

    Attributes
    ----------
    protected_items_ : ndarray of shape (n_items,), bool
        Copy of ``protected_items`` given to :meth:`fit`.
    n_users_, n_items_ : int
        Shape of the training matrix.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> X = sp.csr_matrix(np.ones((1, 6)))
    >>> protected = np.array([False, False, False, False, True, True])
    >>> rr = FairShareReranker(strength=0.5, alpha=0.1).fit(X, protected_items=protected)
    >>> ids = np.array([[0, 1, 2, 3, 4, 5]])
    >>> scores = np.array([[6.0, 5.0, 4.0, 3.0, 2.0, 1.0]])
    >>> out_ids, out_scores = rr.rerank(ids, scores, users=np.array([0]), k=5)
    >>> out_ids.tolist(), out_scores.tolist()  # mtable [0, 0, 0, 1, 1]
    ([[0, 1, 2, 4, 3]], [[6.0, 5.0, 4.0, 2.0, 3.0]])
    """

    def __init__(self, *, strength: float = 0.5, alpha: float = 0.1) -> None:
        self.strength = strength
        self.alpha = alpha

    def fit(
        self, X: sp.spmatrix, y: None = None, *, protected_items: np.ndarray
    ) -> FairShareReranker:
        """Store the protected item group.

        Parameters
        ----------
        X : sparse matrix of shape (n_users, n_items)
            Training interactions (only their shape is used).
        y : None
            Ignored (scikit-learn signature).
        protected_items : ndarray of shape (n_items,), bool
            True for the items of the protected group.

        Returns
        -------
        FairShareReranker
            ``self``.
        """
        alpha = self.alpha
        if (
            not isinstance(alpha, (int, float, np.integer, np.floating))
            or isinstance(alpha, bool)
            or not 0 < alpha < 1
        ):
            raise ValueError(f"alpha: expected a float in (0, 1), got {alpha!r}")
        self._check_fit_input(X)
        protected = self._check_attribute(
            "protected_items", protected_items, kind="b", size=self.n_items_, what="item"
        )
        self.protected_items_ = protected.copy()
        return self

    def _select(
        self, ids: np.ndarray, scores: np.ndarray, users: np.ndarray, k: int
    ) -> np.ndarray:
        n_rows, n_cand = ids.shape
        valid = ids >= 0
        protected = valid & self.protected_items_[np.where(valid, ids, 0)]
        # one stable order per row: protected candidates (in input order), then the
        # others, then padding; a pointer into each of the first two blocks walks down
        group = np.where(protected, 0, np.where(valid, 1, 2)).astype(np.int8)
        order = np.argsort(group, axis=1, kind="stable")
        n_prot = protected.sum(axis=1)
        n_other = valid.sum(axis=1) - n_prot
        rows = np.arange(n_rows)
        next_prot = np.zeros(n_rows, dtype=np.int64)  # taken so far from each block
        next_other = np.zeros(n_rows, dtype=np.int64)
        mtable = fair_mtable(k, float(self.strength), float(self.alpha))
        pos = np.full((n_rows, k), -1, dtype=np.int64)
        for i in range(k):
            has_prot = next_prot < n_prot
            has_other = next_other < n_other
            # candidate positions at the two pointers (n_cand = none left)
            cand_prot = np.where(
                has_prot, order[rows, np.minimum(next_prot, n_cand - 1)], n_cand
            )
            cand_other = np.where(
                has_other, order[rows, np.minimum(n_prot + next_other, n_cand - 1)], n_cand
            )
            below_table = next_prot < mtable[i]  # protected so far < required in top-(i+1)
            take_prot = has_prot & (below_table | (cand_prot < cand_other))
            take_other = ~take_prot & has_other
            pos[:, i] = np.where(take_prot, cand_prot, np.where(take_other, cand_other, -1))
            next_prot += take_prot
            next_other += take_other
        return pos
