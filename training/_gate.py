"""The promotion gate: a pure function from (metrics, rules, champion's metrics) to a decision.

No MLflow here: the run, ``fairrec gate``, ``fairrec promote``, ``fairrec serve`` and
``/admin/reload`` all fetch the logged numbers and call :func:`evaluate_gate`, so they
can never disagree. The evidence a check reads (estimates, intervals, p-values,
group sizes) is computed during the run (:mod:`training._evidence`) and logged as
metrics under ``gate.*``; the decision is recomputed from those and the rules.

Every check ends in one verdict:

* **pass**: the estimate is on the allowed side of its threshold;
* **fail**: past the threshold (practical significance) *and* statistically
  significant after Holm's correction across the gate's tests: the
  employment-law reading of the four-fifths rule;
* **inconclusive**: past the threshold but not significant, or a group that
  would be past it is smaller than ``min_group_size``; blocks only under
  ``strict``;
* **undefined**: the quantity does not exist here (a 0/0 ratio, fewer than two
  judgeable groups); said with its reason, never a violation.

A configured floor or ceiling whose metric is missing fails: nothing is skipped
silently.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from training._gate_checks import (
    Check,
    ParityRule,
    bound_check,
    evidence_checks,
    holm,
    regression_check,
)

__all__ = [
    "Check", "GateDecision", "GateRules", "ParityRule", "evaluate_gate", "experiment_rules", "format_decision",
    "rules_from_config",
]

@dataclass(frozen=True, kw_only=True)
class GateRules:
    """Resolved rules: metric names are final (no ``{k}`` left), attributes sanitised.

    The defaults and their sources are documented in the README ("The promotion gate").
    """

    floors: Mapping[str, float] = field(default_factory=dict)
    ceilings: Mapping[str, float] = field(default_factory=dict)
    regression_metric: str | None = None
    regression_tolerance: float = 0.0
    parity: tuple[ParityRule, ...] = ()
    levelling_down: tuple[str, ...] = ()  # attributes checked on mitigated candidates
    levelling_down_tolerance: float = 0.02
    provider_exposure: float | None = None  # floor on the protected item group's exposure share
    protected_reliance: float | None = 0.1
    counterfactual_flip_rate: float | None = 0.0
    alpha: float = 0.05
    strict: bool = False
    min_group_size: int = 30
    n_resamples: int = 1000

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["floors"], out["ceilings"] = dict(self.floors), dict(self.ceilings)
        out["parity"] = [asdict(p) for p in self.parity]
        out["levelling_down"] = list(self.levelling_down)
        return out

    @classmethod
    def from_json(cls, payload: Mapping[str, Any]) -> GateRules:
        data = dict(payload)
        data["parity"] = tuple(ParityRule(**p) for p in data.get("parity", ()))
        data["levelling_down"] = tuple(data.get("levelling_down", ()))
        return cls(**data)

    @property
    def sha256(self) -> str:
        """A fingerprint of the rules, recorded with every decision."""
        text = json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True, kw_only=True)
class GateDecision:
    passed: bool
    checks: tuple[Check, ...]
    champion: str | None  # a label such as "version 3", or None when there is none
    strict: bool = False
    rules_sha256: str | None = None

    def _with(self, verdict: str) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if c.verdict == verdict)

    @property
    def failed(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if c.blocking)

    @property
    def inconclusive(self) -> tuple[Check, ...]:
        return self._with("inconclusive")

    @property
    def undefined(self) -> tuple[Check, ...]:
        return self._with("undefined")

    @property
    def summary(self) -> str:
        counts = ", ".join(f"{len(self._with(v))} {v}" for v in ("pass", "fail", "inconclusive", "undefined")
                           if self._with(v))
        if self.passed:
            loud = (f"; INCONCLUSIVE: {', '.join(c.name for c in self.inconclusive)}"
                    if self.inconclusive else "")
            return f"pass: {len(self.checks)} checks ({counts}){loud}"
        names = ", ".join(c.name for c in self.failed)
        return f"fail: {len(self.failed)} of {len(self.checks)} checks block promotion ({names})"

    def to_json(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "summary": self.summary,
            "champion": self.champion,
            "strict": self.strict,
            "rules_sha256": self.rules_sha256,
            "checks": [c.to_json() for c in self.checks],
        }

    @classmethod
    def from_json(cls, payload: Mapping[str, Any]) -> GateDecision:
        return cls(
            passed=bool(payload["passed"]),
            checks=tuple(Check.from_json(c) for c in payload["checks"]),
            champion=payload.get("champion"),
            strict=bool(payload.get("strict", False)),
            rules_sha256=payload.get("rules_sha256"),
        )


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
    >>> rules = GateRules(floors={"ndcg_at_10": 0.3}, ceilings={"dp": 0.1},
    ...                   protected_reliance=None, counterfactual_flip_rate=None)
    >>> d = evaluate_gate({"ndcg_at_10": 0.35}, rules)
    >>> d.passed, [c.verdict for c in d.checks]
    (False, ['pass', 'fail'])
    >>> d.checks[1].reason
    'dp was not produced by this run; a required metric cannot be skipped'
    """
    available = sorted(metrics)
    checks = [bound_check(metrics, m, t, floor=True, available=available) for m, t in rules.floors.items()]
    checks += [bound_check(metrics, m, t, floor=False, available=available) for m, t in rules.ceilings.items()]
    if rules.regression_metric is not None:
        checks.append(regression_check(metrics, rules.regression_metric, rules.regression_tolerance,
                                       champion, champion_label, available=available))
    pending = evidence_checks(metrics, rules, available=available)
    adjusted = holm([p.p_value for p in pending])
    for p, p_adj in zip(pending, adjusted):
        checks.append(p.decide(p_adj, alpha=rules.alpha))
    final = tuple(_block(c, rules.strict) for c in checks)
    return GateDecision(passed=not any(c.blocking for c in final), checks=final,
                        champion=champion_label if champion is not None else None,
                        strict=rules.strict, rules_sha256=rules.sha256)


