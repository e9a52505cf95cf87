"""The consent store, and the opted-out list training reads from it."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from recsys.data import Interactions
from recsys.errors import DataError
from recsys.serving import ConsentStore, drop_opted_out, opted_out_users

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def store(tmp_path):
    clock = Clock()
    s = ConsentStore(tmp_path / "consent.sqlite", clock=clock)
    s.clock = clock
    yield s
    s.close()


def test_no_record_means_personalisation_is_allowed(store):
    assert store.get("u1") is None
    assert store.allows_personalisation("u1") is True


def test_created_at_is_kept_and_updated_at_moves(store):
    first = store.set("u1", personalisation=False)
    assert (first.user_id, first.personalisation, first.created_at, first.updated_at) == ("u1", False, T0, T0)
    assert store.allows_personalisation("u1") is False
    store.clock.now = T0 + timedelta(hours=2)
    second = store.set("u1", personalisation=True)
    assert (second.personalisation, second.created_at, second.updated_at) == (True, T0, T0 + timedelta(hours=2))
    assert store.get("u1") == second


def test_personalisation_must_be_a_bool(store):
    with pytest.raises(TypeError, match=r"^personalisation: expected a bool, got 'no'$"):
        store.set("u1", personalisation="no")


def test_a_naive_clock_is_refused(tmp_path):
    store = ConsentStore(tmp_path / "c.sqlite", clock=lambda: datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="clock: expected a timezone-aware datetime"):
        store.set("u1", personalisation=True)
    store.close()


def test_opted_out_users_lists_only_users_who_turned_it_off(store):
    store.set("1", personalisation=False)
    store.set("2", personalisation=True)
    store.set("3", personalisation=False)
    store.set("3", personalisation=True)  # changed their mind
    store.set("4", personalisation=False)
    assert opted_out_users(store.path) == frozenset({"1", "4"})


def test_opted_out_users_needs_an_existing_consent_database(tmp_path):
    missing = tmp_path / "missing.sqlite"
    with pytest.raises(DataError, match=r"^consent_path: expected the consent database \(an SQLite file\), .* does not exist$"):
        opted_out_users(missing)
    assert not missing.exists()  # read-only: nothing created
    other = tmp_path / "other.sqlite"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.close()
    with pytest.raises(DataError, match=r"is not a fairrec consent database \(no readable 'consent' table\)"):
        opted_out_users(other)


def test_drop_opted_out_removes_their_interactions_and_keeps_the_vocabulary():
    it = Interactions.from_arrays(user_index=[0, 0, 1, 2, 2], item_index=[0, 1, 1, 0, 2],
                                  user_ids=np.array([10, 11, 12]), item_ids=["a", "b", "c"])
    out = drop_opted_out(it, {"12", "99"})
    assert out.matrix.toarray().tolist() == [[1, 1, 0], [0, 1, 0], [0, 0, 0]]
    assert out.user_ids.tolist() == [10, 11, 12] and out.item_ids.tolist() == ["a", "b", "c"]
    assert drop_opted_out(it, set()).matrix.nnz == 5
