"""Explanations of feature-based models (:class:`~recsys.mitigation.TwoStageRanker`).

The two-stage ranker scores each (user, candidate item) pair with a scikit-learn
classifier over ``feature_names_``. Its unconstrained classifier
``classifier_`` is explained in log-odds (``decision_function``):

* SHAP with the fast explainer of the classifier family:
  ``shap.LinearExplainer`` for the ``StandardScaler`` + ``LogisticRegression``
  pipeline (on the standardised features, against a background sample: exact,
  ``phi_j = w_j (z_j - mean z_j)``), ``shap.TreeExplainer`` (path-dependent,
  exact for the trees) for ``HistGradientBoostingClassifier``.
* LIME with ``lime.lime_tabular.LimeTabularExplainer`` in regression mode on the
  same log-odds, so that SHAP and LIME explain the same output.

With a fairness constraint the ranking score is the mitigator's (a randomized
ensemble); these explainers still explain ``classifier_`` and say so in
``extra["ranking_score_differs"]``.

Also here: :func:`protected_reliance` (how much attribution mass sits on
sensitive features and their proxies) and :func:`detect_proxies`.
"""

from __future__ import annotations

import numbers
from collections.abc import Collection, Sequence
from typing import Any

import numpy as np
from scipy.stats import rankdata
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from recsys.errors import NotFittedError
from recsys.explain._history import Explanation
from recsys.mitigation import TwoStageRanker
from recsys.models import check_fitted

__all__ = [
    "FeatureLimeExplainer",
    "FeatureShapExplainer",
    "classifier_shap_values",
    "detect_proxies",
    "pair_features",
    "protected_reliance",
]


