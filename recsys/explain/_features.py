"""Explanations of feature-based models (:class:`~recsys.mitigation.TwoStageRanker`).

The two-stage ranker scores each (user, candidate item) pair with a scikit-learn
classifier over ``feature_names_``. Each pair is explained through the model
that ranks it, in log-odds (``decision_function``):

* pairs ranked by ``classifier_`` (all of them without a constraint): its
  log-odds, a monotone transform of the ranking probability;
* pairs ranked by a ``GridSearch`` mitigator: its best predictor's log-odds
  (again monotone in the ranking score);
* pairs ranked by an ``ExponentiatedGradient`` mitigator, a randomized mixture
  of hard classifiers: the weight-averaged log-odds of its predictors, see
  :func:`~recsys.explain._feature_output._mixture_terms`. The ranking score is
  the mixture's expected vote, a step function no fast SHAP explainer takes;
  the explained output is its smooth stand-in and
  ``extra["ranking_score_differs"]`` says so.

On that output:

* SHAP with the fast explainer of the classifier family:
  ``shap.LinearExplainer`` for the ``StandardScaler`` + ``LogisticRegression``
  pipeline (on the standardised features, against a background sample: exact,
  ``phi_j = w_j (z_j - mean z_j)``), ``shap.TreeExplainer`` (path-dependent,
  exact for the trees) for ``HistGradientBoostingClassifier``.
* LIME with ``lime.lime_tabular.LimeTabularExplainer`` in regression mode on the
  same log-odds, so that SHAP and LIME explain the same output.
* :func:`feature_deletion_score_fn` for the deletion test: a removed feature
  takes the background's values (the interventional removal linear SHAP values
  are defined by), the output averaged over the background rows.

The candidate pairs, the explained output and the explainers' shared plumbing
(background sample, pair look-up, fallbacks) are in
:mod:`recsys.explain._feature_output`; this module holds the SHAP and LIME
explainers and the deletion score function.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np

from recsys.explain._feature_output import _FeatureExplainer
from recsys.explain._explanation import Explanation
from recsys.explain._scorers import ScoreFn
from recsys.mitigation import TwoStageRanker

__all__ = [
    "FeatureLimeExplainer",
    "FeatureShapExplainer",
    "feature_deletion_score_fn",
]


class FeatureShapExplainer(_FeatureExplainer):
    """SHAP values of a :class:`TwoStageRanker`'s ranking model, per (user, item) pair.

    Each pair is explained through the model that ranks it (see the module
    docstring); ``extra["explains"]`` names it, ``extra["feature_values"]``
    holds the pair's features and ``extra["exact"]`` is True (the fast
    explainers are exact for their model family).

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

    def shap_values(self, F: np.ndarray, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """SHAP values ``[n, n_features]`` and base values ``[n]`` of pairs ``(F, items)``.

        ``values.sum(1) + base == output(F, items)``.
        """
        self._check_explainer_fitted("shap_values")
        F, mitigated = self._check_pairs(F, items)
        values, base = np.zeros(F.shape), np.zeros(F.shape[0])
        for flag, output in self.outputs_.items():
            if (rows := mitigated == flag).any():
                values[rows], base[rows] = output.shap(F[rows], self.background_)
        return values, base

    def _explain_pairs(
        self, users: np.ndarray, items: np.ndarray, F: np.ndarray
    ) -> list[Explanation]:
        values, base = self.shap_values(F, items)
        scores = self.output(F, items)
        mitigated = self.model.scored_by_mitigator(items)
        names = tuple(self.model.feature_names_)
        return [
            Explanation(
                user=user,
                item=item,
                method="shap",
                features=names,
                weights=values[k],
                base_value=base[k],
                score=scores[k],
                extra={**self._extra(bool(mitigated[k]), F[k]), "exact": True},
            )
            for k, (user, item) in enumerate(zip(users, items))
        ]


class FeatureLimeExplainer(_FeatureExplainer):
    """LIME (``LimeTabularExplainer``, regression on the explained log-odds) per pair.

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

    def _explain_pairs(
        self, users: np.ndarray, items: np.ndarray, F: np.ndarray
    ) -> list[Explanation]:
        from lime.lime_tabular import LimeTabularExplainer  # lazily, like shap

        if (
            isinstance(self.n_samples, bool)
            or not isinstance(self.n_samples, numbers.Integral)
            or self.n_samples < 2
        ):
            raise ValueError(f"n_samples: expected an integer >= 2, got {self.n_samples!r}")
        names = list(self.model.feature_names_)
        lime = LimeTabularExplainer(
            self.background_,
            mode="regression",
            feature_names=names,
            random_state=self.random_state,
        )
        mitigated = self.model.scored_by_mitigator(items)
        scores = self.output(F, items)
        out = []
        for k, (user, item) in enumerate(zip(users, items)):
            output = self.outputs_[bool(mitigated[k])]
            exp = lime.explain_instance(
                F[k], output.decision, num_features=len(names), num_samples=int(self.n_samples)
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
                    score=scores[k],
                    extra={
                        **self._extra(bool(mitigated[k]), F[k]),
                        "exact": False,
                        "r2": float(exp.score),
                    },
                )
            )
        return out


def feature_deletion_score_fn(
    explainer: _FeatureExplainer, explanations: Sequence[Explanation]
) -> ScoreFn:
    """A ``score_fn(user, item, removed_sets) -> scores`` for deletion fidelity of feature explanations.

    For each set of removed feature names, the pair's explained output with
    those features taking the background's values, averaged over the
    background rows (the interventional removal that linear SHAP values are
    defined by: removing feature ``j`` lowers a linear output by exactly its
    SHAP value). The pairs' features come from the explanations'
    ``extra["feature_values"]``.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> from recsys.models import Popularity
    >>> rng = np.random.default_rng(0)
    >>> X = sp.csr_matrix((rng.random((40, 12)) < 0.4).astype(np.float32))
    >>> shap = FeatureShapExplainer(TwoStageRanker(Popularity(), n_candidates=5).fit(X)).fit()
    >>> e = shap.explain(0)[0]
    >>> fn = feature_deletion_score_fn(shap, [e])
    >>> full, without = fn(0, e.item, [[], ["item_log_popularity"]])
    >>> j = e.features.index("item_log_popularity")
    >>> bool(np.isclose(full - without, e.weights[j]))  # linear: the drop is the SHAP value
    True
    """
    explainer._check_explainer_fitted("feature_deletion_score_fn")
    names = list(explainer.model.feature_names_)
    column = {name: j for j, name in enumerate(names)}
    pairs: dict[tuple[int, int], np.ndarray] = {}
    for e in explanations:
        if e.extra.get("space") != "features" or "feature_values" not in e.extra:
            raise ValueError(
                "explanations: expected feature explanations of this explainer's model "
                f"(extra['feature_values']), got a {e.extra.get('space', 'history')!r} "
                f"explanation of user {e.user}, item {e.item}"
            )
        pairs[(e.user, e.item)] = np.asarray(e.extra["feature_values"], dtype=np.float64)
    background = explainer.background_

    def score_fn(user: int, item: int, removed_sets: Sequence[Sequence[str]]) -> np.ndarray:
        try:
            x = pairs[(int(user), int(item))]
        except KeyError:
            raise ValueError(
                f"user, item: ({user}, {item}) is not among the explained pairs"
            ) from None
        blocks = []
        for removed in removed_sets:
            rows = np.broadcast_to(x, background.shape).copy()
            cols = [column[str(name)] for name in removed]
            rows[:, cols] = background[:, cols]
            blocks.append(rows)
        F = np.vstack(blocks)
        scores = explainer.output(F, np.full(F.shape[0], int(item)))
        return scores.reshape(len(removed_sets), background.shape[0]).mean(axis=1)

    return score_fn
