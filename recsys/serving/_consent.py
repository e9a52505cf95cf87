"""Consent to personalisation, per user, in SQLite; and the list training must honour.

One row per user who ever set a preference: ``user_id`` (text, the external id
as a string), ``personalisation`` (1 allowed, 0 opted out), ``created_at`` and
``updated_at`` (ISO 8601, UTC). A user without a row has made no choice;
personalisation is allowed for them (the default) and they are not opted out.

Category-level control: table ``consent_categories`` (``user_id``, ``category``)
lists the item categories a user withdrew from personalisation
(:meth:`ConsentStore.set_categories`); serving leaves those items out of the
user's lists and training drops the user's interactions with them
(:func:`recsys.serving.withdrawn_categories`, :func:`recsys.serving.drop_withdrawn_categories`).

History: every change is also appended to ``consent_log`` (``id``,
``user_id``, ``kind`` = ``"personalisation"`` or ``"categories"``, ``value``:
``"0"``/``"1"`` or the JSON list of withdrawn categories, ``at``, ``source``
= ``"change"``, or ``"backfill"`` for the one row written for each user of a
store created before the log existed, at that user's ``updated_at``). SQLite
triggers refuse any ``UPDATE`` or ``DELETE`` on it: the log is append-only.
:func:`recsys.serving.consent_history` reads it.

The service opens a :class:`ConsentStore` (read and write); ``fairrec run``
calls :func:`opted_out_users` (read-only) and drops those users' interactions
with :func:`drop_opted_out` before training.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from recsys.data import Interactions
from recsys.serving._pseudonym import ERASURE_KEY_PREFIX, erasure_key
from recsys.errors import DataError, FairrecError

__all__ = [
    "ConsentRecord",
    "ConsentStore",
    "StoreUnavailableError",
    "drop_opted_out",
    "opted_out_users",
]

_TABLE = "consent"
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {_TABLE} (
    user_id TEXT PRIMARY KEY,
    personalisation INTEGER NOT NULL CHECK (personalisation IN (0, 1)),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
)
"""
_LOG = "consent_log"
_CATEGORIES = "consent_categories"
_HISTORY_SCHEMA = (
    f"CREATE TABLE IF NOT EXISTS {_LOG} (id INTEGER PRIMARY KEY AUTOINCREMENT, user_id TEXT NOT NULL, "
    "kind TEXT NOT NULL CHECK (kind IN ('personalisation', 'categories')), value TEXT NOT NULL, "
    "at TEXT NOT NULL, source TEXT NOT NULL DEFAULT 'change')",
    f"CREATE TRIGGER IF NOT EXISTS {_LOG}_no_update BEFORE UPDATE ON {_LOG} "
    f"BEGIN SELECT RAISE(ABORT, '{_LOG} is append-only'); END",
    f"CREATE TRIGGER IF NOT EXISTS {_LOG}_no_delete BEFORE DELETE ON {_LOG} "
    f"BEGIN SELECT RAISE(ABORT, '{_LOG} is append-only'); END",
    f"CREATE TABLE IF NOT EXISTS {_CATEGORIES} (user_id TEXT NOT NULL, category TEXT NOT NULL, "
    "PRIMARY KEY (user_id, category))",
)
# a store made before the log existed: one row per user, their current state at updated_at
_BACKFILL = (
    f"INSERT INTO {_LOG} (user_id, kind, value, at, source) SELECT user_id, 'personalisation', "
    f"CAST(personalisation AS TEXT), updated_at, 'backfill' FROM {_TABLE} "
    f"WHERE NOT EXISTS (SELECT 1 FROM {_LOG})"
)


class StoreUnavailableError(FairrecError):
    """The consent store or the audit log cannot be read or written (the message says which)."""


@dataclass(frozen=True, kw_only=True)
class ConsentRecord:
    """One user's choice: ``personalisation`` allowed or not, and when it was first and last set."""

    user_id: str
    personalisation: bool
    created_at: datetime
    updated_at: datetime


def _utc_now() -> datetime:
    return datetime.now(UTC)


