"""The Spark engine beside the in-process engine on one synthetic data set, in one run.

Default shape: 138,000 users x 27,000 items x 20,000,000 interactions (the
MovieLens-20M shape of ``benchmarks/scale.py``); ``--scale`` multiplies all
three. On the same train/test split (written to Parquet, which Spark reads):

* fit: fairrec ``ALS`` (implicit) vs ``SparkALS`` (MLlib ALS, implicitPrefs);
* top-k for every test user without training items: ``ALS.recommend`` vs
  ``SparkALS.recommend`` (the broadcast item factors times each partition's
  user factors, training items masked);
* evaluation: ``evaluate_rankings`` + ``fairness_metrics`` vs ``spark_evaluate``
  (relevance and fairness, the same names);
* peak driver memory: this process's peak RSS for the in-process engine; for
  Spark, the driver JVM's peak (VmHWM; in local mode the executors run inside
  it) plus this process's growth while Spark ran.

Prints the times, the Spark / in-process ratios, the per-core throughput of
each Spark stage (input rows per second per task slot, what
``docs/scale-out.md`` extrapolates from) and, with ``--ml100k DIR``, NDCG@10 of
both ALS on MovieLens 100K at the same factors. Run
``.venv/bin/python benchmarks/spark_scale.py --scale 0.1`` for the 2M shape.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from _bench_spark import bench_spark


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def _peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def _jvm_peak_gb(spark: Any) -> float:
    pid = int(spark.sparkContext._jvm.ProcessHandle.current().pid())
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024**2
    return float("nan")


def _in_process(split: Any, ds: Any, users: np.ndarray, args: argparse.Namespace) -> dict[str, Any]:
    import pandas as pd

    from evaluation import evaluate_rankings, fairness_metrics
    from recsys.models import ALS

    X = split.train.binary()
    model, fit = _timed(lambda: ALS(factors=args.factors, iterations=args.iterations,
                                    regularization=args.regularization, random_state=args.seed).fit(X))
    (ids, _), top = _timed(lambda: model.recommend(users, args.k))

    def evaluate() -> dict[str, float]:
        rel = evaluate_rankings(ids, users=users, relevant=split.test.matrix, train=X, k=args.k,
                                item_category=pd.factorize(ds.items["category"])[0])
        fr = fairness_metrics(report=rel, ids=ids, users=users, users_table=ds.users, items_table=ds.items,
                              train=X, relevant=split.test.matrix, sensitive=["gender", "age_group"])
        return {**rel.summary(), **fr.flat()}

    metrics, ev = _timed(evaluate)
    return {"fit_s": fit, "topk_s": top, "evaluate_s": ev, "peak_rss_gb": _peak_rss_gb(),
            "ndcg": metrics[f"ndcg_at_{args.k}"]}


def _on_spark(spark: Any, split: Any, ds: Any, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    import pandas as pd

    from evaluation._spark import spark_evaluate
    from recsys.data._spark import SparkInteractions
    from recsys.models._spark_als import SparkALS

    rss0 = _peak_rss_gb()
    n_users, n_items = split.train.n_users, split.train.n_items
    for name, part in (("train", split.train), ("test", split.test)):  # files, as a cluster reads them
        m = part.matrix
        pd.DataFrame({"user": part.row_index().astype(np.int32), "item": m.indices.astype(np.int32),
                      "value": m.data.astype(np.float64)}).to_parquet(tmp / f"{name}.parquet")
    train_df = spark.read.parquet(str(tmp / "train.parquet")).cache()
    test_df = spark.read.parquet(str(tmp / "test.parquet")).cache()
    n_train = train_df.count()
    test_df.count()
    empty = spark.createDataFrame(pd.DataFrame({"user": [0], "user_id": ["0"]}))
    train = SparkInteractions(train_df, empty, empty, n_users, n_items)
    users = test_df.select("user").distinct().cache()
    n_test_users = users.count()
    attrs = ds.users[["gender", "age_group"]].astype(str)
    attrs.insert(0, "user", np.arange(len(attrs), dtype=np.int64))
    users_table = spark.createDataFrame(attrs).cache()
    slots = spark.sparkContext.defaultParallelism
    model, fit = _timed(lambda: SparkALS(factors=args.factors, iterations=args.iterations,
                                         regularization=args.regularization,
                                         random_state=args.seed).fit(train))
    lists, top = _timed(lambda: model.recommend(users, args.k).cache())
    _, top2 = _timed(lists.count)
    top += top2
    print(json.dumps({"spark_fit_s": fit, "spark_topk_s": top}), flush=True)

    def evaluate() -> dict[str, float]:
        return spark_evaluate(lists=lists, users=users, relevant=test_df, train=train_df,
                              users_table=users_table, items_table=ds.items, n_users=n_users,
                              n_items=n_items, k=args.k, sensitive=["gender", "age_group"]).metrics

    metrics, ev = _timed(evaluate)
    n_entries = n_test_users * args.k
    return {
        "fit_s": fit, "topk_s": top, "evaluate_s": ev, "slots": slots,
        "driver_peak_gb": _jvm_peak_gb(spark) + max(_peak_rss_gb() - rss0, 0.0),
        "ndcg": metrics[f"ndcg_at_{args.k}"],
        "throughput_per_slot": {  # input rows per second per task slot, for docs/scale-out.md
            "fit_interaction_iterations": n_train * args.iterations / fit / slots,
            "topk_users": n_test_users / top / slots,
            "topk_user_items": n_test_users * n_items / top / slots,
            "evaluate_list_entries": n_entries / ev / slots,
            "evaluate_train_rows": n_train / ev / slots,
        },
        "n_train": n_train, "n_test_users": n_test_users,
    }


def _ml100k_quality(spark: Any, path: Path, args: argparse.Namespace) -> dict[str, float]:
    import pandas as pd

    from evaluation import evaluate_rankings
    from recsys.data import load_movielens_100k, random_holdout
    from recsys.data._spark import spark_from_interactions
    from recsys.models import ALS
    from recsys.models._spark_als import SparkALS

    ds = load_movielens_100k(path)
    split = random_holdout(ds.interactions, test_fraction=0.2, random_state=args.seed)
    users = np.flatnonzero(np.diff(split.test.matrix.indptr) > 0)
    X = split.train.binary()
    train = spark_from_interactions(spark, split.train)
    train = train.with_frame(train.frame.withColumn("value", train.frame["value"] * 0 + 1.0))

    def ndcg(ids: np.ndarray) -> float:
        return evaluate_rankings(ids, users=users, relevant=split.test.matrix, train=X,
                                 k=10).summary()["ndcg_at_10"]

    out = {}
    ids, _ = ALS(factors=args.factors, iterations=args.iterations, regularization=args.regularization,
                 random_state=args.seed).fit(X).recommend(users, 10)
    out["implicit_als_ndcg_at_10"] = ndcg(ids)
    for reg in args.spark_regs:
        model = SparkALS(factors=args.factors, iterations=args.iterations, regularization=reg,
                         alpha=args.spark_alpha, random_state=args.seed).fit(train)
        users_df = spark.createDataFrame(pd.DataFrame({"user": users}))
        recs = model.recommend(users_df, 10).toPandas().sort_values(["user", "rank"])
        ids = np.full((users.size, 10), -1, dtype=np.int64)
        row = {u: r for r, u in enumerate(users)}
        ids[[row[u] for u in recs["user"]], recs["rank"].to_numpy() - 1] = recs["item"].to_numpy()
        out[f"spark_als_ndcg_at_10.reg_{reg:g}"] = ndcg(ids)
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--users", type=int, default=138_000)
    p.add_argument("--items", type=int, default=27_000)
    p.add_argument("--interactions", type=int, default=20_000_000)
    p.add_argument("--scale", type=float, default=1.0, help="multiply all three sizes")
    p.add_argument("--factors", type=int, default=64)
    p.add_argument("--iterations", type=int, default=15)
    p.add_argument("--regularization", type=float, default=0.05)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--master", default="local[2]")
    p.add_argument("--driver-memory", default="6g")
    p.add_argument("--ml100k", type=Path, default=None, help="MovieLens 100K directory: ALS quality check")
    p.add_argument("--spark-regs", type=float, nargs="+", default=[0.01, 0.05, 0.1])
    p.add_argument("--spark-alpha", type=float, default=1.0)
    p.add_argument("--skip-scale", action="store_true", help="only the ML-100K quality check")
    p.add_argument("--out", type=Path, default=None, help="also write the final JSON here")
    args = p.parse_args(argv)

    from recsys.data import generate_synthetic, random_holdout
    result: dict[str, Any] = {"args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}}
    spark = None
    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_scale:
            shape = [max(2, int(v * args.scale)) for v in (args.users, args.items, args.interactions)]
            ds, gen = _timed(lambda: generate_synthetic(n_users=shape[0], n_items=shape[1],
                                                        n_interactions=shape[2], random_state=args.seed))
            split = random_holdout(ds.interactions, test_fraction=0.25, random_state=args.seed)
            users = np.flatnonzero(np.diff(split.test.matrix.indptr) > 0)
            result["shape"] = {"users": shape[0], "items": shape[1], "interactions": shape[2],
                               "test_users": int(users.size), "generate_s": gen}
            result["in_process"] = _in_process(split, ds, users, args)
            print(json.dumps(result, indent=2), flush=True)
        spark = bench_spark(args.master, args.driver_memory, 8, "fairrec-spark-scale")
        if not args.skip_scale:
            result["spark"] = _on_spark(spark, split, ds, args, Path(tmp))
            ip, sp_ = result["in_process"], result["spark"]
            result["ratios_spark_over_in_process"] = {
                "fit": sp_["fit_s"] / ip["fit_s"], "topk": sp_["topk_s"] / ip["topk_s"],
                "evaluate": sp_["evaluate_s"] / ip["evaluate_s"],
                "peak_driver_memory": sp_["driver_peak_gb"] / ip["peak_rss_gb"],
            }
            print(json.dumps(result, indent=2), flush=True)
        if args.ml100k is not None:
            result["ml100k"] = _ml100k_quality(spark, args.ml100k, args)
            best = max(v for k, v in result["ml100k"].items() if k.startswith("spark"))
            result["ml100k"]["best_spark_over_implicit"] = best / result["ml100k"]["implicit_als_ndcg_at_10"]
    spark.stop()
    print(json.dumps(result, indent=2))
    if args.out is not None:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
