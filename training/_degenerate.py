"""Named warnings for metrics that would degenerate on this data (they are computed, but mean nothing).

Degenerate means: the amplification attribute has one category only (list
diversity and bias amplification are 0 by construction); an outcome no group
ever receives (parity of it is 0 or undefined); a group smaller than
``gate.min_group_size`` (its values are noise and the gate does not judge it).
Each warning starts with a stable name in brackets, e.g. ``[one_category]``, so
the CLI, the model card, MLflow and ``summary.json`` say the same thing.
"""

from __future__ import annotations

from collections.abc import Mapping

from evaluation import sanitize_label
from recsys.data import Dataset
from training._schema import ExperimentConfig

__all__ = ["data_warnings", "metric_warnings"]


def data_warnings(config: ExperimentConfig, dataset: Dataset) -> list[str]:
    """Warnings that follow from the data and the config alone (before any model is fitted).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from recsys.data import Interactions
    >>> from training._schema import ExperimentConfig
    >>> it = Interactions.from_arrays(user_index=[0, 1], item_index=[0, 1], values=[1.0, 1.0],
    ...                               user_ids=["a", "b"], item_ids=[1, 2])
    >>> ds = Dataset(interactions=it, users=pd.DataFrame({"user_id": ["a", "b"], "gender": ["F", "M"]}),
    ...              items=pd.DataFrame({"item_id": [1, 2], "category": ["unknown", "unknown"]}), name="t")
    >>> cfg = ExperimentConfig.model_validate({"name": "t", "data": {"loader": "synthetic"},
    ...     "fairness": {"sensitive": ["gender"]}, "models": [{"name": "p", "type": "popularity"}]})
    >>> for w in data_warnings(cfg, ds): print(w)  # doctest: +NORMALIZE_WHITESPACE
    [one_category] every item has the same category ('unknown'): diversity_at_10 and bias_amplification.*.category.* are 0 by construction (map the items file's column with data.item_columns.category)
    [small_group] gender group 'F' has 1 user(s), below gate.min_group_size = 30: its values are not judged
    [small_group] gender group 'M' has 1 user(s), below gate.min_group_size = 30: its values are not judged
    """
    fc, k = config.fairness, config.evaluation.k
    out = []
    attr = fc.amplification_attribute
    if attr in dataset.items.columns:
        values = dataset.items[attr].dropna().astype(str).unique()
        if len(values) <= 1:
            seen = f"({values[0]!r})" if len(values) else "(no value at all)"
            out.append(
                f"[one_category] every item has the same {attr} {seen}: diversity_at_{k} and "
                f"bias_amplification.*.{sanitize_label(attr)}.* are 0 by construction "
                f"(map the items file's column with data.item_columns.{attr})"
            )
    if fc.item_group != "popularity" and fc.item_group in dataset.items.columns:
        groups = set(dataset.items[fc.item_group].dropna().astype(str))
        if fc.protected_group not in groups:
            out.append(
                f"[no_protected_items] no item has {fc.item_group} = {fc.protected_group!r} "
                f"(fairness.protected_group): its exposure and the contains-outcome are 0 for everyone"
            )
    minimum = config.gate.min_group_size
    for attribute in fc.sensitive:
        if attribute not in dataset.users.columns:
            continue
        counts = dataset.users[attribute].astype("string").fillna("unknown").value_counts()
        if len(counts) == 1:
            out.append(f"[one_group] every user has the same {attribute} ({counts.index[0]!r}): "
                       "between-group differences are 0 by construction")
        for group, n in sorted(counts.items()):
            if n < minimum:
                out.append(f"[small_group] {attribute} group {group!r} has {n} user(s), below "
                           f"gate.min_group_size = {minimum}: its values are not judged")
    return out


def metric_warnings(config: ExperimentConfig, metrics: Mapping[str, float]) -> list[str]:
    """Warnings read off one candidate's metrics: an outcome no group ever receives.

    Examples
    --------
    >>> from training._schema import ExperimentConfig
    >>> cfg = ExperimentConfig.model_validate({"name": "t", "data": {"loader": "synthetic"},
    ...     "fairness": {"sensitive": ["gender"], "protected_group": "cat_0"},
    ...     "models": [{"name": "p", "type": "popularity"}]})
    >>> metric_warnings(cfg, {"gender.contains_cat_0_at_10.F": 0.0, "gender.contains_cat_0_at_10.M": 0.0})
    ["[no_outcome] no gender group ever receives the outcome (a top-10 holding a 'cat_0' item): demographic_parity_*.gender and disparate_impact.gender are 0 or undefined"]
    >>> metric_warnings(cfg, {"gender.contains_cat_0_at_10.F": 0.0, "gender.contains_cat_0_at_10.M": 0.1})
    []
    """
    fc, k = config.fairness, config.evaluation.k
    out = []
    for attribute in fc.sensitive:
        prefix = f"{sanitize_label(attribute)}.contains_{sanitize_label(fc.protected_group)}_at_{k}."
        rates = [v for name, v in metrics.items() if name.startswith(prefix)]
        if rates and max(rates) == 0:
            out.append(
                f"[no_outcome] no {attribute} group ever receives the outcome (a top-{k} holding a "
                f"{fc.protected_group!r} item): demographic_parity_*.{attribute} and "
                f"disparate_impact.{attribute} are 0 or undefined"
            )
    return out
