"""Candidate pairs, the explained output and the shared plumbing of feature explainers.

Holds :func:`pair_features` (a two-stage ranker's candidate pairs and their
features), :func:`classifier_shap_values` (the fast SHAP explainer of each
classifier family), the explained log-odds of the model that ranks each pair
(:class:`_Output`, :func:`_mixture_terms`, :func:`_outputs`) and
:class:`_FeatureExplainer`, the explainers' base class (background sample,
pair look-up, cold-user fallbacks). Which output is explained, and why, is
told in :mod:`recsys.explain._features`, with the SHAP and LIME explainers and
the deletion score function.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
from fairlearn.reductions import ExponentiatedGradient
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from recsys.errors import NotFittedError
from recsys.explain._explanation import Explanation, _popularity_explanations
from recsys.mitigation import TwoStageRanker
from recsys.models import check_fitted

__all__ = [
    "classifier_shap_values",
    "pair_features",
]


def pair_features(
    model: TwoStageRanker, users: Sequence[int] | np.ndarray, *, exclude_seen: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Users, items and features ``[n_pairs, n_features]`` of the users' candidate pairs.

    The candidates and features are those ``model.recommend`` scores (the first
    stage's top ``n_candidates``): :meth:`TwoStageRanker.candidate_features`.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> from recsys.models import Popularity
    >>> rng = np.random.default_rng(0)
    >>> X = sp.csr_matrix((rng.random((40, 12)) < 0.4).astype(np.float32))
    >>> ranker = TwoStageRanker(Popularity(), n_candidates=5).fit(X)
    >>> u, i, F = pair_features(ranker, [0, 1])
    >>> F.shape[1] == len(ranker.feature_names_), set(u.tolist())
    (True, {0, 1})
    """
    check_fitted(model, "feature_names_")
    return model.candidate_features(np.asarray(users, dtype=np.int64).reshape(-1),
                                    exclude_seen=exclude_seen)


def _split_linear(classifier: Any) -> tuple[Any, LogisticRegression] | None:
    """(transform, logistic) for a logistic model or a pipeline ending in one."""
    if isinstance(classifier, LogisticRegression):
        return None, classifier
    if isinstance(classifier, Pipeline) and isinstance(classifier[-1], LogisticRegression):
        return classifier[:-1], classifier[-1]
    return None


def _decision(classifier: Any, F: np.ndarray) -> np.ndarray:
    return np.asarray(classifier.decision_function(F), dtype=np.float64).reshape(-1)


def classifier_shap_values(
    classifier: Any, F: np.ndarray, *, background: np.ndarray | None = None
) -> tuple[np.ndarray, float]:
    """SHAP values ``[n, n_features]`` (log-odds) and base value of a fitted binary classifier.

    ``LogisticRegression`` or a ``Pipeline`` ending in one: ``shap.LinearExplainer``
    with an independent masker over ``background`` (required), on the
    pipeline's transformed features (a standardisation maps feature ``j`` to one
    column, so the attributions stay per feature). ``HistGradientBoostingClassifier``:
    ``shap.TreeExplainer`` (path-dependent; ``background`` unused). In both
    cases ``values.sum(1) + base == decision_function(F)``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> F = rng.normal(size=(200, 3))
    >>> clf = LogisticRegression().fit(F, (F[:, 0] > 0).astype(int))
    >>> values, base = classifier_shap_values(clf, F[:5], background=F)
    >>> bool(np.allclose(values.sum(1) + base, clf.decision_function(F[:5])))
    True
    """
    import shap  # lazily: importing shap takes seconds

    F = np.asarray(F, dtype=np.float64)
    linear = _split_linear(classifier)
    if linear is not None:
        if background is None:
            raise ValueError(
                "background: required to explain a linear classifier (SHAP values are "
                "relative to the background mean), got None"
            )
        transform, logistic = linear
        if logistic.coef_.shape[0] != 1:
            raise ValueError(
                f"classifier: expected a binary classifier, got {logistic.coef_.shape[0]} classes"
            )
        bg = np.asarray(background, dtype=np.float64)
        if transform is not None:
            F, bg = transform.transform(F), transform.transform(bg)
        masker = shap.maskers.Independent(bg, max_samples=bg.shape[0])
        explainer = shap.LinearExplainer(logistic, masker)
        values = np.asarray(explainer.shap_values(F), dtype=np.float64)
        return values.reshape(F.shape[0], -1), float(np.ravel(explainer.expected_value)[0])
    if isinstance(classifier, HistGradientBoostingClassifier):
        explainer = shap.TreeExplainer(classifier)
        values = np.asarray(explainer.shap_values(F), dtype=np.float64)
        return values.reshape(F.shape[0], -1), float(np.ravel(explainer.expected_value)[0])
    raise TypeError(
        "classifier: expected LogisticRegression, a Pipeline ending in one, or "
        f"HistGradientBoostingClassifier, got {type(classifier).__name__}"
    )


