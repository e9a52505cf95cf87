"""`fairrec run` explains the two-stage ranker: feature SHAP and LIME, scores, texts, plot."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from matplotlib.image import imread
from mlflow import MlflowClient

from training.cli import main

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:fairlearn")


def _two_stage(**params: object) -> dict:
    return {"kind": "two_stage", "n_candidates": 20, **params}


CONFIG = {
    "name": "two-stage-explain",
    "seed": 1,
    "data": {"loader": "synthetic", "n_users": 300, "n_items": 80, "n_interactions": 4000,
             "bias_strength": 0.9},
    "fairness": {"sensitive": ["gender", "age_group"], "item_group": "category",
                 "protected_group": "cat_0"},
    "models": [
        {"name": "with_gender", "type": "popularity",
         "mitigation": _two_stage(constraint=None, use_sensitive_feature=True)},
        {"name": "without_gender", "type": "popularity", "mitigation": _two_stage(constraint=None)},
        {"name": "fair", "type": "ease", "params": {"l2": 50.0}, "mitigation": _two_stage(bound=0.02)},
    ],
    "evaluation": {"k": 5},
    "explain": {"n_users": 8, "lime_samples": 60},
}
NAMES = ("with_gender", "without_gender", "fair")
SCORES = ("fidelity", "lime_r2", "stability", "shap_lime_agreement", "protected_reliance",
          "coverage")
# every phrase the run may show for a two-stage feature, and the generic fallback
PHRASES = (
    "it closely matches your history", "it is among your closest matches",
    "it is popular with many users", "it is a less widely known pick",
    "it is like the items you choose most often",
)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    tmp = tmp_path_factory.mktemp("two_stage_explain")
    cfg = tmp / "c.yaml"
    cfg.write_text(yaml.safe_dump(CONFIG))
    uri = f"sqlite:///{tmp / 'm.db'}"
    code = main(["run", str(cfg), "--out", str(tmp / "out"), "--tracking-uri", uri, "--quiet"],
                env={})
    assert code == 0
    return tmp / "out", uri


def _metrics(out: Path, name: str) -> dict[str, float]:
    return json.loads((out / name / "metrics.json").read_text())


def test_every_explanation_score_is_reported(run):
    out, _ = run
    for name in NAMES:
        m = _metrics(out, name)
        assert {f"explain.{s}" for s in SCORES} <= set(m), name
        assert m["explain.coverage"] == 1.0
        # removing the 3 top-attributed features lowers the log-odds far more than 3 random
        assert m["explain.fidelity"] > 2.0
        assert 0.0 <= m["explain.lime_r2"] <= 1.0
        assert 0.0 <= m["explain.stability"] <= 1.0
        assert 0.0 < m["explain.shap_lime_agreement"] <= 1.0  # both explain the same output


def test_protected_reliance_sees_the_sensitive_feature(run):
    out, _ = run
    report = json.loads((out / "with_gender" / "fairness_report.json").read_text())
    assert "sensitive features ['sensitive=F', 'sensitive=M']" in report["explanations"]
    assert _metrics(out, "with_gender")["explain.protected_reliance"] > 0.0
    # no sensitive feature, and none of the pair features is a proxy on this data
    for name in ("without_gender", "fair"):
        assert _metrics(out, name)["explain.protected_reliance"] == 0.0


def test_every_run_logs_the_counterfactual_flip_rate_per_attribute(run):
    out, _ = run
    names = [f"explain.counterfactual_{m}{a}" for m in ("flip_rate", "change")
             for a in ("", ".gender", ".age_group")]
    for name in NAMES:
        m = _metrics(out, name)
        assert set(names) <= set(m), name
        # "with_gender" is logistic: its one-hot gender shifts the log-odds of all of a
        # user's candidates by one constant, so it can never reorder her list, though
        # SHAP gives the feature mass. "without_gender" never sees gender; "fair" is
        # ExponentiatedGradient-mitigated, and its predictors never see it either.
        assert all(m[n] == 0.0 for n in names), name
    assert _metrics(out, "with_gender")["explain.protected_reliance"] > 0.0


def test_the_constrained_model_is_explained_through_its_mixture(run):
    out, _ = run
    note = json.loads((out / "fair" / "fairness_report.json").read_text())["explanations"]
    assert re.search(r"mitigator_ \(weight-averaged log-odds of \d+ predictors\)", note)


def test_explanations_are_of_the_recommended_items_and_never_name_a_sensitive_feature(run):
    out, _ = run
    for name in NAMES:
        frame = pd.read_parquet(out / name / "explanations.parquet")
        assert set(frame["method"]) == {"shap", "lime"}
        assert frame["user_id"].nunique() == 8
        recs = pd.read_parquet(out / name / "recommendations.parquet")
        assert len(frame.merge(recs, on=["user_id", "item_id", "rank"])) == len(frame)
        assert len(frame) == 2 * len(recs[recs["user_id"].isin(frame["user_id"])])
        for text in frame["text"]:
            if text == "Popular among people with similar tastes":
                continue
            assert text.startswith("Recommended because "), text
            body = text.removeprefix("Recommended because ")
            assert all(part in PHRASES for part in re.split(r", | and (?=it )", body)), text
    frame = pd.read_parquet(out / "with_gender" / "explanations.parquet")
    assert not frame["text"].str.contains("sensitive|gender|female|male|age", case=False).any()


def test_a_shap_summary_plot_is_written_and_logged(run):
    out, uri = run
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("two-stage-explain")
    runs = {r.data.tags["mlflow.runName"]: r.info.run_id
            for r in client.search_runs([experiment.experiment_id])}
    for name in NAMES:
        path = out / name / "plots" / "shap_summary.png"
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        image = imread(path)
        assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 300
        assert float(np.ptp(image[..., :3])) > 0  # not a blank canvas
        logged = {a.path for a in client.list_artifacts(runs[name], "plots")}
        assert "plots/shap_summary.png" in logged
        assert "plots/group_ndcg.png" in logged  # the run's own plots are still written
