"""The shipped MovieLens 100K config, end to end on the real GroupLens files."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from training.cli import main

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.ml100k
def test_ml100k_config_runs_and_beats_the_published_ndcg(ml100k_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    code = main(
        [
            "run", str(REPO / "configs" / "ml100k.yaml"),
            "--set", f"data.path={ml100k_dir}",
            "--set", "explain.enabled=false",  # explanations are tested in test_explain_run.py
            "--out", str(out),
            "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}",
            "--quiet",
        ],
        env={},
    )
    assert code == 0
    train = pd.read_parquet(out / "split" / "train.parquet")
    test = pd.read_parquet(out / "split" / "test.parquet")
    assert len(train) + len(test) == 100_000  # every rating counts as relevant
    per_user = test.groupby("user_id").size() / (train.groupby("user_id").size() + test.groupby("user_id").size())
    assert per_user.between(0.2, 0.3).all()  # per-user 75/25
    users = pd.read_parquet(out / "users.parquet")
    assert users["gender"].value_counts().to_dict() == {"M": 670, "F": 273}
    ndcg = {
        name: json.loads((out / name / "metrics.json").read_text())["ndcg_at_10"]
        for name in ("popularity", "item_knn", "als", "bpr", "ease")
    }
    # Microsoft Recommenders' best published ML-100K NDCG@10 (BiVAE) is 0.475.
    assert max(ndcg.values()) >= 0.475, ndcg
    assert ndcg["ease"] >= 0.475
    # every personalised model beats popularity on this data
    assert min(ndcg[m] for m in ("item_knn", "als", "bpr", "ease")) > ndcg["popularity"]
