"""MovieLens 100K figures the README quotes beyond the single shipped split.

    .venv/bin/python benchmarks/ml100k_robustness.py --data ../shared/data/ml-100k

Per split seed (per-user random 75/25, k = 10, every rating relevant):
EASE's NDCG@10; Steck calibration (smoothing 0.1) on EASE's top-100 at
lambda 0.75 and 0.8, and the catalogue-level category-share re-ranker at
strength 0.75 and 1.0 (offsets fitted on every training user's top-100): the
relative change of NDCG@10 and of the gender x genre mean absolute bias
amplification against plain EASE. On seed 42 it also
cross-checks fairrec's NDCG@10 of a BPR model with implicit's own
``ranking_metrics_at_k`` on that same model.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data" / "ml-100k")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 42])
    args = p.parse_args(argv)

    from implicit.evaluation import ranking_metrics_at_k

    from evaluation import bias_amplification, evaluate_rankings
    from recsys.data import load_movielens_100k, random_holdout
    from recsys.models import BPR, EASE
    from recsys.rerank import CalibratedReranker, CategoryShareReranker

    ds = load_movielens_100k(args.data)
    category = pd.factorize(ds.items["category"])[0]
    gender = ds.users["gender"].to_numpy()
    heads = ["calibration 0.75", "calibration 0.8", "category share 0.75", "category share 1.0"]
    print("seed  EASE ndcg@10   " + "   ".join(f"{h + ': ndcg / ampl.':>26s}" for h in heads))
    for seed in args.seeds:
        split = random_holdout(ds.interactions, test_fraction=0.25, random_state=seed)
        X, test = split.train.binary(), split.test.matrix
        users = np.flatnonzero(np.diff(test.indptr) > 0)

        def score(ids: np.ndarray) -> tuple[float, float]:
            ndcg = evaluate_rankings(ids, users=users, relevant=test, train=X, k=10).summary()["ndcg_at_10"]
            return ndcg, bias_amplification(ids, X, gender, category, users=users).mean_abs_amplification

        ease = EASE(l2=500.0).fit(X)
        cand, scores = ease.recommend(users, 100)
        fit_users = np.flatnonzero(X.getnnz(axis=1) > 0)
        fit_ids, fit_scores = ease.recommend(fit_users, 100)
        n0, a0 = score(cand[:, :10])
        rerankers = [CalibratedReranker(strength=s, smoothing=0.1).fit(X, item_category=category) for s in (0.75, 0.8)]
        rerankers += [
            CategoryShareReranker(strength=s, k=10).fit(X, item_category=category, users=fit_users,
                                                         candidate_ids=fit_ids, candidate_scores=fit_scores)
            for s in (0.75, 1.0)
        ]
        cells = []
        for reranker in rerankers:
            n, a = score(reranker.rerank(cand, scores, users=users, k=10)[0])
            cells.append(f"{n / n0 - 1:+7.2%} / {a / a0 - 1:+7.2%}")
        print(f"{seed:4d}  {n0:12.4f}   " + "   ".join(f"{c:>26s}" for c in cells))
        if seed == 42:
            bpr = BPR(factors=64, learning_rate=0.01, regularization=0.01, iterations=100,
                      random_state=0, num_threads=1).fit(X)
            ours = score(bpr.recommend(users, 10)[0])[0]
            raw = ranking_metrics_at_k(bpr._inner_, X, test, K=10, show_progress=False)["ndcg"]
            bpr_line = f"BPR on seed 42: NDCG@10 fairrec {ours:.4f}, implicit ranking_metrics_at_k {raw:.4f}"
    if 42 in args.seeds:
        print(bpr_line)


if __name__ == "__main__":
    main()
