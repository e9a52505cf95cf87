"""Explanations of collaborative models over the user's own history.

"Which of my past interactions raised this item's score?" The players are the
user's history items; the value of a coalition ``S`` is the model's score for
the item when the user's history is restricted to ``S`` (the interaction
values kept as they are). Every supported model but BPR scores the empty
history 0, so the base value is 0 and the attributions of an item sum to its
score; BPR scores it the item's bias, its base value (see below).

How each model is explained (see :func:`history_scorer`):

* :class:`~recsys.models.EASE` and :class:`~recsys.models.ItemKNN` are linear in
  the history (``score = x_u W``). Their Shapley values are exact and closed-form,
  ``phi_j = x_uj * W[j, item]``: :class:`HistoryShapExplainer` uses that directly.
* :class:`~recsys.models.ALS` re-solves the user factor from the coalition with
  the closed form of the library that trained the factors (``model.solver``:
  implicit's, or MLlib's for a Spark-trained model; see :class:`_AlsScorer`
  and :mod:`recsys.models._als_solve`). The Shapley values are then
  computed by ``shap.KernelExplainer`` (background: the empty history) with a
  budget of ``max(n_samples, 2M + 2)`` coalitions: exact when that covers all
  ``2^M - 2`` proper coalitions, otherwise a seeded Kernel SHAP estimate. Both
  are additive (the weights sum to ``score - base_value``). implicit's own
  decomposition is :class:`ImplicitAlsExplainer` (method ``"als_explain"``).
  The explained score is the re-solved one (``Explanation.score``); the score
  ``recommend`` serves uses the factor learned in training and is kept in
  ``extra["model_score"]``. For implicit (conjugate-gradient steps) the two
  agree as ALS converges; MLlib solves the user factors exactly and last, so
  for an MLlib-trained model they are equal (up to float32) for a training
  user's history.
* :class:`~recsys.models.BPR` learns its user factors by SGD, so the served score
  is no function of the history. The explained function is BPR's own per-user
  objective with the item factors fixed, maximised for each coalition (the
  fold-in of :mod:`recsys.explain._bpr`: the fixed point of implicit's SGD in
  expectation); Shapley values come from ``shap.KernelExplainer`` as for ALS.
  The empty history scores the item's bias, so ``base_value`` is that bias and
  the weights sum to ``score - base_value``. As for ALS, ``Explanation.score``
  is the fold-in score and ``extra["model_score"]`` the served one; how far
  they agree is :func:`~recsys.explain.foldin_agreement`.
  :class:`FactorSimilarityExplainer` remains a labelled *proxy* (cosine of item
  factors), ``extra["faithful"] = False``.
* :class:`~recsys.models.Popularity` explains itself: method ``"popularity"``, no
  history features. Users without history (cold or unknown users, who get the
  popularity ranking) get the same honest explanation from every explainer.
"""


from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
from joblib import Parallel, delayed
from sklearn import config_context
from sklearn.linear_model import Ridge
from sklearn.metrics import pairwise_distances, r2_score

from recsys._threads import one_blas_thread
from recsys.explain._explanation import (
    Explanation,
    Method,
    _balanced_runs,
    _check_items,
    _check_n_jobs,
    _check_n_samples,
    _global_rng_seeded,
    _kernel_budget,
    _popularity_explanations,
    _user_history,
)
from recsys.explain._scorers import LinearInHistory, ScoresHistory, _masked_histories, history_scorer
from recsys.models import EASE, Popularity, Recommender, check_fitted  # EASE: the doctests

__all__ = ["HistoryLimeExplainer", "HistoryShapExplainer"]

# lime's text explainer: cosine distance x 100, exponential kernel of width 25
_LIME_KERNEL_WIDTH = 25.0


def _explain_users(
    explainer: _HistoryExplainer, users: np.ndarray, ids: np.ndarray
) -> list[list[Explanation]]:
    """``explain`` for each user and its row of ``ids`` (-1 = padding), in a worker or not."""
    return [explainer.explain(int(u), row[row >= 0]) for u, row in zip(users, ids, strict=True)]


