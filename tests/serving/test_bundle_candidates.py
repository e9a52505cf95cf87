"""ModelBundle.candidates/recommend with exclusions: removed before the re-ranker sees them."""

from __future__ import annotations

import numpy as np

from recsys.models import Popularity
from recsys.serving import load_bundle
from tests.serving.helpers import HAND_X, engine_for


def test_excluded_items_are_removed_and_the_list_refilled():
    bundle = engine_for(Popularity().fit(HAND_X)).served.bundle
    users = np.array([4, 0])  # u4: no history; u0 has seen a and b
    ids, scores = bundle.recommend(users, 3, exclude=np.array([2, 0, 2]))
    assert ids.tolist() == [[1, 3, 4], [3, 4, -1]]
    assert scores.tolist() == [[3.0, 1.0, 0.0], [1.0, 0.0, -np.inf]]


def test_without_exclusions_recommend_is_unchanged(bundles):
    bundle = load_bundle(bundles["ease_fair"])
    users = np.arange(10)
    candidates, cand_scores = bundle.model.recommend(users, 30)
    expected = bundle.reranker.rerank(candidates, cand_scores, users=users, k=10)
    ids, scores = bundle.recommend(users, 10)
    assert np.array_equal(ids, expected[0]) and np.array_equal(scores, expected[1])


def test_the_reranker_never_sees_an_excluded_item(bundles):
    bundle = load_bundle(bundles["ease_fair"])
    users = np.arange(10)
    first, _ = bundle.candidates(users, 10)
    drop = np.unique(first[:3, :2])  # the head of three users' candidates
    candidates, _ = bundle.candidates(users, 10, exclude=drop)
    assert candidates.shape == (10, 30)
    assert not np.isin(candidates, drop).any()
    ids, _ = bundle.recommend(users, 10, exclude=drop)
    assert not np.isin(ids, drop).any()
    # the list is refilled from the remaining candidates
    assert ((ids >= 0).sum(axis=1) == np.minimum(10, (candidates >= 0).sum(axis=1))).all()
