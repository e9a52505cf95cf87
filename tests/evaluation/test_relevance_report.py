"""evaluate_rankings and RelevanceReport: a hand-worked end-to-end case, contract and errors."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from evaluation import RelevanceReport, evaluate_rankings, hit_matrix, ndcg_at_k

LOG2_3 = math.log2(3)

# 3 users x 5 items.
# train: u0 {0, 1}, u1 {0}, u2 {0, 2} -> popularity [3/3, 1/3, 1/3, 0, 0]
TRAIN = sp.csr_matrix(
    (np.ones(5), ([0, 0, 1, 2, 2], [0, 1, 0, 0, 2])), shape=(3, 5)
)
# held out: u0 {2, 3}, u1 nothing (not evaluated), u2 {4}
RELEVANT = sp.csr_matrix((np.ones(3), ([0, 0, 2], [2, 3, 4])), shape=(3, 5))
IDS = np.array([[2, 4, 3], [1, 2, 3], [1, 4, -1]])
USERS = np.array([0, 1, 2])
CATEGORY = np.array([0, 0, 1, 1, 2])


def _report(ids: np.ndarray = IDS, **kw) -> RelevanceReport:
    args = {"users": USERS, "relevant": RELEVANT, "train": TRAIN, **kw}
    return evaluate_rankings(ids, **args)


def test_hand_worked_report():
    report = _report(item_category=CATEGORY)
    assert report.k == 3
    assert report.users.tolist() == [0, 2]
    p = report.per_user
    assert list(p) == [
        "precision", "recall", "ndcg", "map", "mrr", "hit_rate",
        "avg_popularity", "novelty", "diversity",
    ]
    # u0 hits [1, 0, 1] with 2 relevant; u2 hits [0, 1, 0] (padding last) with 1 relevant
    assert p["precision"].tolist() == pytest.approx([2 / 3, 1 / 3])
    assert p["recall"].tolist() == [1.0, 1.0]
    assert p["ndcg"].tolist() == pytest.approx([(1 + 1 / 2) / (1 + 1 / LOG2_3), 1 / LOG2_3])
    assert p["map"].tolist() == pytest.approx([(1 + 2 / 3) / 2, 1 / 2])
    assert p["mrr"].tolist() == [1.0, 0.5]
    assert p["hit_rate"].tolist() == [1.0, 1.0]
    # popularity: u0 items 2, 4, 3 -> (1/3 + 0 + 0) / 3; u2 items 1, 4 -> (1/3 + 0) / 2
    assert p["avg_popularity"].tolist() == pytest.approx([1 / 9, 1 / 6])
    # novelty floors p at half a user, 0.5 / 3 = 1/6:
    # u0 (log2 3 + 2 log2 6) / 3; u2 (log2 3 + log2 6) / 2
    assert p["novelty"].tolist() == pytest.approx(
        [(LOG2_3 + 2 * math.log2(6)) / 3, (LOG2_3 + math.log2(6)) / 2]
    )
    # categories: u0 [1, 2, 1] -> 2 of 3 pairs differ; u2 [0, 2] -> 1 of 1
    assert p["diversity"].tolist() == pytest.approx([2 / 3, 1.0])
    # catalogue over all three lists: items {1, 2, 3, 4} of 5; counts [0, 2, 2, 2, 2]
    # -> Gini (-4*0 - 2*2 + 0*2 + 2*2 + 4*2) / (5 * 8) = 8/40
    assert report.catalog == pytest.approx({"coverage": 0.8, "exposure_gini": 0.2})


def test_summary_names_and_means():
    summary = _report(item_category=CATEGORY).summary()
    assert list(summary) == [
        "precision_at_3", "recall_at_3", "ndcg_at_3", "map_at_3", "mrr_at_3", "hit_rate_at_3",
        "avg_popularity_at_3", "novelty_at_3", "diversity_at_3",
        "coverage_at_3", "exposure_gini_at_3", "n_users_evaluated",
    ]
    assert summary["precision_at_3"] == pytest.approx(0.5)
    assert summary["mrr_at_3"] == 0.75
    assert summary["map_at_3"] == pytest.approx((5 / 6 + 1 / 2) / 2)
    assert summary["n_users_evaluated"] == 2.0
    assert all(isinstance(v, float) for v in summary.values())


def test_diversity_only_with_categories():
    report = _report()
    assert "diversity" not in report.per_user
    assert "diversity_at_3" not in report.summary()


def test_k_truncates_the_lists():
    report = _report(k=2)
    p = report.per_user
    # u0 [2, 4] hits [1, 0], 2 relevant; u2 [1, 4] hits [0, 1], 1 relevant
    assert p["precision"].tolist() == [0.5, 0.5]
    assert p["recall"].tolist() == [0.5, 1.0]
    assert p["ndcg"].tolist() == pytest.approx([1 / (1 + 1 / LOG2_3), 1 / LOG2_3])
    assert p["map"].tolist() == [0.5, 0.5]
    # catalogue: items {1, 2, 4} of 5
    assert report.catalog["coverage"] == pytest.approx(0.6)
    assert "ndcg_at_2" in report.summary()


def test_per_user_frame():
    frame = _report().per_user_frame()
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.columns) == [
        "user", "precision", "recall", "ndcg", "map", "mrr", "hit_rate",
        "avg_popularity", "novelty",
    ]
    assert frame["user"].tolist() == [0, 2]
    assert frame["mrr"].tolist() == [1.0, 0.5]


def test_all_padding_list_is_left_out_of_popularity_means():
    ids = np.array([[2, 4, 3], [1, 2, 3], [-1, -1, -1]])
    report = _report(ids=ids)
    assert math.isnan(report.per_user["avg_popularity"][1])
    assert report.per_user["precision"][1] == 0.0
    assert report.summary()["avg_popularity_at_3"] == pytest.approx(1 / 9)


def test_report_is_immutable():
    report = _report()
    with pytest.raises(dataclasses.FrozenInstanceError):
        report.k = 5
    with pytest.raises(ValueError, match="read-only"):
        report.per_user["ndcg"][0] = 0.0
    with pytest.raises(ValueError, match="read-only"):
        report.users[0] = 1


def test_report_constructor_is_keyword_only_and_validated():
    with pytest.raises(TypeError):
        RelevanceReport(3, np.array([0]), {}, {})
    with pytest.raises(
        ValueError,
        match=r"RelevanceReport\.per_user\['ndcg'\]: expected one value per evaluated user "
        r"\(2\), got shape \(1,\)",
    ):
        RelevanceReport(k=3, users=np.array([0, 1]), per_user={"ndcg": np.array([1.0])}, catalog={})
    with pytest.raises(ValueError, match=r"RelevanceReport\.k: expected a positive integer, got 0"):
        RelevanceReport(k=0, users=np.array([0]), per_user={}, catalog={})


def test_report_copies_its_inputs():
    values = np.array([0.5])
    report = RelevanceReport(k=1, users=np.array([7]), per_user={"ndcg": values}, catalog={})
    values[0] = 0.0
    assert report.per_user["ndcg"].tolist() == [0.5]


# ---------------------------------------------------------------------- errors
def test_no_user_with_relevant_items_raises():
    with pytest.raises(
        ValueError,
        match=r"relevant: none of the 1 users has a relevant item; nothing to evaluate",
    ):
        _report(ids=IDS[[1]], users=np.array([1]))


def test_k_cannot_exceed_list_width():
    with pytest.raises(
        ValueError,
        match=r"k: expected a positive integer no larger than the list width \(3\), got 4",
    ):
        _report(k=4)
    with pytest.raises(ValueError, match=r"got 0$"):
        _report(k=0)


def test_train_and_relevant_shapes_must_agree():
    with pytest.raises(
        ValueError,
        match=r"train: expected the shape of relevant \(3, 5\) \(same users and items\), "
        r"got \(3, 4\)",
    ):
        _report(train=TRAIN[:, :4])


def test_item_category_length_must_match_items():
    with pytest.raises(
        ValueError, match=r"item_category: expected one code per item \(5\), got shape \(4,\)"
    ):
        _report(item_category=CATEGORY[:4])


def test_users_must_align_with_rows():
    with pytest.raises(ValueError, match=r"users: expected one user per row of ids \(3\), got 2"):
        _report(users=np.array([0, 2]))


# ----------------------------------------------------------------- property
@settings(max_examples=60, deadline=None)
@given(
    st.integers(2, 8),
    st.integers(1, 6),
    st.integers(1, 5),
    st.integers(0, 2**32 - 1),
)
def test_summary_is_mean_of_the_metric_functions(n_items, n_users, k, seed):
    rng = np.random.default_rng(seed)
    relevant = sp.csr_matrix(rng.random((n_users, n_items)) < 0.4)
    train = sp.csr_matrix(rng.random((n_users, n_items)) < 0.5)
    ids = np.array([rng.permutation(n_items)[:k] for _ in range(n_users)])
    if ids.shape[1] < k:
        ids = np.pad(ids, ((0, 0), (0, k - ids.shape[1])), constant_values=-1)
    users = rng.permutation(n_users)
    n_rel = np.diff(relevant.indptr)[users]
    if not (n_rel > 0).any():
        return
    report = evaluate_rankings(ids, users=users, relevant=relevant, train=train)
    keep = n_rel > 0
    assert report.users.tolist() == users[keep].tolist()
    hits = hit_matrix(ids[keep], relevant, users[keep])
    expected = ndcg_at_k(hits, n_rel[keep])
    np.testing.assert_array_equal(report.per_user["ndcg"], expected)
    assert report.summary()[f"ndcg_at_{k}"] == pytest.approx(expected.mean())
