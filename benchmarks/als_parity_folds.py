"""ALS parity on MovieLens 100K: fairrec's ALS (implicit) vs SparkALS (MLlib), each tuned on validation hold-outs.

The requirement: NDCG@10 of MLlib ALS on ML-100K within 2% of implicit's ALS at
the same factors. Protocol (``configs/ml100k.yaml``'s per-user random 75/25
split, split seeds 42, 0, 1, 2 via the config's ``seed``, which also seeds the
models; binary input; 64 factors, 15 iterations, k = 10; every held-out entry
relevant; both engines' top-10 without training items scored by the same
``evaluate_rankings``). Per split seed and engine:

1. ``--folds`` validation hold-outs are carved from the training side (fold 0 is
   the run's own ``validation_split``; fold ``f`` is the same per-user random
   holdout on the stream ``[seed, 1, f]``); the test split is never read here;
2. every setting of the grid (regularizations 5, 10, 20, 40, 80 times the
   confidences of an observed entry, 2 and 10 unless ``--confidences``) is scored
   on every fold by its mean validation NDCG@10; at every confidence, four more
   regularizations around that confidence's best (x 2^(+-1/4), 2^(+-1/2)) are
   scored the same way, and the best setting of all is chosen;
3. the chosen setting is refitted on all training data and scored once on test
   (the verdict). The best setting of every other confidence is scored on test
   too, for the report only: nothing is chosen from those scores.

Both engines get the same folds, grid and refinement, and the same values mean
the same: ``regularization`` is the mean user's ridge on both (SparkALS passes
MLlib ``regParam = regularization / mean entries per user``), and confidence c
is implicit ``alpha`` c and MLlib ``alpha`` c - 1 (MLlib weights an observed
entry ``1 + alpha``). What still differs is MLlib's ALS-WR: each user's and
item's ridge grows with its number of entries, where implicit's is one constant.
Prints per split seed the chosen settings, test NDCG@10 and the MLlib /
implicit ratio, and the ratio of the means over split seeds; writes the JSON.

    nice -n 10 .venv/bin/python benchmarks/als_parity_folds.py [--data DIR] [--folds 3] \\
        [--seeds 42 0 1 2] [--out benchmarks/als_parity_folds.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _bench_spark import bench_spark  # noqa: E402

CONFIG = ROOT / "configs" / "ml100k.yaml"
TOLERANCE = 0.02  # |ratio - 1|
FACTORS, ITERATIONS, K = 64, 15, 10
CONFIDENCES = (2.0, 10.0)  # weight of an observed entry (r = 1): implicit alpha c, MLlib alpha c - 1
# ``regularization`` means the mean user's ridge on both engines (SparkALS passes MLlib
# regularization / mean entries per user), so both get the same values, a factor 2 apart
REGULARIZATIONS = (5.0, 10.0, 20.0, 40.0, 80.0)
REFINE_STEPS = (-2, -1, 1, 2)  # around the best: regularization x 2^(k/4)
ENGINES = ("implicit", "mllib")


def _ndcg(ids: np.ndarray, users: np.ndarray, relevant: Any, train: Any) -> float:
    from evaluation import evaluate_rankings

    return float(evaluate_rankings(ids, users=users, relevant=relevant, train=train, k=K)
                 .summary()[f"ndcg_at_{K}"])


class Engines:
    """Fit-and-recommend for both engines on one split (train part, users to rank)."""

    def __init__(self, spark: Any) -> None:
        self.spark = spark

    def implicit(self, part: Any, users: np.ndarray, reg: float, alpha: float, seed: int) -> np.ndarray:
        from recsys.models import ALS

        model = ALS(factors=FACTORS, iterations=ITERATIONS, regularization=reg, alpha=alpha,
                    random_state=seed, num_threads=1).fit(part.binary())
        return model.recommend(users, K)[0]

    def spark_train(self, part: Any) -> Any:
        from pyspark.sql import functions as F

        from recsys.data._spark import spark_from_interactions

        train = spark_from_interactions(self.spark, part)
        train = train.with_frame(train.frame.withColumn("value", F.lit(1.0)).cache())  # binary, as in-process
        train.frame.count()
        return train

    def mllib(self, train: Any, users: np.ndarray, reg: float, alpha: float, seed: int) -> np.ndarray:
        import pandas as pd

        from recsys.models._spark_als import SparkALS

        model = SparkALS(factors=FACTORS, iterations=ITERATIONS, regularization=reg, alpha=alpha,
                         random_state=seed).fit(train)
        users_df = self.spark.createDataFrame(pd.DataFrame({"user": users.astype(np.int64)}))
        recs = model.recommend(users_df, K).toPandas()
        ids = np.full((users.size, K), -1, dtype=np.int64)  # users without a list keep -1 (none here)
        row = {int(u): r for r, u in enumerate(users)}
        ids[[row[int(u)] for u in recs["user"]], recs["rank"].to_numpy() - 1] = recs["item"].to_numpy()
        return ids




def _folds(cfg: Any, split: Any, seed: int, n: int) -> list[Any]:
    from recsys.data import apply_relevance_threshold, random_holdout
    from training._components import validation_split

    s = cfg.split
    folds = [validation_split(s, split, seed=seed)]
    for f in range(1, n):
        inner = random_holdout(split.train, test_fraction=s.test_fraction, min_train=s.min_train,
                               random_state=[seed if s.seed is None else s.seed, 1, f])
        folds.append(apply_relevance_threshold(inner, s.relevance_threshold))
    return folds


def run_seed(seed: int, data: Path, engines: Engines, n_folds: int,
             confidences: tuple[float, ...] = CONFIDENCES) -> dict[str, Any]:
    from training._components import load_dataset, split_dataset
    from training._config import load_config

    cfg = load_config(CONFIG, [f"seed={seed}", f"data.path={data}"])
    if cfg.split.method != "random_holdout":
        raise SystemExit(f"{CONFIG}: expected a per-user random holdout split, got {cfg.split.method}")
    ds = load_dataset(cfg.data, seed=cfg.seed)
    split = split_dataset(cfg.split, ds, seed=cfg.seed)
    folds = []
    for val in _folds(cfg, split, seed, n_folds):
        users = np.flatnonzero(np.diff(val.test.matrix.indptr) > 0)
        folds.append((val, users, engines.spark_train(val.train)))
    scores: dict[tuple[str, float, float], list[float]] = {}

    def validate(engine: str, reg: float, alpha: float) -> dict[str, Any]:
        key = (engine, reg, alpha)
        if key not in scores:
            scores[key] = []
            for val, users, spark_train in folds:
                ids = (engines.implicit(val.train, users, reg, alpha, seed) if engine == "implicit"
                       else engines.mllib(spark_train, users, reg, alpha, seed))
                scores[key].append(_ndcg(ids, users, val.test.matrix, val.train.binary()))
            print(f"  seed {seed} {engine} reg {reg:g} alpha {alpha:g}: mean validation "
                  f"{np.mean(scores[key]):.4f} over {len(folds)} folds", flush=True)
        return {"regularization": reg, "alpha": alpha, "ndcg": float(np.mean(scores[key])),
                "folds": scores[key]}

    grid = {"implicit": [validate("implicit", r, c) for c in confidences for r in REGULARIZATIONS],
            "mllib": [validate("mllib", r, c - 1.0) for c in confidences for r in REGULARIZATIONS]}
    chosen: dict[str, dict[str, Any]] = {}
    per_confidence: dict[str, list[dict[str, Any]]] = {}
    for e in ENGINES:  # refine around the best regularization at every confidence, keep the best of all
        per_confidence[e] = []
        for alpha in sorted({r["alpha"] for r in grid[e]}):
            best = max((r for r in grid[e] if r["alpha"] == alpha), key=lambda r: r["ndcg"])
            grid[e] += [validate(e, float(f"{best['regularization'] * 2 ** (k / 4):.4g}"), alpha)
                        for k in REFINE_STEPS]
            per_confidence[e].append(max((r for r in grid[e] if r["alpha"] == alpha), key=lambda r: r["ndcg"]))
        chosen[e] = max(per_confidence[e], key=lambda r: r["ndcg"])
    for _, _, spark_train in folds:
        spark_train.frame.unpersist()

    # the chosen setting is scored on test for the verdict; the best of every other confidence
    # too, for the report only (nothing is chosen from them)
    users = np.flatnonzero(np.diff(split.test.matrix.indptr) > 0)
    train = engines.spark_train(split.train)
    tested: dict[tuple[str, float, float], float] = {}

    def test(e: str, c: dict[str, Any]) -> float:
        key = (e, c["regularization"], c["alpha"])
        if key not in tested:
            ids = (engines.implicit(split.train, users, key[1], key[2], seed) if e == "implicit"
                   else engines.mllib(train, users, key[1], key[2], seed))
            tested[key] = _ndcg(ids, users, split.test.matrix, split.train.binary())
        return tested[key]

    verdict = {e: test(e, chosen[e]) for e in ENGINES}
    by_confidence = {e: [{**c, "test": test(e, c)} for c in per_confidence[e]] for e in ENGINES}
    train.frame.unpersist()
    ratio = verdict["mllib"] / verdict["implicit"]
    return {"seed": seed, "folds": n_folds, "validation": grid, "chosen": chosen, "test": verdict,
            "ratio": ratio, "within_2pct": bool(abs(ratio - 1) <= TOLERANCE),
            "best_per_confidence": by_confidence}


def summarize(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Means over split seeds of the chosen settings' test NDCG@10 (the verdict) and, for the
    report only, of each engine's best setting at each confidence."""
    means = {e: float(np.mean([r["test"][e] for r in results])) for e in ENGINES}
    ratio = means["mllib"] / means["implicit"]
    per_confidence = {}
    for i, best in enumerate(results[0]["best_per_confidence"]["implicit"]):
        tests = {e: [r["best_per_confidence"][e][i]["test"] for r in results] for e in ENGINES}
        m = {e: float(np.mean(v)) for e, v in tests.items()}
        per_confidence[f"{best['alpha']:g}"] = {  # implicit's alpha = the confidence
            "mean_test_ndcg": m, "ratio_of_means": m["mllib"] / m["implicit"],
            "per_seed_ratio": [b / a for a, b in zip(tests["implicit"], tests["mllib"], strict=True)]}
    return {"mean_test_ndcg": means, "ratio_of_means": ratio,
            "within_2pct": bool(abs(ratio - 1) <= TOLERANCE),
            "per_seed_ratio": {str(r["seed"]): r["ratio"] for r in results},
            "seeds_within_2pct": [r["seed"] for r in results if r["within_2pct"]],
            "best_per_confidence_report_only": per_confidence}


