"""Protected-attribute reliance of explanations, and proxies of a sensitive attribute.

:func:`protected_reliance` is the share of the absolute SHAP mass that sits on
sensitive features and their proxies. Proxies are found in the data, one
feature at a time: :func:`detect_proxies` for the two-stage ranker's pair
features, :func:`detect_item_proxies` for history items (the features of
history explanations). A feature is a proxy when it tells some group from the
rest both strongly (a univariate ROC AUC of at least ``threshold``, the effect
size) and beyond chance (a two-sided Mann-Whitney U test, Bonferroni-corrected
at level ``alpha``). The test is there for small samples: among 8 users, or
for an item only 3 users hold, many features reach any AUC threshold by chance,
and each such false proxy inflates the reliance.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from numbers import Real

import numpy as np
import scipy.sparse as sp
from scipy.stats import hypergeom, norm, rankdata

__all__ = ["detect_item_proxies", "detect_proxies", "protected_reliance"]

#: Cochran's rule: U's normal approximation on a 0/1 column is used when every
#: expected count of the group x holds-the-item table is at least this; below
#: it, the exact (hypergeometric) distribution of U.
_MIN_EXPECTED_COUNT = 5.0


def protected_reliance(
    shap_values: np.ndarray,
    feature_names: Sequence[str],
    sensitive_features: Collection[str],
    proxy_features: Collection[str] = (),
) -> float:
    """Share of the absolute SHAP mass on sensitive features and their proxies.

    ``sum |phi[:, protected]| / sum |phi|`` pooled over all rows, in ``[0, 1]``;
    0 when every attribution is 0. Names must match ``feature_names`` exactly
    (for a :class:`TwoStageRanker` the one-hot sensitive features are named
    ``sensitive=<group>``).

    Examples
    --------
    >>> protected_reliance(np.array([[0.3, -0.1], [0.3, 0.3]]), ["gender", "pop"], {"gender"})
    0.6
    """
    values = np.abs(np.asarray(shap_values, dtype=np.float64))
    if values.ndim == 1:
        values = values[None, :]
    names = [str(n) for n in feature_names]
    if values.ndim != 2 or values.shape[1] != len(names):
        raise ValueError(
            f"shap_values: expected shape (n, {len(names)}) (one column per feature name), "
            f"got {np.shape(shap_values)}"
        )
    protected = np.isin(names, [str(n) for n in set(sensitive_features) | set(proxy_features)])
    total = values.sum()
    if total == 0:
        return 0.0
    return float(values[:, protected].sum() / total)


def detect_proxies(
    X_features: np.ndarray,
    sensitive_labels: np.ndarray,
    feature_names: Sequence[str],
    threshold: float = 0.6,
    *,
    alpha: float | None = 0.01,
) -> set[str]:
    """Features that on their own predict the sensitive attribute (univariate AUC and U test).

    For each feature and each group ``g``, the ROC AUC of the feature as a score
    for "the row belongs to ``g``", taken direction-free as ``max(AUC, 1 - AUC)``
    (in ``[0.5, 1]``). A feature is a proxy when for some group this reaches
    ``threshold`` and the two-sided Mann-Whitney U test of that group against
    the rest (U is the AUC times ``n_g * n_rest``) rejects "no difference" at
    the Bonferroni level ``alpha / m``, ``m`` the number of distinct
    (feature, group) tests: ``n_features`` with two groups (``F`` vs rest is
    ``M`` vs rest), ``n_features * n_groups`` otherwise. The p-values are U's
    normal approximation with the tie and continuity corrections, those of
    ``scipy.stats.mannwhitneyu(method="asymptotic")``.

    AUC is used rather than mutual information because it is scale-free, needs
    no binning and its threshold reads the same for every feature. It only sees
    monotone, one-feature relations: combinations of features that jointly
    reveal the attribute are not detected. The sensitive features themselves
    are returned too when they are among the columns.

    Bonferroni bounds the chance of reporting any false proxy, and the expected
    number of false proxies, by ``alpha`` whatever the dependence between the
    tests (items and features are correlated; the group-vs-rest tests share
    rows). It is conservative, and that is the side to err on here: a false
    proxy inflates the reliance of every model and can block one at the gate.
    What it costs is power on small samples, and only there: a real effect's
    p-value falls exponentially with the sample (an AUC of 0.6 over 200 against
    200 rows has p ~ 5e-4, over 1000 against 1000 p ~ 1e-14) while the level
    falls only as ``1 / m``. The family is one call, i.e. one attribute.

    Parameters
    ----------
    X_features : ndarray of shape (n_rows, n_features)
        One row per sample (for the two-stage ranker, per candidate pair).
    sensitive_labels : ndarray of shape (n_rows,)
        The group of each row; at least two groups.
    feature_names : sequence of str
        One name per column.
    threshold : float, default=0.6
        Least direction-free AUC, in ``[0.5, 1]``.
    alpha : float or None, default=0.01
        Family-wise error rate of the tests, in ``(0, 1)``. ``None`` drops the
        test: effect size only.

    Returns
    -------
    set of str
        The names of the proxy features.

    Examples
    --------
    Four rows separate perfectly on ``a``, but four rows cannot show that this
    is more than chance:

    >>> X = np.array([[1.0, 0.3], [0.9, 0.1], [0.1, 0.2], [0.0, 0.4]])
    >>> sorted(detect_proxies(X, np.array(["F", "F", "M", "M"]), ["a", "b"], 0.9, alpha=None))
    ['a']
    >>> detect_proxies(X, np.array(["F", "F", "M", "M"]), ["a", "b"], 0.9)
    set()
    """
    X = np.asarray(X_features, dtype=np.float64)
    labels = np.asarray(sensitive_labels)
    names = [str(n) for n in feature_names]
    if X.ndim != 2 or X.shape[1] != len(names):
        raise ValueError(
            f"X_features: expected shape (n, {len(names)}) (one column per feature name), "
            f"got {X.shape}"
        )
    if labels.shape != (X.shape[0],):
        raise ValueError(
            f"sensitive_labels: expected one label per row (shape ({X.shape[0]},)), "
            f"got {labels.shape}"
        )
    _check_threshold_and_alpha(threshold, alpha)
    groups = np.unique(labels)
    if groups.size < 2:
        raise ValueError(f"sensitive_labels: expected at least two groups, got {groups.tolist()}")
    # rank-sum (Mann-Whitney) form of the AUC, all columns at once; ties get
    # average ranks, as in sklearn's roc_auc_score. The U test is written out
    # rather than calling scipy.stats.mannwhitneyu per group because the ranks
    # and ties are then computed once for all groups (mannwhitneyu re-ranks
    # the whole matrix on each call); tests check it against mannwhitneyu.
    ranks = rankdata(X, axis=0)
    if alpha is not None:
        ties = _tie_term(X)
        level = _bonferroni_level(alpha, X.shape[1], groups.size)
    found = np.zeros(X.shape[1], dtype=bool)
    for g in groups:
        positive = labels == g
        n_pos, n_neg = int(positive.sum()), int((~positive).sum())
        u = ranks[positive].sum(axis=0) - n_pos * (n_pos + 1) / 2
        auc = u / (n_pos * n_neg)
        hit = np.maximum(auc, 1.0 - auc) >= threshold
        if alpha is not None:
            hit &= _u_test_p_values(u, n_pos, n_neg, ties) <= level
        found |= hit
    return {name for name, is_proxy in zip(names, found, strict=True) if is_proxy}


def detect_item_proxies(
    user_items: sp.spmatrix,
    sensitive_labels: np.ndarray,
    threshold: float = 0.6,
    *,
    alpha: float | None = 0.01,
) -> np.ndarray:
    """Items whose presence in a history on its own predicts the sensitive attribute.

    The same criterion as :func:`detect_proxies`, applied to the binary
    "user has item ``j``" columns of ``user_items`` (users x items). For a 0/1
    column with ties ranked on average the AUC is ``0.5 + (p_g - p_rest) / 2``
    (``p`` the share of each side's users who have the item), so the effect
    size asks that the rates differ by at least ``2 * threshold - 1`` between a
    group and the rest. U is then a linear function of ``a``, the number of
    the group's users holding the item, and its test needs only the counts:

    * when every expected count of the 2x2 table (group or rest, holds the item
      or not) is at least 5 (Cochran's rule), U's normal approximation, which
      here is the pooled two-proportion z-test times ``sqrt((n - 1) / n)``,
      with scipy's continuity correction: the p-value of
      ``scipy.stats.mannwhitneyu(method="asymptotic")`` on the dense column;
    * otherwise (items few users hold, small groups) U's exact distribution:
      given the item's ``k`` holders, ``a`` is hypergeometric under "no
      difference" (Fisher's exact test), two-sided by doubling the smaller
      tail like the normal branch's ``2 * sf(|z|)``. scipy's hypergeometric
      tails are vectorised; ``fisher_exact`` takes one table per call, and its
      two-sided p-value sums the tables no more probable than the observed
      one, another convention.

    Bonferroni over ``n_items`` tests with two groups and ``n_items *
    n_groups`` otherwise; see :func:`detect_proxies` for why. Written out
    because ``detect_proxies`` ranks a dense matrix and a users x items matrix
    is too large for that: the counts need one sparse product, the AUCs and
    z-values a few groups x items arrays, and p-values are computed only for
    the (item, group) pairs that pass ``threshold``. On MovieLens 100K (943
    users, 1682 items, 21 occupations) a call takes about 6 ms; with 27,000
    items, 21 groups and every pair tested (``threshold=0.5``), about 2 s.

    Parameters
    ----------
    user_items : scipy sparse matrix of shape (n_users, n_items)
        Any stored non-zero counts as "the user has the item".
    sensitive_labels : ndarray of shape (n_users,)
        The group of each user; at least two groups.
    threshold : float, default=0.6
        Least direction-free AUC, in ``[0.5, 1]``.
    alpha : float or None, default=0.01
        Family-wise error rate of the tests, in ``(0, 1)``. ``None`` drops the
        test: effect size only.

    Returns
    -------
    ndarray of int
        The sorted indices of the proxy items.

    Examples
    --------
    >>> X = sp.csr_matrix([[1, 1, 0], [1, 0, 0], [0, 1, 1], [0, 1, 0]])
    >>> detect_item_proxies(X, np.array(["F", "F", "M", "M"]), threshold=0.8, alpha=None).tolist()
    [0]
    >>> detect_item_proxies(X, np.array(["F", "F", "M", "M"]), threshold=0.8).tolist()
    []
    """
    if not sp.issparse(user_items):
        raise TypeError(
            f"user_items: expected a scipy sparse users x items matrix, got "
            f"{type(user_items).__name__}"
        )
    present = sp.csr_matrix(user_items, dtype=np.float64, copy=True)
    present.eliminate_zeros()
    present.data[:] = 1.0
    labels = np.asarray(sensitive_labels)
    if labels.shape != (present.shape[0],):
        raise ValueError(
            f"sensitive_labels: expected one label per user (shape ({present.shape[0]},)), "
            f"got {labels.shape}"
        )
    _check_threshold_and_alpha(threshold, alpha)
    groups, codes = np.unique(labels, return_inverse=True)
    if groups.size < 2:
        raise ValueError(f"sensitive_labels: expected at least two groups, got {groups.tolist()}")
    one_hot = sp.csr_matrix(
        (np.ones(codes.size), (codes, np.arange(codes.size))), shape=(groups.size, codes.size)
    )
    # users of each group having each item, groups x items (never users x items)
    counts = np.rint((one_hot @ present).toarray()).astype(np.int64)
    sizes = np.bincount(codes, minlength=groups.size)[:, None]
    holders = counts.sum(axis=0)
    n_users = codes.size
    in_group = counts / sizes
    rest = (holders - counts) / (n_users - sizes)
    hit = 0.5 + 0.5 * np.abs(in_group - rest) >= threshold
    if alpha is not None:
        g, j = np.nonzero(hit)
        p = _binary_p_values(counts[g, j], sizes[g, 0], holders[j], n_users)
        hit[g, j] = p <= _bonferroni_level(alpha, present.shape[1], groups.size)
    return np.flatnonzero(hit.any(axis=0))


def _check_threshold_and_alpha(threshold: float, alpha: float | None) -> None:
    if not 0.5 <= threshold <= 1.0:
        raise ValueError(f"threshold: expected a number in [0.5, 1], got {threshold!r}")
    if alpha is not None and (
        isinstance(alpha, bool) or not isinstance(alpha, Real) or not 0.0 < alpha < 1.0
    ):
        raise ValueError(
            f"alpha: expected None (effect size only) or a number in (0, 1), got {alpha!r}"
        )


def _bonferroni_level(alpha: float, n_features: int, n_groups: int) -> float:
    """``alpha`` over the number of distinct (feature, group vs rest) tests.

    With two groups "F vs rest" and "M vs rest" are one test, counted once.
    """
    return alpha / max(1, n_features * (1 if n_groups == 2 else n_groups))


def _tie_term(X: np.ndarray) -> np.ndarray:
    """``sum(t**3 - t)`` over the runs of tied values of each column (``t`` a run's length).

    scipy's ``tiecorrect`` takes one column at a time; here every column at once.
    """
    n, m = X.shape
    s = np.sort(X, axis=0)
    starts = np.ones(s.shape, dtype=bool)
    starts[1:] = s[1:] != s[:-1]
    run = np.cumsum(starts, axis=0) - 1 + n * np.arange(m)  # run ids, distinct across columns
    t = np.bincount(run.ravel(), minlength=n * m).astype(np.float64)
    return (t**3 - t).reshape(m, n).sum(axis=1)


def _u_test_p_values(u: np.ndarray, n1: int, n2: int, tie_term: np.ndarray) -> np.ndarray:
    """Two-sided p-values of the Mann-Whitney U test, normal approximation.

    ``u`` is U of the first sample (``n1`` rows) per column, ``tie_term`` the
    columns' :func:`_tie_term`. Variance with the tie correction, ``|U - mu|``
    less 0.5 for continuity: ``scipy.stats.mannwhitneyu(method="asymptotic")``
    with its default ``use_continuity=True``; 1 for a constant column, as there.
    """
    n = n1 + n2
    var = n1 * n2 / 12 * ((n + 1) - tie_term / (n * (n - 1)))
    return _normal_p_values(np.abs(u - n1 * n2 / 2) - 0.5, var)


def _binary_p_values(a: np.ndarray, n_g: np.ndarray, k: np.ndarray, n: int) -> np.ndarray:
    """Two-sided p-values of U on 0/1 columns from counts, normal or exact.

    ``a`` of the ``n_g`` users of a group hold the item, ``k`` of all ``n``
    (arrays of one entry per test). The exact test where the smallest expected
    count of the 2x2 table is below :data:`_MIN_EXPECTED_COUNT`.
    """
    a, n_g, k = (np.asarray(v, dtype=np.int64) for v in np.broadcast_arrays(a, n_g, k))
    smallest_expected = np.minimum(n_g, n - n_g) * np.minimum(k, n - k) / n
    exact = smallest_expected < _MIN_EXPECTED_COUNT
    p = np.empty(a.shape)
    p[exact] = _exact_binary_p_values(a[exact], n_g[exact], k[exact], n)
    p[~exact] = _binary_u_test_p_values(a[~exact], n_g[~exact], k[~exact], n)
    return p


def _binary_u_test_p_values(a: np.ndarray, n_g: np.ndarray, k: np.ndarray, n: int) -> np.ndarray:
    """:func:`_u_test_p_values` of a 0/1 column, in closed form from its counts.

    With average ranks the ``n - k`` zeros rank ``(n - k + 1) / 2`` and the
    ``k`` ones ``n - k + (k + 1) / 2``, so ``U - n_g n_r / 2 = n (a - E[a]) / 2``
    with ``E[a] = n_g k / n``. The two ties, of ``k`` and ``n - k``, give
    ``sum(t**3 - t) = n (n**2 - 1) - 3 n k (n - k)``, and the variance
    ``n_g n_r / 12 * ((n + 1) - sum(t**3 - t) / (n (n - 1)))`` becomes
    ``n_g n_r k (n - k) / (4 (n - 1))``. Divided by ``n / 2``:

    ``z = (|a - E[a]| - 1 / n) / sqrt(n_g n_r k (n - k) / (n**2 (n - 1)))``,

    where the denominator is the standard deviation of the hypergeometric
    ``a`` (the exact branch), scipy's 0.5 continuity correction on U is
    ``1 / n`` on ``a``, and, as ``a - E[a] = n_g n_r (p_g - p_r) / n``, ``z``
    is the pooled two-proportion z statistic
    ``(p_g - p_r) / sqrt(p (1 - p) (1 / n_g + 1 / n_r))`` times
    ``sqrt((n - 1) / n)`` (``p = k / n``), less the correction.
    """
    n_g = n_g.astype(np.float64)
    k = k.astype(np.float64)
    var = n_g * (n - n_g) * k * (n - k) / (n**2 * (n - 1.0))
    return _normal_p_values(np.abs(a - n_g * k / n) - 1.0 / n, var)


def _exact_binary_p_values(a: np.ndarray, n_g: np.ndarray, k: np.ndarray, n: int) -> np.ndarray:
    """Two-sided exact p-values of U on 0/1 columns: ``a``'s hypergeometric tails, doubled.

    Under "no difference", which ``n_g`` of the ``n`` users form the group is
    a random draw, so the number ``a`` of the item's ``k`` holders among them
    is hypergeometric, and U, linear in ``a``, has that exact distribution
    (the one-sided Fisher exact tests are these tails).
    """
    lower = hypergeom.cdf(a, n, k, n_g)
    upper = hypergeom.sf(a - 1, n, k, n_g)
    return np.minimum(1.0, 2.0 * np.minimum(lower, upper))


def _normal_p_values(deviation: np.ndarray, var: np.ndarray) -> np.ndarray:
    """``2 * sf(deviation / sqrt(var))`` clipped to ``[0, 1]``; 1 where ``var`` is not positive.

    A constant column has ``var == 0`` (or a rounding error below it) and
    ``deviation < 0``: nothing to test, p = 1 as in scipy.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.clip(2.0 * norm.sf(deviation / np.sqrt(var)), 0.0, 1.0)
    return np.where(var > 0, p, 1.0)
