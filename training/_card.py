"""The model card of a candidate, as markdown and as self-contained HTML.

One list of blocks (headings, paragraphs, lists, tables, images) is rendered
twice, so the two forms always say the same thing. Built from what the run
wrote: metrics, the fairness report, the explanation note and the gate decision.
Written by hand: no model-card library covers recommender fairness tables.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evaluation import group_order, sanitize_label
from training._gate import GateDecision

__all__ = ["CardInputs", "build_card", "render_html", "render_markdown"]

Block = tuple[Any, ...]  # ("h", level, text) | ("p", text) | ("ul", items) | ("table", header, rows) | ("img", path, alt)

_RELEVANCE = ("ndcg", "recall", "precision", "map", "mrr", "hit_rate", "coverage", "novelty", "diversity")


@dataclass(frozen=True, kw_only=True)
class CardInputs:
    candidate: str
    experiment: str
    registered_model: str | None
    run_id: str | None
    model_description: str  # e.g. "ease (l2=200.0) + fair_share (strength=0.3)"
    data_description: str
    data_stats: Mapping[str, int]
    split_description: str
    sensitive: Sequence[str]
    k: int
    intended_use: str
    limitations: Sequence[str]
    metrics: Mapping[str, float]
    fairness_report: Mapping[str, Any]
    explanation_note: str | None
    plots: Sequence[Path]
    decision: GateDecision
    servable: tuple[bool, str]
    warnings: Sequence[str] = ()  # degenerate metrics on this data (training._degenerate)


def _num(x: Any) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return str(x)
    return f"{float(x):.4f}"


def _consumer_blocks(attr: str, table: Mapping[str, Any], k: int) -> list[Block]:
    metrics = table["metrics"]
    groups = group_order(table["counts"])  # "<18" before "56+", not after it
    shown = [m for m in ("ndcg", "recall", "precision") if m in metrics]
    rates = table["outcome"]["rates"]
    ci = (metrics.get("ndcg") or {}).get("ci") or {}
    header = (["group", "users"] + [f"{m}@{k}" for m in shown]
              + ([f"ndcg@{k} {round(100 * (table.get('ci_level') or 0.95))}% CI"] if ci else []) + ["outcome rate"])
    rows = [
        [str(g), _num(int(table["counts"][g]))]
        + [_num(metrics[m]["by_group"].get(g)) for m in shown]
        + ([f"[{_num(ci[g][0])}, {_num(ci[g][1])}]" if ci.get(g) else "-"] if ci else [])
        + [_num(rates.get(g))]
        for g in groups
    ]
    out = table["outcome"]
    eo = table.get("equal_opportunity") or {}
    return [
        ("h", 3, f"By {attr}"),
        ("table", header, rows),
        ("p", (
            f"Outcome: {out['definition']}. Demographic parity difference "
            f"{_num(out['demographic_parity_difference'])}, disparate impact (ratio) "
            f"{_num(out['demographic_parity_ratio'])}"
            + (" - violates the four-fifths rule." if out["four_fifths_violated"] else " - within the four-fifths rule.")
            + (f" Equal opportunity (recall) difference {_num(eo.get('difference'))}." if eo else "")
        )),
    ]


def _item_blocks(items: Mapping[str, Any]) -> list[Block]:
    groups = items["groups"]
    rows = [
        [str(g), _num(items["exposure_share"].get(g)), _num(items["catalog_share"].get(g)),
         _num(items["relevant_share"].get(g))]
        for g in groups
    ]
    return [
        ("h", 3, f"Exposure by item group ({items['item_group']})"),
        ("table", ["group", "exposure share", "catalogue share", "relevant share"], rows),
        ("p", f"Protected item group: {items['protected_group']}; long-tail share "
              f"{_num(items.get('long_tail_share'))}."),
    ]


def _consent_blocks(metrics: Mapping[str, float], sensitive: Sequence[str]) -> list[Block]:
    """Opt-out rate per user group with the users at risk, from the run's ``consent.*`` metrics; [] without."""
    rows, gaps = [], []
    for attr in sensitive:
        a = sanitize_label(attr)
        prefix = f"consent.opt_out_rate.{a}."
        groups = [k.removeprefix(prefix) for k in metrics if k.startswith(prefix) and not k.endswith(".difference")]
        rows += [[attr, g, _num(int(metrics[f"consent.at_risk.{a}.{g}"])) if f"consent.at_risk.{a}.{g}" in metrics
                  else "n/a", _num(metrics[prefix + g])] for g in group_order(groups)]
        if prefix + "difference" in metrics:
            gaps.append(f"{attr} {_num(metrics[prefix + 'difference'])}")
    if not rows:
        return []
    return [
        ("h", 2, "Consent"),
        ("p", "Share of each user group that opted out of personalisation over the consent store's history "
              "(opted-out users' data is left out of training and evaluation). Largest difference between "
              f"groups: {'; '.join(gaps) or 'n/a (fewer than two groups large enough)'}."),
        ("table", ["attribute", "group", "users at risk", "opt-out rate"], rows),
    ]


