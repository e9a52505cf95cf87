"""The gate's ``gate.*`` evidence on Spark runs: the same decision as in-process on the same lists."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys.data import generate_synthetic
from training._evidence import EvidenceInputs, gate_evidence
from training._gate import rules_from_config
from training._run import run_experiment
from training._schema import ExperimentConfig, GateConfig


@pytest.fixture(scope="module")
def tables(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Synthetic interactions, users and items written as table files both engines read."""
    root = tmp_path_factory.mktemp("gate-tables")
    ds = generate_synthetic(n_users=150, n_items=40, n_interactions=2400, random_state=3)
    m = ds.interactions.matrix
    pd.DataFrame({"user_id": np.repeat(ds.interactions.user_ids, np.diff(m.indptr)),
                  "item_id": ds.interactions.item_ids[m.indices], "rating": m.data,
                  "timestamp": ds.interactions.timestamps}).to_csv(root / "r.csv", index=False)
    ds.users[["user_id", "gender", "activity_level"]].to_csv(root / "users.csv", index=False)
    ds.items.to_csv(root / "items.csv", index=False)
    return root


def _config(root: Path, kind: str) -> ExperimentConfig:
    engine = {"kind": "spark", "master": "local[2]"} if kind == "spark" else {"kind": "in_process"}
    return ExperimentConfig.model_validate({
        "name": f"gate-{kind}", "seed": 4,
        "data": {"loader": "table", "interactions": str(root / "r.csv"), "users": str(root / "users.csv"),
                 "items": str(root / "items.csv")},
        "split": {"method": "leave_last_k", "k": 3},
        "models": [{"type": "popularity", "name": "pop"}],
        "evaluation": {"k": 5},
        "fairness": {"sensitive": ["gender", "activity_level"]},
        "explain": {"enabled": False},
        "gate": {"outcome_parity": {"outcome": "contains_protected"}, "provider_exposure": {"min_share": 0.05},
                 "min_group_size": 10, "n_resamples": 200, "register_models": False, "promote": False},
        "engine": engine,
    })


@pytest.mark.slow
def test_spark_gate_decision_equals_in_process_on_the_same_lists(spark, tables, tmp_path) -> None:
    local = run_experiment(_config(tables, "in_process"), out_dir=tmp_path / "local").models[0]
    remote = run_experiment(_config(tables, "spark"), out_dir=tmp_path / "spark").models[0]
    # the same split and the same (deterministic) popularity lists on both engines
    lists = spark.read.parquet(str(tmp_path / "spark" / "pop" / "recommendations.parquet")).toPandas()
    assert lists["user_id"].nunique() == remote.metrics["n_users_evaluated"] == local.metrics["n_users_evaluated"]
    for metric in ("ndcg_at_5", "recall_at_5", "exposure_share.popularity.tail"):
        assert remote.metrics[metric] == pytest.approx(local.metrics[metric], abs=1e-12), metric

    verdicts = {c.name: c.verdict for c in local.gate.checks}
    assert {c.name: c.verdict for c in remote.gate.checks} == verdicts
    assert {"utility_parity.gender", "utility_parity.activity_level", "outcome_parity.gender",
            "provider_exposure"} <= set(verdicts)
    assert "not produced" not in json.dumps(json.loads((tmp_path / "spark" / "pop" / "gate.json").read_text()))
    evidence = sorted(m for m in local.metrics if m.startswith("gate."))
    assert sorted(m for m in remote.metrics if m.startswith("gate.")) == evidence
    for m in evidence:
        assert remote.metrics[m] == pytest.approx(local.metrics[m], abs=1e-9), m
    # popularity is its own segment baseline: every judged segment's ratio is exactly 1
    assert remote.metrics["gate.utility_parity.activity_level.ratio"] == pytest.approx(1.0, abs=1e-12)


def test_precomputed_outcome_and_exposure_equal_those_derived_from_ids() -> None:
    rng = np.random.default_rng(0)
    users = np.arange(60)
    ids = np.stack([rng.permutation(12)[:4] for _ in users])
    ids[::7, 3] = -1  # padded lists
    protected = np.arange(12) >= 8
    labels = {"gender": np.where(users % 3 == 0, "F", "M")}
    per_user = {"ndcg": rng.random(60)}
    rules = rules_from_config(GateConfig.model_validate({
        "outcome_parity": {"outcome": "contains_protected"}, "provider_exposure": {"min_share": 0.2},
        "min_group_size": 5, "n_resamples": 200}), sensitive=["gender"], segments=[], k=4)
    derived = gate_evidence(EvidenceInputs(users=users, ids=ids, per_user=per_user, labels=labels,
                                           protected_items=protected, k=4, seed=1), rules)
    top = np.where(ids >= 0, protected[np.maximum(ids, 0)], False)
    w = np.where(ids >= 0, 1.0 / np.log2(np.arange(2, 6)), 0.0)
    given = gate_evidence(EvidenceInputs(users=users, per_user=per_user, labels=labels, k=4, seed=1,
                                         outcome=top.any(axis=1).astype(float),
                                         exposure=((w * top).sum(axis=1), w.sum(axis=1))), rules)
    assert given == derived
    assert {"gate.outcome_parity.gender.ratio", "gate.provider_exposure.share"} <= set(given)
    with pytest.raises(ValueError, match=r"outcome: expected ids and protected_items, or a precomputed "
                                         r"outcome; got neither"):
        gate_evidence(EvidenceInputs(users=users, per_user=per_user, labels=labels, k=4, seed=1), rules)
