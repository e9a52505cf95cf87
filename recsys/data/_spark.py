"""The Spark engine's data: interactions as a DataFrame, read by Spark, split by Spark.

A :class:`SparkInteractions` is the Spark twin of :class:`Interactions`: a
DataFrame ``user, item, value[, timestamp]`` of internal indices (the same
sorted vocabularies as the in-process loaders build) plus the two vocabulary
frames. The splits have the in-process semantics (see
:mod:`recsys.data._split`): the same per-user counts for the random holdout,
the same entries for leave-last-k and the time cutoff. Nothing here collects
the interactions to the driver, except :func:`collect_interactions`, which
exists for tests and for small data.

pyspark is imported inside the functions.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from recsys.data._types import Interactions
from recsys.errors import DataError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = [
    "SparkInteractions",
    "SparkSplit",
    "collect_interactions",
    "read_table_spark",
    "spark_from_interactions",
    "spark_leave_last_k",
    "spark_random_holdout",
    "spark_relevance_threshold",
    "spark_time_cutoff",
]

_OUR_COLUMNS = ("user_id", "item_id", "rating", "timestamp")


@dataclass(frozen=True, eq=False)
class SparkInteractions:
    """Interactions as a Spark DataFrame of internal indices, with the vocabularies.

    Parameters
    ----------
    frame : DataFrame
        ``user`` (int), ``item`` (int), ``value`` (double) and, when
        ``has_timestamps``, ``timestamp`` (long seconds).
    user_vocab, item_vocab : DataFrame
        ``user, user_id`` and ``item, item_id``: internal index to external id,
        indices ``0..n-1`` in ascending id order.
    n_users, n_items : int
    has_ratings, has_timestamps : bool
    """

    frame: DataFrame
    user_vocab: DataFrame
    item_vocab: DataFrame
    n_users: int
    n_items: int
    has_ratings: bool = False
    has_timestamps: bool = False

    def with_frame(self, frame: DataFrame) -> SparkInteractions:
        """The same vocabularies over other entries (used by the splits)."""
        return SparkInteractions(frame, self.user_vocab, self.item_vocab, self.n_users,
                                 self.n_items, self.has_ratings, self.has_timestamps)


@dataclass(frozen=True, eq=False)
class SparkSplit:
    """A train/test pair on the same vocabularies."""

    train: SparkInteractions
    test: SparkInteractions


# ---------------------------------------------------------------- reading
def _read(spark: SparkSession, path: Path) -> DataFrame:
    """A CSV or Parquet file, or a directory of Parquet parts."""
    if path.is_dir():
        parts = [p for p in path.rglob("*") if p.suffix.lower() in (".parquet", ".pq")]
        if not parts:
            raise DataError(f"{path}: expected a directory of Parquet parts (*.parquet), found none")
        return spark.read.parquet(str(path))
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return spark.read.csv(str(path), header=True, inferSchema=True)
    if suffix in (".parquet", ".pq"):
        return spark.read.parquet(str(path))
    raise DataError(f"{path}: expected a file ending in .csv, .parquet, .pq or a directory, got {suffix!r}")


def _vocabulary(frame: DataFrame, column: str, index: str) -> DataFrame:
    """Distinct ids in ascending order, numbered from 0 (``zipWithIndex`` over the sorted ids)."""
    ids = frame.select(column).distinct().orderBy(column)
    return ids.rdd.zipWithIndex().map(lambda pair: (int(pair[1]), pair[0][0])).toDF([index, column])


def read_table_spark(
    spark: SparkSession,
    *,
    interactions: str | Path,
    columns: dict[str, str] | None = None,
    implicit_weight: float = 1.0,
) -> SparkInteractions:
    """Read the ``table`` loader's interactions with Spark (the rules of :func:`load_table`).

    Parameters
    ----------
    spark : SparkSession
    interactions : path
        A ``.csv``, ``.parquet`` or ``.pq`` file, or a directory of Parquet parts.
    columns : dict, optional
        Our column name -> the files' column name.
    implicit_weight : float
        The value of every interaction when there is no rating column.

    Raises
    ------
    DataError
        Missing file or column, no rows, missing ids, non-numeric ratings or
        timestamps, duplicate (user, item) rows; the message names the file.
    """
    from pyspark.sql import functions as F

    names = {c: (columns or {}).get(c, c) for c in _OUR_COLUMNS}
    path = Path(interactions)
    raw = _read(spark, path)
    required = ["user_id", "item_id"] + [c for c in ("rating", "timestamp") if c in (columns or {})]
    for ours in required:
        if names[ours] not in raw.columns:
            raise DataError(f"{path}: missing required column {names[ours]!r} ({ours}); "
                            f"found columns {raw.columns}")
    present = [c for c in _OUR_COLUMNS if names[c] in raw.columns]
    frame = raw.select(*[F.col(f"`{names[c]}`").alias(c) for c in present])
    return _index(frame, source=str(path), implicit_weight=implicit_weight)


def _index(frame: DataFrame, *, source: str, implicit_weight: float) -> SparkInteractions:
    from pyspark.sql import functions as F

    has_ratings, has_ts = "rating" in frame.columns, "timestamp" in frame.columns
    checks = [F.count(F.lit(1)).alias("n"),
              F.sum(F.col("user_id").isNull().cast("long")).alias("null_user"),
              F.sum(F.col("item_id").isNull().cast("long")).alias("null_item")]
    if has_ratings:
        rating = F.col("rating").cast("double")
        checks.append(F.sum((rating.isNull() | F.isnan(rating)).cast("long")).alias("bad_rating"))
    if has_ts:
        frame = frame.withColumn("timestamp", _seconds(frame, "timestamp"))
        checks.append(F.sum(F.col("timestamp").isNull().cast("long")).alias("bad_ts"))
    row = frame.agg(*checks).first()
    if row["n"] == 0:
        raise DataError(f"{source}: the file has no rows (expected at least one)")
    for col in ("user", "item"):
        if row[f"null_{col}"]:
            raise DataError(f"{source}: column '{col}_id' must not have missing values, "
                            f"got {row[f'null_{col}']}")
    if has_ratings and row["bad_rating"]:
        raise DataError(f"{source}: column 'rating' must be numeric, got {row['bad_rating']} "
                        "non-numeric value(s)")
    if has_ts and row["bad_ts"]:
        raise DataError(f"{source}: column 'timestamp' must hold integer seconds or ISO dates, "
                        f"got {row['bad_ts']} other value(s)")
    dup = frame.groupBy("user_id", "item_id").count().filter("count > 1").limit(1).collect()
    if dup:
        raise DataError(f"{source}: duplicate (user_id, item_id) pair ({dup[0]['user_id']!r}, "
                        f"{dup[0]['item_id']!r}); expected one row per pair (aggregate duplicates "
                        "before loading)")
    users = _vocabulary(frame, "user_id", "user").cache()
    items = _vocabulary(frame, "item_id", "item").cache()
    value = (F.col("rating").cast("float").cast("double") if has_ratings
             else F.lit(float(np.float32(implicit_weight))))
    out = frame.join(users, "user_id").join(items, "item_id")
    cols = [F.col("user").cast("int"), F.col("item").cast("int"), value.alias("value")]
    if has_ts:
        cols.append(F.col("timestamp"))
    return SparkInteractions(out.select(*cols), users, items, users.count(), items.count(),
                             has_ratings, has_ts)


def _seconds(frame: DataFrame, column: str):  # noqa: ANN202 - a pyspark Column
    """Integer seconds from integer, float, timestamp or ISO-date-string values (null if neither)."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    dtype = frame.schema[column].dataType
    col = F.col(column)
    if isinstance(dtype, (T.IntegerType, T.LongType, T.ShortType, T.ByteType)):
        return col.cast("long")
    if isinstance(dtype, (T.FloatType, T.DoubleType, T.DecimalType)):
        return F.floor(col.cast("double")).cast("long")
    if isinstance(dtype, (T.TimestampType, T.TimestampNTZType, T.DateType)):
        return F.unix_timestamp(col.cast("timestamp"))
    return F.unix_timestamp(F.to_timestamp(col))