def _limitations(inputs: CardInputs) -> list[str]:
    out = list(inputs.limitations)
    report = inputs.fairness_report
    violated = [a for a, t in report.get("consumer", {}).items() if t["outcome"]["four_fifths_violated"]]
    if violated:
        out.append(f"Recommendation outcomes violate the four-fifths rule across: {', '.join(violated)}.")
    levelled = [c for c in report.get("twin_comparison", []) if c.get("levelling_down")]
    for c in levelled:
        out.append(
            f"Levelling down on {c['attribute']} ({c['metric']}): the gap narrowed because the "
            f"better-off group ({c['best_group']}) lost quality, not because the worse-off one gained."
        )
    if inputs.explanation_note and inputs.explanation_note.startswith("not explained"):
        out.append(f"Explanations: {inputs.explanation_note}.")
    if not inputs.servable[0]:
        out.append(f"Not servable: {inputs.servable[1]}.")
    out.append(
        "Fairness is measured only for the configured attributes "
        f"({', '.join(inputs.sensitive)}); groups not recorded in the data are not covered."
    )
    out.append("All numbers are offline estimates on one held-out split; online behaviour may differ.")
    return out


def build_card(inputs: CardInputs) -> list[Block]:
    """The card's blocks, in reading order."""
    d = inputs.decision
    m = inputs.metrics
    blocks: list[Block] = [
        ("h", 1, f"Model card: {inputs.candidate}"),
        ("p", f"Experiment {inputs.experiment}; MLflow run {inputs.run_id or 'not tracked'}; "
              f"registered model {inputs.registered_model or 'not registered'}."),
        ("h", 2, "Gate decision"),
        ("p", f"{'PASSED' if d.passed else 'FAILED'}: {d.summary.split(': ', 1)[1]}."
              + (f" Compared with the champion ({d.champion})." if d.champion else "")),
        ("p", "pass: within the threshold. FAIL: past the threshold and statistically significant "
              "(Holm-corrected across the gate's tests). INCONCLUSIVE: past the threshold without "
              "significance, or a group too small to judge; it blocks only under gate.strict. "
              "undefined: the quantity does not exist here (e.g. 0/0)."
              + (f" INCONCLUSIVE here: {', '.join(c.name for c in d.inconclusive)}." if d.inconclusive else "")),
        ("table", ["check", "threshold", "estimate", "95% CI", "p (Holm)", "group sizes", "verdict", "reason"],
         [[c.name, _num(c.threshold), _num(c.value),
           "-" if c.ci is None else f"[{_num(c.ci[0])}, {_num(c.ci[1])}]",
           "-" if c.p_adjusted is None else f"{c.p_adjusted:.3g}",
           "-" if not c.sizes else ", ".join(f"{g}: {n}" for g, n in c.sizes.items()),
           c.verdict.upper() if c.verdict != "pass" else "pass", c.reason]
          for c in d.checks]),
    ]
    if inputs.warnings:
        blocks.append(("h", 2, "Warnings"))
        blocks.append(("p", "These metrics degenerate on this data: they are computed but mean little."))
        blocks.append(("ul", list(inputs.warnings)))
    blocks += [
        ("h", 2, "Intended use"),
        ("p", inputs.intended_use),
        ("h", 2, "Model"),
        ("p", inputs.model_description),
        ("h", 2, "Data"),
        ("p", f"{inputs.data_description}; split: {inputs.split_description}."),
        ("table", ["quantity", "value"], [[k, _num(int(v))] for k, v in inputs.data_stats.items()]),
        ("h", 2, "Relevance"),
        ("table", ["metric", "value"],
         [[f"{name}@{inputs.k}", _num(m.get(f"{name}_at_{inputs.k}"))] for name in _RELEVANCE]),
        ("h", 2, "Fairness"),
    ]
    report = inputs.fairness_report
    for attr, table in report.get("consumer", {}).items():
        blocks += _consumer_blocks(attr, table, inputs.k)
    if "items" in report:
        blocks += _item_blocks(report["items"])
    amp = report.get("bias_amplification", {})
    if amp:
        blocks.append(("h", 3, "Bias amplification"))
        # the gap amplification is signed (|gap in lists| - |gap in training|), so no |..| in its heading
        blocks.append(("table", ["attribute", "mean |amplification|", "mean gap amplification (+ widens, - narrows)"],
                       [[a, _num(v.get("mean_abs_amplification")), _num(v.get("mean_abs_gap_amplification"))]
                        for a, v in amp.items()]))
    blocks += _consent_blocks(m, inputs.sensitive)
    blocks.append(("h", 2, "Explainability"))
    explain = sorted((k, v) for k, v in m.items() if k.startswith("explain."))
    if explain:
        blocks.append(("table", ["score", "value"], [[k, _num(v)] for k, v in explain]))
    blocks.append(("p", f"Explanations: {inputs.explanation_note or 'disabled in this run'}."))
    if inputs.plots:
        blocks.append(("h", 2, "Plots"))
        blocks += [("img", p, p.stem.replace("_", " ")) for p in inputs.plots]
    blocks.append(("h", 2, "Limitations"))
    blocks.append(("ul", _limitations(inputs)))
    return blocks


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(blocks: Sequence[Block], *, relative_to: Path) -> str:
    out: list[str] = []
    for block in blocks:
        kind = block[0]
        if kind == "h":
            out.append("#" * block[1] + " " + block[2])
        elif kind == "p":
            out.append(block[1])
        elif kind == "ul":
            out.append("\n".join(f"- {item}" for item in block[1]))
        elif kind == "table":
            header, rows = block[1], block[2]
            lines = ["| " + " | ".join(_md_cell(h) for h in header) + " |",
                     "|" + "|".join("---" for _ in header) + "|"]
            lines += ["| " + " | ".join(_md_cell(str(c)) for c in row) + " |" for row in rows]
            out.append("\n".join(lines))
        elif kind == "img":
            out.append(f"![{block[2]}]({block[1].relative_to(relative_to).as_posix()})")
    return "\n\n".join(out) + "\n"


