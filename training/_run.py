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
    NAME/model/                    the servable bundle (JSON + npz + parquet, no pickle) when it can be saved
    NAME/gate.json                 the gate decision: every check with threshold, value and reason
    NAME/model_card.md, .html      intended use, data, metrics, per-group tables, plots, gate, limitations
    frontier_SWEEP.csv/.png        relevance-fairness frontier of each swept mitigation
    summary.json                   every candidate's metrics, run id, gate verdict, registered version,
                                   and the promotion (which version became @challenger/@champion)

Registration happens after every candidate has been evaluated, and the aliases
move last: a run that fails part-way registers nothing and moves no alias.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import yaml

from evaluation import compare_with_twin, plot_exposure, plot_group_quality, popularity_groups, popularity_share
from recsys.data import Dataset, Split
from recsys.errors import FairrecError
from recsys.models import Recommender
from recsys.serving import NotServableError, drop_opted_out, opted_out_users, save_bundle
from training._card import CardInputs, build_card, render_html, render_markdown
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
from training._gate import GateDecision, GateRules, evaluate_gate, rules_from_config
from training._promotion import CHALLENGER, CHAMPION, Champion, Registry, gate_tags
from training._outdir import StagedDir
from training._progress import Progress
from training._schema import ExperimentConfig
from training._tracking import Tracker

__all__ = ["ModelResult", "Promotion", "RunResult", "run_experiment"]


@dataclass(frozen=True, kw_only=True)
class ModelResult:
    name: str
    type: str
    metrics: Mapping[str, float]
    run_id: str | None
    gate: GateDecision
    servable: tuple[bool, str]
    sweep_of: str | None = None
    version: str | None = None  # registered model version, once registered


@dataclass(frozen=True, kw_only=True)
class Promotion:
    """What the run did in the registry."""

    registered_model: str
    champion_before: str | None  # version
    winner: str | None  # candidate name
    version: str | None  # the winner's version
    aliases: tuple[str, ...]  # aliases moved to it
    note: str


@dataclass(frozen=True, kw_only=True)
class RunResult:
    name: str
    run_id: str | None
    tracking_uri: str | None
    out_dir: Path | None
    data_stats: Mapping[str, int]
    models: tuple[ModelResult, ...]
    promotion: Promotion | None = None


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
    directory.mkdir(exist_ok=True)  # the explanation step may have written shap_summary.png
    plot_group_quality(evaluated.fairness, "ndcg").savefig(directory / "group_ndcg.png", dpi=100)
    plot_exposure(evaluated.fairness).savefig(directory / "exposure.png", dpi=100)


def _describe(spec: Any) -> str:
    params = ", ".join(f"{k}={v}" for k, v in spec.params.model_dump().items())
    parts = [f"{spec.type} ({params}) on {spec.input} input"]
    for step in spec.steps:
        args = ", ".join(f"{k}={v}" for k, v in step.model_dump().items() if k != "kind")
        parts.append(f"{step.kind} ({args})")
    return " + ".join(parts)


