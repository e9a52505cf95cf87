"""BPR explained over the history: the fold-in of its objective and the representer split."""

from __future__ import annotations

import doctest
import itertools
import math
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.optimize import minimize
from sklearn.exceptions import ConvergenceWarning

import recsys.explain._bpr as bpr_module
import recsys.explain._bpr_solver as solver_module
from evaluation import deletion_fidelity
from recsys.errors import NotFittedError
from recsys.explain import (
    BprRepresenterExplainer,
    HistoryLimeExplainer,
    HistoryShapExplainer,
    ScoresHistory,
    deletion_score_fn,
    foldin_agreement,
    history_scorer,
)
from recsys.explain._bpr import _BprScorer, _masked_spearman, _uniform_negatives
from recsys.models import BPR, EASE

PLANTED, TARGET = 3, 7


def _random_matrix(seed: int, n_users: int = 40, n_items: int = 25, density: float = 0.3):
    rng = np.random.default_rng(seed)
    X = (rng.random((n_users, n_items)) < density).astype(np.float32)
    X[:, 0] = 1.0  # no empty rows
    return sp.csr_matrix(X)


@pytest.fixture(scope="module")
def bpr() -> tuple[BPR, sp.csr_matrix]:
    X = _random_matrix(0)
    model = BPR(factors=6, iterations=60, learning_rate=0.05, num_threads=1, random_state=0)
    return model.fit(X), X


@pytest.fixture(scope="module")
def planted() -> BPR:
    """Hand-set item factors: history item 3 alone points at the target item 7."""
    rng = np.random.default_rng(1)
    X = (rng.random((30, 12)) < 0.4).astype(np.float32)
    X[0] = 0.0
    X[0, [1, 2, PLANTED, 4, 5]] = 1.0
    model = BPR(factors=2, iterations=3, num_threads=1).fit(sp.csr_matrix(X))
    Y = np.zeros((12, 3), dtype=np.float32)
    Y[:, 1] = rng.normal(0.0, 0.3, 12)  # a weak second factor
    Y[:, 2] = rng.normal(0.0, 0.2, 12)  # item biases
    Y[PLANTED, 0] = 2.0
    Y[TARGET, 0] = 1.0
    model.item_factors_ = Y
    return model


def _objective_by_pairs(scorer: _BprScorer, history: np.ndarray):
    """f(u) and its gradient by a plain loop over (positive, negative) pairs."""
    V, b, reg = scorer.factors, scorer.bias, scorer.regularization
    liked = set(history.tolist())
    kept = [(j, c) for j, c in zip(scorer.negatives.items, scorer.negatives.counts, strict=True)
            if j not in liked]
    total = sum(c for _, c in kept)

    def f(u: np.ndarray) -> tuple[float, np.ndarray]:
        value, grad = -0.5 * reg * u @ u, -reg * u
        for i in history:
            for j, c in kept:
                x = u @ (V[i] - V[j]) + b[i] - b[j]
                w = c / total / history.size
                value += w * -np.logaddexp(0.0, -x)
                grad = grad + w * (V[i] - V[j]) / (1.0 + np.exp(x))
        return value, grad

    return f


def _objective(scorer: _BprScorer, rows: sp.csr_matrix):
    """The fold-in objective of every row of ``rows``, batched as the solver batches it."""
    return solver_module._Objective(
        scorer._batch(rows.astype(np.float64), np.arange(rows.shape[0])), scorer.negatives,
        scorer.regularization,
    )


# ------------------------------------------------------------------ optimum
def test_the_solver_reaches_the_maximum_of_the_objective(bpr):
    model, X = bpr
    scorer = history_scorer(model)
    for user in (1, 8, 21):
        history = X[user].indices
        u = scorer.user_factors(X[user])[0]
        f = _objective_by_pairs(scorer, history)
        _, grad = f(u)
        assert np.linalg.norm(grad) <= 1e-6 * max(1.0, scorer.regularization * np.linalg.norm(u))
        # and scipy, on the same objective from another start, lands on the same factor
        ref = minimize(lambda v, f=f: tuple(-t for t in f(v)), np.ones(u.size), jac=True,
                       method="L-BFGS-B", options={"gtol": 1e-12, "ftol": 1e-15, "maxiter": 5000})
        np.testing.assert_allclose(u, ref.x, atol=1e-5)


