"""``fairrec monitor``: the fairness of what the service served, window by window, against the offline record.

Inputs: the audit log (JSON lines or SQLite), the champion's candidate
directory from ``fairrec run`` (``NAME/`` with ``recommendations.parquet``,
the offline top-k lists of the test users; its parent holds ``config.yaml``,
``users.parquet`` and ``items.parquet``), optionally other user and item tables.
User attributes are joined here; the log holds none.

Per window (an hour, a day, or a number of list requests) the report gives:
exposure by item group; the protected group's share of the rank-weighted
exposure, with an interval, against the offline lists; catalogue coverage and
Gini; the share of non-personalised lists by reason; for each sensitive
attribute and group, the protected exposure and the list mix (item categories)
the group received and its click-through and "not interested" rates.

Tests against the offline lists (every test at a Bonferroni-adjusted level, so
the whole report's chance of a false alarm is at most ``alpha``):

* protected exposure (overall and per user group): the interval of the
  difference window - offline (delta method) lies wholly beyond
  ``+-exposure_tolerance``;
* list mix per user group: the chi-square test of homogeneity rejects *and*
  the population stability index is at least ``max_psi``.

A group with fewer than ``min_lists`` lists in the window (or offline) is
"inconclusive", never flagged. Exit status (as the gate's): 0 nothing
flagged, 1 some window breached a threshold, 2 error.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import yaml
from pydantic import ValidationError

from evaluation import catalog_coverage, exposure_gini
from evaluation._monitoring import (
    RatioMoments,
    mix_test,
    population_stability_index,
    proportion_interval,
    ratio_difference,
)
from recsys.errors import DataError, FairrecError
from training._monitor_stream import (
    BASES,
    FEEDBACK_EVENTS,
    LIST_ENDPOINTS,
    Catalogue,
    WindowSums,
    accumulate,
    add_lists,
    iter_records,
    window_keys,
)
from training._schema import FairnessConfig

__all__ = ["MonitorReport", "MonitorThresholds", "load_monitor_inputs", "parse_window", "run_monitor"]


@dataclass(frozen=True, kw_only=True)
class MonitorThresholds:
    """What counts as a breach (see the module docstring)."""

    alpha: float = 0.05
    exposure_tolerance: float = 0.02
    max_psi: float = 0.1
    min_lists: int = 30

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 1:
            raise FairrecError(f"monitor --alpha: expected a number in (0, 1), got {self.alpha!r}")
        if self.exposure_tolerance < 0 or self.max_psi < 0:
            raise FairrecError(
                "monitor --exposure-tolerance, --max-psi: expected non-negative numbers, got "
                f"{self.exposure_tolerance!r}, {self.max_psi!r}"
            )
        if self.min_lists < 2:
            raise FairrecError(f"monitor --min-lists: expected at least 2, got {self.min_lists!r}")


@dataclass(frozen=True, kw_only=True)
class MonitorInputs:
    catalogue: Catalogue
    fairness: FairnessConfig
    reference: WindowSums
    source: str
    users: pd.DataFrame  # the user attribute table (joined here, never written to the log)


@dataclass(frozen=True, kw_only=True)
class MonitorReport:
    """Every window's numbers, tests and flags; ``breached`` when any window is flagged."""

    window: str
    thresholds: MonitorThresholds
    n_tests: int
    confidence: float  # per test, Bonferroni-adjusted
    reference: dict[str, Any]
    windows: list[dict[str, Any]] = field(default_factory=list)
    served_versions: dict[str, int] = field(default_factory=dict)  # "name/version" -> lists served
    # for the consent section: window boundaries (n + 1, UTC) and each user's first personalised list
    window_edges: list[pd.Timestamp] = field(default_factory=list, repr=False)
    first_personalised: dict[str, pd.Timestamp] = field(default_factory=dict, repr=False)
    consent: dict[str, Any] | None = None

    @property
    def flagged(self) -> list[str]:
        return [w["label"] for w in self.windows if w["flags"]]

    @property
    def breached(self) -> bool:
        return bool(self.flagged)

    def to_json(self) -> dict[str, Any]:
        return {
            "window": self.window,
            "thresholds": vars(self.thresholds),
            "n_tests": self.n_tests,
            "confidence_per_test": self.confidence,
            "breached": self.breached,
            "flagged_windows": self.flagged,
            "served_versions": self.served_versions,
            "consent": self.consent,
            "reference": self.reference,
            "windows": self.windows,
        }


def parse_window(text: str) -> str | int:
    """``"hour"``, ``"day"`` or a positive number of list requests."""
    if text in ("hour", "day"):
        return text
    if text.isdigit() and int(text) > 0:
        return int(text)
    raise FairrecError(f"monitor --window: expected 'hour', 'day' or a positive number of requests, got {text!r}")


