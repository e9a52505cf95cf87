"""The consent store's append-only change log, category withdrawals, and training's use of them."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from recsys.data import Interactions
from recsys.errors import DataError
from recsys.serving import (
    ConsentStore,
    consent_history,
    drop_withdrawn_categories,
    opted_out_users,
    withdrawn_categories,
)


def _clock():
    times = iter(datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=h) for h in range(100))
    return lambda: next(times)


def test_every_change_is_logged_in_order(tmp_path):
    store = ConsentStore(tmp_path / "c.sqlite", clock=_clock())
    store.set("7", personalisation=False)
    store.set("8", personalisation=True)
    store.set("7", personalisation=True)
    store.close()
    h = consent_history(tmp_path / "c.sqlite")
    assert h["user_id"].tolist() == ["7", "8", "7"]
    assert h["personalisation"].tolist() == [False, True, True]
    assert h["at"].dt.hour.tolist() == [0, 1, 2]
    assert set(h["source"]) == {"change"}
    assert opted_out_users(tmp_path / "c.sqlite") == frozenset()  # the latest state is unchanged API


def test_the_log_refuses_updates_and_deletes(tmp_path):
    store = ConsentStore(tmp_path / "c.sqlite")
    store.set("7", personalisation=False)
    store.close()
    conn = sqlite3.connect(tmp_path / "c.sqlite")
    with pytest.raises(sqlite3.IntegrityError, match="consent_log is append-only"):
        conn.execute("UPDATE consent_log SET value = '1'")
    with pytest.raises(sqlite3.IntegrityError, match="consent_log is append-only"):
        conn.execute("DELETE FROM consent_log")
    conn.close()


def test_a_store_from_before_the_log_is_backfilled_once(tmp_path):
    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE consent (user_id TEXT PRIMARY KEY, personalisation INTEGER NOT NULL, "
                 "created_at TEXT NOT NULL, updated_at TEXT NOT NULL)")
    conn.execute("INSERT INTO consent VALUES ('5', 0, '2025-01-01T00:00:00+00:00', '2025-02-01T00:00:00+00:00')")
    conn.commit()
    conn.close()
    assert consent_history(path)["source"].tolist() == ["backfill"]  # read-only: derived, nothing written
    ConsentStore(path, clock=_clock()).close()
    store = ConsentStore(path, clock=_clock())  # opened twice: still one backfilled row
    store.set("5", personalisation=True)
    store.close()
    h = consent_history(path)
    assert h["source"].tolist() == ["backfill", "change"]
    assert h["personalisation"].tolist() == [False, True]
    assert str(h["at"].iloc[0]) == "2025-02-01 00:00:00+00:00"


def test_category_withdrawal_is_stored_logged_and_replaced(tmp_path):
    store = ConsentStore(tmp_path / "c.sqlite", clock=_clock())
    assert store.withdrawn("7") == frozenset()
    assert store.set_categories("7", ["horror", "war"]) == frozenset({"horror", "war"})
    store.set_categories("7", ["war"])
    store.set_categories("8", [])
    assert store.allows_personalisation("7")  # categories do not turn everything off
    with pytest.raises(TypeError, match="withdrawn: expected a collection of non-empty category names, got 'war'"):
        store.set_categories("7", "war")
    store.close()
    assert withdrawn_categories(tmp_path / "c.sqlite") == {"7": frozenset({"war"})}
    log = sqlite3.connect(tmp_path / "c.sqlite").execute(
        "SELECT user_id, kind, value FROM consent_log ORDER BY id").fetchall()
    assert log == [("7", "categories", '["horror", "war"]'), ("7", "categories", '["war"]'),
                   ("8", "categories", "[]")]
    assert consent_history(tmp_path / "c.sqlite").empty  # no personalisation change


def test_training_drops_only_the_withdrawn_categories():
    it = Interactions.from_arrays(user_index=[0, 0, 0, 1, 1], item_index=[0, 1, 2, 1, 2],
                                  user_ids=[10, 11], item_ids=["a", "b", "c"])
    cats = np.array(["drama", "war", "war"], dtype=object)
    kept = drop_withdrawn_categories(it, {"10": frozenset({"war"}), "99": frozenset({"drama"})}, cats)
    assert kept.matrix.toarray().astype(bool).tolist() == [[True, False, False], [False, True, True]]
    assert drop_withdrawn_categories(it, {}, cats) is it
    with pytest.raises(DataError, match=r"item_category: expected one label per item \(3\), got shape \(2,\)"):
        drop_withdrawn_categories(it, {"10": frozenset({"war"})}, cats[:2])


def test_readers_name_a_missing_store(tmp_path):
    with pytest.raises(DataError, match="consent_path: expected the consent database"):
        consent_history(tmp_path / "none.sqlite")
    (tmp_path / "x.sqlite").write_bytes(b"not a database at all, just bytes" * 10)
    with pytest.raises(DataError, match="is not a readable fairrec consent database"):
        withdrawn_categories(tmp_path / "x.sqlite")
