"""In-processing mitigation: the two-stage ranker with a fairlearn reduction."""

from __future__ import annotations

import re

import numpy as np
import pytest
import scipy.sparse as sp
from fairlearn.reductions import ExponentiatedGradient, GridSearch
from threadpoolctl import threadpool_limits

from recsys.errors import DataError
from recsys.mitigation import TwoStageRanker
from recsys.mitigation._two_stage import _hold_out
from recsys.models import ALS, Popularity

# fairlearn's reductions trip pandas deprecation warnings internally
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:fairlearn")

N_USERS, N_ITEMS, K = 200, 60, 5
PROBLEM_SEED = 3


def _two_group_problem(seed: int) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """Users in groups A and B; items in categories 0 (items 0-29) and 1 (30-59).

    Each user likes two 5-item blocks of their group's own category (A: 0, B: 1),
    each item kept with probability 0.8, plus two random items of the other
    category. A model trained on this history rarely shows category-1 items to A.
    """
    rng = np.random.default_rng(seed)
    group = np.repeat(np.array(["A", "B"]), N_USERS // 2)
    category = (np.arange(N_ITEMS) >= N_ITEMS // 2).astype(int)
    half = N_ITEMS // 2
    dense = np.zeros((N_USERS, N_ITEMS), dtype=np.float32)
    for u in range(N_USERS):
        own = 0 if group[u] == "A" else 1
        for block in rng.choice(half // 5, 2, replace=False):
            items = own * half + block * 5 + np.arange(5)
            dense[u, items[rng.random(5) < 0.8]] = 1
        dense[u, (1 - own) * half + rng.choice(half, 2, replace=False)] = 1
    return sp.csr_matrix(dense), group, category


def _als() -> ALS:
    return ALS(factors=4, iterations=5, num_threads=1, random_state=0)


@pytest.fixture(scope="module")
def problem() -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    return _two_group_problem(PROBLEM_SEED)


def _fit(problem: tuple, **params: object) -> TwoStageRanker:
    X, group, category = problem
    return TwoStageRanker(_als(), n_candidates=30, **params).fit(
        X, sensitive=group, item_features=np.eye(2)[category], protected_items=category == 1
    )


@pytest.fixture(scope="module")
def unconstrained(problem: tuple) -> TwoStageRanker:
    return _fit(problem)


@pytest.fixture(scope="module")
def constrained(problem: tuple) -> TwoStageRanker:
    return _fit(problem, constraint="demographic_parity", bound=0.01)


def _protected_rate(model: TwoStageRanker, problem: tuple) -> dict[str, float]:
    """Per group: share of users whose top-K holds a category-1 item."""
    X, group, category = problem
    ids, _ = model.recommend(np.arange(X.shape[0]), K)
    has = ((ids >= 0) & (category[np.maximum(ids, 0)] == 1)).any(axis=1)
    return {g: float(has[group == g].mean()) for g in ("A", "B")}


# ------------------------------------------------------------------ fairness
def test_demographic_parity_shrinks_the_protected_item_gap(
    unconstrained: TwoStageRanker, constrained: TwoStageRanker, problem: tuple
) -> None:
    # measured on this seed: A 0.35 -> 0.66, B 1.00 -> 0.81, gap 0.65 -> 0.15 (-77%);
    # over seeds 0-5 of _two_group_problem the reduction is 48%-99%, with A's rate
    # always rising (never by emptying B's lists)
    before = _protected_rate(unconstrained, problem)
    after = _protected_rate(constrained, problem)
    gap_before = before["B"] - before["A"]
    gap_after = abs(after["B"] - after["A"])
    assert gap_before > 0.5
    assert gap_after <= 0.5 * gap_before
    assert after["A"] >= before["A"] + 0.2  # the disadvantaged group gains ...
    assert after["B"] >= 0.5  # ... rather than everyone losing protected items


def test_constraint_only_touches_protected_pairs(
    unconstrained: TwoStageRanker, constrained: TwoStageRanker
) -> None:
    assert unconstrained.mitigator_ is None
    assert isinstance(constrained.mitigator_, ExponentiatedGradient)
    users = np.arange(20)
    _, items, F = constrained.candidate_features(users)
    score, unconstrained_proba = constrained._pair_scores(F, items)
    protected = items >= N_ITEMS // 2
    np.testing.assert_array_equal(constrained.scored_by_mitigator(items), protected)
    assert not unconstrained.scored_by_mitigator(items).any()
    np.testing.assert_array_equal(score[~protected], unconstrained_proba[~protected])
    np.testing.assert_allclose(
        score[protected], constrained.mitigator_._pmf_predict(F[protected])[:, 1]
    )


# ----------------------------------------------------------------- features
def test_sensitive_attribute_is_not_a_feature_by_default(
    unconstrained: TwoStageRanker, constrained: TwoStageRanker
) -> None:
    expected = [
        "first_stage_score",
        "first_stage_log_rank",
        "item_log_popularity",
        "user_log_activity",
        "user_item_affinity",
        "item_feature_0",
        "item_feature_1",
    ]
    assert unconstrained.feature_names_ == expected
    assert constrained.feature_names_ == expected
    assert unconstrained.classifier_.n_features_in_ == len(expected)


def test_sensitive_attribute_is_a_feature_on_request(problem: tuple) -> None:
    X, group, _ = problem
    user_features = np.column_stack([np.arange(N_USERS) % 3, np.ones(N_USERS)])
    model = TwoStageRanker(
        Popularity(), n_candidates=10, use_sensitive_feature=True, max_pairs=1000
    ).fit(X, sensitive=group, user_features=user_features)
    assert model.feature_names_[-4:] == [
        "user_feature_0",
        "user_feature_1",
        "sensitive=A",
        "sensitive=B",
    ]
    assert model.classifier_.n_features_in_ == len(model.feature_names_) == 8
    assert model.n_training_pairs_ == 1000


# ---------------------------------------------------------------- contract
@pytest.mark.parametrize("fitted", ["unconstrained", "constrained"])
def test_never_recommends_non_candidates(fitted: str, request: pytest.FixtureRequest) -> None:
    model = request.getfixturevalue(fitted)
    users = np.arange(N_USERS)
    ids, scores = model.recommend(users, k=10)
    candidates, _ = model.first_stage_.recommend(users, model.n_candidates)
    assert all(np.isin(row, cand).all() for row, cand in zip(ids, candidates))
    assert np.all(np.diff(scores, axis=1) <= 0)


def test_recommend_contract(problem: tuple) -> None:
    X, group, _ = problem
    X = X.tolil()
    X[7] = 0  # a cold user
    X = X.tocsr()
    model = TwoStageRanker(_als(), n_candidates=8, max_pairs=2000).fit(X, sensitive=group)
    users = np.arange(N_USERS)
    ids, scores = model.recommend(users, k=10)
    assert ids.shape == scores.shape == (N_USERS, 10)
    assert ids.dtype == np.int64 and scores.dtype == np.float32
    warm = np.flatnonzero(np.diff(X.indptr) > 0)
    # at most n_candidates items for warm users; the rest is padding
    assert np.all(ids[warm, 8:] == -1) and np.all(scores[warm, 8:] == -np.inf)
    valid = ids >= 0
    assert X[np.repeat(users, 10)[valid.ravel()], ids[valid]].sum() == 0  # seen excluded
    np.testing.assert_array_equal(model.personalised([7, 8]), [False, True])
    np.testing.assert_array_equal(
        ids[7], np.argsort(-model.item_popularity_, kind="stable")[:10]
    )
    seen_ids, _ = model.recommend(warm[:5], k=8, exclude_seen=False)
    assert X[np.repeat(warm[:5], 8), seen_ids.ravel()].sum() > 0


def test_fit_uses_fresh_clones_of_the_first_stage(problem: tuple) -> None:
    X, _, _ = problem
    first = _als()
    model = TwoStageRanker(first, n_candidates=8, max_pairs=500)
    model.fit(X)
    previous = model.first_stage_
    model.fit(X)
    assert model.first_stage_ is not previous and model.first_stage_ is not first
    assert not hasattr(first, "n_items_")
    assert (model.first_stage_.user_items_ != X).nnz == 0  # serving stage sees all of X


def test_same_seed_same_recommendations(problem: tuple) -> None:
    X, _, _ = problem
    users = np.arange(30)
    a = TwoStageRanker(_als(), n_candidates=8, max_pairs=500).fit(X).recommend(users, k=5)
    b = TwoStageRanker(_als(), n_candidates=8, max_pairs=500).fit(X).recommend(users, k=5)
    np.testing.assert_array_equal(a[0], b[0])


@pytest.mark.parametrize(
    ("params", "mitigator_type"),
    [
        ({"constraint": "equalized_odds"}, ExponentiatedGradient),
        ({"constraint": "true_positive_rate_parity"}, ExponentiatedGradient),
        ({"constraint": "demographic_parity", "method": "grid_search"}, GridSearch),
        ({"classifier": "gbdt"}, type(None)),
        pytest.param(
            {"constraint": "demographic_parity", "classifier": "gbdt"},
            ExponentiatedGradient,
            marks=pytest.mark.slow,  # dozens of gradient-boosting fits: about 15 s
        ),
    ],
)
def test_other_constraints_methods_and_classifiers_fit(
    problem: tuple, params: dict, mitigator_type: type
) -> None:
    X, group, category = problem
    # one OpenMP thread: gradient boosting's threads crawl when the machine is busy
    with threadpool_limits(1, user_api="openmp"):
        model = TwoStageRanker(_als(), n_candidates=10, max_pairs=1500, **params).fit(
            X, sensitive=group, protected_items=category == 1
        )
    assert isinstance(model.mitigator_, mitigator_type)
    ids, scores = model.recommend(np.arange(10), k=5)
    assert ids.shape == (10, 5) and np.all(ids >= 0) and np.all(np.isfinite(scores))


# -------------------------------------------------------------------- hold-out
def test_hold_out_splits_each_user() -> None:
    counts = np.array([0, 1, 2, 5, 10])
    X = sp.csr_matrix((np.arange(20) < counts[:, None]).astype(np.float32))
    train, held = _hold_out(X, 0.2, np.random.default_rng(0))
    assert np.diff(held.indptr).tolist() == [0, 0, 1, 1, 2]  # round(0.2 n), >= 1, <= n - 1
    assert (train + held != X).nnz == 0
    assert train.multiply(held).nnz == 0


# ---------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("params", "error", "message"),
    [
        (
            {"constraint": "equal_opportunity"},
            ValueError,
            (
                "constraint: expected None or one of ['demographic_parity', 'equalized_odds', "
                "'true_positive_rate_parity'], got 'equal_opportunity'"
            ),
        ),
        ({"bound": 0.0}, ValueError, "bound: expected a finite number > 0, got 0.0"),
        ({"bound": -0.1}, ValueError, "bound: expected a finite number > 0, got -0.1"),
        (
            {"classifier": "svm"},
            ValueError,
            "classifier: expected one of ['logistic', 'gbdt'], got 'svm'",
        ),
        (
            {"method": "threshold"},
            ValueError,
            "method: expected one of ['exponentiated_gradient', 'grid_search'], got 'threshold'",
        ),
        (
            {"holdout_fraction": 1.0},
            ValueError,
            "holdout_fraction == 1.0, must be < 1.0.",
        ),
        (
            {"use_sensitive_feature": 1},
            TypeError,
            "use_sensitive_feature: expected a bool, got 1",
        ),
    ],
)
def test_bad_parameters(params: dict, error: type, message: str, problem: tuple) -> None:
    X, group, _ = problem
    with pytest.raises(error, match=f"^{re.escape(message)}$"):
        TwoStageRanker(_als(), **params).fit(X, sensitive=group)


def test_constraint_needs_the_sensitive_attribute(problem: tuple) -> None:
    X, _, _ = problem
    message = (
        "sensitive: required when constraint='demographic_parity'; expected one group label "
        "per user (shape (200,)), got None"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        TwoStageRanker(_als(), constraint="demographic_parity").fit(X)


def test_side_information_shapes_are_checked(problem: tuple) -> None:
    X, group, category = problem
    with pytest.raises(
        ValueError,
        match=r"^sensitive: expected one value per user \(shape \(200,\)\), got shape \(3,\)$",
    ):
        TwoStageRanker(_als()).fit(X, sensitive=group[:3])
    with pytest.raises(
        TypeError, match=r"^protected_items: expected a boolean mask, got dtype int64$"
    ):
        TwoStageRanker(_als()).fit(X, protected_items=category)
    with pytest.raises(
        ValueError,
        match=r"^item_features: expected a 2-D array with one row per item \(60 rows\), "
        r"got shape \(60,\)$",
    ):
        TwoStageRanker(_als()).fit(X, item_features=category)


def test_first_stage_must_be_a_recommender(problem: tuple) -> None:
    with pytest.raises(
        TypeError, match=r"^first_stage: expected an unfitted fairrec Recommender, got str$"
    ):
        TwoStageRanker("als").fit(problem[0])


def test_nothing_to_hold_out_is_a_data_error() -> None:
    X = sp.csr_matrix(np.eye(6, dtype=np.float32))
    with pytest.raises(DataError, match=r"^X: no user has two or more interactions"):
        TwoStageRanker(Popularity(), n_candidates=3).fit(X)
