"""Protected-attribute reliance of explanations, and proxies of a sensitive attribute.

:func:`protected_reliance` is the share of the absolute SHAP mass that sits on
sensitive features and their proxies. Proxies are found in the data, one
feature at a time, by how well the feature alone tells the groups apart:
:func:`detect_proxies` for the two-stage ranker's pair features,
:func:`detect_item_proxies` for history items (the features of history
explanations).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import numpy as np
import scipy.sparse as sp
from scipy.stats import rankdata

__all__ = ["detect_item_proxies", "detect_proxies", "protected_reliance"]


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
) -> set[str]:
    """Features that on their own predict the sensitive attribute (univariate AUC).

    For each feature and each group ``g``, the ROC AUC of the feature as a score
    for "the row belongs to ``g``", taken direction-free as ``max(AUC, 1 - AUC)``
    (in ``[0.5, 1]``); a feature is a proxy when its best group reaches
    ``threshold``. AUC is used rather than mutual information because it is
    scale-free, needs no binning and its threshold reads the same for every
    feature. It only sees monotone, one-feature relations: combinations of
    features that jointly reveal the attribute are not detected. The sensitive
    features themselves are returned too when they are among the columns.

    Examples
    --------
    >>> X = np.array([[1.0, 0.3], [0.9, 0.1], [0.1, 0.2], [0.0, 0.4]])
    >>> sorted(detect_proxies(X, np.array(["F", "F", "M", "M"]), ["a", "b"], threshold=0.9))
    ['a']
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
    if not 0.5 <= threshold <= 1.0:
        raise ValueError(f"threshold: expected a number in [0.5, 1], got {threshold!r}")
    groups = np.unique(labels)
    if groups.size < 2:
        raise ValueError(f"sensitive_labels: expected at least two groups, got {groups.tolist()}")
    # rank-sum (Mann-Whitney) form of the AUC, all columns at once; ties get
    # average ranks, as in sklearn's roc_auc_score
    ranks = rankdata(X, axis=0)
    best = np.full(X.shape[1], 0.5)
    for g in groups:
        positive = labels == g
        n_pos, n_neg = int(positive.sum()), int((~positive).sum())
        auc = (ranks[positive].sum(axis=0) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
        best = np.maximum(best, np.maximum(auc, 1.0 - auc))
    return {name for name, score in zip(names, best) if score >= threshold}


def detect_item_proxies(
    user_items: sp.spmatrix, sensitive_labels: np.ndarray, threshold: float = 0.6
) -> np.ndarray:
    """Items whose presence in a history on its own predicts the sensitive attribute.

    The same criterion as :func:`detect_proxies`, applied to the binary
    "user has item ``j``" columns of ``user_items`` (users x items): the
    direction-free ROC AUC of the column as a score for "the user belongs to
    group ``g``", at least ``threshold`` for some group. For a 0/1 column with
    ties ranked on average the AUC is ``0.5 + (p_g - p_rest) / 2`` (``p`` the
    share of each side's users who have the item), so a proxy is an item whose
    rates differ by at least ``2 * threshold - 1`` between a group and the
    rest. Written out because ``detect_proxies`` ranks a dense matrix and a
    users x items matrix is too large for that; the closed form needs one
    sparse product. Returns the sorted item indices.

    Examples
    --------
    >>> X = sp.csr_matrix([[1, 1, 0], [1, 0, 0], [0, 1, 1], [0, 1, 0]])
    >>> detect_item_proxies(X, np.array(["F", "F", "M", "M"]), threshold=0.8).tolist()
    [0]
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
    if not 0.5 <= threshold <= 1.0:
        raise ValueError(f"threshold: expected a number in [0.5, 1], got {threshold!r}")
    groups, codes = np.unique(labels, return_inverse=True)
    if groups.size < 2:
        raise ValueError(f"sensitive_labels: expected at least two groups, got {groups.tolist()}")
    one_hot = sp.csr_matrix(
        (np.ones(codes.size), (codes, np.arange(codes.size))), shape=(groups.size, codes.size)
    )
    counts = np.asarray((one_hot @ present).todense())  # users of each group having each item
    sizes = np.bincount(codes, minlength=groups.size).astype(np.float64)[:, None]
    in_group = counts / sizes
    rest = (counts.sum(axis=0) - counts) / (sizes.sum() - sizes)
    best = 0.5 + 0.5 * np.abs(in_group - rest).max(axis=0)
    return np.flatnonzero(best >= threshold)