def connect(path: Path, *, what: str) -> sqlite3.Connection:
    """An SQLite connection shared by threads (callers hold a lock), WAL journal."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=5.0, check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        # WAL + NORMAL: a commit survives a process crash, not a power cut; no fsync per request
        conn.execute("PRAGMA synchronous=NORMAL")
    except (sqlite3.Error, OSError) as exc:
        raise StoreUnavailableError(f"{what}: cannot open SQLite database {path}: {exc}") from exc
    return conn


class ConsentStore:
    """Read and change users' consent to personalisation (thread-safe).

    Parameters
    ----------
    path : str or Path
        SQLite file; created with its table if missing.
    clock : callable returning an aware datetime, optional
        Source of the timestamps (default: now, UTC).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as d:
    ...     store = ConsentStore(pathlib.Path(d) / "consent.sqlite")
    ...     before = store.allows_personalisation("42")
    ...     record = store.set("42", personalisation=False)
    ...     store.close()
    >>> before, record.personalisation, record.created_at == record.updated_at
    (True, False, True)
    """

    def __init__(self, path: str | Path, *, clock: Callable[[], datetime] | None = None) -> None:
        self.path = Path(path)
        self._clock = clock or _utc_now
        self._lock = threading.Lock()
        self._conn = connect(self.path, what="consent_path")
        try:
            self._conn.execute(_SCHEMA)
            with self._conn:  # one transaction: the backfill happens once, with the log's creation
                self._conn.execute("BEGIN IMMEDIATE")
                for statement in _HISTORY_SCHEMA:
                    self._conn.execute(statement)
                self._conn.execute(_BACKFILL)
        except sqlite3.Error as exc:
            self._conn.close()
            raise StoreUnavailableError(
                f"consent_path: cannot create the consent table in {self.path}: {exc}"
            ) from exc

    def get(self, user_id: str) -> ConsentRecord | None:
        """The user's recorded choice, or None if they never made one."""
        row = self._query(
            f"SELECT user_id, personalisation, created_at, updated_at FROM {_TABLE} WHERE user_id = ?",
            (str(user_id),),
        )
        return None if row is None else _record(row)

    def allows_personalisation(self, user_id: str) -> bool:
        """False only for a user who turned personalisation off."""
        row = self._query(f"SELECT personalisation FROM {_TABLE} WHERE user_id = ?", (str(user_id),))
        return row is None or bool(row[0])

    def set(self, user_id: str, *, personalisation: bool) -> ConsentRecord:
        """Record the user's choice (``created_at`` kept from the first choice) and return it."""
        if not isinstance(personalisation, bool):
            raise TypeError(f"personalisation: expected a bool, got {personalisation!r}")
        now = _iso(self._clock())
        self._transaction([
            (f"INSERT INTO {_TABLE} (user_id, personalisation, created_at, updated_at) "
             "VALUES (?, ?, ?, ?) ON CONFLICT(user_id) DO UPDATE SET "
             "personalisation = excluded.personalisation, updated_at = excluded.updated_at",
             (str(user_id), int(personalisation), now, now)),
            (f"INSERT INTO {_LOG} (user_id, kind, value, at) VALUES (?, 'personalisation', ?, ?)",
             (str(user_id), str(int(personalisation)), now)),
        ])
        record = self.get(user_id)
        if record is None:  # another process deleted it in between
            raise StoreUnavailableError(f"consent store {self.path}: the record of {user_id!r} vanished")
        return record

    def withdrawn(self, user_id: str) -> frozenset[str]:
        """The item categories the user withdrew from personalisation (empty: none)."""
        try:
            with self._lock:
                rows = self._conn.execute(
                    f"SELECT category FROM {_CATEGORIES} WHERE user_id = ?", (str(user_id),)
                ).fetchall()
        except sqlite3.Error as exc:
            raise StoreUnavailableError(f"consent store {self.path}: {exc}") from exc
        return frozenset(r[0] for r in rows)

    def set_categories(self, user_id: str, withdrawn: Collection[str]) -> frozenset[str]:
        """Replace the categories the user withdrew (logged as one change) and return them."""
        if isinstance(withdrawn, str) or not all(isinstance(c, str) and c for c in withdrawn):
            raise TypeError(f"withdrawn: expected a collection of non-empty category names, got {withdrawn!r}")
        chosen = sorted(set(withdrawn))
        now = _iso(self._clock())
        self._transaction([
            (f"DELETE FROM {_CATEGORIES} WHERE user_id = ?", (str(user_id),)),
            *[(f"INSERT INTO {_CATEGORIES} (user_id, category) VALUES (?, ?)", (str(user_id), c)) for c in chosen],
            (f"INSERT INTO {_LOG} (user_id, kind, value, at) VALUES (?, 'categories', ?, ?)",
             (str(user_id), json.dumps(chosen), now)),
        ])
        return frozenset(chosen)

    def ping(self) -> None:
        """Raise :class:`StoreUnavailableError` if the store cannot be read."""
        self._query(f"SELECT COUNT(*) FROM {_TABLE} WHERE 0", ())

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _transaction(self, statements: list[tuple[str, tuple]]) -> None:
        try:
            with self._lock, self._conn:
                self._conn.execute("BEGIN IMMEDIATE")
                for sql, params in statements:
                    self._conn.execute(sql, params)
        except sqlite3.Error as exc:
            raise StoreUnavailableError(f"consent store {self.path}: {exc}") from exc

    def _query(self, sql: str, params: tuple) -> tuple | None:
        try:
            with self._lock:
                return self._conn.execute(sql, params).fetchone()
        except sqlite3.Error as exc:
            raise StoreUnavailableError(f"consent store {self.path}: {exc}") from exc


