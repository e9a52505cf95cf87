"""The run's consent metrics are every candidate's: a gate ceiling works, MLflow logs them, the card shows them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient

from recsys.data import generate_synthetic
from recsys.serving import ConsentStore
from training._card import _consent_blocks
from training.cli import main

DATA = {"n_users": 80, "n_items": 40, "n_interactions": 1600}
CONFIG = {
    "name": "consent-gate",
    "seed": 1,
    "data": {"loader": "synthetic", **DATA},
    "models": [{"name": "pop", "type": "popularity"}],
    "evaluation": {"k": 5},
    "explain": {"enabled": False},
    "consent": {"store": "consent.sqlite"},
    "gate": {"register_models": False, "promote": False},
}
METRIC = "consent.opt_out_rate.gender.difference"


def _store(tmp_path: Path) -> float:
    """4 women and 1 man opt out, one woman changes her mind twice; the opt-out rate difference by hand."""
    users = generate_synthetic(**DATA, random_state=1).users
    women = sorted(users.loc[users["gender"] == "F", "user_id"].astype(str))
    men = sorted(users.loc[users["gender"] == "M", "user_id"].astype(str))
    store = ConsentStore(tmp_path / "consent.sqlite")
    for u in [*women[:4], men[0]]:
        store.set(u, personalisation=False)
    store.set(women[4], personalisation=False)
    store.set(women[4], personalisation=True)  # opted out within the history too: 5 of the women
    store.close()
    # every user is at risk over the whole history (nobody had opted out before the first change)
    return 5 / len(women) - 1 / len(men)


@pytest.mark.parametrize("margin, passed", [(0.001, True), (-0.001, False)])
def test_a_ceiling_on_the_opt_out_rate_difference_gates_the_candidate(tmp_path: Path, margin: float,
                                                                      passed: bool) -> None:
    expected = _store(tmp_path)
    assert expected == pytest.approx(5 / 40 - 1 / 40)  # 40 women and 40 men in this synthetic data
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({**CONFIG, "gate": {**CONFIG["gate"], "ceilings": {METRIC: expected + margin}}}))
    uri = f"sqlite:///{tmp_path / 'm.db'}"
    main(["run", str(cfg), "--out", str(tmp_path / "out"), "--tracking-uri", uri, "--quiet"], env={})
    out = tmp_path / "out" / "pop"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics[METRIC] == pytest.approx(expected)
    # the opted-out users left the data, not their group: 5 of 40 women, 1 of 40 men
    assert metrics["consent.opt_out_rate.gender.F"] == pytest.approx(5 / 40)
    assert metrics["consent.at_risk.gender.F"] == 40 and metrics["consent.at_risk.gender.M"] == 40
    gate = json.loads((out / "gate.json").read_text())
    check = next(c for c in gate["checks"] if c["name"] == METRIC)
    assert check["value"] == pytest.approx(expected)
    assert check["verdict"] == ("pass" if passed else "fail") and gate["passed"] is passed
    card = (out / "model_card.md").read_text()
    assert "## Consent" in card and "| gender | F | 40 | 0.1250 |" in card and "| gender | M | 40 | 0.0250 |" in card
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    run_id = summary["models"]["pop"]["run_id"]
    logged = MlflowClient(tracking_uri=uri).get_run(run_id).data.metrics
    assert logged[METRIC] == pytest.approx(expected)  # a gate-named metric stays an MLflow metric


def test_the_card_has_no_consent_section_without_consent_metrics() -> None:
    assert _consent_blocks({"ndcg_at_5": 0.5, "gender.ndcg_at_5.F": 0.4}, ["gender"]) == []
    blocks = _consent_blocks({"consent.opt_out_rate.gender.F": 0.5, "consent.at_risk.gender.F": 2.0,
                              "consent.opt_out_rate.gender.M": 0.0, "consent.at_risk.gender.M": 1.0,
                              "consent.opt_out_rate.gender.difference": 0.5}, ["gender"])
    assert blocks[0] == ("h", 2, "Consent")
    assert "gender 0.5000" in blocks[1][1]
    assert blocks[2][2] == [["gender", "F", "2", "0.5000"], ["gender", "M", "1", "0.0000"]]