def pair_features(
    model: TwoStageRanker, users: Sequence[int] | np.ndarray, *, exclude_seen: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Users, items and features ``[n_pairs, n_features]`` of the users' candidate pairs.

    The candidates and features are those ``model.recommend`` scores (the first
    stage's top ``n_candidates``), built with the ranker's own feature code.

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
    users = np.asarray(users, dtype=np.int64).reshape(-1)
    bad = users[(users < 0) | (users >= model.n_users_)]
    if bad.size:
        raise ValueError(
            f"users: expected indices in [0, {model.n_users_}), got {bad[:5].tolist()}"
        )
    ids, first_scores = model.first_stage_.recommend(
        users, min(model.n_candidates, model.n_items_), exclude_seen=exclude_seen
    )
    # the ranker builds pair features privately; reusing that code keeps the
    # explained features identical to the ones it ranks with
    return model._features(users, ids, first_scores, model._serving_stats)


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


class _FeatureExplainer:
    """Shared plumbing: background sample, candidate pairs, Explanation objects."""

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
        return self

    def _sample_background(self) -> np.ndarray:
        check_fitted(self.model)
        if not isinstance(self.n_background, numbers.Integral) or self.n_background < 1:
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

    def _pairs(
        self, user: int, items: Sequence[int] | np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        if not hasattr(self, "background_"):
            raise NotFittedError(
                f"This {type(self).__name__} is not fitted yet: call fit() before explain()."
            )
        _, candidates, F = pair_features(self.model, [user])
        if items is None:
            return candidates, F
        items = np.asarray(items, dtype=np.int64).reshape(-1)
        missing = items[~np.isin(items, candidates)]
        if missing.size:
            raise ValueError(
                f"items: {missing[:5].tolist()} are not among user {user}'s candidates; "
                "only candidate pairs have features"
            )
        rows = np.array([np.flatnonzero(candidates == i)[0] for i in items], dtype=np.int64)
        return items, F[rows]

    def _extra(self) -> dict[str, Any]:
        return {
            "space": "features",
            "output": "log-odds",
            "explains": "classifier_",
            "ranking_score_differs": self.model.mitigator_ is not None,
        }


class FeatureShapExplainer(_FeatureExplainer):
    """SHAP values of a :class:`TwoStageRanker`'s pair classifier, per (user, item) pair.

    Parameters
    ----------
    model : fitted TwoStageRanker
    n_background : int, default 100
        Background size (pairs) when :meth:`fit` is not given one.
    random_state : int or None, default 0
        Seed of the background sample.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> from recsys.models import Popularity
    >>> rng = np.random.default_rng(0)
    >>> X = sp.csr_matrix((rng.random((40, 12)) < 0.4).astype(np.float32))
    >>> ranker = TwoStageRanker(Popularity(), n_candidates=5).fit(X)
    >>> e = FeatureShapExplainer(ranker).fit().explain(0)[0]
    >>> e.features == tuple(ranker.feature_names_)
    True
    >>> bool(np.isclose(e.base_value + e.weights.sum(), e.score))
    True
    """

    def __init__(
        self, model: TwoStageRanker, *, n_background: int = 100, random_state: int | None = 0
    ) -> None:
        self.model = model
        self.n_background = n_background
        self.random_state = random_state

    def shap_values(self, F: np.ndarray) -> tuple[np.ndarray, float]:
        """SHAP values ``[n, n_features]`` and base value for pair features ``F``."""
        if not hasattr(self, "background_"):
            raise NotFittedError(
                f"This {type(self).__name__} is not fitted yet: call fit() before shap_values()."
            )
        return classifier_shap_values(self.model.classifier_, F, background=self.background_)

    def explain(
        self, user: int, items: Sequence[int] | np.ndarray | None = None
    ) -> list[Explanation]:
        """One explanation per candidate item of ``user`` (or per item of ``items``)."""
        items, F = self._pairs(user, items)
        values, base = self.shap_values(F)
        scores = _decision(self.model.classifier_, F)
        names = tuple(self.model.feature_names_)
        return [
            Explanation(
                user=user,
                item=item,
                method="shap",
                features=names,
                weights=values[k],
                base_value=base,
                score=scores[k],
                extra={**self._extra(), "exact": True},
            )
            for k, item in enumerate(items)
        ]


class FeatureLimeExplainer(_FeatureExplainer):
    """LIME (``LimeTabularExplainer``, regression on the log-odds) per (user, item) pair.

    ``extra["r2"]`` is the surrogate's weighted R² on its neighbourhood.

    Parameters
    ----------
    model : fitted TwoStageRanker
    n_samples : int, default 500
        Neighbourhood size per explanation.
    n_background : int, default 100
        Training sample size (pairs) for lime's statistics when :meth:`fit` is
        not given one.
    random_state : int or None, default 0

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> from recsys.models import Popularity
    >>> rng = np.random.default_rng(0)
    >>> X = sp.csr_matrix((rng.random((40, 12)) < 0.4).astype(np.float32))
    >>> ranker = TwoStageRanker(Popularity(), n_candidates=5).fit(X)
    >>> e = FeatureLimeExplainer(ranker, n_samples=200).fit().explain(0)[0]
    >>> e.method, len(e.weights) == len(ranker.feature_names_)
    ('lime', True)
    """

    def __init__(
        self,
        model: TwoStageRanker,
        *,
        n_samples: int = 500,
        n_background: int = 100,
        random_state: int | None = 0,
    ) -> None:
        self.model = model
        self.n_samples = n_samples
        self.n_background = n_background
        self.random_state = random_state

    def explain(
        self, user: int, items: Sequence[int] | np.ndarray | None = None
    ) -> list[Explanation]:
        """One explanation per candidate item of ``user`` (or per item of ``items``)."""
        from lime.lime_tabular import LimeTabularExplainer  # lazily, like shap

        items, F = self._pairs(user, items)
        names = list(self.model.feature_names_)
        lime = LimeTabularExplainer(
            self.background_,
            mode="regression",
            feature_names=names,
            random_state=self.random_state,
        )
        classifier = self.model.classifier_
        out = []
        for k, item in enumerate(items):
            exp = lime.explain_instance(
                F[k],
                lambda rows: _decision(classifier, rows),
                num_features=len(names),
                num_samples=int(self.n_samples),
            )
            weights = np.zeros(len(names))
            for j, w in exp.local_exp[1]:
                weights[j] = w
            out.append(
                Explanation(
                    user=user,
                    item=item,
                    method="lime",
                    features=tuple(names),
                    weights=weights,
                    base_value=float(exp.intercept[1]),
                    score=float(_decision(classifier, F[k : k + 1])[0]),
                    extra={**self._extra(), "exact": False, "r2": float(exp.score)},
                )
            )
        return out


# ------------------------------------------------------------ fairness checks
def protected_reliance(
    shap_values: np.ndarray,
    feature_names: Sequence[str],
    sensitive_features: Collection[str],
    proxy_features: Collection[str] = (),
) -> float:
    """Share of the absolute SHAP mass on sensitive features and their proxies.

    ``sum |phi[:, protected]| / sum |phi|`` pooled over all rows, in ``[0, 1]``;
    0 when every attribution is 0. Names must match ``feature_names`` exactly
    (for a :class:`TwoStageRanker` the one-hot sensitive features are named
    ``sensitive=<group>``).

    Examples
    --------
    >>> protected_reliance(np.array([[0.3, -0.1], [0.3, 0.3]]), ["gender", "pop"], {"gender"})
    0.6
    """
    values = np.abs(np.asarray(shap_values, dtype=np.float64))
    if values.ndim == 1:
        values = values[None, :]
    names = [str(n) for n in feature_names]
    if values.ndim != 2 or values.shape[1] != len(names):
        raise ValueError(
            f"shap_values: expected shape (n, {len(names)}) (one column per feature name), "
            f"got {np.shape(shap_values)}"
        )
    protected = np.isin(names, [str(n) for n in set(sensitive_features) | set(proxy_features)])
    total = values.sum()
    if total == 0:
        return 0.0
    return float(values[:, protected].sum() / total)


def detect_proxies(
    X_features: np.ndarray,
    sensitive_labels: np.ndarray,
    feature_names: Sequence[str],
    threshold: float = 0.6,
) -> set[str]:
    """Features that on their own predict the sensitive attribute (univariate AUC).

    For each feature and each group ``g``, the ROC AUC of the feature as a score
    for "the row belongs to ``g``", taken direction-free as ``max(AUC, 1 - AUC)``
    (in ``[0.5, 1]``); a feature is a proxy when its best group reaches
    ``threshold``. AUC is used rather than mutual information because it is
    scale-free, needs no binning and its threshold reads the same for every
    feature. It only sees monotone, one-feature relations: combinations of
    features that jointly reveal the attribute are not detected. The sensitive
    features themselves are returned too when they are among the columns.

    Examples
    --------
    >>> X = np.array([[1.0, 0.3], [0.9, 0.1], [0.1, 0.2], [0.0, 0.4]])
    >>> sorted(detect_proxies(X, np.array(["F", "F", "M", "M"]), ["a", "b"], threshold=0.9))
    ['a']
    """
    X = np.asarray(X_features, dtype=np.float64)
    labels = np.asarray(sensitive_labels)
    names = [str(n) for n in feature_names]
    if X.ndim != 2 or X.shape[1] != len(names):
        raise ValueError(
            f"X_features: expected shape (n, {len(names)}) (one column per feature name), "
            f"got {X.shape}"
        )
    if labels.shape != (X.shape[0],):
        raise ValueError(
            f"sensitive_labels: expected one label per row (shape ({X.shape[0]},)), "
            f"got {labels.shape}"
        )
    if not 0.5 <= threshold <= 1.0:
        raise ValueError(f"threshold: expected a number in [0.5, 1], got {threshold!r}")
    groups = np.unique(labels)
    if groups.size < 2:
        raise ValueError(f"sensitive_labels: expected at least two groups, got {groups.tolist()}")
    # rank-sum (Mann-Whitney) form of the AUC, all columns at once; ties get
    # average ranks, as in sklearn's roc_auc_score
    ranks = rankdata(X, axis=0)
    best = np.full(X.shape[1], 0.5)
    for g in groups:
        positive = labels == g
        n_pos, n_neg = int(positive.sum()), int((~positive).sum())
        auc = (ranks[positive].sum(axis=0) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
        best = np.maximum(best, np.maximum(auc, 1.0 - auc))
    return {name for name, score in zip(names, best) if score >= threshold}
