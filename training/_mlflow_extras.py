"""What a run shows in the MLflow UI beyond flat metrics: headline metrics, tables, datasets, descriptions.

A candidate computes a few hundred metrics, most of them one value per
sensitive group (``ATTR.METRIC.GROUP``). Logged as MLflow metrics they become
hundreds of one-bar charts; :func:`partition_metrics` keeps every other metric
(and every metric a gate rule names) as an MLflow metric and moves the
per-group values into a table (:func:`per_group_table`) that the UI previews.
``metrics.json`` stays complete.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from evaluation import sanitize_label
from training._tracking import Tracker

__all__ = [
    "DESCRIPTION_TAG",
    "gate_table",
    "gate_metric_names",
    "log_candidate",
    "log_dataset_inputs",
    "log_tables",
    "partition_metrics",
    "per_attribute_table",
    "per_group_table",
    "split_dataset_inputs",
]

#: the tag the MLflow UI shows as a run's description
DESCRIPTION_TAG = "mlflow.note.content"
_SUMMARIES = frozenset({"difference", "ratio"})
#: name prefixes of run-level families: never per-group, even for an attribute of that name
_FAMILIES = frozenset({"gate", "validation", "explain", "twin", "mitigation", "levelling_down", "disparate_impact",
                       "four_fifths_violated", "bias_amplification", "exposure_share", "relevant_share",
                       "catalog_share", "contains_rate_at", "list_share_at"})


def _group_parts(name: str, attributes: frozenset[str]) -> tuple[str, str, str] | None:
    """``(attribute, metric, group)`` of a per-group metric name, else None."""
    parts = name.split(".")
    if len(parts) != 3 or parts[0] not in attributes or parts[0] in _FAMILIES or parts[2] in _SUMMARIES:
        return None
    return parts[0], parts[1], parts[2]


def partition_metrics(
    names: Iterable[str], *, sensitive: Sequence[str], keep: Iterable[str] = ()
) -> tuple[list[str], list[str]]:
    """Split metric names into those logged as MLflow metrics and the per-group ones.

    A per-group name is ``ATTR.METRIC.GROUP``: three dot-separated parts, the
    first a sensitive attribute (as :func:`evaluation.sanitize_label` writes
    it), the last neither ``difference`` nor ``ratio``. Every other name, and
    every name in ``keep`` (the gate's metrics), stays a metric.

    Parameters
    ----------
    names : iterable of str
        Metric names of one candidate.
    sensitive : sequence of str
        The config's ``fairness.sensitive`` attributes.
    keep : iterable of str
        Names that stay metrics whatever their form (every metric a gate rule reads).

    Returns
    -------
    (metrics, per_group) : tuple of two lists of str
        Both in the order of ``names``; together they hold every name once.

    Examples
    --------
    >>> partition_metrics(
    ...     ["ndcg_at_10", "gender.ndcg_at_10.F", "gender.ndcg_at_10.difference",
    ...      "disparate_impact.gender", "age_group.recall_at_10.lt18", "gender.recall_at_10.M"],
    ...     sensitive=["gender", "age group"], keep=["gender.recall_at_10.M"])
    (['ndcg_at_10', 'gender.ndcg_at_10.difference', 'disparate_impact.gender', 'gender.recall_at_10.M'], ['gender.ndcg_at_10.F', 'age_group.recall_at_10.lt18'])
    """
    attributes = frozenset(sanitize_label(a) for a in sensitive)
    kept = frozenset(keep)
    metrics, per_group = [], []
    for name in names:
        if name in kept or _group_parts(name, attributes) is None:
            metrics.append(name)
        else:
            per_group.append(name)
    return metrics, per_group


def per_group_table(
    metrics: Mapping[str, float], names: Iterable[str], *, sensitive: Sequence[str],
    report: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """One row per per-group value: attribute, metric, group, value and the group's size ``n``.

    ``n`` comes from the fairness report's ``consumer.ATTR.counts`` (missing: -1).

    Examples
    --------
    >>> per_group_table({"gender.ndcg_at_10.F": 0.25}, ["gender.ndcg_at_10.F"], sensitive=["gender"],
    ...                 report={"consumer": {"gender": {"counts": {"F": 12}}}})
      attribute      metric group  value   n
    0    gender  ndcg_at_10     F   0.25  12
    """
    attributes = {sanitize_label(a): a for a in sensitive}
    consumer = (report or {}).get("consumer", {})
    sizes = {
        (sanitize_label(attr), sanitize_label(group)): int(n)
        for attr, block in consumer.items() if isinstance(block, Mapping)
        for group, n in (block.get("counts") or {}).items()
    }
    rows = []
    for name in names:
        parts = _group_parts(name, frozenset(attributes))
        if parts is None:
            continue
        attr, metric, group = parts
        rows.append((attributes[attr], metric, group, float(metrics[name]), sizes.get((attr, group), -1)))
    return pd.DataFrame(rows, columns=["attribute", "metric", "group", "value", "n"])


def per_attribute_table(metrics: Mapping[str, float], *, sensitive: Sequence[str]) -> pd.DataFrame:
    """One row per (attribute, metric): the between-group difference and ratio.

    Examples
    --------
    >>> per_attribute_table({"gender.ndcg_at_10.difference": 0.1, "gender.ndcg_at_10.ratio": 0.8},
    ...                     sensitive=["gender"])
      attribute      metric  difference  ratio
    0    gender  ndcg_at_10         0.1    0.8
    """
    rows = []
    for attr in sensitive:
        prefix = sanitize_label(attr) + "."
        found = sorted({n[len(prefix):].rsplit(".", 1)[0] for n in metrics
                        if n.startswith(prefix) and n.rsplit(".", 1)[-1] in _SUMMARIES})
        for metric in found:
            rows.append((attr, metric, metrics.get(f"{prefix}{metric}.difference"),
                         metrics.get(f"{prefix}{metric}.ratio")))
    return pd.DataFrame(rows, columns=["attribute", "metric", "difference", "ratio"])


def gate_table(decision: Mapping[str, Any]) -> pd.DataFrame:
    """One row per gate check (from ``GateDecision.to_json()``).

    Examples
    --------
    >>> gate_table({"checks": [{"metric": "ndcg_at_10", "comparison": ">=", "threshold": 0.1,
    ...                         "value": 0.2, "passed": True, "reason": "ok"}]}).to_dict(orient="records")
    [{'metric': 'ndcg_at_10', 'comparison': '>=', 'threshold': 0.1, 'value': 0.2, 'passed': True, 'reason': 'ok'}]
    """
    columns = ["metric", "comparison", "threshold", "value", "passed", "reason"]
    return pd.DataFrame([[c.get(k) for k in columns] for c in decision.get("checks", [])], columns=columns)


def log_tables(tracker: Tracker, run_id: str, tables: Mapping[str, pd.DataFrame]) -> None:
    """``MlflowClient.log_table`` for each non-empty table, as ``tables/NAME.json``."""
    for name, frame in tables.items():
        if len(frame):
            tracker.guard(f"logging table {name}", tracker.client.log_table, run_id,
                          data=frame, artifact_file=f"tables/{name}.json")


def gate_metric_names(rules: Any) -> set[str]:
    """Every metric name a gate's rules read (mapping keys, strings and sets among its fields)."""
    import dataclasses

    names: set[str] = set()
    for f in dataclasses.fields(rules):
        value = getattr(rules, f.name)
        if isinstance(value, str):
            names.add(value)
        elif isinstance(value, Mapping):
            names.update(str(k) for k in value)
        elif isinstance(value, (set, frozenset, tuple, list)):
            names.update(v for v in value if isinstance(v, str))
    return names


def split_dataset_inputs(frames: Mapping[str, pd.DataFrame], *, name: str, source: str) -> list[Any]:
    """The split frames as MLflow ``DatasetInput`` entities, their context the key (``training``...).

    Built once per run (the digest hashes the frame) and logged on every run with
    :func:`log_dataset_inputs`. ``mlflow.log_input`` needs the fluent API's active
    run; fairrec names its runs explicitly, so the ``DatasetInput`` that
    ``mlflow.log_input`` would build is built here and logged with the client.
    """
    import mlflow.data
    from mlflow.entities import DatasetInput, InputTag
    from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

    inputs = []
    for context, frame in frames.items():
        with warnings.catch_warnings():  # integer ids cannot be missing; a path is a local source
            warnings.filterwarnings("ignore", "Hint: Inferred schema contains integer", UserWarning)
            warnings.filterwarnings("ignore", "The specified dataset source", UserWarning)
            dataset = mlflow.data.from_pandas(frame, source=source, name=f"{name}-{context}")
            entity = dataset._to_mlflow_entity()  # infers the schema (the integer hint)
        inputs.append(DatasetInput(dataset=entity, tags=[InputTag(key=MLFLOW_DATASET_CONTEXT, value=context)]))
    return inputs


def log_dataset_inputs(tracker: Tracker, run_id: str, inputs: Sequence[Any]) -> None:
    """Log :func:`split_dataset_inputs` on one run."""
    if inputs:
        tracker.guard("logging the split as dataset inputs", tracker.client.log_inputs, run_id,
                      datasets=list(inputs))


def log_candidate(
    tracker: Tracker, run_id: str, metrics: Mapping[str, float], *, sensitive: Sequence[str],
    keep: Iterable[str], report: Mapping[str, Any], decision: Mapping[str, Any],
) -> None:
    """A candidate's MLflow metrics (per-group values left out) and its detail tables."""
    names, per_group = partition_metrics(metrics, sensitive=sensitive, keep=keep)
    tracker.log_metrics(run_id, {n: metrics[n] for n in names})
    log_tables(tracker, run_id, {
        "per_group": per_group_table(metrics, per_group, sensitive=sensitive, report=report),
        "per_attribute": per_attribute_table(metrics, sensitive=sensitive),
        "gate_checks": gate_table(decision),
    })
