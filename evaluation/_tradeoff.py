"""A mitigated model against its unmitigated twin: what it gained, what it cost, who paid.

Written by hand: fairlearn compares groups within one model, not one model
with another; this module only subtracts numbers those reports already hold.

*Levelling down* (for one sensitive attribute and one quality metric): the
quality gap between the best- and worst-off group (as ranked under the twin)
narrows, but only because the best-off group lost quality while the worst-off
group gained nothing. Such a "fairer" model makes nobody better off.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from evaluation._fairness_report import FairnessReport, sanitize_label

__all__ = ["GapChange", "compare_with_twin", "gap_change"]

# Headline fairness numbers whose twin value and relative change are reported.
_HEADLINE_PREFIXES = (
    "demographic_parity_difference.",
    "disparate_impact.",
    "exposure_share.",
    "long_tail_share_at_",
    "bias_amplification.",
    "equal_opportunity_difference.",
)


@dataclass(frozen=True, kw_only=True)
class GapChange:
    """How one attribute's quality gap moved from the twin to the mitigated model."""

    attribute: str
    metric: str
    twin: Mapping[str, float]
    mitigated: Mapping[str, float]
    best_group: str
    worst_group: str
    gap_twin: float
    gap_mitigated: float
    levelling_down: bool


def gap_change(
    attribute: str,
    metric: str,
    twin: Mapping[str, float],
    mitigated: Mapping[str, float],
    *,
    tolerance: float = 0.002,
) -> GapChange:
    """Compare group means of ``metric`` under the twin and under the mitigated model.

    Examples
    --------
    Both groups lose, the gap closes: levelling down.

    >>> g = gap_change("gender", "ndcg", {"F": 0.30, "M": 0.40}, {"F": 0.30, "M": 0.31})
    >>> g.levelling_down, round(g.gap_twin, 2), round(g.gap_mitigated, 2)
    (True, 0.1, 0.01)

    The worst-off group gains: not levelling down.

    >>> gap_change("gender", "ndcg", {"F": 0.30, "M": 0.40}, {"F": 0.35, "M": 0.38}).levelling_down
    False
    """
    groups = [g for g in twin if g in mitigated and np.isfinite(twin[g]) and np.isfinite(mitigated[g])]
    if len(groups) < 2:
        raise ValueError(
            f"{attribute}: need at least two groups with a {metric} value in both models, got {groups}"
        )
    t = np.array([twin[g] for g in groups], dtype=np.float64)
    m = np.array([mitigated[g] for g in groups], dtype=np.float64)
    best, worst = int(np.argmax(t)), int(np.argmin(t))
    gap_t, gap_m = float(t.max() - t.min()), float(m.max() - m.min())
    narrowed = gap_m < gap_t - tolerance
    best_lost = m[best] < t[best] - tolerance
    worst_gained = m[worst] > t[worst] + tolerance
    return GapChange(
        attribute=attribute,
        metric=metric,
        twin={g: float(v) for g, v in zip(groups, t)},
        mitigated={g: float(v) for g, v in zip(groups, m)},
        best_group=groups[best],
        worst_group=groups[worst],
        gap_twin=gap_t,
        gap_mitigated=gap_m,
        levelling_down=bool(narrowed and best_lost and not worst_gained),
    )


def _relative(new: float, old: float) -> float:
    return float((new - old) / abs(old)) if old != 0 and np.isfinite(old) else float("nan")


def compare_with_twin(
    *,
    mitigated: Mapping[str, float],
    twin: Mapping[str, float],
    mitigated_report: FairnessReport,
    twin_report: FairnessReport,
    metric: str = "ndcg",
    tolerance: float = 0.002,
) -> tuple[dict[str, float], list[GapChange]]:
    """Flat comparison metrics and the per-attribute gap changes.

    ``mitigated`` and ``twin`` are the two models' flat metrics (relevance
    summary plus ``FairnessReport.flat()``). Names produced, for k = 10:
    ``twin.ndcg_at_10``, ``mitigation.ndcg_at_10.relative_change``, for every
    headline fairness metric NAME ``twin.NAME`` and
    ``mitigation.NAME.relative_change``, and per sensitive attribute A
    ``mitigation.A.ndcg_at_10.gap_change`` and ``levelling_down.A`` (1 or 0).
    """
    k = mitigated_report.k
    quality_name = f"{metric}_at_{k}"
    out: dict[str, float] = {}
    names = [quality_name] + [n for n in twin if n.startswith(_HEADLINE_PREFIXES)]
    for name in names:
        if name in twin and name in mitigated:
            out[f"twin.{name}"] = float(twin[name])
            out[f"mitigation.{name}.relative_change"] = _relative(mitigated[name], twin[name])
    changes: list[GapChange] = []
    for attr in mitigated_report.attributes:
        if attr not in twin_report.quality:
            continue
        try:
            change = gap_change(
                attr,
                metric,
                twin_report.quality[attr].by_group[metric],
                mitigated_report.quality[attr].by_group[metric],
                tolerance=tolerance,
            )
        except ValueError:
            continue  # fewer than two groups with a value: nothing to compare
        changes.append(change)
        a = sanitize_label(attr)
        out[f"mitigation.{a}.{quality_name}.gap_change"] = change.gap_mitigated - change.gap_twin
        out[f"levelling_down.{a}"] = float(change.levelling_down)
    return out, changes
