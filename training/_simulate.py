"""``fairrec simulate``: feed a candidate's own recommendations back as training data, round after round.

Round 0 is a normal run: the config's data, split and candidate, fitted on the
training split and evaluated on the held-out test exactly as ``fairrec run``
does. Each later round:

1. every user with a training history gets the candidate's top-``k`` list;
2. a seeded **user-choice model** picks from it: the item at rank ``r`` (from
   1) is chosen, independently of the others, with probability
   ``position(r) * (p_relevant if the item is in the user's held-out
   relevance else p_other)``, ``position(r) = 1 / log2(r + 1)`` (the same
   discount as DCG and exposure);
3. the choices join the training data (value 1) and the candidate is refitted
   (EASE is closed-form; every refit starts from scratch).

Per round: nDCG@k on the held-out test (a chosen test item is training data
from then on, so it is no longer counted as held-out: relevance is the test
items the user has not chosen yet), the per-group nDCG gap, the protected item
group's exposure share, bias amplification (the lists' category mix per user
group against round 0's training mix: the item table, popularity groups and
training mix of round 0 are kept fixed), catalogue coverage, intra-list
diversity and per-user diversity (entropy of the categories of each user's
training profile: filter-bubble narrowing shows as a falling entropy).

The amplification rate is the least-squares slope of the gap over rounds, one
per seed, with a t interval over seeds (:func:`amplification_rate`);
:func:`feedback_loop_check` turns it into a gate verdict.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy import stats

from evaluation import hit_matrix, log_rank_weight, popularity_groups, popularity_share, sanitize_label
from recsys.data import Dataset, Split
from recsys.errors import FairrecError
from training._candidate import FairnessContext, expand_sweeps, fit_candidate, recommend_candidate, twin_key
from training._components import load_dataset, split_dataset
from training._evaluate import EvaluationInputs, evaluate_lists
from training._schema import ExperimentConfig

__all__ = ["AmplificationRate", "ChoiceModel", "FeedbackLoopCheck", "SimulationResult", "amplification_rate",
           "feedback_loop_check", "mitigation_over_rounds", "run_simulation", "tracked_metrics"]


@dataclass(frozen=True, kw_only=True)
class ChoiceModel:
    """Choice probability ``position(r) * (p_relevant or p_other)`` (module docstring)."""

    p_relevant: float = 0.5
    p_other: float = 0.02

    def __post_init__(self) -> None:
        for name in ("p_relevant", "p_other"):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise FairrecError(f"simulate --{name.replace('_', '-')}: expected a probability in [0, 1], got {value!r}")

    def choose(self, ids: np.ndarray, users: np.ndarray, relevant: sp.csr_matrix,
               rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(user, item) pairs chosen from the lists ``ids`` (rows aligned with ``users``)."""
        hits = hit_matrix(ids, users=users, relevant=relevant)
        p = log_rank_weight(ids.shape[1])[None, :] * np.where(hits, self.p_relevant, self.p_other)
        chosen = (rng.random(ids.shape) < p) & (ids >= 0)
        rows, cols = np.nonzero(chosen)
        return users[rows], ids[rows, cols]


def tracked_metrics(config: ExperimentConfig) -> dict[str, str]:
    """Short name -> flat metric key of what each round reports."""
    k, fc = config.evaluation.k, config.fairness
    a = sanitize_label(fc.sensitive[0])
    group = "popularity" if fc.item_group == "popularity" else fc.item_group
    return {
        "ndcg": f"ndcg_at_{k}",
        "utility_gap": f"{a}.ndcg_at_{k}.difference",
        "parity_gap": f"demographic_parity_difference.{a}",  # share of lists holding a protected item
        "protected_exposure": f"exposure_share.{sanitize_label(group)}.{sanitize_label(fc.protected_group)}",
        "bias_amplification": f"bias_amplification.{a}.category.gap",
        "coverage": f"coverage_at_{k}",
        "intra_list_diversity": f"diversity_at_{k}",
    }


