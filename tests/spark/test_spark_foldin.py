"""A Spark MLlib ALS fit re-solved in-process: MLlib's equations give back its user factors.

MLlib's implicit ALS updates the user factors last in every iteration, so each
training user's factor is the exact solution of MLlib's system for her history
and the final item factors. ``solver="mllib"`` (recsys.models._als_solve)
reproduces it; implicit's equations do not. Through ``als_serving_model`` and a
saved bundle, the explanation of a training user's item explains the served score.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys.data import generate_synthetic
from recsys.data._spark import spark_from_interactions
from recsys.explain import HistoryShapExplainer, ImplicitAlsExplainer
from recsys.models import ALS
from recsys.models._als_solve import resolve_user_factors
from recsys.models._spark_als import SparkALS, als_serving_model
from recsys.serving import load_bundle, save_bundle

REG, ALPHA = 0.1, 2.0


@pytest.fixture(scope="module")
def fit(spark):
    data = generate_synthetic(n_users=40, n_items=30, n_interactions=400,
                              random_state=3).interactions
    model = SparkALS(factors=4, iterations=4, regularization=REG, alpha=ALPHA, random_state=1,
                     num_blocks=2).fit(spark_from_interactions(spark, data))
    return data, model


def _relative_gaps(resolved: np.ndarray, factors: np.ndarray) -> np.ndarray:
    return np.linalg.norm(resolved - factors, axis=1) / np.linalg.norm(factors, axis=1)


def test_mllib_equations_reproduce_mllibs_user_factors_and_implicits_do_not(fit) -> None:
    data, model = fit
    X = data.matrix  # the ratings MLlib was fitted on
    user_factors, item_factors = model.factors_()
    warm = np.flatnonzero(np.diff(X.indptr) > 0)
    assert warm.size > 30
    # the fit passed regParam = regularization / mean entries per user (users with entries)
    assert model.reg_param_ == pytest.approx(REG * warm.size / X.nnz, rel=1e-12)
    gaps = {}
    for solver in ("mllib", "implicit"):
        resolved = resolve_user_factors(item_factors, X[warm], solver=solver,
                                        regularization=model.reg_param_, alpha=ALPHA)
        gaps[solver] = _relative_gaps(resolved, user_factors[warm].astype(np.float64))
    assert gaps["mllib"].max() < 1e-4, gaps["mllib"].max()
    assert np.median(gaps["implicit"]) > 1e-2, np.median(gaps["implicit"])


def test_bundle_keeps_the_solver_and_the_explanation_is_the_served_score(fit, tmp_path: Path):
    data, model = fit
    with warnings.catch_warnings():  # train holds what MLlib saw: the check is silent
        warnings.filterwarnings("error", message="als_serving_model")
        served = als_serving_model(model, data.matrix)
    assert served.solver == "mllib"
    save_bundle(tmp_path / "b", name="spark_als", model=served, reranker=None, n_candidates=10,
                user_ids=data.user_ids, item_ids=data.item_ids,
                items=pd.DataFrame({"item_id": data.item_ids}))
    loaded = load_bundle(tmp_path / "b").model
    assert isinstance(loaded, ALS) and loaded.solver == "mllib"
    lengths = np.diff(data.matrix.indptr)
    user = int(np.flatnonzero((lengths >= 4) & (lengths <= 9))[0])  # exact Kernel SHAP
    ids, scores = loaded.recommend([user], k=3)
    for explainer in (HistoryShapExplainer(loaded), ImplicitAlsExplainer(loaded)):
        for k, e in enumerate(explainer.explain(user, ids[0])):
            assert e.extra.get("faithful", True) and e.extra["exact"]
            assert e.base_value + e.weights.sum() == pytest.approx(e.score, abs=1e-9)
            assert e.extra["model_score"] == pytest.approx(float(scores[0, k]), rel=1e-6)
            assert e.score == pytest.approx(e.extra["model_score"], rel=1e-4, abs=1e-5)


def test_binary_train_for_a_model_fitted_on_ratings_is_flagged(fit) -> None:
    data, model = fit
    with pytest.warns(UserWarning, match="not hold the values MLlib was fitted on"):
        als_serving_model(model, data.binary())
