"""What fairrec stores about one user, and its erasure.

:func:`personal_data` gathers what the files fairrec manages hold about a user: the
consent record and its history, the withdrawn categories, the audit records of the
lists served to them, and every row that names them in past run folders
(explanations, recommendations, the split, the user table).

:func:`erase_user` removes or pseudonymises all of it:

* consent store: the user's consent row, withdrawn categories and consent history
  are deleted (the history's append-only triggers are lifted for that one delete,
  in the same transaction); the user's erasure key (:func:`erasure_key`) goes on the
  ``consent_erased`` list, so the next training run leaves them out
  (:func:`~recsys.serving.opted_out_users`);
* audit log (JSON lines with its rotated files, or SQLite): each record served to
  the user keeps what was served, for the aggregate fairness monitoring, but its
  ``user_id`` becomes ``"erased"``;
* run folders (and a local MLflow artifact root, which holds copies of them): every
  Parquet file with a ``user_id`` column loses the user's rows; every model bundle's
  ``vocab.npz`` has the id replaced by a placeholder (the model keeps serving others).

Files are rewritten whole and replaced in one rename, so a crash leaves either the
old or the new file. The audit log is rewritten in place, so that a running
service's open log keeps appending to the same file.
"""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from recsys.errors import DataError
from recsys.serving._audit import AuditRecord, open_audit_log
from recsys.serving._consent import ERASED_TABLE, ConsentRecord, ConsentStore, StoreUnavailableError
from recsys.serving._pseudonym import erasure_key
from recsys.serving._settings import AUDIT_SUFFIXES

__all__ = ["ERASED_USER", "ErasureReport", "PersonalData", "erase_user", "personal_data"]

#: the ``user_id`` of an audit record whose user was erased
ERASED_USER = "erased"


@dataclass(frozen=True, kw_only=True)
class PersonalData:
    """Everything the given stores and run folders hold about one user."""

    user_id: str
    consent: ConsentRecord | None
    withdrawn_categories: tuple[str, ...]
    consent_history: tuple[dict[str, str], ...]  # kind, value, at, source; oldest first
    audit: tuple[AuditRecord, ...]
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # file -> its rows naming the user

    @property
    def explanations(self) -> dict[str, list[dict[str, Any]]]:
        """The explanation rows of the user's lists, by file."""
        return {f: r for f, r in self.rows.items() if Path(f).name == "explanations.parquet"}


@dataclass(frozen=True, kw_only=True)
class ErasureReport:
    """What :func:`erase_user` removed or pseudonymised, per place (zero counts left out)."""

    user_id: str
    removed: dict[str, int]  # "PATH: what" -> count

    def lines(self) -> list[str]:
        if not self.removed:
            return [f"nothing named user {self.user_id!r}"]
        return [f"{where}: {count}" for where, count in self.removed.items()]


def personal_data(user_id: str, *, consent_path: str | Path | None = None, audit_path: str | Path | None = None,
                  run_dirs: Sequence[str | Path] = ()) -> PersonalData:
    """Gather what the consent store, the audit log and the run folders hold about ``user_id``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as d:
    ...     store = ConsentStore(pathlib.Path(d) / "c.sqlite")
    ...     _ = store.set("7", personalisation=False)
    ...     store.close()
    ...     data = personal_data("7", consent_path=pathlib.Path(d) / "c.sqlite")
    >>> data.consent.personalisation, [h["value"] for h in data.consent_history]
    (False, ['0'])
    """
    uid = str(user_id)
    consent, withdrawn, history = None, (), ()
    if consent_path is not None and Path(consent_path).is_file():
        store = ConsentStore(consent_path)
        try:
            consent, withdrawn = store.get(uid), tuple(sorted(store.withdrawn(uid)))
        finally:
            store.close()
        history = tuple(_consent_history(Path(consent_path), uid))
    audit: tuple[AuditRecord, ...] = ()
    if audit_path is not None and Path(audit_path).exists():
        log = open_audit_log(audit_path)
        try:
            audit = tuple(r for r in log.read() if r.user_id == uid)
        finally:
            log.close()
    rows = {}
    for path in _parquet_files(run_dirs):
        frame = _user_rows(path, uid)
        if frame is not None and len(frame):
            rows[str(path)] = json.loads(frame.to_json(orient="records"))
    return PersonalData(user_id=uid, consent=consent, withdrawn_categories=withdrawn,
                        consent_history=history, audit=audit, rows=rows)


