"""The evidence the gate reads, computed once per candidate from per-user vectors and logged as metrics.

:mod:`training._gate` decides from logged metrics alone, so that ``promote`` and
``serve`` can recompute the decision later; the per-user vectors exist only during
the run, so the estimates, intervals, p-values and group sizes are computed here
(with :mod:`evaluation._disparity`) and written under ``gate.*``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from evaluation import sanitize_label
from evaluation._disparity import group_disparity, relative_drop, share_evidence
from training._gate import GateRules
from training._gate_checks import ParityRule

__all__ = ["EvidenceInputs", "gate_evidence"]


@dataclass(frozen=True, kw_only=True)
class EvidenceInputs:
    """What one candidate's evidence needs; every per-user array is aligned with ``users``.

    The outcome and exposure vectors are derived from ``ids`` and ``protected_items``
    unless given precomputed (``outcome``, ``exposure``: an engine that reduces its
    lists elsewhere, such as Spark, passes them and no ``ids``).
    """

    users: np.ndarray  # internal indices of the evaluated users (rows of ``ids``)
    ids: np.ndarray | None = None  # [n_users, >= k] ranked internal item ids, -1 = padding
    per_user: Mapping[str, np.ndarray]  # the candidate's per-user metrics (``ndcg``, ...)
    labels: Mapping[str, np.ndarray]  # raw attribute name -> group label per internal user index
    protected_items: np.ndarray | None = None  # bool per item (used with ``ids``)
    k: int
    seed: int
    baseline: Mapping[str, np.ndarray] | None = None  # the popularity ranking's per-user metrics
    twin: Mapping[str, np.ndarray] | None = None  # the unmitigated twin's per-user metrics
    relevant_share: float | None = None  # the protected group's share of relevant test items
    outcome: np.ndarray | None = None  # 1.0 when the top-k holds a protected item; else from ``ids``
    exposure: tuple[np.ndarray, np.ndarray] | None = None  # (protected, total) exposure; else from ``ids``


def _per_user_key(metric: str, k: int) -> str:
    suffix = f"_at_{k}"
    return metric[: -len(suffix)] if metric.endswith(suffix) else metric


def _labels(inputs: EvidenceInputs) -> dict[str, np.ndarray]:
    return {sanitize_label(a): np.asarray(v).astype(str)[inputs.users] for a, v in inputs.labels.items()}


def _segment(values: np.ndarray, baseline: np.ndarray, groups: np.ndarray, rule: ParityRule,
             rules: GateRules, seed: int) -> dict[str, float]:
    """Each segment's utility relative to what the popularity ranking gives the same users; the worst one.

    A segment defined by the history (activity level) is served unequally by any
    recommender, so the harm to look for is personalisation serving a segment worse
    than no personalisation would: the estimate is min over judged segments of
    mean(model) / mean(popularity), bootstrapped in pairs (same users) within that segment.
    """
    p = rule.prefix
    names, codes = np.unique(groups, return_inverse=True)
    sizes = np.bincount(codes, minlength=names.size)
    model_means = np.bincount(codes, weights=values, minlength=names.size) / np.maximum(sizes, 1)
    base_means = np.bincount(codes, weights=baseline, minlength=names.size) / np.maximum(sizes, 1)
    judged = (sizes >= rules.min_group_size) & (base_means > 0)
    out: dict[str, float] = {f"{p}.n_groups_judged": float(judged.sum())}
    for g, n, m, b in zip(names, sizes, model_means, base_means):
        out[f"{p}.n.{sanitize_label(g)}"] = float(n)
        if b > 0:
            out[f"{p}.relative.{sanitize_label(g)}"] = float(m / b)
    if not judged.any():
        out[f"{p}.undefined"] = 2.0
        return out
    rel = np.where(judged, model_means / np.where(base_means > 0, base_means, 1.0), np.inf)
    worst = int(np.argmin(rel))
    rows = codes == worst
    draws = relative_drop(baseline[rows], values[rows], tolerance=1.0 - rule.threshold,
                          n_resamples=rules.n_resamples, random_state=seed)
    # relative_drop's drop is 1 - model/baseline; its p-value tests H0 "drop <= 1 - threshold",
    # i.e. "model/baseline >= threshold", which is this check's null.
    out.update({f"{p}.ratio": float(rel[worst]), f"{p}.ci_low": 1.0 - draws.ci[1], f"{p}.ci_high": 1.0 - draws.ci[0],
                f"{p}.p_value": draws.p_value, f"{p}.baseline_ratio": float(base_means[worst])})
    return out


def _top(inputs: EvidenceInputs, what: str) -> np.ndarray:
    if inputs.ids is None or inputs.protected_items is None:
        raise ValueError(f"{what}: expected ids and protected_items, or a precomputed {what}; got neither")
    return inputs.ids[:, : inputs.k]


def _outcome(inputs: EvidenceInputs) -> np.ndarray:
    if inputs.outcome is not None:
        return np.asarray(inputs.outcome, dtype=np.float64)
    top = _top(inputs, "outcome")
    valid = top >= 0
    hit = np.zeros(top.shape, dtype=bool)
    hit[valid] = inputs.protected_items[top[valid]]
    return hit.any(axis=1).astype(np.float64)


def _exposure(inputs: EvidenceInputs) -> tuple[np.ndarray, np.ndarray]:
    if inputs.exposure is not None:
        part, whole = inputs.exposure
        return np.asarray(part, dtype=np.float64), np.asarray(whole, dtype=np.float64)
    top = _top(inputs, "exposure")
    valid = top >= 0
    weights = np.where(valid, 1.0 / np.log2(np.arange(2, top.shape[1] + 2)), 0.0)
    protected = np.zeros(top.shape, dtype=bool)
    protected[valid] = inputs.protected_items[top[valid]]
    return (weights * protected).sum(axis=1), weights.sum(axis=1)


def _levelling(inputs: EvidenceInputs, attribute: str, groups: np.ndarray, key: str,
               rules: GateRules) -> dict[str, float]:
    assert inputs.twin is not None
    twin, mitigated = inputs.twin[key], inputs.per_user[key]
    names, codes = np.unique(groups, return_inverse=True)
    sizes = np.bincount(codes, minlength=names.size)
    judged = sizes >= rules.min_group_size
    if judged.sum() < 2:
        return {}
    twin_means = np.bincount(codes, weights=twin, minlength=names.size) / np.maximum(sizes, 1)
    mit_means = np.bincount(codes, weights=mitigated, minlength=names.size) / np.maximum(sizes, 1)
    better = int(np.argmax(np.where(judged, twin_means, -np.inf)))
    rows = codes == better
    drop = relative_drop(twin[rows], mitigated[rows], tolerance=rules.levelling_down_tolerance,
                         n_resamples=rules.n_resamples, random_state=inputs.seed)
    p = f"gate.levelling_down.{attribute}"
    if not math.isfinite(drop.drop):
        return {}
    return {f"{p}.drop": drop.drop, f"{p}.ci_low": drop.ci[0], f"{p}.ci_high": drop.ci[1],
            f"{p}.p_value": drop.p_value, f"{p}.n": float(drop.n),
            f"{p}.gap_twin": float(twin_means[judged].max() - twin_means[judged].min()),
            f"{p}.gap_mitigated": float(mit_means[judged].max() - mit_means[judged].min())}


def gate_evidence(inputs: EvidenceInputs, rules: GateRules) -> dict[str, float]:
    """``gate.*`` metrics for every evidence check in ``rules`` (see :mod:`training._gate_checks`)."""
    labels = _labels(inputs)
    out: dict[str, float] = {}
    outcome: np.ndarray | None = None
    for rule in rules.parity:
        groups = labels[rule.attribute]
        if rule.kind == "outcome":
            outcome = _outcome(inputs) if outcome is None else outcome
            d = group_disparity(outcome, groups, attribute=rule.attribute, kind="rate",
                                min_size=rules.min_group_size, n_resamples=rules.n_resamples,
                                random_state=inputs.seed)
            out.update(d.flat(rule.prefix, sanitize_label))
            continue
        values = inputs.per_user[_per_user_key(rule.metric, inputs.k)]
        if rule.segment and inputs.baseline is not None:
            baseline = inputs.baseline[_per_user_key(rule.metric, inputs.k)]
            out.update(_segment(values, baseline, groups, rule, rules, inputs.seed))
            continue
        d = group_disparity(values, groups, attribute=rule.attribute, kind="mean",
                            min_size=rules.min_group_size, n_resamples=rules.n_resamples,
                            random_state=inputs.seed)
        out.update(d.flat(rule.prefix, sanitize_label))
    if inputs.twin is not None:
        metric = next((r.metric for r in rules.parity if r.kind == "utility"), f"ndcg_at_{inputs.k}")
        key = _per_user_key(metric, inputs.k)
        for attribute in rules.levelling_down:
            out.update(_levelling(inputs, attribute, labels[attribute], key, rules))
    if rules.provider_exposure is not None:
        part, whole = _exposure(inputs)
        e = share_evidence(part, whole, floor=rules.provider_exposure, n_resamples=rules.n_resamples,
                           random_state=inputs.seed)
        p = "gate.provider_exposure"
        if math.isfinite(e.share):
            out.update({f"{p}.share": e.share, f"{p}.ci_low": e.ci[0], f"{p}.ci_high": e.ci[1],
                        f"{p}.p_value": e.p_value, f"{p}.n": float(e.n)})
        if inputs.relevant_share is not None:
            out[f"{p}.relevant_share"] = inputs.relevant_share
    return {k: float(v) for k, v in out.items() if v is not None and math.isfinite(float(v))}
