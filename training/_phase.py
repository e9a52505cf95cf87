"""Scoring candidates on one split: fit on its train side, rank, evaluate on its held-out side.

A run has two phases on two splits made by the same method:

* **validation**: every candidate (every sweep value) is fitted on the training
  data less a validation hold-out and scored on that hold-out. Everything that
  chooses (a sweep's value, ``gate.rank_by``) reads these numbers.
* **test**: the chosen candidates are refitted on all training data and scored
  on the test split once, for the report and the gate.

A :class:`Phase` holds what every candidate of a phase shares (matrices, item
groups, evaluation inputs, fitted models for reuse, unmitigated twins, the
popularity baseline) and turns a candidate into a :class:`Scored`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from evaluation import compare_with_twin, popularity_groups, popularity_share
from recsys.data import Dataset, Split
from recsys.models import Recommender
from training._candidate import Candidate, FairnessContext, fit_candidate, recommend_candidate, twin_key
from training._components import build_model
from training._evaluate import Evaluated, EvaluationInputs, evaluate_lists
from training._evidence import EvidenceInputs, gate_evidence
from training._gate import GateRules
from training._progress import Progress
from training._schema import ExperimentConfig

__all__ = ["Phase", "Scored", "twin_comparison"]


@dataclass(frozen=True, kw_only=True)
class Scored:
    """One candidate scored in one phase."""

    candidate: Candidate
    metrics: dict[str, float]
    evaluated: Evaluated
    report: dict[str, Any]
    model: Recommender
    reranker: Any
    ids: np.ndarray
    scores: np.ndarray


def _items_with_popularity(dataset: Dataset, train: sp.csr_matrix, head_share: float) -> pd.DataFrame:
    items = dataset.items.copy()
    items["popularity"] = popularity_share(train)
    items["popularity_group"] = popularity_groups(train, head_share=head_share)
    return items


def twin_comparison(changes: list[Any]) -> list[dict[str, Any]]:
    return [
        {
            "attribute": c.attribute, "metric": c.metric, "twin": dict(c.twin),
            "mitigated": dict(c.mitigated), "best_group": c.best_group,
            "worst_group": c.worst_group, "gap_twin": c.gap_twin,
            "gap_mitigated": c.gap_mitigated, "levelling_down": c.levelling_down,
        }
        for c in changes
    ]


class Phase:
    """The state the candidates of one phase share."""

    def __init__(self, name: str, config: ExperimentConfig, dataset: Dataset, split: Split,
                 rules: GateRules, progress: Progress) -> None:
        self.name, self.config, self.dataset, self.split = name, config, dataset, split
        self.rules, self.progress = rules, progress
        self.k = config.evaluation.k
        train = split.train
        self.X = {"binary": train.binary(), "ratings": train.matrix}
        fc = config.fairness
        self.items = _items_with_popularity(dataset, self.X["binary"], fc.head_share)
        group_col = "popularity_group" if fc.item_group == "popularity" else fc.item_group
        item_group = self.items[group_col].astype("string").fillna("unknown").to_numpy(dtype=object)
        self.ctx = FairnessContext(dataset=dataset, fairness=fc, protected_items=item_group == fc.protected_group,
                                   seed=config.seed, k=self.k)
        self.users = np.flatnonzero(np.diff(split.test.matrix.indptr) > 0)
        self.inputs = EvaluationInputs(
            users=self.users, relevant=split.test.matrix, train=self.X["binary"], users_table=dataset.users,
            items_table=self.items, item_category=pd.factorize(dataset.items[fc.amplification_attribute])[0],
            fairness=fc, k=self.k, seed=config.seed,
        )
        self.labels = {a: self.ctx.user_labels(a, "fairness.sensitive") for a in fc.sensitive}
        self.twins: dict[tuple[str, str, str], Evaluated] = {}
        self.fitted: dict[tuple[str, ...], Recommender] = {}
        self._baseline: dict[str, np.ndarray] | None = None

    def tag(self, name: str) -> str:
        return f"[{name}]" if self.name == "test" else f"[{name} | validation]"

    def baseline(self) -> dict[str, np.ndarray] | None:
        """The popularity ranking's per-user metrics on this phase's users (for segment parity)."""
        if not any(r.segment for r in self.rules.parity):
            return None
        if self._baseline is None:
            model = build_model("popularity", {}, seed=self.config.seed).fit(self.X["binary"])
            ids, _ = model.recommend(self.users, self.k)
            self._baseline = dict(evaluate_lists(ids, self.inputs).relevance.per_user)
        return self._baseline

    def _twin(self, cand: Candidate, first_stage: tuple[np.ndarray, np.ndarray] | None) -> Evaluated:
        spec = cand.spec
        key = twin_key(spec)
        if key not in self.twins:
            if first_stage is not None and len(spec.steps) == 1:  # a re-ranker's twin is its first stage
                ids = first_stage[0]
            else:
                with self.progress.step(f"{self.tag(cand.name)} fitting the unmitigated twin"):
                    plain = spec.model_copy(update={"mitigation": None})
                    twin, _ = fit_candidate(plain, self.X[spec.input], self.ctx, fitted=self.fitted)
                    ids, _ = twin.recommend(self.users, self.k)
            self.twins[key] = evaluate_lists(ids, self.inputs)
        return self.twins[key]

    def score(self, cand: Candidate) -> Scored:
        """Fit, rank, evaluate, compare with the twin and gather the gate's evidence."""
        spec = cand.spec
        t0 = time.perf_counter()
        label = " + ".join([spec.type] + [step.kind for step in spec.steps])
        with self.progress.step(f"{self.tag(cand.name)} fitting {label}"):
            model, reranker = fit_candidate(spec, self.X[spec.input], self.ctx, fitted=self.fitted)
        t1 = time.perf_counter()
        with self.progress.step(f"{self.tag(cand.name)} recommending top-{self.k} for {self.users.size} users"):
            ids, scores, first_stage = recommend_candidate(model, reranker, spec, self.users, self.k)
        t2 = time.perf_counter()
        with self.progress.step(f"{self.tag(cand.name)} evaluating"):
            evaluated = evaluate_lists(ids, self.inputs)
        t3 = time.perf_counter()
        metrics = dict(evaluated.metrics)
        metrics.update(fit_seconds=t1 - t0, recommend_seconds=t2 - t1, evaluate_seconds=t3 - t2)
        report = evaluated.fairness.to_json()
        twin: Evaluated | None = None
        if spec.mitigation is None:
            self.twins.setdefault(twin_key(spec), evaluated)
        else:
            twin = self._twin(cand, first_stage)
            comparison, changes = compare_with_twin(mitigated=evaluated.metrics, twin=twin.metrics,
                                                    mitigated_report=evaluated.fairness,
                                                    twin_report=twin.fairness)
            metrics.update(comparison)
            report["twin_comparison"] = twin_comparison(changes)
        fc = self.config.fairness
        relevant_key = f"relevant_share.{_safe(fc.item_group)}.{_safe(fc.protected_group)}"
        evidence = gate_evidence(EvidenceInputs(
            users=self.users, ids=ids, per_user=evaluated.relevance.per_user, labels=self.labels,
            protected_items=self.ctx.protected_items, k=self.k, seed=self.config.seed,
            baseline=self.baseline(), twin=None if twin is None else twin.relevance.per_user,
            relevant_share=metrics.get(relevant_key),
        ), self.rules)
        metrics.update(evidence)
        return Scored(candidate=cand, metrics=metrics, evaluated=evaluated, report=report, model=model,
                      reranker=reranker, ids=ids, scores=scores)


def _safe(label: str) -> str:
    from evaluation import sanitize_label

    return sanitize_label(label)
