"""Bundle consumer- and item-side fairness into one immutable report.

:func:`fairness_metrics` takes the ranked lists that
:func:`evaluation.evaluate_rankings` scored, its :class:`RelevanceReport`,
the user and item attribute tables and the interaction matrices, and returns
a :class:`FairnessReport` with flat MLflow-safe numbers (:meth:`~FairnessReport.flat`),
a JSON-able artifact (:meth:`~FairnessReport.to_json`) and two plots.

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
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from evaluation._exposure import (
    BiasAmplification,
    ExposureReport,
    _amplification,
    _category_mix,
    _CategoryMix,
    _check_head_share,
    _check_not_empty,
    _check_weighting,
    _exposure_per_item,
    _exposure_report,
    _head_tail,
    _is_head,
    _tail_share,
    _entry_counts,
)
from evaluation._fairness import (
    GroupQuality,
    OutcomeParity,
    _check_boot,
    _check_vectors,
    _encode_groups,
    _group_means,
    _member_hits,
    _overall,
    _parity,
    _quality,
    _share,
    _split_defined,
    _spread,
)
from evaluation._ranking import _as_binary_csr, _check_ids, _check_users, log_rank_weight
from evaluation._relevance import RelevanceReport

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "FairnessReport",
    "fairness_metrics",
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


def _column(table: pd.DataFrame, column: str, *, name: str) -> pd.Series | np.ndarray:
    """The column's labels, for ``_encode_groups``.

    Text columns (and categories of text) stay a Series: pandas factorizes
    them natively, several times faster than their object array, with the
    same labels. Other columns give their values, whose string forms can
    differ from those of pandas' own unique values (datetimes, categories of
    numbers with missing values).
    """
    if column not in table.columns:
        raise ValueError(f"{name}: no column {column!r}; available: {list(table.columns)}")
    series = table[column]
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        dtype = dtype.categories.dtype
    text = isinstance(dtype, pd.StringDtype) or dtype == object
    return series if text else series.to_numpy()


def fairness_metrics(
    *,
    report: RelevanceReport,
    ids: np.ndarray,
    users: np.ndarray,
    users_table: pd.DataFrame,
    items_table: pd.DataFrame,
    train: sp.spmatrix | sp.sparray,
    relevant: sp.spmatrix | sp.sparray,
    sensitive: Sequence[str],
    item_group: str = "popularity",
    protected_group: str = "tail",
    item_category: str | None = "category",
    head_share: float = 0.8,
    amplification_weighting: str = "user",
    n_boot: int | None = None,
    ci: float = 0.95,
    random_state: int | None = 0,
) -> FairnessReport:
    """Consumer- and item-side fairness of the lists a relevance report scored.

    Parameters
    ----------
    report : RelevanceReport
        From ``evaluate_rankings(ids, users=users, relevant=relevant, train=train, ...)``.
    ids : ndarray of int, shape (n_rows, width)
        The ranked lists given to ``evaluate_rankings`` (truncated to ``report.k``).
    users : ndarray of int, shape (n_rows,)
        The users given to ``evaluate_rankings``, aligned with ``ids``.
    users_table, items_table : pandas DataFrame
        One row per internal user / item index.
    train, relevant : scipy sparse matrix, shape (n_users, n_items)
    sensitive : sequence of str
        Columns of ``users_table`` to audit (e.g. ``["gender", "age_group"]``).
    item_group : str, default "popularity"
        ``"popularity"``: head/tail from :func:`popularity_groups` on ``train``
        (with ``head_share``); otherwise a column of ``items_table``.
    protected_group : str, default "tail"
        Item group whose presence in the top-k is the demographic-parity outcome.
    item_category : str or None, default "category"
        Column of ``items_table`` for :func:`bias_amplification`; None skips it.
    amplification_weighting : {"user", "interaction"}, default "user"
        How bias amplification weighs users (see ``bias_amplification``).
    head_share : float, default 0.8
        Head share for the popularity groups (and ``long_tail_share``).
    n_boot, ci, random_state
        Bootstrap of the group-quality means (see :func:`group_quality`).

    Returns
    -------
    FairnessReport
        Consumer side (quality, parity, equal opportunity) over the evaluated
        users ``report.users``; item side (exposure, long-tail share, bias
        amplification) over all ``n_rows`` lists. ``relevant_share`` counts the
        relevant entries of the users in ``users``.

    Notes
    -----
    The numbers are those of :func:`group_quality`, :func:`outcome_parity`,
    :func:`equal_opportunity`, :func:`bias_amplification`,
    :func:`group_exposure` and :func:`long_tail_share` called one by one
    (tests compare them), with the shared work done once: one pass over
    ``train`` for item popularity and every user's category counts, each
    attribute encoded once, and all per-user metrics and the outcome grouped
    in one sum per attribute.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> from evaluation import evaluate_rankings
    >>> train = sp.csr_matrix([[1, 1, 0, 0], [1, 0, 1, 0]])
    >>> relevant = sp.csr_matrix([[0, 0, 1, 0], [0, 1, 0, 1]])
    >>> ids, users = np.array([[2, 3], [0, 1]]), np.array([0, 1])
    >>> rep = evaluate_rankings(ids, users=users, relevant=relevant, train=train)
    >>> fr = fairness_metrics(
    ...     report=rep, ids=ids, users=users, train=train, relevant=relevant,
    ...     users_table=pd.DataFrame({"user_id": [1, 2], "gender": ["F", "M"]}),
    ...     items_table=pd.DataFrame({"item_id": [1, 2, 3, 4], "category": list("xxyy")}),
    ...     sensitive=["gender"])
    >>> flat = fr.flat()
    >>> flat["gender.hit_rate_at_2.F"], flat["gender.hit_rate_at_2.M"]
    (1.0, 1.0)
    >>> flat["demographic_parity_difference.gender"], flat["four_fifths_violated.gender"]
    (1.0, 1.0)
    """
    if isinstance(sensitive, str) or not all(isinstance(c, str) for c in sensitive):
        raise ValueError(f"sensitive: expected a sequence of column names, got {sensitive!r}")
    rel = _as_binary_csr(relevant, name="relevant")
    tr = _as_binary_csr(train, name="train")
    if tr.shape != rel.shape:
        raise ValueError(f"train: expected the shape of relevant {rel.shape}, got {tr.shape}")
    n_users, n_items = rel.shape
    for name, table, n in (
        ("users_table", users_table, n_users), ("items_table", items_table, n_items)
    ):
        if len(table) != n:
            raise ValueError(f"{name}: expected one row per internal index ({n}), got {len(table)}")
    ids = _check_ids(ids, n_items=n_items)
    if ids.shape[1] < report.k:
        raise ValueError(
            f"ids: expected at least report.k = {report.k} columns, got {ids.shape[1]}"
        )
    ids = ids[:, : report.k]
    users = _check_users(users, n_rows=ids.shape[0], n_users=n_users)
    keep = np.diff(rel.indptr)[users] > 0
    if not np.array_equal(users[keep], report.users):
        raise ValueError(
            "report: its users are not the rows of users with a relevant item; pass the ids, "
            "users and relevant that were given to evaluate_rankings"
        )
    _check_head_share(head_share)
    _check_not_empty(tr)
    item_labels = None
    if item_group != "popularity":
        item_labels = _column(items_table, item_group, name="items_table")
    category = None
    if item_category is not None:
        column = _column(items_table, item_category, name="items_table")
        category = _encode_groups(column, name="item_category", n=n_items)

    # one pass over the training matrix: item popularity and each user's category counts
    per_item, per_user = (
        _entry_counts(tr) if category is None
        else _entry_counts(tr, category.codes, len(category.names))
    )
    is_tail = ~_is_head(per_item, tr.nnz, head_share)
    item_groups = (
        _head_tail(is_tail) if item_labels is None
        else _encode_groups(item_labels, name="item_group")
    )
    if protected_group not in item_groups.names:
        raise ValueError(
            f"protected_group: expected one of the {item_group!r} groups {item_groups.names}, "
            f"got {protected_group!r}"
        )
    hits, valid = _member_hits(ids, item_groups.codes == item_groups.names.index(protected_group))
    shares = _share(hits, valid)[keep]  # of the evaluated users' lists
    outcome = shares > 0

    mix = None
    if category is not None and sensitive:
        _check_weighting(amplification_weighting)
        mix = _category_mix(
            per_user, np.diff(tr.indptr), ids, users, category, amplification_weighting
        )
    quality, parity, eo, amplification = _by_attribute(
        report, outcome, mix, users_table=users_table, sensitive=sensitive,
        n_boot=n_boot, ci=ci, random_state=random_state,
    )
    defined = shares[~np.isnan(shares)]
    exposure = _exposure_per_item(ids, n_items, log_rank_weight(report.k))
    return FairnessReport(
        k=report.k,
        quality=quality,
        parity=parity,
        equal_opportunity=eo,
        item_group=item_group,
        protected_group=protected_group,
        exposure=_exposure_report(exposure, item_groups, _relevant_items(rel, users)),
        contains_rate=float(outcome.mean()),
        list_share=float(defined.mean()) if defined.size else float("nan"),
        long_tail_share=_tail_share(exposure, is_tail),
        item_category=item_category,
        amplification=amplification,
    )


def _by_attribute(
    report: RelevanceReport,
    outcome: np.ndarray,
    mix: _CategoryMix | None,
    *,
    users_table: pd.DataFrame,
    sensitive: Sequence[str],
    n_boot: int | None,
    ci: float,
    random_state: int | None,
) -> tuple[
    dict[str, GroupQuality],
    dict[str, OutcomeParity],
    dict[str, tuple[float, float]],
    dict[str, BiasAmplification],
]:
    """Quality, parity, equal opportunity and (with ``mix``) amplification per attribute.

    Each attribute is encoded once; the group means of every per-user metric
    and of the outcome come from one grouped sum (see ``_group_means``).
    """
    quality, parity, eo, amplification = {}, {}, {}, {}
    if not sensitive:
        return quality, parity, eo, amplification
    vectors = _check_vectors(report.per_user)
    level = _check_boot(n_boot, ci)
    split = _split_defined(np.column_stack([*vectors.values(), outcome]))
    overall, outcome_rate = _overall(vectors), float(outcome.mean())
    for attr in sensitive:
        column = _column(users_table, attr, name="users_table")
        groups = _encode_groups(column, name="user_group", n=len(users_table))
        evaluated = groups.take(report.users)
        means = _group_means(split, evaluated)
        quality[attr] = _quality(
            vectors, evaluated, means[:, :-1], attribute=attr, overall=overall,
            n_boot=n_boot, level=level, random_state=random_state,
        )
        parity[attr] = _parity(means[:, -1], evaluated, attribute=attr, overall=outcome_rate)
        if "recall" in vectors:
            eo[attr] = _spread(means[:, list(vectors).index("recall")])
        if mix is not None:
            amplification[attr] = _amplification(mix, groups)
    return quality, parity, eo, amplification


def _relevant_items(relevant: sp.csr_matrix | sp.csr_array, users: np.ndarray) -> np.ndarray:
    """Stored entries per item in the rows ``users`` (each row once) of ``relevant``."""
    n_users, n_items = relevant.shape
    row_len = np.diff(relevant.indptr)
    chosen = np.zeros(n_users, dtype=bool)
    chosen[users] = True
    if chosen[row_len > 0].all():  # every row with an entry: count them all
        return _entry_counts(relevant)[0]
    return np.bincount(relevant.indices[np.repeat(chosen, row_len)], minlength=n_items)


# ---------------------------------------------------------------------- plots
def _figure(n_axes: int, *, width: float = 4.0) -> tuple[Figure, list[Axes]]:
    """A Figure on the Agg canvas, built without pyplot (no global backend state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * n_axes, 3.5), layout="constrained")
    FigureCanvasAgg(fig)
    return fig, list(fig.subplots(1, n_axes, squeeze=False)[0])


