"""One experiment: load -> split -> for each model (fit -> recommend -> evaluate) -> log.

What a run leaves behind in its output directory (and in MLflow as artifacts)::

    config.yaml                    resolved config
    split/train.parquet            user_id, item_id[, rating][, timestamp]
    split/test.parquet             relevant held-out items only
    users.parquet, items.parquet   ids and attributes
    NAME/recommendations.parquet   user_id, item_id, rank (1..k), score
    NAME/metrics.json              flat {metric name: number}
    NAME/model/                    the fitted model (JSON + npz, no pickle)
    summary.json                   every model's metrics and run ids
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from evaluation import evaluate_rankings
from recsys.data import Dataset, Split
from recsys.models import save_model
from training._components import build_model, load_dataset, split_dataset
from training._config import config_to_dict
from training._outdir import StagedDir
from training._progress import Progress
from training._schema import ExperimentConfig
from training._tracking import Tracker

__all__ = ["ModelResult", "RunResult", "run_experiment"]


@dataclass(frozen=True, kw_only=True)
class ModelResult:
    name: str
    type: str
    metrics: Mapping[str, float]
    run_id: str | None


@dataclass(frozen=True, kw_only=True)
class RunResult:
    name: str
    run_id: str | None
    tracking_uri: str | None
    out_dir: Path | None
    data_stats: Mapping[str, int]
    models: tuple[ModelResult, ...]


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> dict[str, Any]:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _flatten(f"{prefix}.{i}", v, out)
    else:
        out[prefix] = value
    return out


def _write_json(path: Path, payload: Any) -> None:
    path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _write_inputs(root: Path, config: ExperimentConfig, dataset: Dataset, split: Split) -> None:
    (root / "split").mkdir()
    (root / "config.yaml").write_text(
        yaml.safe_dump(config_to_dict(config), sort_keys=False), encoding="utf-8"
    )
    split.train.to_frame().to_parquet(root / "split" / "train.parquet", index=False)
    split.test.to_frame().to_parquet(root / "split" / "test.parquet", index=False)
    dataset.users.to_parquet(root / "users.parquet", index=False)
    dataset.items.to_parquet(root / "items.parquet", index=False)


def _recommendations_frame(
    dataset: Dataset, users: np.ndarray, ids: np.ndarray, scores: np.ndarray
) -> pd.DataFrame:
    n, k = ids.shape
    valid = ids >= 0
    rows, ranks = np.nonzero(valid)
    return pd.DataFrame(
        {
            "user_id": dataset.interactions.user_ids[users[rows]],
            "item_id": dataset.interactions.item_ids[ids[valid]],
            "rank": (ranks + 1).astype(np.int32),
            "score": scores[valid].astype(np.float64),
        }
    )


def _model_params(spec: Any) -> dict[str, Any]:
    return spec.params.model_dump()


def run_experiment(
    config: ExperimentConfig,
    *,
    out_dir: Path | None = None,
    tracker: Tracker | None = None,
    progress: Progress | None = None,
) -> RunResult:
    """Run every candidate of ``config``; see the module docstring for the outputs."""
    progress = progress or Progress(quiet=True)
    k = config.evaluation.k
    parent: str | None = None
    child: str | None = None
    try:
        with StagedDir(out_dir) as staged:
            root = staged.path
            with progress.step(f"loading data ({config.data.loader})"):
                dataset = load_dataset(config.data, seed=config.seed)
            with progress.step(f"splitting ({config.split.method})"):
                split = split_dataset(config.split, dataset, seed=config.seed)
            test_users = np.flatnonzero(np.diff(split.test.matrix.indptr) > 0)
            stats = {
                "n_users": dataset.interactions.n_users,
                "n_items": dataset.interactions.n_items,
                "n_interactions": dataset.interactions.n_interactions,
                "n_train": split.train.n_interactions,
                "n_test": split.test.n_interactions,
                "n_test_users": int(test_users.size),
            }
            progress.info(
                "  data: {n_users} users, {n_items} items, {n_train} train / {n_test} test "
                "interactions, {n_test_users} test users".format(**stats)
            )
            _write_inputs(root, config, dataset, split)
            if tracker is not None:
                parent = tracker.start_run(config.name, tags={"fairrec.status": "running"})
                tracker.log_params(parent, _flatten("", config_to_dict(config), {}))
                tracker.log_metrics(parent, stats)
            categories = pd.factorize(dataset.items["category"])[0]
            train_binary = split.train.binary()
            results: list[ModelResult] = []
            for spec in config.models:
                params = _model_params(spec)
                model_dir = root / spec.name
                model_dir.mkdir()
                if tracker is not None:
                    child = tracker.start_run(
                        spec.name, parent=parent, tags={"fairrec.model_type": spec.type}
                    )
                    tracker.log_params(child, {"type": spec.type, "input": spec.input, **params})
                model = build_model(spec.type, params, seed=config.seed)
                t0 = time.perf_counter()
                with progress.step(f"[{spec.name}] fitting {spec.type}"):
                    model.fit(train_binary if spec.input == "binary" else split.train.matrix)
                t1 = time.perf_counter()
                with progress.step(f"[{spec.name}] recommending top-{k} for {test_users.size} users"):
                    ids, scores = model.recommend(test_users, k)
                t2 = time.perf_counter()
                with progress.step(f"[{spec.name}] evaluating"):
                    report = evaluate_rankings(
                        ids,
                        users=test_users,
                        relevant=split.test.matrix,
                        train=split.train.matrix,
                        item_category=categories,
                        k=k,
                    )
                    metrics = dict(report.summary())
                t3 = time.perf_counter()
                metrics.update(
                    fit_seconds=t1 - t0, recommend_seconds=t2 - t1, evaluate_seconds=t3 - t2
                )
                _recommendations_frame(dataset, test_users, ids, scores).to_parquet(
                    model_dir / "recommendations.parquet", index=False
                )
                _write_json(model_dir / "metrics.json", metrics)
                save_model(model, model_dir / "model")
                if tracker is not None and child is not None:
                    tracker.log_metrics(child, metrics)
                    tracker.log_artifacts(child, model_dir)
                    tracker.set_tags(child, {"fairrec.status": "complete"})
                    tracker.finish(child, ok=True)
                results.append(
                    ModelResult(name=spec.name, type=spec.type, metrics=metrics, run_id=child)
                )
                child = None
            _write_json(
                root / "summary.json",
                {
                    "name": config.name,
                    "run_id": parent,
                    "data": stats,
                    "models": {r.name: {"run_id": r.run_id, "metrics": dict(r.metrics)} for r in results},
                },
            )
            if tracker is not None and parent is not None:
                for entry in ("config.yaml", "summary.json", "users.parquet", "items.parquet"):
                    tracker.log_artifact(parent, root / entry)
                tracker.log_artifacts(parent, root / "split", "split")
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
    return RunResult(
        name=config.name,
        run_id=parent,
        tracking_uri=None if tracker is None else tracker.uri,
        out_dir=final_dir,
        data_stats=stats,
        models=tuple(results),
    )
