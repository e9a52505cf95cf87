"""The gate as a pure function: no MLflow, exact verdicts from hand-made evidence metrics."""

from __future__ import annotations

import json

import pytest

from training._config import load_config
from training._gate import GateDecision, GateRules, ParityRule, evaluate_gate, format_decision, rules_from_config
from training._gate_checks import holm

PLAIN = dict(protected_reliance=None, counterfactual_flip_rate=None)  # no evidence checks unless asked


def _parity(ratio: float, p: float, sizes: dict[str, int], relative: dict[str, float],
            attr: str = "gender") -> dict[str, float]:
    prefix = f"gate.utility_parity.{attr}"
    out = {f"{prefix}.ratio": ratio, f"{prefix}.p_value": p, f"{prefix}.ci_low": ratio - 0.05,
           f"{prefix}.ci_high": ratio + 0.05}
    out.update({f"{prefix}.n.{g}": float(n) for g, n in sizes.items()})
    out.update({f"{prefix}.relative.{g}": r for g, r in relative.items()})
    return out


def _rules(*attrs: str, **kw: object) -> GateRules:
    parity = tuple(ParityRule(kind="utility", attribute=a, metric="ndcg_at_10", threshold=0.8) for a in attrs)
    return GateRules(parity=parity, **{**PLAIN, **kw})


def test_floor_and_ceiling_pass_and_fail_at_the_boundary() -> None:
    rules = GateRules(floors={"ndcg_at_10": 0.30}, ceilings={"dp.gender": 0.10}, **PLAIN)
    at_bounds = evaluate_gate({"ndcg_at_10": 0.30, "dp.gender": 0.10}, rules)
    assert at_bounds.passed and [c.verdict for c in at_bounds.checks] == ["pass", "pass"]
    outside = evaluate_gate({"ndcg_at_10": 0.2999, "dp.gender": 0.1001}, rules)
    assert not outside.passed
    assert [(c.metric, c.comparison, c.threshold, c.value, c.verdict) for c in outside.checks] == [
        ("ndcg_at_10", ">=", 0.30, 0.2999, "fail"),
        ("dp.gender", "<=", 0.10, 0.1001, "fail"),
    ]
    assert outside.checks[0].reason == "ndcg_at_10 = 0.2999 is below the floor 0.3"
    assert outside.checks[1].reason == "dp.gender = 0.1001 is above the ceiling 0.1"
    assert outside.summary == "fail: 2 of 2 checks block promotion (ndcg_at_10, dp.gender)"


def test_a_missing_or_undefined_configured_metric_fails_with_a_hint() -> None:
    rules = GateRules(floors={"explain.fidelity": 1.5, "ndcg_at_10": 0.1}, **PLAIN)
    decision = evaluate_gate({"explain.fidelty": 2.0, "ndcg_at_10": float("nan")}, rules)
    fid, ndcg = decision.checks
    assert not decision.passed and fid.value is None and fid.verdict == "fail"
    assert "explain.fidelity was not produced by this run (did you mean 'explain.fidelty'?)" in fid.reason
    assert ndcg.value is None and ndcg.verdict == "fail"  # NaN is not a value that can pass


def test_non_regression_against_the_champion() -> None:
    rules = GateRules(regression_metric="ndcg_at_10", regression_tolerance=0.02, **PLAIN)
    first = evaluate_gate({"ndcg_at_10": 0.2}, rules)
    assert first.passed and first.champion is None and first.checks[0].reason.startswith("no champion yet")
    ok = evaluate_gate({"ndcg_at_10": 0.49}, rules, champion={"ndcg_at_10": 0.50}, champion_label="version 3")
    assert ok.passed and ok.champion == "version 3" and ok.checks[0].threshold == pytest.approx(0.49)
    bad = evaluate_gate({"ndcg_at_10": 0.4899}, rules, champion={"ndcg_at_10": 0.50}, champion_label="version 3")
    assert not bad.passed
    assert bad.checks[0].reason == "ndcg_at_10 = 0.4899 is 2.0% below version 3's 0.5; at most a 2.0% drop is allowed"
    assert not evaluate_gate({"ndcg_at_10": 0.6}, rules, champion={"recall_at_10": 0.5}).passed