def spark_from_interactions(spark: SparkSession, data: Interactions) -> SparkInteractions:
    """An in-process :class:`Interactions` as Spark data (same indices and vocabularies).

    For data that starts in-process (the synthetic generator, MovieLens 100K)
    and for tests; a cluster reads files with :func:`read_table_spark`.
    """
    m = data.matrix
    frame = pd.DataFrame({"user": data.row_index().astype(np.int32),
                          "item": m.indices.astype(np.int32),
                          "value": m.data.astype(np.float64)})
    if data.timestamps is not None:
        frame["timestamp"] = data.timestamps.astype(np.int64)
    users = pd.DataFrame({"user": np.arange(data.n_users, dtype=np.int64),
                          "user_id": data.user_ids.astype(str)})
    items = pd.DataFrame({"item": np.arange(data.n_items, dtype=np.int64),
                          "item_id": data.item_ids.astype(str)})
    return SparkInteractions(spark.createDataFrame(frame), spark.createDataFrame(users),
                             spark.createDataFrame(items), data.n_users, data.n_items,
                             data.has_ratings, data.timestamps is not None)


def collect_interactions(data: SparkInteractions, *, user_ids: np.ndarray | None = None,
                         item_ids: np.ndarray | None = None) -> Interactions:
    """Collect Spark interactions into an in-process :class:`Interactions` (small data only).

    Vocabulary ids are collected too unless given.
    """
    frame = data.frame.toPandas()
    if user_ids is None:
        user_ids = data.user_vocab.orderBy("user").toPandas()["user_id"].to_numpy()
    if item_ids is None:
        item_ids = data.item_vocab.orderBy("item").toPandas()["item_id"].to_numpy()
    return Interactions.from_arrays(
        user_index=frame["user"].to_numpy(), item_index=frame["item"].to_numpy(),
        values=frame["value"].to_numpy(), user_ids=user_ids, item_ids=item_ids,
        timestamps=frame["timestamp"].to_numpy() if data.has_timestamps else None,
        has_ratings=data.has_ratings,
    )


