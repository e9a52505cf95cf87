"""Consent metrics where fairrec reports: the monitor's windows, and a training run's ``consent.*`` metrics.

Both read the consent store's append-only change log
(:func:`recsys.serving.consent_history`) and join user attributes here.

* :func:`add_consent_section`: per monitor window and user group, opt-out rate,
  re-opt-in rate and consent decay with intervals, and the time from a user's
  first personalised list (from the audit log) to their opt-out.
* :func:`consent_training_metrics`: the same over the whole history, as flat
  ``consent.*`` metrics for the run (and a gate ceiling such as
  ``consent.opt_out_rate.gender.difference``), with the group sizes
  ``consent.at_risk.ATTR.GROUP``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from evaluation import consent_metrics, sanitize_label
from recsys.serving import consent_history

__all__ = ["add_consent_section", "consent_training_metrics"]


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    for row in frame.to_dict(orient="records"):
        out.append({k: (None if isinstance(v, float) and math.isnan(v) else
                        v.isoformat() if isinstance(v, pd.Timestamp) else v) for k, v in row.items()})
    return out


def consent_training_metrics(consent_path: Path, users: pd.DataFrame, attributes: Sequence[str], *,
                             min_users: int = 30) -> dict[str, float]:
    """``consent.*`` over the whole change log (one window from the first change to just after the last).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from recsys.serving import ConsentStore
    >>> with tempfile.TemporaryDirectory() as d:
    ...     store = ConsentStore(pathlib.Path(d) / "c.sqlite")
    ...     _ = store.set("1", personalisation=False)
    ...     store.close()
    ...     m = consent_training_metrics(pathlib.Path(d) / "c.sqlite",
    ...                                  pd.DataFrame({"user_id": ["1", "2"], "g": ["a", "b"]}), ["g"], min_users=1)
    >>> m["consent.opt_out_rate.g.a"], m["consent.opt_out_rate.g.b"], m["consent.opt_out_rate.g.difference"]
    (1.0, 0.0, 1.0)
    >>> m["consent.at_risk.g.a"], m["consent.at_risk.g.b"]
    (1.0, 1.0)
    """
    history = consent_history(consent_path)
    if history.empty:
        return {}
    edges = [history["at"].min(), history["at"].max() + pd.Timedelta(microseconds=1)]
    report = consent_metrics(history, users, attributes=attributes, edges=edges, min_users=min_users)
    # the group sizes behind the rates (users at risk of opting out), for the model card
    sizes = {f"consent.at_risk.{sanitize_label(str(r['attribute']))}.{sanitize_label(str(r['group']))}":
             float(r["at_risk"]) for _, r in report.rows.iterrows()}
    return {**report.flat(), **sizes}


def add_consent_section(report: Any, consent_path: Path, users: pd.DataFrame, attributes: Sequence[str], *,
                        max_opt_out_gap: float | None = None, min_users: int = 30) -> Any:
    """``report`` (a MonitorReport) with its consent section; with ``max_opt_out_gap``, windows whose
    opt-out rate differs between groups (of at least ``min_users`` users at risk) by more are flagged."""
    from dataclasses import replace

    history = consent_history(consent_path)
    result = consent_metrics(history, users, attributes=attributes, edges=report.window_edges,
                             first_personalised=report.first_personalised, min_users=min_users)
    section = {"rows": _records(result.rows), "time_to_opt_out": _records(result.time_to_opt_out),
               "min_users": min_users, "max_opt_out_gap": max_opt_out_gap}
    windows = [dict(w) for w in report.windows]
    if max_opt_out_gap is not None and not result.rows.empty:
        labels = list(dict.fromkeys(result.rows["window"]))
        for w, label in zip(windows, labels, strict=False):  # one consent window per monitor window, in order
            flat = result.flat(label)
            for attr in attributes:
                gap = flat.get(f"consent.opt_out_rate.{sanitize_label(attr)}.difference")
                if gap is not None and gap > max_opt_out_gap:
                    w["flags"] = [*w["flags"], f"opt-out rate differs by {gap:.4f} across {attr} groups "
                                  f"(ceiling {max_opt_out_gap}; groups of {min_users}+ users at risk)"]
    return replace(report, windows=windows, consent=section)