def _iso(when: datetime) -> str:
    if when.tzinfo is None:
        raise ValueError(f"clock: expected a timezone-aware datetime, got {when!r}")
    return when.astimezone(UTC).isoformat()


def _record(row: tuple) -> ConsentRecord:
    return ConsentRecord(
        user_id=row[0],
        personalisation=bool(row[1]),
        created_at=datetime.fromisoformat(row[2]),
        updated_at=datetime.fromisoformat(row[3]),
    )


ERASED_TABLE = "consent_erased"  # erasure keys (recsys.serving._pseudonym) of erased users, and when


def erased_keys(conn: sqlite3.Connection) -> list[tuple[str]]:
    """The erasure keys listed in the consent database behind ``conn`` ([] before any erasure)."""
    present = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (ERASED_TABLE,)).fetchone()
    return conn.execute(f"SELECT key FROM {ERASED_TABLE}").fetchall() if present else []


def opted_out_users(consent_path: str | Path) -> frozenset[str]:
    """External ids (as strings) of the users who turned personalisation off.

    Opens the consent database read-only. Training must not use these users'
    interactions (:func:`drop_opted_out`).

    Raises
    ------
    DataError
        If ``consent_path`` is not a file or holds no consent table.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as d:
    ...     path = pathlib.Path(d) / "consent.sqlite"
    ...     store = ConsentStore(path)
    ...     _ = store.set("7", personalisation=False)
    ...     _ = store.set("8", personalisation=True)
    ...     store.close()
    ...     sorted(opted_out_users(path))
    ['7']
    """
    path = Path(consent_path)
    if not path.is_file():
        raise DataError(f"consent_path: expected the consent database (an SQLite file), {path} does not exist")
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            rows = conn.execute(f"SELECT user_id FROM {_TABLE} WHERE personalisation = 0").fetchall()
            rows += erased_keys(conn)  # users erased by `fairrec erase`, by key (their id is gone)
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise DataError(
            f"consent_path: {path} is not a fairrec consent database (no readable {_TABLE!r} table): {exc}"
        ) from exc
    return frozenset(str(r[0]) for r in rows)


def drop_opted_out(interactions: Interactions, opted_out: Collection[str]) -> Interactions:
    """``interactions`` without any interaction of the users in ``opted_out``.

    Users are matched by ``str(user_id)``. The vocabularies are kept (the
    users' rows become empty), so internal indices do not move.

    Examples
    --------
    >>> it = Interactions.from_arrays(user_index=[0, 0, 1], item_index=[0, 1, 1],
    ...                               user_ids=[10, 11], item_ids=["a", "b"])
    >>> drop_opted_out(it, {"10"}).matrix.getnnz(axis=1).tolist()
    [0, 1]
    """
    ids = interactions.user_ids.astype(str)
    out = np.isin(ids, np.asarray(sorted(opted_out), dtype=str))
    keys = {u for u in opted_out if u.startswith(ERASURE_KEY_PREFIX)}
    if keys:  # erased users are listed by key only (recsys.serving._erasure)
        out |= np.isin(np.asarray([erasure_key(u) for u in ids], dtype=str), np.asarray(sorted(keys), dtype=str))
    return interactions.select(~out[interactions.row_index()])
