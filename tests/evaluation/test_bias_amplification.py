"""bias_amplification: per-group category mix of recommendations vs training."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from evaluation import bias_amplification

# 4 users x 6 items; categories x = {0, 1}, y = {2, 3}, z = {4, 5}
CATEGORY = np.array(["x", "x", "y", "y", "z", "z"])
GROUP = np.array(["F", "F", "M", "M"])
# F trains on x, x, x, y (3/4 x, 1/4 y); M on y, z, z, z (1/4 y, 3/4 z)
TRAIN = sp.csr_matrix(
    (np.ones(8), ([0, 0, 1, 1, 2, 3, 3, 2], [0, 1, 0, 2, 3, 4, 5, 5])), shape=(4, 6)
)
USERS = np.arange(4)


def test_ranking_with_the_training_mix_has_no_amplification():
    # F gets x, x, x, y; M gets y, z, z, z (padding ignored)
    ids = np.array([[0, 1, -1], [1, 3, -1], [2, 4, -1], [5, 4, -1]])
    ba = bias_amplification(ids, TRAIN, GROUP, CATEGORY, users=USERS, weighting="interaction")
    assert ba.groups == ["F", "M"] and ba.categories == ["x", "y", "z"]
    np.testing.assert_allclose(ba.train_share, [[0.75, 0.25, 0.0], [0.0, 0.25, 0.75]])
    np.testing.assert_allclose(ba.rec_share, ba.train_share)
    np.testing.assert_allclose(ba.amplification, 0.0)
    # gap F - M per category: x 0.75, y 0, z -0.75
    np.testing.assert_allclose(ba.train_gap, [0.75, 0.0, -0.75])
    np.testing.assert_allclose(ba.gap_amplification, 0.0)
    assert ba.mean_abs_amplification == 0.0
    assert ba.mean_abs_gap_amplification == 0.0


def test_ranking_concentrated_on_one_category_hand_value():
    # every list holds only x items: rec_share = [1, 0, 0] for both groups
    ids = np.array([[0, 1], [1, 0], [0, 1], [1, -1]])
    ba = bias_amplification(ids, TRAIN, GROUP, CATEGORY, users=USERS, weighting="interaction")
    np.testing.assert_allclose(ba.rec_share, [[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    # F: [1 - 3/4, 0 - 1/4, 0]; M: [1, -1/4, -3/4]
    np.testing.assert_allclose(ba.amplification, [[0.25, -0.25, 0.0], [1.0, -0.25, -0.75]])
    assert ba.mean_abs_amplification == pytest.approx((0.25 + 0.25 + 0 + 1 + 0.25 + 0.75) / 6)
    # the recommendations erase the gaps: |0| - |train gap| = [-0.75, 0, -0.75]
    np.testing.assert_allclose(ba.rec_gap, [0.0, 0.0, 0.0])
    np.testing.assert_allclose(ba.gap_amplification, [-0.75, 0.0, -0.75])
    assert ba.mean_abs_gap_amplification == pytest.approx(-0.5)


def test_ranking_that_widens_the_gap():
    # F gets only x, M only z: rec gap [1, 0, -1] vs train gap [0.75, 0, -0.75]
    ids = np.array([[0, 1], [1, 0], [4, 5], [5, 4]])
    ba = bias_amplification(ids, TRAIN, GROUP, CATEGORY, users=USERS, weighting="interaction")
    np.testing.assert_allclose(ba.gap_amplification, [0.25, 0.0, 0.25])
    assert ba.mean_abs_gap_amplification == pytest.approx(0.5 / 3)
    assert ba.mean_abs_amplification == pytest.approx(4 * 0.25 / 6)


def test_more_than_two_groups_use_the_range_and_skip_groups_without_lists():
    groups = np.array(["a", "b", "c", "d"])
    # rows only for users 0, 1, 2: group d has training data but no list
    ids = np.array([[0, 1], [2, 3], [4, 5]])
    ba = bias_amplification(ids, TRAIN, groups, CATEGORY, users=np.array([0, 1, 2]), weighting="interaction")
    assert np.isnan(ba.rec_share[3]).all() and np.isnan(ba.amplification[3]).all()
    # rec shares a [1, 0, 0], b [0, 1, 0], c [0, 0, 1]: range 1 per category
    np.testing.assert_allclose(ba.rec_gap, [1.0, 1.0, 1.0])
    # train shares a [1, 0, 0], b [1/2, 1/2, 0], c [0, 1/2, 1/2]: range [1, 1/2, 1/2]
    np.testing.assert_allclose(ba.train_gap, [1.0, 0.5, 0.5])
    np.testing.assert_allclose(ba.gap_amplification, [0.0, 0.5, 0.5])
    # defined cells: a 0; b |[-1/2, 1/2, 0]|; c |[0, -1/2, 1/2]| -> 2 / 9
    assert ba.mean_abs_amplification == pytest.approx(2 / 9)


def test_single_group_has_no_gap():
    ba = bias_amplification(
        np.array([[0]]), TRAIN, np.array(["all"] * 4), CATEGORY, users=np.array([0])
    )
    assert np.isnan(ba.rec_gap).all() and math.isnan(ba.mean_abs_gap_amplification)


def test_results_are_read_only():
    ba = bias_amplification(np.array([[0]]), TRAIN, GROUP, CATEGORY, users=np.array([0]), weighting="interaction")
    with pytest.raises(ValueError, match="read-only"):
        ba.amplification[0, 0] = 1.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"user_group": np.array(["F"])}, r"user_group: expected one label per value \(4\), got 1"),
        (
            {"item_category": CATEGORY[:3]},
            r"item_category: expected one label per value \(6\), got 3",
        ),
        ({"users": np.array([0, 1])}, r"users: expected one user per row of ids \(1\), got 2"),
        ({"users": np.array([9])}, r"users: user indices must lie in \[0, 4\)"),
    ],
)
def test_errors(kwargs, message):
    args = {"user_group": GROUP, "item_category": CATEGORY, "users": np.array([0]), **kwargs}
    with pytest.raises(ValueError, match=message):
        bias_amplification(
            np.array([[0]]), TRAIN, args["user_group"], args["item_category"], users=args["users"]
        )


# ----------------------------------------------------------------- properties
@st.composite
def cases(draw):
    n_users, n_items, k = draw(st.integers(2, 6)), draw(st.integers(2, 6)), draw(st.integers(1, 4))
    size = n_users * n_items
    dense = np.array(draw(st.lists(st.booleans(), min_size=size, max_size=size)))
    train = sp.csr_matrix(dense.reshape(n_users, n_items).astype(float))
    row = st.lists(st.integers(-1, n_items - 1), min_size=k, max_size=k)
    ids = np.array(draw(st.lists(row, min_size=n_users, max_size=n_users)))
    groups = np.array(draw(st.lists(st.sampled_from("ab"), min_size=n_users, max_size=n_users)))
    cats = np.array(draw(st.lists(st.sampled_from("uvw"), min_size=n_items, max_size=n_items)))
    return ids, train, groups, cats


@settings(max_examples=100, deadline=None)
@given(cases())
def test_shares_sum_to_one_per_group_and_amplification_to_zero(case):
    ids, train, groups, cats = case
    ba = bias_amplification(ids, train, groups, cats, users=np.arange(ids.shape[0]), weighting="interaction")
    for share in (ba.train_share, ba.rec_share):
        rows = share[~np.isnan(share).all(axis=1)]
        np.testing.assert_allclose(rows.sum(axis=1), 1.0)
    amp = ba.amplification[~np.isnan(ba.amplification).all(axis=1)]
    np.testing.assert_allclose(amp.sum(axis=1), 0.0, atol=1e-12)
    assert math.isnan(ba.mean_abs_amplification) or 0.0 <= ba.mean_abs_amplification <= 1.0


# Two F users of different activity: u0 trains on x, x, y, y (4 items), u1 on z (1 item).
ACTIVE = sp.csr_matrix((np.ones(5), ([0, 0, 0, 0, 1], [0, 1, 2, 3, 4])), shape=(2, 6))
CALIBRATED = np.array([[0, 2], [4, 5]])  # each list mirrors its user's own history


def test_user_weighting_gives_zero_for_lists_that_mirror_each_history():
    ba = bias_amplification(CALIBRATED, ACTIVE, np.array(["F", "F"]), CATEGORY, users=np.arange(2))
    # per-user means: train mean([1/2, 1/2, 0], [0, 0, 1]) = recs mean([1/2, 1/2, 0], [0, 0, 1])
    np.testing.assert_allclose(ba.train_share, [[0.25, 0.25, 0.5]])
    np.testing.assert_allclose(ba.rec_share, [[0.25, 0.25, 0.5]])
    assert ba.mean_abs_amplification == 0.0


def test_interaction_weighting_counts_activity_as_amplification():
    ba = bias_amplification(
        CALIBRATED, ACTIVE, np.array(["F", "F"]), CATEGORY, users=np.arange(2), weighting="interaction"
    )
    # pooled train x 2/5, y 2/5, z 1/5; pooled recs 1/4, 1/4, 1/2 -> |.15| + |.15| + |.3| over 3
    np.testing.assert_allclose(ba.train_share, [[0.4, 0.4, 0.2]])
    assert ba.mean_abs_amplification == pytest.approx(0.2)


def test_user_weighting_uses_only_the_evaluated_users_history():
    ba = bias_amplification(CALIBRATED[:1], ACTIVE, np.array(["F", "F"]), CATEGORY, users=np.array([0]))
    np.testing.assert_allclose(ba.train_share, [[0.5, 0.5, 0.0]])
    assert ba.mean_abs_amplification == 0.0


def test_unknown_weighting_is_rejected():
    with pytest.raises(ValueError, match="weighting: expected 'user' or 'interaction', got 'pooled'"):
        bias_amplification(CALIBRATED, ACTIVE, np.array(["F", "F"]), CATEGORY, users=np.arange(2), weighting="pooled")
