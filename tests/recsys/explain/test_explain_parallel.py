"""n_jobs of the sampling history explainers: worker processes give the serial result."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recsys.explain import HistoryLimeExplainer, HistoryShapExplainer
from recsys.models import ALS, EASE, Recommender


@pytest.fixture(scope="module")
def data() -> sp.csr_matrix:
    rng = np.random.default_rng(3)
    return sp.csr_matrix((rng.random((40, 30)) < 0.3).astype(np.float32))


def _same(a: list, b: list) -> bool:
    flat_a = [e for row in a for e in row]
    flat_b = [e for row in b for e in row]
    return len(flat_a) == len(flat_b) and all(
        x.user == y.user and x.item == y.item and x.features == y.features
        and np.array_equal(x.weights, y.weights) and x.score == y.score and x.extra == y.extra
        for x, y in zip(flat_a, flat_b, strict=True)
    )


@pytest.mark.parametrize(
    ("make", "model_cls"),
    [
        (lambda m, n, s: HistoryShapExplainer(m, n_samples=40, random_state=s, n_jobs=n), ALS),
        (lambda m, n, s: HistoryLimeExplainer(m, n_samples=40, random_state=s, n_jobs=n), EASE),
    ],
    ids=["kernel-shap-als", "lime-ease"],
)
def test_two_workers_give_the_serial_explanations_in_order(data, make, model_cls):
    model = (
        ALS(factors=4, iterations=3, num_threads=1, random_state=0) if model_cls is ALS
        else EASE(l2=2.0)
    ).fit(data)
    users = np.array([5, 0, 17, 3, 9, 30, 12])  # not sorted: the order must be kept
    ids, _ = model.recommend(users, 4)
    serial = make(model, None, 2).explain_rankings(users, ids)
    parallel = make(model, 2, 2).explain_rankings(users, ids)
    assert [row[0].user for row in parallel] == users.tolist()
    assert _same(serial, parallel)
    # the comparison can fail: another seed samples other coalitions, other weights
    assert not _same(serial, make(model, None, 3).explain_rankings(users, ids))


@pytest.mark.parametrize("n_jobs", [0, 1.5, "2", True])
def test_n_jobs_is_checked(data, n_jobs):
    model = EASE(l2=2.0).fit(data)
    with pytest.raises(ValueError, match="n_jobs: expected None, a positive number"):
        HistoryLimeExplainer(model, n_jobs=n_jobs).explain_rankings([0, 1], np.array([[2], [3]]))


class _NanModel(Recommender):
    """Scores every history as nan."""

    def _fit(self, X: sp.csr_matrix) -> None:
        pass

    def score_history(self, history: sp.csr_matrix, items: np.ndarray) -> np.ndarray:
        return np.full((history.shape[0], len(items)), np.nan)

    def _score(self, users: np.ndarray) -> np.ndarray:
        return np.zeros((len(users), self.n_items_))


def test_lime_refuses_non_finite_scores_with_the_user_named(data):
    with pytest.raises(ValueError, match="user 4: the model scored a perturbed history"):
        HistoryLimeExplainer(_NanModel().fit(data), n_samples=20).explain(4, [1])
