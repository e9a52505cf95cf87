"""One experiment: load -> split (train / validation / test) -> choose on validation -> refit -> test -> log.

What a run leaves behind in its output directory (and in MLflow as artifacts)::

    config.yaml                    resolved config (credentials in URIs redacted)
    gate_rules.json                the resolved gate rules every decision was made under
    split/train.parquet            user_id, item_id[, rating][, timestamp]
    split/test.parquet             relevant held-out items only
    users.parquet                  operator's data: ids and attributes (NOT logged to MLflow)
    items.parquet                  ids and attributes (items also: popularity, popularity_group)
    validation.json                every candidate's validation metrics and validation gate decision
    NAME/recommendations.parquet   user_id, item_id, rank (1..k), score (test users)
    NAME/metrics.json              flat {metric name: number} on test, with the gate's evidence (gate.*)
    NAME/validation_metrics.json   the same on validation (what chose it)
    NAME/fairness_report.json      per-group tables, CIs, exposure, amplification, twin comparison
    NAME/explanations.parquet      sampled users: user_id, item_id, rank, method, reasons, weights, text
    NAME/plots/*.png               per-group quality bars, exposure by item group
    NAME/model/                    the servable bundle (JSON + npz + parquet, no pickle), an MLflow pyfunc model
    NAME/gate.json                 the gate decision: every check with estimate, CI, sizes, p-value, verdict
    NAME/model_card.md, .html      intended use, data, metrics, per-group tables, plots, gate, limitations
    frontier_SWEEP.csv/.png        relevance-fairness frontier of each swept mitigation (validation numbers)
    summary.json                   every chosen candidate's metrics, run id, gate verdict, registered version,
                                   the promotion, and what would pass when nothing does

Order of the last steps: every candidate is recorded, the output directory is
committed, and only then are versions registered and aliases moved. A run that
fails anywhere registers nothing and moves no alias (a registration that fails
half-way deletes the versions it made).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from recsys.data import Dataset, Interactions, Split
from recsys.errors import FairrecError
from recsys.serving import drop_opted_out, drop_withdrawn_categories, opted_out_users, withdrawn_categories
from training._checks import check_data, check_rank_by
from training._components import load_dataset, split_dataset, validation_split
from training._config import config_params, config_to_dict
from training._consent_report import consent_training_metrics
from training._frontier import frontier_table, plot_frontier, target_metric
from training._gate import evaluate_gate, experiment_rules
from training._degenerate import data_warnings, metric_warnings
from training._mlflow_extras import DESCRIPTION_TAG, log_dataset_inputs, split_dataset_inputs
from training._outdir import StagedDir
from training._phase import Phase
from training._progress import Progress
from training._record import ModelResult, Recorder, finite, write_json
from training._registration import (
    Promotion,
    RunResult,
    open_registry,
    plan_promotion,
    register_and_promote,
    summary,
)
from training._schema import ExperimentConfig
from training._selection import Validated, choose_candidates, nearest_passing, validation_rules
from training._tracking import Tracker

__all__ = ["ModelResult", "Promotion", "RunResult", "run_experiment"]


def _attribute_source(config: ExperimentConfig, kind: str) -> str:
    """Where a user or item attribute should have come from, for an error message."""
    file = getattr(config.data, kind, None)  # the table loader's users / items file
    if file is not None:
        return f" (columns of {file}; rename one with data.{kind[:-1]}_columns)"
    if config.data.loader == "table":
        return f" (no data.{kind} file is given)"
    return f" ({config.data.loader} data)"


def _check_attributes(config: ExperimentConfig, dataset: Dataset) -> None:
    fc = config.fairness
    user_cols = [c for c in dataset.users.columns if c != "user_id"]
    item_cols = [c for c in dataset.items.columns if c != "item_id"]
    for attr in fc.sensitive:
        if attr not in user_cols:
            raise FairrecError(
                f"fairness.sensitive: {attr!r} is not a user attribute of this data; available: "
                f"{', '.join(user_cols) or 'none'}{_attribute_source(config, 'users')}"
            )
    if fc.item_group != "popularity" and fc.item_group not in item_cols:
        raise FairrecError(
            f"fairness.item_group: {fc.item_group!r} is neither 'popularity' nor an item attribute; "
            f"available: {', '.join(item_cols) or 'none'}{_attribute_source(config, 'items')}"
        )
    if fc.amplification_attribute not in item_cols:
        raise FairrecError(
            f"fairness.amplification_attribute: {fc.amplification_attribute!r} is not an item "
            f"attribute; available: {', '.join(item_cols) or 'none'}{_attribute_source(config, 'items')}"
        )


def _write_inputs(root: Path, config: ExperimentConfig, dataset: Dataset, split: Split, items: Any) -> None:
    (root / "split").mkdir()
    (root / "config.yaml").write_text(yaml.safe_dump(config_to_dict(config), sort_keys=False), encoding="utf-8")
    split.train.to_frame().to_parquet(root / "split" / "train.parquet", index=False)
    split.test.to_frame().to_parquet(root / "split" / "test.parquet", index=False)
    # the operator's data: only the attributes the numbers need, readable by the owner only
    needed = ["user_id", *config.fairness.sensitive]
    needed += [a for spec in config.models for step in spec.steps
               if (a := getattr(step, "user_attribute", None)) and a not in needed]
    dataset.users[[c for c in needed if c in dataset.users.columns]].to_parquet(root / "users.parquet", index=False)
    (root / "users.parquet").chmod(0o600)
    items.to_parquet(root / "items.parquet", index=False)


def _validate(config: ExperimentConfig, phase: Phase, candidates: list[Any], progress: Progress,
              consent: dict[str, float]) -> list[Validated]:
    out = []
    with progress.candidates("validation", len(candidates)) as start:  # n/N, stage and ETA
        for cand in candidates:
            start(cand.name)
            scored = phase.score(cand)
            metrics = {**finite(scored.metrics), **consent}  # the run's consent.*: a gate rule may read them
            out.append(Validated(candidate=cand, metrics=metrics, gate=evaluate_gate(metrics, phase.rules)))
    return out


def _write_frontiers(config: ExperimentConfig, dataset: Dataset, validated: list[Validated], root: Path,
                     progress: Progress) -> list[Path]:
    fc, paths, k = config.fairness, [], config.evaluation.k
    groups = {a: sorted(dataset.users[a].astype("string").fillna("unknown").unique()) for a in fc.sensitive}
    for spec in config.models:
        if spec.sweep is None:
            continue
        rows = [(v.candidate.sweep_value, {**v.metrics, "gate.passed": float(v.gate.passed)})
                for v in validated if v.candidate.sweep_of == spec.name]
        step, _ = spec.sweep_target()
        target = target_metric(step, sensitive=fc.sensitive, item_group=fc.item_group,
                               protected_group=fc.protected_group,
                               amplification_attribute=fc.amplification_attribute, k=k)
        table = frontier_table(rows, parameter=spec.sweep.parameter, target=target,
                               sensitive=fc.sensitive, group_columns=groups, k=k)
        table["validation gate"] = ["pass" if m["gate.passed"] else "fail" for _, m in rows]
        csv, png = root / f"frontier_{spec.name}.csv", root / f"frontier_{spec.name}.png"
        table.to_csv(csv, index=False)
        plot_frontier(table, parameter=spec.sweep.parameter, target=target, k=k,
                      title=f"{spec.name}: {step.kind} sweep (validation)").savefig(png, dpi=100)
        paths += [csv, png]
        progress.info(f"  frontier of {spec.name} (validation numbers): {csv.name}")
    return paths


def run_experiment(
    config: ExperimentConfig,
    *,
    out_dir: Path | None = None,
    tracker: Tracker | None = None,
    progress: Progress | None = None,
) -> RunResult:
    """Run every candidate of ``config``; see the module docstring for the outputs."""
    from training._candidate import expand_sweeps

    if config.engine.kind == "spark":  # the Spark engine's run: training/_spark_run.py
        from training._spark_run import run_on_spark

        return run_on_spark(config, out_dir=out_dir, tracker=tracker, progress=progress)

    progress = progress or Progress(quiet=True)
    parent: str | None = None
    recorder: Recorder | None = None
    try:
        with StagedDir(out_dir) as staged:
            root = staged.path
            with progress.step(f"loading data ({config.data.loader})"):
                dataset = load_dataset(config.data, seed=config.seed)
            excluded = {"n_opted_out_users": 0, "n_opted_out_interactions": 0, "n_withdrawn_category_interactions": 0}
            everyone = dataset.users  # opted-out users leave the dataset, not the consent metrics' groups
            if config.consent.store is not None:
                dataset, excluded = _honour_consent(dataset, config.consent.store)
                progress.info("  consent: {n_opted_out_users} opted-out user(s), {n_opted_out_interactions} of "
                              "their interactions left out of training and evaluation; {n_withdrawn_category_interactions} "
                              "interaction(s) in categories users withdrew".format(**excluded))
            _check_attributes(config, dataset)
            check_data(config, dataset)  # settings against this data: a clear error, not a traceback later
            warnings = data_warnings(config, dataset)  # metrics that would degenerate: named, not silent
            # consent as a metric (opt-out rates per group, with sizes): the run's, and every candidate's,
            # so the gate can put a ceiling on them (consent.opt_out_rate.ATTR.difference)
            consent = ({} if config.consent.store is None else
                       finite(consent_training_metrics(config.consent.store, everyone, config.fairness.sensitive)))
            with progress.step(f"splitting ({config.split.method}) into train, validation and test"):
                split = split_dataset(config.split, dataset, seed=config.seed)
                inner = validation_split(config.split, split, seed=config.seed)
            if tracker is not None:
                parent = tracker.start_run(config.name, tags={"fairrec.status": "running"})
            registry, champion = open_registry(config, tracker)
            fc = config.fairness
            rules = experiment_rules(config)
            candidates = expand_sweeps(list(config.models))
            val = Phase("validation", config, dataset, inner, validation_rules(rules), progress)
            stats = {
                "n_users": dataset.interactions.n_users, "n_items": dataset.interactions.n_items,
                "n_interactions": dataset.interactions.n_interactions, "n_train": split.train.n_interactions,
                "n_test": split.test.n_interactions, "n_validation": inner.test.n_interactions,
                "n_validation_users": int(val.users.size), **excluded, **consent,
            }
            progress.info(f"  data: {stats['n_users']} users, {stats['n_items']} items, {stats['n_train']} train "
                          f"({stats['n_validation']} of them held out for validation) / {stats['n_test']} test "
                          "interactions")
            progress.info(f"  {len(candidates)} candidate(s) scored on validation; the chosen ones are refitted "
                          "and scored on test once")
            validated = _validate(config, val, candidates, progress, consent)
            check_rank_by(config, validated[0].metrics)
            rank_by = config.gate.rank_by.replace("{k}", str(config.evaluation.k))
            chosen = choose_candidates(validated, rank_by)
            del val
            test = Phase("test", config, dataset, split, rules, progress)
            stats["n_test_users"] = int(test.users.size)
            _write_inputs(root, config, dataset, split, test.items)
            write_json(root / "validation.json", {
                v.candidate.name: {"metrics": v.metrics, "gate": v.gate.to_json()} for v in validated})
            recorder = Recorder(config, test, tracker, parent, champion, root)
            recorder.warnings = list(warnings)
            recorder.consent = consent
            if tracker is not None and parent is not None:
                tracker.log_params(parent, config_params(config))
                tracker.log_metrics(parent, stats)
                recorder.dataset_inputs = split_dataset_inputs(
                    {"training": split.train.to_frame(), "testing": split.test.to_frame()}, name=config.name,
                    source=str(getattr(config.data, "path", None) or getattr(config.data, "interactions", None)
                               or config.data.loader))
                log_dataset_inputs(tracker, parent, recorder.dataset_inputs)
            by_name = {v.candidate.name: v for v in validated}
            results = []
            with progress.candidates("test", len(chosen)) as start:
                for cand in chosen:
                    start(cand.name)
                    results.append(recorder.record(test.score(cand), by_name[cand.name].metrics))
            frontier_files = _write_frontiers(config, dataset, validated, root, progress)
            warnings += [f"{r.name}: {w}" for r in results for w in metric_warnings(config, r.metrics)]
            plan = plan_promotion(config, registry, results, champion, rank_by,
                                  nearest=nearest_passing(validated))
            write_json(root / "summary.json", {**summary(config, parent, stats, results, plan, registry_status="pending"),
                                               "warnings": warnings})
            if tracker is not None and parent is not None:
                for path in [root / e for e in ("config.yaml", "gate_rules.json", "items.parquet",
                                                "validation.json")] + frontier_files:
                    tracker.log_artifact(parent, path)  # users.parquet stays local: it is the operator's data
                tracker.log_artifacts(parent, root / "split", "split")
            final_dir = staged.commit()
        promotion = plan
        if registry is not None:
            with progress.step(f"registering {len(results)} version(s) of {registry.name!r}"):
                results, promotion = register_and_promote(registry, results, parent, plan, rules)
        if final_dir is not None:
            _rewrite(final_dir / "summary.json",
                     {**summary(config, parent, stats, results, promotion, registry_status="done"),
                      "warnings": warnings})
        if tracker is not None and parent is not None:
            if final_dir is not None:
                tracker.log_artifact(parent, final_dir / "summary.json")
            tracker.set_tags(parent, {"fairrec.status": "complete",
                                      "fairrec.warnings": "\n".join(warnings) or "none",
                                      DESCRIPTION_TAG: _describe_run(config, validated, results, promotion)})
            tracker.finish(parent, ok=True)
    except BaseException:
        if tracker is not None:
            child = None if recorder is None else recorder.child
            for run_id in (child, parent):
                if run_id is not None:
                    tracker.try_fail(run_id)
        raise
    return RunResult(name=config.name, run_id=parent, tracking_uri=None if tracker is None else tracker.uri,
                     out_dir=final_dir, data_stats=stats, models=tuple(results), promotion=promotion,
                     validation=tuple(validated), warnings=tuple(warnings))


def _describe_run(config: ExperimentConfig, validated: Any, results: Any, promotion: Any) -> str:
    """The parent run's description in the MLflow UI."""
    outcome = "" if promotion is None else f" {promotion.note}."
    return (f"fairrec run of {config.name} on {config.data.loader} data: {len(validated)} candidate(s) scored "
            f"on validation, {len(results)} refitted and scored on test (one child run each).{outcome}")


