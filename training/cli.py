"""The ``fairrec`` command.

``fairrec run CONFIG [--out DIR] [--set dotted.key=value ...]``
    validate, load, split, fit every candidate, recommend, evaluate, log to MLflow.
``fairrec validate CONFIG [--set ...]``
    validation only.

Exit status: 0 success, 2 bad input (config, data, parameters) or tracking failure.
The environment is read here, explicitly, and nowhere in the library:
``MLFLOW_TRACKING_URI`` (when neither ``--tracking-uri`` nor the config names a
store) and ``CI`` (quiet progress).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from recsys.errors import FairrecError

if TYPE_CHECKING:  # the run module imports the whole library; the CLI loads it only to run
    from training._run import ModelResult, RunResult

__all__ = ["main"]

_COLUMNS = (
    ("ndcg", "ndcg_at_{k}"),
    ("recall", "recall_at_{k}"),
    ("precision", "precision_at_{k}"),
    ("map", "map_at_{k}"),
    ("mrr", "mrr_at_{k}"),
    ("hit_rate", "hit_rate_at_{k}"),
    ("coverage", "coverage_at_{k}"),
    ("novelty", "novelty_at_{k}"),
    ("diversity", "diversity_at_{k}"),
    ("fit_s", "fit_seconds"),
)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fairrec", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)

    def add_config_args(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("config", type=Path, help="experiment YAML file, e.g. configs/quickstart.yaml")
        sp.add_argument(
            "--set",
            dest="overrides",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="override a config value, e.g. --set models.als.params.factors=32 (repeatable)",
        )

    run = sub.add_parser("run", help="train, evaluate and log every candidate model")
    add_config_args(run)
    run.add_argument("--out", type=Path, default=None, help="write the run's files here")
    run.add_argument("--tracking-uri", default=None, help="MLflow tracking URI (overrides the config)")
    run.add_argument("--quiet", action="store_true", help="no progress lines (default when CI is set)")

    val = sub.add_parser("validate", help="check a config file without reading any data")
    add_config_args(val)
    return p


def _tracking_uri(cli_value: str | None, config_value: str | None, env: Mapping[str, str]) -> str:
    from training._tracking import DEFAULT_TRACKING_URI

    return cli_value or config_value or env.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def _table(models: Sequence[ModelResult], columns: Sequence[tuple[str, str]]) -> str:
    header = ["model"] + [label for label, _ in columns]
    rows = [header]
    for m in models:
        rows.append([m.name] + [f"{m.metrics[k]:.4f}" if k in m.metrics else "-" for _, k in columns])
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = [
        "  ".join(cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in enumerate(zip(r, widths)))
        for r in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def format_summary(result: RunResult, *, k: int, attribute: str, item_group: str, protected: str) -> str:
    """Fixed-width tables of every model's headline relevance, fairness and explanation metrics."""
    from evaluation import sanitize_label

    relevance = [(f"{c}@{k}" if "{k}" in key else c, key.format(k=k)) for c, key in _COLUMNS]
    a, g, p = sanitize_label(attribute), sanitize_label(item_group), sanitize_label(protected)
    fairness = [
        (f"ndcg gap ({attribute})", f"{a}.ndcg_at_{k}.difference"),
        (f"DP diff ({attribute})", f"demographic_parity_difference.{a}"),
        (f"disp. impact ({attribute})", f"disparate_impact.{a}"),
        (f"{p} exposure", f"exposure_share.{g}.{p}"),
        ("ampl. gap", f"bias_amplification.{a}.category.gap"),
        ("ndcg vs twin", f"mitigation.ndcg_at_{k}.relative_change"),
        ("levelling down", f"levelling_down.{a}"),
    ]
    explain = [
        ("fidelity", "explain.fidelity"),
        ("lime r2", "explain.lime_r2"),
        ("stability", "explain.stability"),
        ("shap~lime", "explain.shap_lime_agreement"),
        ("coverage", "explain.coverage"),
    ]
    return "\n\n".join(_table(result.models, cols) for cols in (relevance, fairness, explain))


def _cmd_validate(args: argparse.Namespace) -> int:
    from training._config import load_config

    cfg = load_config(args.config, args.overrides)
    print(f"{args.config}: valid ({len(cfg.models)} model(s): {', '.join(m.name for m in cfg.models)})")
    return 0


def _cmd_run(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    from training._config import load_config
    from training._progress import Progress
    from training._run import run_experiment
    from training._tracking import Tracker, ui_command

    cfg = load_config(args.config, args.overrides)
    quiet = args.quiet or env.get("CI", "").lower() in {"1", "true", "yes"}
    progress = Progress(quiet=quiet)
    uri = _tracking_uri(args.tracking_uri, cfg.tracking.uri, env)
    progress.info(f"fairrec run {args.config}: {len(cfg.models)} candidate(s), tracking at {uri}")
    tracker = Tracker(uri, cfg.tracking.experiment or cfg.name)
    result = run_experiment(cfg, out_dir=args.out, tracker=tracker, progress=progress)
    print(f"\n{cfg.name}: {result.data_stats['n_test_users']} test users, k={cfg.evaluation.k}\n")
    fc = cfg.fairness
    print(format_summary(result, k=cfg.evaluation.k, attribute=fc.sensitive[0],
                         item_group=fc.item_group, protected=fc.protected_group))
    print(
        f"\nFairness: outcome = the top-{cfg.evaluation.k} holds a {fc.protected_group!r} item "
        f"({fc.item_group}); DP diff = max - min of its rate across {fc.sensitive[0]} groups; "
        "all groups and attributes are in metrics.json and MLflow."
    )
    print()
    if result.out_dir is not None:
        print(f"Files:      {result.out_dir}")
    print(f"MLflow run: {result.run_id} (experiment {cfg.tracking.experiment or cfg.name!r})")
    print(f"MLflow UI:  {ui_command(uri)}")
    return 0


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    """Entry point of the ``fairrec`` console script; returns the exit status."""
    args = _parser().parse_args(argv)
    env = os.environ if env is None else env
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    try:
        if args.command == "validate":
            return _cmd_validate(args)
        return _cmd_run(args, env)
    except FairrecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: no result was committed", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
