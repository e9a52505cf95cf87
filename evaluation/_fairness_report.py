"""Consumer- and item-side fairness as one immutable report.

A :class:`FairnessReport` (built by :func:`evaluation.fairness_metrics` or
:meth:`evaluation.FairnessBaseline.score`) gives flat MLflow-safe numbers
(:meth:`~FairnessReport.flat`), a JSON-able artifact
(:meth:`~FairnessReport.to_json`) and two plots.

Metric names
------------
``flat()`` builds every name from dot-separated parts; ``K`` is the report's
cut-off, ``M`` every per-user metric of the relevance report (``ndcg``,
``recall``, ...), ``A`` every sensitive attribute, ``G`` its user groups,
``I`` the item grouping (``popularity`` or an item column), ``J`` its item
groups, ``P`` the protected item group and ``C`` the item category column:

* ``A.M_at_K.G``, ``A.M_at_K.difference``, ``A.M_at_K.ratio`` - group quality
* ``disparate_impact.A.M_at_K`` - the same ratio under its usual name
* ``A.contains_P_at_K.G`` - share of G's users whose top-K holds a P item
* ``demographic_parity_difference.A``, ``demographic_parity_ratio.A``,
  ``disparate_impact.A`` (= the ratio), ``four_fifths_violated.A`` (0/1)
* ``equal_opportunity_difference.A``, ``equal_opportunity_ratio.A`` (recall)
* ``exposure_share.I.J``, ``catalog_share.I.J``, ``relevant_share.I.J``,
  ``exposure_ratio.I``
* ``contains_rate_at_K.I.P`` (all evaluated users), ``list_share_at_K.I.P``
  (mean share of P items per list), ``long_tail_share_at_K`` (popularity tail)
* ``bias_amplification.A.C.mean_abs``, ``bias_amplification.A.C.gap``

Every part is passed through :func:`sanitize_label`.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from evaluation._exposure import BiasAmplification, ExposureReport
from evaluation._fairness import GroupQuality, OutcomeParity

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "FairnessReport",
    "group_order",
    "plot_exposure",
    "plot_group_quality",
    "sanitize_label",
]

_SYMBOLS = (("<=", "le"), (">=", "ge"), ("<", "lt"), (">", "gt"), ("+", "plus"), ("=", "eq"))


def sanitize_label(label: object) -> str:
    """Turn a group label or column name into one MLflow-safe name part.

    The rule, in order: ``<=``, ``>=``, ``<``, ``>``, ``+``, ``=`` become
    ``le``, ``ge``, ``lt``, ``gt``, ``plus``, ``eq``; each run of whitespace
    becomes ``_``; every remaining character other than an ASCII letter,
    digit, ``_`` or ``-`` becomes ``_`` (``.`` and ``/`` too, since they
    separate name parts); an empty result is ``empty``.

    Examples
    --------
    >>> [sanitize_label(x) for x in ["<18", "56+", "18-24", "Sci Fi", "Children's", 3.5]]
    ['lt18', '56plus', '18-24', 'Sci_Fi', 'Children_s', '3_5']
    """
    text = str(label)
    for symbol, word in _SYMBOLS:
        text = text.replace(symbol, word)
    text = re.sub(r"\s+", "_", text)
    text = re.sub(r"[^A-Za-z0-9_-]", "_", text)
    return text or "empty"


def _safe_groups(groups: Sequence[str], *, where: str) -> dict[str, str]:
    """Sanitized name per label; two labels that collide are an error."""
    names = {g: sanitize_label(g) for g in groups}
    seen: dict[str, str] = {}
    for g, n in names.items():
        if n in seen:
            raise ValueError(
                f"{where}: group labels {seen[n]!r} and {g!r} both sanitize to {n!r}; "
                "relabel one of them"
            )
        seen[n] = g
    return names


def _jsonable(value: Any) -> Any:
    """Plain JSON types; nan and infinities become None, tuples and arrays lists."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    return value