def _rewrite(path: Path, payload: Any) -> None:
    """Replace a committed file in one rename, so a reader never sees half of it."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True, allow_nan=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _without_users(dataset: Dataset, gone: np.ndarray) -> Dataset:
    """``dataset`` with the users marked ``gone`` removed from the vocabulary and the users table."""
    if not gone.any():
        return dataset
    it = dataset.interactions
    keep = ~gone
    new_index = np.cumsum(keep) - 1
    coo = it.matrix.tocoo()  # row-major, so the entries stay aligned with the timestamps
    kept = Interactions.from_arrays(
        user_index=new_index[coo.row], item_index=coo.col, user_ids=it.user_ids[keep], item_ids=it.item_ids,
        values=coo.data, timestamps=it.timestamps, has_ratings=it.has_ratings,
    )
    users = dataset.users.loc[keep].reset_index(drop=True)
    return replace(dataset, interactions=kept, users=users)


def _honour_consent(dataset: Dataset, store: Path) -> tuple[Dataset, dict[str, int]]:
    """Leave out every interaction of the users who opted out of personalisation."""
    try:
        opted_out = opted_out_users(store)
    except FairrecError as exc:
        raise FairrecError(f"consent.store: {str(exc).removeprefix('consent_path: ')}") from exc
    before = dataset.interactions.n_interactions
    kept = drop_opted_out(dataset.interactions, opted_out)
    after_opt_out = kept.n_interactions
    # interactions with item categories a user withdrew from personalisation are left out too
    categories = dataset.items["category"].astype(str).to_numpy() if "category" in dataset.items.columns else None
    if categories is not None:
        kept = drop_withdrawn_categories(kept, withdrawn_categories(store), categories)
    known = np.isin(dataset.interactions.user_ids.astype(str), np.asarray(sorted(opted_out), dtype=str))
    # a user who opted out (or was erased) left no interaction: they leave the vocabulary too, so no
    # file of the run (users.parquet, a bundle's vocabulary) names them
    gone = (np.diff(dataset.interactions.matrix.indptr) > 0) & (np.diff(kept.matrix.indptr) == 0)
    dataset = _without_users(replace(dataset, interactions=kept), gone)
    return dataset, {
        "n_opted_out_users": int(known.sum()),
        "n_opted_out_interactions": int(before - after_opt_out),
        "n_withdrawn_category_interactions": int(after_opt_out - kept.n_interactions),
    }
