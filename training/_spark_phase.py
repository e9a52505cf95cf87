"""Scoring candidates on one split with Spark: the Spark implementation of :class:`training._phase.Phase`.

The run has the in-process run's two phases (see ``training._phase``): every
candidate (every sweep value) is fitted on the training data less a validation
hold-out carved by the split's own method and scored on it; the chosen ones are
refitted on all training data and scored on test once. Here the lists and the
metrics stay in Spark; what reaches the driver is item-level (counts, factors),
group-level (the fairness report) or one number per evaluated user (the gate's
evidence vectors and the users' group labels).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from evaluation import compare_with_twin, popularity_groups_from_counts, sanitize_label
from recsys.data._spark import (
    SparkInteractions,
    SparkSplit,
    spark_leave_last_k,
    spark_random_holdout,
    spark_relevance_threshold,
    spark_time_cutoff,
)
from recsys.models._spark_als import SparkALS, SparkPopularity
from training._candidate import Candidate, twin_key
from training._evidence import EvidenceInputs, _per_user_key, gate_evidence
from training._gate import GateRules
from training._phase import twin_comparison
from training._progress import Progress
from training._schema import ExperimentConfig, LeaveLastKSplit, RandomHoldoutSplit
from training._spark_guard import guard

__all__ = ["SparkPhase", "SparkScored", "spark_split", "spark_validation_split", "user_labels"]

#: the validation hold-out's random stream (the test split's is 0), as the in-process run's ``[seed, 1]``
VALIDATION_STREAM = 1


def _cached(split: SparkSplit) -> SparkSplit:
    return SparkSplit(train=split.train.with_frame(split.train.frame.cache()),
                      test=split.test.with_frame(split.test.frame.cache()))


def spark_split(config: ExperimentConfig, data: SparkInteractions) -> SparkSplit:
    """The test split of ``config.split`` on Spark (the same semantics as in-process)."""
    cfg = config.split
    if isinstance(cfg, RandomHoldoutSplit):
        split = spark_random_holdout(data, test_fraction=cfg.test_fraction, min_train=cfg.min_train,
                                     random_state=config.seed if cfg.seed is None else cfg.seed)
    elif isinstance(cfg, LeaveLastKSplit):
        split = spark_leave_last_k(data, k=cfg.k, min_train=cfg.min_train)
    else:
        split = spark_time_cutoff(data, cutoff=cfg.cutoff, test_fraction=cfg.test_fraction)
    return _cached(spark_relevance_threshold(split, cfg.relevance_threshold))


def spark_validation_split(config: ExperimentConfig, split: SparkSplit, *, n_train: int, n_test: int) -> SparkSplit:
    """The validation hold-out carved from ``split.train`` as ``training._components.validation_split`` does.

    Random holdout: the same fraction of each user's training entries on its own
    hash stream; leave-last-k: the k most recent training entries; a time split:
    the most recent training entries, as large a share of train as test is of the
    whole (``n_train``, ``n_test``: the split's sizes).
    """
    cfg, train = config.split, split.train
    if isinstance(cfg, RandomHoldoutSplit):
        inner = spark_random_holdout(train, test_fraction=cfg.test_fraction, min_train=cfg.min_train,
                                     random_state=config.seed if cfg.seed is None else cfg.seed,
                                     stream=VALIDATION_STREAM)
    elif isinstance(cfg, LeaveLastKSplit):
        inner = spark_leave_last_k(train, k=cfg.k, min_train=cfg.min_train)
    else:
        share = cfg.test_fraction if cfg.test_fraction is not None else n_test / max(n_train + n_test, 1)
        inner = spark_time_cutoff(train, test_fraction=min(max(share, 1e-9), 1 - 1e-9))
    return _cached(spark_relevance_threshold(inner, cfg.relevance_threshold))


def user_labels(users_table: Any, sensitive: list[str], n_users: int) -> dict[str, np.ndarray]:
    """Each sensitive attribute's label per internal user index ("unknown" when missing), on the driver.

    O(users) strings per attribute: fine to ~10^8 users on a large driver; past
    that the labels would have to stay in Spark with the bootstrap.
    """
    frame = users_table.select("user", *[f"`{a}`" for a in sensitive]).toPandas()
    rows = frame["user"].to_numpy(dtype=np.int64)
    out = {}
    for attribute in sensitive:
        labels = np.full(n_users, "unknown", dtype=object)
        labels[rows] = frame[attribute].astype("string").fillna("unknown").to_numpy(dtype=object)
        out[attribute] = labels
    return out


@dataclass(frozen=True, kw_only=True)
class SparkScored:
    """One candidate scored in one phase; ``lists`` is a cached DataFrame (user, item, rank, score)."""

    candidate: Candidate
    metrics: dict[str, float]
    evaluated: Any  # evaluation._spark.SparkEvaluation: ``fairness`` is the in-process FairnessReport
    report: dict[str, Any]
    model: Any  # SparkALS | SparkPopularity
    reranker: Any
    lists: Any


class SparkPhase:
    """What the candidates of one phase share on Spark (the split, its users, the popularity baseline)."""

    def __init__(self, name: str, config: ExperimentConfig, data: SparkInteractions, split: SparkSplit, *,
                 users_table: Any, items: pd.DataFrame, labels: dict[str, np.ndarray], rules: GateRules,
                 progress: Progress, master: str) -> None:
        self.name, self.config, self.data, self.split = name, config, data, split
        self.users_table, self.items, self.labels = users_table, items, labels
        self.rules, self.progress, self.master = rules, progress, master
        self.k = config.evaluation.k
        self.test_users = split.test.frame.select("user").distinct().cache()
        self.n_users = guard(master, f"counting the {name} users", self.test_users.count)
        k = self.k
        utility = [r.metric for r in rules.parity if r.kind == "utility"]
        self.keys = sorted({_per_user_key(m, k) for m in utility}
                           | ({_per_user_key(utility[0] if utility else f"ndcg_at_{k}", k)}
                              if rules.levelling_down else set()))
        self.needs_vectors = bool(rules.parity) or rules.provider_exposure is not None
        self._baseline: Any = None
        self._protected: np.ndarray | None = None
        self._user_indices: np.ndarray | None = None
        self.twins: dict[tuple[str, str, str], Any] = {}  # the unmitigated twin's evaluation, by twin_key

    def protected_items(self) -> np.ndarray:
        """Per item: in the protected item group (popularity groups from Spark's item counts of train)."""
        if self._protected is None:
            fc = self.config.fairness
            if fc.item_group == "popularity":
                from pyspark.sql import functions as F

                rows = guard(self.master, "counting the items' training interactions", lambda: (
                    self.split.train.frame.filter(F.col("value") != 0).groupBy("item").count().toPandas()))
                counts = np.zeros(self.data.n_items, dtype=np.int64)
                counts[rows["item"].to_numpy(dtype=np.int64)] = rows["count"].to_numpy(dtype=np.int64)
                groups = popularity_groups_from_counts(counts, head_share=fc.head_share)
            else:
                groups = self.items[fc.item_group].astype("string").fillna("unknown").to_numpy(dtype=object)
            self._protected = groups == fc.protected_group
        return self._protected

    def user_indices(self) -> np.ndarray:
        """This phase's users, ascending (O(users) integers on the driver; collected once)."""
        if self._user_indices is None:
            self._user_indices = guard(self.master, f"collecting the {self.name} users", lambda: np.sort(
                self.test_users.toPandas()["user"].to_numpy(dtype=np.int64)))
        return self._user_indices

    def tag(self, name: str) -> str:
        return f"[{name}]" if self.name == "test" else f"[{name} | validation]"

    def _evaluate(self, lists: Any, *, sensitive: list[str], category: str | None, per_user: list[str] | None) -> Any:
        from evaluation._spark import spark_evaluate

        fc, data = self.config.fairness, self.data
        return spark_evaluate(
            lists=lists, users=self.test_users, relevant=self.split.test.frame, train=self.split.train.frame,
            users_table=self.users_table, items_table=self.items, n_users=data.n_users, n_items=data.n_items,
            k=self.k, sensitive=sensitive, item_group=fc.item_group, protected_group=fc.protected_group,
            item_category=category, head_share=fc.head_share,
            amplification_weighting=fc.amplification_weighting, n_boot=fc.n_boot if sensitive else None,
            random_state=self.config.seed, per_user=per_user)

    def baseline(self, users: np.ndarray) -> dict[str, np.ndarray] | None:
        """The popularity ranking's per-user metrics on this phase's users (segment parity), computed once."""
        if not any(r.segment for r in self.rules.parity):
            return None
        if self._baseline is None:
            lists = SparkPopularity().fit(self.split.train).recommend(self.test_users, self.k)
            self._baseline = guard(self.master, "ranking the popularity baseline", lambda: self._evaluate(
                lists, sensitive=[], category=None, per_user=self.keys).vectors)
        if not np.array_equal(self._baseline.users, users):
            raise ValueError("the popularity baseline was evaluated on other users than the candidate")
        return self._baseline.per_user

    def _recommend(self, spec: Any) -> tuple[Any, Any, Any, Any]:
        """The fitted model, the lists, the cached first-stage candidates (re-ranked specs) and the re-ranker.

        Users without training entries get the popularity list. A post-processing
        step re-ranks each user's ``n_candidates`` first-stage list per partition
        (``recsys.rerank._spark``).
        """
        train, users, k = self.split.train, self.test_users, self.k
        step = spec.steps[-1] if spec.steps else None
        n = k if step is None else max(step.n_candidates, k)
        popularity = SparkPopularity().fit(train)
        if spec.type == "popularity":
            model, candidates = popularity, popularity.recommend(users, n)
            return self._reranked(spec, model, candidates, train)
        if spec.input == "binary":  # as in-process: ALS sees 1 per entry unless the spec asks for the ratings
            from pyspark.sql import functions as F

            train = train.with_frame(train.frame.withColumn("value", F.lit(1.0)))
        p = spec.params
        model = SparkALS(factors=p.factors, regularization=p.regularization, alpha=p.alpha,
                         iterations=p.iterations,
                         random_state=self.config.seed if p.random_state is None else p.random_state).fit(train)
        warm = users.join(train.frame.select("user").distinct(), "user", "left_semi")
        cold = users.join(warm, "user", "left_anti")
        candidates = model.recommend(warm, n).unionByName(popularity.recommend(cold, n))
        return self._reranked(spec, model, candidates, train)

    def _reranked(self, spec: Any, model: Any, candidates: Any, train: SparkInteractions) -> tuple[Any, Any, Any, Any]:
        if not spec.steps:
            return model, candidates.cache(), None, None
        from pyspark.sql import functions as F

        from recsys.rerank import fit_spark_reranker

        step = spec.steps[-1].model_dump()
        if "user_attribute" in step and step["user_attribute"] is None:  # as in-process: the first sensitive one
            step["user_attribute"] = self.config.fairness.sensitive[0]
        fitted = fit_spark_reranker(
            step, interactions=train.frame.select("user", "item", "value"), items=self.items,
            users=self.users_table,
            protected_items=self.protected_items() if step["kind"] == "fair_share" else None,
            candidates=model.recommend, k=self.k, seed=self.config.seed)
        candidates = candidates.cache()  # re-ranked, and their top-k is the twin: computed once
        return model, fitted.rerank(candidates, self.k).cache(), candidates, fitted.reranker

    def score(self, cand: Candidate) -> SparkScored:
        """Fit, rank, evaluate and gather the gate's evidence, in Spark."""
        spec, master, fc = cand.spec, self.master, self.config.fairness
        t0 = time.perf_counter()
        label = " + ".join([spec.type] + [step.kind for step in spec.steps])
        with self.progress.step(f"{self.tag(cand.name)} fitting {label} and ranking top-{self.k} on Spark"):
            model, lists, candidates, reranker = guard(master, f"fitting {cand.name}", lambda: self._recommend(spec))
            guard(master, f"ranking for {cand.name}", lists.count)
        t1 = time.perf_counter()
        with self.progress.step(f"{self.tag(cand.name)} evaluating on Spark"):
            evaluated = guard(master, f"evaluating {cand.name}", lambda: self._evaluate(
                lists, sensitive=fc.sensitive, category=fc.amplification_attribute,
                per_user=self.keys if self.needs_vectors else None))
            vectors = evaluated.vectors
            base = None if vectors is None else self.baseline(vectors.users)
        t2 = time.perf_counter()
        metrics = {**evaluated.metrics, "fit_recommend_seconds": t1 - t0, "evaluate_seconds": t2 - t1}
        report = evaluated.fairness.to_json()
        twin = None
        if candidates is None:
            self.twins.setdefault(twin_key(spec), evaluated)
        else:
            twin = self._twin(cand, candidates.filter(f"rank <= {int(self.k)}"))
            candidates.unpersist()
            comparison, changes = compare_with_twin(mitigated=evaluated.metrics, twin=twin.metrics,
                                                    mitigated_report=evaluated.fairness, twin_report=twin.fairness)
            metrics.update(comparison)
            report["twin_comparison"] = twin_comparison(changes)
        if vectors is not None:
            relevant_key = f"relevant_share.{sanitize_label(fc.item_group)}.{sanitize_label(fc.protected_group)}"
            metrics.update(gate_evidence(EvidenceInputs(
                users=vectors.users, per_user=vectors.per_user, labels=self.labels, k=self.k,
                seed=self.config.seed, baseline=base, outcome=vectors.outcome, exposure=vectors.exposure,
                twin=None if twin is None or twin.vectors is None else twin.vectors.per_user,
                relevant_share=metrics.get(relevant_key)), self.rules))
        return SparkScored(candidate=cand, metrics=metrics, evaluated=evaluated, report=report, model=model,
                           reranker=reranker, lists=lists)

    def _twin(self, cand: Candidate, first: Any) -> Any:
        """The unmitigated twin's evaluation: the first stage's own top-k lists (computed once per twin)."""
        key = twin_key(cand.spec)
        if key not in self.twins:
            fc = self.config.fairness
            self.twins[key] = guard(self.master, f"evaluating {cand.name}'s unmitigated twin", lambda: self._evaluate(
                first, sensitive=fc.sensitive, category=fc.amplification_attribute,
                per_user=self.keys if self.needs_vectors else None))
        twin = self.twins[key]
        if twin.vectors is not None and self._baseline is not None and not np.array_equal(
                twin.vectors.users, self._baseline.users):
            raise ValueError("the twin was evaluated on other users than the candidate")
        return twin
