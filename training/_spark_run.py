"""A run on the Spark engine (``engine: {kind: spark, master: ..., conf: {...}}``).

The same config, on a cluster: Spark reads the data, splits it, fits MLlib
ALS or popularity, ranks every test user's top-k without their training
items and computes the metrics (``evaluation._spark``) under the in-process
``metrics.json`` names. What stays on the driver is item-level or
group-level (item counts and factors, exposure per item, group tables),
plus the training matrix when a servable bundle is exported (the bundle
format stores every user's history).

Output, in a staged folder committed only when every candidate finished
(a cluster that fails mid-run leaves no half-written output)::

    config.yaml, split/train.parquet/, split/test.parquet/   (Spark part files)
    NAME/recommendations.parquet/   user_id, item_id, rank, score (Spark part files)
    NAME/metrics.json, NAME/fairness_report.json, NAME/gate.json
    NAME/model/                     the servable bundle (ALS factors; popularity counts)
    summary.json

The gate's ``gate.*`` evidence is computed as in-process (``training._evidence``)
from per-user vectors that Spark reduces the lists to (the utility metric, the
0/1 outcome, protected and total exposure, and the popularity ranking's utility
for segments), collected with the users' group labels: O(users) on the driver.

Not (yet) on this engine: the validation split and choice on it, mitigations,
bootstrap intervals in the fairness report, explanations, model cards,
registration and promotion.
A config asking for a model type or mitigation the engine lacks is refused
before Spark starts.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import yaml

from evaluation import sanitize_label
from recsys.data import Dataset
from recsys.data._attributes import align_attributes
from recsys.data._spark import (
    SparkInteractions,
    SparkSplit,
    collect_interactions,
    read_table_spark,
    spark_from_interactions,
    spark_leave_last_k,
    spark_random_holdout,
    spark_relevance_threshold,
    spark_time_cutoff,
)
from recsys.data._table import read_frame
from recsys.engine import SparkEngineError, spark_session
from recsys.errors import FairrecError
from recsys.models import Popularity
from recsys.models._spark_als import SparkALS, SparkPopularity, als_serving_model
from recsys.serving import NotServableError, save_bundle
from training._components import load_dataset
from training._config import config_to_dict
from training._evidence import EvidenceInputs, _per_user_key, gate_evidence
from training._registration import RunResult
from training._gate import evaluate_gate, rules_from_config
from training._outdir import StagedDir
from training._progress import Progress
from training._record import ModelResult, finite, write_json
from training._schema import ExperimentConfig, LeaveLastKSplit, RandomHoldoutSplit, TableData
from training._tracking import Tracker

__all__ = ["check_spark_config", "run_on_spark"]

_T = TypeVar("_T")
#: Model types the Spark engine runs.
SPARK_MODELS = ("als", "popularity")


def check_spark_config(config: ExperimentConfig) -> None:
    """Refuse, before Spark starts, what this engine does not run."""
    for i, spec in enumerate(config.models):
        if spec.type not in SPARK_MODELS:
            raise SparkEngineError(f"models[{i}].type: the Spark engine runs {', '.join(SPARK_MODELS)}; "
                                   f"got {spec.type!r} (use engine.kind: in_process)")
        if getattr(spec, "mitigation", None) is not None or getattr(spec, "sweep", None) is not None:
            raise SparkEngineError(f"models[{i}] ({spec.name}): the Spark engine runs no mitigation or sweep "
                                   "yet; expected none (use engine.kind: in_process)")
    if config.fairness.n_boot is not None:
        raise SparkEngineError(f"fairness.n_boot: the Spark engine computes no bootstrap intervals; "
                               f"expected null, got {config.fairness.n_boot}")


_WATCH: list[_ExecutorWatch] = []  # the watch of the run in progress (one run per process)


def _guard(master: str, what: str, fn: Callable[[], _T]) -> _T:
    """Run one Spark step; a failing cluster becomes a SparkEngineError naming the step."""
    try:
        return fn()
    except (SparkEngineError, ValueError):
        raise
    except Exception as exc:  # Py4JJavaError, PySparkException, Py4JNetworkError ...
        if _WATCH and _WATCH[-1].lost:
            raise SparkEngineError(
                f"engine.master: the cluster at {master} lost every executor while {what} and got none "
                f"back within {_WATCH[-1].timeout:g} s (engine.lost_executor_timeout); nothing was "
                "committed or promoted") from None
        first = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        raise SparkEngineError(f"engine.master: the Spark job failed while {what} on {master}: "
                               f"{first.strip()[:300]}; nothing was committed or promoted") from None


class _ExecutorWatch:
    """Cancel the running jobs when a cluster has had no executor for ``timeout`` seconds.

    Spark waits for resources forever when the last worker dies mid-run; this
    turns that wait into an error naming ``engine.master``. Local masters run
    tasks in the driver and are not watched.
    """

    def __init__(self, spark: Any, master: str, timeout: float) -> None:
        import threading

        self.spark, self.master, self.timeout = spark, master, timeout
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="fairrec-executor-watch", daemon=True)

    def __enter__(self) -> _ExecutorWatch:
        if not self.master.startswith("local"):
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()

    def _executors(self) -> int:
        # the driver counts as one block manager; executors are the rest
        return int(self.spark.sparkContext._jsc.sc().getExecutorMemoryStatus().size()) - 1

    def _watch(self) -> None:
        since = None
        while not self._stop.wait(1.0):
            try:
                alive = self._executors()
            except Exception:  # noqa: BLE001 - the context is stopping; nothing to watch
                return
            now = time.monotonic()
            since = None if alive > 0 else (since or now)
            if since is not None and now - since >= self.timeout:
                self.lost = True
                self.spark.sparkContext.cancelAllJobs()
                return


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


def _split(config: ExperimentConfig, data: SparkInteractions) -> SparkSplit:
    cfg = config.split
    if isinstance(cfg, RandomHoldoutSplit):
        split = spark_random_holdout(data, test_fraction=cfg.test_fraction, min_train=cfg.min_train,
                                     random_state=config.seed if cfg.seed is None else cfg.seed)
    elif isinstance(cfg, LeaveLastKSplit):
        split = spark_leave_last_k(data, k=cfg.k, min_train=cfg.min_train)
    else:
        split = spark_time_cutoff(data, cutoff=cfg.cutoff, test_fraction=cfg.test_fraction)
    split = spark_relevance_threshold(split, cfg.relevance_threshold)
    return SparkSplit(train=split.train.with_frame(split.train.frame.cache()),
                      test=split.test.with_frame(split.test.frame.cache()))


def _recommend(spec: Any, split: SparkSplit, users: Any, k: int) -> tuple[Any, Any]:
    """The fitted model and the lists; users without training entries get the popularity list."""
    popularity = SparkPopularity().fit(split.train)
    if spec.type == "popularity":
        return popularity, popularity.recommend(users, k).cache()
    p = spec.params
    model = SparkALS(factors=p.factors, regularization=p.regularization, alpha=p.alpha,
                     iterations=p.iterations, random_state=p.random_state).fit(split.train)
    warm = users.join(split.train.frame.select("user").distinct(), "user", "left_semi")
    cold = users.join(warm, "user", "left_anti")
    lists = model.recommend(warm, k).unionByName(popularity.recommend(cold, k))
    return model, lists.cache()


def run_on_spark(config: ExperimentConfig, *, out_dir: Path | None = None, tracker: Tracker | None = None,
                 progress: Progress | None = None, env: Mapping[str, str] | None = None) -> Any:
    """Run ``config`` on Spark; returns the in-process run's ``RunResult``."""

    progress = progress or Progress(quiet=True)
    check_spark_config(config)
    env = os.environ if env is None else env  # pyspark's launcher reads JAVA_HOME and PATH itself
    engine = config.engine
    master = engine.master
    from pyspark.sql import SparkSession

    existing = SparkSession.getActiveSession()
    with progress.step(f"starting Spark on {master}"):
        spark = spark_session(master, dict(engine.conf), app_name=f"fairrec-{config.name}",
                              java_home=env.get("JAVA_HOME"), path=env.get("PATH"))
    parent, child = None, None
    watch = _ExecutorWatch(spark, master, engine.lost_executor_timeout)
    _WATCH.append(watch)
    try:
        with watch, StagedDir(out_dir) as staged:
            root = staged.path
            with progress.step(f"loading data with Spark ({config.data.loader})"):
                data, users_table, items, user_ids, item_ids = _guard(master, "reading the data",
                                                                      lambda: _load(config, spark))
            with progress.step(f"splitting with Spark ({config.split.method})"):
                split = _guard(master, "splitting", lambda: _split(config, data))
                test_users = split.test.frame.select("user").distinct().cache()
                stats = _guard(master, "counting", lambda: {
                    "n_users": data.n_users, "n_items": data.n_items,
                    "n_train": split.train.frame.count(), "n_test": split.test.frame.count(),
                    "n_test_users": test_users.count()})
            _check_columns(config, users_table.columns, items)
            progress.info("  data: {n_users} users, {n_items} items, {n_train} train / {n_test} test "
                          "interactions, {n_test_users} test users".format(**stats))
            (root / "config.yaml").write_text(yaml.safe_dump(config_to_dict(config), sort_keys=False),
                                              encoding="utf-8")
            _guard(master, "writing the split", lambda: _write_split(root, split))
            if tracker is not None:
                parent = tracker.start_run(config.name, tags={"fairrec.status": "running",
                                                              "fairrec.engine": "spark"})
                tracker.log_metrics(parent, stats)
            fc, k = config.fairness, config.evaluation.k
            rules = rules_from_config(config.gate, sensitive=fc.sensitive, segments=fc.segments, k=k,
                                      item_group=fc.item_group, protected_group=fc.protected_group)
            # the gate's evidence: per-user vectors of the evaluated users (see _user_labels)
            needs_vectors = bool(rules.parity) or rules.provider_exposure is not None
            keys = sorted({_per_user_key(r.metric, k) for r in rules.parity if r.kind == "utility"})
            labels = _guard(master, "collecting the users' group labels", lambda: _user_labels(
                users_table, fc.sensitive if rules.parity else [], data.n_users))
            relevant_key = ".".join(["relevant_share", sanitize_label(fc.item_group),
                                     sanitize_label(fc.protected_group)])
            baseline = _Baseline(config, split, test_users, users_table, items, data.n_users, data.n_items,
                                 keys) if any(r.segment for r in rules.parity) else None
            results = []
            for spec in config.models:
                out = root / spec.name
                out.mkdir()
                if tracker is not None:
                    child = tracker.start_run(spec.name, parent=parent, tags={
                        "fairrec.model_type": spec.type, "fairrec.status": "running", "fairrec.engine": "spark"})
                    tracker.log_params(child, {"type": spec.type, **spec.params.model_dump()})
                t0 = time.perf_counter()
                with progress.step(f"[{spec.name}] fitting {spec.type} and ranking top-{k} on Spark"):
                    model, lists = _guard(master, f"fitting {spec.name}",
                                          lambda spec=spec: _recommend(spec, split, test_users, k))
                    _guard(master, f"ranking for {spec.name}", lists.count)
                t1 = time.perf_counter()
                with progress.step(f"[{spec.name}] evaluating on Spark"):
                    from evaluation._spark import spark_evaluate

                    evaluated = _guard(master, f"evaluating {spec.name}", lambda: spark_evaluate(
                        lists=lists, users=test_users, relevant=split.test.frame, train=split.train.frame,
                        users_table=users_table, items_table=items, n_users=data.n_users,
                        n_items=data.n_items, k=k, sensitive=fc.sensitive, item_group=fc.item_group,
                        protected_group=fc.protected_group, item_category=fc.amplification_attribute,
                        head_share=fc.head_share, amplification_weighting=fc.amplification_weighting,
                        per_user=keys if needs_vectors else None))
                    vectors = evaluated.vectors
                    base = None if baseline is None else _guard(master, "ranking the popularity baseline",
                                                                lambda: baseline.per_user(vectors.users))
                t2 = time.perf_counter()
                metrics = finite({**evaluated.metrics, "fit_recommend_seconds": t1 - t0,
                                  "evaluate_seconds": t2 - t1})
                if vectors is not None:
                    metrics.update(gate_evidence(EvidenceInputs(
                        users=vectors.users, per_user=vectors.per_user, labels=labels, k=k, seed=config.seed,
                        baseline=base, outcome=vectors.outcome, exposure=vectors.exposure,
                        relevant_share=metrics.get(relevant_key)), rules))
                _guard(master, f"writing {spec.name}'s lists",
                       lambda out=out, lists=lists: _write_lists(out, lists, data))
                write_json(out / "metrics.json", metrics)
                write_json(out / "fairness_report.json", evaluated.fairness.to_json())
                decision = evaluate_gate(metrics, rules)
                write_json(out / "gate.json", decision.to_json())
                servable = _guard(master, f"exporting {spec.name}", lambda spec=spec, model=model, out=out:
                                  _export(spec, model, split, items, user_ids, item_ids, k, out / "model"))
                lists.unpersist()
                if tracker is not None and child is not None:
                    tracker.log_metrics(child, metrics)
                    tracker.log_artifacts(child, out)
                    tracker.set_tags(child, {"fairrec.status": "complete",
                                             "fairrec.gate": "pass" if decision.passed else "fail",
                                             "fairrec.model_saved": str(servable[0]).lower()})
                    tracker.finish(child, ok=True)
                results.append(ModelResult(name=spec.name, type=spec.type, metrics=metrics, run_id=child,
                                           gate=decision, servable=servable, validation={}))
                child = None
            write_json(root / "summary.json", {
                "name": config.name, "engine": "spark", "master": master, "run_id": parent, "data": stats,
                "models": {r.name: {"metrics": dict(r.metrics), "gate": "pass" if r.gate.passed else "fail",
                                    "servable": r.servable[0]} for r in results}})
            final_dir = staged.commit()
        if tracker is not None and parent is not None:
            tracker.set_tags(parent, {"fairrec.status": "complete"})
            tracker.finish(parent, ok=True)
    except BaseException:
        if tracker is not None:
            for run_id in (child, parent):
                if run_id is not None:
                    tracker.try_fail(run_id)
        raise
    finally:
        _WATCH.remove(watch)
        if existing is None:
            spark.stop()  # a session this run started
    return RunResult(name=config.name, run_id=parent, tracking_uri=None if tracker is None else tracker.uri,
                     out_dir=final_dir, data_stats=stats, models=tuple(results))


