"""Counterfactual flip rate: does a user's top-k list change when only her group does?"""

from __future__ import annotations

import copy
import doctest
import re

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

import recsys.explain._counterfactual as counterfactual_module
from recsys.data import generate_synthetic
from recsys.errors import NotFittedError
from recsys.explain import CounterfactualFlips, ReadsSensitive, counterfactual_flip_rate
from recsys.mitigation import TwoStageRanker
from recsys.models import EASE, Popularity, Recommender

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:fairlearn")


@pytest.fixture(autouse=True)
def _one_openmp_thread():
    """Gradient boosting's OpenMP predict can stall on a busy machine; one thread is enough here."""
    with threadpool_limits(1, user_api="openmp"):
        yield

# ---------------------------------------------------------------- hand-built
# Six items; every warm user has seen item 5, so lists come from items 0-4.
# Score = BASE + BOOST[group]:
#   a: 5 4 3   2   1    -> top-3 order 0 1 2, set {0,1,2}
#   b: 5 4 3   3.5 1    -> order 0 1 3,       set {0,1,3}
#   c: 5 4 3   12  11   -> order 3 4 0,       set {0,3,4}
#   d: 5 4 5.5 2   1    -> order 2 0 1,       set {0,1,2} (a's set, another order)
BASE = np.array([5.0, 4.0, 3.0, 2.0, 1.0, 0.0])
BOOST = {
    "a": np.zeros(6),
    "b": np.array([0.0, 0.0, 0.0, 1.5, 0.0, 0.0]),
    "c": np.array([0.0, 0.0, 0.0, 10.0, 10.0, 0.0]),
    "d": np.array([0.0, 0.0, 2.5, 0.0, 0.0, 0.0]),
}


class GroupBoost(Recommender):
    """A hand-built model that reads each user's group: scores ``BASE + BOOST[group]``."""

    def fit(self, X: sp.spmatrix, y: None = None, *, sensitive: np.ndarray) -> GroupBoost:
        self.sensitive_ = np.asarray(sensitive)
        return super().fit(X)

    def _fit(self, X: sp.csr_matrix) -> None:
        pass

    def _score(self, users: np.ndarray) -> np.ndarray:
        return BASE + np.array([BOOST[g] for g in self.sensitive_[users]])

    def with_sensitive(self, sensitive: np.ndarray) -> GroupBoost:
        other = copy.copy(self)
        other.sensitive_ = np.asarray(sensitive)
        return other


def _history(n_warm: int, n_cold: int) -> sp.csr_matrix:
    """Warm users have seen item 5; cold users nothing (they get the popularity ranking)."""
    dense = np.zeros((n_warm + n_cold, 6), dtype=np.float32)
    dense[:n_warm, 5] = 1.0
    return sp.csr_matrix(dense)


@pytest.fixture(scope="module")
def hand_built() -> GroupBoost:
    # users 0-3 (warm) in a, b, c, d; user 4 (cold) in a
    return GroupBoost().fit(_history(4, 1), sensitive=np.array(["a", "b", "c", "d", "a"]))


def test_exact_values_on_the_hand_built_case(hand_built: GroupBoost) -> None:
    # 1 - Jaccard of the top-3 sets, user by user (each max over the other groups):
    #   u0 a {0,1,2}: b {0,1,3} 1 - 2/4 = 1/2; c {0,3,4} 1 - 1/5 = 4/5; d same set: 0 -> 4/5
    #   u1 b {0,1,3}: a 1/2; c {0,3,4} 1 - 2/4 = 1/2; d 1/2                         -> 1/2
    #   u2 c {0,3,4}: a 4/5; b 1/2; d 4/5                                            -> 4/5
    #   u3 d {0,1,2}: a 0 (same set); b 1/2; c 4/5                                   -> 4/5
    #   u4 cold: popularity whatever her group                                       -> 0
    # flip rate 4/5; change (4/5 + 1/2 + 4/5 + 4/5 + 0) / 5 = 2.9 / 5 = 0.58
    flips = counterfactual_flip_rate(hand_built, np.arange(5), 3)
    assert isinstance(flips, CounterfactualFlips)
    assert flips.users.tolist() == [0, 1, 2, 3, 4]
    assert flips.flipped.tolist() == [True, True, True, True, False]
    np.testing.assert_allclose(flips.user_change, [0.8, 0.5, 0.8, 0.8, 0.0])
    assert flips.flip_rate == 0.8
    assert flips.change == pytest.approx(0.58)
    assert flips.groups == ("a", "b", "c", "d")
    assert flips.reads_sensitive


