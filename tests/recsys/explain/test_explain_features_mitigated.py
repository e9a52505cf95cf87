"""Feature explanations of a fairness-constrained two-stage ranker: the model that ranks each pair."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from fairlearn.reductions import ExponentiatedGradient, GridSearch
from sklearn.dummy import DummyClassifier

from recsys.explain import (
    FeatureLimeExplainer,
    FeatureShapExplainer,
    HistoryShapExplainer,
    feature_deletion_score_fn,
)
from recsys.mitigation import TwoStageRanker
from recsys.models import ALS, EASE

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:fairlearn")

N_USERS, N_ITEMS = 120, 40


def _problem() -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """Groups A and B prefer items of their own category (A: 0-19, B: 20-39)."""
    rng = np.random.default_rng(4)
    group = np.repeat(np.array(["A", "B"]), N_USERS // 2)
    category = (np.arange(N_ITEMS) >= N_ITEMS // 2).astype(int)
    own = np.where(group == "A", 0, 1)[:, None] == category[None, :]
    X = sp.csr_matrix((rng.random((N_USERS, N_ITEMS)) < np.where(own, 0.35, 0.05)).astype(np.float32))
    return X, group, category


def _fit(**params: object) -> TwoStageRanker:
    X, group, category = _problem()
    first = ALS(factors=4, iterations=5, num_threads=1, random_state=0)
    return TwoStageRanker(first, n_candidates=12, constraint="demographic_parity", bound=0.01,
                          **params).fit(X, sensitive=group, item_features=np.eye(2)[category],
                                        protected_items=category == 1)


@pytest.fixture(scope="module")
def eg() -> TwoStageRanker:
    return _fit()


@pytest.fixture(scope="module")
def shap_eg(eg) -> FeatureShapExplainer:
    return FeatureShapExplainer(eg, n_background=60).fit()


def _mixture_log_odds(model: TwoStageRanker, F: np.ndarray) -> np.ndarray:
    """sum_t w_t decision_t(F) over the mitigator's non-constant predictors, by hand."""
    mitigator = model.mitigator_
    out = np.zeros(F.shape[0])
    for t, w in mitigator.weights_.items():
        predictor = mitigator.predictors_[t]
        if w > 0 and not isinstance(predictor, DummyClassifier):
            out += w * predictor.decision_function(F)
    return out


