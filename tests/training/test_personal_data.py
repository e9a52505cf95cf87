"""A run keeps only the per-user data that recomputing its numbers needs, and keeps it out of MLflow."""

from __future__ import annotations

import stat
from pathlib import Path

import pandas as pd
import pytest
import yaml
from mlflow import MlflowClient

from training.cli import main

CONFIG = {
    "name": "minimal",
    "data": {"loader": "synthetic", "n_users": 60, "n_items": 40, "n_interactions": 800},
    "models": [{"name": "pop", "type": "popularity"}],
    "evaluation": {"k": 5},
    "explain": {"enabled": False},
    "fairness": {"sensitive": ["gender"]},
}


def test_user_attributes_stay_out_of_mlflow_and_only_the_sensitive_ones_are_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(CONFIG), encoding="utf-8")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert main(["run", str(cfg), "--out", str(tmp_path / "out"), "--tracking-uri", uri, "--quiet"], env={}) == 0
    capsys.readouterr()
    client = MlflowClient(tracking_uri=uri)
    parent = next(r for r in client.search_runs([client.get_experiment_by_name("minimal").experiment_id])
                  if "mlflow.parentRunId" not in r.data.tags)
    assert "users.parquet" not in {a.path for a in client.list_artifacts(parent.info.run_id)}
    users = tmp_path / "out" / "users.parquet"
    assert list(pd.read_parquet(users).columns) == ["user_id", "gender"]  # age_group, activity_level: not needed
    assert stat.S_IMODE(users.stat().st_mode) == 0o600  # the operator's data, not an experiment's
