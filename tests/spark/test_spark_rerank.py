"""Re-ranking Spark candidate lists per partition equals the in-process re-rankers."""

from __future__ import annotations


import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from recsys.engine import SparkEngineError
from recsys.errors import FairrecError
from recsys.rerank import (
    CalibratedReranker,
    CategoryShareReranker,
    ExposureBudgetReranker,
    FairShareReranker,
    UserGroupBlendReranker,
)
from recsys.rerank._spark import SPARK_RERANK_KINDS, fit_spark_reranker, spark_rerank

N_USERS, N_ITEMS, N_CAND = 37, 25, 8


@pytest.fixture(scope="module")
def world(spark):
    """Tiny training data, attributes and candidate lists with ties and padding."""
    rng = np.random.default_rng(7)
    # training: integer ratings (weights), a few users without history
    dense = rng.integers(1, 6, size=(N_USERS, N_ITEMS)) * (rng.random((N_USERS, N_ITEMS)) < 0.25)
    dense[[3, 11, 20]] = 0
    X = sp.csr_matrix(dense.astype(np.float32))
    rows, cols = X.nonzero()
    interactions = spark.createDataFrame(
        pd.DataFrame({"user": rows.astype(np.int32), "item": cols.astype(np.int32),
                      "value": np.asarray(X[rows, cols]).ravel().astype(np.float64)}))
    category = rng.choice(np.array(["a", "b", "c", "d", None], dtype=object), size=N_ITEMS)
    items = pd.DataFrame({"item_id": [f"i{i}" for i in range(N_ITEMS)], "category": category})
    gender = rng.choice(np.array(["f", "m", None], dtype=object), size=N_USERS)
    users_pd = pd.DataFrame({"user": np.arange(N_USERS, dtype=np.int64), "gender": gender})
    users = spark.createDataFrame(users_pd, "user long, gender string")
    protected = rng.random(N_ITEMS) < 0.4
    # candidates: 0..N_CAND per user (0: the user has no rows), scores on a coarse grid (ties)
    ids = np.full((N_USERS, N_CAND), -1, dtype=np.int64)
    scores = np.full((N_USERS, N_CAND), -np.inf, dtype=np.float32)
    n_per_user = rng.integers(0, N_CAND + 1, size=N_USERS)
    n_per_user[[0, 1, 2]] = [N_CAND, 2, 0]
    for u, n in enumerate(n_per_user):
        ids[u, :n] = rng.choice(N_ITEMS, size=n, replace=False)
        scores[u, :n] = np.sort(rng.integers(0, 4, size=n) / 4.0 - 0.5)[::-1]
    valid = ids >= 0
    r, c = np.nonzero(valid)
    candidates = spark.createDataFrame(
        pd.DataFrame({"user": r.astype(np.int32), "rank": (c + 1).astype(np.int32),
                      "item": ids[valid].astype(np.int32), "score": scores[valid]}),
        "user int, rank int, item int, score float").repartition(3)
    labels = pd.Series(gender).astype("string").fillna("unknown").to_numpy(dtype=object)
    codes = pd.factorize(pd.Series(category).astype("string").fillna("unknown"))[0].astype(np.int64)
    return dict(X=X, interactions=interactions, items=items, users=users, protected=protected,
                ids=ids, scores=scores, candidates=candidates, labels=labels, codes=codes)


def _in_process(kind: str, strength: float, w: dict):
    if kind == "fair_share":
        return FairShareReranker(strength=strength, alpha=0.3).fit(w["X"], protected_items=w["protected"])
    if kind == "calibration":
        return CalibratedReranker(strength=strength, smoothing=0.05).fit(w["X"], item_category=w["codes"])
    return UserGroupBlendReranker(strength=strength).fit(w["X"], user_group=w["labels"] == "f")


def _step(kind: str, strength: float) -> dict:
    return {"fair_share": {"kind": kind, "strength": strength, "alpha": 0.3, "n_candidates": N_CAND},
            "calibration": {"kind": kind, "strength": strength, "smoothing": 0.05,
                            "item_attribute": "category", "n_candidates": N_CAND},
            "user_blend": {"kind": kind, "strength": strength, "user_attribute": "gender",
                           "group": "f", "n_candidates": N_CAND}}[kind]


def _dense(pdf: pd.DataFrame, k: int, score_dtype) -> tuple[np.ndarray, np.ndarray]:
    """Collected ``user, rank, item, score`` rows as ``[N_USERS, k]`` arrays (-1 / -inf padding)."""
    ids = np.full((N_USERS, k), -1, dtype=np.int64)
    scores = np.full((N_USERS, k), -np.inf, dtype=score_dtype)
    assert not pdf.duplicated(["user", "rank"]).any()
    ids[pdf["user"], pdf["rank"] - 1] = pdf["item"]
    scores[pdf["user"], pdf["rank"] - 1] = pdf["score"]
    return ids, scores


