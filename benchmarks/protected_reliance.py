"""Protected-attribute reliance of a two-stage ranker with and without gender as a feature.

    .venv/bin/python benchmarks/protected_reliance.py [--seeds 0 1 2 3 4]

The README's reliance figures come from this script; the evidence test
(tests/integration/test_protected_reliance.py) calls :func:`reliance` for seed 0.
Setting: planted-bias synthetic data (group F never picks cat_0 at bias 1), three
categories and no hidden niches, a gradient-boosted two-stage ranker over
popularity candidates; the reliance is the run's ``explain.protected_reliance``
as computed by ``explain_candidate``.
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd


def reliance(*, seed: int, bias: float, use_sensitive_feature: bool) -> tuple[float, str]:
    """(``explain.protected_reliance``, the explanation note) for one generator seed."""
    from threadpoolctl import threadpool_limits

    from recsys.data import generate_synthetic
    from recsys.mitigation import TwoStageRanker
    from recsys.models import Popularity
    from training._explain import explain_candidate
    from training._schema import ExplainConfig

    ds = generate_synthetic(n_users=3000, n_items=200, n_interactions=12_000, n_categories=3,
                            personalization=0.0, bias_strength=bias, random_state=seed)
    category = pd.factorize(ds.items["category"])[0]
    gender = ds.users["gender"].to_numpy()
    model = TwoStageRanker(Popularity(), n_candidates=50, classifier="gbdt",
                           use_sensitive_feature=use_sensitive_feature, random_state=seed)
    with threadpool_limits(1, user_api="openmp"):  # OpenMP gradient boosting crawls on a busy machine
        model.fit(ds.interactions.matrix, item_features=np.eye(3)[category], sensitive=gender)
    users = np.arange(3000)
    ids, _ = model.recommend(users, 1)  # reliance covers every candidate; one item keeps LIME short
    result = explain_candidate(
        model, ids, users,
        user_ids=ds.interactions.user_ids,
        item_ids=ds.interactions.item_ids,
        titles=ds.items["title"].to_numpy(),
        sensitive={"gender": gender, "age_group": ds.users["age_group"].to_numpy()},
        config=ExplainConfig(n_users=60, lime_samples=50),
        seed=seed,
    )
    return result.metrics["explain.protected_reliance"], result.note


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    args = p.parse_args(argv)
    print("seed  with gender, bias 1  with gender, no bias  without gender, bias 1")
    for seed in args.seeds:
        cells = [
            reliance(seed=seed, bias=1.0, use_sensitive_feature=True)[0],
            reliance(seed=seed, bias=0.0, use_sensitive_feature=True)[0],
            reliance(seed=seed, bias=1.0, use_sensitive_feature=False)[0],
        ]
        print(f"{seed:4d}  {cells[0]:19.3f}  {cells[1]:20.3f}  {cells[2]:22.3f}")


if __name__ == "__main__":
    main()