@dataclass(frozen=True, kw_only=True, eq=False)
class FairnessReport:
    """Consumer- and item-side fairness of one set of ranked lists.

    Parameters
    ----------
    k : int
        Cut-off of the lists (that of the relevance report).
    quality : dict of str to GroupQuality
        Per sensitive attribute: group means of every per-user metric.
    parity : dict of str to OutcomeParity
        Per attribute: demographic parity of "the top-k holds at least one
        item of ``protected_group``".
    equal_opportunity : dict of str to (float, float)
        Per attribute: ``(difference, ratio)`` of group mean recall.
    item_group, protected_group : str
        The item grouping (``"popularity"`` or an item column) and the group
        whose presence is the parity outcome.
    exposure : ExposureReport
        Exposure by item group over all lists.
    contains_rate, list_share : float
        Share of evaluated users whose top-k holds a protected item; mean share
        of protected items per list.
    long_tail_share : float
        Share of rank-weighted exposure going to popularity-tail items.
    item_category : str or None
        Item column used for bias amplification (None: not computed).
    amplification : dict of str to BiasAmplification
        Per attribute.
    """

    k: int
    quality: dict[str, GroupQuality]
    parity: dict[str, OutcomeParity]
    equal_opportunity: dict[str, tuple[float, float]]
    item_group: str
    protected_group: str
    exposure: ExposureReport
    contains_rate: float
    list_share: float
    long_tail_share: float
    item_category: str | None
    amplification: dict[str, BiasAmplification]

    @property
    def attributes(self) -> list[str]:
        return list(self.quality)

    def flat(self) -> dict[str, float]:
        """Flat ``{name: number}`` with MLflow-safe names (see the module docstring)."""
        k, s = self.k, sanitize_label
        out: dict[str, float] = {}
        protected = s(self.protected_group)
        for attr, gq in self.quality.items():
            a = s(attr)
            names = _safe_groups(gq.groups, where=f"sensitive attribute {attr!r}")
            for metric, by_group in gq.by_group.items():
                m = f"{s(metric)}_at_{k}"
                out.update({f"{a}.{m}.{names[g]}": v for g, v in by_group.items()})
                out[f"{a}.{m}.difference"] = gq.difference[metric]
                out[f"{a}.{m}.ratio"] = gq.ratio[metric]
            op = self.parity[attr]
            outcome = f"contains_{protected}_at_{k}"
            out.update({f"{a}.{outcome}.{names[g]}": v for g, v in op.rates.items()})
            out[f"demographic_parity_difference.{a}"] = op.demographic_parity_difference
            out[f"demographic_parity_ratio.{a}"] = op.demographic_parity_ratio
            out[f"disparate_impact.{a}"] = op.disparate_impact
            for metric, ratio in gq.ratio.items():
                out[f"disparate_impact.{a}.{s(metric)}_at_{k}"] = ratio
            out[f"four_fifths_violated.{a}"] = float(op.four_fifths_violated)
            if attr in self.equal_opportunity:
                diff, ratio = self.equal_opportunity[attr]
                out[f"equal_opportunity_difference.{a}"] = diff
                out[f"equal_opportunity_ratio.{a}"] = ratio
        i = s(self.item_group)
        ex = self.exposure
        names = _safe_groups(ex.groups, where=f"item groups of {self.item_group!r}")
        for g in ex.groups:
            out[f"exposure_share.{i}.{names[g]}"] = ex.exposure_share[g]
            out[f"catalog_share.{i}.{names[g]}"] = ex.catalog_share[g]
            if ex.relevant_share is not None:
                out[f"relevant_share.{i}.{names[g]}"] = ex.relevant_share[g]
        out[f"exposure_ratio.{i}"] = ex.exposure_ratio
        out[f"contains_rate_at_{k}.{i}.{protected}"] = self.contains_rate
        out[f"list_share_at_{k}.{i}.{protected}"] = self.list_share
        out[f"long_tail_share_at_{k}"] = self.long_tail_share
        for attr, ba in self.amplification.items():
            prefix = f"bias_amplification.{s(attr)}.{s(self.item_category)}"
            out[f"{prefix}.mean_abs"] = ba.mean_abs_amplification
            out[f"{prefix}.gap"] = ba.mean_abs_gap_amplification
        return {name: float(v) for name, v in out.items()}

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict (the ``fairness_report.json`` artifact); nan becomes null."""
        consumer = {}
        for attr, gq in self.quality.items():
            op = self.parity[attr]
            metrics = {
                m: {
                    "overall": gq.overall[m],
                    "by_group": gq.by_group[m],
                    "difference": gq.difference[m],
                    "ratio": gq.ratio[m],
                    "ci": None if gq.ci is None else gq.ci[m],
                    "difference_ci": None if gq.difference_ci is None else gq.difference_ci[m],
                    "ratio_ci": None if gq.ratio_ci is None else gq.ratio_ci[m],
                }
                for m in gq.by_group
            }
            eo = self.equal_opportunity.get(attr)
            consumer[attr] = {
                "counts": gq.counts,
                "ci_level": gq.ci_level,
                "metrics": metrics,
                "outcome": {
                    "definition": f"top-{self.k} holds at least one {self.item_group}="
                    f"{self.protected_group} item",
                    "rates": op.rates,
                    "overall": op.overall,
                    "demographic_parity_difference": op.demographic_parity_difference,
                    "demographic_parity_ratio": op.demographic_parity_ratio,
                    "four_fifths_violated": op.four_fifths_violated,
                },
                "equal_opportunity": None if eo is None else {"difference": eo[0], "ratio": eo[1]},
            }
        ex = self.exposure
        amplification = {
            attr: {
                "category_column": self.item_category,
                "groups": ba.groups,
                "categories": ba.categories,
                "train_share": ba.train_share,
                "rec_share": ba.rec_share,
                "amplification": ba.amplification,
                "train_gap": ba.train_gap,
                "rec_gap": ba.rec_gap,
                "gap_amplification": ba.gap_amplification,
                "mean_abs_amplification": ba.mean_abs_amplification,
                "mean_abs_gap_amplification": ba.mean_abs_gap_amplification,
            }
            for attr, ba in self.amplification.items()
        }
        return _jsonable({
            "k": self.k,
            "consumer": consumer,
            "items": {
                "item_group": self.item_group,
                "protected_group": self.protected_group,
                "groups": ex.groups,
                "exposure_share": ex.exposure_share,
                "catalog_share": ex.catalog_share,
                "relevant_share": ex.relevant_share,
                "exposure_ratio": ex.exposure_ratio,
                "contains_rate": self.contains_rate,
                "list_share": self.list_share,
                "long_tail_share": self.long_tail_share,
            },
            "bias_amplification": amplification,
        })


def group_order(labels: Iterable[object]) -> list[str]:
    """Group labels in reading order: numeric buckets by their first number, the rest alphabetically.

    Plain string order puts ``"<18"`` after ``"56+"`` (``<`` sorts after the
    digits); a bucket that starts with ``<`` (or ``lt``/``under``) comes before
    the bucket of the same number. Written by hand: a few lines, no dependency.

    Examples
    --------
    >>> group_order(["56+", "25-34", "<18", "18-24", "45-49", "unknown"])
    ['<18', '18-24', '25-34', '45-49', '56+', 'unknown']
    >>> group_order(["M", "F"])
    ['F', 'M']
    """

    def key(label: str) -> tuple[int, float, str]:
        number = re.search(r"\d+(?:\.\d+)?", label)
        if number is None:
            return (1, 0.0, label)
        below = label.strip().lower().startswith(("<", "lt", "under"))
        return (0, float(number.group()) - (0.5 if below else 0.0), label)

    return sorted((str(g) for g in labels), key=key)


def _title(ax: Axes, text: str, width_inches: float) -> None:
    """A title wrapped to the panel's width (about 9 characters per inch at 10 pt), never cut off."""
    ax.set_title(textwrap.fill(text, max(20, int(width_inches * 9))), fontsize=10)