def test_users_are_measured_in_the_order_given_and_duplicates_are_kept(hand_built) -> None:
    flips = counterfactual_flip_rate(hand_built, [4, 1, 1], 3)
    assert flips.flipped.tolist() == [False, True, True]
    np.testing.assert_allclose(flips.user_change, [0.0, 0.5, 0.5])


def test_a_reordering_within_the_top_k_is_not_a_flip() -> None:
    # only groups a and d: the same top-3 set {0,1,2}, in another order
    model = GroupBoost().fit(_history(2, 0), sensitive=np.array(["a", "d"]))
    flips = counterfactual_flip_rate(model, [0, 1], 3)
    assert flips.flipped.tolist() == [False, False]
    assert flips.user_change.tolist() == [0.0, 0.0]
    assert model.recommend([0], 3)[0].tolist() == [[0, 1, 2]]
    assert model.with_sensitive(np.array(["d", "d"])).recommend([0], 3)[0].tolist() == [[2, 0, 1]]


def test_short_lists_compare_their_valid_items_only(hand_built) -> None:
    # k = 6 > the 5 unseen items: every list is {0,...,4} plus padding, whatever the group
    ids, _ = hand_built.recommend([0], 6)
    assert ids[0, -1] == -1
    flips = counterfactual_flip_rate(hand_built, np.arange(4), 6)
    assert flips.flip_rate == 0.0 and flips.change == 0.0


def test_a_single_group_has_no_counterfactual() -> None:
    model = GroupBoost().fit(_history(2, 0), sensitive=np.array(["b", "b"]))
    flips = counterfactual_flip_rate(model, [0, 1], 3)
    assert flips.groups == ("b",) and flips.flip_rate == 0.0


def test_no_users_give_nan() -> None:
    model = GroupBoost().fit(_history(2, 0), sensitive=np.array(["a", "b"]))
    flips = counterfactual_flip_rate(model, np.array([], dtype=np.int64), 3)
    assert flips.users.shape == (0,)
    assert np.isnan(flips.flip_rate) and np.isnan(flips.change)


def test_the_result_is_immutable(hand_built) -> None:
    flips = counterfactual_flip_rate(hand_built, np.arange(5), 3)
    with pytest.raises(ValueError, match="read-only"):
        flips.flipped[0] = False
    with pytest.raises(AttributeError):
        flips.groups = ()  # type: ignore[misc]


# --------------------------------------------------------- two-stage ranker
def _planted() -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """Planted bias (F never picks cat_0), three categories, taste not personalised."""
    ds = generate_synthetic(n_users=400, n_items=60, n_interactions=3000, n_categories=3,
                            personalization=0.0, bias_strength=1.0, random_state=0)
    category = pd.factorize(ds.items["category"])[0]
    return ds.interactions.matrix, ds.users["gender"].to_numpy(), np.eye(3)[category]


@pytest.fixture(scope="module")
def planted() -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    return _planted()


def _two_stage(planted, **params) -> TwoStageRanker:
    X, gender, item_features = planted
    model = TwoStageRanker(Popularity(), n_candidates=20, classifier="gbdt", **params)
    with threadpool_limits(1, user_api="openmp"):  # module fixtures come before the autouse one
        return model.fit(X, item_features=item_features, sensitive=gender)


@pytest.fixture(scope="module")
def with_gender(planted) -> TwoStageRanker:
    return _two_stage(planted, use_sensitive_feature=True)


def test_a_two_stage_ranker_reads_the_group_through_the_protocol(with_gender) -> None:
    assert isinstance(with_gender, ReadsSensitive)
    assert not isinstance(Popularity(), ReadsSensitive)


def test_a_ranker_given_the_group_changes_lists_with_it(with_gender) -> None:
    flips = counterfactual_flip_rate(with_gender, np.arange(400), 5)
    assert flips.groups == ("F", "M") and flips.reads_sensitive
    assert flips.flip_rate > 0.3  # 0.655 measured (change 0.264)
    assert 0.0 < flips.change < flips.flip_rate


