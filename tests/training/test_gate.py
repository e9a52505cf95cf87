"""The gate as a pure function: no MLflow, exact verdicts and values."""

from __future__ import annotations

import json

import pytest

from training._config import load_config
from training._gate import FOUR_FIFTHS, GateDecision, GateRules, evaluate_gate, format_decision, rules_from_config


def test_floor_and_ceiling_pass_and_fail_at_the_boundary() -> None:
    rules = GateRules(floors={"ndcg_at_10": 0.30}, ceilings={"dp.gender": 0.10})
    at_bounds = evaluate_gate({"ndcg_at_10": 0.30, "dp.gender": 0.10}, rules)
    assert at_bounds.passed and [c.passed for c in at_bounds.checks] == [True, True]
    outside = evaluate_gate({"ndcg_at_10": 0.2999, "dp.gender": 0.1001}, rules)
    assert not outside.passed
    assert [(c.metric, c.comparison, c.threshold, c.value, c.passed) for c in outside.checks] == [
        ("ndcg_at_10", ">=", 0.30, 0.2999, False),
        ("dp.gender", "<=", 0.10, 0.1001, False),
    ]
    assert outside.checks[0].reason == "ndcg_at_10 = 0.2999 is below the floor 0.3"
    assert outside.checks[1].reason == "dp.gender = 0.1001 is above the ceiling 0.1"
    assert outside.summary == "fail: 2 of 2 checks failed (ndcg_at_10, dp.gender)"


def test_a_missing_or_undefined_metric_fails_with_a_hint() -> None:
    rules = GateRules(floors={"explain.fidelity": 1.5, "ndcg_at_10": 0.1})
    decision = evaluate_gate({"explain.fidelty": 2.0, "ndcg_at_10": float("nan")}, rules)
    assert not decision.passed
    fid, ndcg = decision.checks
    assert fid.value is None and not fid.passed
    assert "explain.fidelity was not produced by this run (did you mean 'explain.fidelty'?)" in fid.reason
    assert ndcg.value is None and not ndcg.passed  # NaN is not a value that can pass


def test_non_regression_against_the_champion() -> None:
    rules = GateRules(regression_metric="ndcg_at_10", regression_tolerance=0.02)
    # no champion: passes, and says so
    first = evaluate_gate({"ndcg_at_10": 0.2}, rules)
    assert first.passed and first.champion is None
    assert first.checks[0].reason.startswith("no champion yet")
    # champion 0.50: the allowed drop is 2% -> 0.49 passes, 0.4899 fails
    ok = evaluate_gate({"ndcg_at_10": 0.49}, rules, champion={"ndcg_at_10": 0.50}, champion_label="version 3")
    assert ok.passed and ok.champion == "version 3"
    assert ok.checks[0].threshold == pytest.approx(0.49)
    bad = evaluate_gate({"ndcg_at_10": 0.4899}, rules, champion={"ndcg_at_10": 0.50}, champion_label="version 3")
    assert not bad.passed
    assert bad.checks[0].reason == (
        "ndcg_at_10 = 0.4899 is 2.0% below version 3's 0.5; at most a 2.0% drop is allowed"
    )
    # a champion that lacks the metric cannot vouch for anything
    lacking = evaluate_gate({"ndcg_at_10": 0.6}, rules, champion={"recall_at_10": 0.5})
    assert not lacking.passed


def test_rules_from_config_expand_k_and_the_four_fifths_rule(tmp_path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "name: g\ndata: {loader: synthetic}\nmodels: [{name: p, type: popularity}]\n"
        "evaluation: {k: 5}\n"
        "fairness: {sensitive: [gender, age_group]}\n"
        "gate:\n  floors:\n    ndcg_at_{k}: 0.3\n    disparate_impact.age_group: 0.9\n"
        "  ceilings: {demographic_parity_difference.gender: 0.1}\n"
    )
    config = load_config(cfg, [])
    rules = rules_from_config(config.gate, sensitive=config.fairness.sensitive, k=config.evaluation.k)
    assert dict(rules.floors) == {
        "disparate_impact.gender": FOUR_FIFTHS,
        "disparate_impact.age_group": 0.9,  # an explicit floor wins over the rule
        "ndcg_at_5": 0.3,
    }
    assert rules.four_fifths == {"disparate_impact.gender"}
    assert dict(rules.ceilings) == {"demographic_parity_difference.gender": 0.1}
    assert rules.regression_metric == "ndcg_at_5" and rules.regression_tolerance == 0.02
    decision = evaluate_gate(
        {"disparate_impact.gender": 0.79, "disparate_impact.age_group": 0.95, "ndcg_at_5": 0.4,
         "demographic_parity_difference.gender": 0.05},
        rules,
    )
    assert [c.metric for c in decision.failed] == ["disparate_impact.gender"]
    assert decision.failed[0].reason.endswith("(the four-fifths rule)")


def test_four_fifths_can_be_switched_off(tmp_path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "name: g\ndata: {loader: synthetic}\nmodels: [{name: p, type: popularity}]\n"
        "gate: {four_fifths: false, non_regression: null}\n"
    )
    config = load_config(cfg, [])
    rules = rules_from_config(config.gate, sensitive=["gender"], k=10)
    assert rules.floors == {} and rules.regression_metric is None
    assert evaluate_gate({}, rules).passed  # no rule, nothing to fail


def test_decision_round_trips_through_json_and_reads_well() -> None:
    rules = GateRules(floors={"a": 1.0}, ceilings={"b": 2.0}, regression_metric="a", regression_tolerance=0.1)
    decision = evaluate_gate({"a": 1.5, "b": 3.0}, rules, champion={"a": 1.0}, champion_label="version 1")
    payload = json.loads(json.dumps(decision.to_json()))
    assert GateDecision.from_json(payload) == decision
    text = format_decision(decision, title="candidate x")
    assert text.splitlines() == [
        "candidate x",
        "  [pass] a = 1.5 is at least the floor 1",
        "  [FAIL] b = 3 is above the ceiling 2",
        "  [pass] a = 1.5 vs version 1's 1: within the allowed 10.0% drop",
        "  => FAIL: 1 of 3 checks failed (b)",
    ]
