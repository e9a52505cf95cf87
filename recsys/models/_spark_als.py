"""The Spark engine's models: MLlib ALS (implicit feedback) and popularity, with batch top-k.

Both fit on :class:`recsys.data._spark.SparkInteractions` and recommend for a
DataFrame of users, returning ``user, rank, item, score`` (rank from 1) with
each user's training items excluded. MLlib's ``recommendForUserSubset`` does
not exclude them, so :meth:`SparkALS.recommend` scores each partition's users
against the broadcast item factors itself and masks their training items
before taking the top ``k``.

Parameters shared with fairrec's in-process ``als`` keep their names where
they mean the same thing: ``factors`` (MLlib ``rank``), ``iterations``
(``maxIter``), ``random_state`` (``seed``), and ``regularization``: the
ridge on a user's factor, as in-process, for the user with the mean number of
training entries. MLlib scales its ``regParam`` by each user's and item's
number of entries (ALS-WR: user ``u``'s ridge is ``regParam * n_u``), so the
fit passes ``regParam = regularization / mean entries per user`` (kept as
``reg_param_``): the mean user's ridge is ``regularization`` on every training
set, heavier users' larger and lighter users' smaller. Passing
``regularization`` to ``regParam`` unchanged would make it mean a different
thing on every training set, so a value chosen on a validation hold-out (25%
fewer entries per user) over-regularised the refit on all training data
(``benchmarks/als_parity_folds.py``). ``alpha`` is MLlib's ``alpha``, with
confidence ``1 + alpha * value`` (implicit uses ``alpha * value``; for binary
input, in-process ``alpha`` a is Spark ``alpha`` a - 1): related, not identical.

:func:`als_serving_model` turns the collected factors into fairrec's
in-process :class:`recsys.models.ALS`, which ``save_bundle`` writes and
``fairrec serve`` serves. It is marked ``solver="mllib"``, so explanations
re-solve a user factor with MLlib's equations (:mod:`recsys.models._als_solve`)
and the re-solved score of a training user's history is the served score.

pyspark is imported inside the methods.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from recsys.errors import NotFittedError
from recsys.models._base import top_k
from recsys.models._als_solve import resolve_user_factors
from recsys.models._implicit import ALS

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame

    from recsys.data._spark import SparkInteractions

__all__ = ["SparkALS", "SparkPopularity", "als_serving_model"]

#: Scores one top-k product holds at most (64 MB of float32): users per block = this / items.
TOPK_BLOCK_SCORES = 1 << 24

#: Users whose MLlib factor :func:`als_serving_model` re-solves as a check, and the
#: relative gap above which it warns (float32 factors agree to about 1e-6).
_CHECK_USERS = 64
_CHECK_GAP = 1e-3


def _check(name: str, value: object, kind: type, low: float, *, strict: bool = False) -> None:
    bad = isinstance(value, bool) or not isinstance(value, kind)
    if bad or (value <= low if strict else value < low):
        rel = ">" if strict else ">="
        raise ValueError(f"{name}: expected {kind.__name__.lower()} {rel} {low}, got {value!r}")


def _rank_top(scored: DataFrame, k: int) -> DataFrame:
    """Keep each user's best ``k`` rows of ``user, item, score`` (ties: lower item first)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    order = Window.partitionBy("user").orderBy(F.col("score").desc(), F.col("item"))
    return (scored.withColumn("rank", F.row_number().over(order)).filter(F.col("rank") <= k)
            .select("user", "rank", "item", F.col("score").cast("float").alias("score")))


def _top_k_block(block: pa.RecordBatch, item_factors: np.ndarray, known: np.ndarray, factors: int,
                 k: int) -> pa.RecordBatch:
    """One block of ``user, _f, _seen`` rows: scores against every item, seen and unknown items
    masked, the best ``k`` as ``user, rank, item, score`` rows."""
    import pyarrow as pa
    import pyarrow.compute as pc

    users = block.column("user").to_numpy(zero_copy_only=False).astype(np.int32)
    U = block.column("_f").flatten().to_numpy(zero_copy_only=False).astype(np.float32)
    scores = U.reshape(len(users), factors) @ item_factors.T
    scores[:, ~known] = -np.inf
    seen = block.column("_seen")
    lengths = pc.fill_null(pc.list_value_length(seen), 0).to_numpy(zero_copy_only=False).astype(np.int64)
    scores[np.repeat(np.arange(len(users)), lengths),
           seen.flatten().to_numpy(zero_copy_only=False).astype(np.int64)] = -np.inf
    ids, top = top_k(scores, k)
    kept = ids >= 0
    rows, cols = np.nonzero(kept)
    return pa.RecordBatch.from_pydict({"user": users[rows], "rank": (cols + 1).astype(np.int32),
                                       "item": ids[kept].astype(np.int32),
                                       "score": top[kept].astype(np.float32)})


