"""The evaluation contract on Spark: the same metrics, under the same names, as DataFrame work.

:func:`spark_evaluate` scores ranked lists held as a Spark DataFrame
(``user, rank, item``: one row per non-padding entry) against held-out and
training interactions held as DataFrames, and returns the numbers
``evaluate_rankings(...).summary()`` and ``fairness_metrics(...).flat()``
give in-process (``tests/spark/test_evaluation_contract.py`` asserts they
agree to 1e-9).

Where the work happens
    Per-user relevance metrics are DataFrame columns (one aggregation of the
    list entries joined with the held-out entries); group fairness is
    ``groupBy`` of those columns by each sensitive attribute; bias
    amplification is ``groupBy`` of the training and list entries by (user
    group, item category). Only item-level and group-level vectors reach the
    driver: per-item training counts (popularity, head/tail), per-item
    exposure and relevant counts, and the group tables. Nothing of size
    ``n_users`` or ``n_interactions`` is collected, unless the gate's evidence
    asks for it (``per_user=``): then a few floats per evaluated user (the
    named per-user metrics, the 0/1 outcome and the protected and total
    exposure of the list, reduced from the list entries in Spark) are
    collected as :class:`UserVectors`. The item table (one row per item) is a
    pandas frame on the driver, like the collected item factors of the Spark ALS.

Written by hand: pyspark's ``RankingEvaluator`` returns one mean per call and
no per-user column, so it cannot be grouped by attribute; the tests use it as
a cross-check where its definitions agree (precision, nDCG and MAP at k, see
``tests/spark/test_ranking_evaluator.py``). The small driver-side steps reuse
the in-process helpers (head/tail, exposure report, amplification), so both
engines share one definition of each.

pyspark is imported inside the functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from evaluation._exposure import (
    _amplification,
    _check_head_share,
    _check_weighting,
    _exposure_report,
    _head_tail,
    _is_head,
    _shares,
    _tail_share,
)
from evaluation._fairness import (
    FOUR_FIFTHS,
    UNKNOWN,
    GroupQuality,
    OutcomeParity,
    _check_boot,
    _encode_groups,
    _spread,
    group_quality,
)
from evaluation._fairness_metrics import _column
from evaluation._fairness_report import FairnessReport
from evaluation._ranking import log_rank_weight

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

__all__ = ["SparkEvaluation", "UserVectors", "spark_evaluate"]

#: Per-user metrics, in the order of ``RelevanceReport.per_user``.
_METRICS = ("precision", "recall", "ndcg", "map", "mrr", "hit_rate", "avg_popularity", "novelty")


@dataclass(frozen=True, kw_only=True, eq=False)
class UserVectors:
    """Per-user vectors of the evaluated users (those with a relevant item), ascending by ``users``.

    ``per_user`` holds the requested metrics (``RelevanceReport.per_user`` names);
    ``outcome`` is 1.0 when the top-k holds an item of the protected group;
    ``exposure`` is the list's (protected, total) rank-weighted exposure.
    """

    users: np.ndarray
    per_user: dict[str, np.ndarray]
    outcome: np.ndarray
    exposure: tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True, kw_only=True, eq=False)
class SparkEvaluation:
    """What :func:`spark_evaluate` returns: the flat numbers and the fairness report.

    ``summary`` holds the names of ``RelevanceReport.summary()``, ``fairness``
    is a :class:`FairnessReport` (``flat()`` and ``to_json()`` as in-process);
    ``vectors`` the collected per-user vectors when ``per_user`` was given.
    """

    summary: dict[str, float]
    fairness: FairnessReport
    vectors: UserVectors | None = None

    @property
    def metrics(self) -> dict[str, float]:
        """``summary`` then ``fairness.flat()``: the run's ``metrics.json``."""
        return {**self.summary, **self.fairness.flat()}


