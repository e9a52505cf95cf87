"""Explainers of factor models beside SHAP and LIME: implicit's (or MLlib's) own ALS decomposition,
BPR's representer weights, and the labelled factor-similarity proxy. See :mod:`recsys.explain._history`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.linalg
import scipy.sparse as sp

from recsys.explain._bpr import bpr_scorer
from recsys.explain._explanation import Explanation
from recsys.explain._history import _HistoryExplainer
from recsys.models import ALS, BPR, Recommender
from recsys.models._als_solve import normal_equations

__all__ = ["BprRepresenterExplainer", "FactorSimilarityExplainer", "ImplicitAlsExplainer"]


class ImplicitAlsExplainer(_HistoryExplainer):
    """implicit's own ALS explanation (method ``"als_explain"``).

    implicit's ``AlternatingLeastSquares.explain`` re-solves the user factor from
    the history (Hu, Koren & Volinsky 2008, section 5) and splits the re-solved
    score into one term per history item, ``c_j · y_iᵀ W_u y_j``: an exact
    additive decomposition (base value 0), but not Shapley values (each term
    uses ``W_u`` of the *whole* history).

    implicit's ``explain`` can only use implicit's equations. For a model whose
    factors MLlib trained (``model.solver == "mllib"``) the same split is taken
    of MLlib's system instead: ``W_u = A_u⁻¹`` of
    :func:`recsys.models._als_solve.normal_equations` and ``c_j = 1 + alpha·r_j``
    on the items with ``r_j > 0`` (MLlib's right-hand side is ``Σ c_j y_j``), so
    the terms still add up to the re-solved score, which for a training
    history is the served one. ``extra["algorithm"]`` is ``"implicit"`` or
    ``"mllib"``.

    Examples
    --------
    >>> X = sp.csr_matrix([[1, 1, 0], [1, 1, 1], [0, 1, 1]])
    >>> model = ALS(factors=2, iterations=3, num_threads=1).fit(X)
    >>> (e,) = ImplicitAlsExplainer(model).explain(0, [2])
    >>> e.method, e.features, bool(np.isclose(e.weights.sum(), e.score))
    ('als_explain', (0, 1), True)
    """

    def __init__(self, model: Recommender) -> None:
        self.model = model

    def _explain_history(
        self, user: int, row: sp.csr_matrix, items: np.ndarray, *, served: bool
    ) -> list[Explanation]:
        inner = getattr(self.model, "_inner_", None)
        if not isinstance(self.model, ALS) or not callable(getattr(inner, "explain", None)):
            raise TypeError(
                "model: expected a fitted fairrec ALS (its implicit model provides explain()), "
                f"got {type(self.model).__name__}"
            )
        solver = getattr(self.model, "solver", "implicit")
        if solver == "mllib":
            Y, factor, confidence = self._mllib_system(row)
        else:
            single = sp.csr_matrix(row, dtype=np.float32)
            # implicit builds and factorises the user's system (Cholesky of W_u^-1); its
            # split, c_j · y_iᵀ W_u y_j, then loops over the history in Python once per
            # item (20-40 ms for a 477-item history). The same split with implicit's
            # factor, as one product for all items (equal to implicit's; tested):
            _, _, factor = inner.explain(0, single, int(items[0]), N=1)
            Y = np.asarray(inner.item_factors, dtype=np.float64)
            confidence = np.maximum(single.data.astype(np.float64) * float(inner.alpha), 0.0)
        if factor is None:  # MLlib, no positive value: b = 0, so x_u = 0 and every term is 0
            weights = np.zeros((row.nnz, items.size))
        else:
            weighted = scipy.linalg.cho_solve(factor, Y[items].T)  # [f, T]: W_u y_i
            weights = (Y[row.indices] * confidence[:, None]) @ weighted
        totals = weights.sum(axis=0)
        return self._history_explanations(
            user, items, method="als_explain", features=row.indices, weights=weights,
            base=np.zeros(items.size), scores=totals,
            extra={"exact": True, "algorithm": solver}, served=served,
        )

    def _mllib_system(
        self, row: sp.csr_matrix
    ) -> tuple[np.ndarray, tuple[np.ndarray, bool] | None, np.ndarray]:
        """Item factors, Cholesky factor of MLlib's ``A_u`` (None if ``b = 0``), ``c_j``."""
        model = self.model
        # YᵀY in float64, computed once per fitted state (a served request should not repeat it)
        cached = getattr(self, "_gram", None)
        if cached is None or cached[0] is not model.item_factors_:
            Y = np.asarray(model.item_factors_, dtype=np.float64)
            self._gram = cached = (model.item_factors_, Y, Y.T @ Y)
        _, Y, gram = cached
        values = row.data.astype(np.float64)
        positive = values > 0
        confidence = np.where(positive, 1.0 + float(model.alpha) * np.abs(values), 0.0)
        if not positive.any():
            return Y, None, confidence
        A, _ = normal_equations(
            gram, Y[row.indices], values[None, :], solver="mllib",
            regularization=float(model.regularization), alpha=float(model.alpha),
        )
        return Y, scipy.linalg.cho_factor(A[0]), confidence


class BprRepresenterExplainer(_HistoryExplainer):
    """BPR's fold-in score split over the history items (method ``"representer"``).

    The fast, faithful explanation of :class:`~recsys.models.BPR`: the user
    factor is folded in from the history once (see :mod:`recsys.explain._bpr`)
    and, by the optimality condition of BPR's objective, is a sum of one term
    per history item; each item's weight is its term's share of the score,
    ``weight_i = term_i · v_t`` (see ``_BprScorer.representer``). The weights
    sum to ``score − base_value`` (``base_value`` the item bias, ``score`` the
    fold-in score, as for :class:`HistoryShapExplainer` on BPR). Like implicit's
    ALS ``explain`` this is an exact additive decomposition, not Shapley values:
    every term is taken at the optimum of the whole history.

    Parameters
    ----------
    model : fitted BPR
    n_negatives : int, default 256
    random_state : int or None, default 0
        The negative sample of the fold-in, as the other BPR explainers draw it.

    Examples
    --------
    >>> X = sp.csr_matrix(np.kron(np.eye(2), np.ones((3, 3))))
    >>> model = BPR(factors=2, iterations=50, num_threads=1).fit(X)
    >>> (e,) = BprRepresenterExplainer(model).explain(0, [3])
    >>> e.method, e.features, bool(np.isclose(e.weights.sum(), e.score - e.base_value))
    ('representer', (0, 1, 2), True)
    """

    def __init__(
        self, model: Recommender, *, n_negatives: int = 256, random_state: int | None = 0
    ) -> None:
        self.model = model
        self.n_negatives = n_negatives
        self.random_state = random_state

    def _scorer(self) -> Any:
        """The model's fold-in scorer, built once per fitted state and setting.

        Building it draws the negatives and their outer products (about a
        millisecond), which a served request should not repeat.
        """
        key = (self.model.item_factors_, self.n_negatives, self.random_state)
        cached = getattr(self, "_cached", None)
        if cached is None or cached[0][0] is not key[0] or cached[0][1:] != key[1:]:
            scorer = bpr_scorer(
                self.model, n_negatives=self.n_negatives, random_state=self.random_state
            )
            self._cached = (key, scorer)
        return self._cached[1]

    def _explain_history(
        self, user: int, row: sp.csr_matrix, items: np.ndarray, *, served: bool
    ) -> list[Explanation]:
        if not isinstance(self.model, BPR):
            raise TypeError(f"model: expected a fitted BPR, got {type(self.model).__name__}")
        scorer = self._scorer()
        features, weights, scores = scorer.representer(row, items)
        return self._history_explanations(
            user, items, method="representer", features=features, weights=weights,
            base=scorer.bias[items], scores=scores,
            extra={"exact": True, "algorithm": "representer"}, served=served,
        )


class FactorSimilarityExplainer(_HistoryExplainer):
    """A labelled proxy for factor models: cosine of item factors (not an attribution).

    Weight ``j`` is the cosine similarity between the factors of history item
    ``j`` and of the recommended item (BPR's bias column left out). It says
    which past items the recommendation *resembles*, not what caused its score:
    ``extra["faithful"]`` is False and the weights do not sum to the score.
    (:class:`HistoryShapExplainer` and :class:`HistoryLimeExplainer` explain ALS
    and BPR faithfully, through a re-solved or folded-in user factor.)

    Examples
    --------
    >>> X = sp.csr_matrix([[1, 1, 0], [1, 1, 1], [0, 1, 1]])
    >>> model = BPR(factors=2, iterations=3, num_threads=1).fit(X)
    >>> (e,) = FactorSimilarityExplainer(model).explain(0, [2])
    >>> e.method, e.extra["faithful"], bool(np.all(np.abs(e.weights) <= 1 + 1e-9))
    ('similarity', False, True)
    """

    def __init__(self, model: Recommender) -> None:
        self.model = model

    def _explain_history(
        self, user: int, row: sp.csr_matrix, items: np.ndarray, *, served: bool
    ) -> list[Explanation]:
        if not isinstance(self.model, (ALS, BPR)):
            raise TypeError(
                "model: expected a fitted ALS or BPR (item factors), got "
                f"{type(self.model).__name__}"
            )
        Y = np.asarray(self.model.item_factors_, dtype=np.float64)
        if isinstance(self.model, BPR):
            Y = Y[:, :-1]  # the last column is the item bias
        norms = np.linalg.norm(Y, axis=1)
        norms[norms == 0] = 1.0
        unit = Y / norms[:, None]
        similarity = unit[row.indices] @ unit[items].T
        model_scores = self._served_scores(user, items) if served else np.full(items.size, np.nan)
        return [
            Explanation(
                user=user,
                item=item,
                method="similarity",
                features=row.indices,
                weights=similarity[:, k],
                base_value=0.0,
                score=float(model_scores[k]),
                extra={"space": "history", "exact": False, "faithful": False},
            )
            for k, item in enumerate(items)
        ]
