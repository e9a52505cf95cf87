"""History scorers: a model's score for arbitrary histories (the value function of history explanations).

:func:`history_scorer` returns, for EASE and item-kNN, the linear map ``x_u W``;
for ALS, the user factor re-solved from the history with the equations of the
library that trained it (:mod:`recsys.models._als_solve`); for BPR, its fold-in
(:mod:`recsys.explain._bpr`). :func:`deletion_score_fn` scores an item with sets
of history items removed (deletion fidelity). See :mod:`recsys.explain._history`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import scipy.sparse as sp

from recsys.explain._bpr import bpr_scorer
from recsys.models import ALS, BPR, EASE, ItemKNN, Recommender, check_fitted
from recsys.models._als_solve import Solver, resolve_user_factors

__all__ = ["LinearInHistory", "ScoreFn", "ScoresHistory", "deletion_score_fn", "history_scorer"]


# ----------------------------------------------------------------- protocols
@runtime_checkable
class ScoresHistory(Protocol):
    """Scores items for arbitrary histories (the value function of history explanations).

    ``score_history(history, items)`` takes a CSR matrix ``[n_rows, n_items]`` of
    interaction values (one history per row) and returns float64 scores
    ``[n_rows, len(items)]``. A model may implement it itself; otherwise
    :func:`history_scorer` builds one for the models fairrec knows.
    """

    def score_history(self, history: sp.csr_matrix, items: np.ndarray) -> np.ndarray: ...


@runtime_checkable
class LinearInHistory(ScoresHistory, Protocol):
    """A scorer linear in the history: ``score = sum_j contributions[j]``, exactly.

    ``contributions(history, items)`` takes one history row and returns
    ``[nnz, len(items)]``, row ``j`` the part of the score owed to the ``j``-th
    stored history item (sorted by item index). These are the exact Shapley
    values of the history game (base value 0).
    """

    def contributions(self, history: sp.csr_matrix, items: np.ndarray) -> np.ndarray: ...


class _LinearScorer:
    """``score = values(history) @ W``, ``W`` item x item (EASE's ``B_``, item-kNN similarity)."""

    def __init__(self, weights: np.ndarray | sp.csr_matrix, *, binary: bool) -> None:
        self.weights = weights
        self.binary = binary

    def _values(self, history: sp.csr_matrix) -> sp.csr_matrix:
        h = sp.csr_matrix(history, dtype=np.float64, copy=True)
        if self.binary:
            h.data[:] = 1.0
        return h

    def _columns(self, items: np.ndarray) -> np.ndarray | sp.csr_matrix:
        return self.weights[:, items]

    def score_history(self, history: sp.csr_matrix, items: np.ndarray) -> np.ndarray:
        out = self._values(history) @ self._columns(items).astype(np.float64)
        return out.toarray() if sp.issparse(out) else np.asarray(out)

    def contributions(self, history: sp.csr_matrix, items: np.ndarray) -> np.ndarray:
        h = self._values(history)
        h.sort_indices()
        rows = self.weights[h.indices][:, items]
        rows = rows.toarray() if sp.issparse(rows) else rows
        return h.data[:, None] * rows.astype(np.float64)


class _AlsScorer:
    """ALS with the user factor re-solved from the history, as the training library does.

    ``solver="implicit"``: implicit (``recalculate_user``, ``explain``) takes the
    confidences ``C = alpha * r`` (``r`` the stored values) and solves
    ``(YᵀY + reg·I + Yᵀ(C_u − I)Y) x_u = Yᵀ C_u p_u`` for the history items
    (``p = 1`` on them); absent items have confidence 1 and preference 0.
    ``solver="mllib"``: MLlib's implicit ALS, confidence ``1 + alpha·|r|`` and
    regularisation ``reg·n_u`` (see :mod:`recsys.models._als_solve`). The empty
    history gives ``x_u = 0``. Written with numpy because implicit solves one
    history per call (and MLlib none outside a fit) and the explainers need
    thousands of masked histories, batched here.
    """

    def __init__(
        self,
        item_factors: np.ndarray,
        *,
        regularization: float,
        alpha: float,
        solver: Solver = "implicit",
    ) -> None:
        self.item_factors = np.asarray(item_factors, dtype=np.float64)
        self.regularization = float(regularization)
        self.alpha = float(alpha)
        self.solver = solver
        self.gram = self.item_factors.T @ self.item_factors

    def user_factors(self, history: sp.csr_matrix) -> np.ndarray:
        return resolve_user_factors(
            self.item_factors, history, solver=self.solver, regularization=self.regularization,
            alpha=self.alpha, gram=self.gram,
        )

    def score_history(self, history: sp.csr_matrix, items: np.ndarray) -> np.ndarray:
        return self.user_factors(history) @ self.item_factors[items].T


def history_scorer(model: Recommender) -> ScoresHistory:
    """A :class:`ScoresHistory` for a fitted model.

    The model itself if it implements the protocol; otherwise EASE and item-kNN
    (exactly linear: :class:`LinearInHistory`), ALS (user factor re-solved with
    the equations of ``model.solver``, implicit's or MLlib's) and
    BPR (user factor folded in from BPR's objective, see
    :mod:`recsys.explain._bpr`; the empty history scores the item bias).

    Raises
    ------
    TypeError
        For Popularity (the score does not depend on the history) and unknown
        models.
    ValueError
        For a BPR fitted with ``regularization=0`` (its fold-in has no maximiser).

    Examples
    --------
    >>> X = sp.csr_matrix([[1, 1, 0], [0, 1, 1], [1, 1, 1]])
    >>> scorer = history_scorer(EASE(l2=1.0).fit(X))
    >>> isinstance(scorer, LinearInHistory)
    True
    >>> scorer.score_history(sp.csr_matrix([[0, 0, 0]]), np.array([2])).tolist()
    [[0.0]]
    """
    if isinstance(model, ScoresHistory):
        return model
    check_fitted(model)
    if isinstance(model, EASE):
        return _LinearScorer(model.B_, binary=model.binary)
    if isinstance(model, ItemKNN):
        return _LinearScorer(model.similarity_, binary=False)
    if isinstance(model, ALS):
        return _AlsScorer(
            model.item_factors_, regularization=model.regularization, alpha=model.alpha,
            solver=getattr(model, "solver", "implicit"),
        )
    if isinstance(model, BPR):
        return bpr_scorer(model)
    raise TypeError(
        "model: expected EASE, ItemKNN, ALS, BPR or a model implementing ScoresHistory, got "
        f"{type(model).__name__} (feature-based models such as TwoStageRanker are explained "
        "by FeatureShapExplainer and FeatureLimeExplainer)"
    )


def _masked_histories(row: sp.csr_matrix, masks: np.ndarray) -> sp.csr_matrix:
    """One history per mask row: the user's row restricted to the masked-in items."""
    masks = np.asarray(masks) > 0.5
    r, j = np.nonzero(masks)
    return sp.csr_matrix(
        (row.data[j], (r, row.indices[j])), shape=(masks.shape[0], row.shape[1])
    )


ScoreFn = Callable[[int, int, Sequence[np.ndarray]], np.ndarray]


def deletion_score_fn(model: Recommender) -> ScoreFn:
    """A ``score_fn(user, item, removed_sets) -> scores`` for deletion fidelity.

    Scores ``item`` for the user's training history with each set of history
    items removed (one score per set), through :func:`history_scorer`.

    Examples
    --------
    >>> X = sp.csr_matrix([[1, 1, 0], [0, 1, 1], [1, 1, 1]])
    >>> fn = deletion_score_fn(ItemKNN(k_neighbours=3).fit(X))
    >>> fn(0, 2, [np.array([], dtype=int), np.array([0, 1])]).round(3).tolist()
    [1.316, 0.0]
    """
    scorer = history_scorer(model)

    def score_fn(user: int, item: int, removed_sets: Sequence[np.ndarray]) -> np.ndarray:
        row = sp.csr_matrix(model.user_items_[int(user)], dtype=np.float64)
        masks = np.ones((len(removed_sets), row.nnz))
        for r, removed in enumerate(removed_sets):
            masks[r, np.isin(row.indices, np.asarray(removed, dtype=np.int64))] = 0
        hist = _masked_histories(row, masks)
        return scorer.score_history(hist, np.array([int(item)]))[:, 0]

    return score_fn