class _HistoryExplainer:
    """Shared plumbing: validation, popularity and cold-user fallbacks, batches."""

    model: Recommender
    n_jobs: int | None = None  # worker processes of explain_rankings (set by the costly ones)

    def explain(
        self, user: int, items: Sequence[int] | np.ndarray, *, history: sp.spmatrix | None = None
    ) -> list[Explanation]:
        """One :class:`Explanation` per item, in the order of ``items``.

        ``history`` (one CSR row) replaces the user's training history
        ("what if" explanations); by default the training history is used.
        """
        check_fitted(self.model)
        items = _check_items(items, self.model.n_items_)
        if items.size == 0:  # nothing to explain (e.g. a list cut to nothing)
            return []
        if isinstance(self.model, Popularity):
            return _popularity_explanations(self.model, user, items, "popularity model")
        row = _user_history(self.model, user, history)
        if row is None or row.nnz == 0:
            reason = "unknown user" if row is None else "no history (cold user)"
            return _popularity_explanations(
                self.model, user, items, f"{reason}: popularity ranking"
            )
        row.sort_indices()
        with one_blas_thread():  # small systems: BLAS threads cost more than they save
            return self._explain_history(int(user), row, items, served=history is None)

    def explain_rankings(
        self, users: Sequence[int] | np.ndarray, ids: np.ndarray
    ) -> list[list[Explanation]]:
        """Explain every recommended item; ``ids`` as ``recommend`` returns them (-1 = padding)."""
        ids = np.asarray(ids)
        users = np.asarray(users)
        if ids.ndim != 2 or ids.shape[0] != users.shape[0]:
            raise ValueError(
                f"ids: expected shape ({users.shape[0]}, k) (one row per user), got {ids.shape}"
            )
        workers = _check_n_jobs(self.n_jobs)
        if workers == 1 or users.size < 2:
            return _explain_users(self, users, ids)
        # each user's explanation depends only on the user and the explainer's settings, so
        # worker processes give the serial result; it is put back in the callers' order
        runs = _balanced_runs(self._costs(users), 4 * workers)
        parts = Parallel(n_jobs=workers)(
            delayed(_explain_users)(self, users[run], ids[run]) for run in runs
        )
        out: list[list[Explanation]] = [[] for _ in range(users.size)]
        for run, part in zip(runs, parts, strict=True):
            for position, row in zip(run, part, strict=True):
                out[position] = row
        return out

    def _costs(self, users: np.ndarray) -> np.ndarray:
        """Relative cost of explaining each user: history items x model evaluations.

        Each evaluation scores a perturbed history of up to ``M`` items for a
        history of ``M`` items (unknown users count as one item).
        """
        check_fitted(self.model)
        lengths = np.ones(users.size)
        known = (users >= 0) & (users < self.model.n_users_)
        indptr = self.model.user_items_.indptr
        lengths[known] = np.maximum(indptr[users[known] + 1] - indptr[users[known]], 1)
        return lengths * self._evaluations(lengths)

    def _evaluations(self, lengths: np.ndarray) -> np.ndarray:
        """Model evaluations for histories of ``lengths`` items (one, unless sampled)."""
        return np.ones_like(lengths)

    def _served_scores(self, user: int, items: np.ndarray) -> np.ndarray:
        return np.asarray(self.model._score(np.array([user]))[0, items], dtype=np.float64)

    def _history_explanations(
        self,
        user: int,
        items: np.ndarray,
        *,
        method: Method,
        features: np.ndarray,
        weights: np.ndarray,
        base: np.ndarray,
        scores: np.ndarray,
        extra: dict[str, Any],
        served: bool,
        per_item: Sequence[dict[str, Any]] | None = None,
    ) -> list[Explanation]:
        """One history explanation per item from ``weights[:, k]``, ``base[k]``, ``scores[k]``.

        ``extra`` goes into every explanation's ``extra``, ``per_item[k]`` into item ``k``'s.
        """
        model_scores = self._served_scores(user, items) if served else None
        out = []
        for k, item in enumerate(items):
            info = {"space": "history", **extra, **(per_item[k] if per_item else {})}
            if model_scores is not None:
                info["model_score"] = float(model_scores[k])
            out.append(
                Explanation(
                    user=user,
                    item=item,
                    method=method,
                    features=features,
                    weights=weights[:, k],
                    base_value=float(base[k]),
                    score=float(scores[k]),
                    extra=info,
                )
            )
        return out

    def _explain_history(
        self, user: int, row: sp.csr_matrix, items: np.ndarray, *, served: bool
    ) -> list[Explanation]:
        raise NotImplementedError


