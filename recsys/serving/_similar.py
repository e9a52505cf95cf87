"""Items similar to an item, measured the way the served model relates items.

* EASE: row ``i`` of ``B_``, how much having item ``i`` in a history raises
  each other item's score (the model's own item-to-item weights).
* item-kNN: row ``i`` of the learned neighbour similarities ``similarity_``.
* ALS, BPR: cosine of the item factors (BPR's bias column left out), as
  :class:`~recsys.explain.FactorSimilarityExplainer` measures it.
* Popularity (no item relation of its own): cosine of the items' training
  user sets (co-occurrence).

Only items with a positive similarity are returned; the item itself never is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from recsys.models import ALS, BPR, EASE, ItemKNN, Recommender, check_fitted, top_k

__all__ = ["ItemSimilarity"]


@dataclass(frozen=True, eq=False)
class ItemSimilarity:
    """Similar items for a fitted model; see the module docstring for the measure.

    Examples
    --------
    >>> from recsys.models import Popularity
    >>> X = sp.csr_matrix([[1, 1, 0], [1, 1, 0], [0, 1, 1]])
    >>> sim = ItemSimilarity.for_model(Popularity().fit(X))
    >>> sim.method
    'co_occurrence_cosine'
    >>> ids, scores = sim.similar(0, 5)
    >>> ids.tolist(), scores.round(3).tolist()
    ([1], [0.816])
    """

    method: str
    _rows: np.ndarray | sp.csr_matrix  # row i: item i's similarities; binary X for co-occurrence
    _unit_factors: np.ndarray | None  # unit-length item factors (factor models)
    _counts: np.ndarray | None = None  # training users per item (co-occurrence)

    @classmethod
    def for_model(cls, model: Recommender) -> ItemSimilarity:
        check_fitted(model)
        if isinstance(model, EASE):
            return cls("ease_item_weights", model.B_, None)
        if isinstance(model, ItemKNN):
            return cls("neighbour_similarity", sp.csr_matrix(model.similarity_), None)
        if isinstance(model, (ALS, BPR)):
            factors = np.asarray(model.item_factors_, dtype=np.float64)
            if isinstance(model, BPR):
                factors = factors[:, :-1]  # the last column is the item bias
            norms = np.linalg.norm(factors, axis=1, keepdims=True)
            unit = np.divide(factors, norms, out=np.zeros_like(factors), where=norms > 0)
            return cls("factor_cosine", np.zeros((0, 0)), unit)
        # any other model (Popularity): co-occurrence over the training users, per query item
        X = sp.csr_matrix(model.user_items_, dtype=np.float64, copy=True)
        X.data[:] = 1.0
        return cls("co_occurrence_cosine", X, None, np.asarray(X.sum(axis=0)).ravel())

    def similar(self, item: int, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` most similar items to internal item ``item`` and their scores (no padding)."""
        if self._unit_factors is not None:
            row = self._unit_factors @ self._unit_factors[item]
        elif self._counts is not None:
            X, counts = self._rows, self._counts  # binary user x item
            users = X[:, [item]].nonzero()[0]
            shared = np.asarray(X[users].sum(axis=0)).ravel()  # users who have both items
            denominator = np.sqrt(counts * counts[item])
            row = np.divide(shared, denominator, out=np.zeros_like(shared), where=denominator > 0)
        else:
            row = self._rows[item]
            row = row.toarray().ravel() if sp.issparse(row) else np.array(row, dtype=np.float64)
        row = np.asarray(row, dtype=np.float64)
        row[item] = -np.inf
        row[~(row > 0)] = -np.inf  # only positive similarities (NaN included)
        ids, scores = top_k(row[None, :], k)
        keep = ids[0] >= 0
        return ids[0][keep], scores[0][keep].astype(np.float64)