def erase_user(user_id: str, *, consent_path: str | Path | None = None, audit_path: str | Path | None = None,
               run_dirs: Sequence[str | Path] = ()) -> ErasureReport:
    """Erase ``user_id`` from the consent store, the audit log and the run folders; say what went.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as d:
    ...     store = ConsentStore(pathlib.Path(d) / "c.sqlite")
    ...     _ = store.set("7", personalisation=False)
    ...     store.close()
    ...     report = erase_user("7", consent_path=pathlib.Path(d) / "c.sqlite")
    >>> {where.rsplit(": ", 1)[1]: n for where, n in report.removed.items()}
    {'consent records': 1, 'consent history rows': 1}
    """
    uid = str(user_id)
    for what, path in (("consent_path", consent_path), ("audit_path", audit_path)):
        if path is not None and not Path(path).is_file():  # a typo must not pass for "nothing to erase"
            raise DataError(f"{what}: {path} does not exist; expected the service's "
                            f"{'consent store' if what == 'consent_path' else 'audit log'}")
    removed: dict[str, int] = {}
    if consent_path is not None:
        removed.update(_erase_consent(Path(consent_path), uid))
    if audit_path is not None:
        removed.update(_erase_audit(Path(audit_path), uid))
    for path in _parquet_files(run_dirs):
        frame = _user_rows(path, uid, keep_others=True)
        if frame is not None:
            before = pq.read_metadata(path).num_rows
            if len(frame) < before:
                _replace(path, lambda tmp, frame=frame: frame.to_parquet(tmp, index=False))
                removed[f"{path}: rows"] = before - len(frame)
    for path in _vocab_files(run_dirs):
        if _pseudonymise_vocab(path, uid):
            removed[f"{path}: user id replaced"] = 1
    return ErasureReport(user_id=uid, removed={k: v for k, v in removed.items() if v})


# ----------------------------------------------------------------- consent store
def _consent_history(path: Path, uid: str) -> list[dict[str, str]]:
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT kind, value, at, source FROM consent_log WHERE user_id = ? ORDER BY id",
                            (uid,)).fetchall()
    except sqlite3.Error:  # a store from before the history existed
        rows = []
    finally:
        conn.close()
    return [dict(zip(("kind", "value", "at", "source"), row, strict=True)) for row in rows]


def _erase_consent(path: Path, uid: str) -> dict[str, int]:
    ConsentStore(path).close()  # brings an older store's tables up to date
    conn = sqlite3.connect(path, timeout=10.0, isolation_level=None)
    counts: dict[str, int] = {}
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(f"CREATE TABLE IF NOT EXISTS {ERASED_TABLE} (key TEXT PRIMARY KEY, at TEXT NOT NULL)")
        conn.execute(f"INSERT OR IGNORE INTO {ERASED_TABLE} (key, at) VALUES (?, ?)",
                     (erasure_key(uid), datetime.now(UTC).isoformat()))
        counts[f"{path}: consent records"] = conn.execute("DELETE FROM consent WHERE user_id = ?", (uid,)).rowcount
        counts[f"{path}: withdrawn categories"] = conn.execute(
            "DELETE FROM consent_categories WHERE user_id = ?", (uid,)).rowcount
        # the history is append-only by trigger; erasure is the one exception, inside this transaction
        triggers = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "
                                "AND tbl_name = 'consent_log'").fetchall()
        for name, _ in triggers:
            conn.execute(f'DROP TRIGGER "{name}"')
        counts[f"{path}: consent history rows"] = conn.execute(
            "DELETE FROM consent_log WHERE user_id = ?", (uid,)).rowcount
        for _, sql in triggers:
            conn.execute(sql)
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise StoreUnavailableError(f"consent store {path}: cannot erase user {uid!r}: {exc}") from exc
    finally:
        conn.close()
    return counts


