"""The promotion gate: a pure function from (metrics, rules, champion's metrics) to a decision.

No MLflow here: the run, ``fairrec gate`` and ``fairrec promote`` all fetch the
numbers and call :func:`evaluate_gate`, so the three can never disagree. Every
check is listed with its metric, comparison, threshold, value, verdict and a
sentence a person can read. A metric the rules need but the metrics lack fails
its check; nothing is skipped silently.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

__all__ = ["Check", "GateDecision", "GateRules", "evaluate_gate", "format_decision", "rules_from_config"]

FOUR_FIFTHS = 0.8
Comparison = Literal[">=", "<=", "non-regression"]


@dataclass(frozen=True, kw_only=True)
class GateRules:
    """Resolved thresholds: metric names are final (no ``{k}`` left)."""

    floors: Mapping[str, float] = field(default_factory=dict)
    ceilings: Mapping[str, float] = field(default_factory=dict)
    regression_metric: str | None = None
    regression_tolerance: float = 0.0
    four_fifths: frozenset[str] = frozenset()  # floors that come from the four-fifths rule


@dataclass(frozen=True, kw_only=True)
class Check:
    metric: str
    comparison: Comparison
    threshold: float | None
    value: float | None
    passed: bool
    reason: str

    @property
    def label(self) -> str:
        """The metric, qualified when the check is not a plain bound (a metric may have both)."""
        return self.metric if self.comparison in (">=", "<=") else f"{self.metric} ({self.comparison})"


@dataclass(frozen=True, kw_only=True)
class GateDecision:
    passed: bool
    checks: tuple[Check, ...]
    champion: str | None  # a label such as "version 3", or None when there is none

    @property
    def failed(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if not c.passed)

    @property
    def summary(self) -> str:
        if self.passed:
            return f"pass: all {len(self.checks)} checks passed"
        names = ", ".join(c.label for c in self.failed)
        return f"fail: {len(self.failed)} of {len(self.checks)} checks failed ({names})"

    def to_json(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "summary": self.summary,
            "champion": self.champion,
            "checks": [asdict(c) for c in self.checks],
        }

    @classmethod
    def from_json(cls, payload: Mapping[str, Any]) -> GateDecision:
        return cls(
            passed=bool(payload["passed"]),
            checks=tuple(Check(**c) for c in payload["checks"]),
            champion=payload.get("champion"),
        )


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def _missing(metric: str, available: Sequence[str]) -> str:
    hint = difflib.get_close_matches(metric, list(available), n=1, cutoff=0.75)
    suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
    return f"{metric} was not produced by this run{suggestion}; a required metric cannot be skipped"


def _value(metrics: Mapping[str, float], metric: str) -> float | None:
    value = metrics.get(metric)
    if value is None or not math.isfinite(float(value)):
        return None
    return float(value)


def _bound_check(metrics: Mapping[str, float], metric: str, threshold: float, *, floor: bool,
                 four_fifths: bool) -> Check:
    op: Comparison = ">=" if floor else "<="
    value = _value(metrics, metric)
    if value is None:
        return Check(metric=metric, comparison=op, threshold=threshold, value=None, passed=False,
                     reason=_missing(metric, sorted(metrics)))
    passed = value >= threshold if floor else value <= threshold
    kind = "floor" if floor else "ceiling"
    rule = " (the four-fifths rule)" if four_fifths else ""
    if passed:
        relation = "at least" if floor else "at most"
        reason = f"{metric} = {_fmt(value)} is {relation} the {kind} {_fmt(threshold)}{rule}"
    else:
        relation = "below" if floor else "above"
        reason = f"{metric} = {_fmt(value)} is {relation} the {kind} {_fmt(threshold)}{rule}"
    return Check(metric=metric, comparison=op, threshold=threshold, value=value, passed=passed,
                 reason=reason)


def _regression_check(metrics: Mapping[str, float], metric: str, tolerance: float,
                      champion: Mapping[str, float] | None, label: str | None) -> Check:
    value = _value(metrics, metric)
    if value is None:
        return Check(metric=metric, comparison="non-regression", threshold=None, value=None,
                     passed=False, reason=_missing(metric, sorted(metrics)))
    if champion is None:
        return Check(metric=metric, comparison="non-regression", threshold=None, value=value,
                     passed=True, reason=f"no champion yet: {metric} = {_fmt(value)} has nothing to regress from")
    who = label or "the champion"
    reference = _value(champion, metric)
    if reference is None:
        return Check(metric=metric, comparison="non-regression", threshold=None, value=value,
                     passed=False,
                     reason=f"{who} has no {metric}, so a regression cannot be ruled out")
    threshold = reference * (1.0 - tolerance) if reference >= 0 else reference * (1.0 + tolerance)
    passed = value >= threshold
    drop = (reference - value) / abs(reference) if reference != 0 else 0.0
    if passed:
        reason = (f"{metric} = {_fmt(value)} vs {who}'s {_fmt(reference)}: within the allowed "
                  f"{tolerance:.1%} drop")
    else:
        reason = (f"{metric} = {_fmt(value)} is {drop:.1%} below {who}'s {_fmt(reference)}; "
                  f"at most a {tolerance:.1%} drop is allowed")
    return Check(metric=metric, comparison="non-regression", threshold=threshold, value=value,
                 passed=passed, reason=reason)


def evaluate_gate(
    metrics: Mapping[str, float],
    rules: GateRules,
    *,
    champion: Mapping[str, float] | None = None,
    champion_label: str | None = None,
) -> GateDecision:
    """Check ``metrics`` against ``rules`` (and the champion's metrics, if there is a champion).

    Examples
    --------
    >>> rules = GateRules(floors={"ndcg_at_10": 0.3}, ceilings={"dp": 0.1})
    >>> d = evaluate_gate({"ndcg_at_10": 0.35}, rules)
    >>> d.passed, [c.passed for c in d.checks]
    (False, [True, False])
    >>> d.checks[1].reason
    'dp was not produced by this run; a required metric cannot be skipped'
    """
    checks = [
        _bound_check(metrics, m, t, floor=True, four_fifths=m in rules.four_fifths)
        for m, t in rules.floors.items()
    ]
    checks += [_bound_check(metrics, m, t, floor=False, four_fifths=False) for m, t in rules.ceilings.items()]
    if rules.regression_metric is not None:
        checks.append(_regression_check(metrics, rules.regression_metric, rules.regression_tolerance,
                                        champion, champion_label))
    return GateDecision(passed=all(c.passed for c in checks), checks=tuple(checks),
                        champion=champion_label if champion is not None else None)


def rules_from_config(gate: Any, *, sensitive: Sequence[str], k: int) -> GateRules:
    """Resolve a :class:`~training._schema.GateConfig`: ``{k}`` filled in, four-fifths floors added.

    An explicit floor on a four-fifths metric wins over the rule's 0.8.
    """
    from evaluation import sanitize_label

    def name(template: str) -> str:
        return template.replace("{k}", str(k))

    floors: dict[str, float] = {}
    four_fifths: set[str] = set()
    if gate.four_fifths:
        for attribute in sensitive:
            metric = f"disparate_impact.{sanitize_label(attribute)}"
            floors[metric] = FOUR_FIFTHS
            four_fifths.add(metric)
    for template, value in gate.floors.items():
        floors[name(template)] = float(value)
        four_fifths.discard(name(template))
    regression = gate.non_regression
    return GateRules(
        floors=floors,
        ceilings={name(t): float(v) for t, v in gate.ceilings.items()},
        regression_metric=None if regression is None else name(regression.metric),
        regression_tolerance=0.0 if regression is None else float(regression.tolerance),
        four_fifths=frozenset(four_fifths),
    )


def format_decision(decision: GateDecision, *, title: str) -> str:
    """A readable report: one line per check, the verdict last."""
    lines = [title]
    for c in decision.checks:
        lines.append(f"  [{'pass' if c.passed else 'FAIL'}] {c.reason}")
    verdict, detail = decision.summary.split(": ", 1)
    lines.append(f"  => {verdict.upper()}: {detail}")
    return "\n".join(lines)