# ----------------------------------------------------------------- splits
def _check_fraction(name: str, value: object) -> float:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and 0 < value < 1
    if not ok:
        raise ValueError(f"{name}: expected a number in the open interval (0, 1), got {value!r}")
    return float(value)


def _check_int(name: str, value: object, *, low: int) -> int:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < low:
        raise ValueError(f"{name}: expected an integer >= {low}, got {value!r}")
    return int(value)


def _split(data: SparkInteractions, marked: DataFrame) -> SparkSplit:
    cols = [c for c in data.frame.columns]
    return SparkSplit(train=data.with_frame(marked.filter("NOT is_test").select(*cols)),
                      test=data.with_frame(marked.filter("is_test").select(*cols)))


def _rank_split(data: SparkInteractions, n_test, order: list) -> SparkSplit:  # noqa: ANN001
    """Test = each user's first ``n_test`` entries in ``order`` (a per-user window)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    by_user = Window.partitionBy("user")
    ranked = (data.frame.withColumn("_n", F.count(F.lit(1)).over(by_user))
              .withColumn("_rank", F.row_number().over(by_user.orderBy(*order)) - 1))
    marked = ranked.withColumn("is_test", F.col("_rank") < F.greatest(n_test, F.lit(0)))
    return _split(data, marked)


def spark_random_holdout(data: SparkInteractions, *, test_fraction: float = 0.25,
                         min_train: int = 1, random_state: int | None = 0, stream: int = 0) -> SparkSplit:
    """:func:`random_holdout` on Spark: the same test count per user, another random draw.

    A user with ``n`` interactions gives ``min(round_half_up(test_fraction * n),
    n - min_train)`` (never fewer than 0) to test. The order within a user is
    a hash of (seed, user, item), so the split does not depend on the
    partitioning; it differs from numpy's draw (for a cross-engine comparison,
    split once and give both engines the same split files). ``stream`` > 0
    hashes (seed, stream, user, item) instead: a draw independent of stream 0's
    for the same seed (the validation hold-out carved from a test split's train).
    """
    from pyspark.sql import functions as F

    f = _check_fraction("test_fraction", test_fraction)
    _check_int("min_train", min_train, low=0)
    seed = 0 if random_state is None else int(random_state)
    n = F.col("_n")
    n_test = F.least(F.floor(F.lit(f) * n + F.lit(0.5)), n - F.lit(min_train))
    _check_int("stream", stream, low=0)
    salt = [F.lit(seed)] + ([F.lit(int(stream))] if stream else [])
    key = F.xxhash64(*salt, F.col("user"), F.col("item"))
    return _rank_split(data, n_test, [key, F.col("item")])


def spark_leave_last_k(data: SparkInteractions, *, k: int = 1, min_train: int = 1) -> SparkSplit:
    """:func:`leave_last_k` on Spark: the same entries (latest first, ties: higher item index)."""
    from pyspark.sql import functions as F

    _check_int("k", k, low=1)
    _check_int("min_train", min_train, low=0)
    if not data.has_timestamps:
        raise DataError("leave_last_k: the interactions have no timestamps (expected one per entry)")
    n_test = F.least(F.lit(k), F.col("_n") - F.lit(min_train))
    return _rank_split(data, n_test, [F.col("timestamp").desc(), F.col("item").desc()])


def spark_time_cutoff(data: SparkInteractions, *, cutoff: int | None = None,
                      test_fraction: float | None = None) -> SparkSplit:
    """:func:`time_cutoff` on Spark: the same cutoff, found by a distributed sort."""
    from pyspark.sql import functions as F

    if (cutoff is None) == (test_fraction is None):
        raise ValueError(f"time_cutoff: give exactly one of cutoff and test_fraction, "
                         f"got cutoff={cutoff!r}, test_fraction={test_fraction!r}")
    if not data.has_timestamps:
        raise DataError("time_cutoff: the interactions have no timestamps (expected one per entry)")
    if cutoff is None:
        f = _check_fraction("test_fraction", test_fraction)
        n = data.frame.count()
        n_test = int(np.floor(f * n + 0.5))
        if n_test == 0:
            cutoff = int(data.frame.agg(F.max("timestamp")).first()[0]) + 1
        else:  # the n_test-th most recent timestamp
            row = (data.frame.select("timestamp").orderBy(F.col("timestamp").desc())
                   .offset(n_test - 1).limit(1).first())
            cutoff = int(row[0])
    elif isinstance(cutoff, bool) or not isinstance(cutoff, numbers.Integral):
        raise ValueError(f"cutoff: expected an integer, got {cutoff!r}")
    return _split(data, data.frame.withColumn("is_test", F.col("timestamp") >= F.lit(int(cutoff))))


def spark_relevance_threshold(split: SparkSplit, threshold: float | None) -> SparkSplit:
    """Keep only test entries with ``value >= threshold``; ``None`` returns ``split``."""
    from pyspark.sql import functions as F

    if threshold is None:
        return split
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real) or not np.isfinite(threshold):
        raise ValueError(f"threshold: expected a finite number or None, got {threshold!r}")
    test = split.test.with_frame(split.test.frame.filter(F.col("value") >= F.lit(float(threshold))))
    return SparkSplit(train=split.train, test=test)