def _item_table(items_table: pd.DataFrame, n_items: int, name: str) -> pd.DataFrame:
    if len(items_table) != n_items:
        raise ValueError(f"{name}: expected one row per item ({n_items}), got {len(items_table)}")
    return items_table


def spark_evaluate(
    *,
    lists: DataFrame,
    users: DataFrame,
    relevant: DataFrame,
    train: DataFrame,
    users_table: DataFrame,
    items_table: pd.DataFrame,
    n_users: int,
    n_items: int,
    k: int,
    sensitive: Sequence[str],
    item_group: str = "popularity",
    protected_group: str = "tail",
    item_category: str | None = "category",
    diversity_category: str | None = "category",
    head_share: float = 0.8,
    amplification_weighting: str = "user",
    n_boot: int | None = None,
    ci: float = 0.95,
    random_state: int | None = 0,
    per_user: Sequence[str] | None = None,
) -> SparkEvaluation:
    """Relevance and fairness of ranked lists, computed by Spark.

    Parameters
    ----------
    lists : DataFrame
        ``user, rank, item``: rank ``1..width`` of each non-padding entry
        (a padded list simply has fewer rows); ranks above ``k`` are ignored.
    users : DataFrame
        ``user``: every user given a list, including empty ones (the rows of
        ``ids`` in-process).
    relevant, train : DataFrame
        ``user, item`` entries (one per pair): held-out relevance and training.
    users_table : DataFrame
        ``user`` and the ``sensitive`` columns, one row per internal user.
    items_table : pandas DataFrame
        One row per internal item, in index order: ``item_category``,
        ``diversity_category`` and (unless ``"popularity"``) ``item_group``.
    n_users, n_items, k : int
    sensitive, item_group, protected_group, item_category, head_share, amplification_weighting
        As for :func:`evaluation.fairness_metrics`.
    diversity_category : str or None
        Item column for intra-list diversity (a run uses ``category``).
    n_boot, ci, random_state : int or None, float, int or None
        As for :func:`evaluation.fairness_metrics`: with ``n_boot``, percentile
        bootstrap intervals of every group mean, difference and ratio. The
        resampling runs on the driver (fairlearn's ``MetricFrame`` over the
        collected per-user metrics and group labels, users in index order as
        in-process, so the intervals equal the in-process ones): O(evaluated
        users) floats per metric, as the gate's vectors.
    per_user : sequence of str or None
        When given, collect these per-user metrics (``"ndcg"``, ...) with the
        outcome and exposure vectors into ``vectors`` (O(evaluated users) on
        the driver, for the gate's evidence); None collects nothing per user.

    Returns
    -------
    SparkEvaluation
    """
    from pyspark.sql import functions as F

    _check_boot(n_boot, ci)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k: expected a positive integer, got {k!r}")
    if isinstance(sensitive, str):
        raise ValueError(f"sensitive: expected a sequence of column names, got {sensitive!r}")
    _check_head_share(head_share)
    allowed = list(_METRICS) + (["diversity"] if diversity_category is not None else [])
    if per_user is not None and (isinstance(per_user, str) or not set(per_user) <= set(allowed)):
        raise ValueError(f"per_user: expected a sequence of per-user metrics among {allowed}, "
                         f"got {per_user!r}")
    if item_category is not None and sensitive:
        _check_weighting(amplification_weighting)
    items_table = _item_table(items_table, n_items, "items_table")
    k = int(k)

    train, relevant = _nonzero(train), _nonzero(relevant)
    # ---- item-level facts, on the driver (n_items values each)
    counts = _per_item(train.groupBy("item").count(), "count", n_items).astype(np.int64)
    n_train = int(counts.sum())
    if n_train == 0:
        raise ValueError("train: expected at least one interaction, got none")
    popularity = counts / np.float64(n_users)
    bits = -np.log2(np.maximum(popularity, 0.5 / n_users))
    is_tail = ~_is_head(counts, n_train, head_share)
    if item_group == "popularity":
        groups = _head_tail(is_tail)
    else:
        groups = _encode_groups(_column(items_table, item_group, name="items_table"),
                                name="item_group")
    if protected_group not in groups.names:
        raise ValueError(f"protected_group: expected one of the {item_group!r} groups "
                         f"{groups.names}, got {protected_group!r}")
    protected = groups.codes == groups.names.index(protected_group)
    categories = None
    if item_category is not None:
        categories = _encode_groups(_column(items_table, item_category, name="items_table"),
                                    name="item_category", n=n_items)
    diversity = None
    if diversity_category is not None:
        diversity = pd.factorize(items_table[diversity_category])[0].astype(np.int64)
    w = log_rank_weight(k)
    spark = lists.sparkSession
    info = pd.DataFrame({"item": np.arange(n_items, dtype=np.int64), "pop": popularity,
                         "bits": bits, "protected": protected,
                         "cat": categories.codes if categories is not None else 0,
                         "div": diversity if diversity is not None else 0})
    item_info = F.broadcast(spark.createDataFrame(info))
    weights = F.array(*[F.lit(float(x)) for x in w])
    ideal = F.array(*[F.lit(float(x)) for x in np.cumsum(w)])

    # ---- per-entry columns, then per-user columns
    rel = relevant.select("user", "item", F.lit(True).alias("hit"))
    entries = (lists.filter(F.col("rank") <= k).select("user", "rank", "item")
               .join(item_info, "item").join(rel, ["user", "item"], "left")
               .withColumn("hit", F.coalesce("hit", F.lit(False)))
               .withColumn("w", F.element_at(weights, F.col("rank")))).cache()
    from pyspark.sql import Window

    cum = F.sum(F.col("hit").cast("long")).over(Window.partitionBy("user").orderBy("rank"))
    hit = F.col("hit")
    per_list = (entries.withColumn("cum", cum).groupBy("user").agg(
        F.count(F.lit(1)).alias("m"),
        F.sum(hit.cast("long")).alias("n_hits"),
        F.sum(F.when(hit, F.col("w")).otherwise(0.0)).alias("dcg"),
        F.min(F.when(hit, F.col("rank"))).alias("first"),
        F.sum(F.when(hit, F.col("cum") / F.col("rank")).otherwise(0.0)).alias("ap"),
        F.sum("pop").alias("pop_sum"), F.sum("bits").alias("bits_sum"),
        F.sum(F.col("protected").cast("long")).alias("n_protected"),
        F.sum(F.when(F.col("protected"), F.col("w")).otherwise(0.0)).alias("exposure_protected"),
        F.sum("w").alias("exposure_total"),
    ))
    same = (entries.groupBy("user", "div").count()
            .groupBy("user").agg(F.sum(F.col("count") * (F.col("count") - 1) / 2).alias("same")))
    n_rel = relevant.groupBy("user").agg(F.count(F.lit(1)).alias("n_rel"))
    owners = users.select("user").distinct()
    per_user_frame = (owners.join(per_list, "user", "left").join(same, "user", "left")
                      .join(n_rel, "user", "left").fillna(0, ["m", "n_hits", "n_protected"])
                      .fillna(0.0, ["dcg", "ap", "same", "exposure_protected", "exposure_total"])
                      .fillna(0, ["n_rel"])).cache()
    evaluated = _metric_columns(per_user_frame.filter(F.col("n_rel") > 0), k, ideal,
                                diversity is not None).cache()
    metric_names = list(_METRICS) + (["diversity"] if diversity is not None else [])

    # ---- summary (RelevanceReport.summary names)
    aggs = [F.avg(m).alias(m) for m in metric_names]
    row = evaluated.agg(F.count(F.lit(1)).alias("n"), *aggs,
                        F.avg(F.col("outcome").cast("double")).alias("outcome"),
                        F.avg("share").alias("share")).first()
    if row["n"] == 0:
        raise ValueError("relevant: none of the users with a list has a relevant item; "
                         "nothing to evaluate")
    summary = {f"{m}_at_{k}": _num(row[m]) for m in metric_names}
    by_item = entries.groupBy("item").agg(F.count(F.lit(1)).alias("n"), F.sum("w").alias("e")).toPandas()
    rec_counts = _dense(by_item, "n", n_items)
    exposure = _dense(by_item, "e", n_items)
    summary[f"coverage_at_{k}"] = float(np.count_nonzero(rec_counts) / n_items)
    summary[f"exposure_gini_at_{k}"] = _gini(rec_counts)
    summary["n_users_evaluated"] = float(row["n"])
    overall = {m: _num(row[m]) for m in metric_names}

    # ---- consumer side, per sensitive attribute
    labelled = evaluated.join(_labels(users_table, sensitive), "user", "left")
    quality, parity, eo = {}, {}, {}
    for attr in sensitive:
        quality[attr], parity[attr] = _by_group(labelled, attr, metric_names, overall,
                                                float(row["outcome"]))
        eo[attr] = _spread(np.array(list(quality[attr].by_group["recall"].values())))
    if n_boot is not None and sensitive:
        quality = _with_intervals(quality, labelled, metric_names, n_boot=int(n_boot), ci=ci,
                                  random_state=random_state)

    # ---- item side: exposure and relevant entries per item, grouped on the driver
    rel_items = _per_item(relevant.join(owners, "user", "left_semi").groupBy("item").count(),
                          "count", n_items)
    amplification = {}
    if categories is not None and sensitive:
        amplification = _amplification_by_attribute(
            entries, per_user_frame, train, users_table, owners, sensitive, categories,
            amplification_weighting, spark,
        )
    vectors = None if per_user is None else _collect_vectors(evaluated, list(per_user))
    for frame in (entries, per_user_frame, evaluated):
        frame.unpersist()
    report = FairnessReport(
        k=k, quality=quality, parity=parity, equal_opportunity=eo, item_group=item_group,
        protected_group=protected_group, exposure=_exposure_report(exposure, groups, rel_items),
        contains_rate=float(row["outcome"]), list_share=_num(row["share"]),
        long_tail_share=_tail_share(exposure, is_tail), item_category=item_category,
        amplification=amplification,
    )
    return SparkEvaluation(summary=summary, fairness=report, vectors=vectors)


