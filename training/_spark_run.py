"""A run on the Spark engine (``engine: {kind: spark, master: ..., conf: {...}}``).

The in-process run's steps (``training._run``) with Spark doing the data work:
Spark reads the data and splits it, carves the validation hold-out by the same
method, fits MLlib ALS or popularity for every candidate and sweep value on it,
chooses on validation (``training._selection``), refits the chosen ones on all
training data and scores them on test once (``training._spark_phase``); the
recorder (``training._spark_record``) writes each chosen candidate's folder,
child run, gate decision, card, explanations and servable bundle as
in-process, and the registry step registers and promotes as in-process
(``training._registration``), so ``fairrec promote`` and ``fairrec serve``
take a Spark-trained champion like any other.

What stays on the driver is item-level or group-level (item counts and
factors, exposure per item, group tables), O(users) vectors (the users' group
labels, the gate's per-user evidence, the test users' indices for the
explanation sample), the sampled users' lists, and the training matrix once
per run when servable bundles are exported (the bundle format stores every
user's history).

Output, in a staged folder committed only when every candidate finished
(a cluster that fails mid-run leaves no half-written output and no promoted
model)::

    config.yaml, gate_rules.json, validation.json, summary.json
    split/train.parquet/, split/test.parquet/       (Spark part files)
    NAME/recommendations.parquet/                    user_id, item_id, rank, score (Spark part files)
    NAME/metrics.json, validation_metrics.json, fairness_report.json, gate.json,
    NAME/model_card.{md,html}, plots/, explanations.parquet
    NAME/model/                                       the servable bundle (also an MLflow pyfunc model)

Not (yet) on this engine: mitigations, bootstrap intervals in the fairness
report, consent stores. A config asking for them, or for a model type the
engine lacks, is refused before Spark starts.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from recsys.data import Dataset
from recsys.data._attributes import align_attributes
from recsys.data._spark import SparkInteractions, read_table_spark, spark_from_interactions
from recsys.data._table import read_frame
from recsys.engine import SparkEngineError, spark_session
from recsys.errors import FairrecError
from recsys.rerank import SPARK_RERANK_KINDS
from training._candidate import expand_sweeps
from training._checks import check_rank_by
from training._components import load_dataset
from training._config import config_params, config_to_dict
from training._gate import evaluate_gate, experiment_rules
from training._outdir import StagedDir
from training._progress import Progress
from training._record import finite, write_json
from training._registration import RunResult, open_registry, plan_promotion, register_and_promote, summary
from training._schema import ExperimentConfig, TableData
from training._selection import Validated, choose_candidates, nearest_passing, validation_rules
from training._spark_guard import ExecutorWatch, guard
from training._spark_phase import SparkPhase, spark_split, spark_validation_split, user_labels
from training._spark_record import SparkRecorder, external_ids
from training._tracking import Tracker

__all__ = ["check_spark_config", "run_on_spark"]

#: Model types the Spark engine runs.
SPARK_MODELS = ("als", "popularity")


def check_spark_config(config: ExperimentConfig) -> None:
    """Refuse, before Spark starts, what this engine does not run."""
    for i, spec in enumerate(config.models):
        if spec.type not in SPARK_MODELS:
            raise SparkEngineError(f"models[{i}].type: the Spark engine runs {', '.join(SPARK_MODELS)}; "
                                   f"got {spec.type!r} (use engine.kind: in_process)")
        steps = [step.kind for step in spec.steps]
        if steps and (len(steps) > 1 or steps[0] not in SPARK_RERANK_KINDS):
            raise SparkEngineError(
                f"models[{i}].mitigation ({spec.name}): the Spark engine runs one re-ranking step of "
                f"{', '.join(SPARK_RERANK_KINDS)} (each list re-ranked on its own, per partition); got "
                f"{' + '.join(steps)} (use engine.kind: in_process)")
    if config.consent.store is not None:
        raise SparkEngineError(f"consent.store: the Spark engine does not read consent stores yet, so it could "
                               f"not leave opted-out users out; expected null, got {str(config.consent.store)!r} "
                               "(use engine.kind: in_process)")


def _load(config: ExperimentConfig, spark: Any) -> tuple[SparkInteractions, Any, pd.DataFrame, np.ndarray,
                                                          np.ndarray]:
    """Interactions, the user attribute frame (Spark), the item table and both id vocabularies."""
    data = config.data
    if isinstance(data, TableData):
        it = read_table_spark(spark, interactions=data.interactions, columns=dict(data.columns))
        item_ids = it.item_vocab.orderBy("item").toPandas()["item_id"].to_numpy()  # item-level
        items_raw = None if data.items is None else read_frame(Path(data.items))
        items = align_attributes(items_raw.rename(columns={data.columns.get("item_id", "item_id"): "item_id"})
                                 if items_raw is not None else None, item_ids, id_column="item_id",
                                 source=str(data.items), defaults={"category": "unknown"})
        users = it.user_vocab
        if data.users is not None:
            table = _read_users(spark, Path(data.users), data.columns.get("user_id", "user_id"))
            users = it.user_vocab.join(table, "user_id", "left")
        users = users.drop("user_id")
        return it, users, items, None, item_ids
    dataset: Dataset = load_dataset(data, seed=config.seed)  # generated or small: starts in-process
    it = spark_from_interactions(spark, dataset.interactions)
    table = dataset.users.drop(columns=["user_id"]).astype("string")
    table = table.astype(object).where(table.notna(), None)
    table.insert(0, "user", np.arange(len(table), dtype=np.int64))
    schema = ", ".join(["user long"] + [f"`{c}` string" for c in table.columns[1:]])
    users = spark.createDataFrame(table, schema)
    return it, users, dataset.items, dataset.interactions.user_ids, dataset.interactions.item_ids


def _read_users(spark: Any, path: Path, id_column: str) -> Any:
    from pyspark.sql import functions as F

    frame = spark.read.parquet(str(path)) if path.suffix != ".csv" else spark.read.csv(
        str(path), header=True, inferSchema=True)
    return frame.select(F.col(f"`{id_column}`").alias("user_id"),
                        *[F.col(f"`{c}`").cast("string").alias(c) for c in frame.columns if c != id_column])


def _check_columns(config: ExperimentConfig, user_columns: list[str], items: pd.DataFrame) -> None:
    """The fairness settings against this data's attribute columns (as the in-process run checks)."""
    fc = config.fairness
    users = [c for c in user_columns if c != "user"]
    for attr in fc.sensitive:
        if attr not in users:
            raise FairrecError(f"fairness.sensitive: {attr!r} is not a user attribute of this data; "
                               f"available: {', '.join(users) or 'none'}")
    item_cols = [c for c in items.columns if c != "item_id"]
    if fc.item_group != "popularity" and fc.item_group not in item_cols:
        raise FairrecError(f"fairness.item_group: {fc.item_group!r} is neither 'popularity' nor an item "
                           f"attribute; available: {', '.join(item_cols)}")
    if fc.amplification_attribute not in item_cols:
        raise FairrecError(f"fairness.amplification_attribute: {fc.amplification_attribute!r} is not an "
                           f"item attribute; available: {', '.join(item_cols)}")




