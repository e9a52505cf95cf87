"""`fairrec run` explains a seeded sample of users' lists and scores the explanations."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from matplotlib.image import imread

from recsys.explain import HistoryShapExplainer, detect_item_proxies
from recsys.models import load_model
from training.cli import main

CONFIG = {
    "name": "explain",
    # F users never pick cat_0: some cat_0 items are significant gender proxies
    "data": {
        "loader": "synthetic", "n_users": 150, "n_items": 60, "n_interactions": 3000,
        "bias_strength": 1.0,
    },
    "models": [
        {"name": "pop", "type": "popularity"},
        {"name": "ease", "type": "ease", "params": {"l2": 50.0}},
        # trained enough that its fold-in ranks like it (an untrained BPR's random
        # deletions can raise the fold-in score, leaving fidelity undefined)
        {"name": "bpr", "type": "bpr",
         "params": {"factors": 8, "iterations": 50, "learning_rate": 0.05}},
    ],
    "evaluation": {"k": 5},
    "fairness": {"sensitive": ["gender", "age_group"]},
    "explain": {"n_users": 8, "lime_samples": 60, "n_jobs": 2},  # two worker processes
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


def test_popularity_explains_itself(out: Path) -> None:
    pop = pd.read_parquet(out / "pop" / "explanations.parquet")
    assert set(pop["text"]) == {"Popular with many users"}
    assert _metrics(out, "pop")["explain.protected_reliance"] == 0.0  # no user input at all


def test_bpr_is_explained_through_its_folded_in_user_factor(out: Path) -> None:
    m = _metrics(out, "bpr")
    for name in ("coverage", "fidelity", "lime_r2", "stability", "shap_lime_agreement",
                 "protected_reliance", "foldin_agreement"):
        assert f"explain.{name}" in m, name
    assert m["explain.coverage"] == 1.0
    assert m["explain.fidelity"] > 1.0
    assert 0.0 <= m["explain.lime_r2"] <= 1.0
    assert 0.0 <= m["explain.stability"] <= 1.0
    assert 0.0 <= m["explain.protected_reliance"] <= 1.0
    assert 0.5 < m["explain.foldin_agreement"] <= 1.0
    frame = pd.read_parquet(out / "bpr" / "explanations.parquet")
    assert set(frame["method"]) == {"shap", "lime"}
    assert frame["user_id"].nunique() == 8
    report = json.loads((out / "bpr" / "fairness_report.json").read_text())
    assert "BPR explained through its folded-in user factor" in report["explanations"]
    # the saved model explains the same way: SHAP plus the item bias is the fold-in score
    model = load_model(out / "bpr" / "model")
    user, item = frame[["user_id", "item_id"]].iloc[0]
    (e,) = HistoryShapExplainer(model, n_samples=200).explain(int(user), [int(item)])
    assert e.base_value == pytest.approx(float(model.item_factors_[int(item), -1]), abs=1e-6)
    assert e.base_value + e.weights.sum() == pytest.approx(e.score, abs=1e-9)


def test_shap_summary_plot_only_where_there_are_shap_values(out: Path) -> None:
    png = out / "ease" / "plots" / "shap_summary.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert imread(png).shape[0] > 100
    assert (out / "ease" / "plots" / "group_ndcg.png").exists()
    assert (out / "bpr" / "plots" / "shap_summary.png").exists()
    # popularity has explanations but no SHAP values
    assert not (out / "pop" / "plots" / "shap_summary.png").exists()


def test_history_reliance_is_the_shap_mass_on_proxy_items(out: Path) -> None:
    # recomputed from the run's files: the saved model, the users table, the lists
    model = load_model(out / "ease" / "model")
    users = pd.read_parquet(out / "users.parquet")
    assert users["user_id"].tolist() == list(range(len(users)))  # ids are the indices here
    proxies = set()
    for attribute in CONFIG["fairness"]["sensitive"]:
        proxies |= set(detect_item_proxies(model.user_items_, users[attribute].to_numpy()).tolist())
    explained = pd.read_parquet(out / "ease" / "explanations.parquet")
    recs = pd.read_parquet(out / "ease" / "recommendations.parquet").sort_values(["user_id", "rank"])
    on_proxies = total = 0.0
    for user in explained["user_id"].unique():
        items = recs.loc[recs["user_id"] == user, "item_id"].to_numpy()
        for e in HistoryShapExplainer(model).explain(int(user), items):
            weights = np.abs(e.weights)
            on_proxies += weights[np.isin(e.features, list(proxies))].sum()
            total += weights.sum()
    metric = _metrics(out, "ease")["explain.protected_reliance"]
    assert metric == pytest.approx(on_proxies / total, abs=1e-9)
    # 150 users in 4 age groups: some items' rates differ by 0.2 between a group and the rest
    assert proxies and metric > 0
    report = json.loads((out / "ease" / "fairness_report.json").read_text())
    assert f"{len(proxies)} history items detected as proxies" in report["explanations"]


def test_texts_never_mention_sensitive_attributes(out: Path) -> None:
    texts = " ".join(pd.read_parquet(out / "ease" / "explanations.parquet")["text"]).lower()
    for word in ("gender", "female", "male", "age", "women", "men "):
        assert word not in texts