def _seen_counts(train: DataFrame, users: DataFrame) -> DataFrame:
    from pyspark.sql import functions as F

    counts = train.groupBy("user").agg(F.count(F.lit(1)).alias("n_seen"))
    return users.select("user").distinct().join(counts, "user", "left").fillna(0, ["n_seen"])


class SparkALS:
    """Implicit-feedback ALS on Spark MLlib (``pyspark.ml.recommendation.ALS``).

    Parameters
    ----------
    factors : int, default 64
    regularization : float, default 0.05
        The mean user's ridge; MLlib's ``regParam`` is this over the mean
        number of training entries per user (see the module docstring).
    alpha : float, default 1.0
        MLlib's confidence scale.
    iterations : int, default 15
    random_state : int or None, default 0
    num_blocks : int or None, default None
        MLlib's ``numUserBlocks`` and ``numItemBlocks``; None: the cluster's
        default parallelism (MLlib's own default, 10, makes 100 tasks per
        iteration even on tiny data).

    Attributes
    ----------
    model_ : pyspark.ml.recommendation.ALSModel
    reg_param_ : float
        The ``regParam`` MLlib was fitted with.
    mean_user_entries_ : float
        Training entries per user with at least one.
    train_ : DataFrame of ``user, item`` (the training entries, for exclusion)
    n_users_, n_items_ : int
    """

    def __init__(self, *, factors: int = 64, regularization: float = 0.05, alpha: float = 1.0,
                 iterations: int = 15, random_state: int | None = 0,
                 num_blocks: int | None = None) -> None:
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.random_state = random_state
        self.num_blocks = num_blocks

    def fit(self, train: SparkInteractions) -> SparkALS:
        """Fit on the training entries (``value`` is the confidence weight)."""
        from pyspark.ml.recommendation import ALS as MLlibALS

        _check("factors", self.factors, numbers.Integral, 1)
        _check("regularization", self.regularization, numbers.Real, 0)
        _check("alpha", self.alpha, numbers.Real, 0)
        _check("iterations", self.iterations, numbers.Integral, 1)
        blocks = self.num_blocks
        if blocks is None:
            blocks = max(1, train.frame.sparkSession.sparkContext.defaultParallelism)
        _check("num_blocks", blocks, numbers.Integral, 1)
        from pyspark.sql import functions as F

        entries, users = train.frame.agg(F.count(F.lit(1)), F.countDistinct("user")).first()
        if not entries:
            raise ValueError("SparkALS.fit: the training entries are empty")
        self.mean_user_entries_ = entries / users
        self.reg_param_ = float(self.regularization) / self.mean_user_entries_
        als = MLlibALS(rank=int(self.factors), maxIter=int(self.iterations),
                       regParam=self.reg_param_, alpha=float(self.alpha),
                       implicitPrefs=True, userCol="user", itemCol="item", ratingCol="value",
                       seed=0 if self.random_state is None else int(self.random_state),
                       coldStartStrategy="drop",
                       numUserBlocks=int(blocks), numItemBlocks=int(blocks))
        self.model_ = als.fit(train.frame.select("user", "item", "value"))
        self._items_: tuple[np.ndarray, np.ndarray] | None = None  # collected by the first recommend
        self.train_ = train.frame.select("user", "item")
        self.n_users_, self.n_items_ = train.n_users, train.n_items
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise NotFittedError("SparkALS: call fit before recommend or factors")

    def recommend(self, users: DataFrame, k: int = 10) -> DataFrame:
        """Top-``k`` unseen items for each row of ``users`` (column ``user``).

        Users without factors (no training entries) get no rows: the caller
        falls back to :class:`SparkPopularity` for them, as in-process. Items
        without factors (no training entries) are never recommended, as in
        MLlib's ``recommendForUserSubset``. Runs one Spark job: the lists are
        materialised as a local checkpoint.

        Written by hand because MLlib's ``recommendForUserSubset`` cannot exclude
        the training items (asking it for ``k`` plus the longest history and
        dropping seen items with a join took 14.5x the in-process top-k at the
        2M shape of ``benchmarks/spark_scale.py``; this takes 2.4x at the 20M
        shape): the item factors (``n_items x
        factors`` float32, 256 MB per million items at 64 factors) are broadcast,
        and each partition of users (their factors and training items joined as
        columns, nothing collected) scores blocks of users against every item
        with one matrix product and keeps the best ``k`` unseen ones with fairrec's
        :func:`~recsys.models._base.top_k` (ties: lower item first).
        """
        from pyspark.sql import functions as F
        from pyspark.sql import types as T

        self._check_fitted()
        _check("k", k, numbers.Integral, 1)
        spark = users.sparkSession
        item_factors, has_factor = self._item_factors()
        shipped = spark.sparkContext.broadcast((item_factors, has_factor))
        seen = self.train_.groupBy("user").agg(F.collect_list("item").alias("_seen"))
        factors = self.model_.userFactors.select(F.col("id").alias("user"), F.col("features").alias("_f"))
        rows = (users.select(F.col("user").cast("int").alias("user")).distinct()
                .join(factors, "user").join(seen, "user", "left"))
        k_, f = int(k), int(self.factors)
        block = max(1, min(4096, TOPK_BLOCK_SCORES // max(1, self.n_items_)))
        schema = T.StructType([T.StructField("user", T.IntegerType(), False),
                               T.StructField("rank", T.IntegerType(), False),
                               T.StructField("item", T.IntegerType(), False),
                               T.StructField("score", T.FloatType(), False)])

        def top_k_partition(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
            V, known = shipped.value
            for batch in batches:
                for start in range(0, batch.num_rows, block):
                    yield _top_k_block(batch.slice(start, block), V, known, f, k_)

        lists = rows.mapInArrow(top_k_partition, schema)
        # cut the lineage of the factors' iterations (else deep task graphs overflow the JVM stack
        # in later jobs over the lists); local: no checkpoint directory needed
        lists = lists.localCheckpoint(eager=True)
        shipped.unpersist()  # the lists are materialised and their lineage cut
        return lists

    def _item_factors(self) -> tuple[np.ndarray, np.ndarray]:
        """``[n_items, f]`` float32 item factors (0 where MLlib has none) and which items have one.

        Collected once per fit (every ``recommend`` and ``factors_`` call reuses them).
        """
        if self._items_ is not None:
            return self._items_
        pdf = self.model_.itemFactors.toPandas()
        dense = np.zeros((self.n_items_, int(self.factors)), dtype=np.float32)
        known = np.zeros(self.n_items_, dtype=bool)
        if len(pdf):
            ids = pdf["id"].to_numpy(dtype=np.int64)
            dense[ids] = np.stack(pdf["features"].to_numpy())
            known[ids] = True
        dense.setflags(write=False)  # shared by later calls
        known.setflags(write=False)
        self._items_ = (dense, known)
        return self._items_

    def factors_(self) -> tuple[np.ndarray, np.ndarray]:
        """The learned factors collected as dense ``[n_users, f]`` and ``[n_items, f]`` float32.

        Rows of users or items MLlib never saw stay 0. ``n_items * factors``
        floats must fit in the driver (64 factors: 256 MB per million items).
        """
        self._check_fitted()
        pdf = self.model_.userFactors.toPandas()
        users = np.zeros((self.n_users_, int(self.factors)), dtype=np.float32)
        if len(pdf):
            users[pdf["id"].to_numpy(dtype=np.int64)] = np.stack(pdf["features"].to_numpy())
        return users, self._item_factors()[0].copy()  # the caller's to keep (the cached ones are read-only)


class SparkPopularity:
    """Most-interacted items first, each user's training items excluded (Spark aggregation)."""

    def fit(self, train: SparkInteractions) -> SparkPopularity:
        from pyspark.sql import functions as F

        self.train_ = train.frame.select("user", "item")
        self.counts_ = (self.train_.groupBy("item").agg(F.count(F.lit(1)).cast("float").alias("score"))
                        .cache())
        self.n_users_, self.n_items_ = train.n_users, train.n_items
        return self

    def recommend(self, users: DataFrame, k: int = 10) -> DataFrame:
        """Top-``k`` unseen items by training count for each row of ``users``."""
        from pyspark.sql import functions as F

        if not hasattr(self, "counts_"):
            raise NotFittedError("SparkPopularity: call fit before recommend")
        _check("k", k, numbers.Integral, 1)
        seen = _seen_counts(self.train_, users)
        widest = seen.agg(F.max("n_seen")).first()[0] or 0
        top = _top_items(self.counts_, min(int(k) + int(widest), self.n_items_))
        scored = seen.select("user").crossJoin(F.broadcast(top))
        unseen = scored.join(self.train_, ["user", "item"], "left_anti")
        return _rank_top(unseen, int(k))


def _top_items(counts: DataFrame, n: int) -> DataFrame:
    from pyspark.sql import functions as F

    return counts.orderBy(F.col("score").desc(), F.col("item")).limit(n)


def als_serving_model(model: SparkALS, train: sp.csr_matrix, *, unknown_users: str = "popular") -> ALS:
    """fairrec's in-process ALS holding a fitted :class:`SparkALS`'s factors (for the bundle).

    ``train`` is the training matrix the bundle stores for exclusion and
    explanations (the serving format keeps each user's history). The model is
    marked ``solver="mllib"``: explanations re-solve user factors from
    histories with MLlib's equations, its ``regularization`` is the fit's
    ``regParam`` (``model.reg_param_``) and ``alpha`` MLlib's. For those explanations to be faithful
    (a training user's re-solved score equal to the served one), ``train`` must
    hold the values MLlib was fitted on (its ``value`` column), not a binary
    copy when those were ratings. A sample of users is re-solved to check this;
    a ``UserWarning`` reports a gap.
    """
    user_factors, item_factors = model.factors_()
    if train.shape != (model.n_users_, model.n_items_):
        raise ValueError(f"train: expected shape {(model.n_users_, model.n_items_)}, got {train.shape}")
    als = ALS(factors=int(model.factors), regularization=float(model.reg_param_),
              alpha=float(model.alpha), iterations=int(model.iterations),
              random_state=model.random_state, num_threads=1, unknown_users=unknown_users,
              solver="mllib")
    X = sp.csr_matrix(train, dtype=np.float32)
    als.n_users_, als.n_items_ = X.shape
    als.user_items_ = X
    als.cold_users_ = np.diff(X.indptr) == 0
    als.item_popularity_ = np.bincount(X.indices, minlength=X.shape[1]).astype(np.float32)
    als.user_factors_, als.item_factors_ = user_factors, item_factors
    als._after_load()
    gap = _foldin_gap(als)
    if gap > _CHECK_GAP:
        warnings.warn(
            f"als_serving_model: user factors re-solved with MLlib's equations from `train` differ "
            f"from MLlib's (largest relative gap {gap:.2g} over {_CHECK_USERS} users): `train` "
            "does not hold the values MLlib was fitted on (a binary matrix for a fit on ratings?), "
            "so explanations of this model will not reproduce its scores",
            UserWarning, stacklevel=2)
    return als


def _foldin_gap(als: ALS) -> float:
    """Largest ``|x_resolved - x_mllib| / |x_mllib|`` over up to ``_CHECK_USERS`` warm users.

    MLlib solves the user factors last in every iteration, so for the data it was
    fitted on the gap is float32 rounding.
    """
    X = als.user_items_
    warm = np.flatnonzero(np.diff(X.indptr) > 0)
    if warm.size == 0:
        return 0.0
    picks = np.linspace(0, warm.size - 1, min(_CHECK_USERS, warm.size)).astype(np.int64)
    users = warm[np.unique(picks)]  # spread over the user indices
    resolved = resolve_user_factors(als.item_factors_, X[users], solver="mllib",
                                    regularization=als.regularization, alpha=als.alpha)
    served = als.user_factors_[users].astype(np.float64)
    norms = np.maximum(np.linalg.norm(served, axis=1), np.finfo(np.float32).tiny)
    return float(np.max(np.linalg.norm(resolved - served, axis=1) / norms))