@dataclass(frozen=True, kw_only=True)
class SimulationResult:
    """Per (candidate, seed, round) metrics in ``rounds``; the metrics of round 0 in full."""

    rounds: pd.DataFrame  # candidate, seed, round, n_chosen, then one column per tracked metric
    round0: dict[str, dict[str, float]] = field(default_factory=dict)  # candidate -> all round-0 metrics
    twins: dict[str, str] = field(default_factory=dict)  # mitigated candidate -> its unmitigated twin


def _profile_entropy(X: sp.csr_matrix, category: np.ndarray) -> float:
    """Mean over users with a history of the entropy (bits) of their training items' categories."""
    onehot = sp.csr_matrix((np.ones(category.size), (np.arange(category.size), category)))
    counts = (X.astype(bool).astype(np.float64) @ onehot).toarray()
    has = counts.sum(axis=1) > 0
    return float(stats.entropy(counts[has], base=2, axis=1).mean())


def _add(X: sp.csr_matrix, users: np.ndarray, items: np.ndarray) -> sp.csr_matrix:
    """``X`` with value 1 at the chosen (user, item) pairs it does not hold yet."""
    pairs = np.unique(users.astype(np.int64) * X.shape[1] + items)
    u, i = pairs // X.shape[1], pairs % X.shape[1]
    new = np.asarray(X[u, i]).ravel() == 0
    extra = sp.csr_matrix((np.ones(int(new.sum()), dtype=X.dtype), (u[new], i[new])), shape=X.shape)
    return (X + extra).tocsr()


def _remove(M: sp.csr_matrix, users: np.ndarray, items: np.ndarray) -> sp.csr_matrix:
    """``M`` without its stored entries at the (user, item) pairs."""
    taken = sp.csr_matrix((np.ones(users.size), (users, items)), shape=M.shape).astype(bool)
    out = (M - M.multiply(taken)).tocsr()
    out.eliminate_zeros()
    return out


class _World:
    """What stays fixed over rounds: data, split, item table, protected items, evaluation inputs."""

    def __init__(self, config: ExperimentConfig, dataset: Dataset, split: Split) -> None:
        fc, k = config.fairness, config.evaluation.k
        self.config, self.dataset, self.k = config, dataset, k
        self.X0 = {"binary": split.train.binary(), "ratings": split.train.matrix}
        items = dataset.items.copy()
        items["popularity"] = popularity_share(self.X0["binary"])
        items["popularity_group"] = popularity_groups(self.X0["binary"], head_share=fc.head_share)
        self.items = items
        col = "popularity_group" if fc.item_group == "popularity" else fc.item_group
        labels = items[col].astype("string").fillna("unknown").to_numpy(dtype=object)
        self.ctx = FairnessContext(dataset=dataset, fairness=fc, protected_items=labels == fc.protected_group,
                                   seed=config.seed, k=k)
        self.test = split.test.matrix.tocsr()
        self.category = pd.factorize(dataset.items["category"])[0].astype(np.int64)
        self.all_users = np.flatnonzero(np.diff(self.X0["binary"].indptr) > 0)

    def inputs(self, remaining: sp.csr_matrix) -> EvaluationInputs:
        users = np.flatnonzero(np.diff(remaining.indptr) > 0)
        return EvaluationInputs(users=users, relevant=remaining, train=self.X0["binary"],
                                users_table=self.dataset.users, items_table=self.items,
                                item_category=pd.factorize(self.dataset.items["category"])[0],
                                fairness=self.config.fairness, k=self.k, seed=self.config.seed)


