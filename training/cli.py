"""The ``fairrec`` command.

``fairrec run CONFIG [--out DIR] [--set dotted.key=value ...]``
    validate, load, split, fit every candidate, recommend, evaluate, log to MLflow.
``fairrec validate CONFIG [--set ...]``
    validation only.
``fairrec gate CONFIG (--run-id ID | --model NAME (--version N | --alias A))``
    re-evaluate logged metrics against the config's gate; exit 0 pass, 1 fail, 2 error.
    A parent run id gates each of its candidates and passes when one of them does.
``fairrec promote --model NAME --version N``
    move @champion to a version whose recomputed gate decision is a pass (exit 1 if refused).
``fairrec policy CONFIG [--model NAME]``
    the registered model's owner adopts the config's gate rules as its promotion policy.
``fairrec erase USER_ID [--consent DB] [--audit LOG] [--runs DIR ...]``
    erase a user: consent record and history, audit records (pseudonymised), rows of past
    run folders; their erasure key stays in the consent store so training leaves them out.
``fairrec serve (--model models:/NAME@champion | --config CONFIG) [--host] [--port] ...``
    the HTTP service; refuses (exit 2) a version whose gate result is not a pass.
``fairrec monitor --audit LOG (--model models:/NAME@champion --users FILE | --champion RUN_DIR/NAME) ...``
    the fairness of what was served, per window, against the offline lists; exit 0 fine, 1 breach, 2 error.
``fairrec simulate CONFIG [--rounds 10] [--seeds 3] [--max-slope X]``
    feed each candidate's lists back as training data; exit 1 if a feedback-loop check fails.

Exit status of run/validate: 0 success, 2 bad input (config, data, parameters) or tracking failure.
The environment is read here, explicitly, and nowhere in the library:
``MLFLOW_TRACKING_URI`` (when neither ``--tracking-uri`` nor the config names a
store), ``CI`` (quiet progress), and for ``fairrec serve`` ``FAIRREC_USER_TOKEN_SECRET`` (the
secret user tokens are signed with) and ``FAIRREC_ADMIN_TOKEN`` (the operator token); without
both, ``serve`` refuses to start unless ``--insecure-local`` (docs/security.md).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import signal
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
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
            help="override a config value, e.g. --set models.als.params.factors=32 (repeatable); "
                 "a relative path is relative to the config file's directory, not the shell's",
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

    pol = sub.add_parser("policy", help="adopt a config's gate rules as a registered model's promotion policy "
                                        "(its owner's decision)")
    pol.add_argument("config", type=Path, help="the experiment config whose gate section becomes the policy")
    pol.add_argument("--model", default=None, help="registered model name (default: the config's)")
    pol.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    pol.add_argument("--tracking-uri", default=None, help="MLflow tracking URI")

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
    srv.add_argument("--insecure-local", action="store_true",
                     help="serve without credentials, on a loopback host only (development); otherwise "
                          "FAIRREC_USER_TOKEN_SECRET and FAIRREC_ADMIN_TOKEN must be set")
    srv.add_argument("--allowed-host", action="append", dest="allowed_hosts", default=None,
                     help="a Host header the service answers (repeat; required off loopback; "
                          "default: 127.0.0.1 and localhost)")
    srv.add_argument("--allow-unregistered", action="store_true",
                     help="serve a local bundle directory, which has no gate result (development only)")
    _add_monitor_parser(sub)
    _add_simulate_parser(sub)
    erase = sub.add_parser("erase", help="erase a user from the consent store, the audit log and past run folders")
    erase.add_argument("user_id", help="the user's external id")
    erase.add_argument("--consent", type=Path, default=None, help="consent store (SQLite); the user's erasure "
                       "key is kept there so that training leaves them out")
    erase.add_argument("--audit", type=Path, default=None, help="audit log (.jsonl or .sqlite/.db)")
    erase.add_argument("--runs", type=Path, action="append", default=[], metavar="DIR",
                       help="a folder of `fairrec run --out` results or a local MLflow artifact root (repeatable)")
    return p


def _add_monitor_parser(sub: argparse._SubParsersAction) -> None:
    mon = sub.add_parser("monitor", help="the fairness of what the service served, per window, against the "
                         "offline evaluation (exit 0 fine, 1 a threshold breached, 2 error)")
    mon.add_argument("--audit", type=Path, required=True, help="the service's audit log (.jsonl or .sqlite/.db)")
    served = mon.add_mutually_exclusive_group(required=True)
    served.add_argument("--model", default=None, metavar="models:/NAME@ALIAS",
                        help="the served registered version (models:/NAME@ALIAS or models:/NAME/VERSION, with "
                        "--tracking-uri): its run's offline lists, config and items are downloaded, and the "
                        "report is logged under its run unless --run-id says otherwise; needs --users")
    served.add_argument("--champion", type=Path, default=None,
                        help="the served candidate's directory from `fairrec run --out` (RUN_DIR/NAME)")
    mon.add_argument("--users", type=Path, default=None, help="user attribute table (default RUN_DIR/users.parquet; "
                     "required with --model: the operator's data is not logged to MLflow)")
    mon.add_argument("--items", type=Path, default=None, help="item attribute table (default RUN_DIR/items.parquet)")
    mon.add_argument("--window", default="day", help="'hour', 'day' or a number of list requests")
    mon.add_argument("--out", type=Path, default=Path("monitor"), help="where the JSON and HTML report go")
    mon.add_argument("--alpha", type=float, default=0.05, help="family-wise false-alarm rate over all tests")
    mon.add_argument("--exposure-tolerance", type=float, default=0.02,
                     help="protected exposure may move this far from offline before it is a breach")
    mon.add_argument("--max-psi", type=float, default=0.1, help="list-mix PSI ceiling per user group")
    mon.add_argument("--min-lists", type=int, default=30, help="fewer lists in a group: inconclusive")
    mon.add_argument("--consent", type=Path, default=None,
                     help="the consent store: adds opt-out, re-opt-in and consent decay per window and group")
    mon.add_argument("--max-opt-out-gap", type=float, default=None,
                     help="ceiling on the opt-out rate difference between user groups per window (with --consent)")
    mon.add_argument("--run-id", default=None, help="log the report to this MLflow run (default with --model: "
                     "the served version's run)")
    mon.add_argument("--tracking-uri", default=None, help="MLflow tracking URI (with --model or --run-id)")


def _tracking_uri(cli_value: str | None, config_value: str | None, env: Mapping[str, str]) -> str:
    from training._tracking import DEFAULT_TRACKING_URI, TrackingError, tracking_uri_problem

    for setting, value in (("--tracking-uri", cli_value), ("tracking.uri", config_value),
                           ("$MLFLOW_TRACKING_URI", env.get("MLFLOW_TRACKING_URI"))):
        if value:
            problem = tracking_uri_problem(value)
            if problem is not None:
                raise TrackingError(f"{setting}: {problem}")
            return value
    return DEFAULT_TRACKING_URI


def _table(models: Sequence[ModelResult], columns: Sequence[tuple[str, str]], width: int | None = None) -> str:
    """A fixed-width table; wider than ``width``, its columns are split into blocks that fit."""
    header = ["model"] + [label for label, _ in columns]
    rows = [header]
    for m in models:
        rows.append([m.name] + [f"{m.metrics[k]:.4f}" if k in m.metrics else "-" for _, k in columns])
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    blocks: list[list[int]] = [[]]  # column indices after the model column, per block
    for i in range(1, len(header)):
        used = widths[0] + sum(widths[j] + 2 for j in blocks[-1])
        if width is not None and blocks[-1] and used + widths[i] + 2 > width:
            blocks.append([])
        blocks[-1].append(i)
    out = []
    for block in blocks:
        keep = [0] + block
        lines = [
            "  ".join(r[i].rjust(widths[i]) if i else r[i].ljust(widths[i]) for i in keep) for r in rows
        ]
        lines.insert(1, "  ".join("-" * widths[i] for i in keep))
        out.append("\n".join(lines))
    return "\n\n".join(out)


def format_summary(result: RunResult, *, k: int, attribute: str, item_group: str, protected: str,
                   amplification: str = "category", width: int | None = None) -> str:
    """Fixed-width tables of every model's headline relevance, fairness and explanation metrics.

    With ``width``, a wider table is split into blocks of columns that fit and a
    line of the gate table is cut at ``width`` (ending in "...").
    """
    from evaluation import sanitize_label

    relevance = [(f"{c}@{k}" if "{k}" in key else c, key.format(k=k)) for c, key in _COLUMNS]
    a, g, p = sanitize_label(attribute), sanitize_label(item_group), sanitize_label(protected)
    c = sanitize_label(amplification)
    fairness = [
        (f"ndcg gap ({attribute})", f"{a}.ndcg_at_{k}.difference"),
        (f"DP diff ({attribute})", f"demographic_parity_difference.{a}"),
        (f"disp. impact ({attribute})", f"disparate_impact.{a}"),
        (f"{p} exposure", f"exposure_share.{g}.{p}"),
        (f"ampl. gap ({amplification})", f"bias_amplification.{a}.{c}.gap"),
        ("ndcg vs twin", f"mitigation.ndcg_at_{k}.relative_change"),
        ("levelling down", f"levelling_down.{a}"),
        (f"worst/best ndcg ({attribute})", f"gate.utility_parity.{a}.ratio"),
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
    tables = [_table(result.models, cols, width) for cols in (relevance, fairness, explain)]
    gate = _gate_table(result.models)
    if width is not None:
        gate = "\n".join(line if len(line) <= width else line[: width - 3] + "..." for line in gate.splitlines())
    tables.append(gate)
    return "\n\n".join(tables)


def _gate_table(models: Sequence[ModelResult]) -> str:
    rows = [["model", "gate", "version", "blocking checks", "INCONCLUSIVE (not blocking)"]]
    for m in models:
        failed = ", ".join(c.name for c in m.gate.failed) or "-"
        loud = ", ".join(c.name for c in m.gate.inconclusive if not c.blocking) or "-"
        verdict = "pass" if m.gate.passed else "FAIL"
        if m.gate.passed and not m.servable[0]:
            verdict = "pass (not servable)"
        rows.append([m.name, verdict, m.version or "-", failed, loud])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
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
    from recsys._redact import redact_uri
    from training._tracking import Tracker, ui_command

    cfg = load_config(args.config, args.overrides)
    quiet = args.quiet or env.get("CI", "").lower() in {"1", "true", "yes"}
    progress = Progress(quiet=quiet)
    uri = _tracking_uri(args.tracking_uri, cfg.tracking.uri, env)
    from training._candidate import expand_sweeps

    n_candidates = len(expand_sweeps(list(cfg.models)))  # a sweep is one config entry, many candidates
    entries = f" from {len(cfg.models)} model entries" if n_candidates != len(cfg.models) else ""
    progress.info(f"fairrec run {args.config}: {n_candidates} candidate(s){entries}, tracking at {redact_uri(uri)}")
    tracker = Tracker(uri, cfg.tracking.experiment or cfg.name)
    abandoned = tracker.close_abandoned_runs()
    if abandoned:
        progress.info(f"  closed {len(abandoned)} run(s) left RUNNING by a fairrec process that died: "
                      f"{', '.join(abandoned)} (now FAILED)")
    result = run_experiment(cfg, out_dir=args.out, tracker=tracker, progress=progress)
    print(f"\n{cfg.name}: {result.data_stats['n_test_users']} test users, k={cfg.evaluation.k}\n")
    fc = cfg.fairness
    summary = {"k": cfg.evaluation.k, "attribute": fc.sensitive[0], "item_group": fc.item_group,
               "protected": fc.protected_group, "amplification": fc.amplification_attribute}
    full = format_summary(result, **summary)
    width = shutil.get_terminal_size((100, 24)).columns  # $COLUMNS, the terminal, else 100
    if max(len(line) for line in full.splitlines()) <= width or result.out_dir is None:
        print(full)
    else:  # fit the terminal; the unsplit tables go to a file, named here
        tables = result.out_dir / "summary_tables.txt"
        tables.write_text(full + "\n", encoding="utf-8")
        print(format_summary(result, **summary, width=width))
        print(f"\n(the tables are wider than this terminal: one line per model in {tables})")
    print(
        f"\nFairness: outcome = the top-{cfg.evaluation.k} holds a {fc.protected_group!r} item "
        f"({fc.item_group}); DP diff = max - min of its rate across {fc.sensitive[0]} groups; "
        "all groups and attributes are in metrics.json and MLflow."
    )
    print(f"\nSelection: sweep values and the champion are chosen on validation metrics; the numbers above are "
          f"the chosen candidates' test metrics, read once ({len(result.validation)} candidate(s) validated).")
    for warning in result.warnings:  # degenerate metrics: part of the summary (stdout), so shown under --quiet
        print(f"warning: {warning}")
    if result.promotion is not None:
        where = (f"Registry ({result.promotion.registered_model!r})" if result.promotion.registered_model
                 else "Decision (not registered)")
        print(f"{where}: {result.promotion.note}.")
    print("Gate: every check with its reason is in NAME/gate.json and NAME/model_card.md.")
    print()
    if result.out_dir is not None:
        print(f"Files:      {result.out_dir}")
    print(f"MLflow run: {result.run_id} (experiment {cfg.tracking.experiment or cfg.name!r})")
    print(f"MLflow UI:  {ui_command(redact_uri(uri) or '')}")
    return 0


def _cmd_gate(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    import json

    from training._config import load_config
    from training._gate import evaluate_gate, experiment_rules, format_decision
    from training._promotion import Registry, _gate_reads, _single_values
    from training._tracking import Tracker, TrackingError

    cfg = load_config(args.config, args.overrides)
    if args.model is not None and (args.version is None) == (args.alias is None):
        raise TrackingError("gate: --model needs exactly one of --version or --alias")
    if args.model is None and (args.version is not None or args.alias is not None):
        raise TrackingError("gate: --version and --alias go with --model, not --run-id")
    uri = _tracking_uri(args.tracking_uri, cfg.tracking.uri, env)
    tracker = Tracker(uri, cfg.tracking.experiment or cfg.name)
    rules = experiment_rules(cfg)
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
        _single_values(tracker.client, run_id, _gate_reads(metrics, rules), title)  # a re-logged value is refused
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


def _cmd_policy(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    """Record the config's resolved gate rules as the registered model's policy (needs edit rights on it)."""
    from training._config import load_config
    from training._gate import experiment_rules
    from training._promotion import Registry
    from training._tracking import Tracker

    cfg = load_config(args.config, args.overrides)
    rules = experiment_rules(cfg)
    registry = Registry(Tracker(_tracking_uri(args.tracking_uri, cfg.tracking.uri, env), None),
                        args.model or cfg.gate.registered_model or cfg.name)
    before = registry.policy()
    registry.adopt_policy(rules)
    print(f"{registry.name!r}: promotion policy is now the gate rules of {args.config} (sha256 {rules.sha256[:12]}; "
          f"was {before[:12] if before else 'none'})")
    return 0


def _cmd_serve(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    from training._promotion import serving_verifier
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
            user_token_secret=env.get("FAIRREC_USER_TOKEN_SECRET") or None,
            insecure_local=args.insecure_local, allowed_hosts=args.allowed_hosts,
            verifier=serving_verifier,  # the gate recomputed from the version's logged record, never its tags
        )
    except (TypeError, ValueError) as exc:
        raise FairrecError(f"serve: {exc}") from exc
    from recsys import redact_uri

    print(f"loading {model} (tracking at {redact_uri(uri)}); a version whose gate result is not a pass "
          "is refused", file=sys.stderr)
    serve(settings)  # recomputes the gate, checks the bundle's hash and loads it before it binds the port
    return 0


def _cmd_monitor(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    from training._monitor import MonitorThresholds, load_monitor_inputs, parse_window, run_monitor
    from training._monitor_report import log_monitor_report, write_monitor_report

    thresholds = MonitorThresholds(alpha=args.alpha, exposure_tolerance=args.exposure_tolerance,
                                   max_psi=args.max_psi, min_lists=args.min_lists)
    window = parse_window(args.window)
    run_id = args.run_id
    if args.model is not None:
        import tempfile

        from training._monitor_source import download_served_run

        if args.users is None:
            raise FairrecError("monitor --users: required with --model (users.parquet is the operator's data and "
                               "is not logged to MLflow); expected a user attribute table (parquet or CSV), got none")
        uri = _tracking_uri(args.tracking_uri, None, env)
        with tempfile.TemporaryDirectory(prefix="fairrec-monitor-") as tmp:
            served = download_served_run(args.model, uri, Path(tmp))
            inputs = load_monitor_inputs(served.candidate, users=args.users, items=args.items)
        run_id = run_id or served.run_id  # the report goes with the served version by default
        print(f"monitoring {args.model}: version {served.version} of {served.name!r}, run {served.run_id}")
    else:
        inputs = load_monitor_inputs(args.champion, users=args.users, items=args.items)
    report = run_monitor(args.audit, inputs, window=window, thresholds=thresholds)
    if args.consent is not None:
        from training._consent_report import add_consent_section

        report = add_consent_section(report, args.consent, inputs.users, inputs.fairness.sensitive,
                                     max_opt_out_gap=args.max_opt_out_gap, min_users=args.min_lists)
    elif args.max_opt_out_gap is not None:
        raise FairrecError("monitor --max-opt-out-gap: needs --consent (the consent store to read)")
    out = write_monitor_report(report, args.out)
    if run_id is not None:
        from training._tracking import Tracker

        log_monitor_report(Tracker(_tracking_uri(args.tracking_uri, None, env), None), run_id, report, out)
    for w in report.windows:
        print(f"{w['label']}: {w['n_lists']} lists, protected exposure {w['protected_exposure']['estimate']:.4f}"
              + ("".join(f"\n  BREACH {f}" for f in w["flags"]) or ""))
    print(f"\n{len(report.flagged)} of {len(report.windows)} window(s) breached a threshold; "
          f"report: {out / 'monitor_report.html'}")
    return 1 if report.breached else 0


def _cmd_erase(args: argparse.Namespace) -> int:
    from recsys.serving import erase_user

    if args.consent is None and args.audit is None and not args.runs:
        raise FairrecError("erase: name at least one of --consent, --audit, --runs")
    report = erase_user(args.user_id, consent_path=args.consent, audit_path=args.audit, run_dirs=args.runs)
    print(f"erased user {args.user_id!r}:")
    print("\n".join(f"  {line}" for line in report.lines()))
    if args.consent is None:
        print("  (no --consent: nothing keeps the next training run from using this user's data)")
    return 0


def _add_simulate_parser(sub: argparse._SubParsersAction) -> None:
    sim = sub.add_parser("simulate", help="feed each candidate's recommendations back as training data for "
                         "T rounds and measure how its fairness moves (exit 1 if a feedback-loop check fails)")
    sim.add_argument("config", type=Path, help="experiment YAML file (its candidates are simulated side by side)")
    sim.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="override a config value (repeatable)")
    sim.add_argument("--rounds", type=int, default=10, help="rounds after round 0")
    sim.add_argument("--seeds", type=int, default=3, help="choice-model seeds (for the slope's interval)")
    sim.add_argument("--p-relevant", type=float, default=0.5, help="choice probability of a held-out relevant "
                     "item at rank 1")
    sim.add_argument("--p-other", type=float, default=0.02, help="choice probability of any other item at rank 1")
    sim.add_argument("--metric", default="utility_gap", help="the gap the check watches: utility_gap (nDCG "
                     "difference) or parity_gap (demographic parity difference)")
    sim.add_argument("--max-slope", type=float, default=0.005, help="the gap may grow at most this much per round")
    sim.add_argument("--out", type=Path, default=Path("simulation"), help="where the report goes")
    sim.add_argument("--tracking-uri", default=None, help="MLflow tracking URI (overrides the config)")
    sim.add_argument("--no-tracking", action="store_true", help="write the report only, log nothing to MLflow")


def _cmd_simulate(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    from training._config import load_config
    from training._progress import Progress
    from training._simulate import ChoiceModel, run_simulation
    from training._simulate_report import judge_simulation, log_simulation, write_simulation_report

    cfg = load_config(args.config, [*args.overrides, "explain.enabled=false"])
    if args.metric not in ("utility_gap", "parity_gap"):
        raise FairrecError(f"simulate --metric: expected utility_gap or parity_gap, got {args.metric!r}")
    if args.seeds < 1:
        raise FairrecError(f"simulate --seeds: expected at least 1, got {args.seeds!r}")
    choice = ChoiceModel(p_relevant=args.p_relevant, p_other=args.p_other)
    progress = Progress(quiet=env.get("CI", "").lower() in {"1", "true", "yes"})
    result = run_simulation(cfg, rounds=args.rounds, seeds=[cfg.seed + s for s in range(args.seeds)],
                            choice=choice, progress=progress)
    checks = judge_simulation(result, metric=args.metric, max_slope=args.max_slope)
    payload = write_simulation_report(result, checks, args.out, metric=args.metric)
    if not args.no_tracking:
        from training._tracking import Tracker

        tracker = Tracker(_tracking_uri(args.tracking_uri, cfg.tracking.uri, env), cfg.tracking.experiment or cfg.name)
        print(f"MLflow run: {log_simulation(tracker, cfg.name, result, args.out)}")
    for name, check in checks.items():
        print(f"{name}: {check.verdict.upper()}: {check.reason}")
    for m in payload["mitigation_over_rounds"]:
        print(f"{m['candidate']} against {m['twin']}: {m['verdict']} ({m['metric']} lowered by "
              f"{m['effect_round0']:+.4f} at round 0, {m['effect_last']:+.4f} at round {m['rounds']})")
    print(f"report: {args.out / 'simulation.json'}, {args.out / 'simulation.png'}")
    return 0 if all(c.passed for c in checks.values()) else 1


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    """Entry point of the ``fairrec`` console script; returns the exit status."""
    args = _parser().parse_args(argv)
    env = os.environ if env is None else env
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # no progress bars in our messages
    try:
        if args.command == "validate":
            return _cmd_validate(args)
        if args.command == "gate":
            return _cmd_gate(args, env)
        if args.command == "promote":
            return _cmd_promote(args, env)
        if args.command == "policy":
            return _cmd_policy(args, env)
        if args.command == "serve":
            return _cmd_serve(args, env)
        if args.command == "monitor":
            return _cmd_monitor(args, env)
        if args.command == "simulate":
            return _cmd_simulate(args, env)
        if args.command == "erase":
            return _cmd_erase(args)
        with _sigterm_interrupts():
            return _cmd_run(args, env)
    except FairrecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a full disk, a folder that vanished: the file and the reason, no traceback
        where = f"{exc.filename}: " if exc.filename else ""
        after = "; nothing was committed" if args.command == "run" else ""
        print(f"error: {where}{exc.strerror or exc}{after}", file=sys.stderr)
        return 2
    except _Terminated:
        print("terminated (SIGTERM): no result was committed; the MLflow runs are marked KILLED", file=sys.stderr)
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:
        print("interrupted: no result was committed; the MLflow runs are marked KILLED", file=sys.stderr)
        return 130


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so that a run unwinds as it does on Ctrl-C."""


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """While a run works, SIGTERM unwinds it like Ctrl-C: staged files removed, MLflow runs KILLED.

    Python's default for SIGTERM ends the process at once, leaving staged folders and
    RUNNING runs behind. Only the main thread may install a handler; elsewhere (a test
    runner's worker thread) the default stays.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _raise(signum: int, frame: object) -> None:
        raise _Terminated()

    previous = signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