def run_on_spark(config: ExperimentConfig, *, out_dir: Path | None = None, tracker: Tracker | None = None,
                 progress: Progress | None = None, env: Mapping[str, str] | None = None) -> RunResult:
    """Run ``config`` on Spark; returns the in-process run's ``RunResult`` (see the module docstring)."""
    progress = progress or Progress(quiet=True)
    check_spark_config(config)
    env = os.environ if env is None else env  # pyspark's launcher reads JAVA_HOME and PATH itself
    master = config.engine.master
    from pyspark.sql import SparkSession

    existing = SparkSession.getActiveSession()
    with progress.step(f"starting Spark on {master}"):
        spark = spark_session(master, dict(config.engine.conf), app_name=f"fairrec-{config.name}",
                              java_home=env.get("JAVA_HOME"), path=env.get("PATH"),
                              python=env.get("PYSPARK_PYTHON") or sys.executable)
    parent: str | None = None
    recorder: SparkRecorder | None = None
    try:
        with ExecutorWatch(spark, master, config.engine.lost_executor_timeout), StagedDir(out_dir) as staged:
            root = staged.path
            with progress.step(f"loading data with Spark ({config.data.loader})"):
                data, users_table, items, user_ids, item_ids = guard(master, "reading the data",
                                                                     lambda: _load(config, spark))
            _check_columns(config, users_table.columns, items)
            with progress.step(f"splitting with Spark ({config.split.method}) into train, validation and test"):
                split = guard(master, "splitting", lambda: spark_split(config, data))
                n_train, n_test = guard(master, "counting", lambda: (split.train.frame.count(),
                                                                     split.test.frame.count()))
                inner = guard(master, "carving the validation hold-out", lambda: spark_validation_split(
                    config, split, n_train=n_train, n_test=n_test))
                n_validation = guard(master, "counting", inner.test.frame.count)
            if tracker is not None:
                parent = tracker.start_run(config.name, tags={"fairrec.status": "running", "fairrec.engine": "spark"})
            registry, champion = open_registry(config, tracker)
            fc = config.fairness
            rules = experiment_rules(config)
            labels = guard(master, "collecting the users' group labels", lambda: user_labels(
                users_table, fc.sensitive if rules.parity else [], data.n_users))
            shared = {"users_table": users_table, "items": items, "labels": labels, "progress": progress,
                      "master": master}
            candidates = expand_sweeps(list(config.models))
            val = SparkPhase("validation", config, data, inner, rules=validation_rules(rules), **shared)
            stats = {"n_users": data.n_users, "n_items": data.n_items, "n_interactions": n_train + n_test,
                     "n_train": n_train, "n_test": n_test, "n_validation": n_validation,
                     "n_validation_users": val.n_users}
            progress.info(f"  data: {data.n_users} users, {data.n_items} items, {n_train} train ({n_validation} "
                          f"of them held out for validation) / {n_test} test interactions")
            validated = _validate(val, candidates, progress)
            check_rank_by(config, validated[0].metrics)
            rank_by = config.gate.rank_by.replace("{k}", str(config.evaluation.k))
            chosen = choose_candidates(validated, rank_by)
            inner.train.frame.unpersist()
            inner.test.frame.unpersist()
            test = SparkPhase("test", config, data, split, rules=rules, **shared)
            stats["n_test_users"] = test.n_users
            (root / "config.yaml").write_text(yaml.safe_dump(config_to_dict(config), sort_keys=False),
                                              encoding="utf-8")
            guard(master, "writing the split", lambda: _write_split(root, split, data))
            items.to_parquet(root / "items.parquet", index=False)
            write_json(root / "validation.json", {
                v.candidate.name: {"metrics": v.metrics, "gate": v.gate.to_json()} for v in validated})
            recorder = SparkRecorder(config, test, tracker, parent, champion, root, user_ids=user_ids,
                                     item_ids=item_ids, stats=stats)
            if tracker is not None and parent is not None:
                tracker.log_params(parent, config_params(config))
                tracker.log_metrics(parent, stats)
            by_name = {v.candidate.name: v for v in validated}
            results = []
            with progress.candidates("test", len(chosen)) as start:
                for cand in chosen:
                    start(cand.name)
                    scored = test.score(cand)
                    results.append(recorder.record(scored, by_name[cand.name].metrics))
                    scored.lists.unpersist()
            plan = plan_promotion(config, registry, results, champion, rank_by, nearest=nearest_passing(validated))
            write_json(root / "summary.json", _summary(config, parent, stats, results, plan, master, "pending"))
            if tracker is not None and parent is not None:
                for name in ("config.yaml", "gate_rules.json", "items.parquet", "validation.json"):
                    tracker.log_artifact(parent, root / name)
                tracker.log_artifacts(parent, root / "split", "split")
            final_dir = staged.commit()
        promotion = plan
        if registry is not None:
            with progress.step(f"registering {len(results)} version(s) of {registry.name!r}"):
                results, promotion = register_and_promote(registry, results, parent, plan, rules)
        if final_dir is not None:
            write_json(final_dir / "summary.json", _summary(config, parent, stats, results, promotion, master,
                                                             "done"))
        if tracker is not None and parent is not None:
            if final_dir is not None:
                tracker.log_artifact(parent, final_dir / "summary.json")
            tracker.set_tags(parent, {"fairrec.status": "complete"})
            tracker.finish(parent, ok=True)
    except BaseException:
        if tracker is not None:
            for run_id in (None if recorder is None else recorder.child, parent):
                if run_id is not None:
                    tracker.try_fail(run_id)
        raise
    finally:
        if existing is None:
            spark.stop()  # a session this run started
    return RunResult(name=config.name, run_id=parent, tracking_uri=None if tracker is None else tracker.uri,
                     out_dir=final_dir, data_stats=stats, models=tuple(results), promotion=promotion,
                     validation=tuple(validated))


def _validate(phase: SparkPhase, candidates: list[Any], progress: Progress) -> list[Validated]:
    out = []
    with progress.candidates("validation", len(candidates)) as start:
        for cand in candidates:
            start(cand.name)
            scored = phase.score(cand)
            scored.lists.unpersist()
            metrics = finite(scored.metrics)
            out.append(Validated(candidate=cand, metrics=metrics, gate=evaluate_gate(metrics, phase.rules)))
    return out


def _summary(config: ExperimentConfig, parent: str | None, stats: dict[str, int], results: list[Any],
             promotion: Any, master: str, registry_status: str) -> dict[str, Any]:
    return {**summary(config, parent, stats, results, promotion, registry_status=registry_status),
            "engine": "spark", "master": master}


def _write_split(root: Path, split: Any, data: SparkInteractions) -> None:
    for name, part in (("train", split.train), ("test", split.test)):
        external_ids(part.frame, data).write.parquet(str(root / "split" / f"{name}.parquet"))
