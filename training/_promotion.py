"""The MLflow model registry side of the gate: versions, tags and the champion/challenger aliases.

Only aliases and tags are used (registry stages are deprecated). Tags are a
*display copy* of the gate's decision::

    fairrec.gate                pass | fail
    fairrec.gate.summary        one readable sentence
    fairrec.gate.failed         comma-separated blocking checks ("" when none)
    fairrec.gate.check.NAME     "<verdict>: <reason>"
    fairrec.candidate           the candidate's name in its config
    fairrec.servable            true | false, and fairrec.servable.reason
    fairrec.bundle_sha256       the bundle's content hash

What decides is :func:`verify_version`: it recomputes the decision from the run's
logged metrics (each logged exactly once) and the gate rules logged with the run
(whose SHA-256 is an immutable run parameter), with the champion the run was
compared with, and refuses a version whose tags disagree with it: the record was
altered. ``fairrec promote``, ``fairrec serve`` and ``/admin/reload`` all call it.

The registered model carries the promotion policy (``fairrec.policy.sha256``, the
rules' fingerprint), set by the first run that registers it. A run under other
rules registers its versions but moves no alias until the registered model's owner
adopts the new policy (``fairrec policy``).

A store that cannot be reached is a :class:`~training._tracking.TrackingError`,
never mistaken for "no champion yet".
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training._gate import GateDecision, GateRules, evaluate_gate
from training._tracking import Tracker, TrackingError

__all__ = ["CHALLENGER", "CHAMPION", "Champion", "PromotionRefused", "RecordAltered", "Registry", "gate_tags",
           "serving_verifier", "verify_version"]

CHAMPION = "champion"
CHALLENGER = "challenger"
_TAG_KEY = re.compile(r"[^A-Za-z0-9_.\-/ ]")
_TAG_VALUE_MAX = 5000


class PromotionRefused(TrackingError):
    """A version may not be promoted (its gate result is not a pass, or it cannot be served)."""


class RecordAltered(PromotionRefused):
    """The logged record of a version disagrees with itself: someone edited it after the run."""


POLICY_TAG = "fairrec.policy.sha256"
PARAM_RULES = "fairrec.gate.rules_sha256"
PARAM_CHAMPION = "fairrec.gate.champion_run_id"
PARAM_BUNDLE = "fairrec.bundle_sha256"
RULES_ARTIFACT = "gate_rules.json"


@dataclass(frozen=True, kw_only=True)
class Champion:
    version: str
    run_id: str | None
    metrics: Mapping[str, float]

    @property
    def label(self) -> str:
        return f"version {self.version}"


def _not_found(exc: Exception) -> bool:
    return getattr(exc, "error_code", None) in {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"} and (
        "not found" in str(exc).lower() or "does not exist" in str(exc).lower()
        or "no model version" in str(exc).lower()
    )


def gate_tags(decision: GateDecision, *, candidate: str, servable: tuple[bool, str]) -> dict[str, str]:
    tags = {
        "fairrec.gate": "pass" if decision.passed else "fail",
        "fairrec.gate.summary": decision.summary[:_TAG_VALUE_MAX],
        "fairrec.gate.failed": ",".join(c.label for c in decision.failed),
        "fairrec.candidate": candidate,
        "fairrec.servable": str(servable[0]).lower(),
        "fairrec.servable.reason": servable[1],
    }
    for c in decision.checks:
        key = "fairrec.gate.check." + _TAG_KEY.sub("_", c.name)
        tags[key] = f"{c.verdict}: {c.reason}"[:_TAG_VALUE_MAX]
    return tags


class Registry:
    """One registered model in the tracker's registry."""

    def __init__(self, tracker: Tracker, name: str) -> None:
        self.tracker, self.name = tracker, name
        self.client = tracker.client

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        return self.tracker.guard(f"{what} (registered model {self.name!r})", fn, *args, **kwargs)

    def _error(self, what: str, exc: Exception) -> TrackingError:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return TrackingError(f"MLflow registry at {self.tracker.uri}: {what} of {self.name!r} failed: {first}")

    def alias_version(self, alias: str) -> Any | None:
        """The model version behind ``alias``, or None if the model or the alias does not exist."""
        try:
            return self.client.get_model_version_by_alias(self.name, alias)
        except Exception as exc:
            if _not_found(exc):
                return None
            raise self._error(f"reading alias @{alias}", exc) from exc

    def run_metrics(self, run_id: str) -> dict[str, float]:
        run = self._call(f"reading run {run_id}", self.client.get_run, run_id)
        return dict(run.data.metrics)

    def champion(self) -> Champion | None:
        mv = self.alias_version(CHAMPION)
        if mv is None:
            return None
        metrics = self.run_metrics(mv.run_id) if mv.run_id else {}
        return Champion(version=str(mv.version), run_id=mv.run_id, metrics=metrics)

    def version(self, version: str) -> Any:
        return self._call(f"reading version {version}", self.client.get_model_version, self.name, str(version))

    def register(self, run_id: str, *, tags: Mapping[str, str], description: str) -> str:
        """A new version whose source is the run's ``model`` artifact directory (the bundle)."""
        try:
            self.client.get_registered_model(self.name)
        except Exception as exc:
            if not _not_found(exc):
                raise self._error("reading", exc) from exc
            self._call("creating", self.client.create_registered_model, self.name,
                       description="fairrec candidates; @champion is what serving reads")
        mv = self._call(
            "registering a version",
            self.client.create_model_version,
            self.name,
            source=f"runs:/{run_id}/model",
            run_id=run_id,
            tags=dict(tags),
            description=description,
        )
        return str(mv.version)

    def set_alias(self, alias: str, version: str) -> None:
        self._call(f"moving @{alias} to version {version}", self.client.set_registered_model_alias,
                   self.name, alias, str(version))

    def promote(self, version: str) -> GateDecision:
        """Move ``@champion`` to ``version`` if its recomputed decision passes and it can be served."""
        try:
            decision = verify_version(self.client, self.name, str(version))
        except PromotionRefused:
            raise
        except Exception as exc:  # the store, not the verdict
            raise self._error(f"verifying version {version}", exc) from exc
        self.set_alias(CHAMPION, version)
        return decision

    def rollback(self, *, created: list[str], aliases: Mapping[str, str | None]) -> None:
        """Best effort after a failed registration: delete the versions made, put moved aliases back."""
        for alias, before in aliases.items():
            try:
                if before is None:
                    self.client.delete_registered_model_alias(self.name, alias)
                else:
                    self.client.set_registered_model_alias(self.name, alias, before)
            except Exception:  # noqa: BLE001 - the store may be the thing that failed; keep undoing
                pass
        for version in created:
            try:
                self.client.delete_model_version(self.name, version)
            except Exception:  # noqa: BLE001
                pass

    def policy(self) -> str | None:
        """The registered model's promotion policy (the rules' SHA-256), or None when it has none yet."""
        try:
            model = self.client.get_registered_model(self.name)
        except Exception as exc:
            if _not_found(exc):
                return None
            raise self._error("reading", exc) from exc
        return dict(model.tags or {}).get(POLICY_TAG)

    def adopt_policy(self, rules: GateRules) -> None:
        """Record ``rules`` as the registered model's policy (its owner's decision)."""
        self._call("setting the promotion policy", self.client.set_registered_model_tag, self.name, POLICY_TAG,
                   rules.sha256)