def _assert_same(pdf: pd.DataFrame, expected: tuple[np.ndarray, np.ndarray], k: int) -> None:
    ids, scores = _dense(pdf, k, expected[1].dtype)
    np.testing.assert_array_equal(ids, expected[0])
    np.testing.assert_allclose(scores, expected[1], rtol=0, atol=1e-12)
    # ranks are 1..n without gaps: every chosen id sits before the padding
    valid = ids >= 0
    assert not (valid[:, 1:] & ~valid[:, :-1]).any()


STRENGTHS, KS = (0.0, 0.6, 1.0), (5, N_CAND + 3)  # k: fewer and more than the candidates


@pytest.mark.parametrize("kind", [k for k in SPARK_RERANK_KINDS if k != "category_share"])  # its own test below
def test_spark_rerank_equals_in_process(world, kind: str) -> None:
    """Every strength and k of a kind in one Spark job (tagged rows), compared case by case."""
    from pyspark.sql import functions as F

    w = world
    users = np.arange(N_USERS)
    frames, expected = [], {}
    for strength in STRENGTHS:
        fitted = fit_spark_reranker(_step(kind, strength), interactions=w["interactions"], items=w["items"],
                                    users=w["users"], protected_items=w["protected"])
        reference = _in_process(kind, strength, w)
        for k in KS:
            out = fitted.rerank(w["candidates"], k, num_partitions=3, block_users=7)
            assert [(f.name, f.dataType.simpleString()) for f in out.schema.fields] == [
                ("user", "int"), ("rank", "int"), ("item", "int"), ("score", "float")]
            frames.append(out.withColumns({"case": F.lit(f"{strength}/{k}"), "part": F.spark_partition_id()}))
            expected[strength, k] = reference.rerank(w["ids"], w["scores"], users=users, k=k)
    union = frames[0]
    for frame in frames[1:]:
        union = union.unionByName(frame)
    collected = union.toPandas()
    assert collected.groupby("case")["part"].nunique().min() > 1  # lists came from several partitions
    for (strength, k), want in expected.items():
        _assert_same(collected[collected["case"] == f"{strength}/{k}"], want, k)
    # the data is rich enough that re-ranking changes the lists
    for strength in STRENGTHS[1:]:
        assert not np.array_equal(expected[strength, KS[1]][0], expected[0.0, KS[1]][0])


def test_spark_side_state_equals_the_in_process_fit(world) -> None:
    w = world
    blend = fit_spark_reranker(_step("user_blend", 0.5), interactions=w["interactions"], items=w["items"],
                               users=w["users"]).reranker
    ref = _in_process("user_blend", 0.5, w)
    np.testing.assert_array_equal(blend.item_log_popularity_, ref.item_log_popularity_)
    members = {r["user"] for r in fit_spark_reranker(
        _step("user_blend", 0.5), interactions=w["interactions"], items=w["items"],
        users=w["users"]).user_columns.collect()}
    assert members == set(np.flatnonzero(ref.user_group_).tolist())


def test_double_scores_and_a_fitted_category_share(world, spark) -> None:
    """A fitted category_share re-ranks one list at a time too (its offsets are per category)."""
    w = world
    users = np.arange(N_USERS)
    scores64 = w["scores"].astype(np.float64)
    rr = CategoryShareReranker(strength=1.0, k=4).fit(
        w["X"], item_category=w["codes"], users=users, candidate_ids=w["ids"], candidate_scores=scores64)
    assert np.abs(rr.offsets_).max() > 0
    cands = w["candidates"].withColumn("score", w["candidates"]["score"].cast("double"))
    out = spark_rerank(rr, cands, 4, num_partitions=2, block_users=5)
    assert out.schema["score"].dataType.simpleString() == "double"
    _assert_same(out.toPandas(), rr.rerank(w["ids"], scores64, users=users, k=4), 4)


def test_on_spark_popularity_lists(world, spark) -> None:
    """Composes with a Spark model's own output (its column types, many tied scores)."""
    from recsys.data._spark import SparkInteractions
    from recsys.models._spark_als import SparkPopularity

    w = world
    train = SparkInteractions(w["interactions"], None, None, N_USERS, N_ITEMS)
    users_df = spark.createDataFrame(pd.DataFrame({"user": np.arange(N_USERS, dtype=np.int32)}), "user int")
    cands = SparkPopularity().fit(train).recommend(users_df, N_CAND).cache()
    pdf = cands.toPandas()
    ids, scores = _dense(pdf, N_CAND, np.float32)
    fitted = fit_spark_reranker(_step("calibration", 0.8), interactions=w["interactions"], items=w["items"])
    out = fitted.rerank(cands, 5)
    assert out.schema == cands.schema
    expected = _in_process("calibration", 0.8, w).rerank(ids, scores, users=np.arange(N_USERS), k=5)
    _assert_same(out.toPandas(), expected, 5)
    cands.unpersist()