def _print_summary(summary: dict[str, Any]) -> None:
    means, ratio = summary["mean_test_ndcg"], summary["ratio_of_means"]
    print(f"chosen on validation, mean test NDCG@10: implicit {means['implicit']:.4f}, MLlib "
          f"{means['mllib']:.4f}, ratio {ratio:.4f} ({'within' if summary['within_2pct'] else 'not within'} 2%); "
          f"seeds within 2%: {summary['seeds_within_2pct']}")
    for confidence, c in summary["best_per_confidence_report_only"].items():
        m = c["mean_test_ndcg"]
        print(f"  report only, each engine's best at confidence {confidence}: implicit {m['implicit']:.4f}, "
              f"MLlib {m['mllib']:.4f}, ratio {c['ratio_of_means']:.4f} (per seed "
              + ", ".join(f"{r:.4f}" for r in c["per_seed_ratio"]) + ")")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "ml-100k")
    p.add_argument("--folds", type=int, default=3)
    p.add_argument("--confidences", type=float, nargs="+", default=list(CONFIDENCES),
                   help="weights of an observed entry (r = 1): implicit alpha c, MLlib alpha c - 1")
    p.add_argument("--seeds", type=int, nargs="+", default=[42, 0, 1, 2])
    p.add_argument("--master", default="local[2]")
    p.add_argument("--driver-memory", default="3g")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "als_parity_folds.json")
    p.add_argument("--summarize", type=Path, metavar="JSON",
                   help="recompute and print the summary of a saved run (rewrites its summary), fit nothing")
    args = p.parse_args(argv)
    if args.summarize is not None:
        saved = json.loads(args.summarize.read_text())
        saved["summary"] = summarize(saved["results"])
        args.summarize.write_text(json.dumps(saved, indent=2) + "\n")
        _print_summary(saved["summary"])
        return
    if args.folds < 1:
        sys.exit(f"--folds: expected at least 1, got {args.folds}")
    data = args.data.resolve()
    missing = [f for f in ("u.data", "u.user", "u.item") if not (data / f).is_file()]
    if missing:
        sys.exit(f"MovieLens 100K not found: {data} lacks {', '.join(missing)}; pass --data DIR")

    start = time.perf_counter()
    spark = bench_spark(args.master, args.driver_memory, 4, "fairrec-als-parity-folds")
    results = []
    try:
        for seed in args.seeds:
            results.append(run_seed(seed, data, Engines(spark), args.folds, tuple(args.confidences)))
            r = results[-1]
            print(f"seed {seed}: implicit reg {r['chosen']['implicit']['regularization']:g} "
                  f"a {r['chosen']['implicit']['alpha']:g} -> {r['test']['implicit']:.4f} | MLlib reg "
                  f"{r['chosen']['mllib']['regularization']:g} a {r['chosen']['mllib']['alpha']:g} -> "
                  f"{r['test']['mllib']:.4f} | ratio {r['ratio']:.4f}", flush=True)
    finally:
        spark.stop()

    import implicit
    import pyspark

    out = {"protocol": {"config": str(CONFIG.relative_to(ROOT)), "folds": args.folds,
                        "regularizations": list(REGULARIZATIONS), "confidences": args.confidences,
                        "refine_steps": list(REFINE_STEPS), "tolerance": TOLERANCE, "seeds": args.seeds,
                        "master": args.master},
           "versions": {"implicit": implicit.__version__, "pyspark": pyspark.__version__,
                        "python": platform.python_version()},
           "results": results, "summary": summarize(results), "seconds": time.perf_counter() - start}
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    _print_summary(out["summary"])
    print(f"wrote {args.out} ({out['seconds']:.0f} s)")


if __name__ == "__main__":
    main()
