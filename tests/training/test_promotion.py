"""Train -> gate -> registry -> champion on the embedded SQLite store, with the shipped config pair.

`configs/planted_bias_unmitigated.yaml` must be rejected by the default gate
(four-fifths rule) and `configs/planted_bias_mitigated.yaml` promoted; the
champion alias must point at the mitigated version and the rejected version
must carry its failing checks as tags.
"""

from __future__ import annotations

import json
from pathlib import Path

import mlflow.artifacts
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from recsys.serving import load_bundle
from training._config import load_config
from training._gate import GateDecision, evaluate_gate, rules_from_config
from training.cli import main

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
NAME = "planted-bias-recommender"


def _run(config: Path, out: Path, uri: str, *extra: str) -> int:
    return main(["run", str(config), "--out", str(out), "--tracking-uri", uri, "--quiet", *extra])


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("pair")
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    codes = {
        name: _run(CONFIGS / f"planted_bias_{name}.yaml", tmp / name, uri)
        for name in ("unmitigated", "mitigated")
    }
    return {"tmp": tmp, "uri": uri, "codes": codes, "client": MlflowClient(uri, uri)}


def _summary(pair: dict, name: str) -> dict:
    return json.loads((pair["tmp"] / name / "summary.json").read_text())


def test_the_unmitigated_model_is_rejected_and_the_mitigated_one_becomes_champion(pair: dict) -> None:
    assert pair["codes"] == {"unmitigated": 0, "mitigated": 0}  # a rejected model is not a failed run
    client: MlflowClient = pair["client"]
    rejected = _summary(pair, "unmitigated")["models"]["ease"]
    promoted = _summary(pair, "mitigated")["models"]["ease_fair_share"]
    assert (rejected["version"], promoted["version"]) == ("1", "2")
    champion = client.get_model_version_by_alias(NAME, "champion")
    challenger = client.get_model_version_by_alias(NAME, "challenger")
    assert str(champion.version) == str(challenger.version) == "2"
    assert champion.run_id == promoted["run_id"]
    assert champion.tags["fairrec.gate"] == "pass" and champion.tags["fairrec.candidate"] == "ease_fair_share"
    v1 = client.get_model_version(NAME, "1")
    assert v1.aliases == [] and v1.run_id == rejected["run_id"]
    assert v1.tags["fairrec.gate"] == "fail"
    assert v1.tags["fairrec.gate.failed"] == "disparate_impact.gender,demographic_parity_difference.gender"
    di = rejected["metrics"]["disparate_impact.gender"]
    assert di < 0.8
    assert v1.tags["fairrec.gate.check.disparate_impact.gender"] == (
        f"fail: disparate_impact.gender = {di:.4g} is below the floor 0.8 (the four-fifths rule)"
    )
    assert v1.tags["fairrec.gate.check.ndcg_at_10.non_regression"].startswith("pass: no champion yet")
    promotion = _summary(pair, "mitigated")["promotion"]
    assert promotion["winner"] == "ease_fair_share" and promotion["aliases"] == ["challenger", "champion"]
    assert _summary(pair, "unmitigated")["promotion"]["version"] is None


def test_gate_json_is_the_gate_function_of_the_metrics_file(pair: dict) -> None:
    for run, model in (("unmitigated", "ease"), ("mitigated", "ease_fair_share")):
        out = pair["tmp"] / run
        config = load_config(out / "config.yaml", [])
        rules = rules_from_config(config.gate, sensitive=config.fairness.sensitive, k=config.evaluation.k)
        metrics = json.loads((out / model / "metrics.json").read_text())
        written = GateDecision.from_json(json.loads((out / model / "gate.json").read_text()))
        assert written == evaluate_gate(metrics, rules)  # no champion existed at either run's start
        assert [c.metric for c in written.checks] == [
            "disparate_impact.gender", "ndcg_at_10", "explain.fidelity",
            "demographic_parity_difference.gender", "ndcg_at_10",
        ]


