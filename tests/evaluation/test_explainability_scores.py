"""Explanation quality scores: deletion fidelity, LIME R², stability, agreement, coverage."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given
from hypothesis import strategies as st

from evaluation._explainability import (
    coverage,
    deletion_fidelity,
    explainability_scores,
    lime_r2,
    shap_lime_agreement,
    stability,
)
from recsys.explain import (
    Explanation,
    HistoryLimeExplainer,
    HistoryShapExplainer,
    deletion_score_fn,
)
from recsys.models import EASE

NAMES = {
    "explain.fidelity",
    "explain.lime_r2",
    "explain.stability",
    "explain.shap_lime_agreement",
    "explain.protected_reliance",
    "explain.coverage",
}


@pytest.fixture(scope="module")
def ease() -> EASE:
    rng = np.random.default_rng(0)
    X = sp.csr_matrix((rng.random((120, 60)) < 0.15).astype(np.float32))
    return EASE(l2=5.0).fit(X)


def _top_pairs(model: EASE, users: np.ndarray, k: int = 5):
    ids, _ = model.recommend(users, k=k)
    return [(int(u), int(i)) for u, row in zip(users, ids) for i in row if i >= 0]


# ------------------------------------------------------------------ fidelity
def test_exact_attributions_beat_random_deletions_on_a_linear_model(ease):
    users = np.arange(20)
    explainer = HistoryShapExplainer(ease)
    pairs = _top_pairs(ease, users)
    attributions = [explainer.explain(u, [i])[0] for u, i in pairs]
    fidelity = deletion_fidelity(
        deletion_score_fn(ease), [u for u, _ in pairs], [i for _, i in pairs], attributions, m=3
    )
    assert fidelity > 1.0
    # the same attributions, shuffled within each history, lose their edge
    rng = np.random.default_rng(1)
    shuffled = [(e.features, rng.permutation(e.weights)) for e in attributions]
    worse = deletion_fidelity(
        deletion_score_fn(ease), [u for u, _ in pairs], [i for _, i in pairs], shuffled, m=3
    )
    assert worse < fidelity


def test_hand_worked_fidelity():
    # score = sum of the kept history weights; history {0, 1, 2} weighs (4, 1, 1)
    weights = np.array([4.0, 1.0, 1.0])

    def score_fn(user, item, removed_sets):
        kept = [weights.sum() - weights[np.asarray(r, dtype=int)].sum() for r in removed_sets]
        return np.array(kept)

    # m = 1: the top item drops the score by 4; a random one by 2 on average (4, 1, 1)
    fidelity = deletion_fidelity(score_fn, [0], [5], [([0, 1, 2], weights)], m=1, n_random=3000)
    assert fidelity == pytest.approx(2.0, rel=0.05)


def test_fidelity_is_nan_when_undefined():
    flat = lambda user, item, removed_sets: np.zeros(len(removed_sets))  # noqa: E731
    assert math.isnan(deletion_fidelity(flat, [0], [1], [([0, 1, 2, 3], [1, 2, 3, 4])]))
    # histories of at most m items: deleting the top m or m random items is the same
    assert math.isnan(deletion_fidelity(flat, [0], [1], [([0, 1], [1.0, 2.0])], m=3))
    with pytest.raises(ValueError, match="users, items, attributions: expected one entry per"):
        deletion_fidelity(flat, [0, 1], [1], [([0], [1.0])])
    with pytest.raises(ValueError, match="m: expected a positive integer, got 0"):
        deletion_fidelity(flat, [0], [1], [([0], [1.0])], m=0)


# -------------------------------------------------------- the simple scores
def test_lime_r2_is_the_mean_ignoring_nan():
    assert lime_r2([0.5, 1.0, float("nan")]) == 0.75
    assert math.isnan(lime_r2([]))


def test_stability_by_hand():
    # explanation 1: identical across 3 seeds (1); explanation 2: {1,2},{1,3},{1,2}
    # -> Jaccard 1/3, 1, 1/3 -> mean 5/9
    assert stability([[{1, 2}] * 3, [{1, 2}, {1, 3}, {1, 2}]]) == pytest.approx((1 + 5 / 9) / 2)
    assert stability([[set(), set()]]) == 1.0
    assert math.isnan(stability([[{1}]]))


@given(st.lists(st.lists(st.frozensets(st.integers(0, 6), max_size=4), min_size=2, max_size=4),
                min_size=1, max_size=5))
def test_stability_is_a_share(top_sets):
    assert 0.0 <= stability(top_sets) <= 1.0
    assert stability([[s, s] for s in top_sets[0]]) == 1.0


def test_shap_lime_agreement_by_hand():
    assert shap_lime_agreement([[3, 2, 1]], [[0.3, 0.2, 0.1]]) == pytest.approx(1.0)
    assert shap_lime_agreement([[3, 2, 1], [1, 2, 3]], [[3, 2, 1], [3, 2, 1]]) == pytest.approx(0.0)
    # constant weights or a single feature carry no ranking: skipped
    assert shap_lime_agreement([[1, 1, 1], [3, 2, 1], [5]], [[3, 2, 1], [1, 2, 3], [5]]) == (
        pytest.approx(-1.0)
    )
    assert math.isnan(shap_lime_agreement([[1, 1]], [[1, 2]]))
    with pytest.raises(ValueError, match=r"lime_w: expected weights over the same 3 features"):
        shap_lime_agreement([[1, 2, 3]], [[1, 2]])


def test_coverage_counts_nonzero_weights_and_honest_popularity():
    def e(method, weights):
        return Explanation(user=0, item=1, method=method, features=list(range(len(weights))),
                           weights=weights, base_value=0.0, score=0.0)

    explanations = [e("shap", [0.0, 0.2]), e("shap", [0.0, 0.0]), e("popularity", []),
                    e("lime", [])]
    assert coverage(explanations) == 0.5
    assert math.isnan(coverage([]))


# ------------------------------------------------------------------- bundle
def test_explainability_scores_bundles_every_score(ease):
    users = np.arange(8)
    pairs = _top_pairs(ease, users, k=3)
    shap_exp = [HistoryShapExplainer(ease).explain(u, [i])[0] for u, i in pairs]
    lime_exp = [HistoryLimeExplainer(ease, n_samples=150).explain(u, [i])[0] for u, i in pairs]
    by_seed = [
        [HistoryLimeExplainer(ease, n_samples=150, random_state=s).explain(u, [i])[0]
         for u, i in pairs]
        for s in (0, 1)
    ]
    scores = explainability_scores(
        explanations=shap_exp,
        score_fn=deletion_score_fn(ease),
        lime_explanations=lime_exp,
        explanations_by_seed=by_seed,
        feature_shap_values=np.array([[0.1, 0.3]]),
        feature_names=["sensitive=F", "item_log_popularity"],
        sensitive_features={"sensitive=F"},
    )
    assert set(scores) == NAMES
    assert scores["explain.coverage"] == 1.0
    assert scores["explain.fidelity"] > 1.0
    assert 0.9 < scores["explain.lime_r2"] <= 1.0  # EASE is linear in the history
    assert scores["explain.shap_lime_agreement"] > 0.8
    assert 0.0 <= scores["explain.stability"] <= 1.0
    assert scores["explain.protected_reliance"] == pytest.approx(0.25)


def test_explainability_scores_leaves_unmeasured_scores_nan():
    e = Explanation(user=0, item=1, method="popularity", features=(), weights=[],
                    base_value=0.0, score=3.0, extra={"space": "popularity"})
    scores = explainability_scores(explanations=[e])
    assert set(scores) == NAMES and scores["explain.coverage"] == 1.0
    assert all(math.isnan(v) for k, v in scores.items() if k != "explain.coverage")
    with pytest.raises(ValueError, match="feature_names: required with feature_shap_values"):
        explainability_scores(explanations=[e], feature_shap_values=np.zeros((1, 2)))
