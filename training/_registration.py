"""The last step of a run: register every chosen candidate, then move the aliases.

It runs after the output directory is committed. If any registry call fails,
the versions this run created are deleted and an alias it moved is put back,
so a failed run leaves no registered version and no moved alias.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from training._gate import GateRules
from training._promotion import CHALLENGER, CHAMPION, Champion, Registry, gate_tags
from training._record import ModelResult
from training._schema import ExperimentConfig
from training._selection import Nearest, Validated, binding_checks

__all__ = ["Promotion", "RunResult", "open_registry", "plan_promotion", "register_and_promote", "summary"]


@dataclass(frozen=True, kw_only=True)
class Promotion:
    """What the run did (or will do) in the registry."""

    registered_model: str | None
    champion_before: str | None  # version
    winner: str | None  # candidate name
    version: str | None  # the winner's version
    aliases: tuple[str, ...]  # aliases moved to it
    note: str
    binding: tuple[tuple[str, int], ...] = ()
    nearest: Nearest | None = None


@dataclass(frozen=True, kw_only=True)
class RunResult:
    name: str
    run_id: str | None
    tracking_uri: str | None
    out_dir: Path | None
    data_stats: dict[str, int]
    models: tuple[ModelResult, ...]
    promotion: Promotion | None = None
    validation: tuple[Validated, ...] = ()
    warnings: tuple[str, ...] = ()  # degenerate metrics (training._degenerate), also in summary.json


def open_registry(config: ExperimentConfig, tracker: Any) -> tuple[Registry | None, Champion | None]:
    """The run's registered model and its current champion (none without tracking or registration)."""
    if tracker is None or not config.gate.register_models:
        return None, None
    registry = Registry(tracker, config.gate.registered_model or config.name)
    return registry, registry.champion()


def plan_promotion(config: ExperimentConfig, registry: Registry | None, results: list[ModelResult],
                   champion: Champion | None, rank_by: str, *, nearest: Nearest | None) -> Promotion:
    """The passing, servable candidate with the best *validation* ``rank_by`` wins."""
    name = None if registry is None else registry.name
    before = None if champion is None else champion.version
    binding = tuple(binding_checks([r.gate for r in results]))
    eligible = [r for r in results if r.gate.passed and r.servable[0] and rank_by in r.validation]
    if not eligible:
        passed_unservable = [r.name for r in results if r.gate.passed and not r.servable[0]]
        note = "no candidate passed the gate; no alias moved"
        if passed_unservable:
            note = (f"no servable candidate passed the gate ({', '.join(passed_unservable)} passed but "
                    "cannot be served); no alias moved")
        if binding:
            note += "; binding checks: " + ", ".join(f"{c} ({n} candidate(s))" for c, n in binding)
        if nearest is not None and nearest.passing_on_validation:
            note += ("; passed on validation but not on test: " + ", ".join(nearest.passing_on_validation))
        elif nearest is not None:
            note += (f"; nearest to passing on validation: {nearest.name} (blocked by "
                     f"{', '.join(nearest.blocking)})")
        return Promotion(registered_model=name, champion_before=before, winner=None, version=None, aliases=(),
                         note=note, binding=binding, nearest=nearest)
    best = max(eligible, key=lambda r: r.validation[rank_by])  # first of equals wins
    aliases = (() if registry is None else (CHALLENGER, CHAMPION) if config.gate.promote else (CHALLENGER,))
    note = (f"{best.name} passed the gate with the best validation {rank_by} {best.validation[rank_by]:.4f} of "
            f"{len(eligible)} passing candidate(s) (test {best.metrics.get(rank_by, float('nan')):.4f})")
    if aliases:
        note += "; now " + " and ".join(f"@{a}" for a in aliases)
    return Promotion(registered_model=name, champion_before=before, winner=best.name, version=None,
                     aliases=aliases, note=note, binding=binding, nearest=nearest)


def register_and_promote(registry: Registry, results: list[ModelResult], parent: str | None,
                         plan: Promotion, rules: GateRules) -> tuple[list[ModelResult], Promotion]:
    """Register every result, then move the planned aliases; undo everything on failure.

    Aliases move only under the registered model's own promotion policy: a run
    whose rules differ registers its versions and says so, but moves nothing.
    """
    policy = registry.policy()
    created: list[str] = []
    previous: dict[str, str | None] = {}
    try:
        out = []
        for r in results:
            if r.run_id is None:  # pragma: no cover - a tracked run always has child runs
                out.append(r)
                continue
            tags = gate_tags(r.gate, candidate=r.name, servable=r.servable)
            if parent is not None:
                tags["fairrec.parent_run"] = parent
            if r.bundle_sha256:
                tags["fairrec.bundle_sha256"] = r.bundle_sha256
            version = registry.register(r.run_id, tags=tags, description=f"{r.name}: {r.gate.summary}"[:5000])
            created.append(version)
            out.append(replace(r, version=version))
        winner = next((r for r in out if r.name == plan.winner), None)
        if winner is not None and plan.aliases and policy is not None and policy != rules.sha256:
            return out, replace(plan, version=winner.version, aliases=(), note=(
                f"{winner.name} (version {winner.version}) passed this run's gate, but this run's rules "
                f"(sha256 {rules.sha256[:12]}) are not the promotion policy of {registry.name!r} "
                f"(sha256 {policy[:12]}); no alias moved. The registered model's owner adopts new rules "
                f"with `fairrec policy CONFIG --model {registry.name}`"))  # training/cli.py _cmd_policy
        if winner is not None and winner.version is not None:
            if policy is None and plan.aliases:
                registry.adopt_policy(rules)
            for alias in plan.aliases:
                before = registry.alias_version(alias)
                previous[alias] = None if before is None else str(before.version)
                registry.set_alias(alias, winner.version)
            note = plan.note.replace(f"{winner.name} passed", f"{winner.name} (version {winner.version}) passed", 1)
            return out, replace(plan, version=winner.version, note=note)
        return out, plan
    except BaseException:
        registry.rollback(created=created, aliases=previous)
        raise


def summary(config: ExperimentConfig, parent: str | None, stats: Mapping[str, int], results: list[ModelResult],
            promotion: Promotion | None, *, registry_status: str) -> dict[str, Any]:
    nearest = None if promotion is None else promotion.nearest
    return {
        "name": config.name,
        "run_id": parent,
        "data": dict(stats),
        "selection": ("sweep values and the champion are chosen on validation metrics (a hold-out of the "
                      "training data); the test split is read once, for the reported metrics and the gate"),
        "models": {
            r.name: {
                "run_id": r.run_id,
                "metrics": dict(r.metrics),
                "validation_metrics": dict(r.validation),
                "gate": r.gate.to_json(),
                "servable": r.servable[0],
                "version": r.version,
                "bundle_sha256": r.bundle_sha256,
            }
            for r in results
        },
        "registry": registry_status,
        "promotion": None if promotion is None else {
            "registered_model": promotion.registered_model,
            "champion_before": promotion.champion_before,
            "winner": promotion.winner,
            "version": promotion.version,
            "aliases": list(promotion.aliases),
            "note": promotion.note,
            "binding_checks": [{"check": c, "candidates": n} for c, n in promotion.binding],
            "nearest_on_validation": None if nearest is None else {
                "candidate": nearest.name, "blocking": list(nearest.blocking),
                "shortfall": nearest.shortfall,
                "passing_on_validation": list(nearest.passing_on_validation),
            },
        },
    }