def _with_intervals(quality: dict[str, GroupQuality], labelled: DataFrame, metrics: list[str], *,
                    n_boot: int, ci: float, random_state: int | None) -> dict[str, GroupQuality]:
    """``quality`` with bootstrap intervals from the collected per-user metrics and labels.

    The bootstrap is fairlearn's (:func:`evaluation.group_quality`), on the
    driver: the users in index order, as the in-process report resamples them.
    """
    from pyspark.sql import functions as F

    labels = [c for c in labelled.columns if c.startswith("_g_")]
    pdf = (labelled.select("user", *[F.col(m).cast("double").alias(m) for m in metrics], *labels)
           .orderBy("user").toPandas())
    vectors = {m: pdf[m].to_numpy(dtype=np.float64) for m in metrics}
    out = {}
    for attr, gq in quality.items():
        boot = group_quality(vectors, pd.Series(pdf[f"_g_{attr}"].astype(str).to_numpy(), name=attr),
                             n_boot=n_boot, ci=ci, random_state=random_state)
        out[attr] = replace(gq, ci=boot.ci, difference_ci=boot.difference_ci, ratio_ci=boot.ratio_ci,
                            ci_level=boot.ci_level)
    return out


def _collect_vectors(evaluated: DataFrame, metrics: list[str]) -> UserVectors:
    """The gate's per-user vectors, reduced in Spark to a few floats per user, then collected.

    This is O(evaluated users) on the driver: about (3 + len(metrics)) * 8 bytes
    per user plus the id, so ~10^8 users (a few GB) is where it stops fitting a
    driver; past that the gate's bootstrap would have to run in Spark too.
    """
    from pyspark.sql import functions as F

    cols = [F.col(m).cast("double").alias(m) for m in metrics]
    pdf = (evaluated.select("user", *cols, F.col("outcome").cast("double").alias("outcome"),
                            "exposure_protected", "exposure_total")
           .orderBy("user").toPandas())
    return UserVectors(
        users=pdf["user"].to_numpy(dtype=np.int64),
        per_user={m: pdf[m].to_numpy(dtype=np.float64) for m in metrics},
        outcome=pdf["outcome"].to_numpy(dtype=np.float64),
        exposure=(pdf["exposure_protected"].to_numpy(dtype=np.float64),
                  pdf["exposure_total"].to_numpy(dtype=np.float64)),
    )