def test_an_additive_ranker_given_the_group_cannot_reorder_a_users_list(planted) -> None:
    # logistic regression: the one-hot group adds one constant to the log-odds of all
    # of a user's candidates, and the sigmoid keeps their order
    X, gender, item_features = planted
    model = TwoStageRanker(Popularity(), n_candidates=20, use_sensitive_feature=True).fit(
        X, item_features=item_features, sensitive=gender)
    coef = model.classifier_.named_steps["logistic"].coef_[0]
    assert np.abs(coef[model.feature_names_.index("sensitive=F")]) > 0.01  # it is used...
    flips = counterfactual_flip_rate(model, np.arange(400), 5)
    assert flips.flip_rate == 0.0 and flips.change == 0.0  # ...but never decides anything


def test_moving_every_user_at_once_equals_moving_one_user_at_a_time(with_gender) -> None:
    users = np.arange(0, 400, 13)
    flips = counterfactual_flip_rate(with_gender, users, 5)
    labels = with_gender.sensitive_
    factual, _ = with_gender.recommend(users, 5)
    for row, u in enumerate(users):
        other = "M" if labels[u] == "F" else "F"
        moved = labels.copy()
        moved[u] = other  # only this user's group changes
        ids, _ = with_gender.with_sensitive(moved).recommend([u], 5)
        a, b = set(factual[row]) - {-1}, set(ids[0]) - {-1}
        assert flips.flipped[row] == (a != b), u
        assert flips.user_change[row] == pytest.approx(1 - len(a & b) / len(a | b)), u
    assert flips.flipped.any() and not flips.flipped.all()


def test_the_original_model_scores_identically_afterwards(with_gender, planted) -> None:
    users = np.arange(400)
    labels = with_gender.sensitive_
    before = with_gender.recommend(users, 5)
    counterfactual_flip_rate(with_gender, users, 5)
    copy_ = with_gender.with_sensitive(np.full(400, "M", dtype=object))
    copy_.sensitive_[:] = "F"  # the copy's labels are its own
    after = with_gender.recommend(users, 5)
    np.testing.assert_array_equal(before[0], after[0])
    np.testing.assert_array_equal(before[1], after[1])
    assert with_gender.sensitive_ is labels
    np.testing.assert_array_equal(with_gender.sensitive_, planted[1])
    # a shallow copy: what was learned is shared, not refitted
    assert copy_ is not with_gender and copy_.classifier_ is with_gender.classifier_


def test_with_sensitive_copies_the_given_labels(with_gender) -> None:
    labels = np.full(400, "F", dtype=object)
    copy_ = with_gender.with_sensitive(labels)
    labels[:] = "M"
    assert set(copy_.sensitive_) == {"F"}


def test_a_ranker_without_the_feature_is_measured_and_gets_exactly_zero(planted) -> None:
    model = _two_stage(planted)
    flips = counterfactual_flip_rate(model, np.arange(400), 5)
    assert flips.reads_sensitive and flips.groups == ("F", "M")  # re-ranked, not assumed
    assert flips.flip_rate == 0.0 and flips.change == 0.0


def test_a_fairlearn_mitigated_ranker_without_the_feature_gets_exactly_zero(planted) -> None:
    # ExponentiatedGradient sees the group while fitting; its predictors score the
    # pair features only, so the group cannot move a list
    X, gender, item_features = planted
    model = TwoStageRanker(Popularity(), n_candidates=20, constraint="demographic_parity",
                           bound=0.02).fit(X, item_features=item_features, sensitive=gender)
    assert model.mitigator_ is not None
    flips = counterfactual_flip_rate(model, np.arange(400), 5)
    assert flips.reads_sensitive and flips.flip_rate == 0.0 and flips.change == 0.0


def test_a_ranker_fitted_without_labels_is_measured_with_the_given_ones(planted) -> None:
    X, gender, item_features = planted
    model = TwoStageRanker(Popularity(), n_candidates=20).fit(X, item_features=item_features)
    assert model.sensitive_ is None
    flips = counterfactual_flip_rate(model, np.arange(400), 5, sensitive=gender)
    assert flips.reads_sensitive and flips.groups == ("F", "M") and flips.flip_rate == 0.0
    assert model.sensitive_ is None