# --------------------------------------------------------------------- audit log
def _erase_audit(path: Path, uid: str) -> dict[str, int]:
    kind = AUDIT_SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise DataError(f"audit_path: expected a file ending in {', '.join(AUDIT_SUFFIXES)}, got {str(path)!r}")
    if kind != "jsonl":
        conn = sqlite3.connect(path, timeout=10.0)
        try:
            with conn:
                n = conn.execute("UPDATE audit SET user_id = ? WHERE user_id = ?", (ERASED_USER, uid)).rowcount
        except sqlite3.Error as exc:
            raise StoreUnavailableError(f"audit log {path}: cannot erase user {uid!r}: {exc}") from exc
        finally:
            conn.close()
        return {f"{path}: audit records pseudonymised": n}
    counts = {}
    rotated = sorted(p for p in path.parent.glob(f"{path.name}.*") if p.suffix[1:].isdigit())
    for file in [path, *rotated]:
        if not file.exists():
            continue
        n = 0
        lines = []
        with file.open("r+", encoding="utf-8") as handle:  # in place: the service's handler keeps its file
            for line in handle:
                if line.strip():
                    record = json.loads(line)
                    if record.get("user_id") == uid:
                        record["user_id"] = ERASED_USER
                        n += 1
                        line = json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"
                lines.append(line)
            if n:
                handle.seek(0)
                handle.write("".join(lines))
                handle.truncate()
        counts[f"{file}: audit records pseudonymised"] = n
    return counts


# ------------------------------------------------------------------- run folders
def _walk(run_dirs: Iterable[str | Path], pattern: str) -> list[Path]:
    found: set[Path] = set()
    for root in run_dirs:
        root = Path(root)
        if not root.is_dir():
            raise DataError(f"--runs {root}: expected a folder of fairrec run outputs, it does not exist")
        found.update(p for p in root.rglob(pattern) if p.is_file())
    return sorted(found)


def _parquet_files(run_dirs: Iterable[str | Path]) -> list[Path]:
    return _walk(run_dirs, "*.parquet")


def _vocab_files(run_dirs: Iterable[str | Path]) -> list[Path]:
    return _walk(run_dirs, "vocab.npz")


def _user_rows(path: Path, uid: str, *, keep_others: bool = False) -> pd.DataFrame | None:
    """The rows of ``path`` naming ``uid`` (or all the others); None without a ``user_id`` column."""
    try:
        if "user_id" not in pq.read_schema(path).names:
            return None
        frame = pd.read_parquet(path)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read it as Parquet: {exc}") from exc
    mine = frame["user_id"].astype(str) == uid
    return frame[~mine] if keep_others else frame[mine]


def _pseudonymise_vocab(path: Path, uid: str) -> bool:
    with np.load(path, allow_pickle=False) as archive:
        arrays = {k: archive[k] for k in archive.files}
    users = arrays.get("user_ids")
    if users is None or not (users.astype(str) == uid).any():
        return False
    ids = users.astype(str).tolist()
    for row in np.flatnonzero(users.astype(str) == uid):
        ids[row] = str(-1 - int(row))  # a negative number stays a valid integer id, and names nobody
    arrays["user_ids"] = np.asarray(ids, dtype=str)
    _replace(path, lambda tmp: np.savez(tmp, **arrays))
    return True


def _replace(path: Path, write: Any) -> None:
    """Write a new version of ``path`` beside it, then rename it over the old one."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, path.stat().st_mode & 0o777)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
