"""Spark MLlib ALS and popularity: batch top-k without training items, factors for serving."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from recsys.data import generate_synthetic, random_holdout
from recsys.data._spark import spark_from_interactions
from recsys.models._spark_als import SparkALS, SparkPopularity, als_serving_model
from recsys.errors import NotFittedError


@pytest.fixture(scope="module")
def data(spark):
    ds = generate_synthetic(n_users=60, n_items=40, n_interactions=700, random_state=5)
    split = random_holdout(ds.interactions, test_fraction=0.25, random_state=0)
    train = spark_from_interactions(spark, split.train)
    users = np.arange(ds.interactions.n_users)
    users_df = spark.createDataFrame(pd.DataFrame({"user": users}))
    return split, train, users, users_df


def _lists(frame) -> pd.DataFrame:
    return frame.toPandas().sort_values(["user", "rank"]).reset_index(drop=True)


@pytest.fixture(scope="module")
def fitted(data):
    _, train, _, _ = data
    return SparkALS(factors=8, iterations=5, regularization=0.1, random_state=1).fit(train)


def test_als_lists_exclude_training_items_and_are_full(data, fitted) -> None:
    split, _, users, users_df = data
    recs = _lists(fitted.recommend(users_df, k=10))
    seen = split.train.matrix
    assert not any(seen[u, i] for u, i in zip(recs["user"], recs["item"], strict=True))
    per_user = recs.groupby("user")["rank"].agg(["count", "max"])
    assert (per_user["count"] == 10).all() and (per_user["max"] == 10).all()
    assert set(per_user.index) == set(users[np.diff(seen.indptr) > 0])


def test_als_lists_are_the_best_unseen_items_of_the_collected_factors(data, fitted) -> None:
    split, _, _, users_df = data
    recs = _lists(fitted.recommend(users_df, k=5))
    uf, itf = fitted.factors_()
    scores = uf @ itf.T
    scores[split.train.matrix.nonzero()] = -np.inf
    for user, rows in recs.groupby("user"):
        best = np.sort(scores[user])[::-1][:5]
        np.testing.assert_allclose(np.sort(scores[user, rows["item"]])[::-1], best, atol=1e-4)
        np.testing.assert_allclose(rows["score"], scores[user, rows["item"]], atol=1e-4)


def test_serving_model_recommends_the_same_lists(data, fitted) -> None:
    split, _, users, users_df = data
    model = als_serving_model(fitted, split.train.matrix)  # the values MLlib was fitted on
    ids, _ = model.recommend(users[:20], k=5)
    recs = _lists(fitted.recommend(users_df, k=5))
    spark_ids = np.stack([recs.loc[recs["user"] == u, "item"].to_numpy() for u in users[:20]])
    assert (ids == spark_ids).mean() > 0.95  # float32 near-ties may swap neighbours


def test_popularity_ranks_unseen_items_by_training_count(data) -> None:
    split, train, users, users_df = data
    recs = _lists(SparkPopularity().fit(train).recommend(users_df, k=4))
    counts = np.bincount(split.train.matrix.indices, minlength=split.train.n_items)
    seen = split.train.matrix
    for user, rows in recs.groupby("user"):
        candidates = np.flatnonzero(seen[user].toarray()[0] == 0)
        order = candidates[np.lexsort((candidates, -counts[candidates]))][:4]
        assert rows["item"].tolist() == order.tolist()
        assert rows["score"].tolist() == counts[order].astype(float).tolist()
    assert recs["user"].nunique() == users.size


def test_unfitted_and_bad_parameters_name_the_setting(data) -> None:
    _, train, _, users_df = data
    with pytest.raises(NotFittedError, match="SparkALS: call fit"):
        SparkALS().recommend(users_df, k=3)
    with pytest.raises(ValueError, match=r"factors: expected integral >= 1, got 0"):
        SparkALS(factors=0).fit(train)
    with pytest.raises(ValueError, match=r"SparkALS.fit: the training entries are empty"):
        SparkALS().fit(train.with_frame(train.frame.limit(0)))


def test_als_never_recommends_items_without_factors_and_short_lists_stay_short(spark) -> None:
    # item 5 has no training entry (no MLlib factor); user 0 has seen items 0-3, so of the
    # items with factors only item 4 is left; user 3 has no training entry (no factor)
    from recsys.data import Interactions

    rows = [0, 0, 0, 0, 1, 1, 2, 2, 1]
    cols = [0, 1, 2, 3, 0, 4, 1, 4, 2]
    X = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(4, 6))
    inter = Interactions(matrix=X, user_ids=np.array(["a", "b", "c", "d"]),
                         item_ids=np.array([f"i{j}" for j in range(6)]))
    model = SparkALS(factors=4, iterations=3, regularization=0.1, random_state=0).fit(
        spark_from_interactions(spark, inter))
    asked = spark.createDataFrame(pd.DataFrame({"user": [0, 0, 1, 2, 3]}))  # user 0 twice
    recs = _lists(model.recommend(asked, k=3))
    assert recs.loc[recs["user"] == 0, "item"].tolist() == [4]
    assert set(recs.loc[recs["user"] == 1, "item"]) == {1, 3}
    assert set(recs.loc[recs["user"] == 2, "item"]) == {0, 2, 3}
    assert 5 not in set(recs["item"]) and 3 not in set(recs["user"])
    assert recs.groupby("user")["rank"].apply(list).to_dict() == {0: [1], 1: [1, 2], 2: [1, 2, 3]}
    # 9 entries over the 3 users who have any: MLlib's regParam is the mean user's ridge / 3
    assert model.mean_user_entries_ == 3.0 and model.reg_param_ == pytest.approx(0.1 / 3, rel=1e-15)


def test_item_factors_are_collected_once_per_fit_and_handed_out_as_copies(fitted) -> None:
    cached, known = fitted._item_factors()
    assert fitted._item_factors()[0] is cached and not cached.flags.writeable and known.all()
    _, items = fitted.factors_()
    assert items is not cached and items.flags.writeable and np.array_equal(items, cached)