def _nonzero(entries: DataFrame) -> DataFrame:
    """The stored nonzero entries (``value != 0`` when there is a value column), as ``user, item``."""
    if "value" in entries.columns:
        entries = entries.filter("value != 0")
    return entries.select("user", "item")


def _num(value: object) -> float:
    return float("nan") if value is None else float(value)


def _per_item(frame: DataFrame, column: str, n_items: int) -> np.ndarray:
    """A per-item aggregate as a dense vector (items without a row are 0)."""
    return _dense(frame.select("item", column).toPandas(), column, n_items)


def _dense(pdf: pd.DataFrame, column: str, n_items: int) -> np.ndarray:
    out = np.zeros(n_items, dtype=np.float64)
    out[pdf["item"].to_numpy(dtype=np.int64)] = pdf[column].to_numpy(dtype=np.float64)
    return out


def _gini(counts: np.ndarray) -> float:
    """:func:`evaluation.exposure_gini` from per-item recommendation counts."""
    n = counts.size
    ordered = np.sort(counts)
    total = ordered.sum()
    if total == 0:
        return 0.0
    coef = 2.0 * np.arange(1, n + 1, dtype=np.float64) - n - 1.0
    return float(coef @ ordered / (n * total))


def _metric_columns(per_user: DataFrame, k: int, ideal: Column, diversity: bool) -> DataFrame:
    """The per-user metrics of ``evaluate_rankings`` from the per-list sums."""
    from pyspark.sql import functions as F

    m, hits, n_rel = F.col("m"), F.col("n_hits"), F.col("n_rel")
    cut = F.least(n_rel, F.lit(k))
    cols = {
        "precision": hits / F.lit(float(k)),
        "recall": hits / n_rel,
        "ndcg": F.col("dcg") / F.element_at(ideal, F.greatest(cut, F.lit(1)).cast("int")),
        "map": F.col("ap") / cut,
        "mrr": F.when(F.col("first").isNotNull(), 1.0 / F.col("first")).otherwise(0.0),
        "hit_rate": (hits > 0).cast("double"),
        "avg_popularity": F.when(m > 0, F.col("pop_sum") / m),
        "novelty": F.when(m > 0, F.col("bits_sum") / m),
        "outcome": F.col("n_protected") > 0,
        "share": F.when(m > 0, F.col("n_protected") / m),
    }
    if diversity:
        pairs = m * (m - 1) / 2
        cols["diversity"] = F.when(m >= 2, (pairs - F.col("same")) / pairs).otherwise(0.0)
    return per_user.withColumns(cols)