def _user_labels(users_table: Any, sensitive: list[str], n_users: int) -> dict[str, np.ndarray]:
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


class _Baseline:
    """The popularity ranking's per-user metrics on the test users (segment parity), computed once."""

    def __init__(self, config: ExperimentConfig, split: SparkSplit, users: Any, users_table: Any,
                 items: pd.DataFrame, n_users: int, n_items: int, keys: list[str]) -> None:
        self.args = (config, split, users, users_table, items, n_users, n_items, keys)
        self._vectors: Any = None

    def per_user(self, users: np.ndarray) -> dict[str, np.ndarray]:
        from evaluation._spark import spark_evaluate

        config, split, test_users, users_table, items, n_users, n_items, keys = self.args
        if self._vectors is None:
            fc, k = config.fairness, config.evaluation.k
            lists = SparkPopularity().fit(split.train).recommend(test_users, k)
            self._vectors = spark_evaluate(
                lists=lists, users=test_users, relevant=split.test.frame, train=split.train.frame,
                users_table=users_table, items_table=items, n_users=n_users, n_items=n_items, k=k,
                sensitive=[], item_group=fc.item_group, protected_group=fc.protected_group,
                item_category=None, head_share=fc.head_share, per_user=keys).vectors
        if not np.array_equal(self._vectors.users, users):
            raise ValueError("the popularity baseline was evaluated on other users than the candidate")
        return self._vectors.per_user