# ------------------------------------------------------- the explained output
class _Output:
    """``sum_t w_t * log-odds_t(F)`` over (weight, classifier) terms; 0 without terms."""

    def __init__(self, terms: list[tuple[float, Any]], describes: str, differs: bool) -> None:
        self.terms = terms
        self.describes = describes
        self.ranking_score_differs = differs

    def decision(self, F: np.ndarray) -> np.ndarray:
        out = np.zeros(F.shape[0])
        for weight, classifier in self.terms:
            out += weight * _decision(classifier, F)
        return out

    def shap(self, F: np.ndarray, background: np.ndarray) -> tuple[np.ndarray, float]:
        # SHAP values are linear in the model: those of a weighted sum of
        # classifiers are the weighted sum of each classifier's (exactly)
        values, base = np.zeros(F.shape), 0.0
        for weight, classifier in self.terms:
            v, b = classifier_shap_values(classifier, F, background=background)
            values += weight * v
            base += weight * b
        return values, base


def _mixture_terms(mitigator: ExponentiatedGradient) -> list[tuple[float, Any]]:
    """(weight, predictor) of an ExponentiatedGradient result, constant predictors left out.

    ``ExponentiatedGradient`` returns a randomized classifier: predictor ``t`` (a
    hard 0/1 classifier) is drawn with probability ``weights_[t]``, and the
    ranker scores a pair by the expected vote ``sum_t w_t [h_t(x) = 1]``. A vote
    is a step function of the features, which neither SHAP's linear nor its
    tree explainer takes, so the mixture is explained through the
    weight-averaged log-odds ``sum_t w_t f_t(x)`` of the same predictors
    (``h_t(x) = [f_t(x) > 0]``): by linearity its SHAP values are exactly the
    weight-averaged SHAP values of the predictors. This is a stand-in that
    agrees with the expected vote on which predictors push a pair up or down,
    not the ranking score itself. Constant predictors (fairlearn's
    ``DummyClassifier``, fitted when a step's relabelled targets were all equal)
    add the same vote to every pair, have no log-odds and would get zero
    attributions: they are left out.
    """
    return [
        (float(weight), mitigator.predictors_[t])
        for t, weight in mitigator.weights_.items()
        if weight > 0 and not isinstance(mitigator.predictors_[t], DummyClassifier)
    ]


def _outputs(model: TwoStageRanker) -> dict[bool, _Output]:
    """The explained output of unmitigated (False) and mitigated (True) pairs."""
    outputs = {False: _Output([(1.0, model.classifier_)], "classifier_", False)}
    mitigator = model.mitigator_
    if isinstance(mitigator, ExponentiatedGradient):
        terms = _mixture_terms(mitigator)
        outputs[True] = _Output(
            terms, f"mitigator_ (weight-averaged log-odds of {len(terms)} predictors)", True
        )
    elif mitigator is not None:  # GridSearch: one deterministic predictor ranks
        best = mitigator.predictors_[mitigator.best_idx_]
        terms = [] if isinstance(best, DummyClassifier) else [(1.0, best)]
        outputs[True] = _Output(terms, "mitigator_ (best GridSearch predictor)", False)
    return outputs