def render_html(blocks: Sequence[Block]) -> str:
    """A single self-contained HTML file (plots embedded as data URIs)."""
    e = html.escape
    body: list[str] = []
    title = "Model card"
    for block in blocks:
        kind = block[0]
        if kind == "h":
            if block[1] == 1:
                title = block[2]
            body.append(f"<h{block[1]}>{e(block[2])}</h{block[1]}>")
        elif kind == "p":
            body.append(f"<p>{e(block[1])}</p>")
        elif kind == "ul":
            body.append("<ul>" + "".join(f"<li>{e(i)}</li>" for i in block[1]) + "</ul>")
        elif kind == "table":
            head = "".join(f"<th>{e(h)}</th>" for h in block[1])
            rows = "".join(
                "<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in row) + "</tr>" for row in block[2]
            )
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        elif kind == "img":
            data = base64.b64encode(Path(block[1]).read_bytes()).decode("ascii")
            body.append(f'<figure><img alt="{e(block[2])}" src="data:image/png;base64,{data}">'
                        f"<figcaption>{e(block[2])}</figcaption></figure>")
    style = ("body{font-family:sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}"
             "table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #bbb;padding:.2rem .5rem;"
             "text-align:left}img{max-width:100%}")
    return (f"<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{e(title)}</title>"
            f"<style>{style}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")