def _external(frame: Any, data: SparkInteractions) -> Any:
    cols = ["user_id", "item_id"] + [c for c in frame.columns if c not in ("user", "item")]
    return frame.join(data.user_vocab, "user").join(data.item_vocab, "item").select(*cols)


def _write_split(root: Path, split: SparkSplit) -> None:
    for name, part in (("train", split.train), ("test", split.test)):
        _external(part.frame, part).write.parquet(str(root / "split" / f"{name}.parquet"))


def _write_lists(out: Path, lists: Any, data: SparkInteractions) -> None:
    _external(lists, data).write.parquet(str(out / "recommendations.parquet"))


def _export(spec: Any, model: Any, split: SparkSplit, items: pd.DataFrame, user_ids: np.ndarray | None,
            item_ids: np.ndarray, k: int, directory: Path) -> tuple[bool, str]:
    """The servable bundle: the training matrix is collected here, as the bundle stores it."""
    train = collect_interactions(split.train, user_ids=user_ids, item_ids=item_ids)
    matrix = train.binary()
    served = (als_serving_model(model, matrix) if isinstance(model, SparkALS)
              else Popularity(unknown_users="popular").fit(matrix))
    try:
        save_bundle(directory, name=spec.name, model=served, reranker=None, n_candidates=k,
                    user_ids=train.user_ids, item_ids=train.item_ids, items=items)
    except NotServableError as exc:
        return False, str(exc)
    return True, "saved as a fairrec bundle (from the Spark model)"