@pytest.mark.parametrize("scale", [1.0, 300.0])
def test_the_float32_hessian_matches_the_pairwise_sum_even_where_sigma_saturates(bpr, scale):
    """−∇²f by a plain float64 loop over pairs; scale 300 pushes scores past float32's exp."""
    model, X = bpr
    scorer = history_scorer(model)
    history = X[5].indices
    problem = _objective(scorer, X[5:6])
    u = np.random.default_rng(2).normal(size=(1, scorer.factors.shape[1])) * scale
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warning where σ saturates
        hess = problem.hessian(u)[0].astype(np.float64)
    V, b = scorer.factors, scorer.bias
    kept = [(j, c) for j, c in zip(scorer.negatives.items, scorer.negatives.counts, strict=True)
            if j not in set(history.tolist())]
    total = sum(c for _, c in kept)
    ref = scorer.regularization * np.eye(V.shape[1])
    for i in history:
        for j, c in kept:
            x = u[0] @ (V[i] - V[j]) + b[i] - b[j]
            weight = c / total / history.size * math.exp(-abs(x)) / (1 + math.exp(-abs(x))) ** 2
            ref += weight * np.outer(V[i] - V[j], V[i] - V[j])
    assert np.all(np.isfinite(hess))
    np.testing.assert_allclose(hess, ref, rtol=1e-4, atol=1e-6 * np.abs(ref).max())


def test_the_hessian_product_and_the_newton_solve_match_the_formed_hessian(bpr):
    """−∇²f·v without forming −∇²f, and CG's Newton step, against the formed Hessian."""
    model, X = bpr
    scorer = history_scorer(model)
    problem = _objective(scorer, X[3:9])
    rng = np.random.default_rng(4)
    u = rng.normal(size=(6, scorer.factors.shape[1]))
    hess = problem.hessian(u).astype(np.float64)
    grad, _, sig = problem.gradient(u)
    curvature = problem.curvature(sig)
    v = rng.normal(size=u.shape).astype(np.float32)
    np.testing.assert_allclose(
        problem.hessian_product(curvature, v), (hess @ v[:, :, None])[..., 0], rtol=1e-4, atol=1e-5
    )
    # unpreconditioned (identity), to a relative residual of 1e-4: the step solves the system
    step, iterations = solver_module._conjugate_gradient(
        problem, curvature, grad, np.eye(u.shape[1], dtype=np.float32), np.full(6, 1e-4)
    )
    residual = np.linalg.norm((hess @ step[:, :, None])[..., 0] - grad, axis=1)
    assert np.all(residual <= 2e-4 * np.linalg.norm(grad, axis=1))
    assert np.all(iterations >= 1) and np.all(iterations <= u.shape[1])


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 1e-5)])
def test_misranked_pairs_keep_their_relative_precision_when_well_ranked(bpr, dtype, rtol):
    """σ(−x) to relative precision even at x = 30 (where 1 − σ(x) would be 0 in float32)."""
    model, X = bpr
    scorer = history_scorer(model)
    problem = _objective(scorer, X[5:6])
    b = problem.batch
    for scale in (1.0, 5.0):
        u = np.random.default_rng(3).normal(size=(1, scorer.factors.shape[1])) * scale
        x = ((b.factors[0] @ u[0] + b.bias[0])[:, None]
             - (scorer.negatives.factors @ u[0] + scorer.negatives.bias)[None, :])
        ref = np.exp(-np.logaddexp(0.0, x))  # σ(−x) = 1 / (1 + e^x), in float64
        got = problem.misranked(u, dtype).astype(np.float64)[0]
        valid = b.a[0] > 0
        np.testing.assert_allclose(got[valid], ref[valid], rtol=rtol, atol=0)
    assert x[valid].max() > 20  # the second scale reaches well-ranked pairs


def test_many_histories_in_one_call_match_one_at_a_time(bpr):
    model, X = bpr
    scorer = history_scorer(model)
    together = scorer.user_factors(X[:12])
    alone = np.vstack([scorer.user_factors(X[r]) for r in range(12)])
    np.testing.assert_allclose(together, alone, atol=1e-6)


def test_values_are_ignored_interactions_are_binary(bpr):
    model, X = bpr
    scorer = history_scorer(model)
    weighted = X[3].copy()
    weighted.data = np.arange(1, weighted.nnz + 1, dtype=np.float32)
    items = np.arange(X.shape[1])
    np.testing.assert_allclose(
        scorer.score_history(weighted, items), scorer.score_history(X[3], items), atol=1e-12
    )


