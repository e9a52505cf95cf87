"""Markdown tables of a fairness run, read from its output directory alone.

    fairrec run configs/ml100k_fairness.yaml --out runs/ml100k_fairness
    .venv/bin/python benchmarks/fairness_tables.py runs/ml100k_fairness

Prints the gate's verdict on every tested candidate (test split), the validation
numbers every sweep value was chosen on, then, for every mitigated candidate, its
NDCG@k against its unmitigated twin and the fairness number its mitigation targets,
and every group's NDCG with the levelling-down flags. These are the tables in the README.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def _metrics(run: Path) -> dict[str, dict[str, float]]:
    summary = json.loads((run / "summary.json").read_text())
    return {name: entry["metrics"] for name, entry in summary["models"].items()}


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:+.1%}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run", type=Path, help="a run's --out directory")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--attributes", nargs="+", default=["gender", "activity_level"])
    args = p.parse_args(argv)
    m, k = _metrics(args.run), args.k
    q = f"ndcg_at_{k}"
    mitigated = {n: v for n, v in m.items() if f"twin.{q}" in v}

    exposure = "exposure_share.popularity.tail"
    amp = "bias_amplification.gender.category.mean_abs"
    summary = json.loads((args.run / "summary.json").read_text())
    print("#### The gate's verdict (test split)\n")
    rows = []
    for name, entry in summary["models"].items():
        gate = entry["gate"]
        blocking = [c["name"] for c in gate["checks"] if c.get("blocking")]
        loud = [c["name"] for c in gate["checks"] if c["verdict"] == "inconclusive" and not c.get("blocking")]
        rows.append([name, f"{entry['metrics'][q]:.4f}", f"{entry['validation_metrics'].get(q, float('nan')):.4f}",
                     f"{entry['metrics'].get(exposure, float('nan')):.4f}",
                     "pass" if gate["passed"] else "**FAIL**", ", ".join(blocking) or "-", ", ".join(loud) or "-"])
    print(_table(["candidate", f"NDCG@{k} (test)", f"NDCG@{k} (validation)", "tail exposure", "gate",
                  "blocking", "inconclusive"], rows))
    promotion = summary.get("promotion") or {}
    print(f"\nChampion: {promotion.get('winner')} ({promotion.get('note', '')})\n")
    validation_file = args.run / "validation.json"
    if validation_file.is_file():
        validation = json.loads(validation_file.read_text())
        print("#### Every candidate and sweep value on validation (what chose them)\n")
        rows = [[name, f"{v['metrics'].get(q, float('nan')):.4f}", f"{v['metrics'].get(exposure, float('nan')):.4f}",
                 "pass" if v["gate"]["passed"] else "fail",
                 ", ".join(c["name"] for c in v["gate"]["checks"] if c.get("blocking")) or "-",
                 "yes" if name in summary["models"] else ""]
                for name, v in validation.items()]
        print(_table(["candidate", f"NDCG@{k}", "tail exposure", "validation gate", "blocking", "chosen"], rows))
        print()
    sections = [
        ("Long-tail exposure (share of rank-weighted exposure)", exposure),
        ("Bias amplification, gender x genre (mean absolute)", amp),
    ]
    for title, target in sections:
        rows = [
            [
                name,
                f"{v[q]:.4f}",
                _pct(v.get(f"mitigation.{q}.relative_change")),
                f"{v.get(f'twin.{target}', float('nan')):.4f}",
                f"{v[target]:.4f}",
                _pct(v.get(f"mitigation.{target}.relative_change")),
            ]
            for name, v in mitigated.items()
            if target in v and f"twin.{target}" in v
        ]
        print(f"#### {title}\n")
        print(_table([
            "candidate", f"NDCG@{k}", "NDCG vs twin", "twin", "mitigated", "change",
        ], rows))
        print()

    print("#### Every group's NDCG, and levelling down\n")
    header = ["candidate", f"NDCG@{k}"]
    groups: dict[str, list[str]] = {}
    for attr in args.attributes:
        names = sorted({key.split(".")[-1] for key in next(iter(m.values())) if key.startswith(f"{attr}.{q}.")} - {"difference", "ratio"})
        groups[attr] = names
        header += [f"{attr}={g}" for g in names] + [f"{attr} gap", f"levelling down ({attr})"]
    rows = []
    for name, v in m.items():
        row = [name, f"{v[q]:.4f}"]
        for attr, names in groups.items():
            row += [f"{v.get(f'{attr}.{q}.{g}', float('nan')):.4f}" for g in names]
            row.append(f"{v.get(f'{attr}.{q}.difference', float('nan')):.4f}")
            flag = v.get(f"levelling_down.{attr}")
            row.append("-" if flag is None else ("**yes**" if flag else "no"))
        rows.append(row)
    print(_table(header, rows))


if __name__ == "__main__":
    main()
