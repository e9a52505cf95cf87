"""The ``fairrec`` command's argument parser (the commands themselves are :mod:`training.cli`)."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["build_parser"]


def build_parser(description: str) -> argparse.ArgumentParser:
    """The ``fairrec`` command line: every subcommand and its options."""
    p = argparse.ArgumentParser(prog="fairrec", description=description)
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
