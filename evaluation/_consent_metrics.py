"""Consent as a metric: opt-out, re-opt-in and consent decay per window and user group.

Input is the consent change log (:func:`recsys.serving.consent_history`: one
row per change, ``user_id``, ``at``, ``personalisation``) and a user table.
A user's state before any change is "allowed" (the store's default). A change
to "off" from "allowed" is an **opt-out**; a change to "allowed" from "off" a
**re-opt-in**; a change that repeats the state is neither.

Per window ``[start, end)``, attribute and group (users missing from the user
table form ``"unknown"``):

* ``opt_out_rate``: of the group's users not opted out at ``start`` (the users
  at risk), the share who opted out in the window;
* ``re_opt_in_rate``: of the group's users opted out at some moment in the
  window (at ``start`` or by an opt-out in it), the share who opted back in;
* ``decay``: at ``end``, of the group's users who ever made a change, the share
  whose last change is an opt-out.

Each rate comes with its Wilson interval and its denominator.
``time_to_opt_out`` (hours from a user's first personalised list to their first
opt-out after it) is summarised per group over the whole log.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from evaluation._fairness_report import sanitize_label
from evaluation._monitoring import proportion_interval

__all__ = ["ConsentReport", "consent_metrics"]


@dataclass(frozen=True, kw_only=True)
class ConsentReport:
    """Rows per (window, attribute, group) and the time to opt-out per (attribute, group)."""

    rows: pd.DataFrame
    time_to_opt_out: pd.DataFrame
    min_users: int

    def flat(self, window: str | None = None) -> dict[str, float]:
        """MLflow-safe ``consent.*`` metrics of one window (default: the last).

        ``consent.{rate}.{attribute}.{group}`` for every rate, and
        ``consent.{rate}.{attribute}.difference`` (largest minus smallest over the
        groups with at least ``min_users`` users in the denominator).
        """
        if self.rows.empty:
            return {}
        label = self.rows["window"].iloc[-1] if window is None else window
        part = self.rows[self.rows["window"] == label]
        out: dict[str, float] = {}
        for rate, n_col in (("opt_out_rate", "at_risk"), ("re_opt_in_rate", "opted_out"), ("decay", "changed")):
            for attr, rows in part.groupby("attribute", sort=False):
                a = sanitize_label(str(attr))
                for _, r in rows.iterrows():
                    if np.isfinite(r[rate]):
                        out[f"consent.{rate}.{a}.{sanitize_label(str(r['group']))}"] = float(r[rate])
                big = rows[(rows[n_col] >= self.min_users) & np.isfinite(rows[rate])]
                if len(big) >= 2:
                    out[f"consent.{rate}.{a}.difference"] = float(big[rate].max() - big[rate].min())
        return out


def _check_history(history: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in ("user_id", "at", "personalisation") if c not in history.columns]
    if missing:
        raise ValueError(f"history: expected columns user_id, at, personalisation; missing {', '.join(missing)}")
    if not isinstance(history["at"].dtype, pd.DatetimeTZDtype):
        raise ValueError(f"history: column 'at' must hold timezone-aware timestamps, got dtype {history['at'].dtype}")
    ev = history[["user_id", "at", "personalisation"]].copy()
    ev["user_id"] = ev["user_id"].astype(str)
    ev["personalisation"] = ev["personalisation"].astype(bool)
    ev = ev.sort_values("at", kind="stable").reset_index(drop=True)
    prev = ev.groupby("user_id", sort=False)["personalisation"].shift(1).astype("boolean").fillna(True)
    ev["opt_out"] = ~ev["personalisation"] & prev.to_numpy(dtype=bool)
    ev["opt_in"] = ev["personalisation"] & ~prev.to_numpy(dtype=bool)
    return ev


def _iv(successes: int, n: int, confidence: float) -> tuple[float, float, float]:
    iv = proportion_interval(int(successes), int(n), confidence=confidence)
    return iv.estimate, iv.low, iv.high


def consent_metrics(
    history: pd.DataFrame,
    users: pd.DataFrame,
    *,
    attributes: Sequence[str],
    edges: Sequence[pd.Timestamp],
    first_personalised: Mapping[str, pd.Timestamp] | None = None,
    min_users: int = 30,
    confidence: float = 0.95,
) -> ConsentReport:
    """Consent rates per window ``[edges[i], edges[i + 1])``, attribute and group (module docstring).

    Examples
    --------
    >>> at = pd.to_datetime(["2026-01-01T10:00Z", "2026-01-02T10:00Z", "2026-01-01T12:00Z"])
    >>> h = pd.DataFrame({"user_id": ["a", "a", "b"], "at": at, "personalisation": [False, True, False]})
    >>> u = pd.DataFrame({"user_id": ["a", "b", "c"], "g": ["x", "x", "y"]})
    >>> days = pd.to_datetime(["2026-01-01T00:00Z", "2026-01-02T00:00Z", "2026-01-03T00:00Z"])
    >>> r = consent_metrics(h, u, attributes=["g"], edges=days, min_users=1).rows
    >>> x = r[r["group"] == "x"]
    >>> x["opt_out_rate"].tolist(), x["re_opt_in_rate"].tolist(), x["decay"].tolist()
    ([1.0, nan], [0.0, 0.5], [1.0, 0.5])
    """
    ev = _check_history(history)
    edges = [pd.Timestamp(e) for e in edges]
    if len(edges) < 2 or any(e.tzinfo is None for e in edges) or any(b <= a for a, b in zip(edges, edges[1:])):
        raise ValueError(f"edges: expected at least two increasing timezone-aware timestamps, got {edges!r}")
    for attr in attributes:
        if attr not in users.columns:
            raise ValueError(f"attributes: {attr!r} is not a column of users; columns: {', '.join(users.columns)}")
    table = users.assign(user_id=users["user_id"].astype(str)).drop_duplicates("user_id")
    population = pd.Index(table["user_id"]).union(pd.Index(ev["user_id"].unique()))
    labels = {a: table.set_index("user_id")[a].astype("string").reindex(population).fillna("unknown").astype(str)
              for a in attributes}
    rows = []
    for start, end in zip(edges, edges[1:]):
        before = ev[ev["at"] < start].groupby("user_id")["personalisation"].last()
        out_at_start = pd.Index(before.index[~before.to_numpy(dtype=bool)])
        inside = ev[(ev["at"] >= start) & (ev["at"] < end)]
        opted = pd.Index(inside.loc[inside["opt_out"], "user_id"].unique())
        back = pd.Index(inside.loc[inside["opt_in"], "user_id"].unique())
        at_end = ev[ev["at"] < end].groupby("user_id")["personalisation"].last()
        sets = {
            "at_risk": population.difference(out_at_start),
            "out_in_window": opted.difference(out_at_start),
            "opted_out": out_at_start.union(opted),
            "back": back,
            "changed": pd.Index(at_end.index),
            "last_out": pd.Index(at_end.index[~at_end.to_numpy(dtype=bool)]),
        }
        for attr in attributes:
            lab = labels[attr]
            counts = {k: lab.reindex(v).value_counts() for k, v in sets.items()}
            for group in sorted(lab.unique()):
                n = {k: int(c.get(group, 0)) for k, c in counts.items()}
                o, r, d = (_iv(n["out_in_window"], n["at_risk"], confidence),
                           _iv(n["back"], n["opted_out"], confidence), _iv(n["last_out"], n["changed"], confidence))
                rows.append({"window": start.strftime("%Y-%m-%d %H:%M").removesuffix(" 00:00"), "start": start,
                             "attribute": attr, "group": group, "n_users": int((lab == group).sum()),
                             "at_risk": n["at_risk"], "opt_outs": n["out_in_window"], "opt_out_rate": o[0],
                             "opt_out_low": o[1], "opt_out_high": o[2], "opted_out": n["opted_out"],
                             "re_opt_ins": n["back"], "re_opt_in_rate": r[0], "re_opt_in_low": r[1],
                             "re_opt_in_high": r[2], "changed": n["changed"], "decay": d[0],
                             "decay_low": d[1], "decay_high": d[2]})
    return ConsentReport(rows=pd.DataFrame(rows), time_to_opt_out=_time_to_opt_out(ev, labels, first_personalised),
                         min_users=min_users)


def _time_to_opt_out(ev: pd.DataFrame, labels: dict[str, pd.Series],
                     first_personalised: Mapping[str, pd.Timestamp] | None) -> pd.DataFrame:
    columns = ["attribute", "group", "n", "median_hours", "q25_hours", "q75_hours"]
    if not first_personalised:
        return pd.DataFrame(columns=columns)
    first = pd.Series({str(k): pd.Timestamp(v) for k, v in first_personalised.items()})
    outs = ev[ev["opt_out"]].merge(first.rename("first").rename_axis("user_id").reset_index(), on="user_id")
    outs = outs[outs["at"] > outs["first"]].groupby("user_id").first()
    hours = (outs["at"] - outs["first"]).dt.total_seconds() / 3600.0
    rows: list[dict[str, Any]] = []
    for attr, lab in labels.items():
        by = hours.groupby(lab.reindex(hours.index).fillna("unknown"))
        for group, h in by:
            rows.append({"attribute": attr, "group": group, "n": int(h.size), "median_hours": float(h.median()),
                         "q25_hours": float(h.quantile(0.25)), "q75_hours": float(h.quantile(0.75))})
    return pd.DataFrame(rows, columns=columns)
