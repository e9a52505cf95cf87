"""Train -> gate -> registry -> champion on the embedded SQLite store, with the shipped config pair.

`configs/planted_bias_unmitigated.yaml` must be rejected (the four-fifths rule on its
named outcome, significant) and `configs/planted_bias_mitigated.yaml` promoted; the
champion alias must point at the mitigated version and the rejected version must carry
its failing checks as tags. Tags are a display copy: editing them, re-logging a metric,
replacing the rules or the bundle never lets a failing version be promoted or served.
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
    assert v1.tags["fairrec.gate.failed"] == "demographic_parity_difference.gender,outcome_parity.gender"
    ratio = rejected["metrics"]["gate.outcome_parity.gender.ratio"]
    assert ratio == pytest.approx(rejected["metrics"]["disparate_impact.gender"]) and ratio < 0.8
    check = v1.tags["fairrec.gate.check.outcome_parity.gender"]
    assert check.startswith(f"fail: gender: worst/best group outcome rate (contains_cat_0_at_10) = {ratio:.4g}")
    assert "past the threshold and significant" in check
    assert v1.tags["fairrec.gate.check.ndcg_at_10 _non-regression_"].startswith("pass: no champion yet")
    promotion = _summary(pair, "mitigated")["promotion"]
    assert promotion["winner"] == "ease_fair_share" and promotion["aliases"] == ["challenger", "champion"]
    assert _summary(pair, "unmitigated")["promotion"]["version"] is None


def test_gate_json_is_the_gate_function_of_the_metrics_file(pair: dict) -> None:
    for run, model in (("unmitigated", "ease"), ("mitigated", "ease_fair_share")):
        out = pair["tmp"] / run
        config = load_config(out / "config.yaml", [])
        fc = config.fairness
        rules = rules_from_config(config.gate, sensitive=fc.sensitive, segments=fc.segments, k=config.evaluation.k,
                                  item_group=fc.item_group, protected_group=fc.protected_group)
        assert json.loads((out / "gate_rules.json").read_text()) == rules.to_json()
        metrics = json.loads((out / model / "metrics.json").read_text())
        written = GateDecision.from_json(json.loads((out / model / "gate.json").read_text()))
        assert written == evaluate_gate(metrics, rules)  # no champion existed at either run's start
        names = [c.name for c in written.checks]
        assert names[:5] == ["ndcg_at_10", "explain.fidelity", "demographic_parity_difference.gender",
                             "ndcg_at_10 (non-regression)", "utility_parity.gender"]
        assert "outcome_parity.gender" in names and "counterfactual_flip_rate" in names
        for check in written.checks:  # every evidence check states its evidence
            if check.name.endswith("parity.gender"):
                assert check.ci is not None and check.p_value is not None and check.sizes.keys() == {"F", "M"}


def test_fairrec_gate_exit_codes_and_promote_refuses_a_failing_version(pair: dict, capsys) -> None:
    uri, cfg = pair["uri"], str(CONFIGS / "planted_bias_mitigated.yaml")
    rejected = _summary(pair, "unmitigated")["models"]["ease"]["run_id"]
    assert main(["gate", cfg, "--run-id", rejected, "--tracking-uri", uri]) == 1
    out = capsys.readouterr().out
    assert "[FAIL] gender: worst/best group outcome rate" in out and "=> FAIL: 2 of 8 checks block promotion" in out
    assert main(["gate", cfg, "--model", NAME, "--alias", "champion", "--tracking-uri", uri, "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["passed"] and payload["decisions"][0]["champion"] == "version 2"
    # a parent run gates each candidate
    parent = _summary(pair, "unmitigated")["run_id"]
    assert main(["gate", cfg, "--run-id", parent, "--tracking-uri", uri]) == 1
    assert "candidate ease (run" in capsys.readouterr().out
    # promote refuses version 1 and leaves the champion where it was
    assert main(["promote", "--model", NAME, "--version", "1", "--tracking-uri", uri]) == 1
    assert "it fails the gate (fail: 2 of 8 checks block promotion" in capsys.readouterr().err
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
    assert ("FAILED: 2 of 8 checks block promotion (demographic_parity_difference.gender, "
            "outcome_parity.gender).") in md
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
                 "--consent", str(tmp_path / "c.sqlite"), "--audit", str(tmp_path / "a.jsonl"), "--port", "1",
                 "--insecure-local"])
    assert code == 2
    err = capsys.readouterr().err
    assert "refusing to serve: refusing 'planted-bias-recommender' version 1: it fails the gate" in err
    assert "outcome_parity.gender" in err and "Traceback" not in err


# ----------------------------------------------------------------------------------------------
# A verdict nobody can edit around. These tests alter the shared store, so they come last.
def _promote(pair: dict, version: str, capsys) -> tuple[int, str]:
    code = main(["promote", "--model", NAME, "--version", version, "--tracking-uri", pair["uri"]])
    return code, capsys.readouterr().err


def _champion(pair: dict) -> str:
    return str(pair["client"].get_model_version_by_alias(NAME, "champion").version)


def test_an_edited_gate_tag_never_promotes_or_serves_a_failing_version(pair: dict, tmp_path: Path, capsys) -> None:
    client: MlflowClient = pair["client"]
    client.set_model_version_tag(NAME, "1", "fairrec.gate", "pass")  # the pencil in the MLflow UI
    client.set_model_version_tag(NAME, "1", "fairrec.gate.summary", "pass: all checks passed")
    code, err = _promote(pair, "1", capsys)
    assert code == 1 and "the record was altered after the run" in err
    assert "its tag fairrec.gate says 'pass' but the logged record says fail" in err
    assert _champion(pair) == "2"
    code = main(["serve", "--model", f"models:/{NAME}/1", "--tracking-uri", pair["uri"], "--insecure-local",
                 "--consent", str(tmp_path / "c.sqlite"), "--audit", str(tmp_path / "a.jsonl"), "--port", "1"])
    assert code == 2 and "the record was altered" in capsys.readouterr().err


def test_a_relogged_passing_metric_is_refused(pair: dict, capsys) -> None:
    client: MlflowClient = pair["client"]
    run_id = client.get_model_version(NAME, "1").run_id
    client.log_metric(run_id, "gate.outcome_parity.gender.ratio", 0.99)  # "the gate reads the latest value"
    client.log_metric(run_id, "demographic_parity_difference.gender", 0.0)
    code, err = _promote(pair, "1", capsys)
    assert code == 1 and "was logged 2 times" in err
    assert main(["gate", str(CONFIGS / "planted_bias_unmitigated.yaml"), "--run-id", run_id,
                 "--tracking-uri", pair["uri"]]) == 2
    assert "was logged 2 times" in capsys.readouterr().err


def test_edited_rules_are_refused(pair: dict, tmp_path: Path, capsys) -> None:
    client: MlflowClient = pair["client"]
    run_id = client.get_model_version(NAME, "1").run_id
    rules = json.loads((pair["tmp"] / "unmitigated" / "gate_rules.json").read_text())
    rules["parity"] = [p for p in rules["parity"] if p["kind"] != "outcome"]
    rules["ceilings"] = {}
    (tmp_path / "gate_rules.json").write_text(json.dumps(rules))
    client.log_artifact(run_id, str(tmp_path / "gate_rules.json"))  # overwrite the logged rules
    code, err = _promote(pair, "1", capsys)
    assert code == 1 and "gate_rules.json does not match the fingerprint logged with the run" in err


def test_a_policy_other_than_the_registered_models_moves_no_alias(pair: dict) -> None:
    tmp, uri = pair["tmp"], pair["uri"]
    assert _run(CONFIGS / "planted_bias_mitigated.yaml", tmp / "laxer", uri, "--set", "gate.alpha=0.001") == 0
    laxer = json.loads((tmp / "laxer" / "summary.json").read_text())
    assert laxer["promotion"]["aliases"] == [] and "not the promotion policy of" in laxer["promotion"]["note"]
    assert _champion(pair) == "2"


def test_an_alias_moved_by_hand_to_a_failing_version_is_not_reloaded(pair: dict, tmp_path: Path) -> None:
    from recsys.serving import ServeSettings
    from recsys.serving._holder import ModelHolder
    from training._promotion import serving_verifier

    settings = ServeSettings(model=f"models:/{NAME}@champion", tracking_uri=pair["uri"], insecure_local=True,
                             consent_path=tmp_path / "c.sqlite", audit_path=tmp_path / "a.jsonl",
                             verifier=serving_verifier)
    holder = ModelHolder.load(settings)
    assert holder.engine.served.version == "2"
    pair["client"].set_registered_model_alias(NAME, "champion", "1")  # around `fairrec promote`
    try:
        outcome = holder.reload()
        assert outcome.outcome == "failed" and "refusing to serve" in outcome.message
        assert holder.engine.served.version == "2"  # the passing model is still served
    finally:
        pair["client"].set_registered_model_alias(NAME, "champion", "2")


def test_a_replaced_bundle_is_never_served(pair: dict, tmp_path: Path, capsys) -> None:
    client: MlflowClient = pair["client"]
    champion_run = client.get_model_version(NAME, "2").run_id
    failing = pair["tmp"] / "unmitigated" / "ease" / "model"
    client.log_artifacts(champion_run, str(failing), "model")  # the failing model's bundle under the champion
    code = main(["serve", "--model", f"models:/{NAME}@champion", "--tracking-uri", pair["uri"], "--insecure-local",
                 "--consent", str(tmp_path / "c.sqlite"), "--audit", str(tmp_path / "a.jsonl"), "--port", "1"])
    assert code == 2
    assert "is not the one the gate judged" in capsys.readouterr().err


def test_the_owner_adopts_a_new_policy_and_then_the_laxer_run_may_promote(pair: dict, capsys) -> None:
    tmp, uri = pair["tmp"], pair["uri"]
    cfg = str(CONFIGS / "planted_bias_mitigated.yaml")
    assert main(["policy", cfg, "--set", "gate.alpha=0.001", "--tracking-uri", uri]) == 0
    assert "promotion policy is now the gate rules of" in capsys.readouterr().out
    assert _run(CONFIGS / "planted_bias_mitigated.yaml", tmp / "adopted", uri, "--set", "gate.alpha=0.001") == 0
    adopted = json.loads((tmp / "adopted" / "summary.json").read_text())
    assert adopted["promotion"]["aliases"] == ["challenger", "champion"]
    assert _champion(pair) == adopted["promotion"]["version"]
