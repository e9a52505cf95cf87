"""Cross-check with pyspark's own RankingEvaluator where the definitions agree.

Agree (binary relevance, users with at least one held-out item): precision@k
(hits / k, also for short lists), recall@k, nDCG@k (ideal DCG over
min(n_relevant, k) ranks) and MAP@k (``meanAveragePrecisionAtK``: divided by
min(n_relevant, k)). Differ: ``meanAveragePrecision`` without k divides by
all relevant items; RankingEvaluator counts a user without relevant items
as 0 where fairrec leaves them out; it has no per-user column, so it cannot
be grouped by a sensitive attribute, which is why fairrec computes its own.
"""

from __future__ import annotations

import numpy as np
import pytest

from evaluation import evaluate_rankings
from recsys.data import generate_synthetic, random_holdout
from tests.spark.conftest import lists_frame


def test_spark_ranking_evaluator_agrees_with_evaluate_rankings(spark) -> None:
    from pyspark.ml.evaluation import RankingEvaluator
    from pyspark.sql import functions as F

    ds = generate_synthetic(n_users=70, n_items=30, n_interactions=800, random_state=2)
    split = random_holdout(ds.interactions, test_fraction=0.3, random_state=0)
    users = np.flatnonzero(np.diff(split.test.matrix.indptr) > 0)
    rng = np.random.default_rng(0)
    ids = np.stack([rng.choice(30, size=6, replace=False) for _ in users])
    ids[::4, 4:] = -1  # some short lists
    full_report = evaluate_rankings(ids, users=users, relevant=split.test.matrix,
                                    train=split.train.binary(), k=6)
    report = full_report.summary()
    ordered = (lists_frame(spark, users, ids).groupBy("user")
               .agg(F.sort_array(F.collect_list(F.struct("rank", "item"))).alias("l"))
               .select("user", F.col("l.item").cast("array<double>").alias("prediction")))
    rows, cols = split.test.matrix.nonzero()
    labels = (spark.createDataFrame([(int(u), float(i)) for u, i in zip(rows, cols, strict=True)],
                                    "user long, item double")
              .groupBy("user").agg(F.collect_list("item").alias("label")))
    frame = labels.join(ordered, "user", "left").withColumn(
        "prediction", F.coalesce("prediction", F.array().cast("array<double>")))
    evaluator = RankingEvaluator(k=6)
    for ours, theirs in (("precision", "precisionAtK"), ("recall", "recallAtK"), ("ndcg", "ndcgAtK"),
                         ("map", "meanAveragePrecisionAtK")):
        value = evaluator.evaluate(frame, {evaluator.metricName: theirs})
        assert value == pytest.approx(report[f"{ours}_at_6"], abs=1e-12), ours
    # without k, MAP divides each user's precision sum by all relevant items, not min(n_relevant, k)
    n_rel = np.diff(split.test.matrix.indptr)[full_report.users]
    expected = np.mean(full_report.per_user["map"] * np.minimum(n_rel, 6) / n_rel)
    full = evaluator.evaluate(frame, {evaluator.metricName: "meanAveragePrecision"})
    assert full == pytest.approx(expected, abs=1e-12)