def _block(check: Any, strict: bool) -> Check:
    blocking = check.verdict == "fail" or (strict and check.verdict == "inconclusive")
    return Check(**{**check.__dict__, "blocking": blocking})


def experiment_rules(config: Any) -> GateRules:
    """:func:`rules_from_config` for an :class:`~training._schema.ExperimentConfig` (its gate and fairness)."""
    fc = config.fairness
    return rules_from_config(config.gate, sensitive=fc.sensitive, segments=fc.segments, k=config.evaluation.k,
                             item_group=fc.item_group, protected_group=fc.protected_group)


def rules_from_config(gate: Any, *, sensitive: Sequence[str], segments: Sequence[str] = (),
                      k: int, item_group: str = "popularity", protected_group: str = "tail") -> GateRules:
    """Resolve a :class:`~training._schema.GateConfig`: ``{k}`` filled in, one parity rule per attribute."""
    from evaluation import sanitize_label

    def name(template: str) -> str:
        return template.replace("{k}", str(k))

    parity: list[ParityRule] = []
    if gate.utility_parity is not None:
        metric = name(gate.utility_parity.metric)
        for attribute in sensitive:
            parity.append(ParityRule(kind="utility", attribute=sanitize_label(attribute), metric=metric,
                                     threshold=float(gate.utility_parity.threshold),
                                     segment=attribute in segments))
    if gate.outcome_parity is not None:
        outcome = f"contains_{sanitize_label(protected_group)}_at_{k}"
        for attribute in sensitive:
            if attribute in segments:
                continue
            parity.append(ParityRule(kind="outcome", attribute=sanitize_label(attribute), metric=outcome,
                                     threshold=float(gate.outcome_parity.threshold)))
    regression = gate.non_regression
    return GateRules(
        floors={name(t): float(v) for t, v in gate.floors.items()},
        ceilings={name(t): float(v) for t, v in gate.ceilings.items()},
        regression_metric=None if regression is None else name(regression.metric),
        regression_tolerance=0.0 if regression is None else float(regression.tolerance),
        parity=tuple(parity),
        levelling_down=tuple(sanitize_label(a) for a in sensitive if a not in segments)
        if gate.levelling_down is not None else (),
        levelling_down_tolerance=0.02 if gate.levelling_down is None else float(gate.levelling_down.tolerance),
        provider_exposure=None if gate.provider_exposure is None else float(gate.provider_exposure.min_share),
        protected_reliance=gate.protected_reliance,
        counterfactual_flip_rate=gate.counterfactual_flip_rate,
        alpha=float(gate.alpha),
        strict=bool(gate.strict),
        min_group_size=int(gate.min_group_size),
        n_resamples=int(gate.n_resamples),
    )


_MARK = {"pass": "pass", "fail": "FAIL", "inconclusive": "INCONCLUSIVE", "undefined": "undefined"}


def format_decision(decision: GateDecision, *, title: str) -> str:
    """A readable report: one line per check (verdict, reason, interval, p-value), the verdict last."""
    lines = [title]
    for c in decision.checks:
        evidence = []
        if c.ci is not None and all(math.isfinite(x) for x in c.ci):
            evidence.append(f"95% CI [{c.ci[0]:.3g}, {c.ci[1]:.3g}]")
        if c.p_adjusted is not None and math.isfinite(c.p_adjusted):
            evidence.append(f"p = {c.p_adjusted:.3g} (Holm)")
        if c.sizes:
            evidence.append("n: " + ", ".join(f"{g}={n}" for g, n in c.sizes.items()))
        more = f" [{'; '.join(evidence)}]" if evidence else ""
        lines.append(f"  [{_MARK[c.verdict]}] {c.reason}{more}")
    verdict, detail = decision.summary.split(": ", 1)
    lines.append(f"  => {verdict.upper()}: {detail}")
    return "\n".join(lines)
