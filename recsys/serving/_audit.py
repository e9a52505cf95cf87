"""The audit log: one record per list served, in JSON lines or an SQLite table.

A record says when, to whom (the external user id, or none for similar items),
from which model (name and version), which items, and why (reason codes). It has
a fixed set of fields, :data:`AUDIT_FIELDS`; no field carries a user attribute,
and nothing a caller passes can add one.

Reason codes
------------
``basis`` (why this list): ``"history"`` (ranked with the user's history),
``"no_history"`` (a known user without training history), ``"opted_out"``
(personalisation turned off), ``"unknown_user"``, ``"item"`` (similar items).
``reasons`` (one per item): ``"history"`` (ranked with the user's history;
when explained, some history item raised its score), ``"weak_history"``
(explained, and no history item raised its score), ``"popular"``,
``"similar_item"``.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Protocol

from recsys.serving._consent import StoreUnavailableError, connect
from recsys.serving._settings import AUDIT_SUFFIXES

__all__ = ["AUDIT_FIELDS", "AuditLog", "AuditRecord", "JsonLinesAuditLog", "SqliteAuditLog", "open_audit_log"]


@dataclass(frozen=True, kw_only=True)
class AuditRecord:
    """What was served, to whom, by which model, and why."""

    time: str  # ISO 8601, UTC
    request_id: str
    endpoint: str
    user_id: str | None
    model_name: str
    model_version: str | None
    k: int
    items: tuple[str, ...]
    basis: str
    reasons: tuple[str, ...]
    explained: bool
    # item categories the user withdrew from personalisation; their items were left out of the list
    withheld_categories: tuple[str, ...] = ()


#: the fields (JSON keys, SQLite columns) of every audit record, in order
AUDIT_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(AuditRecord))


class AuditLog(Protocol):
    """Where audit records go; :func:`open_audit_log` picks the implementation."""

    path: Path

    def record(self, entry: AuditRecord) -> None: ...

    def read(self) -> list[AuditRecord]: ...

    def ping(self) -> None: ...

    def close(self) -> None: ...


def _as_dict(entry: AuditRecord) -> dict:
    # not dataclasses.asdict: its deep copy costs a quarter of a millisecond per request
    return {name: getattr(entry, name) for name in AUDIT_FIELDS}


def _from_mapping(data: dict) -> AuditRecord:
    return AuditRecord(**{
        **data,
        "items": tuple(data["items"]),
        "reasons": tuple(data["reasons"]),
        "explained": bool(data["explained"]),
        "withheld_categories": tuple(data.get("withheld_categories") or ()),  # absent in older logs
    })


class JsonLinesAuditLog:
    """JSON lines, rotated by size: ``audit.jsonl``, then ``audit.jsonl.1`` (newest) ... ``.N`` (oldest).

    Each record is one ``write`` on an ``O_APPEND`` descriptor. A record that would take
    the file past ``max_bytes`` first rotates it (the oldest backup is dropped), so the
    log never holds more than about ``(backups + 1) * max_bytes``; ``max_bytes=0``: never
    rotated. The rotation follows :class:`logging.handlers.RotatingFileHandler`'s naming,
    written here because a logging handler is global state: uvicorn's logging set-up
    (``dictConfig``) closes every handler in the process, this one included.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as d:
    ...     log = JsonLinesAuditLog(pathlib.Path(d) / "audit.jsonl")
    ...     log.record(AuditRecord(time="2026-01-01T00:00:00+00:00", request_id="r1",
    ...                            endpoint="recommendations", user_id="7", model_name="m",
    ...                            model_version="1", k=2, items=("a", "b"), basis="history",
    ...                            reasons=("history", "popular"), explained=True))
    ...     [r.items for r in log.read()]
    ...     log.close()
    [('a', 'b')]
    """

    def __init__(self, path: str | Path, *, max_bytes: int = 0, backups: int = 1) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.backups = backups
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = self._open()
            self._size = os.fstat(self._fd).st_size
        except OSError as exc:
            raise StoreUnavailableError(f"audit_path: cannot open {self.path} for appending: {exc}") from exc

    def _open(self) -> int:
        return os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)

    def _backup(self, i: int) -> Path:
        return self.path.with_name(f"{self.path.name}.{i}")

    def _rotate(self) -> None:
        os.close(self._fd)
        self._backup(self.backups).unlink(missing_ok=True)
        for i in range(self.backups - 1, 0, -1):
            if self._backup(i).exists():
                os.replace(self._backup(i), self._backup(i + 1))
        os.replace(self.path, self._backup(1))
        self._fd = self._open()
        self._size = 0

    def record(self, entry: AuditRecord) -> None:
        line = (json.dumps(_as_dict(entry), ensure_ascii=False, separators=(",", ":")) + "\n").encode()
        try:
            with self._lock:
                if self.max_bytes and self._size and self._size + len(line) > self.max_bytes:
                    self._rotate()
                os.write(self._fd, line)
                self._size += len(line)
        except OSError as exc:
            raise StoreUnavailableError(f"audit log {self.path}: cannot write: {exc}") from exc

    def files(self) -> list[Path]:
        """The log's files that exist, oldest first (the backups, then the current file)."""
        names = [self._backup(i) for i in range(self.backups, 0, -1)]
        return [p for p in [*names, self.path] if p.exists()]

    def read(self) -> list[AuditRecord]:
        """Every record still kept, oldest first."""
        try:
            text = "".join(p.read_text(encoding="utf-8") for p in self.files())
        except OSError as exc:
            raise StoreUnavailableError(f"audit log {self.path}: cannot read: {exc}") from exc
        return [_from_mapping(json.loads(line)) for line in text.splitlines() if line]

    def ping(self) -> None:
        try:
            os.fstat(self._fd)
        except OSError as exc:
            raise StoreUnavailableError(f"audit log {self.path}: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            try:
                os.close(self._fd)
            except OSError:  # already gone: nothing to release
                pass


_TABLE = "audit"
_SQL_TYPES = {"k": "INTEGER NOT NULL", "explained": "INTEGER NOT NULL", "user_id": "TEXT",
              "withheld_categories": "TEXT NOT NULL DEFAULT '[]'",
              "model_version": "TEXT"}
_SCHEMA = (
    f"CREATE TABLE IF NOT EXISTS {_TABLE} (id INTEGER PRIMARY KEY AUTOINCREMENT, "
    + ", ".join(f"{name} {_SQL_TYPES.get(name, 'TEXT NOT NULL')}" for name in AUDIT_FIELDS)
    + ")"
)
_JSON_COLUMNS = ("items", "reasons", "withheld_categories")


class SqliteAuditLog:
    """An SQLite table ``audit`` with one column per audit field (lists stored as JSON text)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._conn = connect(self.path, what="audit_path")
        try:
            self._conn.execute(_SCHEMA)
            present = {row[1] for row in self._conn.execute(f"PRAGMA table_info({_TABLE})")}
            if "withheld_categories" not in present:  # a table from before the column existed
                self._conn.execute(f"ALTER TABLE {_TABLE} ADD COLUMN withheld_categories "
                                   f"{_SQL_TYPES['withheld_categories']}")
        except sqlite3.Error as exc:
            self._conn.close()
            raise StoreUnavailableError(f"audit_path: cannot create the audit table in {self.path}: {exc}") from exc
        self._insert = (
            f"INSERT INTO {_TABLE} ({', '.join(AUDIT_FIELDS)}) "
            f"VALUES ({', '.join('?' for _ in AUDIT_FIELDS)})"
        )

    def record(self, entry: AuditRecord) -> None:
        values = _as_dict(entry)
        for name in _JSON_COLUMNS:
            values[name] = json.dumps(list(values[name]), ensure_ascii=False)
        values["explained"] = int(values["explained"])
        self._execute(self._insert, tuple(values[name] for name in AUDIT_FIELDS))

    def read(self) -> list[AuditRecord]:
        try:
            with self._lock:
                rows = self._conn.execute(
                    f"SELECT {', '.join(AUDIT_FIELDS)} FROM {_TABLE} ORDER BY id"
                ).fetchall()
        except sqlite3.Error as exc:
            raise StoreUnavailableError(f"audit log {self.path}: {exc}") from exc
        out = []
        for row in rows:
            data = dict(zip(AUDIT_FIELDS, row, strict=True))
            for name in _JSON_COLUMNS:
                data[name] = json.loads(data[name])
            out.append(_from_mapping(data))
        return out

    def columns(self) -> list[str]:
        """The table's columns as SQLite reports them."""
        with self._lock:
            return [row[1] for row in self._conn.execute(f"PRAGMA table_info({_TABLE})")]

    def ping(self) -> None:
        self._execute(f"SELECT COUNT(*) FROM {_TABLE} WHERE 0", ())

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _execute(self, sql: str, params: tuple) -> None:
        try:
            with self._lock:
                self._conn.execute(sql, params)
        except sqlite3.Error as exc:
            raise StoreUnavailableError(f"audit log {self.path}: {exc}") from exc


def open_audit_log(path: str | Path, *, max_bytes: int = 0, backups: int = 1) -> AuditLog:
    """JSON lines for ``.jsonl`` (rotated past ``max_bytes``, ``backups`` old files kept; 0: never);
    SQLite for ``.sqlite``, ``.sqlite3`` and ``.db``."""
    path = Path(path)
    kind = AUDIT_SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise ValueError(
            f"audit_path: expected a file ending in {', '.join(AUDIT_SUFFIXES)}, got {str(path)!r}"
        )
    if kind == "jsonl":
        return JsonLinesAuditLog(path, max_bytes=max_bytes, backups=backups)
    return SqliteAuditLog(path)
