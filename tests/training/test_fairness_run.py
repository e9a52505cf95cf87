"""`fairrec run` with fairness measurement, mitigations, twins and a sweep, end to end.

Fairness numbers are recomputed from the run's files with fairlearn directly.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from fairlearn.metrics import MetricFrame, demographic_parity_difference, demographic_parity_ratio

from tests.training.reference import per_user_reference
from training import ConfigError, load_config
from training.cli import main

K = 5
CONFIG = {
    "name": "fair",
    "seed": 1,
    "data": {
        "loader": "synthetic", "n_users": 200, "n_items": 80, "n_interactions": 4000,
        "bias_strength": 0.6,
    },
    "fairness": {"sensitive": ["gender", "age_group"], "item_group": "popularity", "protected_group": "tail"},
    "models": [
        {"name": "ease", "type": "ease", "params": {"l2": 50.0}},
        {
            "name": "ease_budget", "type": "ease", "params": {"l2": 50.0},
            "mitigation": {"kind": "exposure_budget", "strength": 0.2},
        },
        {
            "name": "ease_sweep", "type": "ease", "params": {"l2": 50.0},
            "mitigation": {"kind": "exposure_budget", "strength": 0.2},
            "sweep": {"parameter": "strength", "values": [0.0, 0.2]},
        },
        {
            "name": "als_damped", "type": "als", "params": {"factors": 8, "iterations": 3},
            "mitigation": [
                {"kind": "reweight", "popularity_damping": 0.5},
                {"kind": "calibration", "strength": 0.5},
            ],
        },
    ],
    "evaluation": {"k": K},
    "explain": {"enabled": False},  # explanations are tested in test_explain_run.py
}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("fair")
    cfg = tmp / "c.yaml"
    cfg.write_text(yaml.safe_dump(CONFIG))
    out = tmp / "out"
    code = main(["run", str(cfg), "--out", str(out), "--tracking-uri", f"sqlite:///{tmp / 'm.db'}", "--quiet"], env={})
    assert code == 0
    return out


def _metrics(out: Path, name: str) -> dict[str, float]:
    return json.loads((out / name / "metrics.json").read_text())


def test_candidates_after_sweep_expansion(run_dir: Path) -> None:
    summary = json.loads((run_dir / "summary.json").read_text())
    validation = json.loads((run_dir / "validation.json").read_text())
    # every sweep value is scored on validation; one value per sweep is refitted and tested
    assert sorted(validation) == ["als_damped", "ease", "ease_budget", "ease_sweep-strength0", "ease_sweep-strength0.2"]
    swept = [n for n in summary["models"] if n.startswith("ease_sweep")]
    assert sorted(summary["models"]) == sorted(["als_damped", "ease", "ease_budget", *swept]) and len(swept) == 1
    passing = [n for n in validation if n.startswith("ease_sweep") and validation[n]["gate"]["passed"]]
    best = max(passing or validation, key=lambda n: validation[n]["metrics"][f"ndcg_at_{K}"]
               if n.startswith("ease_sweep") else -1)
    assert swept == [best]  # chosen on validation numbers
    assert summary["models"][best]["validation_metrics"] == validation[best]["metrics"]
    frontier = pd.read_csv(run_dir / "frontier_ease_sweep.csv")
    assert frontier["strength"].tolist() == [0.0, 0.2]
    assert frontier[f"ndcg_at_{K}"].tolist() == [validation[f"ease_sweep-strength{v:g}"]["metrics"][f"ndcg_at_{K}"]
                                                 for v in (0.0, 0.2)]
    assert (run_dir / "frontier_ease_sweep.png").stat().st_size > 0
    for name in summary["models"]:
        assert (run_dir / name / "plots" / "group_ndcg.png").is_file()
        assert (run_dir / name / "fairness_report.json").is_file()


def test_demographic_parity_recomputed_with_fairlearn(run_dir: Path) -> None:
    users = pd.read_parquet(run_dir / "users.parquet")
    items = pd.read_parquet(run_dir / "items.parquet")
    test = pd.read_parquet(run_dir / "split" / "test.parquet")
    tail = set(items.loc[items["popularity_group"] == "tail", "item_id"])
    for name in ("ease", "ease_budget", "als_damped"):
        recs = pd.read_parquet(run_dir / name / "recommendations.parquet")
        evaluated = sorted(test["user_id"].unique())
        has_tail = recs.assign(t=recs["item_id"].isin(tail)).groupby("user_id")["t"].any()
        outcome = has_tail.reindex(evaluated, fill_value=False).astype(int).to_numpy()
        gender = users.set_index("user_id").loc[evaluated, "gender"].to_numpy()
        logged = _metrics(run_dir, name)
        expected = demographic_parity_difference(outcome, outcome, sensitive_features=gender)
        assert logged["demographic_parity_difference.gender"] == pytest.approx(expected, abs=1e-12)
        ratio = demographic_parity_ratio(outcome, outcome, sensitive_features=gender)
        if np.isfinite(ratio):
            assert logged["demographic_parity_ratio.gender"] == pytest.approx(ratio, abs=1e-12)


def test_per_group_quality_recomputed_with_metric_frame(run_dir: Path) -> None:
    users = pd.read_parquet(run_dir / "users.parquet").set_index("user_id")
    for name in ("ease", "als_damped"):
        per_user = per_user_reference(run_dir, name, K)
        for attr in ("gender", "age_group"):
            mf = MetricFrame(
                metrics=lambda y_true, y_pred: float(np.mean(y_pred)),
                y_true=per_user["ndcg"].to_numpy(),
                y_pred=per_user["ndcg"].to_numpy(),
                sensitive_features=users.loc[per_user["user_id"], attr].to_numpy(),
            )
            logged = _metrics(run_dir, name)
            assert logged[f"{attr}.ndcg_at_{K}.difference"] == pytest.approx(mf.difference(), abs=1e-12)
            assert logged[f"{attr}.ndcg_at_{K}.ratio"] == pytest.approx(mf.ratio(), abs=1e-12)
        for group, value in mf.by_group.items():  # the last attribute's groups, by sanitised name
            key = f"age_group.ndcg_at_{K}.{str(group).replace('+', 'plus').replace('<', 'lt')}"
            assert logged[key] == pytest.approx(value, abs=1e-12)


def test_twin_comparison_and_exposure_target(run_dir: Path) -> None:
    plain = _metrics(run_dir, "ease")
    off = json.loads((run_dir / "validation.json").read_text())["ease_sweep-strength0"]["metrics"]
    on = _metrics(run_dir, "ease_budget")
    q = f"ndcg_at_{K}"
    # the twin of a re-ranked EASE is EASE itself; strength 0 changes nothing (seen on validation)
    assert on[f"twin.{q}"] == pytest.approx(plain[q])
    assert off[q] == pytest.approx(off[f"twin.{q}"]) and off[f"mitigation.{q}.relative_change"] == 0.0
    assert on["exposure_share.popularity.tail"] >= 0.2 - 1e-9
    assert on["twin.exposure_share.popularity.tail"] == pytest.approx(plain["exposure_share.popularity.tail"])
    rel = (on[q] - plain[q]) / plain[q]
    assert on[f"mitigation.{q}.relative_change"] == pytest.approx(rel)
    assert on["levelling_down.gender"] in (0.0, 1.0)
    report = json.loads((run_dir / "ease_budget" / "fairness_report.json").read_text())
    assert {c["attribute"] for c in report["twin_comparison"]} == {"gender", "age_group"}


def test_two_step_mitigation_is_compared_with_the_plain_model(run_dir: Path) -> None:
    m = _metrics(run_dir, "als_damped")
    assert "twin.ndcg_at_5" in m and "levelling_down.gender" in m


def _cfg(tmp_path: Path, **model: object) -> Path:
    raw = dict(CONFIG, models=[dict({"name": "m", "type": "ease"}, **model)])
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (
            {"mitigation": [{"kind": "fair_share"}, {"kind": "calibration"}]},
            "models[0].mitigation: a list of mitigations takes at most one of reweight/two_stage "
            "and one re-ranker, got ['fair_share', 'calibration']",
        ),
        (
            {"mitigation": {"kind": "fair_share"}, "sweep": {"parameter": "strenght", "values": [0.1]}},
            "models[0]: sweep.parameter 'strenght' matches no mitigation field; allowed: "
            "fair_share.strength, fair_share.alpha, fair_share.n_candidates",
        ),
        (
            {"sweep": {"parameter": "strength", "values": [0.1]}},
            "models[0]: sweep needs a mitigation whose parameter it varies",
        ),
        (
            {"mitigation": {"kind": "fair_share"}, "sweep": {"parameter": "strength", "values": [1.5]}},
            "models[0]: sweep value 1.5 is not allowed",
        ),
        (
            {"mitigation": {"kind": "fair_shares"}},
            "models[0].mitigation[0]: unknown kind 'fair_shares'",
        ),
    ],
)
def test_mitigation_config_errors(tmp_path: Path, model: dict, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(_cfg(tmp_path, **model))
    assert message in str(err.value)


def test_unknown_sensitive_attribute_fails_before_training(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    raw = dict(CONFIG, fairness={"sensitive": ["religion"]}, models=[{"name": "m", "type": "popularity"}])
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(raw))
    code = main(["run", str(cfg), "--out", str(tmp_path / "out"), "--tracking-uri", f"sqlite:///{tmp_path / 'm.db'}", "--quiet"], env={})
    assert code == 2
    err = capsys.readouterr().err
    assert "fairness.sensitive: 'religion' is not a user attribute of this data; available: gender, age_group, activity_level" in err
    assert not (tmp_path / "out").exists()
