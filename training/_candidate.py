"""Build, fit and query one candidate, with its fairness mitigation applied in training.

* ``reweight`` (pre-processing): the model is fitted on reweighted interactions.
* ``two_stage`` (in-processing): a classifier over first-stage candidates,
  trained with a fairlearn reduction under the configured constraint.
* ``fair_share`` / ``exposure_budget`` / ``calibration`` / ``category_share`` /
  ``user_blend`` (post-processing): the model's top ``n_candidates`` are reordered;
  the re-ranker never re-scores. ``category_share`` fits its offsets on the model's
  own candidate lists for (a seeded sample of) training users.

A sweep expands one model spec into one candidate per value.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys.data import Dataset
from recsys.errors import FairrecError
from recsys.mitigation import ReweightedRecommender, TwoStageRanker
from recsys.models import Recommender
from recsys.rerank import (
    CalibratedReranker,
    CategoryShareReranker,
    ExposureBudgetReranker,
    FairShareReranker,
    UserGroupBlendReranker,
    fit_users_sample,
    validation_candidates,
)
from training._components import build_model
from training._schema import FairnessConfig
from training._schema_models import (
    CalibrationMitigation,
    CategoryShareMitigation,
    ExposureBudgetMitigation,
    FairShareMitigation,
    ReweightMitigation,
    TwoStageMitigation,
    UserBlendMitigation,
)

__all__ = ["Candidate", "FairnessContext", "expand_sweeps", "fit_candidate", "twin_key"]


@dataclass(frozen=True, kw_only=True)
class FairnessContext:
    """What mitigations may read, resolved once per run."""

    dataset: Dataset
    fairness: FairnessConfig
    protected_items: np.ndarray  # bool per item: in the configured protected item group
    seed: int
    k: int = 10  # the evaluation cut-off (re-rankers fitted for a list length use it)

    def user_labels(self, attribute: str | None, where: str) -> np.ndarray:
        attribute = attribute or self.fairness.sensitive[0]
        users = self.dataset.users
        if attribute not in users.columns or attribute == "user_id":
            allowed = [c for c in users.columns if c != "user_id"]
            raise FairrecError(
                f"{where}: user attribute {attribute!r} is not in the data; available: {', '.join(allowed)}"
            )
        return users[attribute].astype("string").fillna("unknown").to_numpy(dtype=object)

    def item_codes(self, attribute: str, where: str) -> np.ndarray:
        items = self.dataset.items
        if attribute not in items.columns or attribute == "item_id":
            allowed = [c for c in items.columns if c != "item_id"]
            raise FairrecError(
                f"{where}: item attribute {attribute!r} is not in the data; available: {', '.join(allowed)}"
            )
        return pd.factorize(items[attribute].astype("string").fillna("unknown"))[0].astype(np.int64)


@dataclass(frozen=True, kw_only=True)
class Candidate:
    """One entry of the candidate list after sweep expansion."""

    name: str
    spec: Any  # a ModelSpec with the sweep value applied and ``sweep`` cleared
    sweep_of: str | None = None
    sweep_value: float | None = None


def expand_sweeps(models: list[Any]) -> list[Candidate]:
    out: list[Candidate] = []
    for spec in models:
        if spec.sweep is None:
            out.append(Candidate(name=spec.name, spec=spec))
            continue
        step, field = spec.sweep_target()
        for value in spec.sweep.values:
            updated = [
                s.model_copy(update={field: value}) if s is step else s for s in spec.steps
            ]
            resolved = spec.model_copy(update={"mitigation": updated, "sweep": None})
            out.append(
                Candidate(
                    name=f"{spec.name}-{field}{value:g}",
                    spec=resolved,
                    sweep_of=spec.name,
                    sweep_value=float(value),
                )
            )
    return out


def twin_key(spec: Any) -> tuple[str, str, str]:
    """Identity of a model without its mitigation (its unmitigated twin)."""
    return (spec.type, spec.input, spec.params.model_dump_json())


def _base_model(spec: Any, seed: int) -> Recommender:
    return build_model(spec.type, spec.params.model_dump(), seed=seed)


def fit_candidate(
    spec: Any,
    X: sp.csr_matrix,
    ctx: FairnessContext,
    *,
    fitted: dict[tuple[str, ...], Recommender] | None = None,
) -> tuple[Recommender, Any]:
    """Fit the model (with pre- or in-processing) and return it with its re-ranker, if any.

    ``fitted`` caches fitted models by model and training step: candidates that
    differ only in their re-ranker (and unmitigated twins) share one fit.
    """
    steps = spec.steps
    training = steps[0] if steps and steps[0].kind in ("reweight", "two_stage") else None
    post = steps[-1] if steps and steps[-1].kind not in ("reweight", "two_stage") else None
    where = f"models.{spec.name}.mitigation"
    key = (*twin_key(spec), "" if training is None else training.model_dump_json())
    if fitted is not None and key in fitted:
        model = fitted[key]
    else:
        model = _fit_model(spec, training, X, ctx, where)
        if fitted is not None:
            fitted[key] = model
    if post is None:
        return model, None
    # re-rankers that learn relevance refit the same model on part of the training data
    refit = partial(_fit_model, spec, training, ctx=ctx, where=where)
    return model, _fit_reranker(post, X, ctx, where, model, refit)


def _fit_model(spec: Any, training: Any, X: sp.csr_matrix, ctx: FairnessContext, where: str) -> Recommender:
    model = _base_model(spec, ctx.seed)
    if isinstance(training, ReweightMitigation):
        model = ReweightedRecommender(
            model, popularity_damping=training.popularity_damping, group_balance=training.group_balance
        )
        return model.fit(
            X,
            user_group=ctx.user_labels(training.user_attribute, where),
            item_category=ctx.item_codes(training.item_attribute, where),
        )
    if isinstance(training, TwoStageMitigation):
        categories = ctx.item_codes(ctx.fairness.amplification_attribute, where)
        item_features = np.eye(categories.max() + 1, dtype=np.float32)[categories]
        model = TwoStageRanker(
            model,
            n_candidates=training.n_candidates,
            classifier=training.classifier,
            constraint=training.constraint,
            bound=training.bound,
            method=training.method,
            holdout_fraction=training.holdout_fraction,
            use_sensitive_feature=training.use_sensitive_feature,
            random_state=ctx.seed,
        )
        return model.fit(
            X,
            item_features=item_features,
            sensitive=ctx.user_labels(training.user_attribute, where),
            protected_items=ctx.protected_items if training.protected_items_only else None,
        )
    return model.fit(X)


def _fit_reranker(
    m: Any, X: sp.csr_matrix, ctx: FairnessContext, where: str, model: Recommender,
    refit: Callable[[sp.csr_matrix], Recommender],
) -> Any:
    if isinstance(m, FairShareMitigation):
        return FairShareReranker(strength=m.strength, alpha=m.alpha).fit(
            X, protected_items=ctx.protected_items
        )
    if isinstance(m, ExposureBudgetMitigation):
        if m.cost == "score":
            return ExposureBudgetReranker(strength=m.strength).fit(X, protected_items=ctx.protected_items)
        vc = validation_candidates(refit, X, n_candidates=max(m.n_candidates, ctx.k), random_state=ctx.seed)
        return ExposureBudgetReranker(strength=m.strength, cost=m.cost).fit(
            X, protected_items=ctx.protected_items, validation_ids=vc.ids,
            validation_scores=vc.scores, validation_relevant=vc.relevant,
        )
    if isinstance(m, CalibrationMitigation):
        return CalibratedReranker(strength=m.strength, smoothing=m.smoothing).fit(
            X, item_category=ctx.item_codes(m.item_attribute, where)
        )
    if isinstance(m, CategoryShareMitigation):
        users = fit_users_sample(np.flatnonzero(X.getnnz(axis=1) > 0), m.max_fit_users, ctx.seed)
        cand_ids, cand_scores = model.recommend(users, max(m.n_candidates, ctx.k))
        return CategoryShareReranker(strength=m.strength, k=ctx.k).fit(
            X, item_category=ctx.item_codes(m.item_attribute, where), users=users,
            candidate_ids=cand_ids, candidate_scores=cand_scores,
        )
    if isinstance(m, UserBlendMitigation):
        labels = ctx.user_labels(m.user_attribute, where)
        if m.group not in set(labels):
            raise FairrecError(
                f"{where}.group: {m.group!r} is not a value of {m.user_attribute!r}; "
                f"values: {', '.join(sorted(set(map(str, labels))))}"
            )
        return UserGroupBlendReranker(strength=m.strength).fit(X, user_group=labels == m.group)
    raise TypeError(type(m).__name__)  # pragma: no cover - the schema admits no other kind


def recommend_candidate(
    model: Recommender, reranker: Any, spec: Any, users: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
    """Top-k lists; for a re-ranked candidate also the first stage's own top-k."""
    if reranker is None:
        ids, scores = model.recommend(users, k)
        return ids, scores, None
    n_cand = max(spec.steps[-1].n_candidates, k)
    cand_ids, cand_scores = model.recommend(users, n_cand)
    ids, scores = reranker.rerank(cand_ids, cand_scores, users=users, k=k)
    return ids, scores, (cand_ids[:, :k], cand_scores[:, :k])
