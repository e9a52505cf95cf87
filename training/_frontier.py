"""The relevance-fairness frontier of a swept mitigation: a table and a plot.

Every row is one swept value; the table shows the quality metric, the
fairness target the mitigation aims at, every group's quality (not only the
gap) and the levelling-down flag against the unmitigated twin.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from evaluation import sanitize_label

__all__ = ["frontier_table", "plot_frontier", "target_metric"]


def target_metric(mitigation: Any, *, sensitive: Sequence[str], item_group: str,
                  protected_group: str, amplification_attribute: str, k: int) -> str:
    """The fairness number a mitigation kind is meant to move."""
    s = sanitize_label
    attr = getattr(mitigation, "user_attribute", None) or sensitive[0]
    kind = mitigation.kind
    if kind in ("fair_share", "exposure_budget") or (
        kind == "reweight" and mitigation.popularity_damping > 0 and mitigation.group_balance == 0
    ):
        return f"exposure_share.{s(item_group)}.{s(protected_group)}"
    if kind in ("calibration", "category_share"):
        return f"bias_amplification.{s(attr)}.{s(amplification_attribute)}.mean_abs"
    if kind == "user_blend":
        return f"{s(attr)}.ndcg_at_{k}.difference"
    return f"demographic_parity_difference.{s(attr)}"


def frontier_table(
    rows: Sequence[tuple[float, Mapping[str, float]]],
    *,
    parameter: str,
    target: str,
    sensitive: Sequence[str],
    group_columns: Mapping[str, Sequence[str]],
    k: int,
) -> pd.DataFrame:
    """One row per swept value; ``group_columns`` maps attribute -> its group labels."""
    q = f"ndcg_at_{k}"
    records = []
    for value, m in rows:
        rec: dict[str, float] = {parameter: value, q: m[q]}
        if f"twin.{q}" in m:
            rec[f"{q} vs twin"] = m.get(f"mitigation.{q}.relative_change", float("nan"))
        rec[target] = m.get(target, float("nan"))
        if f"twin.{target}" in m:
            rec[f"{target} vs twin"] = m.get(f"mitigation.{target}.relative_change", float("nan"))
        for attr in sensitive:
            a = sanitize_label(attr)
            for g in group_columns.get(attr, ()):
                key = f"{a}.{q}.{sanitize_label(g)}"
                if key in m:
                    rec[key] = m[key]
            if f"levelling_down.{a}" in m:
                rec[f"levelling_down.{a}"] = m[f"levelling_down.{a}"]
        records.append(rec)
    return pd.DataFrame.from_records(records)


def plot_frontier(table: pd.DataFrame, *, parameter: str, target: str, k: int, title: str) -> Any:
    """Quality against the fairness target, one point per swept value."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.5, 4.0))
    ax = fig.add_subplot(1, 1, 1)
    q = f"ndcg_at_{k}"
    ax.plot(table[target], table[q], marker="o")
    for _, row in table.iterrows():
        ax.annotate(f"{parameter}={row[parameter]:g}", (row[target], row[q]),
                    textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set_xlabel(target)
    ax.set_ylabel(q)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    return fig