@pytest.mark.parametrize("max_fit_users", [20, 50_000])
def test_category_share_is_fitted_on_the_in_process_sample_and_lists(world, spark, max_fit_users) -> None:
    """The offsets equal the in-process fit on the same seeded sample of training users' lists."""
    from pyspark.sql import functions as F

    w = world
    asked = []

    def candidates(users, n):
        asked.append(n)
        return (w["candidates"].filter(F.col("rank") <= n)
                .join(users.select(F.col("user").cast("int")), "user", "left_semi"))

    step = {"kind": "category_share", "strength": 0.9, "item_attribute": "category", "n_candidates": 6,
            "max_fit_users": max_fit_users}
    fitted = fit_spark_reranker(step, interactions=w["interactions"], items=w["items"],
                                candidates=candidates, k=4, seed=3)
    users = np.flatnonzero(w["X"].getnnz(axis=1) > 0)  # as training._candidate draws them
    if users.size > max_fit_users:
        users = np.sort(np.random.default_rng(3).choice(users, size=max_fit_users, replace=False))
    ref = CategoryShareReranker(strength=0.9, k=4).fit(
        w["X"], item_category=w["codes"], users=users, candidate_ids=w["ids"][users, :6],
        candidate_scores=w["scores"][users, :6])
    assert asked == [6]
    assert np.abs(ref.offsets_).max() > 0
    np.testing.assert_allclose(fitted.reranker.offsets_, ref.offsets_, rtol=0, atol=1e-12)
    np.testing.assert_allclose(fitted.reranker.target_share_, ref.target_share_, rtol=0, atol=1e-12)
    out = fitted.rerank(w["candidates"], 4, num_partitions=2, block_users=5)
    _assert_same(out.toPandas(), ref.rerank(w["ids"], w["scores"], users=np.arange(N_USERS), k=4), 4)


def test_category_share_needs_the_first_stage_lists(world) -> None:
    with pytest.raises(FairrecError, match="category_share: candidates and k are required"):
        fit_spark_reranker({"kind": "category_share", "strength": 0.5}, interactions=world["interactions"],
                           items=world["items"])


def test_exposure_budget_is_refused_naming_the_kind() -> None:
    with pytest.raises(SparkEngineError, match=r"mitigation kind 'exposure_budget'.*one list at a time"):
        fit_spark_reranker({"kind": "exposure_budget", "strength": 0.5}, interactions=None, items=pd.DataFrame())


def test_exposure_budget_reranker_is_refused_by_spark_rerank(world) -> None:
    rr = ExposureBudgetReranker(strength=0.2).fit(world["X"], protected_items=world["protected"])
    with pytest.raises(SparkEngineError, match="exposure_budget"):
        spark_rerank(rr, world["candidates"], 5)


def test_bad_inputs_are_named(world) -> None:
    w = world
    with pytest.raises(SparkEngineError, match="'two_stage'"):
        fit_spark_reranker({"kind": "two_stage"}, interactions=w["interactions"], items=w["items"])
    with pytest.raises(FairrecError, match="'nope' is not a value of 'gender'; values: f, m, unknown"):
        fit_spark_reranker({"kind": "user_blend", "strength": 0.5, "user_attribute": "gender", "group": "nope"},
                           interactions=w["interactions"], items=w["items"], users=w["users"])
    with pytest.raises(FairrecError, match="item attribute 'genre' is not in the data"):
        fit_spark_reranker({"kind": "calibration", "strength": 0.5, "item_attribute": "genre"},
                           interactions=w["interactions"], items=w["items"])
    rr = CalibratedReranker(strength=0.5).fit(w["X"], item_category=w["codes"])
    with pytest.raises(FairrecError, match="history_categories, history_weights"):
        spark_rerank(rr, w["candidates"], 5)


def test_spark_rerank_runs_no_job_and_collects_nothing(world, spark, monkeypatch) -> None:
    """Fitting calibration and building the re-ranked frame are lazy: no Spark job, no collect."""
    from pyspark.sql import DataFrame

    w = world
    for name in ("collect", "toPandas", "toLocalIterator", "take", "head", "first", "count"):
        monkeypatch.setattr(DataFrame, name, lambda *a, _n=name, **kw: pytest.fail(f"{_n} called"))
    sc = spark.sparkContext
    sc.setJobGroup("spark-rerank-lazy", "must stay empty")
    try:
        fitted = fit_spark_reranker(_step("calibration", 0.6), interactions=w["interactions"],
                                    items=w["items"])
        out = fitted.rerank(w["candidates"], 5, num_partitions=3)
        jobs = sc.statusTracker().getJobIdsForGroup("spark-rerank-lazy")
    finally:
        sc.setLocalProperty("spark.jobGroup.id", None)
    assert isinstance(out, DataFrame) and isinstance(fitted.user_columns, DataFrame)
    assert jobs == []
    # the driver's re-ranker holds a one-row placeholder, not p(c|u) of every user
    assert fitted.reranker.user_category_dist_.shape == (1, fitted.reranker.n_categories_)
