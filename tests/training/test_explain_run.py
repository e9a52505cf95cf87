"""`fairrec run` explains a seeded sample of users' lists and scores the explanations."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from training.cli import main

CONFIG = {
    "name": "explain",
    "data": {"loader": "synthetic", "n_users": 150, "n_items": 60, "n_interactions": 3000},
    "models": [
        {"name": "pop", "type": "popularity"},
        {"name": "ease", "type": "ease", "params": {"l2": 50.0}},
        {"name": "bpr", "type": "bpr", "params": {"factors": 4, "iterations": 5}},
    ],
    "evaluation": {"k": 5},
    "explain": {"n_users": 8, "lime_samples": 60},
}


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("explain")
    cfg = tmp / "c.yaml"
    cfg.write_text(yaml.safe_dump(CONFIG))
    code = main(["run", str(cfg), "--out", str(tmp / "out"), "--tracking-uri", f"sqlite:///{tmp / 'm.db'}", "--quiet"], env={})
    assert code == 0
    return tmp / "out"


def _metrics(out: Path, name: str) -> dict[str, float]:
    return json.loads((out / name / "metrics.json").read_text())


def test_ease_explanations_are_scored_and_written(out: Path) -> None:
    m = _metrics(out, "ease")
    assert m["explain.coverage"] == 1.0
    assert m["explain.fidelity"] > 1.0  # top attributions matter more than random history items
    assert 0.0 <= m["explain.lime_r2"] <= 1.0
    assert 0.0 <= m["explain.stability"] <= 1.0
    frame = pd.read_parquet(out / "ease" / "explanations.parquet")
    assert set(frame["method"]) == {"shap", "lime"}
    assert frame["user_id"].nunique() == 8
    recs = pd.read_parquet(out / "ease" / "recommendations.parquet")
    merged = frame.merge(recs, on=["user_id", "item_id", "rank"])
    assert len(merged) == len(frame)  # every explanation is of an item actually recommended at that rank
    assert frame["text"].str.startswith("Because you watched").any()


def test_popularity_explains_itself_and_bpr_is_not_given_invented_reasons(out: Path) -> None:
    pop = pd.read_parquet(out / "pop" / "explanations.parquet")
    assert set(pop["text"]) == {"Popular with many users"}
    assert not (out / "bpr" / "explanations.parquet").exists()
    assert not any(k.startswith("explain.") for k in _metrics(out, "bpr"))
    report = json.loads((out / "bpr" / "fairness_report.json").read_text())
    assert report["explanations"].startswith("not explained: ")


def test_texts_never_mention_sensitive_attributes(out: Path) -> None:
    texts = " ".join(pd.read_parquet(out / "ease" / "explanations.parquet")["text"]).lower()
    for word in ("gender", "female", "male", "age", "women", "men "):
        assert word not in texts