def _table(path: Path, what: str) -> pd.DataFrame:
    if not path.is_file():
        raise DataError(f"monitor {what}: {path} does not exist")
    try:
        return pd.read_csv(path) if path.suffix.lower() == ".csv" else pd.read_parquet(path)
    except Exception as exc:  # pandas and pyarrow raise many types; the message names the file
        raise DataError(f"monitor {what}: cannot read {path} as {'CSV' if path.suffix == '.csv' else 'parquet'}: {exc}") from exc


def _need(table: pd.DataFrame, columns: list[str], what: str, path: Path) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise DataError(f"monitor {what}: {path} has no column(s) {', '.join(missing)}; "
                        f"columns: {', '.join(map(str, table.columns))}")


def _fairness(run_root: Path) -> FairnessConfig:
    path = run_root / "config.yaml"
    if not path.is_file():
        raise DataError(f"monitor --champion: expected the run's config.yaml at {path} (the parent of the "
                        "candidate directory written by `fairrec run --out`)")
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    try:
        return FairnessConfig(**(raw.get("fairness") or {}))
    except ValidationError as exc:
        raise DataError(f"monitor: {path}: fairness section is invalid: {exc}") from exc


def load_monitor_inputs(champion: Path, *, users: Path | None = None, items: Path | None = None) -> MonitorInputs:
    """Item and user tables, the fairness settings and the offline lists of a ``fairrec run`` candidate."""
    champion = Path(champion)
    root = champion.parent
    fc = _fairness(root)
    items_path, users_path = items or root / "items.parquet", users or root / "users.parquet"
    item_table, user_table = _table(items_path, "--items"), _table(users_path, "--users")
    group_col = "popularity_group" if fc.item_group == "popularity" else fc.item_group
    _need(item_table, ["item_id", group_col, fc.amplification_attribute], "--items", items_path)
    _need(user_table, ["user_id", *fc.sensitive], "--users", users_path)
    item_ids = item_table["item_id"].astype(str).to_numpy()
    if not pd.Index(item_ids).is_unique:
        raise DataError(f"monitor --items: {items_path} lists an item_id more than once")
    labels = item_table[group_col].astype("string").fillna("unknown")
    group_codes, group_names = pd.factorize(labels, sort=True)
    cat_codes, cat_names = pd.factorize(item_table[fc.amplification_attribute].astype("string").fillna("unknown"),
                                        sort=True)
    user_array = pa.array(user_table["user_id"].astype(str).to_numpy(dtype=object), type=pa.string())
    if len(pc.unique(user_array)) != len(user_array):
        raise DataError(f"monitor --users: {users_path} lists a user_id more than once")
    user_codes, group_labels = {}, {}
    for attr in fc.sensitive:
        labels_u = user_table[attr].astype("string").fillna("unknown").astype(str)
        names = sorted(set(labels_u) - {"unknown"}) + ["unknown"]  # "unknown" also: users not in the table
        code_of = {n: c for c, n in enumerate(names)}
        user_codes[attr] = labels_u.map(code_of).to_numpy(dtype=np.int64)
        group_labels[attr] = names
    cat = Catalogue(
        item_array=pa.array(item_ids.astype(object), type=pa.string()), n_items=item_ids.size,
        item_group=group_codes.astype(np.int64), item_groups=[str(g) for g in group_names],
        protected=(labels == fc.protected_group).to_numpy(dtype=bool),
        category=cat_codes.astype(np.int64), categories=[str(c) for c in cat_names],
        user_array=user_array, user_codes=user_codes, group_names=group_labels,
    )
    if not cat.protected.any():
        raise DataError(f"monitor: no item of {items_path} is in the protected group "
                        f"{fc.protected_group!r} of {group_col!r}")
    rec_path = champion / "recommendations.parquet"
    recs = _table(rec_path, "--champion")
    _need(recs, ["user_id", "item_id", "rank"], "--champion", rec_path)
    reference = WindowSums()
    recs = recs.sort_values(["user_id", "rank"], kind="stable")
    users_order, pos = np.unique(recs["user_id"].astype(str).to_numpy(), return_inverse=True)
    k = int(recs["rank"].max())
    ids = np.full((users_order.size, k), -1, dtype=np.int64)
    ids[pos, recs["rank"].to_numpy() - 1] = pc.fill_null(pc.index_in(
        pa.array(recs["item_id"].astype(str).to_numpy(dtype=object), type=pa.string()), value_set=cat.item_array), -1)
    add_lists(reference, pa.array(users_order.astype(object), type=pa.string()), ids,
              pa.array(["history"] * users_order.size, type=pa.string()), cat)
    return MonitorInputs(catalogue=cat, fairness=fc, reference=reference, source=str(champion), users=user_table)


