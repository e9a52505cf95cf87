"""Per-user relevance metrics recomputed from a run's files with plain pandas and Python sets.

Deliberately independent of fairrec's vectorised metric code: tests compare the two.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd


def per_user_reference(out: Path, name: str, k: int) -> pd.DataFrame:
    """One row per test user: precision, recall, ndcg, map, mrr, hit_rate, avg_popularity, novelty, diversity."""
    recs = pd.read_parquet(out / name / "recommendations.parquet")
    test = pd.read_parquet(out / "split" / "test.parquet")
    train = pd.read_parquet(out / "split" / "train.parquet")
    users = pd.read_parquet(out / "users.parquet")
    items = pd.read_parquet(out / "items.parquet")
    relevant = test.groupby("user_id")["item_id"].apply(set).to_dict()
    pop = train.groupby("item_id")["user_id"].nunique() / len(users)
    floor = 0.5 / len(users)
    category = dict(zip(items["item_id"], items["category"]))
    lists = recs.sort_values(["user_id", "rank"]).groupby("user_id")["item_id"].apply(list).to_dict()
    rows = []
    for user, rel in relevant.items():
        lst = lists.get(user, [])
        hits = [i in rel for i in lst]
        n_rel = len(rel)
        dcg = sum(1 / math.log2(r + 2) for r, h in enumerate(hits) if h)
        idcg = sum(1 / math.log2(r + 2) for r in range(min(k, n_rel)))
        ap = sum(sum(hits[: r + 1]) / (r + 1) for r, h in enumerate(hits) if h) / min(k, n_rel)
        first = next((r for r, h in enumerate(hits) if h), None)
        ps = [pop.get(i, 0.0) for i in lst]
        pairs = [(a, b) for x, a in enumerate(lst) for b in lst[x + 1 :]]
        rows.append({
            "user_id": user,
            "precision": sum(hits) / k,
            "recall": sum(hits) / n_rel,
            "ndcg": dcg / idcg,
            "map": ap,
            "mrr": 0.0 if first is None else 1 / (first + 1),
            "hit_rate": float(any(hits)),
            "avg_popularity": float(np.mean(ps)),
            "novelty": float(np.mean([-math.log2(max(p, floor)) for p in ps])),
            "diversity": sum(category[a] != category[b] for a, b in pairs) / len(pairs) if pairs else 0.0,
        })
    return pd.DataFrame(rows)
