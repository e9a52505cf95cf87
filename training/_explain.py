"""Explain a candidate's recommendations for a seeded sample of users and score the explanations.

* Models that score a history (EASE and item-kNN exactly, ALS by re-solving the
  user factor, BPR by folding it in from BPR's own objective): SHAP over history
  items, LIME over perturbed histories with ``stability_seeds`` seeds, deletion
  fidelity (history items removed).
  Protected reliance: the share of the SHAP mass on history items that are
  proxies of a sensitive attribute (:func:`~recsys.explain.detect_item_proxies`
  over the training interactions); such a model never sees the attribute
  itself, so that is the only way it can rely on it.
* The two-stage ranker: feature SHAP (linear or tree explainer, through the
  model that ranks each pair; a fairlearn mixture as its weight-averaged
  log-odds) and LIME tabular, deletion fidelity (features set to background
  values). Protected reliance: the share of the SHAP mass on the one-hot
  ``sensitive=<group>`` features and on the pair features detected as proxies
  (:func:`~recsys.explain.detect_proxies` on the candidate pairs of up to
  ``_PROXY_USERS`` test users), measured over *every* candidate pair of the
  sampled users, not only the ``k`` kept: an item pushed out of a list by the
  sensitive feature is a ranking decision that relied on it.
* Popularity explains itself ("popular with many users"); its scores do not
  depend on the user, so its protected reliance is 0.
* BPR learns its user factors by SGD, so its served score is no function of the
  history. What is explained is the score of the user factor that maximises
  BPR's own per-user objective for the history, item factors fixed (the fixed
  point of implicit's SGD in expectation; :mod:`recsys.explain._bpr`); the
  empty history scores the item bias, which is the base value. How closely
  that fold-in ranks like the served model is logged as
  ``explain.foldin_agreement``: the mean Spearman correlation over the sampled
  users' recommendable items (:func:`~recsys.explain.foldin_agreement`).
* Every model: the counterfactual flip rate of the sampled users
  (:func:`~recsys.explain.counterfactual_flip_rate`, lists as long as the
  explained ones, the model's own before any re-ranker): the share whose top-k
  set changes when only their group does, ``explain.counterfactual_flip_rate``,
  and the mean of the largest ``1 - Jaccard`` of the two top-k sets,
  ``explain.counterfactual_change``. Per sensitive attribute as
  ``explain.counterfactual_flip_rate.<attribute>`` (and ``...change.<attribute>``):
  computed for the attribute a model reads (a two-stage ranker's ``sensitive``
  labels, whether or not they are features), 0 by construction for the others
  and for models that read none (every collaborative model, popularity). The
  unqualified names are the largest value, the model's own attribute included
  when it is not a configured one.

End-user texts never name a sensitive feature or a detected proxy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
from matplotlib.figure import Figure
from threadpoolctl import threadpool_limits

from evaluation import explainability_scores, sanitize_label
from recsys.explain import (
    Explanation,
    FeatureLimeExplainer,
    FeatureShapExplainer,
    HistoryLimeExplainer,
    HistoryShapExplainer,
    ReadsSensitive,
    counterfactual_flip_rate,
    deletion_score_fn,
    detect_item_proxies,
    detect_proxies,
    explanation_text,
    feature_deletion_score_fn,
    foldin_agreement,
    history_scorer,
)
from recsys.mitigation import TwoStageRanker
from recsys.models import BPR, Popularity, Recommender
from training._schema import ExplainConfig

__all__ = ["ExplainResult", "explain_candidate"]

_PROXY_USERS = 500  # users whose candidate pairs feed the pair-feature proxy detection
_SUMMARY_TOP = 15  # bars in the SHAP summary plot
_SENSITIVE_PREFIX = "sensitive="  # TwoStageRanker's one-hot sensitive features

# End-user phrases of the two-stage ranker's features, chosen by whether the
# pair's value is above or below the background mean (a positive attribution
# means that side raised the score). None: no phrase. The user's activity and
# the one-hot item/user/sensitive features get no phrase: the first describes
# the user, and a one-hot attribution can come from the feature being 0. The
# first-stage features mean "matches your history" only for a personalised
# first stage; a popularity first stage scores and ranks by popularity.
_POPULAR = "it is popular with many users"
_FEATURE_PHRASES: dict[str, tuple[str | None, str | None]] = {
    "first_stage_score": ("it closely matches your history", None),
    "first_stage_log_rank": (None, "it is among your closest matches"),
    "item_log_popularity": (_POPULAR, "it is a less widely known pick"),
    "user_item_affinity": ("it is like the items you choose most often", None),
}
_POPULARITY_FIRST_STAGE = {
    "first_stage_score": (_POPULAR, None),
    "first_stage_log_rank": (None, _POPULAR),
}


@dataclass(frozen=True, kw_only=True)
class ExplainResult:
    metrics: dict[str, float]
    frame: pd.DataFrame  # one row per explained (user, item)
    note: str  # what was explained, or why nothing was
    # mean |SHAP| per feature (two-stage) or history item (by title), largest first
    summary: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame({"feature": [], "mean_abs_shap": []})
    )

    def save_summary_plot(self, path: Path) -> bool:
        """Write the SHAP summary bar chart as PNG if there are SHAP values; say whether it did."""
        if self.summary.empty:
            return False
        path.parent.mkdir(parents=True, exist_ok=True)
        _summary_figure(self.summary).savefig(path, dpi=100)
        return True


def _summary_figure(summary: pd.DataFrame) -> Figure:
    fig = Figure(figsize=(6.0, 0.35 * len(summary) + 1.2), layout="constrained")
    ax = fig.subplots()
    ax.barh(np.arange(len(summary))[::-1], summary["mean_abs_shap"].to_numpy())
    ax.set_yticks(np.arange(len(summary))[::-1], summary["feature"].astype(str).tolist())
    ax.set_xlabel("mean |SHAP value| over the explained recommendations")
    ax.set_title("What the explained recommendations rely on")
    return fig


def _summary(explanations: list[Explanation], label: Callable[[object], str]) -> pd.DataFrame:
    """Mean |SHAP| per feature over the explanations (0 where a feature is absent), top first."""
    total: dict[object, float] = {}
    for e in explanations:
        for f, w in zip(e.features, np.abs(e.weights)):
            total[f] = total.get(f, 0.0) + float(w)
    frame = pd.DataFrame(
        {
            "feature": [label(f) for f in total],
            "mean_abs_shap": np.array(list(total.values())) / max(len(explanations), 1),
        }
    )
    frame = frame.sort_values("mean_abs_shap", ascending=False, kind="stable")
    return frame.head(_SUMMARY_TOP).reset_index(drop=True)


def _explained_model(model: Recommender) -> Recommender:
    return getattr(model, "estimator_", model)  # a reweighted model explains with its inner fit


def _rows(explanations: list[list[Explanation]], user_ids: np.ndarray, item_ids: np.ndarray,
          text: Callable[[Explanation], str], m: int) -> list[dict]:
    rows = []
    for user_expl in explanations:
        for rank, e in enumerate(user_expl, start=1):
            top = e.top_features(m)
            weights = dict(zip(e.features, np.asarray(e.weights, dtype=float)))
            rows.append({
                "user_id": user_ids[e.user],
                "item_id": item_ids[e.item],
                "rank": rank,
                "method": e.method,
                "reasons": [str(item_ids[f]) if isinstance(f, (int, np.integer)) else str(f) for f in top],
                "weights": [float(weights[f]) for f in top],
                "text": text(e),
            })
    return rows


def _flat(explanations: list[list[Explanation]]) -> list[Explanation]:
    return [e for row in explanations for e in row]


def _check_sensitive(sensitive: Mapping[str, np.ndarray], n_users: int) -> dict[str, np.ndarray]:
    out = {}
    for attribute, labels in sensitive.items():
        labels = np.asarray(labels)
        if labels.shape != (n_users,):
            raise ValueError(
                f"sensitive[{attribute!r}]: expected one label per user (shape ({n_users},)), "
                f"got shape {labels.shape}"
            )
        out[attribute] = labels
    return out


def explain_candidate(
    model: Recommender,
    ids: np.ndarray,
    users: np.ndarray,
    *,
    user_ids: np.ndarray,
    item_ids: np.ndarray,
    titles: np.ndarray,
    sensitive: Mapping[str, np.ndarray],
    config: ExplainConfig,
    seed: int,
) -> ExplainResult:
    """Explain the lists ``ids`` (rows aligned with ``users``) for a sample of ``config.n_users``.

    ``sensitive`` maps each sensitive attribute to one label per user index
    (the attribute's proxies are detected with them; they never reach a text).
    """
    # explanations call the model on thousands of small batches (LIME
    # neighbourhoods, deletions); an OpenMP fork/join per call (gradient
    # boosting's predict) costs more than it saves and, on a busy machine, can
    # stall: on a loaded 2-core machine a two-stage gbdt candidate explained in
    # 122 s with OpenMP threads and in 8 s with one
    with threadpool_limits(1, user_api="openmp"):
        return _explain(model, ids, users, user_ids=user_ids, item_ids=item_ids, titles=titles,
                        sensitive=sensitive, config=config, seed=seed)


def _explain(model: Recommender, ids: np.ndarray, users: np.ndarray, *, user_ids: np.ndarray,
             item_ids: np.ndarray, titles: np.ndarray, sensitive: Mapping[str, np.ndarray],
             config: ExplainConfig, seed: int) -> ExplainResult:
    inner = _explained_model(model)
    labels = _check_sensitive(sensitive, inner.n_users_)
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(users.size, size=min(config.n_users, users.size), replace=False))
    sample_users, sample_ids = users[pick], ids[pick]
    result = _explain_sample(inner, sample_users, sample_ids, users, labels, user_ids=user_ids,
                             item_ids=item_ids, titles=titles, config=config, seed=seed)
    counterfactual = _counterfactual_metrics(inner, sample_users, labels, k=ids.shape[1])
    return replace(result, metrics={**result.metrics, **counterfactual})


def _explain_sample(inner: Recommender, sample_users: np.ndarray, sample_ids: np.ndarray,
                    users: np.ndarray, labels: Mapping[str, np.ndarray], *, user_ids: np.ndarray,
                    item_ids: np.ndarray, titles: np.ndarray, config: ExplainConfig,
                    seed: int) -> ExplainResult:
    def history_text(e: Explanation) -> str:
        return explanation_text(e, titles=titles)

    if isinstance(inner, TwoStageRanker):
        return _explain_two_stage(inner, sample_users, sample_ids, users, labels,
                                  user_ids=user_ids, item_ids=item_ids, config=config, seed=seed)
    if isinstance(inner, Popularity):
        expl = HistoryShapExplainer(inner).explain_rankings(sample_users, sample_ids)
        metrics = explainability_scores(explanations=_flat(expl), m=config.m, random_state=seed)
        # the scores do not depend on the user: no attribute or proxy can carry any of them
        metrics["explain.protected_reliance"] = 0.0
        frame = pd.DataFrame(_rows(expl, user_ids, item_ids, history_text, config.m))
        return ExplainResult(metrics=metrics, frame=frame, note="popularity explains itself")
    try:
        history_scorer(inner)
    except (TypeError, ValueError) as exc:  # ValueError: a BPR fitted without regularization
        return ExplainResult(metrics={}, frame=pd.DataFrame(), note=f"not explained: {exc}")
    shap = HistoryShapExplainer(inner, n_samples=config.shap_samples, random_state=seed,
                                n_jobs=config.n_jobs)
    shap_expl = shap.explain_rankings(sample_users, sample_ids)
    lime_by_seed = [
        HistoryLimeExplainer(inner, n_samples=config.lime_samples, random_state=seed + s,
                             n_jobs=config.n_jobs)
        .explain_rankings(sample_users, sample_ids)
        for s in range(config.stability_seeds)
    ]
    flat_shap = _flat(shap_expl)
    flat_lime = [_flat(by_seed) for by_seed in lime_by_seed]
    proxies = _item_proxies(inner.user_items_, labels)
    metrics = explainability_scores(
        explanations=flat_shap,
        score_fn=deletion_score_fn(inner),
        shap_explanations=flat_shap,
        lime_explanations=flat_lime[0],
        explanations_by_seed=flat_lime,
        protected_features=proxies.tolist(),
        m=config.m,
        random_state=seed,
    )
    frame = pd.DataFrame(
        _rows(shap_expl, user_ids, item_ids, history_text, config.m)
        + _rows(lime_by_seed[0], user_ids, item_ids, history_text, config.m)
    )
    history = [e for e in flat_shap if e.extra.get("space") == "history"]
    summary = _summary(history, lambda item: str(titles[int(item)]))
    note = (f"{len(sample_users)} users, SHAP and LIME over history items; {proxies.size} history "
            "items detected as proxies of a sensitive attribute")
    if isinstance(inner, BPR):
        metrics["explain.foldin_agreement"] = _foldin_agreement(inner, sample_users)
        note += (f"; BPR explained through its folded-in user factor (Spearman "
                 f"{metrics['explain.foldin_agreement']:.3f} with the served scores)")
    return ExplainResult(metrics=metrics, frame=frame, note=note, summary=summary)


def _foldin_agreement(model: BPR, users: np.ndarray) -> float:
    """Mean Spearman correlation of fold-in and served scores over users with a history."""
    warm = users[(users >= 0) & (users < model.n_users_)]
    rho = foldin_agreement(model, warm)
    rho = rho[np.isfinite(rho)]
    return float(rho.mean()) if rho.size else float("nan")


def _counterfactual_metrics(model: Recommender, users: np.ndarray,
                            labels: Mapping[str, np.ndarray], *, k: int) -> dict[str, float]:
    """``explain.counterfactual_flip_rate`` and ``..._change``, per attribute and the largest.

    A model reads attribute ``a`` when its ``sensitive_`` labels are ``a``'s,
    user by user (the run passes both from the same column). A two-stage
    ranker fitted without labels is given each attribute's in turn: it reads
    none, and the 0 is measured. Nothing is reported without a known user.
    """
    known = users[(users >= 0) & (users < model.n_users_)]  # a user outside has no group
    if known.size == 0:
        return {}
    own = model.sensitive_ if isinstance(model, ReadsSensitive) else None
    values: dict[str | None, tuple[float, float]] = {}
    if own is not None:
        flips = counterfactual_flip_rate(model, known, k)
        values[None] = (flips.flip_rate, flips.change)
    for attribute, y in labels.items():
        if own is None:
            flips = counterfactual_flip_rate(model, known, k, sensitive=y)  # 0 unless ReadsSensitive
            values[attribute] = (flips.flip_rate, flips.change)
        else:  # the model's own attribute, or one it never sees
            values[attribute] = values[None] if np.array_equal(own, y) else (0.0, 0.0)
    metrics = {
        "explain.counterfactual_flip_rate": max((r for r, _ in values.values()), default=0.0),
        "explain.counterfactual_change": max((c for _, c in values.values()), default=0.0),
        "explain.counterfactual_n_users": float(known.size),  # the gate's sample size for the flip rate
    }
    for attribute, (rate, change) in values.items():
        if attribute is not None:
            metrics[f"explain.counterfactual_flip_rate.{sanitize_label(attribute)}"] = rate
            metrics[f"explain.counterfactual_change.{sanitize_label(attribute)}"] = change
    return metrics


def _item_proxies(user_items: sp.csr_matrix, labels: Mapping[str, np.ndarray]) -> np.ndarray:
    found = [detect_item_proxies(user_items, y) for y in labels.values() if np.unique(y).size > 1]
    return np.unique(np.concatenate(found)) if found else np.zeros(0, dtype=np.int64)


def _pair_proxies(model: TwoStageRanker, users: np.ndarray, labels: Mapping[str, np.ndarray],
                  seed: int) -> set[str]:
    """Pair features that predict a sensitive attribute on the candidate pairs of test users."""
    warm = users[model.personalised(users)]
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(warm, size=min(_PROXY_USERS, warm.size), replace=False))
    u, _, F = model.candidate_features(sample)
    found: set[str] = set()
    for y in labels.values():
        if np.unique(y[u]).size > 1:
            found |= detect_proxies(F, y[u], model.feature_names_)
    return found


def _feature_text(model: TwoStageRanker, reference: np.ndarray,
                  excluded: set[str]) -> Callable[[Explanation], str]:
    table = dict(_FEATURE_PHRASES)
    if isinstance(model.first_stage_, Popularity):
        table.update(_POPULARITY_FIRST_STAGE)

    def text(e: Explanation) -> str:
        if e.extra.get("space") != "features":
            return explanation_text(e)  # popularity, for users without history
        values = np.asarray(e.extra["feature_values"])
        phrases = {}
        for j, name in enumerate(e.features):
            high, low = table.get(str(name), (None, None))
            phrase = high if values[j] > reference[j] else low if values[j] < reference[j] else None
            if phrase is not None:
                phrases[str(name)] = phrase
        return explanation_text(e, phrases=phrases, excluded=excluded)

    return text


def _explain_two_stage(model: TwoStageRanker, sample_users: np.ndarray, sample_ids: np.ndarray,
                       users: np.ndarray, labels: Mapping[str, np.ndarray], *, user_ids: np.ndarray,
                       item_ids: np.ndarray, config: ExplainConfig, seed: int) -> ExplainResult:
    names = list(model.feature_names_)
    shap = FeatureShapExplainer(model, random_state=seed).fit()
    shap_expl = shap.explain_rankings(sample_users, sample_ids)
    lime_by_seed = [
        FeatureLimeExplainer(model, n_samples=config.lime_samples, random_state=seed + s)
        .fit(shap.background_)
        .explain_rankings(sample_users, sample_ids)
        for s in range(config.stability_seeds)
    ]
    flat_shap = _flat(shap_expl)
    features_shap = [e for e in flat_shap if e.extra.get("space") == "features"]
    features_lime = [
        [e for e in _flat(by_seed) if e.extra.get("space") == "features"] for by_seed in lime_by_seed
    ]
    sensitive_features = [n for n in names if n.startswith(_SENSITIVE_PREFIX)]
    proxies = _pair_proxies(model, users, labels, seed)
    # reliance over every candidate pair the ranker ordered for the sampled users
    warm = sample_users[model.personalised(sample_users)]
    _, items, F = model.candidate_features(warm)
    values = shap.shap_values(F, items)[0] if items.size else None
    metrics = explainability_scores(
        explanations=flat_shap,
        score_fn=feature_deletion_score_fn(shap, features_shap) if features_shap else None,
        shap_explanations=features_shap,
        lime_explanations=features_lime[0],
        explanations_by_seed=features_lime,
        feature_shap_values=values,
        feature_names=names,
        sensitive_features=sensitive_features,
        proxy_features=proxies,
        m=config.m,
        random_state=seed,
    )
    text = _feature_text(model, shap.background_.mean(axis=0), set(sensitive_features) | proxies)
    frame = pd.DataFrame(
        _rows(shap_expl, user_ids, item_ids, text, config.m)
        + _rows(lime_by_seed[0], user_ids, item_ids, text, config.m)
    )
    explains = sorted({e.extra["explains"] for e in features_shap})
    note = (
        f"{len(sample_users)} users, feature SHAP and LIME of the two-stage ranker "
        f"({'; '.join(explains) or 'no personalised list'}); protected reliance over "
        f"{items.size} candidate pairs, sensitive features {sensitive_features}, "
        f"proxies {sorted(proxies - set(sensitive_features))}"
    )
    return ExplainResult(metrics=metrics, frame=frame, note=note,
                         summary=_summary(features_shap, str))