# ------------------------------------------------------------------ explainers
class _FeatureExplainer:
    """Shared plumbing: background sample, candidate pairs, outputs, fallbacks."""

    model: TwoStageRanker
    n_background: int
    random_state: int | None

    def fit(self, background: np.ndarray | None = None) -> _FeatureExplainer:
        """Set the background pair features (default: a seeded sample of candidate pairs)."""
        check_fitted(self.model, "feature_names_")
        n_features = len(self.model.feature_names_)
        if background is None:
            background = self._sample_background()
        bg = np.asarray(background, dtype=np.float64)
        if bg.ndim != 2 or bg.shape[1] != n_features or bg.shape[0] == 0:
            raise ValueError(
                f"background: expected a non-empty 2-D array with {n_features} columns "
                f"(feature_names_), got shape {bg.shape}"
            )
        self.background_ = bg
        self.outputs_ = _outputs(self.model)
        return self

    def _sample_background(self) -> np.ndarray:
        check_fitted(self.model)
        if (
            isinstance(self.n_background, bool)
            or not isinstance(self.n_background, numbers.Integral)
            or self.n_background < 1
        ):
            raise ValueError(
                f"n_background: expected a positive integer, got {self.n_background!r}"
            )
        rng = np.random.default_rng(self.random_state)
        warm = np.flatnonzero(~self.model.cold_users_)
        users = rng.choice(warm, min(warm.size, int(self.n_background)), replace=False)
        _, _, F = pair_features(self.model, np.sort(users))
        if F.shape[0] > self.n_background:
            F = F[np.sort(rng.choice(F.shape[0], int(self.n_background), replace=False))]
        return F

    def _check_explainer_fitted(self, method: str) -> None:
        if not hasattr(self, "background_"):
            raise NotFittedError(
                f"This {type(self).__name__} is not fitted yet: call fit() before {method}()."
            )

    def output(self, F: np.ndarray, items: np.ndarray) -> np.ndarray:
        """The explained log-odds of pairs with features ``F`` and items ``items``."""
        self._check_explainer_fitted("output")
        F, mitigated = self._check_pairs(F, items)
        out = np.zeros(F.shape[0])
        for flag, output in self.outputs_.items():
            if (rows := mitigated == flag).any():
                out[rows] = output.decision(F[rows])
        return out

    def _check_pairs(self, F: np.ndarray, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        F = np.asarray(F, dtype=np.float64)
        items = np.asarray(items, dtype=np.int64).reshape(-1)
        n_features = len(self.model.feature_names_)
        if F.ndim != 2 or F.shape[1] != n_features:
            raise ValueError(
                f"F: expected a 2-D array with {n_features} columns (feature_names_), "
                f"got shape {F.shape}"
            )
        if items.shape != (F.shape[0],):
            raise ValueError(
                f"items: expected one item per row of F ({F.shape[0]}), got {items.size}"
            )
        return F, self.model.scored_by_mitigator(items)

    def _requested_pairs(
        self, users: np.ndarray, ids: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Users, items and features of the valid pairs ``(users[r], ids[r, c])``, row-major."""
        n_items = self.model.n_items_
        cu, ci, F = pair_features(self.model, users)
        valid = ids >= 0
        ru = np.broadcast_to(users[:, None], ids.shape)[valid]
        ri = ids[valid]
        keys = cu * n_items + ci
        order = np.argsort(keys, kind="stable")
        wanted = ru * n_items + ri
        pos = np.minimum(np.searchsorted(keys[order], wanted), max(keys.size - 1, 0))
        found = keys[order][pos] == wanted if keys.size else np.zeros(wanted.shape, dtype=bool)
        if not found.all():
            user = int(ru[~found][0])
            missing = ri[(ru == user) & ~found]
            raise ValueError(
                f"items: {missing[:5].tolist()} are not among user {user}'s candidates; "
                "only candidate pairs have features"
            )
        return ru, ri, F[order[pos]]

    def explain(
        self, user: int, items: Sequence[int] | np.ndarray | None = None
    ) -> list[Explanation]:
        """One explanation per candidate item of ``user`` (or per item of ``items``)."""
        self._check_explainer_fitted("explain")
        if items is None:
            _, items, _ = pair_features(self.model, [user])
        ids = np.asarray(items, dtype=np.int64).reshape(1, -1)
        return self.explain_rankings(np.array([user]), ids)[0]

    def explain_rankings(
        self, users: Sequence[int] | np.ndarray, ids: np.ndarray
    ) -> list[list[Explanation]]:
        """Explain every listed item; ``ids`` as ``recommend`` returns them (-1 = padding).

        Users without training interactions were given the popularity ranking,
        not a ranking of candidate pairs: their items get the honest
        "popularity" explanation.
        """
        self._check_explainer_fitted("explain_rankings")
        users = np.asarray(users, dtype=np.int64).reshape(-1)
        ids = np.asarray(ids, dtype=np.int64)
        if ids.ndim != 2 or ids.shape[0] != users.size:
            raise ValueError(
                f"ids: expected shape ({users.size}, k) (one row per user), got {ids.shape}"
            )
        warm = self.model.personalised(users)
        out: list[list[Explanation]] = [[] for _ in range(users.size)]
        for r in np.flatnonzero(~warm):
            row = ids[r][ids[r] >= 0]
            out[r] = _popularity_explanations(
                self.model, int(users[r]), row, "no history (cold user): popularity ranking"
            )
        rows = np.flatnonzero(warm)
        if rows.size:
            u, i, F = self._requested_pairs(users[rows], ids[rows])
            explained = self._explain_pairs(u, i, F)
            start = 0
            for r in rows:
                n = int((ids[r] >= 0).sum())
                out[r] = explained[start : start + n]
                start += n
        return out

    def _extra(self, mitigated: bool, values: np.ndarray) -> dict[str, Any]:
        output = self.outputs_[mitigated]
        values = values.copy()
        values.setflags(write=False)
        return {
            "space": "features",
            "output": "log-odds",
            "explains": output.describes,
            "ranking_score_differs": output.ranking_score_differs,
            "mitigated": mitigated,
            "feature_values": values,
        }

    def _explain_pairs(
        self, users: np.ndarray, items: np.ndarray, F: np.ndarray
    ) -> list[Explanation]:
        raise NotImplementedError
