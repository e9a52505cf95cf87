"""Evidence about a disparity: estimate, seeded interval, group sizes, a test and its p-value.

The gate needs more than a point estimate: a ratio of 0.61 between two groups of
two and three users is noise, not evidence. Each function here returns the
estimate together with what a reader needs to judge it.

* :func:`group_disparity` compares groups of users on a per-user quantity:
  the worst judged group's mean relative to the best judged group's (the
  four-fifths rule's ratio). Groups below ``min_size`` are not judged; they are
  reported with their sizes. Means are tested by a permutation test of the
  min/max ratio over all judged groups (exact under "no group differs", and it
  accounts for picking the extreme pair from the data); 0/1 outcomes by
  Fisher's exact test of the worst against the best group, Bonferroni-adjusted
  for the number of group pairs (the practice for the four-fifths rule:
  a practical threshold *and* statistical significance). The interval is a
  percentile bootstrap of the observed worst group against the observed best,
  resampling users within each group.
* :func:`relative_drop` is a paired comparison of two per-user vectors (a
  mitigated model against its twin on the same users).
* :func:`share_evidence` is a ratio of sums over users (an item group's share
  of rank-weighted exposure) against a floor.

Hand-written: fairlearn's ``MetricFrame`` bootstraps per-group metrics but has no
hypothesis test, and scipy has the tests (``fisher_exact``) but not the
resampling around a ratio of group means; the permutation and bootstrap loops are
vectorised over users with ``np.bincount``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from scipy import stats

__all__ = ["Disparity", "ShareEvidence", "DropEvidence", "group_disparity", "relative_drop", "share_evidence"]

UNDEFINED_REASONS = {
    1: "the best-served judged group's value is 0, so the ratio is 0/0",
    2: "fewer than two groups are large enough to judge",
}
_CHUNK = 4_000_000  # resampled entries per vectorised block (bounds memory at ~32 MB per array)
_EXACT_LIMIT = 10_000_000  # users x resamples above which resampling uses its normal limit


@dataclass(frozen=True, kw_only=True)
class Disparity:
    """How much worse the worst judged group fares than the best, with its evidence.

    ``ratio`` is the worst judged group's value over the best's (NaN when
    undefined: ``undefined`` holds the code of :data:`UNDEFINED_REASONS`).
    ``relative`` is every group's value over the best judged group's, small groups
    included, so a reader (or the gate) can see a small group that would fail.
    """

    attribute: str
    kind: Literal["mean", "rate"]
    values: Mapping[str, float]
    sizes: Mapping[str, int]
    relative: Mapping[str, float]
    judged: tuple[str, ...]
    worst: str | None
    best: str | None
    ratio: float
    ci: tuple[float, float]
    p_value: float
    test: str
    undefined: int = 0
    n_resamples: int = 0

    def flat(self, prefix: str, label: object = str) -> dict[str, float]:
        """MLflow metrics: ``prefix.ratio``, ``.ci_low``, ``.ci_high``, ``.p_value``, ``.n.G``, ``.relative.G``."""
        out: dict[str, float] = {f"{prefix}.n_groups_judged": float(len(self.judged))}
        if self.undefined:
            out[f"{prefix}.undefined"] = float(self.undefined)
        else:
            out.update({f"{prefix}.ratio": self.ratio, f"{prefix}.ci_low": self.ci[0],
                        f"{prefix}.ci_high": self.ci[1], f"{prefix}.p_value": self.p_value})
        for g, n in self.sizes.items():
            out[f"{prefix}.n.{label(g)}"] = float(n)
            if math.isfinite(self.relative.get(g, math.nan)):
                out[f"{prefix}.relative.{label(g)}"] = self.relative[g]
        return out


@dataclass(frozen=True, kw_only=True)
class DropEvidence:
    """Relative drop of a sum from ``before`` to ``after`` over the same users, with a one-sided test."""

    drop: float
    ci: tuple[float, float]
    p_value: float  # H0: drop <= tolerance
    tolerance: float
    n: int


@dataclass(frozen=True, kw_only=True)
class ShareEvidence:
    """A ratio of sums over users (e.g. an item group's exposure share) against a floor."""

    share: float
    ci: tuple[float, float]
    p_value: float  # H0: share >= floor
    floor: float
    n: int
    extra: Mapping[str, float] = field(default_factory=dict)


def _check(values: np.ndarray, labels: np.ndarray) -> None:
    if values.ndim != 1 or labels.shape != values.shape:
        raise ValueError(
            f"values and groups: expected two 1-D arrays of the same length, got shapes "
            f"{values.shape} and {labels.shape}"
        )
    if not np.all(np.isfinite(values)):
        raise ValueError("values: expected finite numbers (an undefined per-user value must be dropped first)")


def _exact(n: int, n_resamples: int) -> bool:
    return n * n_resamples <= _EXACT_LIMIT


def _bootstrap_group_means(values: np.ndarray, codes: np.ndarray, n_groups: int, n_resamples: int,
                           rng: np.random.Generator) -> np.ndarray:
    """``[n_resamples, n_groups]`` means of a with-replacement resample of every group (sizes kept).

    Above :data:`_EXACT_LIMIT` resampled entries the means are drawn from their normal limit
    (mean, variance / n per group), which the central limit theorem makes indistinguishable
    from resampling at that many users, at a fraction of the time.
    """
    sizes = np.bincount(codes, minlength=n_groups)
    n = values.size
    if not _exact(n, n_resamples):
        means = np.bincount(codes, weights=values, minlength=n_groups) / sizes
        var = np.bincount(codes, weights=(values - means[codes]) ** 2, minlength=n_groups) / sizes
        return means + rng.standard_normal((n_resamples, n_groups)) * np.sqrt(var / sizes)
    order = np.argsort(codes, kind="stable")
    sorted_values, sorted_codes = values[order], codes[order]
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    out = np.empty((n_resamples, n_groups))
    step = max(1, _CHUNK // max(n, 1))
    for lo in range(0, n_resamples, step):
        b = min(step, n_resamples - lo)
        draw = starts[sorted_codes] + rng.integers(0, sizes[sorted_codes], size=(b, n))
        rows = np.repeat(np.arange(b) * n_groups, n) + np.tile(sorted_codes, b)
        sums = np.bincount(rows, weights=sorted_values[draw].ravel(), minlength=b * n_groups)
        out[lo:lo + b] = sums.reshape(b, n_groups)
    return out / sizes


def _bootstrap_pair_sums(x: np.ndarray, y: np.ndarray, n_resamples: int,
                         rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Sums of ``x`` and ``y`` over the same with-replacement resamples of users (paired)."""
    n = x.size
    if not _exact(n, n_resamples):  # the normal limit, with the pair's covariance
        cov = np.cov(np.vstack([x, y])) * n
        draws = rng.multivariate_normal([x.sum(), y.sum()], cov, size=n_resamples)
        return draws[:, 0], draws[:, 1]
    sx, sy = np.empty(n_resamples), np.empty(n_resamples)
    step = max(1, _CHUNK // max(n, 1))
    for lo in range(0, n_resamples, step):
        b = min(step, n_resamples - lo)
        draw = rng.integers(0, n, size=(b, n))
        sx[lo:lo + b], sy[lo:lo + b] = x[draw].sum(axis=1), y[draw].sum(axis=1)
    return sx, sy


def _min_max_ratio(means: np.ndarray) -> np.ndarray:
    top = means.max(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(top > 0, means.min(axis=-1) / np.where(top > 0, top, 1.0), np.nan)


def _percentile_ci(samples: np.ndarray, level: float) -> tuple[float, float]:
    finite = samples[np.isfinite(samples)]
    if finite.size == 0:
        return (math.nan, math.nan)
    lo, hi = np.quantile(finite, [(1 - level) / 2, 1 - (1 - level) / 2])
    return (float(lo), float(hi))


def group_disparity(
    values: np.ndarray,
    groups: np.ndarray,
    *,
    attribute: str,
    kind: Literal["mean", "rate"],
    min_size: int = 30,
    n_resamples: int = 1000,
    level: float = 0.95,
    random_state: int | None = 0,
) -> Disparity:
    """The worst judged group's mean (or rate) relative to the best judged group's, with its evidence.

    Parameters
    ----------
    values : ndarray of float
        One value per user (a per-user metric, or 0/1 for ``kind="rate"``).
    groups : ndarray
        The user's group label, aligned with ``values``.
    kind : {"mean", "rate"}
        ``"mean"``: permutation test; ``"rate"``: Fisher's exact test.
    min_size : int
        Groups with fewer users are reported but not judged.

    Examples
    --------
    Two groups of 40: A hits 20 of 40, B 36 of 40; A's rate is 0.5 / 0.9 = 0.556 of B's,
    and Fisher's exact test finds that very unlikely under equal rates:

    >>> y = np.r_[np.ones(20), np.zeros(20), np.ones(36), np.zeros(4)]
    >>> g = np.array(["A"] * 40 + ["B"] * 40)
    >>> d = group_disparity(y, g, attribute="x", kind="rate", n_resamples=200)
    >>> d.worst, d.best, round(d.ratio, 3), d.p_value < 0.001, d.sizes
    ('A', 'B', 0.556, True, {'A': 40, 'B': 40})
    """
    values = np.asarray(values, dtype=np.float64)
    labels = np.asarray(groups).astype(str)
    _check(values, labels)
    if kind == "rate" and not np.all((values == 0) | (values == 1)):
        raise ValueError("values: kind='rate' expects 0/1 outcomes")
    if not isinstance(min_size, int) or min_size < 1:
        raise ValueError(f"min_size: expected a positive integer, got {min_size!r}")
    names, codes = np.unique(labels, return_inverse=True)
    sizes = np.bincount(codes, minlength=names.size)
    sums = np.bincount(codes, weights=values, minlength=names.size)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums / sizes
    judged = sizes >= min_size
    size_map = {str(g): int(n) for g, n in zip(names, sizes)}
    value_map = {str(g): float(m) for g, m in zip(names, means)}
    common = dict(attribute=attribute, kind=kind, values=value_map, sizes=size_map,
                  judged=tuple(str(g) for g in names[judged]), n_resamples=n_resamples)
    nan_pair = (math.nan, math.nan)
    if judged.sum() < 2:
        return Disparity(**common, relative={}, worst=None, best=None, ratio=math.nan, ci=nan_pair,
                         p_value=math.nan, test="none", undefined=2)
    jm = np.where(judged, means, -np.inf)
    best = int(np.argmax(jm))
    worst = int(np.argmin(np.where(judged, means, np.inf)))
    if means[best] <= 0:
        return Disparity(**common, relative={}, worst=None, best=str(names[best]), ratio=math.nan,
                         ci=nan_pair, p_value=math.nan, test="none", undefined=1)
    relative = {str(g): float(m / means[best]) for g, m in zip(names, means)}
    ratio = float(means[worst] / means[best])
    rng = np.random.default_rng(random_state)
    keep = judged[codes]
    jv, jc = values[keep], np.searchsorted(np.flatnonzero(judged), codes[keep])
    n_judged = int(judged.sum())
    boot = _bootstrap_group_means(jv, jc, n_judged, n_resamples, rng)
    # The interval is of the observed worst group against the observed best group: re-picking
    # the extremes in every resample would bias it below the estimate when groups are alike
    # (the test below is the one that accounts for picking them).
    jw, jb = (int(np.searchsorted(np.flatnonzero(judged), i)) for i in (worst, best))
    with np.errstate(invalid="ignore", divide="ignore"):
        ci = _percentile_ci(np.where(boot[:, jb] > 0, boot[:, jw] / boot[:, jb], np.nan), level)
    if kind == "rate":
        table = [[sums[worst], sizes[worst] - sums[worst]], [sums[best], sizes[best] - sums[best]]]
        p = float(stats.fisher_exact(np.asarray(table, dtype=np.int64)).pvalue)
        pairs = n_judged * (n_judged - 1) // 2
        p_value, test = min(1.0, p * pairs), f"Fisher's exact test, worst vs best group, x{pairs} pairs (Bonferroni)"
    else:
        p_value, test = _permutation_p(jv, jc, n_judged, ratio, n_resamples, rng), (
            f"permutation test of the min/max ratio of group means ({n_resamples} permutations)")
    return Disparity(**common, relative=relative, worst=str(names[worst]), best=str(names[best]),
                     ratio=ratio, ci=ci, p_value=p_value, test=test)


def _permutation_p(values: np.ndarray, codes: np.ndarray, n_groups: int, observed: float,
                   n_resamples: int, rng: np.random.Generator) -> float:
    """One-sided p-value of a min/max ratio at least as extreme (as small) as ``observed``.

    Above :data:`_EXACT_LIMIT` the permuted group means are drawn from their normal limit
    (the overall mean, with the variance of a mean of n_g draws without replacement).
    """
    sizes = np.bincount(codes, minlength=n_groups)
    n = values.size
    extreme = 0
    if not _exact(n, n_resamples):
        mean, var = values.mean(), values.var()
        sd = np.sqrt(var / sizes * (n - sizes) / max(n - 1, 1))
        r = _min_max_ratio(mean + rng.standard_normal((n_resamples, n_groups)) * sd)
        extreme = int(np.sum(~(r > observed + 1e-12)))
        return (1 + extreme) / (1 + n_resamples)
    step = max(1, _CHUNK // max(n, 1))
    for lo in range(0, n_resamples, step):
        b = min(step, n_resamples - lo)
        shuffled = rng.permuted(np.broadcast_to(codes, (b, n)), axis=1)
        rows = np.repeat(np.arange(b) * n_groups, n) + shuffled.ravel()
        sums = np.bincount(rows, weights=np.tile(values, b), minlength=b * n_groups).reshape(b, n_groups)
        r = _min_max_ratio(sums / sizes)
        extreme += int(np.sum(~(r > observed + 1e-12)))  # NaN (all zero) counts as extreme: conservative
    return (1 + extreme) / (1 + n_resamples)


def _ratio_draws(num: np.ndarray, den: np.ndarray, names: str, n_resamples: int,
                 random_state: int | None) -> tuple[float, np.ndarray] | None:
    """``sum(num) / sum(den)`` and its paired bootstrap draws; None when undefined (no users, den <= 0)."""
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    if num.shape != den.shape or num.ndim != 1:
        raise ValueError(f"{names}: expected 1-D arrays of one shape, got {num.shape} and {den.shape}")
    total = den.sum()
    if num.size == 0 or total <= 0:
        return None
    n_sum, d_sum = _bootstrap_pair_sums(num, den, n_resamples, np.random.default_rng(random_state))
    with np.errstate(invalid="ignore", divide="ignore"):
        draws = np.where(d_sum > 0, n_sum / np.where(d_sum > 0, d_sum, 1.0), np.nan)
    return float(num.sum() / total), draws[np.isfinite(draws)]


def relative_drop(
    before: np.ndarray,
    after: np.ndarray,
    *,
    tolerance: float,
    n_resamples: int = 1000,
    level: float = 0.95,
    random_state: int | None = 0,
) -> DropEvidence:
    """``(sum(before) - sum(after)) / sum(before)`` over paired users, tested against ``tolerance``.

    The p-value is the bootstrap probability of a drop at most ``tolerance``
    (H0: the drop is within tolerance), resampling users in pairs.

    Examples
    --------
    >>> before, after = np.array([1.0, 1.0, 1.0, 1.0]), np.array([0.5, 1.0, 1.0, 1.0])
    >>> e = relative_drop(before, after, tolerance=0.02, n_resamples=100)
    >>> e.drop, e.n
    (0.125, 4)
    """
    ratio = _ratio_draws(after, before, "before and after", n_resamples, random_state)
    n = int(np.size(before))
    if ratio is None:
        return DropEvidence(drop=math.nan, ci=(math.nan, math.nan), p_value=math.nan, tolerance=tolerance, n=n)
    kept, draws = ratio
    drops = 1.0 - draws
    p = (1 + int(np.sum(drops <= tolerance))) / (1 + drops.size)
    return DropEvidence(drop=1.0 - kept, ci=_percentile_ci(drops, level), p_value=float(p),
                        tolerance=float(tolerance), n=n)


def share_evidence(
    part: np.ndarray,
    whole: np.ndarray,
    *,
    floor: float,
    n_resamples: int = 1000,
    level: float = 0.95,
    random_state: int | None = 0,
) -> ShareEvidence:
    """``sum(part) / sum(whole)`` over users, with a bootstrap interval and a test of H0: share >= floor.

    Examples
    --------
    >>> e = share_evidence(np.array([0.0, 1.0, 1.0, 0.0]), np.array([2.0, 2.0, 2.0, 2.0]),
    ...                    floor=0.1, n_resamples=100)
    >>> e.share, e.n
    (0.25, 4)
    """
    ratio = _ratio_draws(part, whole, "part and whole", n_resamples, random_state)
    n = int(np.size(part))
    if ratio is None:
        return ShareEvidence(share=math.nan, ci=(math.nan, math.nan), p_value=math.nan, floor=floor, n=n)
    share, draws = ratio
    p = (1 + int(np.sum(draws >= floor))) / (1 + draws.size)
    return ShareEvidence(share=share, ci=_percentile_ci(draws, level), p_value=float(p), floor=float(floor), n=n)
