"""The gate's individual checks, read from logged metrics (see :mod:`training._gate`).

Evidence metric names (written by :mod:`training._evidence`)::

    gate.utility_parity.ATTR.{ratio,ci_low,ci_high,p_value,undefined,n_groups_judged}
    gate.utility_parity.ATTR.n.GROUP, .relative.GROUP     group sizes; value / best judged group's
    gate.utility_parity.ATTR.baseline_ratio               segments: the popularity ranking's value for the worst
    gate.outcome_parity.ATTR.*                            the same for a named 0/1 outcome
    gate.levelling_down.ATTR.{drop,ci_low,ci_high,p_value,n,gap_twin,gap_mitigated}
    gate.provider_exposure.{share,ci_low,ci_high,p_value,n,relevant_share}
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

__all__ = ["Check", "ParityRule", "Pending", "Verdict", "bound_check", "evidence_checks", "holm", "regression_check"]


Verdict = Literal["pass", "fail", "inconclusive", "undefined"]

@dataclass(frozen=True, kw_only=True)
class Check:
    """One check with its evidence; ``blocking`` says whether it stops promotion."""

    name: str
    metric: str
    comparison: str
    threshold: float | None
    value: float | None
    verdict: Verdict
    reason: str
    blocking: bool = False
    ci: tuple[float, float] | None = None
    p_value: float | None = None
    p_adjusted: float | None = None
    sizes: Mapping[str, int] | None = None
    test: str | None = None

    @property
    def passed(self) -> bool:
        return not self.blocking

    @property
    def label(self) -> str:
        return self.name

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["ci"] = None if self.ci is None else list(self.ci)
        out["sizes"] = None if self.sizes is None else dict(self.sizes)
        out["passed"] = self.passed
        return out

    @classmethod
    def from_json(cls, payload: Mapping[str, Any]) -> Check:
        data = {k: v for k, v in payload.items() if k != "passed"}
        if data.get("ci") is not None:
            data["ci"] = tuple(data["ci"])
        return cls(**data)


UNDEFINED = {
    1: "the best-served group's value is 0, so the ratio is 0/0",
    2: "fewer than two groups have at least the minimum size",
}


@dataclass(frozen=True, kw_only=True)
class ParityRule:
    """Worst group over best group of ``metric`` per ``attribute`` must reach ``threshold``.

    ``kind`` "utility" compares per-user means (NDCG), "outcome" the rate of a 0/1
    outcome. A ``segment`` (an attribute that is a function of the history, such as
    activity level) is served unequally by any recommender, so it is judged instead by
    what each segment gets relative to the non-personalised popularity ranking on the
    same users: the worst segment's model/popularity ratio must reach the threshold.
    """

    kind: Literal["utility", "outcome"]
    attribute: str
    metric: str
    threshold: float
    segment: bool = False

    @property
    def prefix(self) -> str:
        return f"gate.{self.kind}_parity.{self.attribute}"


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def _value(metrics: Mapping[str, float], metric: str) -> float | None:
    value = metrics.get(metric)
    if value is None or not math.isfinite(float(value)):
        return None
    return float(value)


def _missing(metric: str, available: Sequence[str]) -> str:
    hint = difflib.get_close_matches(metric, list(available), n=1, cutoff=0.75)
    suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
    return f"{metric} was not produced by this run{suggestion}; a required metric cannot be skipped"


def bound_check(metrics: Mapping[str, float], metric: str, threshold: float, *, floor: bool,
                available: Sequence[str]) -> Any:
    """A configured floor or ceiling on a metric: a point comparison, no test."""
    op = ">=" if floor else "<="
    value = _value(metrics, metric)
    if value is None:
        return Check(name=metric, metric=metric, comparison=op, threshold=threshold, value=None,
                      verdict="fail", reason=_missing(metric, available))
    passed = value >= threshold if floor else value <= threshold
    kind = "floor" if floor else "ceiling"
    relation = ("at least" if floor else "at most") if passed else ("below" if floor else "above")
    return Check(name=metric, metric=metric, comparison=op, threshold=threshold, value=value,
                  verdict="pass" if passed else "fail",
                  reason=f"{metric} = {_fmt(value)} is {relation} the {kind} {_fmt(threshold)}")


def regression_check(metrics: Mapping[str, float], metric: str, tolerance: float,
                     champion: Mapping[str, float] | None, label: str | None, *,
                     available: Sequence[str]) -> Any:
    name = f"{metric} (non-regression)"
    value = _value(metrics, metric)
    common = dict(name=name, metric=metric, comparison="non-regression")
    if value is None:
        return Check(**common, threshold=None, value=None, verdict="fail", reason=_missing(metric, available))
    if champion is None:
        return Check(**common, threshold=None, value=value, verdict="pass",
                      reason=f"no champion yet: {metric} = {_fmt(value)} has nothing to regress from")
    who = label or "the champion"
    reference = _value(champion, metric)
    if reference is None:
        return Check(**common, threshold=None, value=value, verdict="fail",
                      reason=f"{who} has no {metric}, so a regression cannot be ruled out")
    threshold = reference * (1.0 - tolerance) if reference >= 0 else reference * (1.0 + tolerance)
    passed = value >= threshold
    drop = (reference - value) / abs(reference) if reference != 0 else 0.0
    reason = (f"{metric} = {_fmt(value)} vs {who}'s {_fmt(reference)}: within the allowed {tolerance:.1%} drop"
              if passed else f"{metric} = {_fmt(value)} is {drop:.1%} below {who}'s {_fmt(reference)}; "
              f"at most a {tolerance:.1%} drop is allowed")
    return Check(**common, threshold=threshold, value=value, verdict="pass" if passed else "fail", reason=reason)


@dataclass(frozen=True, kw_only=True)
class Pending:
    """A check whose verdict waits for the multiplicity-corrected p-value."""

    name: str
    metric: str
    comparison: str
    threshold: float | None
    value: float | None
    past: bool  # the estimate is past the threshold (practical significance)
    p_value: float  # NaN: no test (undefined, or the check has none)
    what: str  # the sentence's subject and estimate
    ci: tuple[float, float] | None = None
    sizes: Mapping[str, int] | None = None
    test: str | None = None
    small_past: tuple[str, ...] = ()  # groups below the minimum size that are past the threshold
    undefined: str | None = None
    untested: bool = False  # a point comparison (no sampling test applies)
    extra: Mapping[str, Any] = field(default_factory=dict)

    def decide(self, p_adjusted: float, *, alpha: float) -> Any:
        common = dict(name=self.name, metric=self.metric, comparison=self.comparison,
                      threshold=self.threshold, value=self.value, ci=self.ci, sizes=self.sizes,
                      test=self.test, p_value=None if math.isnan(self.p_value) else self.p_value,
                      p_adjusted=None if math.isnan(p_adjusted) else p_adjusted)
        if self.undefined is not None:
            return Check(**common, verdict="undefined", reason=f"{self.what}: undefined ({self.undefined})")
        if not self.past:
            if self.small_past:
                return Check(**common, verdict="inconclusive", reason=(
                    f"{self.what}; but group(s) {', '.join(self.small_past)} are past the threshold and "
                    "smaller than the minimum group size: too few users to judge"))
            return Check(**common, verdict="pass", reason=f"{self.what}: within the threshold")
        if self.untested:
            return Check(**common, verdict="fail", reason=f"{self.what}: past the threshold")
        if p_adjusted < alpha:
            return Check(**common, verdict="fail", reason=(
                f"{self.what}: past the threshold and significant (p = {p_adjusted:.3g} after Holm "
                f"< {alpha:g})"))
        return Check(**common, verdict="inconclusive", reason=(
            f"{self.what}: past the threshold but not significant (p = {p_adjusted:.3g} after Holm, "
            f"alpha {alpha:g}): not evidence of harm at this sample size"))


def _ci(metrics: Mapping[str, float], prefix: str) -> tuple[float, float] | None:
    lo, hi = _value(metrics, f"{prefix}.ci_low"), _value(metrics, f"{prefix}.ci_high")
    return None if lo is None or hi is None else (lo, hi)


def _by_group(metrics: Mapping[str, float], prefix: str) -> dict[str, float]:
    return {k[len(prefix) + 1:]: float(v) for k, v in metrics.items() if k.startswith(prefix + ".")}


def _parity(metrics: Mapping[str, float], rule: ParityRule, min_size: int,
            available: Sequence[str]) -> Pending:
    p = rule.prefix
    sizes = {g: int(n) for g, n in _by_group(metrics, f"{p}.n").items()}
    relative = _by_group(metrics, f"{p}.relative")
    what_kind = "utility" if rule.kind == "utility" else "outcome rate"
    name = f"{rule.kind}_parity.{rule.attribute}"
    common = dict(name=name, metric=f"{p}.ratio", comparison=">=", threshold=rule.threshold, sizes=sizes)
    code = _value(metrics, f"{p}.undefined")
    if code is not None:
        return Pending(**common, value=None, past=False, p_value=math.nan, undefined=UNDEFINED.get(int(code), "?"),
                       what=f"{rule.attribute}: worst/best group {rule.metric}")
    ratio, p_value = _value(metrics, f"{p}.ratio"), _value(metrics, f"{p}.p_value")
    if ratio is None or p_value is None:
        return Pending(**common, value=None, past=True, p_value=0.0, untested=True,
                       what=_missing(f"{p}.ratio", available))
    base = _value(metrics, f"{p}.baseline_ratio")
    worst = min(relative, key=relative.get) if relative else "?"
    if rule.segment and base is not None:
        what = (f"{rule.attribute} (a segment): the worst-served segment ({worst}) gets {_fmt(ratio)} of the "
                f"{rule.metric} the popularity ranking gives it ({_fmt(base)}), threshold {_fmt(rule.threshold)}")
        test = "paired bootstrap test of the segment's model/baseline ratio against the threshold"
        small = tuple(g for g, r in relative.items() if sizes.get(g, 0) < min_size and r < rule.threshold)
    else:
        what = (f"{rule.attribute}: worst/best group {what_kind} ({rule.metric}) = {_fmt(ratio)} "
                f"(worst group {worst}), threshold {_fmt(rule.threshold)}")
        test = ("Fisher's exact test, worst vs best group (Bonferroni over pairs)" if rule.kind == "outcome"
                else "permutation test of the min/max ratio of group means")
        small = tuple(g for g, r in relative.items() if sizes.get(g, 0) < min_size and r < rule.threshold)
    return Pending(**common, value=ratio, past=ratio < rule.threshold, p_value=p_value, what=what,
                   ci=_ci(metrics, p), test=test, small_past=small)


def _levelling(metrics: Mapping[str, float], attribute: str, tolerance: float) -> Pending | None:
    p = f"gate.levelling_down.{attribute}"
    drop = _value(metrics, f"{p}.drop")
    if drop is None:
        return None  # not a mitigated candidate
    gap_twin, gap_mit = _value(metrics, f"{p}.gap_twin"), _value(metrics, f"{p}.gap_mitigated")
    narrowed = gap_twin is not None and gap_mit is not None and gap_mit < gap_twin
    n = _value(metrics, f"{p}.n")
    what = (f"{attribute}: the better-off group's {_fmt(100 * drop)}% drop against the unmitigated twin "
            f"(gap {_fmt(gap_twin or math.nan)} -> {_fmt(gap_mit or math.nan)}), tolerance "
            f"{_fmt(100 * tolerance)}%")
    if not narrowed:
        what += "; the gap did not narrow, so this is not levelling down"
    return Pending(name=f"levelling_down.{attribute}", metric=f"{p}.drop", comparison="<=", threshold=tolerance,
                   value=drop, past=narrowed and drop > tolerance, p_value=_value(metrics, f"{p}.p_value") or 1.0,
                   what=what, ci=_ci(metrics, p), sizes=None if n is None else {"better-off group": int(n)},
                   test="paired bootstrap test of the drop against the tolerance")


def _exposure(metrics: Mapping[str, float], floor: float, available: Sequence[str]) -> Pending:
    p = "gate.provider_exposure"
    share, p_value = _value(metrics, f"{p}.share"), _value(metrics, f"{p}.p_value")
    common = dict(name="provider_exposure", metric=f"{p}.share", comparison=">=", threshold=floor)
    if share is None or p_value is None:
        return Pending(**common, value=None, past=True, p_value=0.0, untested=True,
                       what=_missing(f"{p}.share", available))
    relevant = _value(metrics, f"{p}.relevant_share")
    n = _value(metrics, f"{p}.n")
    context = f" (its share of relevant test items: {_fmt(relevant)})" if relevant is not None else ""
    return Pending(**common, value=share, past=share < floor, p_value=p_value,
                   what=f"protected item group's share of rank-weighted exposure = {_fmt(share)}{context}, "
                        f"floor {_fmt(floor)}",
                   ci=_ci(metrics, p), sizes=None if n is None else {"users": int(n)},
                   test="bootstrap test of the share against the floor (users resampled)")


def _flip_rate(metrics: Mapping[str, float], ceiling: float) -> Pending | None:
    rate = _value(metrics, "explain.counterfactual_flip_rate")
    n = _value(metrics, "explain.counterfactual_n_users")
    if rate is None or n is None or n < 1:
        return None  # not defined for this candidate (not explained)
    from scipy import stats

    flips = int(round(rate * n))
    ci = stats.binomtest(flips, int(n)).proportion_ci(confidence_level=0.95, method="exact")
    p_value = (0.0 if flips else 1.0) if ceiling == 0 else float(
        stats.binomtest(flips, int(n), ceiling, alternative="greater").pvalue)
    return Pending(name="counterfactual_flip_rate", metric="explain.counterfactual_flip_rate", comparison="<=",
                   threshold=ceiling, value=rate, past=rate > ceiling, p_value=p_value,
                   what=f"share of sampled users whose top-k changes when only their group does = {_fmt(rate)} "
                        f"({flips} of {int(n)}), ceiling {_fmt(ceiling)}",
                   ci=(float(ci.low), float(ci.high)), sizes={"sampled users": int(n)},
                   test="exact binomial test against the ceiling (any flip is evidence at ceiling 0)")


def _reliance(metrics: Mapping[str, float], ceiling: float) -> Pending | None:
    value = _value(metrics, "explain.protected_reliance")
    if value is None:
        return None
    return Pending(name="protected_reliance", metric="explain.protected_reliance", comparison="<=",
                   threshold=ceiling, value=value, past=value > ceiling, p_value=math.nan, untested=True,
                   what=f"share of attribution mass on protected attributes and their proxies = {_fmt(value)}, "
                        f"ceiling {_fmt(ceiling)}",
                   test="none: a measured property of the model's attributions")


def evidence_checks(metrics: Mapping[str, float], rules: Any, *, available: Sequence[str]) -> list[Pending]:
    """The checks that read logged evidence, in a fixed order."""
    out: list[Pending] = [_parity(metrics, r, rules.min_group_size, available) for r in rules.parity]
    out += [c for a in rules.levelling_down if (c := _levelling(metrics, a, rules.levelling_down_tolerance))]
    if rules.provider_exposure is not None:
        out.append(_exposure(metrics, rules.provider_exposure, available))
    if rules.counterfactual_flip_rate is not None and (c := _flip_rate(metrics, rules.counterfactual_flip_rate)):
        out.append(c)
    if rules.protected_reliance is not None and (c := _reliance(metrics, rules.protected_reliance)):
        out.append(c)
    return out


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values; NaN (no test) stays NaN and is not counted.

    Hand-written: scipy has only Benjamini-Hochberg (``false_discovery_control``),
    which controls the false discovery rate, not the family-wise error a gate needs.

    Examples
    --------
    >>> holm([0.01, 0.04, float("nan"), 0.03])
    [0.03, 0.06, nan, 0.06]
    """
    p = np.asarray(p_values, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    tested = np.flatnonzero(np.isfinite(p))
    m = tested.size
    if m:
        order = tested[np.argsort(p[tested], kind="stable")]
        scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
        out[order] = np.maximum.accumulate(scaled)
    return [float(x) for x in out]
