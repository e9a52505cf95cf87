"""Write a :class:`MonitorReport` as JSON and as an HTML page with plots; log it to MLflow.

The plots (matplotlib, Agg) are PNG files beside the page: the protected
group's exposure per window with its interval against the offline value,
overall and per user group; the share of non-personalised lists by reason;
catalogue coverage and Gini; the list-mix PSI per user group.
"""

from __future__ import annotations

import html
import json
import math
import time
from pathlib import Path
from typing import Any

from training._monitor import MonitorReport
from training._tracking import Tracker

__all__ = ["log_monitor_report", "write_monitor_report"]


def _plots(report: MonitorReport, out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    w = report.windows
    x = list(range(len(w)))
    names = []

    def save(fig: Any, name: str) -> None:
        fig.tight_layout()
        fig.savefig(out / name, dpi=90)
        plt.close(fig)
        names.append(name)

    fig, ax = plt.subplots(figsize=(8, 3.5))
    series = [("all lists", [v["protected_exposure"] for v in w], report.reference["protected_exposure"])]
    for attr, groups in report.reference["groups"].items():
        for g, ref in groups.items():
            if ref["n_lists"]:
                series.append((f"{attr}={g}", [v["groups"][attr][g]["protected_exposure"] for v in w],
                               ref["protected_exposure"]))
    for n, (label, vals, ref) in enumerate(series):
        line = ax.errorbar([i + 0.05 * n for i in x], [v["estimate"] for v in vals],
                           yerr=[[max(v["estimate"] - v["low"], 0) for v in vals],
                                 [max(v["high"] - v["estimate"], 0) for v in vals]],
                           marker="o", capsize=2, label=label)
        ax.axhline(ref["estimate"], linestyle="--", color=line[0].get_color(), linewidth=0.8)
    ax.set(xlabel="window", ylabel="protected exposure share", title="Protected exposure (dashed: offline)")
    ax.legend(fontsize=7)
    save(fig, "protected_exposure.png")

    fig, ax = plt.subplots(figsize=(8, 3))
    for reason in next(iter(w))["non_personalised"] if w else []:
        ax.plot(x, [v["non_personalised"][reason]["estimate"] for v in w], marker="o", label=reason)
    ax.set(xlabel="window", ylabel="share of lists", title="Non-personalised lists by reason")
    ax.legend(fontsize=7)
    save(fig, "non_personalised.png")

    fig, ax = plt.subplots(figsize=(8, 3))
    ax.plot(x, [v["coverage"] for v in w], marker="o", label="catalogue coverage")
    ax.plot(x, [v["gini"] for v in w], marker="s", label="Gini of item counts")
    ax.set(xlabel="window", title="Coverage and concentration")
    ax.legend(fontsize=7)
    save(fig, "coverage_gini.png")

    fig, ax = plt.subplots(figsize=(8, 3))
    for key in sorted({k for v in w for k, t in v["tests"].items() if "psi" in t}):
        ax.plot(x, [v["tests"].get(key, {}).get("psi", math.nan) for v in w], marker="o", label=key)
    ax.axhline(report.thresholds.max_psi, linestyle="--", color="grey", linewidth=0.8)
    ax.set(xlabel="window", ylabel="PSI", title="List mix against offline, per user group")
    ax.legend(fontsize=7)
    save(fig, "list_mix_psi.png")
    return names


def _fmt(v: Any) -> str:
    return f"{v:.4f}" if isinstance(v, float) else html.escape(str(v))


def _page(report: MonitorReport, plots: list[str]) -> str:
    rows = []
    for v in report.windows:
        pe = v["protected_exposure"]
        np_share = ", ".join(f"{r} {d['estimate']:.3f}" for r, d in v["non_personalised"].items())
        rows.append(
            f"<tr><td>{html.escape(v['label'])}</td><td>{v['n_lists']}</td>"
            f"<td>{_fmt(pe['estimate'])} [{_fmt(pe['low'])}, {_fmt(pe['high'])}]</td>"
            f"<td>{_fmt(v['coverage'])}</td><td>{_fmt(v['gini'])}</td><td>{html.escape(np_share)}</td>"
            f"<td>{'<br>'.join(html.escape(f) for f in v['flags']) or 'ok'}</td></tr>"
        )
    group_rows = []
    for v in report.windows:
        for attr, groups in v["groups"].items():
            for g, d in groups.items():
                if not d["n_lists"]:
                    continue
                pe, ct = d["protected_exposure"], d["click_rate"]
                verdict = v["tests"].get(f"{attr}={g}", {}).get("verdict", "-")
                group_rows.append(
                    f"<tr><td>{html.escape(v['label'])}</td><td>{html.escape(attr)}={html.escape(g)}</td>"
                    f"<td>{d['n_lists']}</td><td>{_fmt(pe['estimate'])} [{_fmt(pe['low'])}, {_fmt(pe['high'])}]</td>"
                    f"<td>{_fmt(ct['estimate'])} ({d['n_click']} clicks)</td><td>{html.escape(verdict)}</td></tr>")
    consent_rows = []
    for r in (report.consent or {}).get("rows", []):
        consent_rows.append(
            f"<tr><td>{html.escape(str(r['window']))}</td><td>{html.escape(r['attribute'])}={html.escape(r['group'])}</td>"
            + "".join(f"<td>{_fmt(r[k])} ({r[n]})</td>" for k, n in (("opt_out_rate", "at_risk"),
                      ("re_opt_in_rate", "opted_out"), ("decay", "changed"))) + "</tr>")
    verdict = "BREACHED" if report.breached else "no threshold breached"
    th = report.thresholds
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>fairrec monitor</title>"
        "<style>body{font-family:sans-serif;max-width:70em;margin:auto}td,th{padding:2px 6px;"
        "border-bottom:1px solid #ddd;font-size:90%}</style></head><body>"
        f"<h1>Served-list fairness: {verdict}</h1>"
        f"<p>Windows: {html.escape(report.window)}; {len(report.windows)} window(s), {report.n_tests} tests, "
        f"each at confidence {report.confidence:.5f} (family-wise alpha {th.alpha}); exposure tolerance "
        f"{th.exposure_tolerance}; list-mix PSI ceiling {th.max_psi}; groups under {th.min_lists} lists "
        "are inconclusive. Offline protected exposure: "
        f"{report.reference['protected_exposure']['estimate']:.4f} over {report.reference['n_lists']} lists.</p>"
        "<table><tr><th>window</th><th>lists</th><th>protected exposure [95%]</th><th>coverage</th>"
        f"<th>Gini</th><th>non-personalised</th><th>flags</th></tr>{''.join(rows)}</table>"
        + "<h2>User groups</h2><table><tr><th>window</th><th>group</th><th>lists</th><th>protected exposure [95%]"
        f"</th><th>click-through</th><th>verdict</th></tr>{''.join(group_rows)}</table>"
        + ("<h2>Consent</h2><table><tr><th>window</th><th>group</th><th>opt-out rate (at risk)</th>"
           "<th>re-opt-in rate (opted out)</th><th>decay (changed)</th></tr>" + "".join(consent_rows) + "</table>"
           if consent_rows else "")
        + "".join(f"<p><img src='{p}' alt='{p}'></p>" for p in plots)
        + "<p>Per-group numbers (exposure, list mix, click-through, intervals, group sizes): "
        "monitor_report.json.</p></body></html>"
    )


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def write_monitor_report(report: MonitorReport, out: Path) -> Path:
    """``out/monitor_report.json``, ``out/monitor_report.html`` and its PNG plots; returns ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "monitor_report.json").write_text(json.dumps(_clean(report.to_json()), indent=2), encoding="utf-8")
    plots = _plots(report, out)
    (out / "monitor_report.html").write_text(_page(report, plots), encoding="utf-8")
    return out


def log_monitor_report(tracker: Tracker, run_id: str, report: MonitorReport, out: Path) -> None:
    """The report's files under ``monitor/`` of ``run_id``, and per-window metrics as steps."""
    tracker.log_artifacts(run_id, out, "monitor")
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    metrics = []
    for step, v in enumerate(report.windows):
        values = {"monitor.protected_exposure": v["protected_exposure"]["estimate"],
                  "monitor.coverage": v["coverage"], "monitor.gini": v["gini"],
                  "monitor.flags": float(len(v["flags"]))}
        for reason, d in v["non_personalised"].items():
            values[f"monitor.non_personalised.{reason}"] = d["estimate"]
        metrics += [Metric(k, float(x), now, step) for k, x in values.items() if math.isfinite(x)]
    for start in range(0, len(metrics), 1000):
        tracker.guard("log monitor metrics", tracker.client.log_batch, run_id, metrics=metrics[start:start + 1000])
    tracker.set_tags(run_id, {"fairrec.monitor": "breached" if report.breached else "ok"})
