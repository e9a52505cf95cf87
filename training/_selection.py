"""Choosing from validation numbers: a sweep's value, the champion, and what would pass when nothing does.

Nothing here reads a test metric to choose. The sweep's value is the best
validation ``rank_by`` among the values whose *validation* gate passes; the
champion is the best validation ``rank_by`` among the chosen candidates whose
*test* gate passes (the test split decides pass or fail, never the order).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from training._candidate import Candidate
from training._gate import GateDecision, GateRules

__all__ = ["Nearest", "Validated", "binding_checks", "choose_candidates", "nearest_passing", "validation_rules"]


@dataclass(frozen=True, kw_only=True)
class Validated:
    """A candidate's validation metrics and validation gate decision."""

    candidate: Candidate
    metrics: Mapping[str, float]
    gate: GateDecision


def _rank(v: Validated, rank_by: str) -> float:
    value = v.metrics.get(rank_by)
    return float(value) if value is not None and math.isfinite(value) else -math.inf


def choose_candidates(validated: Sequence[Validated], rank_by: str) -> list[Candidate]:
    """Every unswept candidate, and one value per sweep (in config order).

    A sweep's value is the best on validation ``rank_by`` among those that pass the
    validation gate; when none passes, the one with the fewest blocking checks
    (then the best ``rank_by``), so the test report shows what blocks it.
    """
    chosen: list[Candidate] = []
    seen: set[str] = set()
    for v in validated:
        sweep = v.candidate.sweep_of
        if sweep is None:
            chosen.append(v.candidate)
            continue
        if sweep in seen:
            continue
        seen.add(sweep)
        values = [w for w in validated if w.candidate.sweep_of == sweep]
        best = max(values, key=lambda w: (w.gate.passed, -len(w.gate.failed), _rank(w, rank_by)))
        chosen.append(best.candidate)
    return chosen


@dataclass(frozen=True, kw_only=True)
class Nearest:
    """The validation candidate closest to passing and by how much it misses."""

    name: str
    shortfall: float  # summed relative distance of its blocking checks from their thresholds
    blocking: tuple[str, ...]
    passing_on_validation: tuple[str, ...]


def _distance(check: Any) -> float:
    if check.value is None or check.threshold is None:
        return 1.0  # a missing value misses by a whole threshold
    scale = max(abs(check.threshold), 1e-3)
    return abs(check.value - check.threshold) / scale


def nearest_passing(validated: Sequence[Validated]) -> Nearest | None:
    """Among the validation candidates, the one whose blocking checks miss by the least."""
    if not validated:
        return None
    passing = tuple(v.candidate.name for v in validated if v.gate.passed)
    failing = [v for v in validated if not v.gate.passed]
    if not failing:
        return Nearest(name=passing[0], shortfall=0.0, blocking=(), passing_on_validation=passing)
    best = min(failing, key=lambda v: sum(_distance(c) for c in v.gate.failed))
    return Nearest(name=best.candidate.name, shortfall=sum(_distance(c) for c in best.gate.failed),
                   blocking=tuple(c.name for c in best.gate.failed), passing_on_validation=passing)


def binding_checks(decisions: Sequence[GateDecision]) -> list[tuple[str, int]]:
    """Blocking checks and how many candidates each blocks, most binding first."""
    counts = Counter(c.name for d in decisions for c in d.failed)
    return counts.most_common()


def validation_rules(rules: GateRules) -> GateRules:
    """The rules as they apply on validation: no champion comparison, no bound on explanation scores.

    Candidates are explained once, after selection, so ``explain.*`` does not exist on
    validation; a champion was judged on another split, so no regression check either.
    """
    return replace(
        rules, regression_metric=None,
        floors={m: v for m, v in rules.floors.items() if not m.startswith("explain.")},
        ceilings={m: v for m, v in rules.ceilings.items() if not m.startswith("explain.")},
    )
