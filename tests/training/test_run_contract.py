"""`fairrec run` end to end: files, MLflow runs, and every number recomputable from the files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from mlflow import MlflowClient

from tests.training.reference import per_user_reference
from training.cli import main

K = 5
CONFIG = {
    "name": "contract",
    "seed": 3,
    "data": {"loader": "synthetic", "n_users": 120, "n_items": 60, "n_interactions": 2400},
    "split": {"method": "random_holdout", "test_fraction": 0.25, "relevance_threshold": 3},
    "models": [
        {"name": "pop", "type": "popularity"},
        {"name": "knn", "type": "item_knn", "params": {"k_neighbours": 20}},
        {"name": "als", "type": "als", "params": {"factors": 8, "iterations": 3}},
        {"name": "ease", "type": "ease", "params": {"l2": 50.0}},
    ],
    "evaluation": {"k": K},
    "explain": {"enabled": False},  # explanations are tested in test_explain_run.py
}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, int, str]:
    tmp = tmp_path_factory.mktemp("run")
    cfg = tmp / "c.yaml"
    cfg.write_text(yaml.safe_dump(CONFIG))
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    out = tmp / "out"
    code = main(["run", str(cfg), "--out", str(out), "--tracking-uri", uri, "--quiet"], env={})
    return out, uri, code, str(tmp)


def _reference_metrics(out: Path, name: str) -> dict[str, float]:
    """Every relevance number of metrics.json, recomputed from the parquet files alone."""
    per_user = per_user_reference(out, name, K)
    ref = {f"{m}_at_{K}": float(per_user[m].mean()) for m in per_user.columns if m != "user_id"}
    recs = pd.read_parquet(out / name / "recommendations.parquet")
    items = pd.read_parquet(out / "items.parquet")
    ref[f"coverage_at_{K}"] = recs["item_id"].nunique() / len(items)
    counts = np.sort(recs["item_id"].value_counts().reindex(items["item_id"], fill_value=0).to_numpy())
    n = len(counts)
    ref[f"exposure_gini_at_{K}"] = float(((2 * np.arange(1, n + 1) - n - 1) * counts).sum() / (n * counts.sum()))
    ref["n_users_evaluated"] = float(len(per_user))
    return ref


def test_run_succeeds_and_writes_the_contract_files(finished_run: tuple) -> None:
    out, _, code, _ = finished_run
    assert code == 0
    for rel in ("config.yaml", "split/train.parquet", "split/test.parquet", "users.parquet", "items.parquet", "summary.json"):
        assert (out / rel).is_file(), rel
    train = pd.read_parquet(out / "split" / "train.parquet")
    test = pd.read_parquet(out / "split" / "test.parquet")
    assert list(train.columns) == ["user_id", "item_id", "rating", "timestamp"]
    assert test["rating"].min() >= 3  # test holds only relevant items
    assert not set(zip(train.user_id, train.item_id)) & set(zip(test.user_id, test.item_id))
    resolved = yaml.safe_load((out / "config.yaml").read_text())
    assert resolved["models"][2]["params"]["factors"] == 8
    assert resolved["models"][2]["params"]["regularization"] == 0.05  # defaults filled in
    for spec in CONFIG["models"]:
        recs = pd.read_parquet(out / spec["name"] / "recommendations.parquet")
        assert list(recs.columns) == ["user_id", "item_id", "rank", "score"]
        assert set(recs["rank"]) <= set(range(1, K + 1))
        assert set(recs["user_id"]) == set(test["user_id"])
        # never recommends a training item
        assert not set(zip(recs.user_id, recs.item_id)) & set(zip(train.user_id, train.item_id))
        assert (out / spec["name"] / "model" / "model.json").is_file()


@pytest.mark.parametrize("name", [m["name"] for m in CONFIG["models"]])
def test_every_relevance_number_is_recomputable_from_the_files(finished_run: tuple, name: str) -> None:
    out = finished_run[0]
    logged = json.loads((out / name / "metrics.json").read_text())
    assert all(isinstance(v, (int, float)) for v in logged.values())
    for key, value in _reference_metrics(out, name).items():
        assert logged[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key


def test_mlflow_has_one_parent_and_a_child_per_model(finished_run: tuple) -> None:
    out, uri, _, _ = finished_run
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("contract")
    runs = client.search_runs([exp.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1 and len(children) == len(CONFIG["models"])
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["fairrec.status"] == "complete"
    assert parent.data.params["models.2.params.factors"] == "8"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["run_id"] == parent.info.run_id
    for child in children:
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        name = child.data.tags["mlflow.runName"]
        logged = json.loads((out / name / "metrics.json").read_text())
        assert child.data.metrics[f"ndcg_at_{K}"] == pytest.approx(logged[f"ndcg_at_{K}"])
        artifacts = {a.path for a in client.list_artifacts(child.info.run_id)}
        assert {"recommendations.parquet", "metrics.json", "model"} <= artifacts
    parent_artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"config.yaml", "split", "items.parquet", "summary.json", "gate_rules.json", "validation.json"} <= parent_artifacts
    assert "users.parquet" not in parent_artifacts  # per-user attributes stay with the operator


def test_a_failed_run_leaves_no_result_and_keeps_the_previous_one(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "previous.txt").write_text("keep me")
    bad = dict(CONFIG, models=[CONFIG["models"][0], {"name": "big", "type": "ease", "params": {"max_items": 10}}])
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(bad))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    code = main(["run", str(cfg), "--out", str(out), "--tracking-uri", uri, "--quiet"], env={})
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ")
    assert "max_items" in err and "Traceback" not in err
    assert (out / "previous.txt").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "mlartifacts") == ["c.yaml", "mlflow.db", "out"]
    client = MlflowClient(tracking_uri=uri)
    runs = client.search_runs([client.get_experiment_by_name("contract").experiment_id])
    by_name = {r.data.tags["mlflow.runName"]: r for r in runs}
    # it failed while scoring candidates on validation, before any candidate was recorded
    assert list(by_name) == ["contract"] and by_name["contract"].info.status == "FAILED"


def test_validate_command(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(CONFIG))
    assert main(["validate", str(cfg)]) == 0
    assert "valid (4 model(s): pop, knn, als, ease)" in capsys.readouterr().out
    assert main(["validate", str(cfg), "--set", "evaluation.k=-1"]) == 2
    assert "evaluation.k: input should be greater than or equal to 1; received -1" in capsys.readouterr().err
