"""The two-stage ranker's public view of what it ranks: candidate pairs and their features."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recsys.errors import NotFittedError
from recsys.mitigation import TwoStageRanker
from recsys.models import EASE, Popularity

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:fairlearn")


@pytest.fixture(scope="module")
def data() -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    X = sp.csr_matrix((rng.random((60, 24)) < 0.3).astype(np.float32))
    group = np.where(np.arange(60) % 3 == 0, "F", "M")
    item_features = np.eye(3)[np.arange(24) % 3]
    return X, group, item_features


@pytest.fixture(scope="module")
def ranker(data) -> TwoStageRanker:
    X, group, item_features = data
    return TwoStageRanker(EASE(l2=5.0), n_candidates=6, use_sensitive_feature=True).fit(
        X, sensitive=group, item_features=item_features
    )


def test_candidate_features_are_the_pairs_recommend_ranks(ranker, data):
    X, group, _ = data
    users = np.array([3, 0, 11])
    u, i, F = ranker.candidate_features(users)
    ids, _ = ranker.first_stage_.recommend(users, 6)
    # users in the given order, each user's candidates in first-stage order
    np.testing.assert_array_equal(u, np.repeat(users, 6))
    np.testing.assert_array_equal(i, ids.ravel())
    assert F.shape == (18, len(ranker.feature_names_))
    columns = {name: F[:, j] for j, name in enumerate(ranker.feature_names_)}
    # features worked out from the training matrix, column by column
    counts = np.diff(X.indptr)
    np.testing.assert_allclose(columns["first_stage_log_rank"], np.log1p(np.tile(np.arange(6), 3)))
    np.testing.assert_allclose(columns["user_log_activity"], np.log1p(counts[u]))
    popularity = np.bincount(X.indices, minlength=24)
    np.testing.assert_allclose(columns["item_log_popularity"], np.log1p(popularity[i]))
    np.testing.assert_array_equal(columns["sensitive=F"], group[u] == "F")
    np.testing.assert_array_equal(columns["item_feature_1"], i % 3 == 1)
    # and recommend ranks exactly these pairs: its lists are drawn from them
    recs, _ = ranker.recommend(users, 6)
    for r, user in enumerate(users):
        assert set(recs[r][recs[r] >= 0]) == set(i[u == user])


def test_scored_by_mitigator_without_a_constraint_is_all_false(ranker):
    assert ranker.scored_by_mitigator(np.arange(24)).tolist() == [False] * 24


def test_candidate_features_checks_users(ranker):
    with pytest.raises(ValueError, match=r"users: expected indices in \[0, 60\), got \[60, -1\]"):
        ranker.candidate_features([60, -1])
    with pytest.raises(ValueError, match="users: expected a 1-D array of integer user indices"):
        ranker.candidate_features(np.array([[0, 1]]))
    with pytest.raises(NotFittedError, match="call fit"):
        TwoStageRanker(Popularity()).candidate_features([0])