def _figure(n_axes: int, *, width: float = 4.0) -> tuple[Figure, list[Axes]]:
    """A Figure on the Agg canvas, built without pyplot (no global backend state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * n_axes, 3.5), layout="constrained")
    FigureCanvasAgg(fig)
    return fig, list(fig.subplots(1, n_axes, squeeze=False)[0])


def plot_group_quality(report: FairnessReport, metric: str) -> Figure:
    """Bar chart of one per-user metric's group means, one panel per attribute.

    Groups are in :func:`group_order`, each tick label carries the group's size
    (``n=``); error bars show the bootstrap interval when the report has one
    (``fairness.n_boot``; the title says which); the dashed line is the overall mean.

    Examples
    --------
    >>> import pandas as pd
    >>> from evaluation import ExposureReport, group_quality
    >>> gq = group_quality({"ndcg": np.array([0.2, 0.4, 0.6])}, pd.Series(list("ffm"), name="g"))
    >>> ex = ExposureReport(groups=["a"], exposure_share={"a": 1.0}, catalog_share={"a": 1.0},
    ...                     relevant_share=None, exposure_ratio=1.0)
    >>> fr = FairnessReport(k=3, quality={"g": gq}, parity={}, equal_opportunity={},
    ...     item_group="popularity", protected_group="tail", exposure=ex, contains_rate=0.0,
    ...     list_share=0.0, long_tail_share=0.0, item_category=None, amplification={})
    >>> [t.get_text() for t in plot_group_quality(fr, "ndcg").axes[0].get_xticklabels()]
    ['f\\nn=2', 'm\\nn=1']
    """
    if not report.quality or metric not in next(iter(report.quality.values())).by_group:
        known = sorted(next(iter(report.quality.values())).by_group) if report.quality else []
        raise ValueError(f"metric: expected one of {known}, got {metric!r}")
    panel = max(4.0, 0.9 * max(len(gq.groups) for gq in report.quality.values()))
    fig, axes = _figure(len(report.quality), width=panel)
    for ax, (attr, gq) in zip(axes, report.quality.items(), strict=True):
        groups = group_order(gq.groups)
        means = np.array([gq.by_group[metric][g] for g in groups])
        yerr = None
        if gq.ci is not None:
            bounds = np.array([gq.ci[metric][g] for g in groups]).T
            yerr = np.nan_to_num(np.abs(bounds - means))
        x = np.arange(len(groups))
        ax.bar(x, means, yerr=yerr, capsize=4, color="tab:blue")
        ax.set_xticks(x, [f"{g}\nn={gq.counts[g]}" for g in groups], fontsize=8)
        ax.axhline(gq.overall[metric], color="black", linestyle="--", linewidth=1)
        interval = (f"{round(100 * (gq.ci_level or 0.95))}% bootstrap intervals" if gq.ci is not None
                    else "no intervals (set fairness.n_boot)")
        _title(ax, f"{metric}@{report.k} by {attr}; {interval}; dashed: overall", panel)
        ax.set_xlabel(attr)
        ax.set_ylabel(f"mean {metric}@{report.k}")
    return fig


def plot_exposure(report: FairnessReport) -> Figure:
    """Grouped bars per item group: exposure, catalogue and (if known) relevant share.

    Examples
    --------
    >>> from evaluation._exposure import ExposureReport
    >>> ex = ExposureReport(groups=["head", "tail"], exposure_share={"head": 0.9, "tail": 0.1},
    ...     catalog_share={"head": 0.2, "tail": 0.8}, relevant_share=None, exposure_ratio=0.03)
    >>> fr = FairnessReport(k=3, quality={}, parity={}, equal_opportunity={},
    ...     item_group="popularity", protected_group="tail", exposure=ex, contains_rate=0.0,
    ...     list_share=0.0, long_tail_share=0.1, item_category=None, amplification={})
    >>> len(plot_exposure(fr).axes[0].patches)
    4
    """
    ex = report.exposure
    series = {"exposure": ex.exposure_share, "catalogue": ex.catalog_share}
    if ex.relevant_share is not None:
        series["relevant"] = ex.relevant_share
    fig, (ax,) = _figure(1, width=max(4.0, 1.2 * len(ex.groups)))
    x = np.arange(len(ex.groups))
    width = 0.8 / len(series)
    for j, (label, shares) in enumerate(series.items()):
        offset = (j - (len(series) - 1) / 2) * width
        ax.bar(x + offset, [shares[g] for g in ex.groups], width, label=label)
    ax.set_xticks(x, ex.groups)
    ax.set_xlabel(report.item_group)
    ax.set_ylabel("share")
    _title(ax, f"exposure by {report.item_group} group (ratio {ex.exposure_ratio:.2f})", max(4.0, 1.2 * len(ex.groups)))
    ax.legend()
    return fig