def test_the_negatives_are_a_uniform_sample_as_the_trainer_draws_them():
    """BPR's trainer draws negatives uniformly over the catalogue, whatever their popularity."""
    items, counts = _uniform_negatives(5, 8, 0)  # no larger than the sample: every item, once
    assert items.tolist() == [0, 1, 2, 3, 4] and counts.tolist() == [1.0] * 5
    items, counts = _uniform_negatives(1000, 100, 7)
    assert items.size == np.unique(items).size == 100 and np.all(np.diff(items) > 0)
    assert counts.tolist() == [1.0] * 100
    assert items.min() >= 0 and items.max() < 1000
    np.testing.assert_array_equal(items, _uniform_negatives(1000, 100, 7)[0])  # seeded
    # uniform: over many seeds each item is drawn about n / N = 10% of the time
    hits = np.zeros(50)
    for seed in range(400):
        hits[_uniform_negatives(50, 5, seed)[0]] += 1
    assert np.all(np.abs(hits / 400 - 0.1) < 0.06)


def test_the_scorer_draws_its_negatives_uniformly_not_by_popularity(bpr):
    model, X = bpr
    scorer = history_scorer(model)
    # 25 items, fewer than the default sample: every item is a negative, with equal weight
    assert scorer.negatives.items.tolist() == list(range(X.shape[1]))
    assert np.all(scorer.negatives.counts == 1.0)


# --------------------------------------------------------------- base value
def test_the_empty_history_scores_the_item_bias(bpr):
    model, X = bpr
    items = np.arange(X.shape[1])
    empty = sp.csr_matrix((2, X.shape[1]))
    scores = history_scorer(model).score_history(empty, items)
    np.testing.assert_array_equal(scores, np.tile(model.item_factors_[:, -1], (2, 1)))


def test_shapley_values_and_the_bias_add_up_to_the_folded_in_score(bpr):
    model, X = bpr
    user = int(np.argmin(np.abs(np.diff(X.indptr) - 6)))  # a history of about 6 items
    row = sp.csr_matrix(X[user], dtype=np.float64)
    items = np.array([2, 11])
    scorer = history_scorer(model)
    explanations = HistoryShapExplainer(model, n_samples=200).explain(user, items)
    full = scorer.score_history(row, items)[0]
    # every coalition's value: bit j of the code = history item j kept
    codes = np.arange(2**row.nnz)
    r, j = np.nonzero((codes[:, None] >> np.arange(row.nnz)) & 1)
    table = scorer.score_history(
        sp.csr_matrix((row.data[j], (r, row.indices[j])), shape=(codes.size, row.shape[1])), items
    )
    n = row.nnz
    for k, e in enumerate(explanations):
        assert e.extra["exact"] is True
        assert e.base_value == pytest.approx(model.item_factors_[items[k], -1], abs=1e-6)
        assert e.score == pytest.approx(full[k], abs=1e-6)
        assert e.base_value + e.weights.sum() == pytest.approx(e.score, abs=1e-9)
        assert e.extra["model_score"] == pytest.approx(model._score(np.array([user]))[0, items[k]])
        brute = np.zeros(n)
        for p in range(n):
            for c in itertools.chain.from_iterable(
                itertools.combinations([q for q in range(n) if q != p], s) for s in range(n)
            ):
                weight = math.factorial(len(c)) * math.factorial(n - len(c) - 1) / math.factorial(n)
                code = sum(1 << q for q in c)
                brute[p] += weight * (table[code | (1 << p), k] - table[code, k])
        np.testing.assert_allclose(e.weights, brute, atol=1e-6)


# ------------------------------------------------------------ planted cause
def test_the_planted_history_item_gets_the_top_attribution(planted):
    (shap,) = HistoryShapExplainer(planted).explain(0, [TARGET])
    (lime,) = HistoryLimeExplainer(planted, n_samples=300).explain(0, [TARGET])
    assert shap.features == lime.features == (1, 2, PLANTED, 4, 5)
    assert shap.top_features(1) == lime.top_features(1) == (PLANTED,)
    assert shap.weights[2] > 1.0 + np.delete(shap.weights, 2).max()  # by a wide margin
    assert shap.base_value == pytest.approx(float(planted.item_factors_[TARGET, -1]), abs=1e-6)


def test_deleting_the_top_attributed_items_lowers_the_score_more_than_random(bpr):
    model, X = bpr
    users = np.arange(10)
    ids, _ = model.recommend(users, k=3)
    explanations = [
        e for row in HistoryShapExplainer(model, n_samples=100).explain_rankings(users, ids)
        for e in row
    ]
    ratio = deletion_fidelity(
        deletion_score_fn(model),
        [e.user for e in explanations],
        [e.item for e in explanations],
        explanations,
        m=2,
    )
    assert ratio > 1.0