class _Experiment:
    """The state one run shares between candidates."""

    def __init__(self, config: ExperimentConfig, dataset: Dataset, split: Split,
                 tracker: Tracker | None, parent: str | None, progress: Progress,
                 champion: Champion | None = None) -> None:
        self.config, self.dataset, self.tracker, self.parent = config, dataset, tracker, parent
        self.progress = progress
        self.split = split
        self.champion = champion
        self.rules: GateRules = rules_from_config(
            config.gate, sensitive=config.fairness.sensitive, k=config.evaluation.k
        )
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
            k=config.evaluation.k,
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
                    sensitive={a: self.ctx.user_labels(a, "fairness.sensitive") for a in self.config.fairness.sensitive},
                    config=self.config.explain,
                    seed=self.config.seed,
                )
            metrics.update(explained.metrics)
            report["explanations"] = explained.note
            if len(explained.frame):
                explained.frame.to_parquet(out / "explanations.parquet", index=False)
                explained.save_summary_plot(out / "plots" / "shap_summary.png")
        metrics = _finite(metrics)
        _recommendations_frame(self.dataset, self.users, ids, scores).to_parquet(
            out / "recommendations.parquet", index=False
        )
        _write_json(out / "metrics.json", metrics)
        _write_json(out / "fairness_report.json", report)
        _save_plots(out / "plots", evaluated)
        servable = self._save_bundle(name, model, reranker, spec, out / "model")
        champion = self.champion
        decision = evaluate_gate(metrics, self.rules, champion=None if champion is None else champion.metrics,
                                 champion_label=None if champion is None else champion.label)
        _write_json(out / "gate.json", decision.to_json())
        self._write_card(out, name, spec, metrics, report, decision, servable)
        if tracker is not None and self.child is not None:
            tracker.log_metrics(self.child, metrics)
            tracker.log_artifacts(self.child, out)
            tracker.set_tags(self.child, {
                "fairrec.status": "complete",
                "fairrec.model_saved": str(servable[0]).lower(),
                "fairrec.gate": "pass" if decision.passed else "fail",
                "fairrec.gate.summary": decision.summary,
            })
            tracker.finish(self.child, ok=True)
        result = ModelResult(name=name, type=spec.type, metrics=metrics, run_id=self.child,
                             gate=decision, servable=servable, sweep_of=cand.sweep_of)
        self.child = None
        return result

    def _save_bundle(self, name: str, model: Recommender, reranker: Any, spec: Any,
                     directory: Path) -> tuple[bool, str]:
        """Write the servable bundle if the candidate can be one; say whether, and why not."""
        try:
            save_bundle(
                directory,
                name=name,
                model=model,
                reranker=reranker,
                n_candidates=spec.steps[-1].n_candidates if reranker is not None else self.k,
                user_ids=self.dataset.interactions.user_ids,
                item_ids=self.dataset.interactions.item_ids,
                items=self.items,
            )
        except NotServableError as exc:
            return False, str(exc)
        return True, "saved as a fairrec bundle"

    def _write_card(self, out: Path, name: str, spec: Any, metrics: Mapping[str, float],
                    report: Mapping[str, Any], decision: GateDecision, servable: tuple[bool, str]) -> None:
        config = self.config
        data = config.data.model_dump(mode="json")
        loader = data.pop("loader")
        blocks = build_card(CardInputs(
            candidate=name,
            experiment=config.name,
            registered_model=(config.gate.registered_model or config.name)
            if self.tracker is not None and config.gate.register_models else None,
            run_id=self.child,
            model_description=_describe(spec),
            data_description=f"{loader} data ({', '.join(f'{k}={v}' for k, v in data.items() if v is not None)})",
            data_stats={
                "users": self.dataset.interactions.n_users,
                "items": self.dataset.interactions.n_items,
                "train interactions": self.split.train.n_interactions,
                "test interactions": self.split.test.n_interactions,
                "test users": int(self.users.size),
            },
            split_description=", ".join(f"{k}={v}" for k, v in config.split.model_dump().items()),
            sensitive=config.fairness.sensitive,
            k=self.k,
            intended_use=config.card.intended_use,
            limitations=list(config.card.limitations) + (
                ["Trained and evaluated on fairrec's synthetic data: a demonstration, not a model for real users."]
                if loader == "synthetic" else []
            ),
            metrics=metrics,
            fairness_report=report,
            explanation_note=report.get("explanations"),
            plots=sorted((out / "plots").glob("*.png")),
            decision=decision,
            servable=servable,
        ))
        (out / "model_card.md").write_text(render_markdown(blocks, relative_to=out), encoding="utf-8")
        (out / "model_card.html").write_text(render_html(blocks), encoding="utf-8")

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
            excluded = {"n_opted_out_users": 0, "n_opted_out_interactions": 0}
            if config.consent.store is not None:
                dataset, excluded = _honour_consent(dataset, config.consent.store)
                progress.info(
                    "  consent: {n_opted_out_users} opted-out user(s), {n_opted_out_interactions} of "
                    "their interactions left out of training and evaluation".format(**excluded)
                )
            _check_attributes(config, dataset)
            with progress.step(f"splitting ({config.split.method})"):
                split = split_dataset(config.split, dataset, seed=config.seed)
            registry: Registry | None = None
            champion: Champion | None = None
            if tracker is not None:
                parent = tracker.start_run(config.name, tags={"fairrec.status": "running"})
                if config.gate.register_models:
                    registry = Registry(tracker, config.gate.registered_model or config.name)
                    champion = registry.champion()
            exp = _Experiment(config, dataset, split, tracker, parent, progress, champion)
            stats = {
                "n_users": dataset.interactions.n_users,
                "n_items": dataset.interactions.n_items,
                "n_interactions": dataset.interactions.n_interactions,
                "n_train": split.train.n_interactions,
                "n_test": split.test.n_interactions,
                "n_test_users": int(exp.users.size),
                **excluded,
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
            promotion: Promotion | None = None
            if registry is not None:
                with progress.step(f"registering {len(results)} version(s) of {registry.name!r}"):
                    results = _register(registry, results, parent)
                promotion = _choose(config, registry.name, results, champion)
            _write_json(root / "summary.json", _summary(config, parent, stats, results, promotion))
            if tracker is not None and parent is not None:
                for path in [root / e for e in ("config.yaml", "summary.json", "users.parquet", "items.parquet")] + frontier_files:
                    tracker.log_artifact(parent, path)
                tracker.log_artifacts(parent, root / "split", "split")
            if registry is not None and promotion is not None and promotion.version is not None:
                for alias in promotion.aliases:  # last MLflow writes: nothing before them failed
                    registry.set_alias(alias, promotion.version)
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
        promotion=promotion,
    )