def _labels(users_table: DataFrame, sensitive: Sequence[str]) -> DataFrame:
    """``user`` and each attribute as a string label, missing values as ``"unknown"``."""
    from pyspark.sql import functions as F

    missing = [a for a in sensitive if a not in users_table.columns]
    if missing:
        raise ValueError(f"users_table: no column {missing[0]!r}; available: {users_table.columns}")
    return users_table.select(
        "user", *[F.coalesce(F.col(f"`{a}`").cast("string"), F.lit(UNKNOWN)).alias(f"_g_{a}")
                  for a in sensitive])


def _by_group(labelled: DataFrame, attr: str, metrics: list[str], overall: dict[str, float],
              outcome_rate: float) -> tuple[GroupQuality, OutcomeParity]:
    """Group means of every per-user metric and of the outcome (fairlearn's group means)."""
    from pyspark.sql import functions as F

    g = f"_g_{attr}"
    aggs = [F.count(F.lit(1)).alias("_n"), F.avg(F.col("outcome").cast("double")).alias("_o")]
    aggs += [F.avg(m).alias(m) for m in metrics]
    table = labelled.groupBy(g).agg(*aggs).toPandas()
    table[g] = table[g].astype(str)
    table = table.sort_values(g).reset_index(drop=True)
    names = table[g].tolist()
    by_group, difference, ratio = {}, {}, {}
    for m in metrics:
        means = table[m].to_numpy(dtype=np.float64)  # None (no defined value) becomes nan
        by_group[m] = dict(zip(names, means.tolist(), strict=True))
        difference[m], ratio[m] = _spread(means)
    counts = dict(zip(names, table["_n"].astype(int).tolist(), strict=True))
    quality = GroupQuality(attribute=attr, by_group=by_group, overall=dict(overall),
                           difference=difference, ratio=ratio, counts=counts)
    rates = table["_o"].to_numpy(dtype=np.float64)
    dpd, dpr = _spread(rates)
    parity = OutcomeParity(
        attribute=attr, rates=dict(zip(names, rates.tolist(), strict=True)), counts=counts,
        overall=outcome_rate, demographic_parity_difference=dpd, demographic_parity_ratio=dpr,
        four_fifths_violated=bool(dpr < FOUR_FIFTHS),
    )
    return quality, parity


