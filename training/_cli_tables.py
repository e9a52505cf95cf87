"""The fixed-width result tables ``fairrec run`` prints: relevance, fairness, explanations and the gate."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the run module imports the whole library; printing needs only its result types
    from training._run import ModelResult, RunResult

__all__ = ["format_summary"]

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