def test_fairrec_gate_exit_codes_and_promote_refuses_a_failing_version(pair: dict, capsys) -> None:
    uri, cfg = pair["uri"], str(CONFIGS / "planted_bias_mitigated.yaml")
    rejected = _summary(pair, "unmitigated")["models"]["ease"]["run_id"]
    assert main(["gate", cfg, "--run-id", rejected, "--tracking-uri", uri]) == 1
    out = capsys.readouterr().out
    assert "[FAIL] disparate_impact.gender" in out and "=> FAIL: 2 of 5 checks failed" in out
    assert main(["gate", cfg, "--model", NAME, "--alias", "champion", "--tracking-uri", uri, "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["passed"] and payload["decisions"][0]["champion"] == "version 2"
    # a parent run gates each candidate
    parent = _summary(pair, "unmitigated")["run_id"]
    assert main(["gate", cfg, "--run-id", parent, "--tracking-uri", uri]) == 1
    assert "candidate ease (run" in capsys.readouterr().out
    # promote refuses version 1 and leaves the champion where it was
    assert main(["promote", "--model", NAME, "--version", "1", "--tracking-uri", uri]) == 1
    assert "its gate result is fail" in capsys.readouterr().err
    assert str(pair["client"].get_model_version_by_alias(NAME, "champion").version) == "2"
    # bad input is an error (2), not a verdict
    assert main(["gate", cfg, "--model", NAME, "--version", "99", "--tracking-uri", uri]) == 2
    assert "version 99" in capsys.readouterr().err
    assert main(["gate", cfg, "--model", NAME, "--tracking-uri", uri]) == 2
    assert "exactly one of --version or --alias" in capsys.readouterr().err


def test_a_regression_against_the_champion_is_rejected_and_moves_no_alias(pair: dict) -> None:
    tmp, uri = pair["tmp"], pair["uri"]
    # a much stronger ridge penalty keeps the fairness but loses ~18% NDCG@10 against version 2
    assert _run(CONFIGS / "planted_bias_mitigated.yaml", tmp / "weaker", uri,
                "--set", "models.0.params.l2=3000") == 0
    weaker = json.loads((tmp / "weaker" / "summary.json").read_text())
    model = weaker["models"]["ease_fair_share"]
    decision = GateDecision.from_json(model["gate"])
    assert [c.label for c in decision.failed] == ["ndcg_at_10 (non-regression)"]
    assert decision.champion == "version 2"
    assert str(pair["client"].get_model_version_by_alias(NAME, "champion").version) == "2"
    assert pair["client"].get_model_version(NAME, model["version"]).tags["fairrec.gate"] == "fail"


def test_the_champion_bundle_serves_exactly_the_evaluated_lists(pair: dict, tmp_path: Path) -> None:
    client: MlflowClient = pair["client"]
    champion = client.get_model_version_by_alias(NAME, "champion")
    local = mlflow.artifacts.download_artifacts(artifact_uri=champion.source, tracking_uri=pair["uri"],
                                                dst_path=str(tmp_path))
    bundle = load_bundle(local)
    assert bundle.reranker is not None  # the mitigation is part of what is served
    recs = pd.read_parquet(pair["tmp"] / "mitigated" / "ease_fair_share" / "recommendations.parquet")
    users = recs["user_id"].unique()[:50]
    index = {u: i for i, u in enumerate(bundle.user_ids)}
    ids, _ = bundle.recommend(np.array([index[u] for u in users]), 10)
    for row, user in enumerate(users):
        expected = recs[recs["user_id"] == user].sort_values("rank")["item_id"].tolist()
        assert bundle.item_ids[ids[row][ids[row] >= 0]].tolist() == expected


def test_the_model_card_states_the_decision_tables_and_limitations(pair: dict) -> None:
    out = pair["tmp"] / "unmitigated" / "ease"
    md = (out / "model_card.md").read_text()
    metrics = json.loads((out / "metrics.json").read_text())
    assert md.startswith("# Model card: ease\n")
    assert "FAILED: 2 of 5 checks failed (disparate_impact.gender, demographic_parity_difference.gender)." in md
    for section in ("## Gate decision", "## Intended use", "## Data", "## Relevance", "## Fairness",
                    "## Explainability", "## Plots", "## Limitations"):
        assert section in md
    f_row = next(line for line in md.splitlines() if line.startswith("| F |"))
    assert f"{metrics['gender.ndcg_at_10.F']:.4f}" in f_row
    assert "violates the four-fifths rule" in md
    assert "Recommendation outcomes violate the four-fifths rule across: gender." in md
    assert "synthetic data: a demonstration" in md
    html = (out / "model_card.html").read_text()
    assert html.count('src="data:image/png;base64,') == len(list((out / "plots").glob("*.png"))) >= 2
    assert "http://" not in html and "https://" not in html  # self-contained


def test_fairrec_serve_refuses_a_failing_version_before_binding_a_port(pair: dict, tmp_path: Path, capsys) -> None:
    code = main(["serve", "--model", f"models:/{NAME}/1", "--tracking-uri", pair["uri"],
                 "--consent", str(tmp_path / "c.sqlite"), "--audit", str(tmp_path / "a.jsonl"), "--port", "1"])
    assert code == 2
    err = capsys.readouterr().err
    assert "refusing to serve: its gate result (fairrec.gate) is 'fail'" in err
    assert "disparate_impact.gender" in err and "Traceback" not in err
