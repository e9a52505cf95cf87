"""What a chosen candidate of a Spark run leaves behind: the in-process :class:`Recorder` with Spark's inputs.

The folder, MLflow child run, gate decision (recomputable: rules fingerprint,
champion, bundle hash), model card and plots are the in-process run's; what
differs is where the numbers come from:

* the lists are written by Spark as Parquet parts (``recommendations.parquet/``);
* the servable bundle holds the Spark model's factors (ALS) or item counts
  (popularity) in fairrec's in-process classes, so ``fairrec serve``,
  ``mlflow.pyfunc`` and the registry treat it as any other bundle. The bundle
  format stores every user's training history for exclusion and explanations,
  so the training matrix comes to the driver here, once per run, streamed from
  Parquet parts Spark writes into the run's folder (``recsys.data.stream_matrix``:
  the driver holds the matrix, 8 bytes per entry, never the frame);
* explanations are computed for a seeded sample of ``explain.n_users`` test users
  from that servable model: only the sample's lists are collected.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recsys.data import Interactions, stream_matrix
from recsys.data._spark import SparkInteractions
from recsys.models import Popularity
from recsys.models._spark_als import SparkALS, als_serving_model
from recsys.serving import NotServableError, save_bundle
from training._explain import explain_candidate
from training._promotion import Champion
from training._pyfunc import add_pyfunc_flavor
from training._record import Recorder
from training._schema import ExperimentConfig
from training._spark_guard import guard
from training._spark_phase import SparkPhase, SparkScored, user_labels
from training._tracking import Tracker

__all__ = ["SparkRecorder", "external_ids"]


def external_ids(frame: Any, data: SparkInteractions) -> Any:
    """``frame`` (internal ``user``, ``item``) with the external ``user_id``, ``item_id`` instead."""
    cols = ["user_id", "item_id"] + [c for c in frame.columns if c not in ("user", "item")]
    return frame.join(data.user_vocab, "user").join(data.item_vocab, "item").select(*cols)


class SparkRecorder(Recorder):
    """Writes a Spark-scored candidate's outputs and child run (see the module docstring)."""

    def __init__(self, config: ExperimentConfig, phase: SparkPhase, tracker: Tracker | None, parent: str | None,
                 champion: Champion | None, root: Path, *, user_ids: np.ndarray | None, item_ids: np.ndarray,
                 stats: dict[str, int]) -> None:
        super().__init__(config, phase, tracker, parent, champion, root)  # type: ignore[arg-type]
        self.spark_phase = phase
        self.user_ids, self.item_ids, self.stats = user_ids, item_ids, stats
        self._train: Any = None  # the training Interactions on the driver (once, for every bundle)
        self._served: dict[str, Any] = {}

    def _training(self) -> Any:
        if self._train is None:
            phase = self.spark_phase
            self._train = guard(phase.master, "streaming the training matrix for the bundle", self._stream)
        return self._train

    def _stream(self) -> Interactions:
        train = self.spark_phase.split.train
        user_ids = self.user_ids
        if user_ids is None:  # a table read by Spark: the vocabulary (O(users) ids) comes over once
            user_ids = train.user_vocab.orderBy("user").toPandas()["user_id"].to_numpy()
        return Interactions(matrix=stream_matrix(train, self.root / ".training-matrix"), user_ids=user_ids,
                            item_ids=self.item_ids, has_ratings=train.has_ratings)

    def _write_lists(self, scored: SparkScored, out: Path) -> None:  # type: ignore[override]
        phase = self.spark_phase
        guard(phase.master, f"writing {scored.candidate.name}'s lists", lambda: external_ids(
            scored.lists, phase.data).write.parquet(str(out / "recommendations.parquet")))

    def _data_stats(self) -> dict[str, int]:
        s = self.stats
        return {"users": s["n_users"], "items": s["n_items"], "train interactions": s["n_train"],
                "test interactions": s["n_test"], "test users": s["n_test_users"]}

    def _save_bundle(self, name: str, scored: SparkScored, spec: Any,  # type: ignore[override]
                     directory: Path) -> tuple[bool, str]:
        train = self._training()
        matrix = train.matrix if spec.input == "ratings" else train.binary()  # what the model was fitted on
        served = (als_serving_model(scored.model, matrix) if isinstance(scored.model, SparkALS)
                  else Popularity(unknown_users="popular").fit(matrix))
        self._served[name] = served
        reranker = None if not spec.steps else self._serving_reranker(spec.steps[-1], matrix, scored.reranker)
        n_candidates = self.phase.k if reranker is None else max(spec.steps[-1].n_candidates, self.phase.k)
        try:
            save_bundle(directory, name=name, model=served, reranker=reranker, n_candidates=n_candidates,
                        user_ids=train.user_ids, item_ids=train.item_ids, items=self.spark_phase.items)
        except NotServableError as exc:
            return False, str(exc)
        add_pyfunc_flavor(directory, k=self.phase.k)
        return True, "saved as a fairrec bundle (from the Spark model)"

    def _serving_reranker(self, step: Any, matrix: Any, fitted: Any) -> Any:
        """The step's in-process re-ranker fitted on the collected training matrix, for the bundle.

        The same fit as in-process (``training._candidate``), so serving re-ranks each list
        as Spark did (``tests/spark/test_spark_rerank.py``: equal lists per re-ranker).
        ``category_share``'s offsets are item-level and were fitted on the driver from the
        Spark lists: the bundle keeps that fit (``fitted``), for every user.
        """
        from recsys.rerank import CalibratedReranker, FairShareReranker, UserGroupBlendReranker

        phase = self.spark_phase
        if step.kind == "category_share":
            served = copy.copy(fitted)
            served.n_users_ = matrix.shape[0]
            return served
        if step.kind == "fair_share":
            return FairShareReranker(strength=step.strength, alpha=step.alpha).fit(
                matrix, protected_items=phase.protected_items())
        if step.kind == "calibration":
            codes = pd.factorize(phase.items[step.item_attribute].astype("string").fillna("unknown"))[0]
            return CalibratedReranker(strength=step.strength, smoothing=step.smoothing).fit(
                matrix, item_category=codes.astype(np.int64))
        attribute = step.user_attribute or self.config.fairness.sensitive[0]
        labels = phase.labels.get(attribute)
        if labels is None:
            labels = guard(phase.master, "collecting the users' group labels", lambda: user_labels(
                phase.users_table, [attribute], phase.data.n_users))[attribute]
        return UserGroupBlendReranker(strength=step.strength).fit(matrix, user_group=labels == step.group)

    def _explain(self, scored: SparkScored) -> Any:  # type: ignore[override]
        phase, k = self.spark_phase, self.phase.k
        users, ids = guard(phase.master, f"collecting the lists to explain for {scored.candidate.name}",
                           lambda: _sampled_lists(phase, scored.lists, self.config.explain.n_users,
                                                  self.config.seed, k))
        train = self._training()
        return explain_candidate(
            self._served[scored.candidate.name], ids, users, user_ids=train.user_ids, item_ids=train.item_ids,
            titles=self._titles, sensitive={a: phase.labels[a] for a in self._explained_attributes},
            config=self.config.explain, seed=self.config.seed)


def _sampled_lists(phase: SparkPhase, lists: Any, n: int, seed: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded sample of ``n`` test users (ascending) and their top-``k`` lists, ``-1``-padded.

    The test users' indices are collected once per phase (O(users) integers, as
    the gate's vectors are); only the sample's lists are.
    """
    from pyspark.sql import functions as F

    everyone = phase.user_indices()
    rng = np.random.default_rng(seed)
    users = np.sort(everyone[rng.choice(everyone.size, size=min(n, everyone.size), replace=False)])
    rows = (lists.filter(F.col("user").isin([int(u) for u in users])).select("user", "item", "rank")
            .toPandas())
    ids = np.full((users.size, k), -1, dtype=np.int64)
    position = pd.Series(np.arange(users.size), index=users)
    keep = rows["rank"].to_numpy() <= k
    ids[position[rows["user"].to_numpy()[keep]].to_numpy(), rows["rank"].to_numpy()[keep] - 1] = \
        rows["item"].to_numpy()[keep]
    return users, ids
