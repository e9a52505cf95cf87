"""How fast fairrec explains recommendations on MovieLens 100K.

    .venv/bin/python benchmarks/explain_speed.py --data ../shared/data/ml-100k

Prints, for EASE and item-kNN (exact SHAP over history items), ALS (Kernel
SHAP and implicit's own explain) and BPR (its representer split, the fast path
serving uses, and Kernel SHAP over its folded-in user factor), the median and
maximum time to explain one user's top-10, over a seeded sample of users
(after ``gc.freeze()``, as the service does once its model is loaded); then
the deletion fidelity of BPR's representer split against its Kernel SHAP
values on the same pairs; then the time to compute the LIME-based scores (LIME
R², stability over two seeds, SHAP-LIME agreement) for a 200-user sample with
EASE and with BPR, serially and on two worker processes (``--n-jobs``); and
BPR's fold-in agreement with its served scores (for 64 to 512 negatives).
"""

from __future__ import annotations

import argparse
import gc
import time
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data" / "ml-100k")
    p.add_argument("--users", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n-jobs", type=int, nargs="+", default=[1, 2],
                   help="worker processes for the LIME-based scores, each timed (default: 1 2)")
    args = p.parse_args(argv)

    from evaluation import deletion_fidelity, explainability_scores
    from recsys.data import load_movielens_100k, random_holdout
    from recsys.explain import (
        BprRepresenterExplainer,
        HistoryLimeExplainer,
        HistoryShapExplainer,
        ImplicitAlsExplainer,
        deletion_score_fn,
        foldin_agreement,
    )
    from recsys.models import ALS, BPR, EASE, ItemKNN

    ds = load_movielens_100k(args.data)
    X = random_holdout(ds.interactions, test_fraction=0.25, random_state=args.seed).train.binary()
    rng = np.random.default_rng(args.seed)
    users = np.sort(rng.choice(X.shape[0], size=min(args.users, X.shape[0]), replace=False))
    models = {
        "ease": EASE(l2=500.0).fit(X),
        "item_knn": ItemKNN(k_neighbours=100).fit(X),
        "als": ALS(factors=64, iterations=15, random_state=args.seed).fit(X),
        "bpr": BPR(factors=64, iterations=100, random_state=args.seed).fit(X),
    }
    # as the service does once its model is loaded (recsys.serving.serve): the objects alive
    # now (libraries, data, models) leave the cyclic collector's reach, so a full collection
    # triggered mid-loop does not add a walk over all of them (79-87 ms in earlier runs) to one
    # user's time
    gc.collect()
    gc.freeze()
    print(f"MovieLens 100K, {users.size} sampled users, top-10 each (after gc.freeze, as serving does)")
    print(f"{'model / explainer':32s} {'median ms':>10s} {'max ms':>10s}")
    cases = [
        ("ease / exact SHAP", HistoryShapExplainer(models["ease"]), models["ease"], users),
        ("item_knn / exact SHAP", HistoryShapExplainer(models["item_knn"]), models["item_knn"], users),
        ("als / implicit explain", ImplicitAlsExplainer(models["als"]), models["als"], users),
        ("als / Kernel SHAP (20 users)", HistoryShapExplainer(models["als"], n_samples=200), models["als"], users[:20]),
        ("bpr / representer (fast path)", BprRepresenterExplainer(models["bpr"]), models["bpr"], users),
        ("bpr / Kernel SHAP (20 users)", HistoryShapExplainer(models["bpr"], n_samples=200), models["bpr"], users[:20]),
    ]
    for label, explainer, model, sample in cases:
        ids, _ = model.recommend(sample, 10)
        times = []
        for u, row in zip(sample, ids):
            t0 = time.perf_counter()
            explainer.explain(int(u), row[row >= 0])
            times.append((time.perf_counter() - t0) * 1000)
        print(f"{label:32s} {np.median(times):10.1f} {np.max(times):10.1f}")

    gc.unfreeze()  # the rest is batch work, as in a training run (which does not freeze)

    # is the fast path as faithful as Kernel SHAP? the same deletion test on the same pairs
    bpr, sample = models["bpr"], users[:40]
    ids, _ = bpr.recommend(sample, 3)
    attributions = {
        "representer": BprRepresenterExplainer(bpr).explain_rankings(sample, ids),
        "Kernel SHAP (200 coalitions)": HistoryShapExplainer(bpr, n_samples=200).explain_rankings(sample, ids),
    }
    score_fn = deletion_score_fn(bpr)
    print(f"\nBPR deletion fidelity, {sample.size} users x top-3 (higher: the top items matter more)")
    for label, rows in attributions.items():
        flat = [e for row in rows for e in row]
        line = ", ".join(
            f"m={m}: {deletion_fidelity(score_fn, [e.user for e in flat], [e.item for e in flat], flat, m=m):.2f}"
            for m in (1, 3, 10)
        )
        print(f"  {label:30s} {line}")

    for name in ("ease", "bpr"):
        model = models[name]
        ids, _ = model.recommend(users, 10)
        print(f"\nSHAP and LIME-based scores for {users.size} users ({name}, 2 LIME seeds x 200 samples; target <= 60 s)")
        for n_jobs in args.n_jobs:
            t0 = time.perf_counter()
            shap = [e for row in HistoryShapExplainer(model, n_samples=200, n_jobs=n_jobs).explain_rankings(users, ids) for e in row]
            lime = [
                [e for row in HistoryLimeExplainer(model, n_samples=200, random_state=s, n_jobs=n_jobs).explain_rankings(users, ids) for e in row]
                for s in (0, 1)
            ]
            scores = explainability_scores(
                explanations=shap, shap_explanations=shap, lime_explanations=lime[0], explanations_by_seed=lime
            )
            elapsed = time.perf_counter() - t0
            # worker processes are started by the first parallel call (included in its time)
            print(f"  n_jobs={n_jobs}: {elapsed:.1f} s; " + ", ".join(f"{k}={v:.3f}" for k, v in scores.items() if np.isfinite(v)))

    t0 = time.perf_counter()
    rho = foldin_agreement(models["bpr"], users)
    print(f"\nBPR fold-in vs served scores, Spearman over unseen items, {users.size} users: "
          f"mean {np.nanmean(rho):.3f}, median {np.nanmedian(rho):.3f}, min {np.nanmin(rho):.3f} "
          f"({time.perf_counter() - t0:.1f} s)")
    # the negative sample's size: cost is linear in it, fidelity to the served model grows with it
    line = ", ".join(
        f"{n}: {np.nanmean(foldin_agreement(models['bpr'], users, n_negatives=n)):.3f}"
        for n in (64, 128, 256, 512)
    )
    print(f"  mean agreement by number of negatives drawn: {line}")


if __name__ == "__main__":
    main()
