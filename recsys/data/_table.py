"""Load interactions (and optional attribute tables) from CSV or Parquet files."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.data._attributes import align_attributes
from recsys.data._types import Dataset, Interactions
from recsys.errors import DataError

__all__ = ["load_table"]

_OUR_COLUMNS = ("user_id", "item_id", "rating", "timestamp")
_SUFFIXES = (".csv", ".parquet", ".pq")


def load_table(
    *,
    interactions: str | Path,
    users: str | Path | None = None,
    items: str | Path | None = None,
    columns: dict[str, str] | None = None,
    user_columns: Mapping[str, str] | None = None,
    item_columns: Mapping[str, str] | None = None,
    implicit_weight: float = 1.0,
) -> Dataset:
    """Build a :class:`Dataset` from an interactions file and optional attribute files.

    Files are read as CSV (``.csv``) or Parquet (``.parquet``, ``.pq``).

    Parameters
    ----------
    interactions : path
        One row per (user, item) pair with columns ``user_id``, ``item_id`` and
        optionally ``rating`` and ``timestamp`` (integer seconds, or dates).
        Without a rating column the data is implicit and every value is
        ``implicit_weight``.
    users, items : path, optional
        Attribute tables keyed by the same id column as ``interactions``.
        Rows for ids absent from the interactions are dropped; ids without a
        row get NaN attributes (items get ``category="unknown"``). Without an
        items file every item's ``category`` is ``"unknown"``; an items file
        without a ``category`` column gets none (a run that needs it says so).
    columns : dict, optional
        Our column name -> the files' column name, e.g. ``{"user_id": "uid"}``.
        A column named here must exist.
    user_columns, item_columns : dict, optional
        Attribute name used in fairrec (and the config) -> the column of the
        users or items file, e.g. ``{"gender": "sex"}`` or ``{"category": "genre",
        "provider": "studio", "title": "name"}``. The column must exist; it is
        renamed, the file's other columns are kept as they are.
    implicit_weight : float
        Value stored for every interaction when there is no rating column.

    Raises
    ------
    DataError
        Unknown suffix, empty file, missing column, non-numeric rating or
        timestamp, duplicate (user, item) rows, duplicate ids in an
        attribute table. The message names the file and the column.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "r.csv").write_text("uid,item_id,rating\\nu1,10,4\\nu2,10,5\\nu1,20,3\\n")
    >>> ds = load_table(interactions=d / "r.csv", columns={"user_id": "uid"})
    >>> ds.interactions.matrix.toarray()
    array([[4., 3.],
           [5., 0.]], dtype=float32)
    >>> ds.items["category"].tolist()
    ['unknown', 'unknown']
    >>> _ = (d / "i.csv").write_text("item_id,genre\\n10,Drama\\n20,Comedy\\n")
    >>> load_table(interactions=d / "r.csv", columns={"user_id": "uid"}, items=d / "i.csv",
    ...            item_columns={"category": "genre"}).items["category"].tolist()
    ['Drama', 'Comedy']
    """
    names = _column_names(columns)
    if not np.isfinite(implicit_weight) or implicit_weight <= 0:
        raise ValueError(f"implicit_weight: expected a finite number > 0, got {implicit_weight!r}")
    path = Path(interactions)
    frame = read_frame(path)
    required = ["user_id", "item_id"] + [c for c in ("rating", "timestamp") if c in (columns or {})]
    for ours in required:
        if names[ours] not in frame.columns:
            raise DataError(
                f"{path}: missing required column {names[ours]!r} ({ours}); "
                f"found columns {list(frame.columns)}"
            )
    present = [c for c in _OUR_COLUMNS if names[c] in frame.columns]
    frame = frame[[names[c] for c in present]].rename(columns={names[c]: c for c in present})
    it = build_interactions(frame, source=str(path), implicit_weight=implicit_weight)
    id_names = {"user_id": names["user_id"], "item_id": names["item_id"]}
    user_table = _read_attributes(users, "user_id", id_names, user_columns, "user_columns")
    item_table = _read_attributes(items, "item_id", id_names, item_columns, "item_columns")
    # "unknown" for every item when there is no items file; an items file without the
    # column is left without it, so a run that needs a category fails and names the file
    category = item_table is None or "category" in item_table.columns
    return Dataset(
        interactions=it,
        users=align_attributes(user_table, it.user_ids, id_column="user_id", source=str(users)),
        items=align_attributes(
            item_table, it.item_ids, id_column="item_id", source=str(items),
            defaults={"category": "unknown"} if category else None,
        ),
        name=path.stem,
    )


def read_frame(path: Path) -> pd.DataFrame:
    """Read a CSV or Parquet file; unknown suffix, missing or empty files are DataErrors."""
    suffix = path.suffix.lower()
    if suffix not in _SUFFIXES:
        raise DataError(f"{path}: expected a file ending in {', '.join(_SUFFIXES)}, got {suffix!r}")
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        frame = pd.read_parquet(path) if suffix != ".csv" else pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty (expected a header and at least one row)") from None
    except (UnicodeDecodeError, pd.errors.ParserError, ValueError, OSError) as exc:
        # binary garbage, a truncated or foreign file: pandas/pyarrow name neither the file nor the fix
        kind = "UTF-8 CSV text" if suffix == ".csv" else "a Parquet file"
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{path}: expected {kind}, received something else ({reason})") from None
    if len(frame) == 0:
        raise DataError(f"{path}: the file has no rows (expected at least one)")
    return frame


def build_interactions(
    frame: pd.DataFrame, *, source: str, implicit_weight: float = 1.0
) -> Interactions:
    """Interactions from a long frame with columns ``user_id, item_id[, rating][, timestamp]``.

    Vocabularies are the sorted distinct ids. Duplicate (user, item) rows are
    an error naming ``source`` and the first repeated pair (in file order).
    """
    dup = frame.duplicated(subset=["user_id", "item_id"])
    if dup.any():
        row = frame[dup].iloc[0]
        pair = f"({_show(row['user_id'])}, {_show(row['item_id'])})"
        raise DataError(
            f"{source}: duplicate (user_id, item_id) pair {pair}; "
            "expected one row per pair (aggregate duplicates before loading)"
        )
    for col in ("user_id", "item_id"):
        if frame[col].isna().any():
            raise DataError(
                f"{source}: column {col!r} must not have missing values, "
                f"got one at data row {_first(frame[col].isna())}"
            )
    user_index, user_ids = pd.factorize(frame["user_id"], sort=True)
    item_index, item_ids = pd.factorize(frame["item_id"], sort=True)
    has_ratings = "rating" in frame.columns
    if has_ratings:
        values = _numeric(frame["rating"], source, "rating").astype(np.float32)
        if (values < 0).any():
            k = _first(pd.Series(values < 0))
            raise DataError(
                f"{source}: column 'rating' must not be negative, got {_show(frame['rating'].iloc[k - 1])} "
                f"at data row {k}"
            )
    else:
        values = np.full(len(frame), implicit_weight, dtype=np.float32)
    timestamps = _timestamps(frame["timestamp"], source) if "timestamp" in frame.columns else None
    return Interactions.from_arrays(
        user_index=user_index,
        item_index=item_index,
        user_ids=np.asarray(user_ids),
        item_ids=np.asarray(item_ids),
        values=values,
        timestamps=timestamps,
        has_ratings=has_ratings,
    )


def _column_names(columns: Mapping[str, str] | None) -> dict[str, str]:
    columns = dict(columns or {})
    unknown = sorted(set(columns) - set(_OUR_COLUMNS))
    if unknown:
        raise ValueError(f"columns: keys must be among {list(_OUR_COLUMNS)}, got {unknown}")
    return {c: columns.get(c, c) for c in _OUR_COLUMNS}


def _read_attributes(
    path: str | Path | None, ours: str, id_names: dict[str, str],
    mapping: Mapping[str, str] | None, field: str,
) -> pd.DataFrame | None:
    if path is None:
        if mapping:
            raise DataError(f"{field}: maps {sorted(mapping)} but no {ours.removesuffix('_id')}s file is given")
        return None
    table = read_frame(Path(path))
    theirs = id_names[ours]
    if theirs not in table.columns:
        raise DataError(
            f"{path}: missing required column {theirs!r} ({ours}); found columns {list(table.columns)}"
        )
    renames = {theirs: ours}
    for attribute, column in (mapping or {}).items():
        if column not in table.columns:
            raise DataError(
                f"{path}: missing column {column!r} (named by {field}.{attribute}); "
                f"found columns {list(table.columns)}"
            )
        if attribute == ours:
            raise DataError(f"{field}.{attribute}: the id column is named by data.columns.{ours}, not here")
        if attribute in table.columns and attribute not in mapping.values():
            raise DataError(
                f"{field}.{attribute}: cannot rename {column!r} to {attribute!r}: {path} already has a "
                f"column {attribute!r}"
            )
        renames[column] = attribute
    return table.rename(columns=renames)


def _show(value: object) -> str:
    """``repr`` of a cell as a person would write it (no numpy scalar wrappers)."""
    if pd.isna(value):
        return "a missing value"
    return repr(value.item() if isinstance(value, np.generic) else value)


def _first(mask: pd.Series) -> int:
    """1-based data row number (header not counted) of the first true entry."""
    return int(np.flatnonzero(mask.to_numpy())[0]) + 1


def _numeric(col: pd.Series, source: str, name: str) -> np.ndarray:
    values = pd.to_numeric(col, errors="coerce")
    bad = values.isna() | ~np.isfinite(values.astype("float64"))
    if bad.any():
        k = _first(bad)
        raise DataError(
            f"{source}: column {name!r} must be numeric, got {_show(col.iloc[k - 1])} at data row {k}"
        )
    return values.to_numpy(dtype=np.float64)


def _timestamps(col: pd.Series, source: str) -> np.ndarray:
    """Integer seconds since the epoch from integer, float, datetime or ISO-date-string values."""
    if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
        if col.dtype.kind in "iu":
            return col.to_numpy(dtype=np.int64)
        return np.floor(_numeric(col, source, "timestamp")).astype(np.int64)
    if pd.api.types.is_datetime64_any_dtype(col):
        parsed = col
    else:
        parsed = pd.to_datetime(col, errors="coerce", utc=True, format="ISO8601")
    if parsed.isna().any():
        k = _first(parsed.isna())
        raise DataError(
            f"{source}: column 'timestamp' must hold integer seconds or ISO dates, "
            f"got {_show(col.iloc[k - 1])} at data row {k}"
        )
    if parsed.dt.tz is not None:
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    return parsed.to_numpy(dtype="datetime64[s]").astype(np.int64)
