"""Explain a candidate's recommendations for a seeded sample of users and score the explanations.

For models that score a history (EASE and item-kNN exactly, ALS by re-solving
the user factor): SHAP over history items, LIME over perturbed histories with
two seeds (stability), deletion fidelity. Popularity explains itself ("popular
with many users"). Models with no faithful history explanation yet (BPR, the
two-stage ranker) get no ``explain.*`` metrics: nothing is invented for them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from evaluation import explainability_scores
from recsys.explain import (
    HistoryLimeExplainer,
    HistoryShapExplainer,
    deletion_score_fn,
    explanation_text,
    history_scorer,
)
from recsys.models import Popularity, Recommender
from training._schema import ExplainConfig

__all__ = ["ExplainResult", "explain_candidate"]


@dataclass(frozen=True, kw_only=True)
class ExplainResult:
    metrics: dict[str, float]
    frame: pd.DataFrame  # one row per explained (user, item)
    note: str  # what was explained, or why nothing was


def _explained_model(model: Recommender) -> Recommender:
    return getattr(model, "estimator_", model)  # a reweighted model explains with its inner fit


def _rows(explanations: list[list], users_ids: np.ndarray, item_ids: np.ndarray, titles: np.ndarray,
          m: int) -> list[dict]:
    rows = []
    for user_expl in explanations:
        for rank, e in enumerate(user_expl, start=1):
            top = e.top_features(m)
            weights = dict(zip(e.features, np.asarray(e.weights, dtype=float)))
            rows.append({
                "user_id": users_ids[e.user],
                "item_id": item_ids[e.item],
                "rank": rank,
                "method": e.method,
                "reasons": [str(item_ids[f]) if isinstance(f, (int, np.integer)) else str(f) for f in top],
                "weights": [float(weights[f]) for f in top],
                "text": explanation_text(e, titles=titles),
            })
    return rows


def explain_candidate(
    model: Recommender,
    ids: np.ndarray,
    users: np.ndarray,
    *,
    user_ids: np.ndarray,
    item_ids: np.ndarray,
    titles: np.ndarray,
    config: ExplainConfig,
    seed: int,
) -> ExplainResult:
    """Explain the lists ``ids`` (rows aligned with ``users``) for a sample of ``config.n_users``."""
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(users.size, size=min(config.n_users, users.size), replace=False))
    sample_users, sample_ids = users[pick], ids[pick]
    inner = _explained_model(model)
    if isinstance(inner, Popularity):
        expl = HistoryShapExplainer(inner).explain_rankings(sample_users, sample_ids)
        flat = [e for row in expl for e in row]
        metrics = explainability_scores(explanations=flat, m=config.m, random_state=seed)
        frame = pd.DataFrame(_rows(expl, user_ids, item_ids, titles, config.m))
        return ExplainResult(metrics=metrics, frame=frame, note="popularity explains itself")
    try:
        history_scorer(inner)
    except TypeError as exc:
        return ExplainResult(metrics={}, frame=pd.DataFrame(), note=f"not explained: {exc}")
    shap = HistoryShapExplainer(inner, n_samples=config.shap_samples, random_state=seed)
    shap_expl = shap.explain_rankings(sample_users, sample_ids)
    lime_by_seed = [
        HistoryLimeExplainer(inner, n_samples=config.lime_samples, random_state=seed + s)
        .explain_rankings(sample_users, sample_ids)
        for s in range(config.stability_seeds)
    ]
    flat_shap = [e for row in shap_expl for e in row]
    flat_lime = [[e for row in by_seed for e in row] for by_seed in lime_by_seed]
    metrics = explainability_scores(
        explanations=flat_shap,
        score_fn=deletion_score_fn(inner),
        shap_explanations=flat_shap,
        lime_explanations=flat_lime[0],
        explanations_by_seed=flat_lime,
        m=config.m,
        random_state=seed,
    )
    frame = pd.DataFrame(
        _rows(shap_expl, user_ids, item_ids, titles, config.m)
        + _rows(lime_by_seed[0], user_ids, item_ids, titles, config.m)
    )
    return ExplainResult(metrics=metrics, frame=frame, note=f"{len(pick)} users, SHAP and LIME")