def _amplification_by_attribute(entries: DataFrame, per_user: DataFrame, train: DataFrame,
                                users_table: DataFrame, owners: DataFrame,
                                sensitive: Sequence[str], categories, weighting: str,  # noqa: ANN001
                                spark) -> dict:  # noqa: ANN001
    """:func:`bias_amplification` per attribute from (user group, category) sums."""
    from pyspark.sql import functions as F

    labels = _labels(users_table, sensitive)
    cats = F.broadcast(spark.createDataFrame(pd.DataFrame({
        "item": np.arange(categories.codes.size, dtype=np.int64), "cat": categories.codes})))
    n_cats = len(categories.names)
    tr = train.select("user", "item").join(cats, "item")
    if weighting == "user":  # each list user's history weighs 1 / its length; others 0
        length = train.groupBy("user").agg(F.count(F.lit(1)).alias("_len"))
        tr = (tr.join(owners, "user", "left_semi").join(length, "user")
              .withColumn("_w", 1.0 / F.col("_len")))
        rec = (entries.join(per_user.filter("m > 0").select("user", "m"), "user")
               .withColumn("_w", 1.0 / F.col("m")))
    else:
        tr = tr.withColumn("_w", F.lit(1.0))
        rec = entries.withColumn("_w", F.lit(1.0))
    out = {}
    distinct = labels.agg(*[F.collect_set(f"_g_{a}").alias(a) for a in sensitive]).first()
    for attr in sensitive:
        g = f"_g_{attr}"
        names = sorted(str(v) for v in distinct[attr])
        index = {name: i for i, name in enumerate(names)}
        shares = []
        for side in (tr, rec):
            totals = np.zeros((len(names), n_cats))
            rows = (side.join(labels.select("user", g), "user").groupBy(g, "cat")
                    .agg(F.sum("_w").alias("s")).collect())
            for r in rows:
                totals[index[str(r[g])], int(r["cat"])] = float(r["s"])
            shares.append(_shares(totals))
        out[attr] = _amplification(shares[0], shares[1], names, categories.names)
    return out
