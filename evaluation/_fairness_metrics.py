"""Fairness of ranked lists in two halves: what the data says, then what each model does.

:func:`fairness_baseline` does every step that does not depend on the lists,
once per dataset: the checks of the interaction matrices and attribute tables,
the passes over the training matrix (item popularity for the head/tail groups,
unless the run's counts are given, and every user's category counts), the
encoding of each sensitive attribute and item grouping, the relevant entries
per item group and each user group's training category mix.
:meth:`FairnessBaseline.score` then scores one set of lists against it, which
is all a run repeats per candidate (and per point of a strength sweep).
:func:`fairness_metrics` is both in one call.

Written by hand: fairlearn's ``MetricFrame`` computes one metric per call from
per-row vectors and has no notion of ranked lists, item groups or training
mixes; the grouped means here equal its numbers (tests compare them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from evaluation._counts import (
    _category_counts,
    _check_item_counts,
    _counted_entries,
    _item_counts,
)
from evaluation._exposure import (
    BiasAmplification,
    _amplification,
    _check_head_share,
    _check_not_empty,
    _check_weighting,
    _exposure_per_item,
    _exposure_report,
    _head_tail,
    _is_head,
    _list_mix,
    _shares,
    _tail_share,
    _train_weights,
)
from evaluation._fairness import (
    GroupQuality,
    OutcomeParity,
    _check_boot,
    _check_vectors,
    _encode_groups,
    _Groups,
    _GroupSums,
    _means,
    _member_hits,
    _overall,
    _parity,
    _quality,
    _share,
    _split_defined,
    _spread,
)
from evaluation._fairness_report import FairnessReport
from evaluation._ranking import _as_binary_csr, _check_ids, _check_users, log_rank_weight
from evaluation._relevance import RelevanceReport

__all__ = ["FairnessBaseline", "fairness_baseline", "fairness_metrics"]


@dataclass(frozen=True, eq=False)
class _Attribute:
    """One sensitive attribute, encoded once."""

    groups: _Groups  # one code per internal user
    evaluated: _Groups  # one code per evaluated user (the groups that occur among them)
    train_share: np.ndarray | None  # (n_groups, n_categories) training mix, or None


@dataclass(frozen=True, eq=False)
class FairnessBaseline:
    """The list-independent half of :func:`fairness_metrics`, built by :func:`fairness_baseline`.

    Holds the checked users and, per setting, the precomputed data: item
    groups and the protected ones, the popularity tail, relevant entries per
    item, item categories, per sensitive attribute its encoded groups and
    training category mix, and the group indicators of all attributes
    stacked, for the evaluated users and for the lists' users (one sparse
    product then groups a model's per-user columns by every attribute).
    Score any number of list sets of the same users with :meth:`score`.
    """

    users: np.ndarray
    evaluated: np.ndarray  # users with a relevant item: the rows a relevance report keeps
    keep: np.ndarray
    n_items: int
    item_group: str
    protected_group: str
    item_groups: _Groups
    protected: np.ndarray
    is_tail: np.ndarray
    relevant_per_item: np.ndarray
    item_category: str | None
    categories: _Groups | None
    weighting: str
    attributes: dict[str, _Attribute]
    by_evaluated: _GroupSums | None  # every attribute's groups of the evaluated users
    by_list: _GroupSums | None  # every attribute's groups of the users of the lists

    @property
    def all_kept(self) -> bool:
        """Whether every list's user is evaluated (has a relevant item), as in a run."""
        return bool(self.keep.all())

    def score(
        self,
        report: RelevanceReport,
        ids: np.ndarray,
        *,
        n_boot: int | None = None,
        ci: float = 0.95,
        random_state: int | None = 0,
    ) -> FairnessReport:
        """Fairness of one set of lists of the baseline's users.

        Parameters
        ----------
        report : RelevanceReport
            From ``evaluate_rankings`` on the same ``ids`` and the baseline's users.
        ids : ndarray of int, shape (n_users, width)
            One ranked list per user of the baseline (row ``r`` for ``users[r]``);
            truncated to ``report.k``.
        n_boot, ci, random_state
            Bootstrap of the group-quality means (see :func:`group_quality`).

        Returns
        -------
        FairnessReport
            The same numbers as :func:`fairness_metrics` on the same inputs.
        """
        ids = _check_ids(ids, n_items=self.n_items)
        if ids.shape[0] != self.users.size:
            raise ValueError(
                f"ids: expected one list per user of the baseline ({self.users.size} rows), "
                f"got {ids.shape[0]}"
            )
        if ids.shape[1] < report.k:
            raise ValueError(
                f"ids: expected at least report.k = {report.k} columns, got {ids.shape[1]}"
            )
        if not np.array_equal(self.evaluated, report.users):
            raise ValueError(
                "report: its users are not the rows of users with a relevant item; pass the ids, "
                "users and relevant that were given to evaluate_rankings"
            )
        ids = ids[:, : report.k]
        hits, valid = _member_hits(ids, self.protected)
        shares = _share(hits, valid)  # of the evaluated users' lists
        if not self.all_kept:
            shares = shares[self.keep]
        outcome = shares > 0
        mix = None
        if self.categories is not None and self.attributes:
            mix = _list_mix(ids, self.categories, self.weighting)
        quality, parity, eo, amplification = self._by_attribute(
            report, outcome, mix, n_boot=n_boot, ci=ci, random_state=random_state
        )
        defined = shares[~np.isnan(shares)]
        exposure = _exposure_per_item(ids, self.n_items, log_rank_weight(report.k))
        return FairnessReport(
            k=report.k,
            quality=quality,
            parity=parity,
            equal_opportunity=eo,
            item_group=self.item_group,
            protected_group=self.protected_group,
            exposure=_exposure_report(exposure, self.item_groups, self.relevant_per_item),
            contains_rate=float(outcome.mean()),
            list_share=float(defined.mean()) if defined.size else float("nan"),
            long_tail_share=_tail_share(exposure, self.is_tail),
            item_category=self.item_category,
            amplification=amplification,
        )

    def _by_attribute(
        self,
        report: RelevanceReport,
        outcome: np.ndarray,
        list_mix: np.ndarray | None,
        *,
        n_boot: int | None,
        ci: float,
        random_state: int | None,
    ) -> tuple[
        dict[str, GroupQuality],
        dict[str, OutcomeParity],
        dict[str, tuple[float, float]],
        dict[str, BiasAmplification],
    ]:
        """Quality, parity, equal opportunity and (with ``list_mix``) amplification.

        The group means of every per-user metric and of the outcome, for every
        attribute, come from one sparse product, and so do the list category
        mixes per group (see ``_GroupSums``).
        """
        quality, parity, eo, amplification = {}, {}, {}, {}
        if not self.attributes or self.by_evaluated is None:
            return quality, parity, eo, amplification
        vectors = _check_vectors(report.per_user)
        level = _check_boot(n_boot, ci)
        split = _split_defined([*vectors.values(), outcome])
        overall, outcome_rate = _overall(vectors, split.with_nan), float(outcome.mean())
        totals = self.by_evaluated.sums(split.table)  # one product for every attribute
        rec_totals = (
            self.by_list.sums(list_mix)
            if list_mix is not None and self.by_list is not None
            else [None] * len(self.attributes)
        )
        for (attr, a), total, rec_total in zip(
            self.attributes.items(), totals, rec_totals, strict=True
        ):
            means = _means(split, a.evaluated, total)
            quality[attr] = _quality(
                vectors, a.evaluated, means[:, :-1], attribute=attr, overall=overall,
                n_boot=n_boot, level=level, random_state=random_state,
            )
            parity[attr] = _parity(means[:, -1], a.evaluated, attribute=attr, overall=outcome_rate)
            if "recall" in vectors:
                eo[attr] = _spread(means[:, list(vectors).index("recall")])
            if rec_total is not None and a.train_share is not None and self.categories is not None:
                amplification[attr] = _amplification(
                    a.train_share, _shares(rec_total), a.groups.names, self.categories.names
                )
        return quality, parity, eo, amplification


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