def _coverage_gini(counts: np.ndarray, n_items: int) -> tuple[float, float]:
    # the offline functions take lists; one column of item ids, each repeated by its count, has the same counts
    ids = np.repeat(np.arange(n_items), counts.astype(np.int64))[:, None]
    return catalog_coverage(ids, n_items), exposure_gini(ids, n_items)


def _iv(iv: Any) -> dict[str, float]:
    return {"estimate": iv.estimate, "low": iv.low, "high": iv.high}


def _summary(acc: WindowSums, cat: Catalogue) -> dict[str, Any]:
    """Numbers of one window (or of the offline lists) without tests."""
    assert acc.item_exposure is not None and acc.item_counts is not None and acc.moments is not None
    exp = np.bincount(cat.item_group, weights=acc.item_exposure, minlength=len(cat.item_groups))
    total = exp.sum()
    coverage, gini = _coverage_gini(acc.item_counts, cat.n_items)
    out: dict[str, Any] = {
        "n_lists": acc.n_lists, "n_similar": acc.n_similar, "n_unknown_items": acc.n_unknown_items,
        "categories_withheld": {"count": acc.n_withheld, **_iv(proportion_interval(acc.n_withheld, acc.n_lists))},
        "exposure_share": {g: float(e / total) if total > 0 else float("nan")
                           for g, e in zip(cat.item_groups, exp, strict=True)},
        "protected_exposure": _iv(RatioMoments.from_array(acc.moments).interval(0.95)),
        "coverage": coverage, "gini": gini,
        "non_personalised": {
            b: {"count": acc.basis.get(b, 0), **_iv(proportion_interval(acc.basis.get(b, 0), acc.n_lists))}
            for b in BASES if b != "history"
        },
        "groups": {},
    }
    for attr, names in cat.group_names.items():
        part, fb = acc.by_group[attr], acc.feedback[attr]
        rows = {}
        for j, name in enumerate(names):
            n = int(part["lists"][j])
            mix = part["mix"][j]
            rows[name] = {
                "n_lists": n,
                "protected_exposure": _iv(RatioMoments.from_array(part["moments"][j]).interval(0.95)),
                "mix": {c: float(m / mix.sum()) if mix.sum() else float("nan")
                        for c, m in zip(cat.categories, mix, strict=True)},
                **{f"{e}_rate": _iv(proportion_interval(min(int(fb[e][j]), n), n)) for e in FEEDBACK_EVENTS},
                **{f"n_{e}": int(fb[e][j]) for e in FEEDBACK_EVENTS},
            }
        out["groups"][attr] = rows
    return out


def _tests(acc: WindowSums, ref: WindowSums, cat: Catalogue, th: MonitorThresholds, conf: float) -> tuple[dict, list[str]]:
    assert acc.moments is not None and ref.moments is not None
    flags: list[str] = []
    diff = ratio_difference(RatioMoments.from_array(acc.moments), RatioMoments.from_array(ref.moments),
                            confidence=conf)
    tests: dict[str, Any] = {"protected_exposure": {**_iv(diff), "flag": diff.outside(th.exposure_tolerance)}}
    if tests["protected_exposure"]["flag"]:
        flags.append(f"protected exposure moved by {diff.estimate:+.4f} (interval {diff.low:+.4f} to {diff.high:+.4f})")
    for attr, names in cat.group_names.items():
        part, rpart = acc.by_group[attr], ref.by_group[attr]
        for j, name in enumerate(names):
            n, n_ref = part["lists"][j], rpart["lists"][j]
            key = f"{attr}={name}"
            if n < th.min_lists or n_ref < th.min_lists:
                tests[key] = {"verdict": "inconclusive", "n_lists": int(n), "n_reference": int(n_ref)}
                continue
            d = ratio_difference(RatioMoments.from_array(part["moments"][j]),
                                 RatioMoments.from_array(rpart["moments"][j]), confidence=conf)
            psi = population_stability_index(rpart["mix"][j], part["mix"][j])
            stat, p = mix_test(rpart["mix"][j], part["mix"][j], n_reference=float(n_ref), n_observed=float(n))
            exp_flag, mix_flag = d.outside(th.exposure_tolerance), bool(p < 1 - conf and psi >= th.max_psi)
            tests[key] = {"n_lists": int(n), "n_reference": int(n_ref), "protected_exposure": _iv(d),
                          "exposure_flag": exp_flag, "psi": psi, "chi2": stat, "p_value": p, "mix_flag": mix_flag,
                          "verdict": "fail" if exp_flag or mix_flag else "pass"}
            if exp_flag:
                flags.append(f"{key}: protected exposure moved by {d.estimate:+.4f} "
                             f"(interval {d.low:+.4f} to {d.high:+.4f}; {int(n)} lists vs {int(n_ref)} offline)")
            if mix_flag:
                flags.append(f"{key}: list mix shifted (PSI {psi:.3f}, chi-square p={p:.2g}; "
                             f"{int(n)} lists vs {int(n_ref)} offline)")
    return tests, flags


