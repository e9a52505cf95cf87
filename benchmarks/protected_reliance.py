"""Protected-attribute reliance of a two-stage ranker with and without gender as a feature.

    .venv/bin/python benchmarks/protected_reliance.py [--seeds 0 1 2 3 4] [--k 10]
        [--classifier gbdt|logistic]

The README's reliance and counterfactual flip-rate figures come from this
script; the evidence test (tests/integration/test_protected_reliance.py) calls
:func:`explained` for seed 0. Setting: planted-bias synthetic data (group F
never picks cat_0 at bias 1), three categories and no hidden niches, a
gradient-boosted (``--classifier logistic``: logistic) two-stage ranker over
popularity candidates. The numbers are the run's, as ``explain_candidate``
computes them for top-``k`` lists: ``explain.protected_reliance`` (over every
candidate pair of the 60 sampled users, so it does not depend on ``k``),
``explain.counterfactual_flip_rate.gender`` and
``explain.counterfactual_change.gender`` (the sampled users' top-``k`` lists
with gender swapped). A full run takes about 5 minutes (LIME explains every
listed item; ``--k 1`` is several times faster and leaves the reliance as is).
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd


def explained(
    *, seed: int, bias: float, use_sensitive_feature: bool, k: int = 10,
    classifier: str = "gbdt",
) -> tuple[dict[str, float], str]:
    """The run's ``explain.*`` metrics and explanation note for one generator seed, top-``k`` lists."""
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
    model = TwoStageRanker(Popularity(), n_candidates=50, classifier=classifier,
                           use_sensitive_feature=use_sensitive_feature, random_state=seed)
    with threadpool_limits(1, user_api="openmp"):  # OpenMP gradient boosting crawls on a busy machine
        model.fit(ds.interactions.matrix, item_features=np.eye(3)[category], sensitive=gender)
    users = np.arange(3000)
    ids, _ = model.recommend(users, k)  # LIME explains every listed item: its cost grows with k
    result = explain_candidate(
        model, ids, users,
        user_ids=ds.interactions.user_ids,
        item_ids=ds.interactions.item_ids,
        titles=ds.items["title"].to_numpy(),
        sensitive={"gender": gender, "age_group": ds.users["age_group"].to_numpy()},
        config=ExplainConfig(n_users=60, lime_samples=50),
        seed=seed,
    )
    return result.metrics, result.note


_SETTINGS = (  # (column, bias, use_sensitive_feature)
    ("with gender", 1.0, True),
    ("with gender, no bias", 0.0, True),
    ("without gender", 1.0, False),
)
_METRICS = (
    ("reliance", "explain.protected_reliance"),
    ("flip rate", "explain.counterfactual_flip_rate.gender"),
    ("change", "explain.counterfactual_change.gender"),
)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--k", type=int, default=10, help="list length (the run's default evaluation.k)")
    p.add_argument("--classifier", choices=["gbdt", "logistic"], default="gbdt")
    args = p.parse_args(argv)
    print(f"{args.classifier}, top-{args.k} lists, 60 sampled users; columns: "
          + "; ".join(c for c, _, _ in _SETTINGS))
    header = "seed" + "".join(f"  {label:>20s}" for label, _ in _METRICS)
    print(header)
    for seed in args.seeds:
        metrics = [
            explained(seed=seed, bias=bias, use_sensitive_feature=use, k=args.k,
                      classifier=args.classifier)[0]
            for _, bias, use in _SETTINGS
        ]
        cells = ["/".join(f"{m[key]:.3f}" for m in metrics) for _, key in _METRICS]
        print(f"{seed:4d}" + "".join(f"  {c:>20s}" for c in cells), flush=True)


if __name__ == "__main__":
    main()
