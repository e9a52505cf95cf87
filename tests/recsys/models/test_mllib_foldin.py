"""ALS user factors re-solved with MLlib's equations (``solver="mllib"``), without Spark.

The Spark fit itself is checked in ``tests/spark/test_spark_foldin.py``; here the
equations are checked against their written-out closed form, and the solver is
followed through ``als_serving_model``, saving, loading and the explainers, with
a stand-in for a fitted ``SparkALS`` whose user factors are MLlib's solution.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from recsys.explain import HistoryShapExplainer, ImplicitAlsExplainer, history_scorer
from recsys.models import ALS, als_serving_model, load_model, save_model
from recsys.models._als_solve import resolve_user_factors
from recsys.serving import load_bundle, save_bundle

N_ITEMS, N_FACTORS = 9, 3
REG, ALPHA = 0.3, 2.5


def _closed_form(
    Y: np.ndarray, r: np.ndarray, *, solver: str, reg: float, alpha: float
) -> np.ndarray:
    """Hu, Koren & Volinsky's ``(Yᵀ C_u Y + λ_u I) x = Yᵀ C_u p_u`` over all items, written out.

    MLlib: ``c = 1 + alpha·|r|`` (1 for absent items), ``p = [r > 0]``,
    ``λ_u = reg · #{r > 0}``. implicit (as fairrec calls it): ``c = alpha·r`` on
    the history, 1 elsewhere, ``λ_u = reg``.
    """
    if solver == "mllib":
        c = 1.0 + alpha * np.abs(r)
        lam = reg * np.count_nonzero(r > 0)
    else:
        c = np.where(r != 0, alpha * r, 1.0)
        lam = reg
    p = (r > 0).astype(np.float64)
    A = Y.T @ np.diag(c) @ Y + lam * np.eye(Y.shape[1])
    return np.linalg.solve(A, Y.T @ (c * p))


@pytest.fixture(scope="module")
def Y() -> np.ndarray:
    return np.random.default_rng(3).normal(size=(N_ITEMS, N_FACTORS))


# ------------------------------------------------------------------ equations
@pytest.mark.parametrize("solver", ["mllib", "implicit"])
def test_resolve_equals_the_written_out_closed_form(Y: np.ndarray, solver: str) -> None:
    histories = np.zeros((4, N_ITEMS))
    histories[0, [0, 3, 4]] = [1.0, 4.0, 2.5]
    histories[1, [1, 2, 5, 6, 8]] = [5.0, 1.0, 1.0, 3.0, 0.5]
    histories[2, [7]] = [2.0]
    histories[3, :] = np.arange(1, N_ITEMS + 1)
    got = resolve_user_factors(Y, sp.csr_matrix(histories), solver=solver, regularization=REG,
                               alpha=ALPHA)
    for k, r in enumerate(histories):
        expected = _closed_form(Y, r, solver=solver, reg=REG, alpha=ALPHA)
        np.testing.assert_allclose(got[k], expected, rtol=0, atol=1e-10)


def test_mllib_counts_only_positive_ratings_and_gives_them_no_preference_otherwise(Y) -> None:
    r = np.zeros(N_ITEMS)
    r[[0, 2, 5]] = [3.0, -2.0, 1.0]  # a negative rating: confidence 1 + alpha·2, preference 0
    got = resolve_user_factors(Y, sp.csr_matrix(r), solver="mllib", regularization=REG,
                               alpha=ALPHA)
    np.testing.assert_allclose(got[0], _closed_form(Y, r, solver="mllib", reg=REG, alpha=ALPHA),
                               rtol=0, atol=1e-10)
    # the negative rating changes the system (it is not dropped)
    dropped = r.copy()
    dropped[2] = 0.0
    assert not np.allclose(got[0], _closed_form(Y, dropped, solver="mllib", reg=REG, alpha=ALPHA))


def test_histories_without_a_positive_rating_resolve_to_zero(Y: np.ndarray) -> None:
    h = sp.csr_matrix(np.array([[0.0] * N_ITEMS, [-1.0] + [0.0] * (N_ITEMS - 1)]))
    for solver in ("mllib", "implicit"):
        got = resolve_user_factors(Y, h, solver=solver, regularization=REG, alpha=ALPHA)
        np.testing.assert_array_equal(got[0], 0.0)
    got = resolve_user_factors(Y, h, solver="mllib", regularization=0.0, alpha=ALPHA)
    np.testing.assert_array_equal(got, 0.0)  # no solve of the (possibly singular) system


def test_the_two_solvers_differ(Y: np.ndarray) -> None:
    h = sp.csr_matrix(np.array([[1.0, 0, 2.0, 0, 0, 1.0, 0, 0, 0]]))
    a, b = (resolve_user_factors(Y, h, solver=s, regularization=REG, alpha=ALPHA)
            for s in ("mllib", "implicit"))
    assert np.abs(a - b).max() > 1e-2


def test_unknown_solver_and_fitting_an_mllib_model_are_refused() -> None:
    X = sp.csr_matrix(np.eye(4, dtype=np.float32))
    with pytest.raises(ValueError, match=r"solver: expected one of \['implicit', 'mllib'\], got 'x'"):
        ALS(solver="x").fit(X)
    with pytest.raises(ValueError, match="solver: ALS.fit trains with implicit"):
        ALS(solver="mllib").fit(X)
    with pytest.raises(ValueError, match="solver: expected one of"):
        resolve_user_factors(np.eye(2), sp.csr_matrix((1, 2)), solver="spark", regularization=1.0,
                             alpha=1.0)


# ------------------------------------------------- a Spark-trained model, stand-in
def _ratings(seed: int, n_users: int = 25) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    dense = (rng.random((n_users, N_ITEMS)) < 0.35) * rng.integers(1, 6, (n_users, N_ITEMS))
    dense[4] = 0  # a cold user
    return sp.csr_matrix(dense.astype(np.float32))


def _fake_spark_als(X: sp.csr_matrix, Y: np.ndarray) -> SimpleNamespace:
    """What als_serving_model reads from a fitted SparkALS; user factors solved as MLlib does."""
    item_factors = Y.astype(np.float32)
    user_factors = resolve_user_factors(item_factors, X, solver="mllib", regularization=REG,
                                        alpha=ALPHA).astype(np.float32)
    return SimpleNamespace(
        # MLlib solved with regParam REG (reg_param_); regularization, the mean user's ridge it was
        # derived from, is not what the serving model must re-solve with
        factors=N_FACTORS, regularization=REG * 7.0, reg_param_=REG, alpha=ALPHA, iterations=5, random_state=0,
        n_users_=X.shape[0], n_items_=X.shape[1],
        factors_=lambda: (user_factors.copy(), item_factors.copy()),
    )


@pytest.fixture(scope="module")
def ratings() -> sp.csr_matrix:
    return _ratings(7)


@pytest.fixture(scope="module")
def served(ratings: sp.csr_matrix, Y: np.ndarray) -> ALS:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the values match: no warning
        return als_serving_model(_fake_spark_als(ratings, Y), ratings)


def test_serving_model_is_marked_mllib_and_scores_resolve_to_the_served_ones(served, ratings):
    assert served.solver == "mllib"
    warm = np.flatnonzero(np.diff(ratings.indptr) > 0)
    items = np.arange(N_ITEMS)
    resolved = history_scorer(served).score_history(ratings[warm], items)
    np.testing.assert_allclose(resolved, served._score(warm), rtol=1e-5, atol=1e-5)


def test_serving_model_warns_when_train_is_not_what_mllib_saw(ratings, Y) -> None:
    binary = ratings.copy()
    binary.data[:] = 1.0
    with pytest.warns(UserWarning, match="not hold the values MLlib was fitted on"):
        als_serving_model(_fake_spark_als(ratings, Y), binary)


def test_solver_survives_save_and_load_and_old_models_load_as_implicit(served, tmp_path: Path):
    save_model(served, tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    assert loaded.solver == "mllib"
    np.testing.assert_array_equal(loaded.user_factors_, served.user_factors_)
    meta_file = tmp_path / "m" / "model.json"
    meta = json.loads(meta_file.read_text())
    del meta["params"]["solver"]  # as written before the parameter existed
    meta_file.write_text(json.dumps(meta))
    assert load_model(tmp_path / "m").solver == "implicit"


def test_bundle_keeps_the_solver_and_explanations_are_faithful(served, ratings, tmp_path):
    ids = np.arange(N_ITEMS)
    save_bundle(tmp_path / "b", name="spark_als", model=served, reranker=None, n_candidates=5,
                user_ids=np.arange(ratings.shape[0]), item_ids=ids,
                items=pd.DataFrame({"item_id": ids, "title": [f"t{i}" for i in ids]}))
    model = load_bundle(tmp_path / "b").model
    assert isinstance(model, ALS) and model.solver == "mllib"
    user = int(np.flatnonzero(np.diff(ratings.indptr) >= 3)[0])
    items = np.flatnonzero(ratings[user].toarray()[0] == 0)[:2]
    served_scores = model._score(np.array([user]))[0, items]
    for explainer in (HistoryShapExplainer(model), ImplicitAlsExplainer(model)):
        for k, e in enumerate(explainer.explain(user, items)):
            assert e.extra.get("faithful", True) and e.extra["exact"]
            assert e.score == pytest.approx(e.base_value + e.weights.sum(), abs=1e-9)
            assert e.score == pytest.approx(e.extra["model_score"], rel=1e-5, abs=1e-6)
            assert e.extra["model_score"] == pytest.approx(served_scores[k])
    (e,) = ImplicitAlsExplainer(model).explain(user, items[:1])
    assert e.extra["algorithm"] == "mllib"


def test_implicit_model_keeps_implicits_equations(ratings: sp.csr_matrix) -> None:
    model = ALS(factors=3, iterations=3, num_threads=1).fit(ratings)
    assert model.solver == "implicit"
    unseen = int(np.flatnonzero(ratings[0].toarray()[0] == 0)[0])
    (e,) = ImplicitAlsExplainer(model).explain(0, [unseen])
    assert e.extra["algorithm"] == "implicit"


def test_the_served_explanation_explains_the_served_score(served, ratings) -> None:
    from tests.serving.helpers import engine_for

    ids = np.arange(N_ITEMS)
    engine = engine_for(served, user_ids=np.arange(ratings.shape[0]), item_ids=ids,
                        items=pd.DataFrame({"item_id": ids}), max_reasons=100)
    user = int(np.flatnonzero(np.diff(ratings.indptr) >= 3)[0])
    result = engine.recommend(str(user), k=3, explain=True)
    assert result.basis == "history"
    for item in result.items:
        expl = item.explanation
        assert (expl.method, expl.faithful, expl.exact) == ("als_explain", True, True)
        assert expl.explained_score == pytest.approx(item.score, rel=1e-5, abs=1e-6)
        assert "Spark MLlib's ALS" in expl.note and "implicit" not in expl.note
