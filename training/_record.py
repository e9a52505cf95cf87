"""What a chosen candidate leaves behind: its folder, its MLflow child run, its gate decision.

The decision is made here from the candidate's *test* metrics (the test split is
read once, for the report and the gate) and recorded with what it needs to be
recomputed later: the rules (``gate_rules.json`` and their SHA-256 as an immutable
run parameter), the champion it was compared with, and the bundle's content hash.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from evaluation import plot_exposure, plot_group_quality
from recsys.data import Dataset
from recsys.serving import NotServableError, bundle_sha256, save_bundle
from training._card import CardInputs, build_card, render_html, render_markdown
from training._candidate import Candidate
from training._explain import explain_candidate
from training._gate import GateDecision, GateRules, evaluate_gate
from training._mlflow_extras import DESCRIPTION_TAG, gate_metric_names, log_candidate, log_dataset_inputs
from training._phase import Phase, Scored
from training._promotion import PARAM_BUNDLE, PARAM_CHAMPION, PARAM_RULES, Champion
from training._pyfunc import add_pyfunc_flavor
from training._degenerate import metric_warnings
from training._schema import ExperimentConfig
from training._tracking import Tracker

__all__ = ["ModelResult", "Recorder", "describe_spec", "write_json"]


@dataclass(frozen=True, kw_only=True)
class ModelResult:
    name: str
    type: str
    metrics: Mapping[str, float]
    run_id: str | None
    gate: GateDecision
    servable: tuple[bool, str]
    validation: Mapping[str, float]
    sweep_of: str | None = None
    version: str | None = None  # registered model version, once registered
    bundle_sha256: str | None = None


def write_json(path: Path, payload: Any) -> None:
    path.write_text(json.dumps(payload, indent=2, sort_keys=True, allow_nan=False) + "\n", encoding="utf-8")


def finite(metrics: Mapping[str, float]) -> dict[str, float]:
    """JSON and MLflow take finite numbers only; an undefined metric is left out, not faked."""
    return {k: float(v) for k, v in metrics.items() if v is not None and math.isfinite(float(v))}


def describe_spec(spec: Any) -> str:
    params = ", ".join(f"{k}={v}" for k, v in spec.params.model_dump().items())
    parts = [f"{spec.type} ({params}) on {spec.input} input"]
    for step in spec.steps:
        args = ", ".join(f"{k}={v}" for k, v in step.model_dump().items() if k != "kind")
        parts.append(f"{step.kind} ({args})")
    return " + ".join(parts)


def _recommendations_frame(dataset: Dataset, users: np.ndarray, ids: np.ndarray, scores: np.ndarray) -> pd.DataFrame:
    valid = ids >= 0
    rows, ranks = np.nonzero(valid)
    return pd.DataFrame({
        "user_id": dataset.interactions.user_ids[users[rows]],
        "item_id": dataset.interactions.item_ids[ids[valid]],
        "rank": (ranks + 1).astype(np.int32),
        "score": scores[valid].astype(np.float64),
    })


class Recorder:
    """Writes a chosen candidate's outputs and child run; one per run."""

    def __init__(self, config: ExperimentConfig, phase: Phase, tracker: Tracker | None, parent: str | None,
                 champion: Champion | None, root: Path) -> None:
        self.config, self.phase, self.tracker, self.parent = config, phase, tracker, parent
        self.champion, self.root = champion, root
        self.rules: GateRules = phase.rules
        self.dataset = getattr(phase, "dataset", None)  # in-process only; the Spark recorder has none
        self.child: str | None = None
        self.dataset_inputs: list[Any] = []
        self.warnings: list[str] = []  # training._degenerate.data_warnings of this run's data
        self.consent: dict[str, float] = {}  # the run's consent.* metrics, part of every candidate's (gate, card)
        items = phase.items
        self._titles = (items["title"] if "title" in items.columns else items["item_id"]).astype(str).to_numpy()
        segments = set(config.fairness.segments)
        self._explained_attributes = [a for a in config.fairness.sensitive if a not in segments]
        (root / "gate_rules.json").write_text(
            json.dumps(self.rules.to_json(), indent=2, sort_keys=True) + "\n", encoding="utf-8")

    def record(self, scored: Scored, validation: Mapping[str, float]) -> ModelResult:
        cand: Candidate = scored.candidate
        spec, name, tracker, phase = cand.spec, cand.name, self.tracker, self.phase
        out = self.root / name
        out.mkdir()
        if tracker is not None:
            tags = {"fairrec.model_type": spec.type, "fairrec.status": "running"}
            if cand.sweep_of is not None:
                tags["fairrec.sweep_of"] = cand.sweep_of
            self.child = tracker.start_run(name, parent=self.parent, tags=tags)
            mitigation = {f"mitigation.{step.kind}.{k}": v for step in spec.steps
                          for k, v in step.model_dump().items() if k != "kind"}
            tracker.log_params(self.child, {"type": spec.type, "input": spec.input, **spec.params.model_dump(),
                                            **mitigation})
            log_dataset_inputs(tracker, self.child, self.dataset_inputs)
        metrics = {**scored.metrics, **self.consent}
        report = dict(scored.report)
        # the bundle first: an engine whose servable model differs from the fitted one (Spark) explains it
        servable = self._save_bundle(name, scored, spec, out / "model")
        if self.config.explain.enabled:
            with phase.progress.step(f"[{name}] explaining {self.config.explain.n_users} users' lists"):
                explained = self._explain(scored)
            metrics.update(explained.metrics)
            report["explanations"] = explained.note
            if len(explained.frame):
                explained.frame.to_parquet(out / "explanations.parquet", index=False)
                explained.save_summary_plot(out / "plots" / "shap_summary.png")
        metrics = finite(metrics)
        self._write_lists(scored, out)
        write_json(out / "metrics.json", metrics)
        write_json(out / "validation_metrics.json", finite(validation))
        write_json(out / "fairness_report.json", report)
        (out / "plots").mkdir(exist_ok=True)
        plot_group_quality(scored.evaluated.fairness, "ndcg").savefig(out / "plots" / "group_ndcg.png", dpi=100)
        plot_exposure(scored.evaluated.fairness).savefig(out / "plots" / "exposure.png", dpi=100)
        digest = bundle_sha256(out / "model") if servable[0] else None
        champion = self.champion
        decision = evaluate_gate(metrics, self.rules, champion=None if champion is None else champion.metrics,
                                 champion_label=None if champion is None else champion.label)
        write_json(out / "gate.json", decision.to_json())
        self._write_card(out, name, spec, metrics, report, decision, servable)
        if tracker is not None and self.child is not None:
            tracker.log_params(self.child, {
                PARAM_RULES: self.rules.sha256,
                PARAM_CHAMPION: "none" if champion is None or champion.run_id is None else champion.run_id,
                PARAM_BUNDLE: digest or "none",
            })
            headline = {f"validation.{k}": v for k, v in validation.items() if "." not in k}
            log_candidate(tracker, self.child, {**metrics, **headline}, sensitive=self.config.fairness.sensitive,
                          keep=gate_metric_names(self.rules) | set(headline), report=report,
                          decision=decision.to_json())
            tracker.log_artifacts(self.child, out)
            tracker.log_artifact(self.child, self.root / "gate_rules.json")
            tracker.set_tags(self.child, {
                DESCRIPTION_TAG: (
                    f"Candidate {name} of {self.config.name}: {describe_spec(spec)}; chosen on validation, "
                    f"refitted on all training data, top-{phase.k} lists of {self._data_stats()['test users']} "
                    "test users. "
                    f"Gate: {decision.summary}. Per-group values are in the tables/ artifacts (and metrics.json)."
                ),
                "fairrec.status": "complete",
                "fairrec.model_saved": str(servable[0]).lower(),
                "fairrec.gate": "pass" if decision.passed else "fail",
                "fairrec.gate.summary": decision.summary[:4000],
            })
            tracker.finish(self.child, ok=True)
        result = ModelResult(name=name, type=spec.type, metrics=metrics, run_id=self.child, gate=decision,
                             servable=servable, validation=finite(validation), sweep_of=cand.sweep_of,
                             bundle_sha256=digest)
        self.child = None
        return result

    # ------------------------------------------------ what differs between engines (see _spark_record)
    def _explain(self, scored: Scored) -> Any:
        """The sampled users' explanations and their scores (``training._explain``)."""
        return explain_candidate(
            scored.model, scored.ids, self.phase.users,
            user_ids=self.dataset.interactions.user_ids, item_ids=self.dataset.interactions.item_ids,
            titles=self._titles, sensitive={a: self.phase.labels[a] for a in self._explained_attributes},
            config=self.config.explain, seed=self.config.seed,
        )

    def _write_lists(self, scored: Scored, out: Path) -> None:
        _recommendations_frame(self.dataset, self.phase.users, scored.ids, scored.scores).to_parquet(
            out / "recommendations.parquet", index=False)

    def _data_stats(self) -> dict[str, int]:
        phase = self.phase
        return {
            "users": self.dataset.interactions.n_users,
            "items": self.dataset.interactions.n_items,
            "train interactions": phase.split.train.n_interactions,
            "test interactions": phase.split.test.n_interactions,
            "test users": int(phase.users.size),
        }

    def _save_bundle(self, name: str, scored: Scored, spec: Any, directory: Path) -> tuple[bool, str]:
        """Write the servable bundle if the candidate can be one; say whether, and why not."""
        try:
            save_bundle(
                directory, name=name, model=scored.model, reranker=scored.reranker,
                n_candidates=spec.steps[-1].n_candidates if scored.reranker is not None else self.phase.k,
                user_ids=self.dataset.interactions.user_ids, item_ids=self.dataset.interactions.item_ids,
                items=self.phase.items,
            )
        except NotServableError as exc:
            return False, str(exc)
        add_pyfunc_flavor(directory, k=self.phase.k)  # the bundle directory is also an MLflow pyfunc model
        return True, "saved as a fairrec bundle"

    def _write_card(self, out: Path, name: str, spec: Any, metrics: Mapping[str, float],
                    report: Mapping[str, Any], decision: GateDecision, servable: tuple[bool, str]) -> None:
        config, phase = self.config, self.phase
        data = config.data.model_dump(mode="json")
        loader = data.pop("loader")
        blocks = build_card(CardInputs(
            candidate=name,
            experiment=(config.tracking.experiment or config.name) if self.tracker is not None else config.name,
            registered_model=(config.gate.registered_model or config.name)
            if self.tracker is not None and config.gate.register_models else None,
            run_id=self.child,
            model_description=describe_spec(spec),
            data_description=f"{loader} data ({', '.join(f'{k}={v}' for k, v in data.items() if v is not None)})",
            data_stats=self._data_stats(),
            split_description=", ".join(f"{k}={v}" for k, v in config.split.model_dump().items())
            + "; candidates chosen on a validation hold-out of the training data, refitted on all of it",
            sensitive=config.fairness.sensitive,
            k=phase.k,
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
            warnings=[*self.warnings, *metric_warnings(config, metrics)],
        ))
        (out / "model_card.md").write_text(render_markdown(blocks, relative_to=out), encoding="utf-8")
        (out / "model_card.html").write_text(render_html(blocks), encoding="utf-8")