def _honour_consent(dataset: Dataset, store: Path) -> tuple[Dataset, dict[str, int]]:
    """Leave out every interaction of the users who opted out of personalisation."""
    try:
        opted_out = opted_out_users(store)
    except FairrecError as exc:
        raise FairrecError(f"consent.store: {str(exc).removeprefix('consent_path: ')}") from exc
    before = dataset.interactions.n_interactions
    kept = drop_opted_out(dataset.interactions, opted_out)
    known = np.isin(dataset.interactions.user_ids.astype(str), np.asarray(sorted(opted_out), dtype=str))
    return replace(dataset, interactions=kept), {
        "n_opted_out_users": int(known.sum()),
        "n_opted_out_interactions": int(before - kept.n_interactions),
    }


def _register(registry: Registry, results: list[ModelResult], parent: str | None) -> list[ModelResult]:
    """One registry version per evaluated candidate, tagged with its gate result."""
    out = []
    for r in results:
        if r.run_id is None:  # pragma: no cover - a tracked run always has child runs
            out.append(r)
            continue
        tags = gate_tags(r.gate, candidate=r.name, servable=r.servable)
        if parent is not None:
            tags["fairrec.parent_run"] = parent
        version = registry.register(r.run_id, tags=tags, description=f"{r.name}: {r.gate.summary}")
        out.append(replace(r, version=version))
    return out


def _choose(config: ExperimentConfig, name: str, results: list[ModelResult],
            champion: Champion | None) -> Promotion:
    """The passing, servable candidate with the best ``gate.rank_by`` becomes challenger (and champion)."""
    rank_by = config.gate.rank_by.replace("{k}", str(config.evaluation.k))
    before = None if champion is None else champion.version
    eligible = [r for r in results if r.gate.passed and r.servable[0] and rank_by in r.metrics]
    if not eligible:
        passed_unservable = [r.name for r in results if r.gate.passed and not r.servable[0]]
        note = "no candidate passed the gate; no alias moved"
        if passed_unservable:
            note = (f"no servable candidate passed the gate ({', '.join(passed_unservable)} passed but "
                    "cannot be served); no alias moved")
        return Promotion(registered_model=name, champion_before=before, winner=None, version=None,
                         aliases=(), note=note)
    best = max(eligible, key=lambda r: r.metrics[rank_by])  # first of equals wins
    aliases = (CHALLENGER, CHAMPION) if config.gate.promote else (CHALLENGER,)
    note = (f"{best.name} (version {best.version}) passed the gate with the best {rank_by} "
            f"{best.metrics[rank_by]:.4f} of {len(eligible)} passing candidate(s); now "
            + " and ".join(f"@{a}" for a in aliases))
    return Promotion(registered_model=name, champion_before=before, winner=best.name,
                     version=best.version, aliases=aliases, note=note)


def _summary(config: ExperimentConfig, parent: str | None, stats: Mapping[str, int],
             results: list[ModelResult], promotion: Promotion | None) -> dict[str, Any]:
    return {
        "name": config.name,
        "run_id": parent,
        "data": stats,
        "models": {
            r.name: {
                "run_id": r.run_id,
                "metrics": dict(r.metrics),
                "gate": r.gate.to_json(),
                "servable": r.servable[0],
                "version": r.version,
            }
            for r in results
        },
        "promotion": None if promotion is None else {
            "registered_model": promotion.registered_model,
            "champion_before": promotion.champion_before,
            "winner": promotion.winner,
            "version": promotion.version,
            "aliases": list(promotion.aliases),
            "note": promotion.note,
        },
    }
