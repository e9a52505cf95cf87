"""The evaluation contract: Spark and in-process evaluators agree on every metric to 1e-9.

The same lists, splits and tables go to ``evaluate_rankings`` +
``fairness_metrics`` and to ``spark_evaluate``; every name of the in-process
``metrics.json`` must come back from Spark with the same value.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from evaluation import evaluate_rankings, fairness_metrics
from evaluation._spark import spark_evaluate
from recsys.data import generate_synthetic, load_movielens_100k, random_holdout
from recsys.data._spark import spark_from_interactions
from recsys.models import ALS, Popularity
from tests.spark.conftest import attributes_frame, lists_frame, users_frame

SENSITIVE = ["gender", "age_group"]


def _in_process(dataset, split, users, ids, k, **fairness):
    items = dataset.items
    rel = evaluate_rankings(ids, users=users, relevant=split.test.matrix,
                            train=split.train.binary(), k=k,
                            item_category=pd.factorize(items["category"])[0])
    fr = fairness_metrics(report=rel, ids=ids, users=users, users_table=dataset.users,
                          items_table=items, train=split.train.binary(),
                          relevant=split.test.matrix, sensitive=SENSITIVE, **fairness)
    return {**rel.summary(), **fr.flat()}


def _on_spark(spark, dataset, split, users, ids, k, **fairness):
    train = spark_from_interactions(spark, split.train)
    test = spark_from_interactions(spark, split.test)
    result = spark_evaluate(
        lists=lists_frame(spark, users, ids), users=users_frame(spark, users),
        relevant=test.frame, train=train.frame,
        users_table=attributes_frame(spark, dataset.users, SENSITIVE),
        items_table=dataset.items, n_users=dataset.interactions.n_users,
        n_items=dataset.interactions.n_items, k=k, sensitive=SENSITIVE, **fairness,
    )
    return result.metrics


def _assert_same(expected: dict, got: dict) -> None:
    assert sorted(got) == sorted(expected)
    for name, value in expected.items():
        if math.isnan(value):
            assert math.isnan(got[name]), name
        else:
            assert got[name] == pytest.approx(value, rel=0, abs=1e-9), name


def _awkward_lists(rng: np.random.Generator, users: np.ndarray, n_items: int, k: int) -> np.ndarray:
    """Random lists with padding, some empty, some with a single item."""
    ids = np.stack([rng.choice(n_items, size=k, replace=False) for _ in users])
    cut = rng.integers(0, k + 1, size=users.size)  # list length 0..k
    cut[:3] = [0, 1, k]
    ids[np.arange(k)[None, :] >= cut[:, None]] = -1
    return ids


@pytest.fixture(scope="module")
def small():
    ds = generate_synthetic(n_users=80, n_items=30, n_interactions=900, n_categories=4,
                            random_state=3)
    users = ds.users.copy()
    users.loc[users.index[:5], "gender"] = None  # missing labels form "unknown"
    ds = type(ds)(interactions=ds.interactions, users=users, items=ds.items, name=ds.name)
    split = random_holdout(ds.interactions, test_fraction=0.3, random_state=1)
    test_users = np.flatnonzero(np.diff(split.test.matrix.indptr) > 0)
    return ds, split, test_users


def test_awkward_lists_with_cold_users_agree(spark, small) -> None:
    ds, split, users = small
    cold = users[3:6]  # test users with no training entry (their lists are random here)
    split = type(split)(train=split.train.select(~np.isin(split.train.row_index(), cold)),
                        test=split.test)
    ids = _awkward_lists(np.random.default_rng(0), users, ds.interactions.n_items, 8)
    got = _on_spark(spark, ds, split, users, ids, 8)
    _assert_same(_in_process(ds, split, users, ids, 8), got)
    assert got["gender.ndcg_at_8.unknown"] >= 0.0  # the missing labels form their own group


def test_popularity_lists_with_tied_counts_and_cold_users_agree(spark, small) -> None:
    ds, split, users = small
    # cold users: drop every training entry of a few test users (they keep test entries)
    cold = users[:4]
    keep = ~np.isin(split.train.row_index(), cold)
    train = split.train.select(keep)
    split = type(split)(train=train, test=split.test)
    model = Popularity(unknown_users="popular").fit(train.binary())
    ids, _ = model.recommend(users, k=5)
    assert (np.diff(train.matrix.indptr)[cold] == 0).all()
    counts = np.bincount(train.matrix.indices, minlength=ds.interactions.n_items)
    assert np.unique(counts).size < counts.size  # tied popularity counts
    _assert_same(_in_process(ds, split, users, ids, 5), _on_spark(spark, ds, split, users, ids, 5))


def test_item_column_groups_and_interaction_weighting_agree(spark, small) -> None:
    ds, split, users = small
    ids = _awkward_lists(np.random.default_rng(1), users, ds.interactions.n_items, 6)
    settings = {"item_group": "category", "protected_group": "cat_1",
                "amplification_weighting": "interaction", "head_share": 0.5}
    expected = _in_process(ds, split, users, ids, 4, **settings)
    got = _on_spark(spark, ds, split, users, ids, 4, **settings)
    _assert_same(expected, got)
    assert "exposure_share.category.cat_1" in got


def test_every_list_empty_gives_zero_quality(spark, small) -> None:
    ds, split, users = small
    ids = np.full((users.size, 3), -1, dtype=np.int64)
    expected = _in_process(ds, split, users, ids, 3)
    got = _on_spark(spark, ds, split, users, ids, 3)
    _assert_same(expected, got)
    assert got["ndcg_at_3"] == 0.0 and math.isnan(got["novelty_at_3"])


def test_bootstrap_intervals_equal_the_in_process_ones(spark, small) -> None:
    ds, split, users = small
    ids = _awkward_lists(np.random.default_rng(2), users, ds.interactions.n_items, 3)
    rel = evaluate_rankings(ids, users=users, relevant=split.test.matrix, train=split.train.binary(), k=3,
                            item_category=pd.factorize(ds.items["category"])[0])
    expected = fairness_metrics(report=rel, ids=ids, users=users, users_table=ds.users, items_table=ds.items,
                                train=split.train.binary(), relevant=split.test.matrix, sensitive=SENSITIVE,
                                n_boot=40, ci=0.9, random_state=7)
    train, test = spark_from_interactions(spark, split.train), spark_from_interactions(spark, split.test)
    got = spark_evaluate(
        lists=lists_frame(spark, users, ids), users=users_frame(spark, users), relevant=test.frame,
        train=train.frame, users_table=attributes_frame(spark, ds.users, SENSITIVE), items_table=ds.items,
        n_users=ds.interactions.n_users, n_items=ds.interactions.n_items, k=3, sensitive=SENSITIVE,
        n_boot=40, ci=0.9, random_state=7).fairness
    for attr in SENSITIVE:
        want, have = expected.quality[attr], got.quality[attr]
        assert have.ci_level == want.ci_level == 0.9
        assert sorted(have.ci) == sorted(want.ci) and "ndcg" in have.ci
        for metric, groups in want.ci.items():
            assert sorted(have.ci[metric]) == sorted(groups)
            for group, interval in groups.items():
                np.testing.assert_allclose(have.ci[metric][group], interval, rtol=0, atol=1e-9,
                                           err_msg=f"{attr} {metric} {group}")
            np.testing.assert_allclose(have.difference_ci[metric], want.difference_ci[metric], atol=1e-9)
            np.testing.assert_allclose(have.ratio_ci[metric], want.ratio_ci[metric], atol=1e-9)
    lo, hi = got.quality["gender"].ci["ndcg"]["F"]
    assert lo < got.quality["gender"].by_group["ndcg"]["F"] < hi  # an interval, not a point


def test_bad_bootstrap_settings_name_the_parameter(spark, small) -> None:
    ds, split, users = small
    ids = _awkward_lists(np.random.default_rng(2), users, ds.interactions.n_items, 3)
    with pytest.raises(ValueError, match=r"n_boot: expected a positive integer or None, got 0"):
        _on_spark(spark, ds, split, users, ids, 3, n_boot=0)


def test_collected_per_user_vectors_equal_the_in_process_evidence_inputs(spark, small) -> None:
    from evaluation import popularity_groups
    from training._evidence import EvidenceInputs, _exposure, _outcome

    ds, split, users = small
    ids = _awkward_lists(np.random.default_rng(3), users, ds.interactions.n_items, 6)
    train, test = spark_from_interactions(spark, split.train), spark_from_interactions(spark, split.test)
    vectors = spark_evaluate(
        lists=lists_frame(spark, users, ids), users=users_frame(spark, users), relevant=test.frame,
        train=train.frame, users_table=attributes_frame(spark, ds.users, SENSITIVE), items_table=ds.items,
        n_users=ds.interactions.n_users, n_items=ds.interactions.n_items, k=4, sensitive=SENSITIVE,
        per_user=["ndcg", "recall"]).vectors
    rel = evaluate_rankings(ids, users=users, relevant=split.test.matrix, train=split.train.binary(), k=4)
    assert vectors.users.tolist() == rel.users.tolist() == users.tolist()
    assert sorted(vectors.per_user) == ["ndcg", "recall"]
    for m in ("ndcg", "recall"):
        np.testing.assert_allclose(vectors.per_user[m], rel.per_user[m], rtol=0, atol=1e-12)
    local = EvidenceInputs(users=users, ids=ids, per_user={}, labels={}, k=4, seed=0,
                           protected_items=popularity_groups(split.train.binary()) == "tail")
    np.testing.assert_array_equal(vectors.outcome, _outcome(local))
    assert 0 < vectors.outcome.sum() < users.size
    for got, expected in zip(vectors.exposure, _exposure(local), strict=True):
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    assert (vectors.exposure[1] == 0).any()  # empty lists have no exposure
    with pytest.raises(ValueError, match=r"per_user: expected a sequence of per-user metrics among "
                                         r"\['precision', .*\], got \['gini'\]"):
        spark_evaluate(lists=lists_frame(spark, users, ids), users=users_frame(spark, users),
                       relevant=test.frame, train=train.frame,
                       users_table=attributes_frame(spark, ds.users, SENSITIVE), items_table=ds.items,
                       n_users=ds.interactions.n_users, n_items=ds.interactions.n_items, k=4,
                       sensitive=SENSITIVE, per_user=["gini"])


@pytest.mark.ml100k
def test_movielens_als_lists_agree(spark, ml100k_dir) -> None:
    ds = load_movielens_100k(ml100k_dir)
    split = random_holdout(ds.interactions, test_fraction=0.2, random_state=0)
    users = np.flatnonzero(np.diff(split.test.matrix.indptr) > 0)
    model = ALS(factors=16, iterations=5, num_threads=1).fit(split.train.binary())
    ids, _ = model.recommend(users, k=10)
    _assert_same(_in_process(ds, split, users, ids, 10), _on_spark(spark, ds, split, users, ids, 10))