# ----------------------------------------------------------------- agreement
def test_foldin_agreement_is_a_rank_correlation_per_user(bpr):
    model, X = bpr
    rho = foldin_agreement(model, np.arange(10))
    assert rho.shape == (10,) and np.all((rho >= -1) & (rho <= 1))
    assert np.nanmean(rho) > 0.5  # the fold-in ranks much like the served model


def test_masked_spearman_matches_scipy():
    from scipy.stats import spearmanr

    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(4, 9)), rng.normal(size=(4, 9))
    y[0, :3] = x[0, :3]
    x[1, 2] = x[1, 5]  # a tie
    keep = rng.random((4, 9)) < 0.7
    keep[3] = False
    keep[3, 0] = True  # one item: undefined
    rho = _masked_spearman(x, y, keep, valid=np.array([True, True, False, True]))
    for r in range(2):
        assert rho[r] == pytest.approx(spearmanr(x[r, keep[r]], y[r, keep[r]])[0], abs=1e-12)
    assert np.isnan(rho[2]) and np.isnan(rho[3])


# ------------------------------------------------- representer (fast path)
def _terms_by_pairs(scorer, history: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Each history item's term of u: (1/reg) Σ_j w_ij σ(−x_ij)(v_i − v_j), by a plain loop."""
    V, b, reg = scorer.factors, scorer.bias, scorer.regularization
    liked = set(history.tolist())
    kept = [(j, c) for j, c in zip(scorer.negatives.items, scorer.negatives.counts, strict=True)
            if j not in liked]
    total = sum(c for _, c in kept)
    terms = np.zeros((history.size, V.shape[1]))
    for p, i in enumerate(history):
        for j, c in kept:
            x = u @ (V[i] - V[j]) + b[i] - b[j]
            terms[p] += c / total / history.size / (1.0 + np.exp(x)) * (V[i] - V[j]) / reg
    return terms


def test_weights_are_each_history_items_term_at_the_maximum(bpr):
    model, X = bpr
    scorer = history_scorer(model)
    items = np.array([0, 4, 17])
    for user in (2, 9):
        history = X[user].indices
        f = _objective_by_pairs(scorer, history)
        # the maximiser found by scipy, independently of the Newton solver
        u = minimize(lambda v, f=f: tuple(-t for t in f(v)), np.zeros(scorer.factors.shape[1]),
                     jac=True, method="L-BFGS-B",
                     options={"gtol": 1e-12, "ftol": 1e-15, "maxiter": 5000}).x
        terms = _terms_by_pairs(scorer, history, u)
        np.testing.assert_allclose(terms.sum(axis=0), u, atol=1e-6)  # the optimality condition
        explanations = BprRepresenterExplainer(model).explain(user, items)
        for k, e in enumerate(explanations):
            assert e.method == "representer" and e.features == tuple(history)
            np.testing.assert_allclose(e.weights, terms @ scorer.factors[items[k]], atol=1e-5)
            assert e.base_value == pytest.approx(float(model.item_factors_[items[k], -1]))
            assert e.score == pytest.approx(u @ scorer.factors[items[k]] + e.base_value, abs=1e-5)


def test_weights_and_the_bias_add_up_to_the_folded_in_score(bpr):
    model, X = bpr
    users = np.arange(12)
    ids, _ = model.recommend(users, k=5)
    explainer = BprRepresenterExplainer(model)
    scorer = history_scorer(model)
    for user, row in zip(users, ids, strict=True):
        folded = scorer.score_history(X[user], row)[0]
        for k, e in enumerate(explainer.explain(int(user), row)):
            assert e.score == pytest.approx(folded[k], abs=1e-12)
            assert e.extra["exact"] is True
            assert e.extra["model_score"] == pytest.approx(model._score(np.array([user]))[0, row[k]])
            # up to the solver's tolerance (relative gradient 1e-6 at the optimum)
            assert e.base_value + e.weights.sum() == pytest.approx(
                e.score, abs=1e-5 * (1.0 + np.abs(e.weights).sum())
            )


def test_the_planted_history_item_gets_the_top_weight(planted):
    (e,) = BprRepresenterExplainer(planted).explain(0, [TARGET])
    assert e.features == (1, 2, PLANTED, 4, 5)
    assert e.top_features(1) == (PLANTED,)
    assert e.weights[2] > 1.0 + np.delete(e.weights, 2).max()
    (shap,) = HistoryShapExplainer(planted).explain(0, [TARGET])
    assert e.score == pytest.approx(shap.score, abs=1e-6)  # one function, two splits of it


def test_deleting_the_top_weighted_items_lowers_the_score_more_than_random(bpr):
    model, _ = bpr
    users = np.arange(10)
    ids, _ = model.recommend(users, k=3)
    explanations = [
        e for row in BprRepresenterExplainer(model).explain_rankings(users, ids) for e in row
    ]
    ratio = deletion_fidelity(
        deletion_score_fn(model), [e.user for e in explanations],
        [e.item for e in explanations], explanations, m=2,
    )
    assert ratio > 1.0


def test_a_refitted_model_is_explained_with_its_new_factors(bpr):
    _, X = bpr
    model = BPR(factors=4, iterations=30, num_threads=1, random_state=0).fit(X)
    explainer = BprRepresenterExplainer(model)
    before = explainer.explain(3, [1, 2])
    model.set_params(random_state=1).fit(X)
    after = explainer.explain(3, [1, 2])
    fresh = BprRepresenterExplainer(model).explain(3, [1, 2])
    for a, f, b in zip(after, fresh, before, strict=True):
        np.testing.assert_array_equal(a.weights, f.weights)
        assert not np.allclose(a.weights, b.weights)


def test_what_if_histories_and_cold_users(bpr):
    model, X = bpr
    history = sp.csr_matrix(([1.0, 1.0], ([0, 0], [3, 8])), shape=(1, X.shape[1]))
    (e,) = BprRepresenterExplainer(model).explain(0, [5], history=history)
    assert e.features == (3, 8) and "model_score" not in e.extra
    assert e.score == pytest.approx(history_scorer(model).score_history(history, [5])[0, 0])
    empty = sp.csr_matrix((1, X.shape[1]))
    (cold,) = BprRepresenterExplainer(model).explain(0, [5], history=empty)
    assert cold.method == "popularity"


def test_unsuitable_models_and_histories_are_named(bpr):
    model, X = bpr
    with pytest.raises(TypeError, match="model: expected a fitted BPR, got EASE"):
        BprRepresenterExplainer(EASE().fit(_random_matrix(1))).explain(0, [1])
    with pytest.raises(ValueError, match="history: expected one row, got 2"):
        history_scorer(model).representer(X[:2], np.array([1]))


# -------------------------------------------------------------------- errors
def test_history_scorer_accepts_bpr(bpr):
    model, _ = bpr
    assert isinstance(history_scorer(model), ScoresHistory)


def test_unfitted_and_unsuitable_models_are_named(bpr):
    model, _ = bpr
    with pytest.raises(NotFittedError, match="This BPR is not fitted yet"):
        history_scorer(BPR())
    with pytest.raises(NotFittedError, match="This BPR is not fitted yet"):
        foldin_agreement(BPR(), np.array([0]))
    with pytest.raises(TypeError, match="model: expected a fitted BPR, got EASE"):
        foldin_agreement(EASE().fit(_random_matrix(1)), np.array([0]))
    with pytest.raises(ValueError, match=r"users: expected indices in \[0, 40\), got \[40\]"):
        foldin_agreement(model, np.array([1, 40]))
    unregularised = BPR(factors=2, iterations=2, regularization=0.0, num_threads=1)
    with pytest.raises(ValueError, match="regularization: the BPR fold-in needs a positive "
                                         "regularization .* got 0.0"):
        history_scorer(unregularised.fit(_random_matrix(2)))


def test_a_history_that_does_not_converge_is_reported(bpr):
    model, X = bpr
    scorer = _BprScorer(model.item_factors_, regularization=model.regularization, max_iter=1)
    with pytest.warns(ConvergenceWarning, match=r"BPR fold-in: \d+ of 3 histories did not "
                                                r"converge in 1 Newton steps"):
        scorer.user_factors(X[:3])
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        history_scorer(model).user_factors(X[:3])


@pytest.mark.parametrize("max_iter", [1, 2, 3, 50])
def test_the_reported_residual_is_float64s_at_the_returned_factor(bpr, max_iter):
    """Whatever the step budget, the float32 phase never reports: the residual is recomputed."""
    model, X = bpr
    scorer = history_scorer(model)
    problem = _objective(scorer, X[:8])
    u0 = np.zeros((8, scorer.factors.shape[1]))
    u, residual = solver_module._newton(problem, u0, tol=1e-6, max_iter=max_iter)
    _, expected, _ = problem.gradient(u, dtype=np.float64)
    np.testing.assert_allclose(residual, expected, rtol=1e-6)  # summation order only
    assert (residual <= 1e-6).all() == (max_iter == 50)


def test_docstring_examples():
    result = doctest.testmod(bpr_module)
    assert result.attempted > 0 and result.failed == 0
