"""Which metrics stay MLflow metrics, and the tables the per-group values move to."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from training._gate import GateRules, rules_from_config
from training._mlflow_extras import (
    gate_metric_names,
    gate_table,
    partition_metrics,
    per_attribute_table,
    per_group_table,
)

SENSITIVE = ["gender", "age group"]
KEPT = [
    "ndcg_at_10", "n_users_evaluated", "fit_seconds", "disparate_impact.gender",
    "disparate_impact.age_group.ndcg_at_10", "demographic_parity_difference.gender",
    "equal_opportunity_ratio.age_group", "exposure_share.category.cat_0", "exposure_gini_at_10",
    "relevant_share.category.cat_0", "catalog_share.category.cat_1", "long_tail_share_at_10",
    "bias_amplification.gender.category.gap", "explain.fidelity", "explain.counterfactual_change.gender",
    "twin.ndcg_at_10", "levelling_down.gender", "mitigation.gender.ndcg_at_10.gap_change",
    "four_fifths_violated.gender", "gate.passed", "validation.ndcg_at_10",
    "gender.ndcg_at_10.difference", "age_group.recall_at_10.ratio", "contains_rate_at_10.category.cat_0",
]
PER_GROUP = ["gender.ndcg_at_10.F", "gender.contains_cat_0_at_10.M", "age_group.recall_at_10.lt18",
             "age_group.recall_at_10.56plus"]


def test_only_attribute_metric_group_names_move_to_tables() -> None:
    metrics, per_group = partition_metrics(KEPT + PER_GROUP, sensitive=SENSITIVE)
    assert metrics == KEPT
    assert per_group == PER_GROUP


def test_a_gate_metric_stays_a_metric_whatever_its_form() -> None:
    rules = GateRules(floors={"gender.ndcg_at_10.F": 0.2, "ndcg_at_10": 0.1},
                      ceilings={"demographic_parity_difference.gender": 0.1},
                      regression_metric="ndcg_at_10")
    keep = gate_metric_names(rules)
    assert keep == {"gender.ndcg_at_10.F", "ndcg_at_10", "demographic_parity_difference.gender"}
    metrics, per_group = partition_metrics(KEPT + PER_GROUP, sensitive=SENSITIVE, keep=keep)
    assert "gender.ndcg_at_10.F" in metrics and "gender.ndcg_at_10.F" not in per_group
    assert sorted(metrics + per_group) == sorted(KEPT + PER_GROUP)


def test_an_attribute_that_is_not_sensitive_keeps_its_names() -> None:
    assert partition_metrics(["gender.ndcg_at_10.F"], sensitive=["age_group"]) == (["gender.ndcg_at_10.F"], [])


def test_an_attribute_named_like_a_metric_family_never_moves_the_family() -> None:
    names = ["gate.utility_parity.ratio", "explain.fidelity.x", "gate.ndcg_at_10.F"]
    assert partition_metrics(names, sensitive=["gate", "explain"]) == (names, [])


def test_the_per_group_table_holds_every_moved_value_with_its_group_size() -> None:
    values = {"gender.ndcg_at_10.F": 0.25, "age_group.recall_at_10.lt18": 0.5}
    report = {"consumer": {"gender": {"counts": {"F": 40, "M": 60}}, "age group": {"counts": {"<18": 7}}}}
    table = per_group_table(values, list(values), sensitive=SENSITIVE, report=report)
    assert table.to_dict(orient="records") == [
        {"attribute": "gender", "metric": "ndcg_at_10", "group": "F", "value": 0.25, "n": 40},
        {"attribute": "age group", "metric": "recall_at_10", "group": "lt18", "value": 0.5, "n": 7},
    ]


def test_the_per_attribute_and_gate_tables() -> None:
    values = {"gender.ndcg_at_10.difference": 0.1, "gender.ndcg_at_10.ratio": 0.8,
              "gender.recall_at_10.difference": 0.2}
    table = per_attribute_table(values, sensitive=["gender"])
    assert table.fillna(-1.0).to_dict(orient="records") == [
        {"attribute": "gender", "metric": "ndcg_at_10", "difference": 0.1, "ratio": 0.8},
        {"attribute": "gender", "metric": "recall_at_10", "difference": 0.2, "ratio": -1.0},  # none logged
    ]
    checks = gate_table({"checks": [
        {"metric": "a", "comparison": ">=", "threshold": 1.0, "value": 0.5, "passed": False, "reason": "low"}]})
    assert checks.to_dict(orient="records") == [
        {"metric": "a", "comparison": ">=", "threshold": 1.0, "value": 0.5, "passed": False, "reason": "low"}]


@pytest.mark.ml100k
def test_on_movielens_every_gate_metric_is_logged(ml100k_dir: Path, tmp_path: Path) -> None:
    """The partition of a real ML-100K candidate's metrics: the gate's metrics all stay, every group moves."""
    from training._config import load_config
    from training._run import run_experiment

    cfg = load_config(Path(__file__).resolve().parents[2] / "configs" / "ml100k.yaml",
                      [f"data.path={ml100k_dir}", "explain.enabled=false"])
    cfg = cfg.model_copy(update={"models": [m for m in cfg.models if m.name == "ease"]})
    result = run_experiment(cfg, out_dir=tmp_path / "out")
    model = result.models[0]
    metrics = json.loads((tmp_path / "out" / model.name / "metrics.json").read_text())
    names, per_group = partition_metrics(metrics, sensitive=cfg.fairness.sensitive)
    # the default gate's metrics are all kept by the naming rule alone, not only by `keep`
    assert {c.metric for c in model.gate.checks} & set(metrics) <= set(names)
    rules = rules_from_config(cfg.gate, sensitive=cfg.fairness.sensitive, k=cfg.evaluation.k)
    keep = gate_metric_names(rules)
    assert partition_metrics(metrics, sensitive=cfg.fairness.sensitive, keep=keep) == (names, per_group)
    assert per_group and all(n.split(".")[-1] not in {"difference", "ratio"} for n in per_group)
    groups = {n.split(".")[0] for n in per_group}
    assert groups == {a.replace(" ", "_") for a in cfg.fairness.sensitive}