def _simulate_one(world: _World, spec: Any, rounds: int, seed: int, choice: ChoiceModel,
                  names: dict[str, str]) -> tuple[list[dict[str, Any]], dict[str, float]]:
    rng = np.random.default_rng(seed)
    X = {kind: m.copy() for kind, m in world.X0.items()}
    remaining = world.test.copy()
    rows, round0 = [], {}
    for r in range(rounds + 1):
        model, reranker = fit_candidate(spec, X[spec.input], world.ctx)
        inputs = world.inputs(remaining)
        ids, _, _ = recommend_candidate(model, reranker, spec, inputs.users, world.k)
        metrics = evaluate_lists(ids, inputs).metrics
        if r == 0:
            round0 = dict(metrics)
        row: dict[str, Any] = {"candidate": spec.name, "seed": seed, "round": r}
        row.update({short: float(metrics.get(key, np.nan)) for short, key in names.items()})
        row["profile_entropy"] = _profile_entropy(X["binary"], world.category)
        if r < rounds:
            all_ids, _, _ = recommend_candidate(model, reranker, spec, world.all_users, world.k)
            users, items = choice.choose(all_ids, world.all_users, world.test, rng)
            row["n_chosen"] = int(users.size)
            for kind in X:
                X[kind] = _add(X[kind], users, items)
            remaining = _remove(remaining, users, items)
        else:
            row["n_chosen"] = 0
        rows.append(row)
    return rows, round0


def run_simulation(config: ExperimentConfig, *, rounds: int, seeds: Sequence[int],
                   choice: ChoiceModel | None = None, progress: Any = None) -> SimulationResult:
    """Every candidate of ``config``, ``rounds`` rounds after round 0, once per choice seed."""
    if rounds < 1:
        raise FairrecError(f"simulate --rounds: expected at least 1, got {rounds!r}")
    if not seeds:
        raise FairrecError("simulate --seeds: expected at least one seed")
    if config.consent.store is not None:
        raise FairrecError("simulate: consent.store is not supported (set it to null for a simulation)")
    choice = choice or ChoiceModel()
    dataset = load_dataset(config.data, seed=config.seed)
    split = split_dataset(config.split, dataset, seed=config.seed)
    world = _World(config, dataset, split)
    names = tracked_metrics(config)
    rows, round0 = [], {}
    candidates = expand_sweeps(list(config.models))
    plain = {twin_key(c.spec): c.name for c in candidates if c.spec.mitigation is None}
    twins = {c.name: plain[twin_key(c.spec)] for c in candidates
             if c.spec.mitigation is not None and twin_key(c.spec) in plain}
    for cand in candidates:
        for seed in seeds:
            if progress is not None:
                progress.info(f"  simulating {cand.name}, choice seed {seed}: {rounds} rounds")
            got, first = _simulate_one(world, cand.spec, rounds, int(seed), choice, names)
            rows += got
            round0.setdefault(cand.name, first)
    return SimulationResult(rounds=pd.DataFrame(rows), round0=round0, twins=twins)


@dataclass(frozen=True, kw_only=True)
class AmplificationRate:
    """Slope of a metric per round: mean over seeds with a t interval (one seed: the regression's)."""

    metric: str
    slope: float
    low: float
    high: float
    n_seeds: int
    per_seed: tuple[float, ...]
    confidence: float


def amplification_rate(rounds: pd.DataFrame, candidate: str, *, metric: str = "utility_gap",
                       confidence: float = 0.95) -> AmplificationRate:
    """Least-squares slope of ``metric`` against the round, per seed (``scipy.stats.linregress``)."""
    part = rounds[rounds["candidate"] == candidate]
    if part.empty:
        raise FairrecError(f"candidate: {candidate!r} is not in the simulation; have {sorted(set(rounds['candidate']))}")
    fits = [stats.linregress(g["round"], g[metric]) for _, g in part.groupby("seed") if g[metric].notna().all()]
    if not fits:
        nan = float("nan")
        return AmplificationRate(metric=metric, slope=nan, low=nan, high=nan, n_seeds=0, per_seed=(),
                                 confidence=confidence)
    slopes = np.array([f.slope for f in fits])
    if slopes.size == 1:
        n = part["round"].nunique()
        half = float(stats.t.ppf(0.5 + confidence / 2, max(n - 2, 1)) * fits[0].stderr)
    else:
        half = float(stats.t.ppf(0.5 + confidence / 2, slopes.size - 1) * slopes.std(ddof=1) / np.sqrt(slopes.size))
    mean = float(slopes.mean())
    return AmplificationRate(metric=metric, slope=mean, low=mean - half, high=mean + half, n_seeds=int(slopes.size),
                             per_seed=tuple(float(s) for s in slopes), confidence=confidence)