def test_mitigated_pairs_are_explained_through_the_weighted_mixture(eg, shap_eg):
    assert isinstance(eg.mitigator_, ExponentiatedGradient)
    assert (eg.mitigator_.weights_ > 0).sum() >= 2  # a genuine mixture on this problem
    users = np.arange(0, N_USERS, 7)
    _, i, F = eg.candidate_features(users)
    mitigated = eg.scored_by_mitigator(i)
    np.testing.assert_array_equal(mitigated, i >= N_ITEMS // 2)
    values, base = shap_eg.shap_values(F, i)
    expected = np.where(mitigated, _mixture_log_odds(eg, F), eg.classifier_.decision_function(F))
    # additivity against the explained output computed independently of the explainer
    np.testing.assert_allclose(values.sum(1) + base, expected, atol=1e-8)
    np.testing.assert_allclose(shap_eg.output(F, i), expected, atol=1e-8)
    # the two kinds of pairs have different base values (different models)
    assert np.ptp(base[mitigated]) == 0 and np.ptp(base[~mitigated]) == 0
    assert base[mitigated][0] != base[~mitigated][0]


def test_explanations_say_which_model_they_explain(eg, shap_eg):
    ids, _ = eg.recommend(np.arange(N_USERS), 6)
    by_kind = {}
    for row in shap_eg.explain_rankings(np.arange(N_USERS), ids):
        for e in row:
            by_kind[e.extra["mitigated"]] = e
    mitigated, plain = by_kind[True], by_kind[False]
    n_terms = sum(
        1 for t, w in eg.mitigator_.weights_.items()
        if w > 0 and not isinstance(eg.mitigator_.predictors_[t], DummyClassifier)
    )
    assert mitigated.extra["explains"] == (
        f"mitigator_ (weight-averaged log-odds of {n_terms} predictors)"
    )
    assert mitigated.extra["ranking_score_differs"] is True  # the ranking is the expected vote
    assert plain.extra["explains"] == "classifier_"
    assert plain.extra["ranking_score_differs"] is False
    for e in (mitigated, plain):
        assert e.base_value + e.weights.sum() == pytest.approx(e.score, abs=1e-8)


def test_grid_search_is_explained_through_its_best_predictor():
    model = _fit(method="grid_search")
    assert isinstance(model.mitigator_, GridSearch)
    best = model.mitigator_.predictors_[model.mitigator_.best_idx_]
    shap = FeatureShapExplainer(model, n_background=60).fit()
    u, i, F = model.candidate_features(np.arange(10))
    values, base = shap.shap_values(F, i)
    mitigated = model.scored_by_mitigator(i)
    expected = np.where(mitigated, best.decision_function(F), model.classifier_.decision_function(F))
    np.testing.assert_allclose(values.sum(1) + base, expected, atol=1e-8)
    (e,) = shap.explain(int(u[mitigated][0]), [int(i[mitigated][0])])
    assert e.extra["explains"] == "mitigator_ (best GridSearch predictor)"
    assert e.extra["ranking_score_differs"] is False  # predict_proba is monotone in log-odds


def test_lime_explains_the_same_output(eg, shap_eg):
    ids, _ = eg.recommend(np.arange(6), 4)
    lime = FeatureLimeExplainer(eg, n_samples=150).fit(shap_eg.background_)
    shap_rows = shap_eg.explain_rankings(np.arange(6), ids)
    lime_rows = lime.explain_rankings(np.arange(6), ids)
    for s_row, l_row in zip(shap_rows, lime_rows):
        for s, lm in zip(s_row, l_row):
            assert (lm.user, lm.item, lm.method) == (s.user, s.item, "lime")
            assert lm.score == pytest.approx(s.score)  # the same log-odds as SHAP explains
            assert lm.extra["mitigated"] == s.extra["mitigated"]
            assert 0.0 <= lm.extra["r2"] <= 1.0


def test_deletion_drops_by_the_shap_values_of_the_removed_features(eg, shap_eg):
    # linear models, interventional removal: deleting a set lowers the output by the
    # sum of its SHAP values exactly, for plain and mixture pairs alike
    ids, _ = eg.recommend(np.arange(12), 3)
    explanations = [e for row in shap_eg.explain_rankings(np.arange(12), ids) for e in row]
    assert {e.extra["mitigated"] for e in explanations} == {True, False}
    fn = feature_deletion_score_fn(shap_eg, explanations)
    for e in explanations:
        removed = [list(e.features[:2]), [e.features[3]], list(e.features)]
        scores = fn(e.user, e.item, [[], *removed])
        assert scores[0] == pytest.approx(e.score)
        for s, r in zip(scores[1:], removed):
            drop = sum(e.weights[e.features.index(f)] for f in r)
            assert scores[0] - s == pytest.approx(drop, abs=1e-8)


def test_deletion_score_fn_checks_its_inputs(eg, shap_eg):
    X, _, _ = _problem()
    history = HistoryShapExplainer(EASE(l2=1.0).fit(X)).explain(0, [5])
    with pytest.raises(ValueError, match="explanations: expected feature explanations"):
        feature_deletion_score_fn(shap_eg, history)
    (e,) = shap_eg.explain(0, [int(eg.candidate_features([0])[1][0])])
    fn = feature_deletion_score_fn(shap_eg, [e])
    with pytest.raises(ValueError, match=r"user, item: \(1, 0\) is not among the explained pairs"):
        fn(1, 0, [[]])
