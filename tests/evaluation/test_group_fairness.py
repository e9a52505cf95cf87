"""Consumer-side fairness: group_quality, outcome_parity, equal_opportunity, outcome builders."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import demographic_parity_difference, demographic_parity_ratio
from hypothesis import given, settings
from hypothesis import strategies as st

from evaluation import (
    contains_group,
    equal_opportunity,
    group_quality,
    outcome_parity,
    share_of_group,
)


# ------------------------------------------------------------- group_quality
def test_group_quality_hand_worked_means():
    per_user = {
        "ndcg": np.array([1.0, 0.5, 0.0, 0.5, 0.2]),
        "recall": np.array([1.0, 1.0, 0.5, 0.0, 0.0]),
    }
    gq = group_quality(per_user, pd.Series(["F", "F", "M", "M", None], name="gender"))
    assert gq.attribute == "gender"
    assert gq.counts == {"F": 2, "M": 2, "unknown": 1}
    assert gq.groups == ["F", "M", "unknown"]
    # ndcg: F (1 + 0.5)/2, M (0 + 0.5)/2, unknown 0.2; overall 2.2/5
    assert gq.by_group["ndcg"] == pytest.approx({"F": 0.75, "M": 0.25, "unknown": 0.2})
    assert gq.overall["ndcg"] == pytest.approx(0.44)
    assert gq.difference["ndcg"] == pytest.approx(0.55)
    assert gq.ratio["ndcg"] == pytest.approx(0.2 / 0.75)
    # recall: F 1, M 0.25, unknown 0 -> ratio 0
    assert gq.by_group["recall"] == pytest.approx({"F": 1.0, "M": 0.25, "unknown": 0.0})
    assert gq.difference["recall"] == 1.0
    assert gq.ratio["recall"] == 0.0
    assert gq.ci is None and gq.difference_ci is None and gq.ci_level is None


def test_group_quality_leaves_undefined_values_out_of_means():
    gq = group_quality(
        {"novelty": np.array([2.0, np.nan, 4.0, 1.0])}, np.array(["a", "a", "b", "b"])
    )
    assert gq.attribute == "sensitive"
    assert gq.by_group["novelty"] == {"a": 2.0, "b": 2.5}
    assert gq.overall["novelty"] == pytest.approx(7 / 3)
    assert gq.counts == {"a": 2, "b": 2}


def test_group_quality_bootstrap_intervals_contain_the_estimates():
    rng = np.random.default_rng(7)
    values = rng.random(120)
    groups = pd.Series(np.repeat(["F", "M"], 60), name="gender")
    gq = group_quality({"ndcg": values}, groups, n_boot=40, ci=0.9, random_state=3)
    assert gq.ci_level == 0.9
    assert set(gq.ci["ndcg"]) == {"F", "M"}
    for g, (low, high) in gq.ci["ndcg"].items():
        assert low <= gq.by_group["ndcg"][g] <= high
        assert low < high
    low, high = gq.difference_ci["ndcg"]
    assert low <= gq.difference["ndcg"] <= high
    low, high = gq.ratio_ci["ndcg"]
    assert 0.0 <= low <= gq.ratio["ndcg"] <= high <= 1.0


def test_group_quality_bootstrap_is_reproducible():
    values = np.linspace(0, 1, 30)
    groups = np.tile(["a", "b", "c"], 10)
    first = group_quality({"m": values}, groups, n_boot=5, random_state=11)
    again = group_quality({"m": values}, groups, n_boot=5, random_state=11)
    assert first.ci == again.ci


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"per_user": {}}, r"per_user: expected at least one per-user metric, got none"),
        (
            {"per_user": {"a": np.ones(3), "b": np.ones(2)}},
            r"per_user\['b'\]: expected 3 values like the first metric, got 2",
        ),
        ({"sensitive": ["x", "y"]}, r"sensitive: expected one label per value \(3\), got 2"),
        ({"n_boot": 0}, r"n_boot: expected a positive integer or None, got 0"),
        ({"ci": 1.5}, r"ci: expected a confidence level in \(0, 1\), got 1.5"),
    ],
)
def test_group_quality_errors(kwargs, message):
    args = {"per_user": {"a": np.ones(3)}, "sensitive": ["x", "y", "x"], **kwargs}
    with pytest.raises(ValueError, match=message):
        group_quality(args.pop("per_user"), args.pop("sensitive"), **args)


# ------------------------------------------------------------ outcome_parity
def test_outcome_parity_matches_fairlearn_and_hand_values():
    outcome = np.array([1, 1, 0, 1, 0, 0, 1, 0, 0])
    groups = np.array(["a"] * 4 + ["b"] * 5)
    op = outcome_parity(outcome, groups)
    # a: 3/4, b: 1/5
    assert op.rates == pytest.approx({"a": 0.75, "b": 0.2})
    assert op.counts == {"a": 4, "b": 5}
    assert op.overall == pytest.approx(4 / 9)
    assert op.demographic_parity_difference == pytest.approx(0.55)
    assert op.demographic_parity_ratio == pytest.approx(0.2 / 0.75)
    assert op.demographic_parity_difference == demographic_parity_difference(
        outcome, outcome, sensitive_features=groups
    )
    assert op.demographic_parity_ratio == demographic_parity_ratio(
        outcome, outcome, sensitive_features=groups
    )
    assert op.disparate_impact == op.demographic_parity_ratio
    assert op.four_fifths_violated is True


@pytest.mark.parametrize(
    ("outcome", "violated"),
    [
        ([1, 1, 1, 1, 1, 1, 1, 1, 1, 0], False),  # 5/5 vs 4/5: ratio exactly 0.8
        ([1, 1, 1, 0, 1, 1, 1, 1], True),  # 3/4 vs 4/4: ratio 0.75
        ([0, 0, 0, 0], False),  # nobody has the outcome: ratio nan, no violation
    ],
)
def test_four_fifths_flag(outcome, violated):
    outcome = np.array(outcome, dtype=bool)
    half = outcome.size // 2
    op = outcome_parity(outcome, np.array(["a"] * half + ["b"] * half))
    assert op.four_fifths_violated is violated


def test_outcome_parity_labels_missing_attributes_unknown():
    op = outcome_parity(np.array([True, False, True]), pd.Series(["x", np.nan, None], name="age"))
    assert op.attribute == "age"
    assert op.rates == {"unknown": 0.5, "x": 1.0}


def test_outcome_parity_errors():
    message = r"outcome: expected boolean \(or 0/1\) values, got dtype float64"
    with pytest.raises(ValueError, match=message):
        outcome_parity(np.array([0.5, 1.0]), ["a", "b"])
    with pytest.raises(ValueError, match=r"y_true: expected shape \(2,\) like outcome, got \(3,\)"):
        outcome_parity(np.array([0, 1]), ["a", "b"], y_true=np.zeros(3))


# ---------------------------------------------------------- equal opportunity
def test_equal_opportunity_is_recall_parity():
    # a: (1 + 0.5)/2 = 0.75, b: (0.25 + 0.25)/2 = 0.25
    diff, ratio = equal_opportunity(np.array([1.0, 0.5, 0.25, 0.25]), ["a", "a", "b", "b"])
    assert diff == 0.5
    assert ratio == pytest.approx(1 / 3)


# ------------------------------------------------------------ outcome builders
def test_contains_and_share_of_group():
    in_group = np.array([True, False, False, True])
    ids = np.array([[0, 1, 2], [1, 2, -1], [3, 0, -1], [-1, -1, -1]])
    assert contains_group(ids, in_group).tolist() == [True, False, True, False]
    share = share_of_group(ids, in_group)
    assert share[:3].tolist() == pytest.approx([1 / 3, 0.0, 1.0])
    assert math.isnan(share[3])


def test_outcome_builders_errors():
    with pytest.raises(ValueError, match=r"item_in_group: expected a non-empty 1-D boolean array"):
        contains_group(np.array([[0]]), np.array([1, 0]))
    with pytest.raises(ValueError, match=r"ids: item indices must lie in \[0, 2\)"):
        share_of_group(np.array([[2]]), np.array([True, False]))


# ----------------------------------------------------------------- properties
@st.composite
def outcomes_and_groups(draw):
    n = draw(st.integers(2, 25))
    outcome = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    groups = np.array(draw(st.lists(st.sampled_from("abc"), min_size=n, max_size=n)))
    return outcome, groups


@settings(max_examples=15, deadline=None)
@given(outcomes_and_groups(), st.permutations(["x", "y", "z"]))
def test_parity_invariant_to_relabelling_groups(case, new_names):
    outcome, groups = case
    relabelled = np.array([dict(zip("abc", new_names))[g] for g in groups])
    op, op2 = outcome_parity(outcome, groups), outcome_parity(outcome, relabelled)
    assert op2.demographic_parity_difference == pytest.approx(op.demographic_parity_difference)
    np.testing.assert_allclose(op2.demographic_parity_ratio, op.demographic_parity_ratio)
    assert 0.0 <= op.demographic_parity_difference <= 1.0
    assert math.isnan(op.demographic_parity_ratio) or 0.0 <= op.demographic_parity_ratio <= 1.0


@settings(max_examples=15, deadline=None)
@given(outcomes_and_groups())
def test_group_quality_difference_and_ratio_summarise_the_groups(case):
    outcome, groups = case
    values = outcome.astype(float) * 0.5 + np.linspace(0, 0.5, outcome.size)
    gq = group_quality({"m": values}, groups)
    means = np.array(list(gq.by_group["m"].values()))
    assert gq.difference["m"] == pytest.approx(means.max() - means.min())
    assert 0.0 <= gq.ratio["m"] <= 1.0
    assert gq.ratio["m"] == pytest.approx(means.min() / means.max())
    assert sum(gq.counts.values()) == outcome.size
