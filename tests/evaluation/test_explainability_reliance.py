"""Protected reliance of history explanations: the SHAP mass on proxy history items."""

from __future__ import annotations

import math

import numpy as np
import pytest

from evaluation import explainability_scores
from recsys.explain import Explanation


def _shap(user: int, features: list[int], weights: list[float]) -> Explanation:
    return Explanation(user=user, item=99, method="shap", features=features, weights=weights,
                       base_value=0.0, score=float(sum(weights)), extra={"space": "history"})


def test_reliance_pools_the_absolute_weights_on_protected_items():
    explanations = [_shap(0, [1, 2, 3], [0.5, -0.25, 0.25]), _shap(1, [2, 4], [1.0, 0.0])]
    scores = explainability_scores(explanations=explanations, protected_features=[2])
    # |-0.25| + |1.0| on item 2, out of 0.5 + 0.25 + 0.25 + 1.0 + 0 = 2.0
    assert scores["explain.protected_reliance"] == pytest.approx(0.625)
    assert explainability_scores(explanations=explanations, protected_features=[])[
        "explain.protected_reliance"] == 0.0
    # not asked for: not measured
    assert math.isnan(explainability_scores(explanations=explanations)["explain.protected_reliance"])


def test_reliance_is_measured_one_way_only():
    e = _shap(0, [1], [1.0])
    with pytest.raises(ValueError, match="protected_features: reliance is measured either on"):
        explainability_scores(explanations=[e], protected_features=[1],
                              feature_shap_values=np.ones((1, 1)), feature_names=["a"])