@pytest.mark.parametrize("model", [Popularity(), EASE(l2=10.0)], ids=["popularity", "ease"])
def test_collaborative_models_have_no_group_input(planted, model) -> None:
    X, gender, _ = planted
    flips = counterfactual_flip_rate(model.fit(X), np.arange(400), 5, sensitive=gender)
    assert not flips.reads_sensitive and flips.groups == ()
    assert flips.flip_rate == 0.0 and flips.change == 0.0
    assert flips.flipped.shape == (400,)


# ------------------------------------------------------------------- errors
@pytest.mark.parametrize("k", [0, -1, 1.5, True, "3"])
def test_k_must_be_a_positive_integer(hand_built, k) -> None:
    with pytest.raises(ValueError, match=f"^k: expected a positive integer, got {re.escape(repr(k))}$"):
        counterfactual_flip_rate(hand_built, [0], k)


@pytest.mark.parametrize("users", [[0, 5], [-1, 2]])
def test_users_must_be_training_users(hand_built, users) -> None:
    bad = [u for u in users if not 0 <= u < 5]
    with pytest.raises(ValueError, match=re.escape(
            f"users: expected indices in [0, 5) (a user outside has no group), got {bad}")):
        counterfactual_flip_rate(hand_built, users, 3)


def test_users_must_be_a_vector_of_indices(hand_built) -> None:
    with pytest.raises(ValueError, match=re.escape(
            "users: expected a 1-D array of user indices, got dtype float64 and shape (2,)")):
        counterfactual_flip_rate(hand_built, [0.0, 1.0], 3)
    with pytest.raises(ValueError, match=re.escape("got dtype int64 and shape (1, 2)")):
        counterfactual_flip_rate(hand_built, np.array([[0, 1]]), 3)


def test_the_model_must_be_a_fitted_recommender(planted) -> None:
    with pytest.raises(TypeError, match="^model: expected a fitted fairrec Recommender, got str$"):
        counterfactual_flip_rate("ease", [0], 3)  # type: ignore[arg-type]
    with pytest.raises(NotFittedError, match="This TwoStageRanker is not fitted yet"):
        counterfactual_flip_rate(TwoStageRanker(Popularity()), [0], 3)


def test_labels_are_required_when_the_model_has_none(planted) -> None:
    X, _, _ = planted
    model = TwoStageRanker(Popularity(), n_candidates=20).fit(X)
    with pytest.raises(ValueError, match=re.escape(
            "sensitive: required, as this TwoStageRanker was fitted without sensitive labels; "
            "expected one group label per training user (shape (400,)), got None")):
        counterfactual_flip_rate(model, [0], 3)


def test_given_labels_need_one_per_training_user(hand_built) -> None:
    with pytest.raises(ValueError, match=re.escape(
            "sensitive: expected one group label per training user (shape (5,)), got shape (2,)")):
        counterfactual_flip_rate(hand_built, [0], 3, sensitive=np.array(["a", "b"]))


def test_exclude_seen_must_be_a_bool(hand_built) -> None:
    with pytest.raises(TypeError, match="^exclude_seen: expected a bool, got 1$"):
        counterfactual_flip_rate(hand_built, [0], 3, exclude_seen=1)  # type: ignore[arg-type]


def test_with_sensitive_checks_its_labels(with_gender) -> None:
    with pytest.raises(ValueError, match=re.escape(
            "sensitive: expected one value per user (shape (400,)), got shape (3,)")):
        with_gender.with_sensitive(np.array(["F", "M", "F"]))
    with pytest.raises(ValueError, match=re.escape(
            "sensitive: expected groups seen in fit ['F', 'M'] (the sensitive=<group> features), "
            "got ['X']")):
        with_gender.with_sensitive(np.array(["F"] * 399 + ["X"], dtype=object))
    with pytest.raises(NotFittedError):
        TwoStageRanker(Popularity()).with_sensitive(np.array(["F"]))


# ----------------------------------------------------------------- doctests
@pytest.mark.parametrize("module", [counterfactual_module], ids=["_counterfactual"])
def test_docstring_examples(module) -> None:
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0
