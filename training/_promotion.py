"""The MLflow model registry side of the gate: versions, tags and the champion/challenger aliases.

Only aliases and tags are used (registry stages are deprecated). Each version
carries its gate result as tags, so ``fairrec promote`` and the service can
refuse a failing version without recomputing anything::

    fairrec.gate                pass | fail
    fairrec.gate.summary        one readable sentence
    fairrec.gate.failed         comma-separated failing checks ("" when none)
    fairrec.gate.check.METRIC   "pass: <reason>" | "fail: <reason>" (a floor or ceiling)
    fairrec.gate.check.METRIC.non_regression   the same for the comparison with the champion
    fairrec.candidate           the candidate's name in its config
    fairrec.servable            true | false, and fairrec.servable.reason

A store that cannot be reached is a :class:`~training._tracking.TrackingError`,
never mistaken for "no champion yet".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from training._gate import GateDecision
from training._tracking import Tracker, TrackingError

__all__ = ["CHALLENGER", "CHAMPION", "Champion", "PromotionRefused", "Registry", "gate_tags"]

CHAMPION = "champion"
CHALLENGER = "challenger"
_TAG_KEY = re.compile(r"[^A-Za-z0-9_.\-/ ]")
_TAG_VALUE_MAX = 5000


class PromotionRefused(TrackingError):
    """A version may not be promoted (its gate result is not a pass, or it cannot be served)."""


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
        "fairrec.gate.summary": decision.summary,
        "fairrec.gate.failed": ",".join(c.label for c in decision.failed),
        "fairrec.candidate": candidate,
        "fairrec.servable": str(servable[0]).lower(),
        "fairrec.servable.reason": servable[1],
    }
    for c in decision.checks:
        suffix = "" if c.comparison in (">=", "<=") else "." + c.comparison.replace("-", "_")
        key = "fairrec.gate.check." + _TAG_KEY.sub("_", c.metric) + suffix
        tags[key] = f"{'pass' if c.passed else 'fail'}: {c.reason}"[:_TAG_VALUE_MAX]
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

    def promote(self, version: str) -> None:
        """Move ``@champion`` to ``version`` if its gate tag says pass and it can be served."""
        mv = self.version(version)
        tags = dict(mv.tags or {})
        gate = tags.get("fairrec.gate")
        if gate != "pass":
            reason = tags.get("fairrec.gate.summary", "it carries no fairrec gate result")
            raise PromotionRefused(
                f"refusing to promote {self.name!r} version {version}: its gate result is "
                f"{gate or 'missing'} ({reason})"
            )
        if tags.get("fairrec.servable") != "true":
            raise PromotionRefused(
                f"refusing to promote {self.name!r} version {version}: it cannot be served "
                f"({tags.get('fairrec.servable.reason', 'no servable tag')})"
            )
        self.set_alias(CHAMPION, version)