def test_fail_needs_the_threshold_and_significance() -> None:
    sizes, rel = {"F": 300, "M": 600}, {"F": 0.7, "M": 1.0}
    significant = evaluate_gate(_parity(0.7, 0.001, sizes, rel), _rules("gender"))
    (check,) = significant.checks
    assert check.verdict == "fail" and check.blocking and not significant.passed
    assert check.p_adjusted == pytest.approx(0.001) and check.sizes == {"F": 300, "M": 600}
    assert "past the threshold and significant (p = 0.001 after Holm < 0.05)" in check.reason
    noise = evaluate_gate(_parity(0.7, 0.2, sizes, rel), _rules("gender"))
    assert noise.checks[0].verdict == "inconclusive" and noise.passed  # loud, not blocking
    assert "INCONCLUSIVE: utility_parity.gender" in noise.summary
    strict = evaluate_gate(_parity(0.7, 0.2, sizes, rel), _rules("gender", strict=True))
    assert strict.checks[0].blocking and not strict.passed
    within = evaluate_gate(_parity(0.85, 0.001, sizes, {"F": 0.85, "M": 1.0}), _rules("gender"))
    assert within.checks[0].verdict == "pass"  # significant but small: not practical significance


def test_a_small_group_past_the_threshold_is_inconclusive() -> None:
    sizes = {"a": 200, "b": 210, "c": 12}
    rel = {"a": 0.9, "b": 1.0, "c": 0.3}  # c is below min_group_size (30): not judged, but not ignored
    decision = evaluate_gate(_parity(0.9, 0.5, sizes, rel), _rules("gender"))
    check = decision.checks[0]
    assert check.verdict == "inconclusive" and decision.passed
    assert "group(s) c are past the threshold and smaller than the minimum group size" in check.reason


def test_an_undefined_ratio_is_reported_never_a_violation() -> None:
    metrics = {"gate.utility_parity.gender.undefined": 1.0, "gate.utility_parity.gender.n.F": 3.0}
    decision = evaluate_gate(metrics, _rules("gender", strict=True))
    assert decision.passed and decision.checks[0].verdict == "undefined"
    assert "0/0" in decision.checks[0].reason


def test_missing_evidence_fails() -> None:
    decision = evaluate_gate({"ndcg_at_10": 0.5}, _rules("gender"))
    assert decision.checks[0].verdict == "fail"
    assert "gate.utility_parity.gender.ratio was not produced by this run" in decision.checks[0].reason


def test_holm_across_the_gates_tests_turns_two_marginal_results_inconclusive() -> None:
    metrics = {**_parity(0.7, 0.03, {"F": 100, "M": 100}, {"F": 0.7, "M": 1.0}, "gender"),
               **_parity(0.6, 0.04, {"x": 100, "y": 100}, {"x": 0.6, "y": 1.0}, "age")}
    decision = evaluate_gate(metrics, _rules("gender", "age"))
    # alone each would fail at 0.05; Holm: 0.03 * 2 = 0.06, max(0.06, 0.04 * 1) = 0.06
    assert [c.p_adjusted for c in decision.checks] == pytest.approx([0.06, 0.06])
    assert [c.verdict for c in decision.checks] == ["inconclusive", "inconclusive"]


def test_holm_by_hand() -> None:
    assert holm([0.01, 0.04, float("nan"), 0.03]) == pytest.approx([0.03, 0.06, float("nan"), 0.06], nan_ok=True)
    assert holm([]) == []
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])


def test_levelling_down_fails_only_a_narrowed_gap_paid_for_by_the_better_off() -> None:
    rules = GateRules(levelling_down=("gender",), levelling_down_tolerance=0.02, **PLAIN)
    base = {"gate.levelling_down.gender.drop": 0.05, "gate.levelling_down.gender.p_value": 0.001,
            "gate.levelling_down.gender.n": 500.0, "gate.levelling_down.gender.ci_low": 0.03,
            "gate.levelling_down.gender.ci_high": 0.07}
    narrowed = evaluate_gate({**base, "gate.levelling_down.gender.gap_twin": 0.06,
                              "gate.levelling_down.gender.gap_mitigated": 0.03}, rules)
    assert narrowed.checks[0].verdict == "fail"
    widened = evaluate_gate({**base, "gate.levelling_down.gender.gap_twin": 0.03,
                             "gate.levelling_down.gender.gap_mitigated": 0.06}, rules)
    assert widened.checks[0].verdict == "pass" and "did not narrow" in widened.checks[0].reason
    assert evaluate_gate({"x": 1.0}, rules).checks == ()  # not a mitigated candidate: no check


