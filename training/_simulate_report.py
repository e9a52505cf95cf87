"""Write a :class:`SimulationResult` as JSON, CSV and plots, and log each round to MLflow as a step."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import pandas as pd

from training._simulate import (
    FeedbackLoopCheck,
    SimulationResult,
    amplification_rate,
    feedback_loop_check,
    mitigation_over_rounds,
)
from training._tracking import Tracker

__all__ = ["judge_simulation", "log_simulation", "write_simulation_report"]

PLOTTED = ("ndcg", "utility_gap", "parity_gap", "protected_exposure", "bias_amplification", "coverage",
           "intra_list_diversity", "profile_entropy")


def judge_simulation(result: SimulationResult, *, metric: str, max_slope: float) -> dict[str, FeedbackLoopCheck]:
    """The feedback-loop check of every candidate."""
    return {c: feedback_loop_check(amplification_rate(result.rounds, c, metric=metric), max_slope=max_slope)
            for c in result.rounds["candidate"].unique()}


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def _plot(rounds: pd.DataFrame, out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [m for m in PLOTTED if m in rounds.columns]
    cols = 4
    fig, axes = plt.subplots(math.ceil(len(names) / cols), cols, figsize=(4 * cols, 3 * math.ceil(len(names) / cols)),
                             squeeze=False)
    for ax, name in zip(axes.ravel(), names, strict=False):
        for cand, part in rounds.groupby("candidate", sort=False):
            g = part.groupby("round")[name]
            line = ax.plot(g.mean().index, g.mean().to_numpy(), marker="o", label=cand)
            ax.fill_between(g.min().index, g.min().to_numpy(), g.max().to_numpy(), alpha=0.2,
                            color=line[0].get_color())
        ax.set(title=name, xlabel="round")
    for ax in axes.ravel()[len(names):]:
        ax.axis("off")
    axes.ravel()[0].legend(fontsize=7)
    fig.suptitle("Feedback loop: mean over choice seeds (band: min to max)")
    fig.tight_layout()
    fig.savefig(out / "simulation.png", dpi=90)
    plt.close(fig)
    return ["simulation.png"]


def write_simulation_report(result: SimulationResult, checks: dict[str, FeedbackLoopCheck], out: Path, *,
                            metric: str) -> dict[str, Any]:
    """``out/simulation.json``, ``out/rounds.csv`` and ``out/simulation.png``; returns the JSON payload."""
    out.mkdir(parents=True, exist_ok=True)
    result.rounds.to_csv(out / "rounds.csv", index=False)
    payload = {
        "metric": metric,
        "checks": {c: {"passed": k.passed, "verdict": k.verdict, "reason": k.reason, "max_slope": k.max_slope,
                       "slope": k.rate.slope, "low": k.rate.low, "high": k.rate.high, "n_seeds": k.rate.n_seeds,
                       "per_seed": list(k.rate.per_seed)} for c, k in checks.items()},
        "mitigation_over_rounds": mitigation_over_rounds(result, metric=metric),
        "round0": result.round0,
        "rounds": result.rounds.to_dict(orient="records"),
    }
    (out / "simulation.json").write_text(json.dumps(_clean(payload), indent=2), encoding="utf-8")
    _plot(result.rounds, out)
    return payload


def log_simulation(tracker: Tracker, name: str, result: SimulationResult, out: Path) -> str:
    """A parent run with the report; one child run per (candidate, seed), each round an MLflow step."""
    from mlflow.entities import Metric

    parent = tracker.start_run(f"{name}-simulation", tags={"fairrec.kind": "simulation"})
    now = int(time.time() * 1000)
    numeric = [c for c in result.rounds.columns if c not in ("candidate", "seed", "round")]
    for (cand, seed), part in result.rounds.groupby(["candidate", "seed"], sort=False):
        child = tracker.start_run(f"{cand}-seed{seed}", parent=parent, tags={"fairrec.kind": "simulation"})
        metrics = [Metric(f"sim.{c}", float(row[c]), now, int(row["round"]))
                   for _, row in part.iterrows() for c in numeric if math.isfinite(float(row[c]))]
        for start in range(0, len(metrics), 1000):
            tracker.guard("logging simulation rounds", tracker.client.log_batch, child,
                          metrics=metrics[start:start + 1000])
        tracker.finish(child, ok=True)
    tracker.log_artifacts(parent, out, "simulation")
    tracker.finish(parent, ok=True)
    return parent
