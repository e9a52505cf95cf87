"""Consumer-side group fairness over per-user vectors, with fairlearn's definitions.

Every per-user metric (one float per evaluated user, see
:class:`evaluation.RelevanceReport`) becomes a "prediction" whose group mean
is the quality a group of users receives: :func:`group_quality` reports
fairlearn ``MetricFrame``'s ``by_group``, ``overall``, ``difference()`` and
``ratio()`` and, on request, its bootstrap confidence intervals (computed by
MetricFrame). Binary per-user outcomes ("the top-k holds at least one item of
group G") give fairlearn's ``demographic_parity_difference`` and
``demographic_parity_ratio`` in :func:`outcome_parity`. The point estimates
are group means, computed as grouped sums (see ``_group_means`` for why);
tests assert they equal fairlearn's on the same inputs.

Group labels are strings; a missing attribute (``NaN``/``None``) is the group
``"unknown"``. Labels are encoded once (``_encode_groups``) into sorted names
and integer codes, which :func:`evaluation.fairness_metrics` shares between
all the metrics of one attribute.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
import scipy.sparse as sp
from fairlearn.metrics import MetricFrame

from evaluation._ranking import _check_ids

__all__ = [
    "GroupQuality",
    "OutcomeParity",
    "contains_group",
    "equal_opportunity",
    "group_quality",
    "outcome_parity",
    "share_of_group",
]

#: Label of the group of users (or items) whose attribute is missing.
UNKNOWN = "unknown"
#: Disparate-impact threshold of the "four-fifths rule".
FOUR_FIFTHS = 0.8


# ------------------------------------------------------------------ helpers
@dataclass(frozen=True, eq=False)
class _Groups:
    """Labels encoded once: sorted distinct group names and every entry's code.

    ``names`` are the distinct string labels in sorted order (missing values
    are ``"unknown"``), ``codes[i]`` the index in ``names`` of entry ``i``.
    Every name occurs at least once in ``codes``.
    """

    names: list[str]
    codes: np.ndarray

    def sizes(self) -> np.ndarray:
        """Entries per group (counted once: every metric of an attribute asks for them)."""
        return self._sizes

    @cached_property
    def _sizes(self) -> np.ndarray:
        sizes = np.bincount(self.codes, minlength=len(self.names))
        sizes.setflags(write=False)
        return sizes

    def labels(self) -> np.ndarray:
        """The string label of every entry (object array)."""
        return np.array(self.names, dtype=object)[self.codes]

    def take(self, rows: np.ndarray) -> _Groups:
        """The entries ``rows``, keeping only the groups that still occur."""
        codes = self.codes[rows]
        present = np.bincount(codes, minlength=len(self.names)) > 0
        if present.all():
            return _Groups(self.names, codes)
        new_code = np.cumsum(present) - 1
        return _Groups([g for g, p in zip(self.names, present, strict=True) if p], new_code[codes])


def _encode_groups(values: object, *, name: str, n: int | None = None) -> _Groups:
    """Group labels as strings, missing values as ``"unknown"``, encoded once.

    Values are factorized (hashed) once; only the distinct values are turned
    into strings and sorted, so distinct values with the same string (``1``
    and ``"1"``) form one group, as do missing values and the string
    ``"unknown"``.
    """
    raw = values if isinstance(values, pd.Series) else np.asarray(values, dtype=object)
    if np.ndim(raw) != 1:
        raise ValueError(f"{name}: expected a 1-D array of labels, got shape {np.shape(values)}")
    if n is not None and len(raw) != n:
        raise ValueError(f"{name}: expected one label per value ({n}), got {len(raw)}")
    if isinstance(raw, pd.Series) and isinstance(raw.dtype, pd.CategoricalDtype):
        codes, uniques = _categorical_codes(raw)
    else:
        codes, uniques = pd.factorize(raw, use_na_sentinel=True)  # missing -> -1
    strings = [str(v) for v in uniques]
    missing = codes < 0
    if missing.any():
        strings.append(UNKNOWN)
        codes = np.where(missing, len(strings) - 1, codes)
    names, first_of = np.unique(np.array(strings, dtype=object), return_inverse=True)
    return _Groups([str(g) for g in names], first_of.astype(np.int64)[codes])


def _categorical_codes(series: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """``pd.factorize`` of a categorical from pandas' own codes: the categories that occur.

    Codes index the returned categories, -1 marks a missing value; no value is
    hashed (about half the time of ``pd.factorize`` on 138,000 labels).
    """
    codes = series.cat.codes.to_numpy()
    categories = series.cat.categories
    occurs = np.bincount(codes.astype(np.intp) + 1, minlength=len(categories) + 1)[1:] > 0
    if occurs.all():
        return codes, categories
    new_code = np.cumsum(occurs) - 1
    return np.where(codes >= 0, new_code[codes], -1), categories[occurs]


def _sum_by_group(
    groups: _Groups,
    columns: np.ndarray,
    *,
    rows: np.ndarray | None = None,
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """Column sums per group, shape ``(n_groups, m)``, for ``columns`` of shape ``(n, m)``.

    Row ``i`` of ``columns`` belongs to entry ``i`` of ``groups``, or to
    entry ``rows[i]`` when ``rows`` is given; with ``weights`` it adds
    ``weights[i]`` times its values.
    """
    return _GroupSums.of([groups], rows=rows, weights=weights).sums(columns)[0]


@dataclass(frozen=True, eq=False)
class _GroupSums:
    """Column sums per group under several groupings of the same rows, in one product.

    A sparse indicator product rather than one ``bincount`` per column: it
    adds each row's ``m`` values in one step (rows in order, like
    ``bincount``), several times faster for a dozen columns. Stacking the
    indicators of every grouping (every sensitive attribute) reads the
    columns once for all of them; each group still adds its rows in order,
    so the sums equal those of one product per grouping bit for bit. Build
    it once for rows that several column sets are grouped by.
    """

    indicator: sp.csc_array  # (sum of n_groups, n_rows): column i has a 1 in i's group per grouping
    n_groups: list[int]

    @classmethod
    def of(
        cls,
        groupings: Sequence[_Groups],
        *,
        rows: np.ndarray | None = None,
        weights: np.ndarray | None = None,
    ) -> _GroupSums:
        """Row ``i`` in the group of entry ``i`` (or ``rows[i]``) of every grouping.

        With ``weights`` (one per row) the indicator holds ``weights[i]``
        instead of 1: the sums add each row's values times its weight, the
        products a weighted table would hold, in the same order.
        """
        codes = [g.codes if rows is None else g.codes[rows] for g in groupings]
        n_groups = [len(g.names) for g in groupings]
        n_rows, per_row = codes[0].size, len(codes)
        cells = np.empty((n_rows, per_row), dtype=np.int64)  # row i's group in each grouping
        offset = 0
        for grouping, (c, n) in enumerate(zip(codes, n_groups, strict=True)):
            np.add(c, offset, out=cells[:, grouping])
            offset += n
        data = (
            np.ones(cells.size) if weights is None
            else np.repeat(np.asarray(weights, dtype=np.float64), per_row)
        )
        indicator = sp.csc_array(
            (data, cells.ravel(), np.arange(0, cells.size + 1, per_row)), shape=(offset, n_rows)
        )
        return cls(indicator, n_groups)

    def sums(self, columns: np.ndarray) -> list[np.ndarray]:
        """``(n_groups, m)`` column sums per grouping, for ``columns`` of shape ``(n_rows, m)``."""
        totals = self.indicator @ _as_columns(columns)
        return np.split(totals, np.cumsum(self.n_groups)[:-1])


def _as_columns(values: np.ndarray) -> np.ndarray:
    """A float64 array of shape ``(n, m)``; a vector becomes one column."""
    arr = np.asarray(values, dtype=np.float64)
    return arr[:, None] if arr.ndim == 1 else arr


@dataclass(frozen=True, eq=False)
class _Split:
    """Per-user columns ready for :func:`_group_means`, prepared once for every grouping.

    ``table`` holds the ``m`` columns with nan as 0, then one 0/1 "defined"
    column for each column in ``with_nan`` (the others are defined for every
    user, so their counts are the group sizes).
    """

    table: np.ndarray
    m: int
    with_nan: np.ndarray


def _split_defined(columns: np.ndarray | Sequence[np.ndarray]) -> _Split:
    """Prepare per-user columns for :func:`_group_means`.

    ``columns`` is an array ``(n, m)``, one vector, or a sequence of ``m``
    vectors. Vectors are copied into the rows of an ``(m, n)`` array and
    transposed once: numpy's transposing copy is about 2x faster than
    ``column_stack`` (137,000 users x 10 metrics).
    """
    if isinstance(columns, np.ndarray):
        columns = _as_columns(columns)
        if not np.isnan(columns).any():  # nothing to split: the columns are the table
            return _Split(columns, columns.shape[1], np.zeros(0, dtype=np.intp))
        columns = list(columns.T)
    m = len(columns)
    with_nan = np.flatnonzero([np.isnan(np.asarray(v, dtype=np.float64)).any() for v in columns])
    rows = np.empty((m + with_nan.size, np.size(columns[0])))
    for j, values in enumerate(columns):
        rows[j] = values
    for extra, j in enumerate(with_nan, start=m):
        undefined = np.isnan(rows[j])
        rows[j, undefined] = 0.0
        rows[extra] = ~undefined
    return _Split(rows.T.copy(), m, with_nan)


def _group_means(split: _Split, groups: _Groups) -> np.ndarray:
    """nan-skipping group means ``[n_groups, m]`` of the columns behind ``split``.

    Written by hand instead of calling fairlearn's MetricFrame for point
    estimates: MetricFrame converts every row of every group in Python
    (about 10 s for 20,000 users and a dozen metrics), while a group mean of
    a per-user vector is a group sum divided by a group count. Tests assert
    equality with MetricFrame and with fairlearn's parity functions;
    MetricFrame still computes the bootstrap intervals.
    """
    return _means(split, groups, _sum_by_group(groups, split.table))


def _means(split: _Split, groups: _Groups, totals: np.ndarray) -> np.ndarray:
    """:func:`_group_means` from the group sums ``totals`` of ``split.table``."""
    counts = np.repeat(groups.sizes().astype(np.float64)[:, None], split.m, axis=1)
    counts[:, split.with_nan] = totals[:, split.m :]
    with np.errstate(invalid="ignore", divide="ignore"):
        return totals[:, : split.m] / counts


def _attribute_name(sensitive: object) -> str:
    name = getattr(sensitive, "name", None)
    return str(name) if name is not None else "sensitive"


def _defined_mean(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean of the defined (non-nan) per-user values; nan when there are none.

    Used as the MetricFrame metric: ``y_pred`` carries the per-user values
    (``y_true`` is the same vector, required by fairlearn's signature).
    """
    values = np.asarray(y_pred, dtype=np.float64)
    defined = values[~np.isnan(values)]
    return float(defined.mean()) if defined.size else float("nan")


