"""Consent metrics: exact values on a hand-written change log (worked out in the comments)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from evaluation import consent_metrics

T = pd.Timestamp


def _log() -> pd.DataFrame:
    rows = [
        ("u1", "2026-01-01T09:00Z", False), ("u1", "2026-01-02T09:00Z", True), ("u1", "2026-01-03T09:00Z", False),
        ("u2", "2026-01-01T10:00Z", True), ("u2", "2026-01-02T11:00Z", False),
        ("u3", "2026-01-01T12:00Z", False), ("u3", "2026-01-01T13:00Z", True),
        ("u5", "2026-01-03T08:00Z", False), ("u5", "2026-01-03T09:00Z", False),
        ("u9", "2026-01-02T10:00Z", False),  # not in the user table: group "unknown"
    ]
    return pd.DataFrame({"user_id": [r[0] for r in rows], "at": pd.to_datetime([r[1] for r in rows]),
                         "personalisation": [r[2] for r in rows]})


USERS = pd.DataFrame({"user_id": ["u1", "u2", "u3", "u4", "u5"], "gender": ["F", "F", "M", "M", "F"]})
DAYS = pd.to_datetime(["2026-01-01T00:00Z", "2026-01-02T00:00Z", "2026-01-03T00:00Z", "2026-01-04T00:00Z"])


@pytest.fixture(scope="module")
def report():
    first = {"u1": T("2026-01-01T06:00Z"), "u2": T("2026-01-02T10:00Z"), "u3": T("2026-01-01T11:00Z"),
             "u5": T("2026-01-03T09:30Z")}
    return consent_metrics(_log(), USERS, attributes=["gender"], edges=DAYS, first_personalised=first, min_users=1)


def _col(report, column):
    table = report.rows.pivot(index="window", columns="group", values=column)
    return {g: [None if isinstance(v, float) and math.isnan(v) else v for v in table[g]] for g in table.columns}


def test_opt_out_rate(report):
    # day 1: F at risk u1 u2 u5, u1 opts out; M at risk u3 u4, u3 opts out; u9 at risk, no change
    # day 2: u1 is out at the start; F at risk u2 u5, u2 opts out; u9 opts out
    # day 3: u2 and u9 out at the start; F at risk u1 u5, both opt out (u5's second "off" is no change)
    assert _col(report, "opt_out_rate") == {"F": [1 / 3, 1 / 2, 1.0], "M": [1 / 2, 0.0, 0.0],
                                            "unknown": [0.0, 1.0, None]}
    assert _col(report, "at_risk") == {"F": [3, 2, 2], "M": [2, 2, 2], "unknown": [1, 1, 0]}


def test_re_opt_in_rate(report):
    # day 1: u3 out and back within the day; u2's "on" repeats the default (no change)
    # day 2: F opted out at some moment: u1 (start), u2 (in the day); u1 came back
    assert _col(report, "re_opt_in_rate") == {"F": [0.0, 0.5, 0.0], "M": [1.0, None, None],
                                              "unknown": [None, 0.0, 0.0]}
    assert _col(report, "opted_out") == {"F": [1, 2, 3], "M": [1, 0, 0], "unknown": [0, 1, 1]}


def test_decay(report):
    # end of day 1: F changed u1 (off) u2 (on); end of day 3: u1 u2 u5 all last "off"
    assert _col(report, "decay") == {"F": [0.5, 0.5, 1.0], "M": [0.0, 0.0, 0.0], "unknown": [None, 1.0, 1.0]}


def test_time_to_opt_out(report):
    # u1: 06:00 -> 09:00 (3 h); u2: 10:00 -> 11:00 (1 h); u3: 11:00 -> 12:00 (1 h);
    # u5 opted out before their first personalised list: not counted
    t = report.time_to_opt_out.set_index("group")
    assert t.loc["F", ["n", "median_hours", "q25_hours", "q75_hours"]].tolist() == [2, 2.0, 1.5, 2.5]
    assert t.loc["M", ["n", "median_hours"]].tolist() == [1, 1.0]
    assert "unknown" not in t.index


def test_flat_metrics_and_disparity(report):
    flat = report.flat()
    assert flat["consent.opt_out_rate.gender.F"] == 1.0 and flat["consent.opt_out_rate.gender.M"] == 0.0
    assert "consent.opt_out_rate.gender.unknown" not in flat  # nan: nobody at risk
    assert flat["consent.opt_out_rate.gender.difference"] == 1.0
    # day 1: F 1/3, M 1/2, unknown 0 (one user at risk, min_users=1): 1/2 - 0
    assert report.flat("2026-01-01")["consent.opt_out_rate.gender.difference"] == 0.5
    strict = consent_metrics(_log(), USERS, attributes=["gender"], edges=DAYS, min_users=3)
    assert "consent.opt_out_rate.gender.difference" not in strict.flat()  # no group has 3 users at risk


def test_intervals_contain_the_rate(report):
    r = report.rows.dropna(subset=["opt_out_rate"])
    assert ((r["opt_out_low"] <= r["opt_out_rate"]) & (r["opt_out_rate"] <= r["opt_out_high"])).all()


def test_bad_input_names_the_parameter():
    with pytest.raises(ValueError, match="history: expected columns user_id, at, personalisation; missing at"):
        consent_metrics(_log().drop(columns="at"), USERS, attributes=["gender"], edges=DAYS)
    with pytest.raises(ValueError, match="attributes: 'age' is not a column of users"):
        consent_metrics(_log(), USERS, attributes=["age"], edges=DAYS)
    with pytest.raises(ValueError, match="edges: expected at least two increasing timezone-aware"):
        consent_metrics(_log(), USERS, attributes=["gender"], edges=DAYS[::-1])