def plot_group_quality(report: FairnessReport, metric: str) -> Figure:
    """Bar chart of one per-user metric's group means, one panel per attribute.

    Error bars show the bootstrap interval when the report has one; the dashed
    line is the overall mean.

    Examples
    --------
    >>> from evaluation import ExposureReport, group_quality
    >>> gq = group_quality({"ndcg": np.array([0.2, 0.4, 0.6])}, pd.Series(list("ffm"), name="g"))
    >>> ex = ExposureReport(groups=["a"], exposure_share={"a": 1.0}, catalog_share={"a": 1.0},
    ...                     relevant_share=None, exposure_ratio=1.0)
    >>> fr = FairnessReport(k=3, quality={"g": gq}, parity={}, equal_opportunity={},
    ...     item_group="popularity", protected_group="tail", exposure=ex, contains_rate=0.0,
    ...     list_share=0.0, long_tail_share=0.0, item_category=None, amplification={})
    >>> [t.get_text() for t in plot_group_quality(fr, "ndcg").axes[0].get_xticklabels()]
    ['f', 'm']
    """
    if not report.quality or metric not in next(iter(report.quality.values())).by_group:
        known = sorted(next(iter(report.quality.values())).by_group) if report.quality else []
        raise ValueError(f"metric: expected one of {known}, got {metric!r}")
    fig, axes = _figure(len(report.quality))
    for ax, (attr, gq) in zip(axes, report.quality.items(), strict=True):
        groups = gq.groups
        means = np.array([gq.by_group[metric][g] for g in groups])
        yerr = None
        if gq.ci is not None:
            bounds = np.array([gq.ci[metric][g] for g in groups]).T
            yerr = np.nan_to_num(np.abs(bounds - means))
        ax.bar(groups, means, yerr=yerr, capsize=4, color="tab:blue")
        ax.axhline(gq.overall[metric], color="black", linestyle="--", linewidth=1)
        ax.set_title(f"{metric}@{report.k} by {attr}")
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
    ax.set_title(f"exposure by {report.item_group} group (ratio {ex.exposure_ratio:.2f})")
    ax.legend()
    return fig