@dataclass(frozen=True, kw_only=True)
class FeedbackLoopCheck:
    """The gate's view of an amplification rate against a ceiling on growth per round."""

    passed: bool
    verdict: str  # "pass", "fail" or "inconclusive"
    rate: AmplificationRate
    max_slope: float
    reason: str


def feedback_loop_check(rate: AmplificationRate, *, max_slope: float) -> FeedbackLoopCheck:
    """"The gap may not grow by more than ``max_slope`` per round".

    ``fail`` when the whole interval is above ``max_slope`` (it grows faster,
    beyond sampling noise over seeds); ``pass`` when the whole interval is at
    or below it; ``inconclusive`` otherwise, which does not fail the gate
    (``passed`` is True) but says so.

    Examples
    --------
    >>> r = AmplificationRate(metric="utility_gap", slope=0.01, low=0.006, high=0.014, n_seeds=3,
    ...                       per_seed=(0.008, 0.01, 0.012), confidence=0.95)
    >>> feedback_loop_check(r, max_slope=0.005).verdict, feedback_loop_check(r, max_slope=0.02).verdict
    ('fail', 'pass')
    """
    if not np.isfinite(rate.slope):
        return FeedbackLoopCheck(passed=False, verdict="fail", rate=rate, max_slope=max_slope,
                                 reason=f"no finite {rate.metric} over the rounds: nothing to judge")
    where = (f"{rate.metric} slope {rate.slope:+.5f} per round, {rate.confidence:.0%} interval "
             f"[{rate.low:+.5f}, {rate.high:+.5f}] over {rate.n_seeds} seed(s); ceiling {max_slope:+.5f}")
    if rate.low > max_slope:
        return FeedbackLoopCheck(passed=False, verdict="fail", rate=rate, max_slope=max_slope,
                                 reason=f"grows faster than allowed: {where}")
    if rate.high <= max_slope:
        return FeedbackLoopCheck(passed=True, verdict="pass", rate=rate, max_slope=max_slope, reason=where)
    return FeedbackLoopCheck(passed=True, verdict="inconclusive", rate=rate, max_slope=max_slope,
                             reason=f"interval straddles the ceiling: {where}")


def mitigation_over_rounds(result: SimulationResult, *, metric: str = "utility_gap",
                           hold_share: float = 0.5) -> list[dict[str, Any]]:
    """For each mitigated candidate with an unmitigated twin: does its effect on ``metric`` hold?

    The effect at a round is the twin's mean (over seeds) minus the mitigated
    candidate's. The mitigation **holds** when the effect at the last round is
    at least ``hold_share`` of its effect at round 0, **decays** when it is
    less, and has **no effect** when the round-0 effect is not positive.
    """
    means = result.rounds.groupby(["candidate", "round"])[metric].mean()
    out = []
    for mitigated, twin in result.twins.items():
        effect = (means.loc[twin] - means.loc[mitigated]).sort_index()
        first, last = float(effect.iloc[0]), float(effect.iloc[-1])
        if not np.isfinite(first) or first <= 0:
            verdict = "no effect at round 0"
        else:
            verdict = "holds" if last >= hold_share * first else "decays"
        out.append({"candidate": mitigated, "twin": twin, "metric": metric, "effect_round0": first,
                    "effect_last": last, "rounds": int(effect.index.max()), "verdict": verdict,
                    "effect_by_round": [float(x) for x in effect]})
    return out