def _check_vector(values: object, *, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(
            f"{name}: expected a non-empty 1-D array (one value per user), got shape {arr.shape}"
        )
    return arr


def _check_ci(ci: object) -> float:
    if not isinstance(ci, (float, int, np.floating)) or isinstance(ci, bool) or not 0 < ci < 1:
        raise ValueError(f"ci: expected a confidence level in (0, 1), got {ci!r}")
    return float(ci)


# ------------------------------------------------------------ group quality
@dataclass(frozen=True, kw_only=True, eq=False)
class GroupQuality:
    """Per-group means of per-user metrics for one sensitive attribute.

    Parameters
    ----------
    attribute : str
        Name of the sensitive attribute (the ``name`` of the series given).
    by_group : dict of str to dict of str to float
        ``by_group[metric][group]`` = mean of the metric over the group's users.
    overall : dict of str to float
        Mean over all users, per metric.
    difference, ratio : dict of str to float
        ``max - min`` and ``min / max`` of the group means, per metric
        (fairlearn's ``between_groups`` method; the ratio is nan when the
        largest group mean is 0).
    counts : dict of str to int
        Users per group.
    ci : dict of str to dict of str to (float, float), or None
        Percentile-bootstrap interval of each group mean (``ci[metric][group]``)
        when requested, else None.
    difference_ci, ratio_ci : dict of str to (float, float), or None
        Bootstrap intervals of ``difference`` and ``ratio``.
    ci_level : float or None
        Coverage of the intervals (e.g. 0.95).
    """

    attribute: str
    by_group: dict[str, dict[str, float]]
    overall: dict[str, float]
    difference: dict[str, float]
    ratio: dict[str, float]
    counts: dict[str, int]
    ci: dict[str, dict[str, tuple[float, float]]] | None = None
    difference_ci: dict[str, tuple[float, float]] | None = None
    ratio_ci: dict[str, tuple[float, float]] | None = None
    ci_level: float | None = None

    @property
    def groups(self) -> list[str]:
        return list(self.counts)


def _spread(means: np.ndarray) -> tuple[float, float]:
    """fairlearn's between-groups ``difference`` (max - min) and ``ratio`` (min / max)."""
    if np.isnan(means).all():
        return float("nan"), float("nan")
    lo, hi = float(np.nanmin(means)), float(np.nanmax(means))
    return hi - lo, (lo / hi if hi != 0 else float("nan"))


def group_quality(
    per_user: Mapping[str, np.ndarray],
    sensitive: np.ndarray | pd.Series,
    *,
    n_boot: int | None = None,
    ci: float = 0.95,
    random_state: int | None = 0,
) -> GroupQuality:
    """Mean of each per-user metric per group of users (fairlearn MetricFrame semantics).

    Parameters
    ----------
    per_user : mapping of str to ndarray of float, each shape (n_users,)
        Per-user metric vectors, e.g. :attr:`RelevanceReport.per_user`.
        ``nan`` entries (undefined for that user) are left out of the means.
    sensitive : ndarray or pandas Series, shape (n_users,)
        Group label of each user, aligned with the vectors. A Series' name is
        kept as the attribute name. Missing labels form the group ``"unknown"``.
    n_boot : int, optional
        Number of bootstrap resamples (of users, with replacement, fairlearn's
        ``MetricFrame(n_boot=...)``) for confidence intervals; none by default.
        Costs about ``n_boot * len(per_user)`` MetricFrame evaluations.
    ci : float, default 0.95
        Confidence level; the interval is the ``(1 - ci)/2`` and ``(1 + ci)/2``
        bootstrap quantiles.
    random_state : int or None, default 0
        Seed of the bootstrap.

    Returns
    -------
    GroupQuality

    Examples
    --------
    >>> gq = group_quality(
    ...     {"ndcg": np.array([1.0, 0.5, 0.0, 0.5])},
    ...     pd.Series(["F", "F", "M", None], name="gender"))
    >>> gq.by_group["ndcg"], gq.counts
    ({'F': 0.75, 'M': 0.0, 'unknown': 0.5}, {'F': 2, 'M': 1, 'unknown': 1})
    >>> gq.difference["ndcg"], gq.ratio["ndcg"], gq.overall["ndcg"]
    (0.75, 0.0, 0.5)
    """
    vectors = _check_vectors(per_user)
    attribute = _attribute_name(sensitive)
    groups = _encode_groups(sensitive, name="sensitive", n=next(iter(vectors.values())).size)
    level = _check_boot(n_boot, ci)
    means = _group_means(_split_defined(np.column_stack(list(vectors.values()))), groups)
    return _quality(
        vectors, groups, means, attribute=attribute, overall=_overall(vectors),
        n_boot=n_boot, level=level, random_state=random_state,
    )


def _check_vectors(per_user: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Non-empty per-user vectors of one common length, by str name."""
    if not per_user:
        raise ValueError("per_user: expected at least one per-user metric, got none")
    vectors = {
        str(name): _check_vector(v, name=f"per_user[{name!r}]") for name, v in per_user.items()
    }
    n = next(iter(vectors.values())).size
    for name, v in vectors.items():
        if v.size != n:
            raise ValueError(
                f"per_user[{name!r}]: expected {n} values like the first metric, got {v.size}"
            )
    return vectors


def _check_boot(n_boot: object, ci: object) -> float:
    """Validate the bootstrap arguments; return the confidence level."""
    if n_boot is not None and (
        isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 1
    ):
        raise ValueError(f"n_boot: expected a positive integer or None, got {n_boot!r}")
    return _check_ci(ci)


def _overall(
    vectors: Mapping[str, np.ndarray], with_nan: np.ndarray | None = None
) -> dict[str, float]:
    """Mean of the defined values of every per-user vector (nan when none is defined).

    ``with_nan``, when known (``_Split.with_nan`` of the same vectors in order),
    lists the positions of the vectors holding a nan; the others skip the scan.
    """
    out = {}
    scan = None if with_nan is None else set(with_nan.tolist())
    for j, (name, v) in enumerate(vectors.items()):
        if scan is not None and j not in scan:
            out[name] = float(v.mean())
            continue
        nan = np.isnan(v)
        # without nan, mean is nanmean (same pairwise sum, same division) minus a copy
        out[name] = float(v.mean()) if not nan.any() else (
            float(np.nanmean(v)) if not nan.all() else float("nan")
        )
    return out


def _quality(
    vectors: Mapping[str, np.ndarray],
    groups: _Groups,
    means: np.ndarray,
    *,
    attribute: str,
    overall: dict[str, float],
    n_boot: int | None,
    level: float,
    random_state: int | None,
) -> GroupQuality:
    """GroupQuality from validated vectors, their groups and ``means[:, j]`` of vector ``j``."""
    by_group, difference, ratio = {}, {}, {}
    for column, name in enumerate(vectors):
        by_group[name] = {g: float(v) for g, v in zip(groups.names, means[:, column], strict=True)}
        difference[name], ratio[name] = _spread(means[:, column])
    counts = {g: int(c) for g, c in zip(groups.names, groups.sizes(), strict=True)}
    boot = n_boot is not None
    quantiles = [(1 - level) / 2, (1 + level) / 2]
    labels = pd.Series(groups.labels(), name=attribute) if boot else None
    cis, diff_cis, ratio_cis = {}, {}, {}
    for name, values in vectors.items() if boot else ():
        mf = MetricFrame(
            metrics={name: _defined_mean},
            y_true=values,
            y_pred=values,
            sensitive_features=labels,
            n_boot=int(n_boot),
            ci_quantiles=quantiles,
            random_state=random_state,
        )
        low, high = (frame[name] for frame in mf.by_group_ci)
        cis[name] = {str(g): (float(low[g]), float(high[g])) for g in low.index}
        d_low, d_high = mf.difference_ci()
        r_low, r_high = mf.ratio_ci()
        diff_cis[name] = (float(d_low[name]), float(d_high[name]))
        ratio_cis[name] = (float(r_low[name]), float(r_high[name]))
    return GroupQuality(
        attribute=attribute,
        by_group=by_group,
        overall={name: overall[name] for name in vectors},
        difference=difference,
        ratio=ratio,
        counts=counts,
        ci=cis if boot else None,
        difference_ci=diff_cis if boot else None,
        ratio_ci=ratio_cis if boot else None,
        ci_level=level if boot else None,
    )


def equal_opportunity(recall: np.ndarray, sensitive: np.ndarray | pd.Series) -> tuple[float, float]:
    """Recall parity: ``(max - min, min / max)`` of the group mean recall.

    The recommender analogue of equal opportunity (equal true-positive
    rates): every evaluated user has at least one relevant item, and recall
    is the share of those the top-k finds.

    Examples
    --------
    >>> equal_opportunity(np.array([1.0, 0.5, 0.25, 0.25]), np.array(["a", "a", "b", "b"]))
    (0.5, 0.3333333333333333)
    """
    recall = _check_vector(recall, name="recall")
    groups = _encode_groups(sensitive, name="sensitive", n=recall.size)
    return _spread(_group_means(_split_defined(recall), groups)[:, 0])


# ----------------------------------------------------------- outcome parity
@dataclass(frozen=True, kw_only=True, eq=False)
class OutcomeParity:
    """Demographic parity of a binary per-user outcome.

    Parameters
    ----------
    attribute : str
    rates : dict of str to float
        Share of each group's users with the outcome.
    counts : dict of str to int
        Users per group.
    overall : float
        Share of all users with the outcome.
    demographic_parity_difference, demographic_parity_ratio : float
        Equal to :func:`fairlearn.metrics.demographic_parity_difference` and
        ``demographic_parity_ratio`` (``max - min`` and ``min / max`` of
        ``rates``; the ratio is nan when no user has the outcome).
    four_fifths_violated : bool
        ``demographic_parity_ratio < 0.8`` (False when the ratio is nan).
    """

    attribute: str
    rates: dict[str, float]
    counts: dict[str, int]
    overall: float
    demographic_parity_difference: float
    demographic_parity_ratio: float
    four_fifths_violated: bool

    @property
    def disparate_impact(self) -> float:
        """The outcome-rate ratio ``min / max`` (same as ``demographic_parity_ratio``)."""
        return self.demographic_parity_ratio


def _check_outcome(outcome: object) -> np.ndarray:
    arr = np.asarray(outcome)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(
            f"outcome: expected a non-empty 1-D array (one per user), got shape {arr.shape}"
        )
    binary = np.issubdtype(arr.dtype, np.number) and np.isin(arr, (0, 1)).all()
    if arr.dtype != bool and not binary:
        raise ValueError(f"outcome: expected boolean (or 0/1) values, got dtype {arr.dtype}")
    return arr.astype(np.int64)


def outcome_parity(
    outcome: np.ndarray, sensitive: np.ndarray | pd.Series, *, y_true: np.ndarray | None = None
) -> OutcomeParity:
    """Per-group rates of a binary per-user outcome and fairlearn's demographic parity.

    Parameters
    ----------
    outcome : ndarray of bool (or 0/1), shape (n_users,)
        E.g. :func:`contains_group` ("the top-k holds an item of group G").
    sensitive : ndarray or pandas Series, shape (n_users,)
        Group label per user; missing labels form the group ``"unknown"``.
    y_true : ndarray, optional
        Passed through to fairlearn (demographic parity ignores it beyond its
        length); defaults to ``outcome``.

    Returns
    -------
    OutcomeParity

    Examples
    --------
    >>> op = outcome_parity(np.array([1, 1, 0, 1, 0, 0]), np.array(list("aaabbb")))
    >>> op.rates, op.demographic_parity_difference, op.demographic_parity_ratio
    ({'a': 0.6666666666666666, 'b': 0.3333333333333333}, 0.3333333333333333, 0.5)
    >>> op.four_fifths_violated
    True
    """
    y_pred = _check_outcome(outcome)
    truth = y_pred if y_true is None else np.asarray(y_true)
    if truth.shape != y_pred.shape:
        raise ValueError(f"y_true: expected shape {y_pred.shape} like outcome, got {truth.shape}")
    groups = _encode_groups(sensitive, name="sensitive", n=y_pred.size)
    rates = _group_means(_split_defined(y_pred), groups)[:, 0]
    attribute = _attribute_name(sensitive)
    return _parity(rates, groups, attribute=attribute, overall=float(y_pred.mean()))


def _parity(
    rates: np.ndarray, groups: _Groups, *, attribute: str, overall: float
) -> OutcomeParity:
    """OutcomeParity from the group means of a 0/1 outcome (selection rates, as fairlearn)."""
    dpd, dpr = _spread(rates)
    return OutcomeParity(
        attribute=attribute,
        rates={g: float(r) for g, r in zip(groups.names, rates, strict=True)},
        counts={g: int(c) for g, c in zip(groups.names, groups.sizes(), strict=True)},
        overall=overall,
        demographic_parity_difference=dpd,
        demographic_parity_ratio=dpr,
        four_fifths_violated=bool(dpr < FOUR_FIFTHS),
    )


# ---------------------------------------------------------- outcome builders
def _check_membership(item_in_group: object) -> np.ndarray:
    arr = np.asarray(item_in_group)
    if arr.ndim != 1 or arr.size == 0 or arr.dtype != bool:
        raise ValueError(
            "item_in_group: expected a non-empty 1-D boolean array (one flag per item), "
            f"got dtype {arr.dtype} and shape {arr.shape}"
        )
    return arr


def _member_ranks(
    ids: np.ndarray, item_in_group: np.ndarray
) -> tuple[np.ndarray, np.ndarray | None]:
    member = _check_membership(item_in_group)
    return _member_hits(_check_ids(ids, n_items=member.size), member)


def _padded(ids: np.ndarray) -> bool:
    """Whether checked ``ids`` hold padding: a min, about 2x faster than ``(ids >= 0).all()``."""
    return ids.size > 0 and ids.min() < 0


def _member_hits(ids: np.ndarray, member: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Which entries of checked ``ids`` are group members, and which are not padding.

    The second array is None when nothing is padding (every entry counts).
    """
    if not _padded(ids):
        return member[ids], None
    valid = ids >= 0
    return member[np.where(valid, ids, 0)] & valid, valid


def _row_counts(mask: np.ndarray) -> np.ndarray:
    """True entries per row of a 2-D boolean array (int64).

    ``einsum`` over the bytes: ``count_nonzero(axis=1)`` is about 3x slower
    on short rows.
    """
    return np.einsum("ij->i", mask.view(np.uint8), dtype=np.int64)


def _share(hits: np.ndarray, valid: np.ndarray | None) -> np.ndarray:
    """Share of each row's valid entries that are hits (nan for a row without any).

    ``valid`` None: no padding, every row has ``hits.shape[1]`` valid entries.
    """
    n_valid = np.float64(hits.shape[1]) if valid is None else _row_counts(valid).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return _row_counts(hits) / n_valid


def contains_group(ids: np.ndarray, item_in_group: np.ndarray) -> np.ndarray:
    """Whether each list holds at least one item of the group (padding ignored).

    Examples
    --------
    >>> contains_group(np.array([[0, 1], [1, -1], [-1, -1]]), np.array([True, False])).tolist()
    [True, False, False]
    """
    hits, _ = _member_ranks(ids, item_in_group)
    return _row_counts(hits) > 0


def share_of_group(ids: np.ndarray, item_in_group: np.ndarray) -> np.ndarray:
    """Share of each list's non-padding items that belong to the group.

    Returns nan for a list that holds only padding.

    Examples
    --------
    >>> share_of_group(np.array([[0, 1], [0, -1], [-1, -1]]), np.array([True, False])).tolist()
    [0.5, 1.0, nan]
    """
    return _share(*_member_ranks(ids, item_in_group))
