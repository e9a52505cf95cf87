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

from recsys.errors import FairrecError
from training._cli_parser import build_parser
from training._cli_tables import format_summary

__all__ = ["main"]

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
    args = build_parser(__doc__.split("\n\n")[0]).parse_args(argv)
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
