"""Turn validated config sections into library objects (loaders, splits, models).

The only place that maps registry keys to library calls, so the library never
sees a config object.
"""

from __future__ import annotations

from typing import Any

from recsys.data import (
    Dataset,
    Split,
    apply_relevance_threshold,
    generate_synthetic,
    leave_last_k,
    load_movielens_100k,
    load_table,
    random_holdout,
    time_cutoff,
)
from recsys.models import Recommender, make_model
from training._schema import (
    LeaveLastKSplit,
    MovieLens100KData,
    RandomHoldoutSplit,
    SyntheticData,
    TableData,
    TimeCutoffSplit,
)

__all__ = ["build_model", "load_dataset", "split_dataset", "validation_split"]


def load_dataset(cfg: SyntheticData | MovieLens100KData | TableData, *, seed: int) -> Dataset:
    if isinstance(cfg, SyntheticData):
        params = cfg.model_dump(exclude={"loader", "seed"})
        return generate_synthetic(**params, random_state=seed if cfg.seed is None else cfg.seed)
    if isinstance(cfg, MovieLens100KData):
        return load_movielens_100k(cfg.path)
    return load_table(
        interactions=cfg.interactions, users=cfg.users, items=cfg.items, columns=dict(cfg.columns),
        user_columns=dict(cfg.user_columns), item_columns=dict(cfg.item_columns),
    )


def split_dataset(
    cfg: RandomHoldoutSplit | LeaveLastKSplit | TimeCutoffSplit, dataset: Dataset, *, seed: int
) -> Split:
    data = dataset.interactions
    if isinstance(cfg, RandomHoldoutSplit):
        split = random_holdout(
            data,
            test_fraction=cfg.test_fraction,
            min_train=cfg.min_train,
            random_state=seed if cfg.seed is None else cfg.seed,
        )
    elif isinstance(cfg, LeaveLastKSplit):
        split = leave_last_k(data, k=cfg.k, min_train=cfg.min_train)
    else:
        split = time_cutoff(data, cutoff=cfg.cutoff, test_fraction=cfg.test_fraction)
    return apply_relevance_threshold(split, cfg.relevance_threshold)


def validation_split(
    cfg: RandomHoldoutSplit | LeaveLastKSplit | TimeCutoffSplit, split: Split, *, seed: int
) -> Split:
    """A validation hold-out carved from ``split.train`` by the same method as the test split.

    Per-user random holdout takes the same fraction of each user's training entries (on
    its own random stream); leave-last-k the k most recent training entries; a time split
    the most recent training entries, as large a share of train as test is of the whole.
    The relevance threshold applies to the validation side as to test.
    """
    train = split.train
    if isinstance(cfg, RandomHoldoutSplit):
        inner = random_holdout(
            train,
            test_fraction=cfg.test_fraction,
            min_train=cfg.min_train,
            random_state=[seed if cfg.seed is None else cfg.seed, 1],  # a stream apart from the test split's
        )
    elif isinstance(cfg, LeaveLastKSplit):
        inner = leave_last_k(train, k=cfg.k, min_train=cfg.min_train)
    else:
        total = train.n_interactions + split.test.n_interactions
        share = cfg.test_fraction if cfg.test_fraction is not None else split.test.n_interactions / max(total, 1)
        inner = time_cutoff(train, test_fraction=min(max(share, 1e-9), 1 - 1e-9))
    return apply_relevance_threshold(inner, cfg.relevance_threshold)


def build_model(kind: str, params: dict[str, Any], *, seed: int) -> Recommender:
    params = dict(params)
    if "random_state" in params and params["random_state"] is None:
        params["random_state"] = seed
    return make_model(kind, params)
