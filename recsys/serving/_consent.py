"""Consent to personalisation, per user, in SQLite; and the list training must honour.

One row per user who ever set a preference: ``user_id`` (text, the external id
as a string), ``personalisation`` (1 allowed, 0 opted out), ``created_at`` and
``updated_at`` (ISO 8601, UTC). A user without a row has made no choice;
personalisation is allowed for them (the default) and they are not opted out.

The service opens a :class:`ConsentStore` (read and write); ``fairrec run``
calls :func:`opted_out_users` (read-only) and drops those users' interactions
with :func:`drop_opted_out` before training.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from recsys.data import Interactions
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
        self._query(
            f"INSERT INTO {_TABLE} (user_id, personalisation, created_at, updated_at) "
            "VALUES (?, ?, ?, ?) ON CONFLICT(user_id) DO UPDATE SET "
            "personalisation = excluded.personalisation, updated_at = excluded.updated_at",
            (str(user_id), int(personalisation), now, now),
        )
        record = self.get(user_id)
        if record is None:  # another process deleted it in between
            raise StoreUnavailableError(f"consent store {self.path}: the record of {user_id!r} vanished")
        return record

    def ping(self) -> None:
        """Raise :class:`StoreUnavailableError` if the store cannot be read."""
        self._query(f"SELECT COUNT(*) FROM {_TABLE} WHERE 0", ())

    def close(self) -> None:
        with self._lock:
            self._conn.close()

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
    out = np.isin(interactions.user_ids.astype(str), np.asarray(sorted(opted_out), dtype=str))
    return interactions.select(~out[interactions.row_index()])
