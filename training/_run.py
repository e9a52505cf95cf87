"""One experiment: load -> split -> for each candidate (fit -> recommend -> evaluate) -> log.

What a run leaves behind in its output directory (and in MLflow as artifacts)::

    config.yaml                    resolved config
    split/train.parquet            user_id, item_id[, rating][, timestamp]
    split/test.parquet             relevant held-out items only
    users.parquet, items.parquet   ids and attributes (items also: popularity, popularity_group)
    NAME/recommendations.parquet   user_id, item_id, rank (1..k), score
    NAME/metrics.json              flat {metric name: number}
    NAME/fairness_report.json      per-group tables, CIs, exposure, amplification, twin comparison
    NAME/explanations.parquet      sampled users: user_id, item_id, rank, method, reasons, weights, text
    NAME/plots/*.png               per-group quality bars, exposure by item group
    NAME/model/                    the fitted model (JSON + npz, no pickle) when it can be saved
    frontier_SWEEP.csv/.png        relevance-fairness frontier of each swept mitigation
    summary.json                   every candidate's metrics and run ids
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import yaml

from evaluation import compare_with_twin, plot_exposure, plot_group_quality, popularity_groups, popularity_share
from recsys.data import Dataset, Split
from recsys.errors import FairrecError
from recsys.models import MODELS, Recommender, save_model
from training._candidate import (
    Candidate,
    FairnessContext,
    expand_sweeps,
    fit_candidate,
    recommend_candidate,
    twin_key,
)
from training._components import load_dataset, split_dataset
from training._config import config_to_dict
from training._evaluate import Evaluated, EvaluationInputs, evaluate_lists
from training._explain import explain_candidate
from training._frontier import frontier_table, plot_frontier, target_metric
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
    sweep_of: str | None = None


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
    path.write_text(json.dumps(payload, indent=2, sort_keys=True, allow_nan=False) + "\n", encoding="utf-8")


def _finite(metrics: Mapping[str, float]) -> dict[str, float]:
    """JSON and MLflow take finite numbers only; an undefined metric is left out, not faked."""
    return {k: float(v) for k, v in metrics.items() if v is not None and math.isfinite(float(v))}


def _check_attributes(config: ExperimentConfig, dataset: Dataset) -> None:
    fc = config.fairness
    user_cols = [c for c in dataset.users.columns if c != "user_id"]
    item_cols = [c for c in dataset.items.columns if c != "item_id"]
    for attr in fc.sensitive:
        if attr not in user_cols:
            raise FairrecError(
                f"fairness.sensitive: {attr!r} is not a user attribute of this data; available: "
                f"{', '.join(user_cols)}"
            )
    if fc.item_group != "popularity" and fc.item_group not in item_cols:
        raise FairrecError(
            f"fairness.item_group: {fc.item_group!r} is neither 'popularity' nor an item attribute; "
            f"available: {', '.join(item_cols)}"
        )
    if fc.amplification_attribute not in item_cols:
        raise FairrecError(
            f"fairness.amplification_attribute: {fc.amplification_attribute!r} is not an item "
            f"attribute; available: {', '.join(item_cols)}"
        )


def _items_with_popularity(dataset: Dataset, train: sp.csr_matrix, head_share: float) -> pd.DataFrame:
    items = dataset.items.copy()
    items["popularity"] = popularity_share(train)
    items["popularity_group"] = popularity_groups(train, head_share=head_share)
    return items


def _write_inputs(root: Path, config: ExperimentConfig, dataset: Dataset, split: Split,
                  items: pd.DataFrame) -> None:
    (root / "split").mkdir()
    (root / "config.yaml").write_text(
        yaml.safe_dump(config_to_dict(config), sort_keys=False), encoding="utf-8"
    )
    split.train.to_frame().to_parquet(root / "split" / "train.parquet", index=False)
    split.test.to_frame().to_parquet(root / "split" / "test.parquet", index=False)
    dataset.users.to_parquet(root / "users.parquet", index=False)
    items.to_parquet(root / "items.parquet", index=False)


def _recommendations_frame(
    dataset: Dataset, users: np.ndarray, ids: np.ndarray, scores: np.ndarray
) -> pd.DataFrame:
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


def _save_plots(directory: Path, evaluated: Evaluated) -> None:
    directory.mkdir()
    plot_group_quality(evaluated.fairness, "ndcg").savefig(directory / "group_ndcg.png", dpi=100)
    plot_exposure(evaluated.fairness).savefig(directory / "exposure.png", dpi=100)


def _save_model(model: Recommender, directory: Path) -> bool:
    """Save the model if its class has an array form (registered models); say whether it did."""
    inner = getattr(model, "estimator_", model)  # a reweighted model serves with its inner fit
    if type(inner) not in MODELS.values():
        return False  # e.g. the two-stage ranker: its classifier has no array form yet
    save_model(inner, directory)
    return True


class _Experiment:
    """The state one run shares between candidates."""

    def __init__(self, config: ExperimentConfig, dataset: Dataset, split: Split,
                 tracker: Tracker | None, parent: str | None, progress: Progress) -> None:
        self.config, self.dataset, self.tracker, self.parent = config, dataset, tracker, parent
        self.progress = progress
        self.k = config.evaluation.k
        train = split.train
        self.X = {"binary": train.binary(), "ratings": train.matrix}
        self.items = _items_with_popularity(dataset, self.X["binary"], config.fairness.head_share)
        fc = config.fairness
        group_col = "popularity_group" if fc.item_group == "popularity" else fc.item_group
        item_group = self.items[group_col].astype("string").fillna("unknown").to_numpy(dtype=object)
        self.ctx = FairnessContext(
            dataset=dataset,
            fairness=fc,
            protected_items=item_group == fc.protected_group,
            seed=config.seed,
        )
        self.users = np.flatnonzero(np.diff(split.test.matrix.indptr) > 0)
        self.inputs = EvaluationInputs(
            users=self.users,
            relevant=split.test.matrix,
            train=self.X["binary"],
            users_table=dataset.users,
            items_table=self.items,
            item_category=pd.factorize(dataset.items["category"])[0],
            fairness=fc,
            k=self.k,
            seed=config.seed,
        )
        titles = dataset.items["title"] if "title" in dataset.items.columns else dataset.items["item_id"]
        self._titles = titles.astype(str).to_numpy()
        self.twins: dict[tuple[str, str, str], Evaluated] = {}
        self.fitted: dict[tuple[str, ...], Recommender] = {}
        self.child: str | None = None

    def _twin(self, spec: Any, first_stage: tuple[np.ndarray, np.ndarray] | None) -> Evaluated:
        key = twin_key(spec)
        if key not in self.twins:
            if first_stage is not None and len(spec.steps) == 1:  # a re-ranker's twin is its first stage
                ids = first_stage[0]
            else:
                with self.progress.step(f"[{spec.name}] fitting the unmitigated twin"):
                    plain = spec.model_copy(update={"mitigation": None})
                    twin, _ = fit_candidate(plain, self.X[spec.input], self.ctx, fitted=self.fitted)
                    ids, _ = twin.recommend(self.users, self.k)
            self.twins[key] = evaluate_lists(ids, self.inputs)
        return self.twins[key]

    def run_candidate(self, cand: Candidate, root: Path) -> ModelResult:
        spec, name, tracker = cand.spec, cand.name, self.tracker
        out = root / name
        out.mkdir()
        params = spec.params.model_dump()
        if tracker is not None:
            tags = {"fairrec.model_type": spec.type, "fairrec.status": "running"}
            if cand.sweep_of is not None:
                tags["fairrec.sweep_of"] = cand.sweep_of
            self.child = tracker.start_run(name, parent=self.parent, tags=tags)
            mitigation = {
                f"mitigation.{step.kind}.{k}": v
                for step in spec.steps
                for k, v in step.model_dump().items()
                if k != "kind"
            }
            tracker.log_params(self.child, {"type": spec.type, "input": spec.input, **params, **mitigation})
        t0 = time.perf_counter()
        label = " + ".join([spec.type] + [step.kind for step in spec.steps])
        with self.progress.step(f"[{name}] fitting {label}"):
            model, reranker = fit_candidate(spec, self.X[spec.input], self.ctx, fitted=self.fitted)
        t1 = time.perf_counter()
        with self.progress.step(f"[{name}] recommending top-{self.k} for {self.users.size} users"):
            ids, scores, first_stage = recommend_candidate(model, reranker, spec, self.users, self.k)
        t2 = time.perf_counter()
        with self.progress.step(f"[{name}] evaluating"):
            evaluated = evaluate_lists(ids, self.inputs)
        t3 = time.perf_counter()
        metrics = dict(evaluated.metrics)
        metrics.update(fit_seconds=t1 - t0, recommend_seconds=t2 - t1, evaluate_seconds=t3 - t2)
        report = evaluated.fairness.to_json()
        if spec.mitigation is None:
            self.twins.setdefault(twin_key(spec), evaluated)
        else:
            twin = self._twin(spec, first_stage)
            comparison, changes = compare_with_twin(
                mitigated=evaluated.metrics,
                twin=twin.metrics,
                mitigated_report=evaluated.fairness,
                twin_report=twin.fairness,
            )
            metrics.update(comparison)
            report["twin_comparison"] = [
                {
                    "attribute": c.attribute, "metric": c.metric, "twin": dict(c.twin),
                    "mitigated": dict(c.mitigated), "best_group": c.best_group,
                    "worst_group": c.worst_group, "gap_twin": c.gap_twin,
                    "gap_mitigated": c.gap_mitigated, "levelling_down": c.levelling_down,
                }
                for c in changes
            ]
        if self.config.explain.enabled:
            with self.progress.step(f"[{name}] explaining {self.config.explain.n_users} users' lists"):
                explained = explain_candidate(
                    model, ids, self.users,
                    user_ids=self.dataset.interactions.user_ids,
                    item_ids=self.dataset.interactions.item_ids,
                    titles=self._titles,
                    config=self.config.explain,
                    seed=self.config.seed,
                )
            metrics.update(explained.metrics)
            report["explanations"] = explained.note
            if len(explained.frame):
                explained.frame.to_parquet(out / "explanations.parquet", index=False)
        metrics = _finite(metrics)
        _recommendations_frame(self.dataset, self.users, ids, scores).to_parquet(
            out / "recommendations.parquet", index=False
        )
        _write_json(out / "metrics.json", metrics)
        _write_json(out / "fairness_report.json", report)
        _save_plots(out / "plots", evaluated)
        saved = _save_model(model, out / "model")
        if tracker is not None and self.child is not None:
            tracker.log_metrics(self.child, metrics)
            tracker.log_artifacts(self.child, out)
            tracker.set_tags(self.child, {"fairrec.status": "complete", "fairrec.model_saved": str(saved).lower()})
            tracker.finish(self.child, ok=True)
        result = ModelResult(name=name, type=spec.type, metrics=metrics, run_id=self.child,
                             sweep_of=cand.sweep_of)
        self.child = None
        return result

    def write_frontiers(self, candidates: list[Candidate], results: list[ModelResult], root: Path) -> list[Path]:
        fc, paths = self.config.fairness, []
        by_name = {r.name: r for r in results}
        groups = {a: sorted(self.dataset.users[a].astype("string").fillna("unknown").unique()) for a in fc.sensitive}
        for spec in self.config.models:
            if spec.sweep is None:
                continue
            rows = [(c.sweep_value, by_name[c.name].metrics) for c in candidates if c.sweep_of == spec.name]
            step, _ = spec.sweep_target()
            target = target_metric(step, sensitive=fc.sensitive, item_group=fc.item_group,
                                   protected_group=fc.protected_group,
                                   amplification_attribute=fc.amplification_attribute, k=self.k)
            table = frontier_table(rows, parameter=spec.sweep.parameter, target=target,
                                   sensitive=fc.sensitive, group_columns=groups, k=self.k)
            csv = root / f"frontier_{spec.name}.csv"
            table.to_csv(csv, index=False)
            fig = plot_frontier(table, parameter=spec.sweep.parameter, target=target, k=self.k,
                                title=f"{spec.name}: {step.kind} sweep")
            png = root / f"frontier_{spec.name}.png"
            fig.savefig(png, dpi=100)
            paths += [csv, png]
            self.progress.info(f"\nfrontier of {spec.name} ({step.kind}):\n{table.to_string(index=False)}")
        return paths


def run_experiment(
    config: ExperimentConfig,
    *,
    out_dir: Path | None = None,
    tracker: Tracker | None = None,
    progress: Progress | None = None,
) -> RunResult:
    """Run every candidate of ``config``; see the module docstring for the outputs."""
    progress = progress or Progress(quiet=True)
    parent: str | None = None
    exp: _Experiment | None = None
    try:
        with StagedDir(out_dir) as staged:
            root = staged.path
            with progress.step(f"loading data ({config.data.loader})"):
                dataset = load_dataset(config.data, seed=config.seed)
            _check_attributes(config, dataset)
            with progress.step(f"splitting ({config.split.method})"):
                split = split_dataset(config.split, dataset, seed=config.seed)
            if tracker is not None:
                parent = tracker.start_run(config.name, tags={"fairrec.status": "running"})
            exp = _Experiment(config, dataset, split, tracker, parent, progress)
            stats = {
                "n_users": dataset.interactions.n_users,
                "n_items": dataset.interactions.n_items,
                "n_interactions": dataset.interactions.n_interactions,
                "n_train": split.train.n_interactions,
                "n_test": split.test.n_interactions,
                "n_test_users": int(exp.users.size),
            }
            progress.info(
                "  data: {n_users} users, {n_items} items, {n_train} train / {n_test} test "
                "interactions, {n_test_users} test users".format(**stats)
            )
            _write_inputs(root, config, dataset, split, exp.items)
            if tracker is not None and parent is not None:
                tracker.log_params(parent, _flatten("", config_to_dict(config), {}))
                tracker.log_metrics(parent, stats)
            candidates = expand_sweeps(list(config.models))
            results = [exp.run_candidate(c, root) for c in candidates]
            frontier_files = exp.write_frontiers(candidates, results, root)
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
                for path in [root / e for e in ("config.yaml", "summary.json", "users.parquet", "items.parquet")] + frontier_files:
                    tracker.log_artifact(parent, path)
                tracker.log_artifacts(parent, root / "split", "split")
            final_dir = staged.commit()
            if tracker is not None and parent is not None:
                tracker.set_tags(parent, {"fairrec.status": "complete"})
                tracker.finish(parent, ok=True)
    except BaseException:
        if tracker is not None:
            child = None if exp is None else exp.child
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
