"""Read the consent store's history and category withdrawals (read-only), and honour them in training.

:func:`consent_history` is the append-only change log as a table, for consent
metrics (:func:`evaluation.consent_metrics`). :func:`withdrawn_categories` and
:func:`drop_withdrawn_categories` are what training needs to leave out the
interactions a user withdrew from personalisation, category by category.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.data import Interactions
from recsys.errors import DataError
from recsys.serving._consent import _CATEGORIES, _LOG, _TABLE

__all__ = ["consent_history", "drop_withdrawn_categories", "withdrawn_categories"]


def _read(consent_path: str | Path, sql: str, what: str) -> list[tuple]:
    path = Path(consent_path)
    if not path.is_file():
        raise DataError(f"consent_path: expected the consent database (an SQLite file), {path} does not exist")
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if _TABLE not in tables:
                raise sqlite3.DatabaseError(f"no {_TABLE!r} table")
            if what not in tables:
                return []  # a store written before the log and categories existed
            return conn.execute(sql).fetchall()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise DataError(f"consent_path: {path} is not a readable fairrec consent database: {exc}") from exc


def consent_history(consent_path: str | Path) -> pd.DataFrame:
    """Every personalisation change, oldest first: ``user_id``, ``at`` (UTC), ``personalisation``, ``source``.

    A store written before the log existed yields its current state, one row
    per user at ``updated_at``, with ``source`` ``"backfill"``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from datetime import UTC, datetime, timedelta
    >>> from recsys.serving import ConsentStore
    >>> times = iter(datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=h) for h in range(3))
    >>> with tempfile.TemporaryDirectory() as d:
    ...     store = ConsentStore(pathlib.Path(d) / "c.sqlite", clock=lambda: next(times))
    ...     _ = store.set("7", personalisation=False)
    ...     _ = store.set("7", personalisation=True)
    ...     store.close()
    ...     h = consent_history(pathlib.Path(d) / "c.sqlite")
    >>> h["personalisation"].tolist(), h["at"].dt.hour.tolist()
    ([False, True], [0, 1])
    """
    rows = _read(consent_path, f"SELECT user_id, value, at, source FROM {_LOG} "
                 "WHERE kind = 'personalisation' ORDER BY id", _LOG)
    if not rows:
        rows = [(u, str(p), at, "backfill") for u, p, at in _read(
            consent_path, f"SELECT user_id, personalisation, updated_at FROM {_TABLE} ORDER BY updated_at", _TABLE)]
    frame = pd.DataFrame(rows, columns=["user_id", "value", "at", "source"])
    return pd.DataFrame({
        "user_id": frame["user_id"].astype(str),
        "at": pd.to_datetime(frame["at"], utc=True, format="ISO8601"),
        "personalisation": frame["value"].astype(str) == "1",
        "source": frame["source"].astype(str),
    })


def withdrawn_categories(consent_path: str | Path) -> dict[str, frozenset[str]]:
    """External user id -> the item categories that user withdrew from personalisation."""
    out: dict[str, set[str]] = {}
    for user, category in _read(consent_path, f"SELECT user_id, category FROM {_CATEGORIES}", _CATEGORIES):
        out.setdefault(str(user), set()).add(str(category))
    return {u: frozenset(c) for u, c in out.items()}


def drop_withdrawn_categories(
    interactions: Interactions, withdrawn: Mapping[str, frozenset[str]], item_category: np.ndarray
) -> Interactions:
    """``interactions`` without each user's interactions with items of the categories they withdrew.

    ``item_category`` holds one category label per internal item index. Users
    are matched by ``str(user_id)``; vocabularies are kept.

    Examples
    --------
    >>> it = Interactions.from_arrays(user_index=[0, 0, 1], item_index=[0, 1, 1],
    ...                               user_ids=[10, 11], item_ids=["a", "b"])
    >>> kept = drop_withdrawn_categories(it, {"10": frozenset({"horror"})}, ["drama", "horror"])
    >>> kept.matrix.toarray().astype(bool).tolist()
    [[True, False], [False, True]]
    """
    cats = np.asarray(item_category, dtype=object)
    if cats.ndim != 1 or cats.size != interactions.n_items:
        raise DataError(f"item_category: expected one label per item ({interactions.n_items}), got shape {cats.shape}")
    if not withdrawn:
        return interactions
    users = interactions.user_ids.astype(str)
    pairs = pd.DataFrame([(u, c) for u, cs in withdrawn.items() for c in cs], columns=["user", "category"])
    rows, cols = interactions.row_index(), interactions.matrix.indices
    entries = pd.DataFrame({"user": users[rows], "category": cats[cols].astype(str)})
    hit = entries.merge(pairs.assign(hit=True), on=["user", "category"], how="left")["hit"].fillna(False)
    return interactions.select(~hit.to_numpy(dtype=bool))