def _altered(where: str, what: str) -> RecordAltered:
    return RecordAltered(f"refusing {where}: the record was altered after the run ({what}); the gate's "
                         "decision is recomputed from the logged metrics and rules, never read from tags")


def _single_values(client: Any, run_id: str, names: list[str], where: str) -> None:
    for name in names:
        history = client.get_metric_history(run_id, name)
        if len(history) > 1:
            raise _altered(where, f"metric {name!r} of run {run_id} was logged {len(history)} times")


def _gate_reads(metrics: Mapping[str, float], rules: GateRules) -> list[str]:
    read = {*rules.floors, *rules.ceilings, "explain.protected_reliance", "explain.counterfactual_flip_rate",
            "explain.counterfactual_n_users"}
    if rules.regression_metric:
        read.add(rules.regression_metric)
    return sorted(n for n in metrics if n in read or n.startswith("gate."))


def verify_version(client: Any, name: str, version: str) -> GateDecision:
    """The gate decision of a registered version, recomputed from its run's record; refuse it unless it passes.

    Raises
    ------
    RecordAltered
        The rules artifact does not match its fingerprint, a metric the gate reads was
        logged more than once, or the tags say otherwise than the recomputed decision.
    PromotionRefused
        The version fails the gate or cannot be served.
    """
    where = f"{name!r} version {version}"
    mv = client.get_model_version(name, str(version))
    tags = dict(mv.tags or {})
    if not mv.run_id:
        raise PromotionRefused(f"refusing {where}: it has no run, so no gate record")
    run = client.get_run(mv.run_id)
    params = dict(run.data.params)
    expected = params.get(PARAM_RULES)
    if expected is None:
        raise PromotionRefused(f"refusing {where}: its run {mv.run_id} has no logged gate rules ({PARAM_RULES})")
    with tempfile.TemporaryDirectory(prefix="fairrec-verify-") as tmp:
        local = client.download_artifacts(mv.run_id, RULES_ARTIFACT, tmp)
        try:
            rules = GateRules.from_json(json.loads(Path(local).read_text(encoding="utf-8")))
        except (ValueError, TypeError, KeyError) as exc:
            raise _altered(where, f"{RULES_ARTIFACT} cannot be read: {exc}") from exc
    if rules.sha256 != expected:
        raise _altered(where, f"{RULES_ARTIFACT} does not match the fingerprint logged with the run")
    metrics = dict(run.data.metrics)
    _single_values(client, mv.run_id, _gate_reads(metrics, rules), where)
    champion_run = params.get(PARAM_CHAMPION, "none")
    champion_metrics = None
    if champion_run != "none":
        champion_metrics = dict(client.get_run(champion_run).data.metrics)
        if rules.regression_metric and rules.regression_metric in champion_metrics:
            _single_values(client, champion_run, [rules.regression_metric], where)
    decision = evaluate_gate(metrics, rules, champion=champion_metrics,
                             champion_label=None if champion_metrics is None else f"run {champion_run}")
    shown = tags.get("fairrec.gate")
    if shown != ("pass" if decision.passed else "fail"):
        raise _altered(where, f"its tag fairrec.gate says {shown!r} but the logged record says "
                              f"{'pass' if decision.passed else 'fail'}")
    run_tag = dict(run.data.tags).get("fairrec.gate")
    if run_tag is not None and run_tag != shown:
        raise _altered(where, f"its run's tag fairrec.gate says {run_tag!r}, the version's {shown!r}")
    if not decision.passed:
        raise PromotionRefused(f"refusing {where}: it fails the gate ({decision.summary})")
    bundle = params.get(PARAM_BUNDLE, "none")
    servable = tags.get("fairrec.servable") == "true"
    if servable and bundle == "none":
        raise _altered(where, "its tag fairrec.servable says true but no bundle was logged with the run")
    if not servable:
        raise PromotionRefused(f"refusing {where}: it cannot be served "
                               f"({tags.get('fairrec.servable.reason', 'no servable tag')})")
    return decision


def serving_verifier(client: Any, name: str, version: str) -> str:
    """What ``fairrec serve`` and ``/admin/reload`` run before loading a version: its bundle's expected hash.

    Raises :class:`PromotionRefused` (or :class:`RecordAltered`) as :func:`verify_version` does.
    """
    verify_version(client, name, version)
    run = client.get_run(client.get_model_version(name, str(version)).run_id)
    return str(dict(run.data.params)[PARAM_BUNDLE])
