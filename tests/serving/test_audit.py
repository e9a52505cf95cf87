"""The audit log records what was served, in either format, and never a user attribute."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta

import pytest

from recsys.serving import AUDIT_FIELDS, AuditRecord, SqliteAuditLog

EXPECTED_FIELDS = ("time", "request_id", "endpoint", "user_id", "model_name", "model_version", "k",
                   "items", "basis", "reasons", "explained", "withheld_categories")
# every user column a fairrec dataset may carry (MovieLens and the synthetic generator)
USER_ATTRIBUTES = {"gender", "age", "age_group", "occupation", "zip", "activity_level", "sensitive"}


def test_the_audit_fields_are_fixed_and_hold_no_user_attribute():
    assert AUDIT_FIELDS == EXPECTED_FIELDS
    assert not USER_ATTRIBUTES & set(AUDIT_FIELDS)


@pytest.mark.parametrize("suffix", [".jsonl", ".sqlite"])
def test_each_list_served_is_recorded(bundles, make_client, tmp_path, suffix):
    client = make_client(bundles["hand_ease"], audit_path=tmp_path / f"audit{suffix}")
    r1 = client.get("/users/u0/recommendations", params={"k": 2, "explain": "true"})
    client.put("/users/u1/consent", json={"personalisation": False})
    r2 = client.get("/users/u1/recommendations", params={"k": 3})
    r3 = client.get("/users/ghost/recommendations", params={"k": 1})
    r4 = client.get("/items/a/similar", params={"k": 2})
    client.get("/users/u0/recommendations", params={"k": 0})  # rejected: nothing served
    records = client.app.state.audit.read()
    assert [r.request_id for r in records] == [r.headers["X-Request-ID"] for r in (r1, r2, r3, r4)]
    assert [(r.endpoint, r.user_id, r.basis, r.k, r.explained) for r in records] == [
        ("recommendations", "u0", "history", 2, True),
        ("recommendations", "u1", "opted_out", 3, False),
        ("recommendations", "ghost", "unknown_user", 1, False),
        ("similar", None, "item", 2, False),
    ]
    assert [r.items for r in records] == [("c", "d"), ("a", "b", "c"), ("a",), ("b", "c")]
    assert [r.reasons for r in records] == [
        ("history", "history"), ("popular",) * 3, ("popular",), ("similar_item",) * 2]
    assert {(r.model_name, r.model_version) for r in records} == {("hand", None)}
    for r in records:
        assert datetime.fromisoformat(r.time).utcoffset() == timedelta(0)  # UTC


def test_the_stored_keys_and_columns_are_the_audit_fields(bundles, make_client, tmp_path):
    jsonl = make_client(bundles["hand_ease"], audit_path=tmp_path / "a.jsonl")
    jsonl.get("/users/u0/recommendations", params={"explain": "true"})
    lines = (tmp_path / "a.jsonl").read_text().splitlines()
    assert len(lines) == 1 and tuple(json.loads(lines[0])) == EXPECTED_FIELDS

    sqlite = make_client(bundles["hand_ease"], audit_path=tmp_path / "a.db",
                         consent_path=tmp_path / "c2.sqlite")
    sqlite.get("/users/u0/recommendations")
    log = sqlite.app.state.audit
    assert isinstance(log, SqliteAuditLog)
    assert log.columns() == ["id", *EXPECTED_FIELDS]


def test_the_json_lines_log_is_rotated_and_bounded(bundles, make_client, tmp_path):
    """42,000 requests grew it by 17 MB; now it keeps at most (backups + 1) files of max_bytes."""
    path = tmp_path / "audit.jsonl"
    client = make_client(bundles["hand_ease"], audit_path=path, audit_max_bytes=2048, audit_backups=2)
    ids = [client.get("/users/u0/recommendations", params={"k": 2}).headers["X-Request-ID"]
           for _ in range(60)]
    files = sorted(p.name for p in tmp_path.glob("audit.jsonl*"))
    assert files == ["audit.jsonl", "audit.jsonl.1", "audit.jsonl.2"]
    sizes = [(tmp_path / f).stat().st_size for f in files]
    assert all(0 < s <= 2048 for s in sizes)
    kept = [r.request_id for r in client.app.state.audit.read()]
    assert kept == ids[-len(kept):] and 10 < len(kept) < 60  # the newest records, in order
    assert oct((tmp_path / "audit.jsonl").stat().st_mode & 0o777) == "0o640"


def test_a_write_that_fails_is_a_503_not_a_lost_record(bundles, make_client):
    client = make_client(bundles["hand_ease"])
    os.close(client.app.state.audit._fd)  # the file goes away under the running service
    r = client.get("/users/u0/recommendations")
    assert r.status_code == 503 and r.json()["detail"].startswith("audit log ")
    assert client.get("/ready").json()["status"] == "not_ready"


def test_the_log_still_writes_after_uvicorn_configures_logging(bundles, make_settings):
    """uvicorn's logging set-up closes every logging handler in the process: the audit log is not one."""
    from recsys.serving import build_server

    server = build_server(make_settings(bundles["hand_ease"]))
    audit = server.config.app.state.audit
    audit.ping()
    audit.record(AuditRecord(time="2026-01-01T00:00:00+00:00", request_id="r1", endpoint="similar",
                             user_id=None, model_name="m", model_version=None, k=1, items=("a",),
                             basis="item", reasons=("similar_item",), explained=False))
    assert [r.request_id for r in audit.read()] == ["r1"]
    audit.close()
    server.config.app.state.consent.close()
