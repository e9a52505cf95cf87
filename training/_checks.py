"""Checks of config settings against the data they meet, before anything is fitted.

The schema checks what a setting can be without data; these check what it can be
with this data: a ``split.min_train`` that leaves nobody a test item, an
``evaluation.k`` longer than the catalogue, a ``fairness.protected_group`` that is
not one of the item groups, ratings that make nothing relevant, a data set of one
user. Each failure is a :class:`~recsys.errors.FairrecError` naming the setting,
what was expected and what was received; a run that would otherwise end in a
traceback deep inside evaluation, or "succeed" on numbers that mean nothing,
stops here instead.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping

import numpy as np

from recsys.data import Dataset, Interactions
from recsys.errors import FairrecError

from training._schema import ExperimentConfig, LeaveLastKSplit, RandomHoldoutSplit, TimeCutoffSplit

__all__ = ["MIN_TEST_USERS", "check_data", "check_rank_by"]

#: an evaluation needs at least this many users with a test item (one user scores 0 or 1, and has no group)
MIN_TEST_USERS = 2


def check_data(config: ExperimentConfig, dataset: Dataset) -> None:
    """Raise :class:`FairrecError` when a setting cannot work on ``dataset``.

    Examples
    --------
    >>> from recsys.data import generate_synthetic
    >>> from training._config import parse_config
    >>> data = generate_synthetic(n_users=30, n_items=20, n_interactions=200, random_state=0)
    >>> cfg = parse_config({"name": "t", "data": {"loader": "synthetic"}, "evaluation": {"k": 50},
    ...                     "models": [{"name": "p", "type": "popularity"}]})
    >>> check_data(cfg, data)
    Traceback (most recent call last):
    ...
    recsys.errors.FairrecError: evaluation.k: expected at most the number of items in the data (20), received 50
    """
    it = dataset.interactions
    source = _source(config)
    if it.n_users < MIN_TEST_USERS or it.n_items < 2:
        raise FairrecError(
            f"{source}: expected at least {MIN_TEST_USERS} users and 2 items, received {it.n_users} "
            f"user(s) and {it.n_items} item(s); a ranking evaluated on so little says nothing"
        )
    if config.evaluation.k > it.n_items:
        raise FairrecError(
            f"evaluation.k: expected at most the number of items in the data ({it.n_items}), "
            f"received {config.evaluation.k}"
        )
    _check_values(config, it, source)
    _check_protected_group(config, dataset)
    _check_split(config, it)


def check_rank_by(config: ExperimentConfig, metrics: Mapping[str, float]) -> None:
    """``gate.rank_by`` must name a metric the run produced (else no candidate could ever win).

    >>> from training._config import parse_config
    >>> cfg = parse_config({"name": "t", "data": {"loader": "synthetic"}, "gate": {"rank_by": "ndgc_at_{k}"},
    ...                     "models": [{"name": "p", "type": "popularity"}]})
    >>> check_rank_by(cfg, {"ndcg_at_10": 0.3, "recall_at_10": 0.2})
    Traceback (most recent call last):
    ...
    recsys.errors.FairrecError: gate.rank_by: 'ndgc_at_10' is not a metric this run produces (did you mean 'ndcg_at_10'?); expected one of: ndcg_at_10, recall_at_10
    """
    name = config.gate.rank_by.replace("{k}", str(config.evaluation.k))
    if name in metrics:
        return
    hint = difflib.get_close_matches(name, list(metrics), n=1)
    suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
    raise FairrecError(
        f"gate.rank_by: {name!r} is not a metric this run produces{suggestion}; "
        f"expected one of: {', '.join(sorted(metrics))}"
    )


def _source(config: ExperimentConfig) -> str:
    data = config.data
    interactions = getattr(data, "interactions", None) or getattr(data, "path", None)
    return f"data ({data.loader}{'' if interactions is None else f': {interactions}'})"


def _check_values(config: ExperimentConfig, it: Interactions, source: str) -> None:
    values = it.matrix.data
    highest = float(values.max()) if values.size else 0.0
    if highest <= 0:
        raise FairrecError(
            f"{source}: every rating is {highest:g}; expected some ratings above 0 "
            "(an item rated 0 is never relevant, so there would be nothing to evaluate)"
        )
    threshold = config.split.relevance_threshold
    if threshold is not None and threshold > highest:
        what = "rating" if it.has_ratings else "interaction value (the data has no ratings)"
        raise FairrecError(
            f"split.relevance_threshold: expected at most the highest {what}, {highest:g}, received "
            f"{threshold:g}; no test item would be relevant"
        )


def _check_protected_group(config: ExperimentConfig, dataset: Dataset) -> None:
    fc = config.fairness
    if fc.item_group == "popularity":
        groups = ["head", "tail"]
    else:
        column = dataset.items[fc.item_group].astype("string").fillna("unknown")
        groups = sorted(column.unique())
    if fc.protected_group not in groups:
        shown = ", ".join(map(str, groups[:20])) + (f", ... ({len(groups)} in all)" if len(groups) > 20 else "")
        raise FairrecError(
            f"fairness.protected_group: expected one of the groups of fairness.item_group "
            f"{fc.item_group!r} ({shown}), received {fc.protected_group!r}"
        )


def _check_split(config: ExperimentConfig, it: Interactions) -> None:
    """Predict, with the split's own rules, whether train and test will both have users."""
    split = config.split
    counts = np.diff(it.matrix.indptr)
    if isinstance(split, RandomHoldoutSplit | LeaveLastKSplit):
        wanted = (np.floor(split.test_fraction * counts + 0.5).astype(np.int64)
                  if isinstance(split, RandomHoldoutSplit) else np.full(counts.size, split.k))
        n_test = np.clip(np.minimum(wanted, counts - split.min_train), 0, None)
        n_users = int((n_test > 0).sum())
        if n_users < MIN_TEST_USERS:
            longest = int(counts.max())
            if longest <= split.min_train:
                raise FairrecError(
                    f"split.min_train: expected less than the longest history in the data ({longest} "
                    f"interactions), received {split.min_train}; no user would have a test item"
                )
            raise FairrecError(
                f"split: {n_users} user(s) would have a test item, expected at least {MIN_TEST_USERS}; "
                f"lower split.min_train ({split.min_train}) or raise the test share (longest history: "
                f"{longest} interactions)"
            )
        return
    assert isinstance(split, TimeCutoffSplit)
    ts = it.timestamps
    if ts is None or ts.size == 0:
        return  # the split itself says the data has no timestamps
    cutoff = split.cutoff
    if cutoff is None:  # the same rule as recsys.data.time_cutoff
        n_test = int(np.floor(split.test_fraction * ts.size + 0.5))
        cutoff = int(ts.max()) + 1 if n_test == 0 else int(np.partition(ts, ts.size - n_test)[ts.size - n_test])
    setting = "split.cutoff" if split.cutoff is not None else "split.test_fraction"
    received = split.cutoff if split.cutoff is not None else split.test_fraction
    earliest, latest = int(ts.min()), int(ts.max())
    if cutoff <= earliest or cutoff > latest:
        side = "training" if cutoff <= earliest else "test"
        raise FairrecError(
            f"{setting}: expected a cutoff after the earliest timestamp ({earliest}) and at most the "
            f"latest ({latest}), received {received!r} (cutoff {cutoff}); the {side} side would be empty"
        )
    test_users = np.unique(it.row_index()[ts >= cutoff]).size
    if test_users < MIN_TEST_USERS:
        raise FairrecError(
            f"{setting}: {test_users} user(s) would have a test item with cutoff {cutoff}, "
            f"expected at least {MIN_TEST_USERS}; received {received!r}"
        )
