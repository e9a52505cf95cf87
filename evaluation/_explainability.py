"""Scores of explanation quality: fidelity, surrogate fit, stability, agreement, coverage.

Pure functions: arrays and explanation values in, numbers out. The only model
access is through a ``score_fn`` callable passed in (see
:func:`recsys.explain.deletion_score_fn`). An explanation is anything with
``features`` and ``weights`` (and ``method``, ``extra`` where stated), e.g.
:class:`recsys.explain.Explanation`; an attribution is a ``(features, weights)``
pair. Explanations are objects, one per (user, item), so these functions loop
over them; each does a few numpy operations per explanation.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Collection, Iterable, Sequence
from typing import Any

import numpy as np
from scipy.stats import spearmanr

from recsys.explain import protected_reliance

__all__ = [
    "coverage",
    "deletion_fidelity",
    "explainability_scores",
    "lime_r2",
    "shap_lime_agreement",
    "stability",
]

ScoreFn = Callable[[int, int, Sequence[np.ndarray]], np.ndarray]
Attribution = tuple[Sequence[Any], Sequence[float]]


def _as_attribution(a: Any) -> tuple[np.ndarray, np.ndarray]:
    features, weights = (a.features, a.weights) if hasattr(a, "weights") else a
    features = np.asarray(features)
    weights = np.asarray(weights, dtype=np.float64).reshape(-1)
    if features.shape != weights.shape:
        raise ValueError(
            f"attributions: expected one weight per feature, got {features.size} features "
            f"and {weights.size} weights"
        )
    return features, weights


def _top_m(features: np.ndarray, weights: np.ndarray, m: int) -> np.ndarray:
    """The ``m`` features with the largest weights (positive or not), best first, ties by order."""
    return features[np.argsort(-weights, kind="stable")[:m]]


def _check_m(m: object) -> int:
    if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m < 1:
        raise ValueError(f"m: expected a positive integer, got {m!r}")
    return int(m)


def deletion_fidelity(
    score_fn: ScoreFn,
    users: Sequence[int] | np.ndarray,
    items: Sequence[int] | np.ndarray,
    attributions: Sequence[Any],
    *,
    m: int = 3,
    n_random: int = 5,
    random_state: int | None = 0,
) -> float:
    """How much more deleting the top-``m`` attributed items lowers the score than random deletions.

    For each (user, item, attribution over history items), ``score_fn(user,
    item, removed_sets)`` returns the item's score with each set of history
    items removed. The *top drop* is ``score(full) - score(without the m
    highest-weighted items)``; the *random drop* is the mean over ``n_random``
    draws of ``m`` random history items. The result is the ratio of the mean
    top drop to the mean random drop over all pairs: > 1 when the attributions
    find the items the score depends on, about 1 when they are no better than
    chance.

    Zero denominators: the ratio is taken of means, not per pair (a per-pair
    ratio is unbounded whenever a random deletion barely moves the score), and
    pairs with at most ``m`` history items are skipped (both deletions would
    remove the whole history). If no pair is left, or the mean random drop is
    not positive (random deletions do not lower the score on average), the
    ratio is undefined and ``nan`` is returned.

    Examples
    --------
    >>> W = np.array([3.0, 1.0, 1.0, 1.0])  # score = sum of the kept history weights
    >>> def score_fn(user, item, removed_sets):
    ...     return np.array([W.sum() - W[np.asarray(r, dtype=int)].sum() for r in removed_sets])
    >>> fidelity = deletion_fidelity(score_fn, [0], [9], [([0, 1, 2, 3], W)], m=1, n_random=4)
    >>> fidelity > 1  # the top item (weight 3) drops the score 3; a random one 1.5 on average
    True
    """
    m = _check_m(m)
    if isinstance(n_random, bool) or not isinstance(n_random, (int, np.integer)) or n_random < 1:
        raise ValueError(f"n_random: expected a positive integer, got {n_random!r}")
    users = np.asarray(users).reshape(-1)
    items = np.asarray(items).reshape(-1)
    if not users.size == items.size == len(attributions):
        raise ValueError(
            "users, items, attributions: expected one entry per explained pair, got "
            f"{users.size}, {items.size} and {len(attributions)}"
        )
    rng = np.random.default_rng(random_state)
    top_drops, random_drops, full_scores = [], [], []
    for user, item, attribution in zip(users, items, attributions):
        features, weights = _as_attribution(attribution)
        if features.size <= m:
            continue
        randoms = [rng.choice(features, m, replace=False) for _ in range(n_random)]
        removed = [features[:0], _top_m(features, weights, m), *randoms]
        scores = np.asarray(score_fn(int(user), int(item), removed), dtype=np.float64)
        full_scores.append(scores[0])
        top_drops.append(scores[0] - scores[1])
        random_drops.append(np.mean(scores[0] - scores[2:]))
    if not top_drops:
        return float("nan")
    denominator = float(np.mean(random_drops))
    eps = 1e-12 * max(1.0, float(np.mean(np.abs(full_scores))))
    if denominator <= eps:
        return float("nan")
    return float(np.mean(top_drops) / denominator)


def lime_r2(r2_values: Iterable[float]) -> float:
    """Mean R² of LIME's local surrogates (nan entries ignored; nan if none).

    Examples
    --------
    >>> lime_r2([0.9, 0.7])
    0.8
    """
    values = np.asarray(list(r2_values), dtype=np.float64)
    values = values[~np.isnan(values)]
    return float(values.mean()) if values.size else float("nan")


def _jaccard(a: Collection[Any], b: Collection[Any]) -> float:
    a, b = set(a), set(b)
    union = a | b
    return 1.0 if not union else len(a & b) / len(union)


def stability(top_sets_by_seed: Sequence[Sequence[Collection[Any]]]) -> float:
    """Mean Jaccard similarity of the top-m feature sets that different seeds give.

    ``top_sets_by_seed[e][s]`` is the top-m set of explanation ``e`` under seed
    ``s``. Per explanation, the mean Jaccard over all pairs of seeds (two empty
    sets agree: 1); then the mean over explanations. 1 means every seed picks
    the same features; nan without any explanation that has two seeds.

    Examples
    --------
    >>> stability([[{1, 2}, {1, 2}], [{1, 2}, {2, 3}]])
    0.6666666666666666
    """
    per_explanation = []
    for sets in top_sets_by_seed:
        pairs = list(itertools.combinations(list(sets), 2))
        if pairs:
            per_explanation.append(np.mean([_jaccard(a, b) for a, b in pairs]))
    return float(np.mean(per_explanation)) if per_explanation else float("nan")


def shap_lime_agreement(
    shap_w: Sequence[Sequence[float]], lime_w: Sequence[Sequence[float]]
) -> float:
    """Mean Spearman rank correlation between SHAP and LIME weights of the same explanations.

    ``shap_w[e]`` and ``lime_w[e]`` are the weights of explanation ``e`` over the
    same features in the same order. Explanations with fewer than two features
    or constant weights (no ranking to compare) are skipped; nan if none is left.

    Examples
    --------
    >>> shap_lime_agreement([[0.3, 0.2, 0.1], [1.0, 2.0, 3.0]], [[3.0, 2.0, 1.0], [3.0, 2.0, 1.0]])
    0.0
    """
    if len(shap_w) != len(lime_w):
        raise ValueError(
            f"lime_w: expected one weight vector per SHAP explanation ({len(shap_w)}), "
            f"got {len(lime_w)}"
        )
    rhos = []
    for a, b in zip(shap_w, lime_w):
        a = np.asarray(a, dtype=np.float64).reshape(-1)
        b = np.asarray(b, dtype=np.float64).reshape(-1)
        if a.shape != b.shape:
            raise ValueError(
                f"lime_w: expected weights over the same {a.size} features as shap_w, got {b.size}"
            )
        if a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
            continue
        rhos.append(spearmanr(a, b).statistic)
    return float(np.mean(rhos)) if rhos else float("nan")


def coverage(explanations: Sequence[Any]) -> float:
    """Share of explanations that say something: a nonzero weight, or an honest popularity reason.

    Examples
    --------
    >>> from recsys.explain import Explanation
    >>> e = [Explanation(user=0, item=1, method="shap", features=[2], weights=[0.0],
    ...                  base_value=0.0, score=0.0),
    ...      Explanation(user=0, item=2, method="popularity", features=[], weights=[],
    ...                  base_value=0.0, score=9.0)]
    >>> coverage(e)
    0.5
    """
    if len(explanations) == 0:
        return float("nan")
    covered = [
        getattr(e, "method", None) == "popularity"
        or bool(np.any(np.nan_to_num(np.asarray(e.weights, dtype=np.float64)) != 0))
        for e in explanations
    ]
    return float(np.mean(covered))


def explainability_scores(
    *,
    explanations: Sequence[Any],
    score_fn: ScoreFn | None = None,
    shap_explanations: Sequence[Any] | None = None,
    lime_explanations: Sequence[Any] | None = None,
    explanations_by_seed: Sequence[Sequence[Any]] | None = None,
    feature_shap_values: np.ndarray | None = None,
    feature_names: Sequence[str] | None = None,
    sensitive_features: Collection[str] = (),
    proxy_features: Collection[str] = (),
    protected_features: Collection[Any] | None = None,
    m: int = 3,
    n_random: int = 5,
    random_state: int | None = 0,
) -> dict[str, float]:
    """All explanation scores under flat, MLflow-safe names; ``nan`` where not measured.

    * ``explain.coverage``: :func:`coverage` of ``explanations`` (one per
      recommendation, any method).
    * ``explain.fidelity``: :func:`deletion_fidelity` of ``shap_explanations``
      (default: the history attributions among ``explanations``), needs ``score_fn``.
    * ``explain.lime_r2``: :func:`lime_r2` of ``lime_explanations``' ``extra["r2"]``.
    * ``explain.shap_lime_agreement``: :func:`shap_lime_agreement` of
      ``shap_explanations`` and ``lime_explanations`` (aligned, same features).
    * ``explain.stability``: :func:`stability` of the top-``m`` sets of
      ``explanations_by_seed[s][e]`` (explanation ``e`` computed with seed ``s``).
    * ``explain.protected_reliance``: :func:`~recsys.explain.protected_reliance` of
      ``feature_shap_values`` over ``feature_names`` (feature-based models); or,
      given ``protected_features`` instead (e.g. history items that are proxies
      of a sensitive attribute), the share of the absolute weights of
      ``shap_explanations``, pooled, on those features (0 when that is empty).

    Examples
    --------
    >>> from recsys.explain import Explanation
    >>> e = Explanation(user=0, item=1, method="popularity", features=[], weights=[],
    ...                 base_value=0.0, score=9.0)
    >>> scores = explainability_scores(explanations=[e])
    >>> scores["explain.coverage"], bool(np.isnan(scores["explain.fidelity"]))
    (1.0, True)
    """
    m = _check_m(m)
    nan = float("nan")
    if shap_explanations is None:
        shap_explanations = [
            e
            for e in explanations
            if getattr(e, "method", None) != "popularity"
            and getattr(e, "extra", {}).get("space", "history") == "history"
        ]
    scores = {
        "explain.fidelity": nan,
        "explain.lime_r2": nan,
        "explain.stability": nan,
        "explain.shap_lime_agreement": nan,
        "explain.protected_reliance": nan,
        "explain.coverage": coverage(explanations),
    }
    if score_fn is not None and shap_explanations:
        scores["explain.fidelity"] = deletion_fidelity(
            score_fn,
            [e.user for e in shap_explanations],
            [e.item for e in shap_explanations],
            shap_explanations,
            m=m,
            n_random=n_random,
            random_state=random_state,
        )
    if lime_explanations:
        scores["explain.lime_r2"] = lime_r2(e.extra.get("r2", nan) for e in lime_explanations)
        if shap_explanations:
            scores["explain.shap_lime_agreement"] = shap_lime_agreement(
                [e.weights for e in shap_explanations], [e.weights for e in lime_explanations]
            )
    if explanations_by_seed:
        per_seed = [[_as_attribution(e) for e in seed] for seed in explanations_by_seed]
        scores["explain.stability"] = stability(
            [[set(_top_m(f, w, m).tolist()) for f, w in group] for group in zip(*per_seed)]
        )
    if feature_shap_values is not None and protected_features is not None:
        raise ValueError(
            "protected_features: reliance is measured either on feature_shap_values or on "
            "shap_explanations, got both feature_shap_values and protected_features"
        )
    if protected_features is not None and shap_explanations:
        attributions = [_as_attribution(e) for e in shap_explanations]
        features = np.concatenate([f.astype(object) for f, _ in attributions])
        weights = np.concatenate([w for _, w in attributions])
        scores["explain.protected_reliance"] = protected_reliance(
            weights[None, :], [str(f) for f in features], [str(f) for f in protected_features]
        )
    if feature_shap_values is not None:
        if feature_names is None:
            raise ValueError("feature_names: required with feature_shap_values, got None")
        scores["explain.protected_reliance"] = protected_reliance(
            feature_shap_values, feature_names, sensitive_features, proxy_features
        )
    return scores
