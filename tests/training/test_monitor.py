"""``fairrec monitor`` on generated audit logs: a planted shift is flagged where it is, and only there."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from recsys.serving import AuditRecord, SqliteAuditLog
from tests.support.audit_logs import write_audit, write_run
from training._monitor import MonitorThresholds, load_monitor_inputs, parse_window, run_monitor
from training.cli import main


@pytest.fixture(scope="module")
def champion(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_run(tmp_path_factory.mktemp("run") / "run")


def test_planted_shift_flags_exactly_the_windows_after_it(champion: Path, tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"
    write_audit(audit, n_lists=8000, n_days=8, shift_day=4)
    report = run_monitor(audit, load_monitor_inputs(champion), window="day")
    assert [bool(w["flags"]) for w in report.windows] == [False] * 4 + [True] * 4
    for w in report.windows[4:]:
        assert w["tests"]["gender=F"]["exposure_flag"] and w["tests"]["gender=F"]["verdict"] == "fail"
        assert not w["tests"]["gender=M"]["exposure_flag"]
        assert w["groups"]["gender"]["F"]["protected_exposure"]["estimate"] == 0.0


def test_cli_exits_1_on_shift_and_writes_reports(champion: Path, tmp_path: Path, capsys) -> None:
    audit = tmp_path / "audit.jsonl"
    write_audit(audit, n_lists=4000, n_days=4, shift_day=2)
    out = tmp_path / "report"
    code = main(["monitor", "--audit", str(audit), "--champion", str(champion), "--out", str(out)], env={})
    assert code == 1
    payload = json.loads((out / "monitor_report.json").read_text())
    assert payload["breached"] and len(payload["flagged_windows"]) == 2
    assert payload["served_versions"] == {"m/1": 4000}
    assert "BREACHED" in (out / "monitor_report.html").read_text()
    assert (out / "protected_exposure.png").stat().st_size > 0
    assert "BREACH gender=F: protected exposure moved by" in capsys.readouterr().out


def test_unshifted_log_passes_in_at_least_95_percent_of_seeds(champion: Path, tmp_path: Path) -> None:
    inputs = load_monitor_inputs(champion)
    passed = 0
    for seed in range(20):
        audit = tmp_path / f"audit{seed}.jsonl"
        write_audit(audit, n_lists=2000, n_days=4, seed=100 + seed)
        passed += not run_monitor(audit, inputs, window="day").breached
    assert passed >= 19


def test_request_windows_and_sqlite_log(champion: Path, tmp_path: Path) -> None:
    jsonl = tmp_path / "audit.jsonl"
    write_audit(jsonl, n_lists=3000, n_days=3, shift_day=2)
    log = SqliteAuditLog(tmp_path / "audit.sqlite")
    for line in jsonl.read_text().splitlines():
        rec = json.loads(line)
        log.record(AuditRecord(**{**rec, "items": tuple(rec["items"]), "reasons": tuple(rec["reasons"])}))
    log.close()
    inputs = load_monitor_inputs(champion)
    by_requests = run_monitor(tmp_path / "audit.sqlite", inputs, window=1000)
    assert [w["label"] for w in by_requests.windows] == ["lists 0-999", "lists 1000-1999", "lists 2000-2999"]
    assert [bool(w["flags"]) for w in by_requests.windows] == [False, False, True]
    assert [w["categories_withheld"]["count"] for w in by_requests.windows] == [0, 0, 0]
    by_day = run_monitor(jsonl, inputs, window="day")
    assert [w["n_lists"] for w in by_day.windows] == [w["n_lists"] for w in by_requests.windows]


def test_non_personalised_share_and_feedback(champion: Path, tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"
    base = {"request_id": "r", "model_name": "m", "model_version": "1", "reasons": [], "explained": False}
    rows = [
        {**base, "time": "2026-03-02T01:00:00+00:00", "endpoint": "recommendations", "user_id": "u1",
         "k": 2, "items": ["i0", "i100"], "basis": "history"},
        {**base, "time": "2026-03-02T02:00:00+00:00", "endpoint": "recommendations", "user_id": "u1",
         "k": 2, "items": ["i0", "i1"], "basis": "opted_out", "withheld_categories": ["c2"]},
        {**base, "time": "2026-03-02T03:00:00+00:00", "endpoint": "recommendations", "user_id": "nobody",
         "k": 2, "items": ["i0", "zzz"], "basis": "unknown_user"},
        {**base, "time": "2026-03-02T04:00:00+00:00", "endpoint": "similar", "user_id": None,
         "k": 1, "items": ["i3"], "basis": "item"},
        {**base, "time": "2026-03-02T05:00:00+00:00", "endpoint": "feedback", "user_id": "u1",
         "k": 1, "items": ["i0"], "basis": "click"},
    ]
    audit.write_text("".join(json.dumps(r) + "\n" for r in rows))
    report = run_monitor(audit, load_monitor_inputs(champion), window="day")
    (w,) = report.windows
    assert (w["n_lists"], w["n_similar"], w["n_unknown_items"]) == (3, 1, 1)
    assert w["non_personalised"]["opted_out"]["estimate"] == pytest.approx(1 / 3)
    assert w["non_personalised"]["unknown_user"]["count"] == 1
    assert w["categories_withheld"]["count"] == 1 and w["categories_withheld"]["estimate"] == pytest.approx(1 / 3)
    # u1 is odd: F; exposure of list 1: tail i100 at rank 2 -> (1/log2 3) / (1 + 1/log2 3)
    f = w["groups"]["gender"]["F"]
    assert f["n_lists"] == 2 and f["n_click"] == 1 and f["click_rate"]["estimate"] == 0.5
    assert w["groups"]["gender"]["unknown"]["n_lists"] == 1
    g = 1 / __import__("math").log2(3)
    assert f["protected_exposure"]["estimate"] == pytest.approx(g / (2 * (1 + g)))
    assert w["tests"]["gender=F"]["verdict"] == "inconclusive"


def test_bad_inputs_are_clear_errors(champion: Path, tmp_path: Path, capsys) -> None:
    assert main(["monitor", "--audit", str(tmp_path / "none.jsonl"), "--champion", str(champion)], env={}) == 2
    assert "none.jsonl does not exist" in capsys.readouterr().err
    assert main(["monitor", "--audit", str(tmp_path / "a.csv"), "--champion", str(champion)], env={}) == 2
    assert "audit: expected a file ending in .jsonl" in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json}\n")
    assert main(["monitor", "--audit", str(bad), "--champion", str(champion), "--window", "week"], env={}) == 2
    assert "--window: expected 'hour', 'day' or a positive number of requests, got 'week'" in capsys.readouterr().err
    assert main(["monitor", "--audit", str(bad), "--champion", str(champion)], env={}) == 2
    assert "bad.jsonl (lines 1-1): not a fairrec audit log in JSON lines" in capsys.readouterr().err
    bad.write_text('{"time": "2026-03-02T00:00:00+00:00", "endpoint": "recommendations", "items": []}\n')
    assert main(["monitor", "--audit", str(bad), "--champion", str(champion)], env={}) == 2
    assert "1 record(s) without a 'basis' field" in capsys.readouterr().err
    bad.write_text('{"time": "yesterday", "endpoint": "similar", "items": [], "basis": "item"}\n')
    assert main(["monitor", "--audit", str(bad), "--champion", str(champion)], env={}) == 2
    assert "a record's 'time' is not an ISO 8601 timestamp" in capsys.readouterr().err
    assert main(["monitor", "--audit", str(bad), "--champion", str(tmp_path)], env={}) == 2
    assert "expected the run's config.yaml" in capsys.readouterr().err
    with pytest.raises(Exception, match="--alpha: expected a number in"):
        MonitorThresholds(alpha=2.0)
    assert parse_window("500") == 500


def test_rotated_json_lines_are_read_oldest_first(champion: Path, tmp_path: Path) -> None:
    whole = tmp_path / "whole.jsonl"
    write_audit(whole, n_lists=3000, n_days=3, shift_day=2)
    lines = whole.read_text().splitlines(keepends=True)
    (tmp_path / "audit.jsonl.2").write_text("".join(lines[:1000]))
    (tmp_path / "audit.jsonl.1").write_text("".join(lines[1000:2000]))
    (tmp_path / "audit.jsonl").write_text("".join(lines[2000:]))
    inputs = load_monitor_inputs(champion)
    rotated = run_monitor(tmp_path / "audit.jsonl", inputs, window=1000)
    assert [w["n_lists"] for w in rotated.windows] == [1000, 1000, 1000]
    assert [bool(w["flags"]) for w in rotated.windows] == [False, False, True]


def test_consent_section_and_opt_out_gap_ceiling(champion: Path, tmp_path: Path, capsys) -> None:
    from datetime import UTC, datetime, timedelta

    from recsys.serving import ConsentStore

    audit = tmp_path / "audit.jsonl"
    write_audit(audit, n_lists=2000, n_days=4)
    when = iter([datetime(2026, 3, 3, 12, tzinfo=UTC) + timedelta(seconds=s) for s in range(100)])
    store = ConsentStore(tmp_path / "consent.sqlite", clock=lambda: next(when))
    for j in range(1, 121, 2):  # 60 F users (odd ids) opt out on the second day
        store.set(f"u{j}", personalisation=False)
    store.close()
    out = tmp_path / "report"
    args = ["monitor", "--audit", str(audit), "--champion", str(champion), "--out", str(out),
            "--consent", str(tmp_path / "consent.sqlite")]
    assert main(args, env={}) == 0  # no ceiling: reported, not judged
    page = (out / "monitor_report.html").read_text()
    assert "<h2>Consent</h2>" in page and "gender=F" in page
    payload = json.loads((out / "monitor_report.json").read_text())
    rows = {(r["window"], r["group"]): r for r in payload["consent"]["rows"]}
    assert rows[("2026-03-03", "F")]["opt_out_rate"] == 60 / 200 and rows[("2026-03-03", "F")]["at_risk"] == 200
    assert rows[("2026-03-03", "M")]["opt_outs"] == 0
    assert rows[("2026-03-04", "F")]["at_risk"] == 140 and rows[("2026-03-04", "F")]["decay"] == 1.0
    ttl = {r["group"]: r for r in payload["consent"]["time_to_opt_out"]}
    assert ttl["F"]["n"] > 0 and ttl["F"]["median_hours"] > 0
    capsys.readouterr()
    assert main([*args, "--max-opt-out-gap", "0.1"], env={}) == 1
    payload = json.loads((out / "monitor_report.json").read_text())
    assert payload["flagged_windows"] == ["2026-03-03T00:00:00+00:00"]
    assert "opt-out rate differs by 0.3000 across gender groups" in capsys.readouterr().out
    assert main(["monitor", "--audit", str(audit), "--champion", str(champion), "--max-opt-out-gap", "0.1"],
                env={}) == 2


def test_report_is_logged_to_the_served_versions_run(champion: Path, tmp_path: Path) -> None:
    from training._tracking import Tracker

    audit = tmp_path / "audit.jsonl"
    write_audit(audit, n_lists=2000, n_days=4, shift_day=2)
    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}", "monitor-test")
    run_id = tracker.start_run("served-version")
    code = main(["monitor", "--audit", str(audit), "--champion", str(champion), "--out", str(tmp_path / "r"),
                 "--run-id", run_id, "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"], env={})
    assert code == 1
    client = tracker.client
    history = client.get_metric_history(run_id, "monitor.flags")
    assert [(m.step, m.value) for m in sorted(history, key=lambda m: m.step)] == [
        (0, 0.0), (1, 0.0), (2, 2.0), (3, 2.0)]
    assert client.get_run(run_id).data.tags["fairrec.monitor"] == "breached"
    files = {f.path for f in client.list_artifacts(run_id, "monitor")}
    assert {"monitor/monitor_report.json", "monitor/monitor_report.html"} <= files