def test_flip_rate_is_evidence_at_ceiling_zero_and_absent_where_undefined() -> None:
    rules = GateRules(counterfactual_flip_rate=0.0, protected_reliance=None)
    flips = evaluate_gate({"explain.counterfactual_flip_rate": 2 / 30, "explain.counterfactual_n_users": 30.0}, rules)
    check = flips.checks[0]
    assert check.verdict == "fail" and check.sizes == {"sampled users": 30}
    assert check.ci[0] > 0 and "2 of 30" in check.reason
    assert evaluate_gate({}, rules).checks == ()


def test_provider_exposure_against_its_floor() -> None:
    rules = GateRules(provider_exposure=0.1, **PLAIN)
    short = evaluate_gate({"gate.provider_exposure.share": 0.09, "gate.provider_exposure.p_value": 0.3}, rules)
    assert short.checks[0].verdict == "inconclusive"
    clear = evaluate_gate({"gate.provider_exposure.share": 0.02, "gate.provider_exposure.p_value": 0.001}, rules)
    assert clear.checks[0].verdict == "fail"
    met = evaluate_gate({"gate.provider_exposure.share": 0.1001, "gate.provider_exposure.p_value": 1.0}, rules)
    assert met.checks[0].verdict == "pass"


def test_rules_from_config_defaults_segments_and_named_checks(tmp_path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "name: g\ndata: {loader: synthetic}\nmodels: [{name: p, type: popularity}]\nevaluation: {k: 5}\n"
        "fairness: {sensitive: [gender, activity_level], item_group: category, protected_group: cat_0}\n"
        "gate:\n  floors:\n    ndcg_at_{k}: 0.3\n  provider_exposure: {min_share: 0.1}\n"
        "  outcome_parity: {outcome: contains_protected}\n"
    )
    c = load_config(cfg, [])
    fc = c.fairness
    rules = rules_from_config(c.gate, sensitive=fc.sensitive, segments=fc.segments, k=5,
                              item_group=fc.item_group, protected_group=fc.protected_group)
    assert [(p.kind, p.attribute, p.metric, p.threshold, p.segment) for p in rules.parity] == [
        ("utility", "gender", "ndcg_at_5", 0.8, False),
        ("utility", "activity_level", "ndcg_at_5", 0.8, True),
        ("outcome", "gender", "contains_cat_0_at_5", 0.8, False),  # no outcome parity for a segment
    ]
    assert rules.levelling_down == ("gender",) and rules.provider_exposure == 0.1
    assert dict(rules.floors) == {"ndcg_at_5": 0.3} and rules.regression_metric == "ndcg_at_5"
    assert (rules.alpha, rules.strict, rules.min_group_size) == (0.05, False, 30)
    assert (rules.protected_reliance, rules.counterfactual_flip_rate) == (0.1, 0.0)


def test_there_is_no_silent_default_outcome(tmp_path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("name: g\ndata: {loader: synthetic}\nmodels: [{name: p, type: popularity}]\n")
    c = load_config(cfg, [])
    rules = rules_from_config(c.gate, sensitive=["gender"], k=10)
    assert [p.kind for p in rules.parity] == ["utility"] and rules.provider_exposure is None


def test_rules_fingerprint_and_json_round_trip() -> None:
    rules = _rules("gender", provider_exposure=0.1)
    again = GateRules.from_json(json.loads(json.dumps(rules.to_json())))
    assert again == rules and again.sha256 == rules.sha256
    assert _rules("gender", provider_exposure=0.11).sha256 != rules.sha256


def test_decision_round_trips_through_json_and_reads_well() -> None:
    rules = GateRules(floors={"a": 1.0}, ceilings={"b": 2.0}, regression_metric="a", regression_tolerance=0.1,
                      **PLAIN)
    decision = evaluate_gate({"a": 1.5, "b": 3.0}, rules, champion={"a": 1.0}, champion_label="version 1")
    payload = json.loads(json.dumps(decision.to_json()))
    assert GateDecision.from_json(payload) == decision
    assert format_decision(decision, title="candidate x").splitlines() == [
        "candidate x",
        "  [pass] a = 1.5 is at least the floor 1",
        "  [FAIL] b = 3 is above the ceiling 2",
        "  [pass] a = 1.5 vs version 1's 1: within the allowed 10.0% drop",
        "  => FAIL: 1 of 3 checks block promotion (b)",
    ]
