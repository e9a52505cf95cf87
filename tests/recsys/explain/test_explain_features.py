"""Feature explanations of the two-stage ranker; protected reliance and proxy detection."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from recsys.errors import NotFittedError
from recsys.explain import (
    FeatureLimeExplainer,
    FeatureShapExplainer,
    classifier_shap_values,
    detect_proxies,
    pair_features,
    protected_reliance,
)
from recsys.mitigation import TwoStageRanker
from recsys.models import Popularity

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:fairlearn")


def _logistic() -> Pipeline:
    return Pipeline([("scale", StandardScaler()), ("logistic", LogisticRegression())])


def _labelled(seed: int = 0, n: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """Columns a, b (noise) and s (a 0/1 attribute); the label is s."""
    rng = np.random.default_rng(seed)
    s = rng.integers(0, 2, n)
    X = np.column_stack([rng.normal(size=n), rng.normal(size=n), s])
    return X, s


# -------------------------------------------------------------- SHAP plumbing
@pytest.mark.parametrize(
    "classifier",
    [_logistic(), LogisticRegression(), HistGradientBoostingClassifier(random_state=0)],
)
def test_shap_values_add_up_to_the_log_odds(classifier):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(400, 3))
    y = (X[:, 0] + 0.5 * X[:, 1] + rng.normal(scale=0.5, size=400) > 0).astype(int)
    with threadpool_limits(1):  # OpenMP gradient boosting crawls on a busy machine
        classifier.fit(X, y)
    values, base = classifier_shap_values(classifier, X[:20], background=X[:100])
    assert values.shape == (20, 3)
    expected = classifier.decision_function(X[:20])
    np.testing.assert_allclose(values.sum(1) + base, expected, atol=1e-6)


def test_shap_needs_a_background_for_linear_models_and_a_supported_family():
    X, s = _labelled()
    with pytest.raises(ValueError, match="background: required to explain a linear classifier"):
        classifier_shap_values(_logistic().fit(X, s), X[:3])
    forest = RandomForestClassifier(n_estimators=2, random_state=0).fit(X, s)
    with pytest.raises(TypeError, match="got RandomForestClassifier"):
        classifier_shap_values(forest, X[:3], background=X)


# --------------------------------------------------------- protected reliance
def test_protected_reliance_is_high_when_a_sensitive_feature_determines_the_label():
    X, s = _labelled()
    names = ["a", "b", "s"]
    values, _ = classifier_shap_values(_logistic().fit(X, s), X[:300], background=X[:300])
    assert protected_reliance(values, names, {"s"}) > 0.3


def test_protected_reliance_is_low_when_the_sensitive_feature_is_not_given():
    X, _ = _labelled()
    y = (X[:, 0] > 0).astype(int)  # the label no longer depends on s
    without = X[:, :2]
    model = _logistic().fit(without, y)
    values, _ = classifier_shap_values(model, without[:300], background=without)
    assert protected_reliance(values, ["a", "b"], {"s"}) < 0.05
    # given but irrelevant: the model puts (almost) no mass on it
    values, _ = classifier_shap_values(_logistic().fit(X, y), X[:300], background=X)
    assert protected_reliance(values, ["a", "b", "s"], {"s"}) < 0.05


def test_protected_reliance_counts_proxies_and_checks_shapes():
    values = np.array([[1.0, 1.0, 2.0]])
    assert protected_reliance(values, ["gender", "zip", "pop"], {"gender"}) == 0.25
    assert protected_reliance(values, ["gender", "zip", "pop"], {"gender"}, {"zip"}) == 0.5
    assert protected_reliance(np.zeros((2, 3)), ["gender", "zip", "pop"], {"gender"}) == 0.0
    with pytest.raises(ValueError, match=r"shap_values: expected shape \(n, 2\)"):
        protected_reliance(values, ["gender", "zip"], {"gender"})


# ---------------------------------------------------------- proxy detection
def test_detect_proxies_uses_the_direction_free_univariate_auc():
    rng = np.random.default_rng(2)
    labels = np.repeat(np.array(["F", "M"]), 200)
    proxy = (labels == "F") + rng.normal(scale=0.5, size=400)  # a noisy copy
    anti = -proxy  # the same information, reversed
    noise = rng.normal(size=400)
    X = np.column_stack([proxy, anti, noise])
    auc = roc_auc_score(labels == "F", proxy)
    assert auc > 0.8
    found = detect_proxies(X, labels, ["proxy", "anti", "noise"], threshold=0.6)
    assert found == {"proxy", "anti"}
    assert detect_proxies(X, labels, ["proxy", "anti", "noise"], threshold=auc + 1e-9) == set()
    assert detect_proxies(X, labels, ["proxy", "anti", "noise"], threshold=auc - 1e-9) == {
        "proxy",
        "anti",
    }


def test_detect_proxies_checks_its_inputs():
    X = np.zeros((4, 2))
    with pytest.raises(ValueError, match="sensitive_labels: expected at least two groups"):
        detect_proxies(X, np.array(["F"] * 4), ["a", "b"])
    with pytest.raises(ValueError, match=r"threshold: expected a number in \[0.5, 1\], got 0.3"):
        detect_proxies(X, np.array(["F", "F", "M", "M"]), ["a", "b"], threshold=0.3)
    with pytest.raises(ValueError, match=r"X_features: expected shape \(n, 3\)"):
        detect_proxies(X, np.array(["F", "F", "M", "M"]), ["a", "b", "c"])
    with pytest.raises(ValueError, match=r"alpha: expected None \(effect size only\) or a number "
                                         r"in \(0, 1\), got 1.0"):
        detect_proxies(X, np.array(["F", "F", "M", "M"]), ["a", "b"], alpha=1.0)


# --------------------------------------------------------- the two-stage ranker
@pytest.fixture(scope="module")
def ranker() -> TwoStageRanker:
    rng = np.random.default_rng(3)
    X = sp.csr_matrix((rng.random((80, 20)) < 0.35).astype(np.float32))
    group = np.repeat(np.array(["A", "B"]), 40)
    return TwoStageRanker(Popularity(), n_candidates=8, use_sensitive_feature=True).fit(
        X, sensitive=group
    )


def test_feature_shap_explains_each_candidate_pair(ranker):
    explainer = FeatureShapExplainer(ranker, n_background=50).fit()
    explanations = explainer.explain(3)
    _, candidates, F = pair_features(ranker, [3])
    assert [e.item for e in explanations] == candidates.tolist()
    decision = ranker.classifier_.decision_function(F)
    for e, d in zip(explanations, decision):
        assert e.features == tuple(ranker.feature_names_)
        assert "sensitive=A" in e.features
        assert e.extra["space"] == "features" and e.extra["ranking_score_differs"] is False
        assert e.base_value + e.weights.sum() == pytest.approx(d, abs=1e-6)
        assert e.score == pytest.approx(d)
    (one,) = explainer.explain(3, [candidates[2]])
    np.testing.assert_allclose(one.weights, explanations[2].weights)


def test_feature_lime_reports_its_fit(ranker):
    explanations = FeatureLimeExplainer(ranker, n_samples=300).fit().explain(5)
    for e in explanations:
        assert e.method == "lime" and len(e.weights) == len(ranker.feature_names_)
        assert 0.0 <= e.extra["r2"] <= 1.0


def test_feature_explainers_check_fit_and_candidates(ranker):
    with pytest.raises(NotFittedError, match="call fit\\(\\) before explain\\(\\)"):
        FeatureShapExplainer(ranker).explain(0)
    _, candidates, _ = pair_features(ranker, [0])
    outside = int(np.setdiff1d(np.arange(ranker.n_items_), candidates)[0])
    message = rf"items: \[{outside}\] are not among user 0's candidates"
    with pytest.raises(ValueError, match=message):
        FeatureShapExplainer(ranker).fit().explain(0, [outside])
    with pytest.raises(ValueError, match=r"background: expected a non-empty 2-D array with"):
        FeatureShapExplainer(ranker).fit(np.zeros((3, 2)))


def test_users_without_history_get_the_popularity_explanation():
    rng = np.random.default_rng(6)
    dense = (rng.random((50, 15)) < 0.35).astype(np.float32)
    dense[4] = 0  # no training interactions: recommend gives the popularity ranking
    ranker = TwoStageRanker(Popularity(), n_candidates=6).fit(sp.csr_matrix(dense))
    ids, _ = ranker.recommend([4, 5], 3)
    cold, warm = FeatureShapExplainer(ranker, n_background=30).fit().explain_rankings([4, 5], ids)
    assert [e.method for e in cold] == ["popularity"] * 3
    assert [e.item for e in cold] == ids[0].tolist()
    assert cold[0].extra["reason"] == "no history (cold user): popularity ranking"
    assert [e.method for e in warm] == ["shap"] * 3 and [e.item for e in warm] == ids[1].tolist()
    with pytest.raises(ValueError, match=r"ids: expected shape \(2, k\) \(one row per user\)"):
        FeatureShapExplainer(ranker).fit().explain_rankings([4, 5], ids[:1])
