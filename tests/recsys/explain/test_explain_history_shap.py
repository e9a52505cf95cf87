"""History SHAP: exact closed form for linear models, shap's KernelExplainer for ALS."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import scipy.sparse as sp

from recsys.explain import (
    HistoryLimeExplainer,
    HistoryShapExplainer,
    ImplicitAlsExplainer,
    LinearInHistory,
    ScoresHistory,
    history_scorer,
)
from recsys.models import ALS, EASE, ItemKNN, Popularity


def _random_matrix(seed: int, n_users: int = 60, n_items: int = 30, density: float = 0.2):
    rng = np.random.default_rng(seed)
    values = rng.integers(1, 5, (n_users, n_items)) * (rng.random((n_users, n_items)) < density)
    values[:, 0] = np.where(values[:, 0] == 0, 1, values[:, 0])  # no empty rows
    return sp.csr_matrix(values.astype(np.float32))


def _brute_force_shapley(value, n_players: int) -> np.ndarray:
    """Shapley values by the definition: weighted marginal contributions over all coalitions."""
    phi = np.zeros(n_players)
    for j in range(n_players):
        others = [p for p in range(n_players) if p != j]
        for size in range(n_players):
            weight = math.factorial(size) * math.factorial(n_players - size - 1) / math.factorial(
                n_players
            )
            for coalition in itertools.combinations(others, size):
                phi[j] += weight * (value(set(coalition) | {j}) - value(set(coalition)))
    return phi


# ----------------------------------------------------------- exact linear path
@pytest.mark.parametrize(
    "model", [EASE(l2=2.0), EASE(l2=2.0, binary=False), ItemKNN(k_neighbours=10)]
)
def test_linear_shapley_values_sum_exactly_to_the_model_score(model):
    X = _random_matrix(0)
    model.fit(X)
    items = np.arange(X.shape[1])
    for user in (0, 7, 33):
        explanations = HistoryShapExplainer(model).explain(user, items)
        served = model._score(np.array([user]))[0]
        for e in explanations:
            assert e.extra["exact"] is True and e.base_value == 0.0
            assert e.features == tuple(X[user].indices.tolist())
            assert abs(e.weights.sum() - e.score) < 1e-9
            assert abs(e.score - served[e.item]) < 1e-6


def test_hand_worked_three_item_example():
    # item-kNN with a hand-set similarity: score(item 2) = 2 * W[0, 2] + 0.5 * W[1, 2]
    model = ItemKNN(k_neighbours=3).fit(sp.csr_matrix(np.eye(3, dtype=np.float32)))
    model.similarity_ = sp.csr_matrix(
        np.array([[0.0, 2.0, 1.0], [0.5, 0.0, 3.0], [1.0, 1.0, 0.0]], dtype=np.float32)
    )
    history = sp.csr_matrix(np.array([[2.0, 0.5, 0.0]]))
    (e,) = HistoryShapExplainer(model).explain(0, [2], history=history)
    # v({}) = 0, v({0}) = 2, v({1}) = 1.5, v({0, 1}) = 3.5:
    # phi_0 = (2 - 0)/2 + (3.5 - 1.5)/2 = 2,  phi_1 = (1.5 - 0)/2 + (3.5 - 2)/2 = 1.5
    assert e.features == (0, 1)
    np.testing.assert_allclose(e.weights, [2.0, 1.5], atol=1e-12)
    assert e.score == pytest.approx(3.5)
    values = {(): 0.0, (0,): 2.0, (1,): 1.5, (0, 1): 3.5}
    brute = _brute_force_shapley(lambda s: values[tuple(sorted(s))], 2)
    np.testing.assert_allclose(e.weights, brute, atol=1e-12)


def test_linear_closed_form_equals_brute_force_shapley_on_ease():
    X = _random_matrix(1, n_users=20, n_items=8, density=0.5)
    model = EASE(l2=1.0, binary=False).fit(X)
    scorer = history_scorer(model)
    assert isinstance(scorer, LinearInHistory)
    user, item = 3, 5
    row = sp.csr_matrix(X[user], dtype=np.float64)
    (e,) = HistoryShapExplainer(model).explain(user, [item])

    def value(coalition):
        keep = np.isin(np.arange(row.nnz), list(coalition))
        masked = sp.csr_matrix((row.data * keep, row.indices, row.indptr), shape=row.shape)
        return float(scorer.score_history(masked, np.array([item]))[0, 0])

    np.testing.assert_allclose(e.weights, _brute_force_shapley(value, row.nnz), atol=1e-9)


# ------------------------------------------------------------------------ ALS
@pytest.fixture(scope="module")
def als() -> tuple[ALS, sp.csr_matrix]:
    X = _random_matrix(2)
    return ALS(factors=8, regularization=0.1, alpha=2.0, iterations=5, num_threads=1).fit(X), X


def test_als_resolve_matches_implicits_recalculated_user(als):
    model, X = als
    scorer = history_scorer(model)
    for user in (0, 5, 17):
        row = X[user]
        expected = model._inner_.recalculate_user(user, row)
        got = scorer.user_factors(row)[0]
        np.testing.assert_allclose(got, expected, atol=1e-4)
        items = np.arange(X.shape[1])
        np.testing.assert_allclose(
            scorer.score_history(row, items)[0], expected @ model.item_factors_.T, atol=1e-4
        )


def test_als_shapley_is_exact_for_small_histories(als):
    model, X = als
    user = int(np.argmin(np.abs(np.diff(X.indptr) - 8)))  # a history of about 8 items
    row = sp.csr_matrix(X[user], dtype=np.float64)
    assert 6 <= row.nnz and 2**row.nnz - 2 <= 1000
    scorer = history_scorer(model)
    items = np.array([1, 4])
    explanations = HistoryShapExplainer(model, n_samples=1000).explain(user, items)
    full = scorer.score_history(row, items)[0]
    # every coalition's value in one batch: bit j of the index = history item j kept
    codes = np.arange(2**row.nnz)
    masks = (codes[:, None] >> np.arange(row.nnz)) & 1
    r, j = np.nonzero(masks)
    histories = sp.csr_matrix(
        (row.data[j], (r, row.indices[j])), shape=(codes.size, row.shape[1])
    )
    table = scorer.score_history(histories, items)
    for k, e in enumerate(explanations):
        assert e.extra["exact"] is True and e.extra["algorithm"] == "shap.KernelExplainer"

        def value(coalition, k=k):
            return table[sum(1 << p for p in coalition), k]

        np.testing.assert_allclose(e.weights, _brute_force_shapley(value, row.nnz), atol=1e-8)
        assert e.base_value == pytest.approx(0.0, abs=1e-12)
        assert e.score == pytest.approx(full[k])
        assert e.extra["model_score"] == pytest.approx(model._score(np.array([user]))[0, items[k]])


def test_als_kernel_estimate_is_additive_seeded_and_leaves_global_rng_alone(als):
    model, X = als
    user = int(np.argmax(np.diff(X.indptr)))
    row = X[user]
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    explainer = HistoryShapExplainer(model, n_samples=50, random_state=0)
    (e,) = explainer.explain(user, [3])
    assert np.array_equal(np.random.get_state()[1], before)
    assert e.extra["exact"] is False and e.extra["nsamples"] == max(50, 2 * row.nnz + 2)
    resolved = history_scorer(model).score_history(row, np.array([3]))[0, 0]
    assert e.base_value + e.weights.sum() == pytest.approx(resolved, abs=1e-9)
    (again,) = HistoryShapExplainer(model, n_samples=50, random_state=0).explain(user, [3])
    np.testing.assert_array_equal(e.weights, again.weights)


def test_implicit_als_explain_decomposes_the_resolved_score(als):
    model, X = als
    user = 4
    items = np.array([2, 9])
    resolved = history_scorer(model).score_history(X[user], items)[0]
    for k, e in enumerate(ImplicitAlsExplainer(model).explain(user, items)):
        assert e.method == "als_explain"
        assert e.features == tuple(X[user].indices.tolist())
        assert e.score == pytest.approx(resolved[k], abs=1e-4)
        assert e.weights.sum() == pytest.approx(e.score, abs=1e-6)


def test_implicit_als_explain_weights_are_implicits_own_split(als):
    """Every item's weights equal the contributions implicit's explain lists for it."""
    model, X = als
    inner = model._inner_
    for user in (1, 4, 7):
        row = X[user]
        items = np.array([0, 2, 9, 11])
        for item, e in zip(items, ImplicitAlsExplainer(model).explain(user, items), strict=True):
            total, top, _ = inner.explain(0, sp.csr_matrix(row, dtype=np.float32), int(item),
                                          N=row.nnz)
            expected = dict(top)
            assert len(expected) == row.nnz
            got = dict(zip(e.features, e.weights, strict=True))
            assert got.keys() == expected.keys()
            np.testing.assert_allclose([got[j] for j in expected], list(expected.values()),
                                       rtol=1e-4, atol=1e-6)
            assert e.score == pytest.approx(total, rel=1e-4, abs=1e-6)


def test_no_items_give_no_explanations(als):
    model, _ = als
    for explainer in (ImplicitAlsExplainer(model), HistoryShapExplainer(model),
                      HistoryLimeExplainer(model, n_samples=20)):
        assert explainer.explain(4, []) == []


# ------------------------------------------------- other models and fallbacks
def test_popularity_explains_itself():
    X = sp.csr_matrix(np.array([[1, 0, 0], [1, 1, 0], [0, 1, 1]], dtype=np.float32))
    (e,) = HistoryShapExplainer(Popularity().fit(X)).explain(0, [1])
    assert e.method == "popularity" and e.features == () and e.score == 2.0
    assert e.extra["reason"] == "popularity model"


def test_users_without_history_get_the_popularity_explanation():
    X = sp.csr_matrix(np.array([[1, 1, 0], [0, 0, 0], [1, 0, 1]], dtype=np.float32))
    model = EASE(l2=1.0, unknown_users="popular").fit(X)
    (cold,) = HistoryShapExplainer(model).explain(1, [0])
    (unknown,) = HistoryShapExplainer(model).explain(99, [0])
    assert cold.method == unknown.method == "popularity"
    assert cold.extra["reason"] == "no history (cold user): popularity ranking"
    assert unknown.extra["reason"] == "unknown user: popularity ranking"


def test_a_model_implementing_the_protocol_is_explained_without_dispatch():
    class Doubling(ItemKNN):
        def score_history(self, history, items):
            return 2.0 * np.asarray((history @ self.similarity_[:, items]).toarray())

    X = _random_matrix(4)
    model = Doubling(k_neighbours=5).fit(X)
    assert isinstance(model, ScoresHistory) and history_scorer(model) is model
    (e,) = HistoryShapExplainer(model, n_samples=10).explain(0, [2])
    assert e.extra["exact"] is False  # not LinearInHistory: shap's estimator
    assert e.weights.sum() == pytest.approx(e.score, abs=1e-9)


def test_explain_rankings_explains_every_recommended_item():
    X = _random_matrix(5)
    model = EASE(l2=5.0).fit(X)
    users = np.array([0, 1, 2])
    ids, _ = model.recommend(users, k=4)
    ids[1, 3] = -1  # padding is skipped
    out = HistoryShapExplainer(model).explain_rankings(users, ids)
    assert [len(row) for row in out] == [4, 3, 4]
    assert [e.item for e in out[0]] == ids[0].tolist()


def test_bad_inputs_are_named():
    X = _random_matrix(6)
    model = EASE(l2=5.0).fit(X)
    explainer = HistoryShapExplainer(model)
    with pytest.raises(ValueError, match=r"items: expected indices in \[0, 30\), got \[30\]"):
        explainer.explain(0, [30])
    with pytest.raises(ValueError, match=r"user: expected an index in \[0, 60\)"):
        explainer.explain(60, [1])
    with pytest.raises(ValueError, match=r"history: expected one row over the 30 training items"):
        explainer.explain(0, [1], history=sp.csr_matrix(np.ones((1, 3))))
    als = ALS(factors=2, iterations=1, num_threads=1).fit(X)
    with pytest.raises(ValueError, match="n_samples: expected a positive integer, got 0"):
        HistoryShapExplainer(als, n_samples=0).explain(0, [1])