def _relevant_items(relevant: sp.csr_matrix | sp.csr_array, users: np.ndarray) -> np.ndarray:
    """Stored entries per item in the rows ``users`` (each row once) of ``relevant``."""
    n_users, n_items = relevant.shape
    row_len = np.diff(relevant.indptr)
    chosen = np.zeros(n_users, dtype=bool)
    chosen[users] = True
    if chosen[row_len > 0].all():  # every row with an entry: count them all
        return _item_counts(relevant)
    return np.bincount(relevant.indices[np.repeat(chosen, row_len)], minlength=n_items)


def fairness_baseline(
    *,
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
    item_counts: np.ndarray | None = None,
) -> FairnessBaseline:
    """Everything :func:`fairness_metrics` computes that does not depend on the lists.

    Takes the arguments of :func:`fairness_metrics` other than the lists, the
    relevance report and the bootstrap settings; see there for their meaning
    (and for ``item_counts``, which a run shares with ``evaluate_rankings``).
    ``users`` are the users the lists will be given for (one list per entry).

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> from evaluation import evaluate_rankings
    >>> train = sp.csr_matrix([[1, 1, 0, 0], [1, 0, 1, 0]])
    >>> relevant = sp.csr_matrix([[0, 0, 1, 0], [0, 1, 0, 1]])
    >>> users = np.array([0, 1])
    >>> base = fairness_baseline(
    ...     users=users, train=train, relevant=relevant, sensitive=["gender"],
    ...     users_table=pd.DataFrame({"user_id": [1, 2], "gender": ["F", "M"]}),
    ...     items_table=pd.DataFrame({"item_id": [1, 2, 3, 4], "category": list("xxyy")}))
    >>> for ids in (np.array([[2, 3], [0, 1]]), np.array([[3, 2], [1, 0]])):
    ...     rep = evaluate_rankings(ids, users=users, relevant=relevant, train=train)
    ...     print(base.score(rep, ids).flat()["demographic_parity_difference.gender"])
    1.0
    1.0
    """
    if isinstance(sensitive, str) or not all(isinstance(c, str) for c in sensitive):
        raise ValueError(f"sensitive: expected a sequence of column names, got {sensitive!r}")
    rel = _as_binary_csr(relevant, name="relevant")
    tr = _as_binary_csr(train, name="train", nonzero=_counted_entries(item_counts))
    if tr.shape != rel.shape:
        raise ValueError(f"train: expected the shape of relevant {rel.shape}, got {tr.shape}")
    n_users, n_items = rel.shape
    for name, table, n in (
        ("users_table", users_table, n_users), ("items_table", items_table, n_items)
    ):
        if len(table) != n:
            raise ValueError(f"{name}: expected one row per internal index ({n}), got {len(table)}")
    users = _check_users(users, n_rows=np.size(users), n_users=n_users)
    _check_head_share(head_share)
    _check_not_empty(tr)
    item_labels = None
    if item_group != "popularity":
        item_labels = _column(items_table, item_group, name="items_table")
    categories = None
    if item_category is not None:
        column = _column(items_table, item_category, name="items_table")
        categories = _encode_groups(column, name="item_category", n=n_items)
    if categories is not None and sensitive:
        _check_weighting(amplification_weighting)

    # the passes over the training matrix: item popularity (unless given), each user's
    # category counts (only amplification needs them)
    per_item = _item_counts(tr) if item_counts is None else _check_item_counts(item_counts, tr)
    per_user = None
    if categories is not None and sensitive:
        # as float64, the dtype the group sums take (exact integers)
        per_user = _category_counts(tr, categories.codes, len(categories.names), np.float64)
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
    keep = np.diff(rel.indptr)[users] > 0
    groups = {
        attr: _encode_groups(_column(users_table, attr, name="users_table"), name="user_group",
                             n=n_users)
        for attr in sensitive
    }
    evaluated = {attr: g.take(users[keep]) for attr, g in groups.items()}
    # every attribute's groups stacked (_GroupSums): one product groups a set of columns by all
    by_list = _GroupSums.of(list(groups.values()), rows=users) if groups else None
    if by_list is not None and keep.all() and all(
        len(evaluated[attr].names) == len(g.names) for attr, g in groups.items()
    ):  # every list's user is evaluated (a run's case) and keeps every group: the same rows
        by_evaluated = by_list
    else:
        by_evaluated = _GroupSums.of(list(evaluated.values())) if groups else None
    train_shares = dict.fromkeys(groups)
    if per_user is not None and groups:
        weights = _train_weights(np.diff(tr.indptr), users, amplification_weighting)
        by_user = _GroupSums.of(list(groups.values()), weights=weights)
        train_shares = dict(zip(groups, map(_shares, by_user.sums(per_user)), strict=True))
    attributes = {
        attr: _Attribute(groups=g, evaluated=evaluated[attr], train_share=train_shares[attr])
        for attr, g in groups.items()
    }
    return FairnessBaseline(
        users=users,
        evaluated=users[keep],
        keep=keep,
        n_items=n_items,
        item_group=item_group,
        protected_group=protected_group,
        item_groups=item_groups,
        protected=item_groups.codes == item_groups.names.index(protected_group),
        is_tail=is_tail,
        relevant_per_item=_relevant_items(rel, users),
        item_category=item_category,
        categories=categories,
        weighting=amplification_weighting,
        attributes=attributes,
        by_evaluated=by_evaluated,
        by_list=by_list,
    )


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
    item_counts: np.ndarray | None = None,
    n_boot: int | None = None,
    ci: float = 0.95,
    random_state: int | None = 0,
) -> FairnessReport:
    """Consumer- and item-side fairness of the lists a relevance report scored.

    ``fairness_baseline(...).score(report, ids, ...)`` in one call; to score
    several list sets of the same users, build the baseline once.

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
    item_counts : ndarray of int, shape (n_items,), optional
        ``item_counts(train)``, when the caller has it: a run counts its
        training matrix once and passes the counts here and to
        ``evaluate_rankings``. Counted from ``train`` when omitted. Counts
        that add up to all of ``train``'s stored entries also vouch that
        none of them is zero, so ``train`` is not scanned for zeros.
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
    ``train`` for item popularity (none when ``item_counts`` is given) and
    one for every user's category counts, each
    attribute encoded once, and all per-user metrics and the outcome grouped
    by every attribute in one sparse product.

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
    baseline = fairness_baseline(
        users=users, users_table=users_table, items_table=items_table, train=train,
        relevant=relevant, sensitive=sensitive, item_group=item_group,
        protected_group=protected_group, item_category=item_category, head_share=head_share,
        amplification_weighting=amplification_weighting, item_counts=item_counts,
    )
    return baseline.score(report, ids, n_boot=n_boot, ci=ci, random_state=random_state)
