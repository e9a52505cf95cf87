"""Explanations: SHAP and LIME attributions and end-user texts for every recommendation.

* History explanations (:mod:`recsys.explain._history`) for collaborative models:
  which past interactions raised an item's score. :class:`HistoryShapExplainer`
  (exact and closed-form for EASE and item-kNN, shap's estimators for ALS and
  BPR), :class:`HistoryLimeExplainer`, :class:`ImplicitAlsExplainer` (implicit's
  own), :class:`BprRepresenterExplainer` (BPR's fold-in score split exactly over
  the history: the fast path), :class:`FactorSimilarityExplainer` (a labelled
  proxy). BPR is explained through its user factor folded in from the history
  (:mod:`recsys.explain._bpr`);
  :func:`foldin_agreement` says how closely that ranks like the served model.
  Popularity, and users without history, get the honest "popularity" explanation.
* Feature explanations (:mod:`recsys.explain._features`) for the two-stage ranker:
  :class:`FeatureShapExplainer`, :class:`FeatureLimeExplainer` and
  :func:`feature_deletion_score_fn`, through the model that ranks each pair
  (a fairlearn mitigator's mixture as its weight-averaged log-odds).
* Protected reliance (:mod:`recsys.explain._reliance`): :func:`protected_reliance`,
  with proxies found by :func:`detect_proxies` (pair features) and
  :func:`detect_item_proxies` (history items); at the level of decisions
  (:mod:`recsys.explain._counterfactual`), :func:`counterfactual_flip_rate` (how often a user's top-k list changes when
  only her group does, for models that read it: :class:`ReadsSensitive`).
* Texts (:mod:`recsys.explain._text`) that never mention a user attribute.

Optional abilities are protocols: a model that implements :class:`ScoresHistory`
(or :class:`LinearInHistory`) is explained without any change here.
"""

from recsys.explain._bpr import foldin_agreement
from recsys.explain._feature_output import classifier_shap_values, pair_features
from recsys.explain._features import (
    FeatureLimeExplainer,
    FeatureShapExplainer,
    feature_deletion_score_fn,
)
from recsys.explain._factors import (
    BprRepresenterExplainer,
    FactorSimilarityExplainer,
    ImplicitAlsExplainer,
)
from recsys.explain._explanation import Explanation
from recsys.explain._history import (
    HistoryLimeExplainer,
    HistoryShapExplainer,
)
from recsys.explain._scorers import (
    LinearInHistory,
    ScoreFn,
    ScoresHistory,
    deletion_score_fn,
    history_scorer,
)
from recsys.explain._counterfactual import (
    CounterfactualFlips,
    ReadsSensitive,
    counterfactual_flip_rate,
)
from recsys.explain._reliance import (
    detect_item_proxies,
    detect_proxies,
    protected_reliance,
)
from recsys.explain._text import (
    POPULAR_TEXT,
    SIMILAR_TASTES_TEXT,
    explanation_text,
    feature_text,
    history_text,
)

__all__ = [
    "POPULAR_TEXT",
    "SIMILAR_TASTES_TEXT",
    "BprRepresenterExplainer",
    "CounterfactualFlips",
    "Explanation",
    "FactorSimilarityExplainer",
    "FeatureLimeExplainer",
    "FeatureShapExplainer",
    "HistoryLimeExplainer",
    "HistoryShapExplainer",
    "ImplicitAlsExplainer",
    "LinearInHistory",
    "ReadsSensitive",
    "ScoreFn",
    "ScoresHistory",
    "classifier_shap_values",
    "counterfactual_flip_rate",
    "deletion_score_fn",
    "detect_item_proxies",
    "detect_proxies",
    "explanation_text",
    "feature_deletion_score_fn",
    "feature_text",
    "foldin_agreement",
    "history_scorer",
    "history_text",
    "pair_features",
    "protected_reliance",
]