def _label(key: int, window: str | int) -> str:
    if isinstance(window, int):
        return f"lists {key * window}-{(key + 1) * window - 1}"
    return datetime.fromtimestamp(key / 1e9, tz=UTC).isoformat()


def run_monitor(audit: Path, inputs: MonitorInputs, *, window: str | int,
                thresholds: MonitorThresholds | None = None) -> MonitorReport:
    """Stream ``audit`` into windows and test each against the offline lists."""
    th = thresholds or MonitorThresholds()
    cat = inputs.catalogue
    sums: dict[int, WindowSums] = {}
    served: Counter[str] = Counter()
    first: dict[str, int] = {}
    spans: dict[int, list[int]] = {}
    seen = 0
    for chunk in iter_records(Path(audit)):
        is_list = (chunk.endpoint == LIST_ENDPOINTS[0]) | (chunk.endpoint == LIST_ENDPOINTS[1])
        served.update(dict(zip(*np.unique(chunk.model[is_list], return_counts=True), strict=True)))
        ordinals = np.full(len(chunk), -1, dtype=np.int64)
        ordinals[is_list] = seen + np.arange(int(is_list.sum()))
        if isinstance(window, int):  # feedback and similar lists join the window of the last list before them
            ordinals = np.maximum.accumulate(np.where(ordinals >= 0, ordinals, max(seen - 1, 0)))
        seen += int(is_list.sum())
        keys = window_keys(chunk, ordinals, window)
        accumulate(sums, chunk, keys, cat)
        _first_personalised(first, chunk)
        ns = chunk.time.cast(pa.int64()).to_numpy()
        for key in np.unique(keys):
            t = ns[keys == key]
            lo, hi = spans.setdefault(int(key), [int(t.min()), int(t.max())])
            spans[int(key)] = [min(lo, int(t.min())), max(hi, int(t.max()))]
    if not sums:
        raise DataError(f"audit {audit}: holds no record")
    n_tests = len(sums) * (1 + 2 * sum(len(v) for v in cat.group_names.values()))
    conf = 1 - th.alpha / n_tests
    windows = []
    for key in sorted(sums):
        acc = sums[key]
        summary = _summary(acc, cat)
        tests, flags = _tests(acc, inputs.reference, cat, th, conf) if acc.n_lists else ({}, [])
        windows.append({"label": _label(key, window), **summary, "tests": tests, "flags": flags})
    return MonitorReport(window=str(window), thresholds=th, n_tests=n_tests, confidence=conf,
                         reference=_summary(inputs.reference, cat), windows=windows,
                         served_versions={str(k): int(v) for k, v in served.items()},
                         window_edges=_edges(spans, window),
                         first_personalised={u: pd.Timestamp(t, tz="UTC") for u, t in first.items()})


def _first_personalised(first: dict[str, int], chunk: Any) -> None:
    """Keep each user's earliest personalised list (basis ``history``), in ns since the epoch."""
    mask = pc.and_(pc.equal(chunk.basis, "history"), pc.is_valid(chunk.user_id))
    table = pa.table({"u": chunk.user_id.filter(mask), "t": chunk.time.cast(pa.int64()).filter(mask)})
    grouped = table.group_by("u").aggregate([("t", "min")])
    for user, t in zip(grouped["u"].to_pylist(), grouped["t_min"].to_pylist(), strict=True):
        if user not in first or t < first[user]:
            first[user] = t


def _edges(spans: dict[int, list[int]], window: str | int) -> list[pd.Timestamp]:
    """Window boundaries: the windows' starts and the last end (request windows: their first and last times)."""
    keys = sorted(spans)
    if isinstance(window, int):
        starts = [spans[k][0] for k in keys]
        end = spans[keys[-1]][1] + 1
    else:
        starts = list(keys)
        end = keys[-1] + {"hour": 3_600, "day": 86_400}[window] * 1_000_000_000
    out = [pd.Timestamp(t, tz="UTC") for t in [*starts, end]]
    return [t for i, t in enumerate(out) if i == 0 or t > out[i - 1]]
