"""Drift statistics for served lists: stability index, mix test, ratio and proportion intervals.

A served-list monitor compares a window of what was served with the offline
evaluation of the same model. The quantities it compares are of two kinds:

* a **mix** (shares over categories, e.g. the genres of the items a user group
  was shown): :func:`population_stability_index` measures how far it moved,
  :func:`mix_test` (scipy's chi-square test of homogeneity) whether the move
  is more than sampling noise;
* a **ratio of sums over lists** (e.g. the protected group's share of the
  rank-weighted exposure): :class:`RatioMoments` keeps the five sums a
  streaming reader needs and gives a delta-method interval;
  :func:`ratio_difference` the interval of the difference between two of them.

:func:`proportion_interval` is scipy's Wilson interval for a rate (e.g. an
opt-out rate or a click-through rate).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

__all__ = [
    "DriftInterval",
    "RatioMoments",
    "mix_test",
    "population_stability_index",
    "proportion_interval",
    "ratio_difference",
]


def _check_confidence(confidence: object) -> float:
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) or not 0 < confidence < 1:
        raise ValueError(f"confidence: expected a number strictly between 0 and 1, got {confidence!r}")
    return float(confidence)


def _check_counts(values: object, *, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1 or arr.size == 0 or not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise ValueError(
            f"{name}: expected a non-empty 1-D array of finite non-negative numbers, got {values!r}"
        )
    return arr


def population_stability_index(expected: np.ndarray, observed: np.ndarray, *, floor: float = 1e-4) -> float:
    """Population stability index of ``observed`` against ``expected`` (counts or shares).

    ``PSI = sum_c (o_c - e_c) * ln(o_c / e_c)`` over the shares ``o`` and ``e``
    (each input divided by its sum), with shares below ``floor`` raised to it so
    that an empty category gives a large but finite term. Written by hand:
    scipy has no PSI (it is a symmetrised Kullback-Leibler divergence). Common
    reading: below 0.1 stable, 0.1-0.25 a moderate shift, above 0.25 a large one.

    Examples
    --------
    >>> population_stability_index([50, 50], [50, 50])
    0.0
    >>> round(population_stability_index([0.5, 0.5], [0.8, 0.2]), 4)
    0.4159
    """
    e = _check_counts(expected, name="expected")
    o = _check_counts(observed, name="observed")
    if e.size != o.size:
        raise ValueError(f"observed: expected {e.size} categories like expected, got {o.size}")
    if e.sum() == 0 or o.sum() == 0:
        raise ValueError("expected, observed: each needs a positive total to form shares")
    if not 0 < floor < 1:
        raise ValueError(f"floor: expected a number in (0, 1), got {floor!r}")
    e, o = np.maximum(e / e.sum(), floor), np.maximum(o / o.sum(), floor)
    return float(np.sum((o - e) * np.log(o / e)))


def mix_test(
    reference: np.ndarray, observed: np.ndarray, *, n_reference: float, n_observed: float
) -> tuple[float, float]:
    """Chi-square test that two category mixes are the same (``scipy.stats.chi2_contingency``).

    Items within one list are not independent draws, so the counts are scaled
    down to ``n_reference`` and ``n_observed`` effective observations (the
    number of lists: a design effect of at most the list length), which makes
    the test conservative rather than over-confident. Categories empty in both
    samples are dropped.

    Parameters
    ----------
    reference, observed : ndarray, shape (n_categories,)
        Item counts per category in the two samples.
    n_reference, n_observed : float
        Effective sample sizes (lists).

    Returns
    -------
    (statistic, p_value); ``(0.0, 1.0)`` when fewer than two categories are used.

    Examples
    --------
    >>> stat, p = mix_test([50, 50], [50, 50], n_reference=10, n_observed=10)
    >>> stat, p
    (0.0, 1.0)
    >>> stat, p = mix_test([500, 500], [900, 100], n_reference=100, n_observed=100)
    >>> round(stat, 2), p < 1e-6
    (38.1, True)
    """
    ref = _check_counts(reference, name="reference")
    obs = _check_counts(observed, name="observed")
    if ref.size != obs.size:
        raise ValueError(f"observed: expected {ref.size} categories like reference, got {obs.size}")
    for name, n in (("n_reference", n_reference), ("n_observed", n_observed)):
        if not np.isfinite(n) or n <= 0:
            raise ValueError(f"{name}: expected a positive number of lists, got {n!r}")
    if ref.sum() == 0 or obs.sum() == 0:
        raise ValueError("reference, observed: each needs a positive total")
    used = (ref + obs) > 0
    if used.sum() < 2:
        return 0.0, 1.0
    table = np.vstack([ref[used] / ref.sum() * n_reference, obs[used] / obs.sum() * n_observed])
    result = stats.chi2_contingency(table, correction=False)
    return float(result.statistic), float(result.pvalue)


@dataclass(frozen=True, kw_only=True)
class DriftInterval:
    """An estimate with its two-sided interval at ``confidence``."""

    estimate: float
    low: float
    high: float
    confidence: float

    def outside(self, tolerance: float) -> bool:
        """True when the whole interval lies beyond ``[-tolerance, tolerance]``."""
        return bool(self.low > tolerance or self.high < -tolerance)


@dataclass(frozen=True, kw_only=True)
class RatioMoments:
    """Sums over lists of ``a``, ``b``, ``a**2``, ``b**2``, ``a*b``: enough for ``sum(a) / sum(b)``.

    Moments add (:meth:`__add__`), so a reader can accumulate them chunk by chunk.

    Examples
    --------
    >>> m = RatioMoments.of([1.0, 0.0, 1.0, 0.0], [1.0, 1.0, 1.0, 1.0])
    >>> m.ratio, round(m.variance(), 6)   # s_aa = 1/3, s_bb = s_ab = 0: (1/3) / 4
    (0.5, 0.083333)
    >>> iv = m.interval(0.95)
    >>> round(iv.low, 4), round(iv.high, 4)
    (-0.0658, 1.0658)
    """

    n: float
    a: float
    b: float
    aa: float
    bb: float
    ab: float

    @classmethod
    def of(cls, a: np.ndarray, b: np.ndarray) -> RatioMoments:
        a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
        if a.shape != b.shape or a.ndim != 1:
            raise ValueError(f"a, b: expected two 1-D arrays of one shape, got {a.shape} and {b.shape}")
        return cls(n=float(a.size), a=float(a.sum()), b=float(b.sum()), aa=float(a @ a),
                   bb=float(b @ b), ab=float(a @ b))

    @classmethod
    def from_array(cls, values: np.ndarray) -> RatioMoments:
        """From ``[n, a, b, aa, bb, ab]`` (the order :meth:`as_array` writes)."""
        n, a, b, aa, bb, ab = (float(v) for v in values)
        return cls(n=n, a=a, b=b, aa=aa, bb=bb, ab=ab)

    def as_array(self) -> np.ndarray:
        return np.array([self.n, self.a, self.b, self.aa, self.bb, self.ab])

    def __add__(self, other: RatioMoments) -> RatioMoments:
        return RatioMoments.from_array(self.as_array() + other.as_array())

    @property
    def ratio(self) -> float:
        return self.a / self.b if self.b > 0 else float("nan")

    def variance(self) -> float:
        """Delta-method variance of the ratio estimator ``sum(a) / sum(b)``.

        ``Var(R) ~ (s_aa - 2 R s_ab + R**2 s_bb) / (n * mean(b)**2)`` with the
        sample (co)variances ``s``. Written by hand: neither scipy nor
        statsmodels offers the ratio estimator over streamed sums.
        """
        n = self.n
        if n < 2 or self.b <= 0:
            return float("nan")
        r, mean_a, mean_b = self.ratio, self.a / n, self.b / n
        s_aa = (self.aa - n * mean_a**2) / (n - 1)
        s_bb = (self.bb - n * mean_b**2) / (n - 1)
        s_ab = (self.ab - n * mean_a * mean_b) / (n - 1)
        return max(s_aa - 2 * r * s_ab + r**2 * s_bb, 0.0) / (n * mean_b**2)

    def interval(self, confidence: float = 0.95) -> DriftInterval:
        """Normal-approximation interval of the ratio."""
        confidence = _check_confidence(confidence)
        z = float(stats.norm.ppf(0.5 + confidence / 2))
        half = z * float(np.sqrt(self.variance()))
        r = self.ratio
        return DriftInterval(estimate=r, low=r - half, high=r + half, confidence=confidence)


def ratio_difference(observed: RatioMoments, reference: RatioMoments, *, confidence: float = 0.95) -> DriftInterval:
    """Interval of ``observed.ratio - reference.ratio`` (independent samples, variances add).

    Examples
    --------
    >>> ref = RatioMoments.of([1.0, 0.0] * 50, [1.0] * 100)
    >>> iv = ratio_difference(RatioMoments.of([0.0] * 100, [1.0] * 100), ref)
    >>> round(iv.estimate, 2), iv.outside(0.3)
    (-0.5, True)
    """
    confidence = _check_confidence(confidence)
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    diff = observed.ratio - reference.ratio
    half = z * float(np.sqrt(observed.variance() + reference.variance()))
    return DriftInterval(estimate=diff, low=diff - half, high=diff + half, confidence=confidence)


def proportion_interval(successes: int, n: int, *, confidence: float = 0.95) -> DriftInterval:
    """A rate with its Wilson score interval (``scipy.stats.binomtest``); nan when ``n`` is 0.

    Examples
    --------
    >>> iv = proportion_interval(3, 10)
    >>> iv.estimate, round(iv.low, 4), round(iv.high, 4)
    (0.3, 0.1078, 0.6032)
    """
    confidence = _check_confidence(confidence)
    if isinstance(n, bool) or int(n) != n or n < 0 or int(successes) != successes or not 0 <= successes <= n:
        raise ValueError(f"successes, n: expected integers with 0 <= successes <= n, got {successes!r}, {n!r}")
    if n == 0:
        nan = float("nan")
        return DriftInterval(estimate=nan, low=nan, high=nan, confidence=confidence)
    ci = stats.binomtest(int(successes), int(n)).proportion_ci(confidence_level=confidence, method="wilson")
    return DriftInterval(estimate=successes / n, low=float(ci.low), high=float(ci.high), confidence=confidence)
