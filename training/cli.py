"""The ``fairrec`` command.

``fairrec run CONFIG [--out DIR] [--set dotted.key=value ...]``
    validate, load, split, fit every candidate, recommend, evaluate, log to MLflow.
``fairrec validate CONFIG [--set ...]``
    validation only.
``fairrec gate CONFIG (--run-id ID | --model NAME (--version N | --alias A))``
    re-evaluate logged metrics against the config's gate; exit 0 pass, 1 fail, 2 error.
    A parent run id gates each of its candidates and passes when one of them does.
``fairrec promote --model NAME --version N``
    move @champion to a version whose gate result is a pass (exit 1 if refused).
``fairrec serve (--model models:/NAME@champion | --config CONFIG) [--host] [--port] ...``
    the HTTP service; refuses (exit 2) a version whose gate result is not a pass.

Exit status of run/validate: 0 success, 2 bad input (config, data, parameters) or tracking failure.
The environment is read here, explicitly, and nowhere in the library:
``MLFLOW_TRACKING_URI`` (when neither ``--tracking-uri`` nor the config names a
store), ``CI`` (quiet progress) and ``FAIRREC_ADMIN_TOKEN`` (the token ``fairrec serve``
requires on ``POST /admin/reload``; unset: reload is open).
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

    gate = sub.add_parser("gate", help="check a logged run or model version against the config's gate")
    add_config_args(gate)
    which = gate.add_mutually_exclusive_group(required=True)
    which.add_argument("--run-id", help="a candidate's run, or the parent run of a whole `fairrec run`")
    which.add_argument("--model", help="registered model name (with --version or --alias)")
    gate.add_argument("--version", help="model version number (with --model)")
    gate.add_argument("--alias", help="model alias, e.g. challenger (with --model)")
    gate.add_argument("--tracking-uri", default=None, help="MLflow tracking URI (overrides the config)")
    gate.add_argument("--json", action="store_true", help="print the decision(s) as JSON")

    promote = sub.add_parser("promote", help="move @champion to a version that passed the gate")
    promote.add_argument("--model", required=True, help="registered model name")
    promote.add_argument("--version", required=True, help="model version number")
    promote.add_argument("--tracking-uri", default=None, help="MLflow tracking URI")

    srv = sub.add_parser("serve", help="serve the champion's recommendations and explanations over HTTP")
    model = srv.add_mutually_exclusive_group(required=True)
    model.add_argument("--model", help="models:/NAME@ALIAS or models:/NAME/VERSION (or a bundle directory "
                       "with --allow-unregistered)")
    model.add_argument("--config", type=Path, help="serve models:/<its gate.registered_model>@champion")
    srv.add_argument("--host", default="127.0.0.1")
    srv.add_argument("--port", type=int, default=8000)
    srv.add_argument("--tracking-uri", default=None, help="MLflow tracking URI (registry of the model)")
    srv.add_argument("--consent", type=Path, default=Path("consent.sqlite"), help="consent store (SQLite)")
    srv.add_argument("--audit", type=Path, default=Path("audit.jsonl"),
                     help="audit log: .jsonl, or .sqlite/.db for an SQLite table")
    srv.add_argument("--reload-interval", type=float, default=None,
                     help="seconds between checks of the alias for a new version (default: only POST /admin/reload)")
    srv.add_argument("--k-max", type=int, default=100, help="largest list a client may ask for")
    srv.add_argument("--allow-unregistered", action="store_true",
                     help="serve a local bundle directory, which has no gate result (development only)")
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
        ("protected reliance", "explain.protected_reliance"),
        ("flip rate", "explain.counterfactual_flip_rate"),
    ]
    tables = [_table(result.models, cols) for cols in (relevance, fairness, explain)]
    tables.append(_gate_table(result.models))
    return "\n\n".join(tables)


def _gate_table(models: Sequence[ModelResult]) -> str:
    rows = [["model", "gate", "version", "failed checks"]]
    for m in models:
        failed = ", ".join(c.label for c in m.gate.failed) or "-"
        verdict = "pass" if m.gate.passed else "FAIL"
        if m.gate.passed and not m.servable[0]:
            verdict = "pass (not servable)"
        rows.append([m.name, verdict, m.version or "-", failed])
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


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
    if result.promotion is not None:
        print(f"\nRegistry ({result.promotion.registered_model!r}): {result.promotion.note}.")
    print("Gate: every check with its reason is in NAME/gate.json and NAME/model_card.md.")
    print()
    if result.out_dir is not None:
        print(f"Files:      {result.out_dir}")
    print(f"MLflow run: {result.run_id} (experiment {cfg.tracking.experiment or cfg.name!r})")
    print(f"MLflow UI:  {ui_command(uri)}")
    return 0


def _cmd_gate(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    import json

    from training._config import load_config
    from training._gate import evaluate_gate, format_decision, rules_from_config
    from training._promotion import Registry
    from training._tracking import Tracker, TrackingError

    cfg = load_config(args.config, args.overrides)
    if args.model is not None and (args.version is None) == (args.alias is None):
        raise TrackingError("gate: --model needs exactly one of --version or --alias")
    if args.model is None and (args.version is not None or args.alias is not None):
        raise TrackingError("gate: --version and --alias go with --model, not --run-id")
    uri = _tracking_uri(args.tracking_uri, cfg.tracking.uri, env)
    tracker = Tracker(uri, cfg.tracking.experiment or cfg.name)
    rules = rules_from_config(cfg.gate, sensitive=cfg.fairness.sensitive, k=cfg.evaluation.k)
    registry = Registry(tracker, args.model or cfg.gate.registered_model or cfg.name)
    targets: list[tuple[str, str]] = []  # (title, run id)
    if args.run_id is not None:
        children = tracker.child_runs(args.run_id)
        if children:
            targets = [(f"candidate {name} (run {rid})", rid) for name, rid in children]
        else:
            targets = [(f"run {args.run_id}", args.run_id)]
    else:
        mv = registry.alias_version(args.alias) if args.alias else registry.version(args.version)
        if mv is None:
            raise TrackingError(f"gate: {registry.name!r} has no version behind @{args.alias}")
        if not mv.run_id:
            raise TrackingError(f"gate: {registry.name!r} version {mv.version} is linked to no run")
        targets = [(f"{registry.name!r} version {mv.version} (run {mv.run_id})", mv.run_id)]
    champion = registry.champion()
    decisions = []
    for title, run_id in targets:
        metrics = registry.run_metrics(run_id)
        decision = evaluate_gate(
            metrics, rules,
            champion=None if champion is None else champion.metrics,
            champion_label=None if champion is None else champion.label,
        )
        decisions.append((title, decision))
    passed = any(d.passed for _, d in decisions)
    if args.json:
        print(json.dumps({"passed": passed, "decisions": [{"target": t, **d.to_json()} for t, d in decisions]},
                         indent=2))
    else:
        print("\n\n".join(format_decision(d, title=t) for t, d in decisions))
        if len(decisions) > 1:
            n = sum(d.passed for _, d in decisions)
            print(f"\n{n} of {len(decisions)} candidates pass: {'PASS' if passed else 'FAIL'}")
    return 0 if passed else 1


def _cmd_promote(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    from training._promotion import CHAMPION, PromotionRefused, Registry
    from training._tracking import Tracker

    uri = _tracking_uri(args.tracking_uri, None, env)
    registry = Registry(Tracker(uri, None), args.model)
    try:
        registry.promote(args.version)
    except PromotionRefused as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 1
    print(f"{args.model!r} version {args.version} is now @{CHAMPION}")
    return 0


def _cmd_serve(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    from recsys.serving import ServeSettings, serve

    config_uri = None
    model = args.model
    if args.config is not None:
        from training._config import load_config

        cfg = load_config(args.config, [])
        model = f"models:/{cfg.gate.registered_model or cfg.name}@champion"
        config_uri = cfg.tracking.uri
    uri = _tracking_uri(args.tracking_uri, config_uri, env)
    try:
        settings = ServeSettings(
            model=model, tracking_uri=uri, allow_unregistered=args.allow_unregistered,
            consent_path=args.consent, audit_path=args.audit, host=args.host, port=args.port,
            k_max=args.k_max, reload_interval=args.reload_interval,
            admin_token=env.get("FAIRREC_ADMIN_TOKEN") or None,
        )
    except (TypeError, ValueError) as exc:
        raise FairrecError(f"serve: {exc}") from exc
    print(f"loading {model} (tracking at {uri}); a version whose gate result is not a pass is refused",
          file=sys.stderr)
    serve(settings)  # checks the gate tags and loads the bundle before it binds the port
    return 0


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    """Entry point of the ``fairrec`` console script; returns the exit status."""
    args = _parser().parse_args(argv)
    env = os.environ if env is None else env
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    try:
        if args.command == "validate":
            return _cmd_validate(args)
        if args.command == "gate":
            return _cmd_gate(args, env)
        if args.command == "promote":
            return _cmd_promote(args, env)
        if args.command == "serve":
            return _cmd_serve(args, env)
        return _cmd_run(args, env)
    except FairrecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: no result was committed", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