# ---------------------------------------------------------------- explainers
class HistoryShapExplainer(_HistoryExplainer):
    """Shapley values of an item's score over the user's history items.

    Exact and closed-form for models linear in the history (EASE, item-kNN,
    :class:`LinearInHistory`). Otherwise (ALS, BPR, any :class:`ScoresHistory`)
    ``shap.KernelExplainer`` computes them on the coalition game with
    ``max(n_samples, 2M + 2)`` coalitions for ``M`` history items: exactly when
    that covers all ``2^M - 2`` proper coalitions (about 10 history items for
    the default budget), else as a seeded estimate; either way the weights sum
    to ``score - base_value`` (``extra["exact"]`` says which).

    Parameters
    ----------
    model : fitted Recommender
    n_samples : int, default 1000
        Budget of coalitions (model evaluations) for non-linear models.
    random_state : int or None, default 0
        Seed of the Kernel SHAP coalition sample (numpy's global random state is
        restored afterwards).
    n_jobs : int or None, default None
        Worker processes of :meth:`explain_rankings`, over users (scikit-learn's
        convention: None is 1, -1 every core). The explanations do not depend on it.

    Examples
    --------
    >>> X = sp.csr_matrix([[1, 1, 0], [0, 1, 1], [1, 1, 1]])
    >>> model = EASE(l2=1.0).fit(X)
    >>> ids, scores = model.recommend([0], k=1)
    >>> (e,) = HistoryShapExplainer(model).explain(0, ids[0])
    >>> e.item, e.features, e.method, e.extra["exact"]
    (2, (0, 1), 'shap', True)
    >>> bool(np.isclose(e.weights.sum(), scores[0, 0]))
    True
    """

    def __init__(
        self,
        model: Recommender,
        *,
        n_samples: int = 1000,
        random_state: int | None = 0,
        n_jobs: int | None = None,
    ) -> None:
        self.model = model
        self.n_samples = n_samples
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _evaluations(self, lengths: np.ndarray) -> np.ndarray:
        return _kernel_budget(float(self.n_samples), lengths)  # (closed form for EASE, kNN: fewer)

    def _explain_history(
        self, user: int, row: sp.csr_matrix, items: np.ndarray, *, served: bool
    ) -> list[Explanation]:
        _check_n_samples(self.n_samples, minimum=1)
        scorer = history_scorer(self.model)
        if isinstance(scorer, LinearInHistory):
            phi = scorer.contributions(row, items)
            base = np.zeros(items.size)
            extra: dict[str, Any] = {"exact": True, "algorithm": "closed form (linear model)"}
        else:
            phi, base, extra = self._shapley(scorer, row, items)
        return self._history_explanations(
            user, items, method="shap", features=row.indices, weights=phi, base=base,
            scores=base + phi.sum(axis=0), extra=extra, served=served,
        )

    def _shapley(
        self, scorer: ScoresHistory, row: sp.csr_matrix, items: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        # KernelExplainer rather than shap's Exact/Permutation explainers: those
        # JIT-compile with numba on their first call in a process (~12 s here)
        import shap  # lazily: importing shap takes seconds

        n_players = row.nnz

        def value(masks: np.ndarray) -> np.ndarray:
            return scorer.score_history(_masked_histories(row, masks), items)

        # a single all-zero background row: a player is absent when its mask is 0
        budget = int(_kernel_budget(int(self.n_samples), n_players))
        # shap formats its weight vectors and results into debug/info messages
        # eagerly (f-strings), logging or not: summarised printing makes that
        # ~20 ms cheaper per call and changes nothing else (numpy 2 keeps print
        # options in a context variable; with an older numpy, another thread
        # printing an array meanwhile would see it summarised too)
        with _global_rng_seeded(self.random_state), np.printoptions(threshold=0, edgeitems=1):
            explainer = shap.KernelExplainer(value, np.zeros((1, n_players)))
            values = explainer.shap_values(
                np.ones((1, n_players)), nsamples=budget, l1_reg=False, silent=True
            )
        phi = np.asarray(values, dtype=np.float64).reshape(n_players, items.size)
        base = np.asarray(explainer.expected_value, dtype=np.float64).reshape(items.size)
        # KernelExplainer enumerates every coalition (exact) when the budget allows
        exact = n_players <= 1 or 2**n_players - 2 <= budget
        extra = {"exact": exact, "algorithm": "shap.KernelExplainer", "nsamples": budget}
        return phi, base, extra


class HistoryLimeExplainer(_HistoryExplainer):
    """LIME over perturbed histories: a weighted ridge surrogate on binary masks.

    The neighbourhood is built as lime's text explainer builds it for words:
    each sample drops a uniform number (1 to M) of random history items; samples
    are weighted by lime's exponential kernel on the cosine distance to the full
    history. The surrogate is the one ``lime.lime_base.LimeBase`` fits on all
    history items (``feature_selection="none"``): a kernel-weighted ridge, here
    fitted for all the items at once (tests compare it with LimeBase's, item by
    item). ``extra["r2"]`` is the surrogate's weighted R² on the neighbourhood
    (in ``[0, 1]``: a ridge fit with intercept never does worse than the
    weighted mean).

    Parameters
    ----------
    model : fitted Recommender (EASE, ItemKNN, ALS, BPR or a :class:`ScoresHistory`)
    n_samples : int, default 500
        Neighbourhood size, the full history included.
    random_state : int or None, default 0
    n_jobs : int or None, default None
        Worker processes of :meth:`explain_rankings`, over users (scikit-learn's
        convention: None is 1, -1 every core). The explanations do not depend on it.

    Examples
    --------
    >>> X = sp.csr_matrix([[1, 1, 0], [0, 1, 1], [1, 1, 1]])
    >>> (e,) = HistoryLimeExplainer(EASE(l2=1.0).fit(X), n_samples=50).explain(0, [2])
    >>> e.method, e.features, 0.0 <= e.extra["r2"] <= 1.0
    ('lime', (0, 1), True)
    """

    def __init__(
        self,
        model: Recommender,
        *,
        n_samples: int = 500,
        random_state: int | None = 0,
        n_jobs: int | None = None,
    ) -> None:
        self.model = model
        self.n_samples = n_samples
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _evaluations(self, lengths: np.ndarray) -> np.ndarray:
        return np.full_like(lengths, float(self.n_samples))

    def _explain_history(
        self, user: int, row: sp.csr_matrix, items: np.ndarray, *, served: bool
    ) -> list[Explanation]:
        _check_n_samples(self.n_samples, minimum=2)
        scorer = history_scorer(self.model)
        rng = np.random.default_rng(self.random_state)
        masks = _lime_masks(rng, row.nnz, int(self.n_samples))
        scores = scorer.score_history(_masked_histories(row, masks), items)
        distances = pairwise_distances(masks, masks[:1], metric="cosine").ravel() * 100
        if not np.isfinite(scores).all():
            raise ValueError(
                f"user {user}: the model scored a perturbed history as non-finite; LIME "
                "needs finite scores"
            )
        # lime's LimeBase.explain_instance_with_data fits one label per call: a ridge
        # (alpha 1, intercept) on the kernel-weighted neighbourhood, its weighted R² and
        # its prediction at the full history. Every item shares the neighbourhood and
        # the weights, so one multi-target fit of that same ridge gives all the items'
        # surrogates at once (equal to LimeBase's item by item; tested). The inputs are
        # checked above: scikit-learn's per-call validation is skipped.
        kernel = _lime_kernel(distances)
        with config_context(assume_finite=True, skip_parameter_validation=True):
            ridge = Ridge(alpha=1.0, fit_intercept=True, random_state=self.random_state)
            ridge.fit(masks, scores, sample_weight=kernel)
            fitted = ridge.predict(masks).reshape(scores.shape)  # 1-D for one item
            r2 = r2_score(scores, fitted, sample_weight=kernel, multioutput="raw_values")
        weights = ridge.coef_.reshape(items.size, row.nnz).T
        intercepts = np.reshape(ridge.intercept_, items.size)
        fits = [
            {"r2": float(r2[k]), "local_prediction": float(fitted[0, k])}
            for k in range(items.size)
        ]
        return self._history_explanations(
            user, items, method="lime", features=row.indices, weights=weights, base=intercepts,
            scores=scores[0], extra={"exact": False, "n_samples": int(self.n_samples)},
            served=served, per_item=fits,
        )


def _lime_kernel(distances: np.ndarray) -> np.ndarray:
    return np.sqrt(np.exp(-(distances**2) / _LIME_KERNEL_WIDTH**2))


def _lime_masks(rng: np.random.Generator, n_players: int, n_samples: int) -> np.ndarray:
    """Row 0 all ones; every other row drops a uniform number (1..M) of random players."""
    n_drop = rng.integers(1, n_players + 1, size=n_samples - 1)
    ranks = np.argsort(rng.random((n_samples - 1, n_players)), axis=1)
    masks = np.ones((n_samples, n_players))
    masks[1:] = ranks >= n_drop[:, None]
    return masks
