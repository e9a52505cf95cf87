"""Load the GroupLens MovieLens 100K files (``u.data``, ``u.user``, ``u.item``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from recsys.data._attributes import activity_levels, age_groups, align_attributes
from recsys.data._table import build_interactions
from recsys.data._types import Dataset
from recsys.errors import DataError

__all__ = ["load_movielens_100k"]

_FILES = ("u.data", "u.user", "u.item")
# The 19 genre flags of u.item, in the order listed in u.genre (ids 0..18).
_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
    "Romance", "Sci-Fi", "Thriller", "War", "Western",
)


def load_movielens_100k(path: str | Path) -> Dataset:
    """Read MovieLens 100K from the directory holding ``u.data``, ``u.user``, ``u.item``.

    Parameters
    ----------
    path : str or Path
        The ``ml-100k`` directory as unpacked from GroupLens (files unchanged).

    Returns
    -------
    Dataset
        Explicit ratings 1..5 with timestamps. ``users``: ``user_id, gender,
        age, age_group`` (MovieLens-1M buckets), ``occupation``,
        ``activity_level`` (terciles of the rating count). ``items``:
        ``item_id, title`` (decoded from Latin-1), ``category`` (the first
        flagged genre, ``"unknown"`` if none), ``genres`` (``|``-joined).

    Raises
    ------
    DataError
        If the directory or one of the three files is missing.

    Examples
    --------
    >>> load_movielens_100k("/nonexistent/ml-100k")
    Traceback (most recent call last):
    ...
    recsys.errors.DataError: /nonexistent/ml-100k: MovieLens 100K directory not found (expected u.data, u.user, u.item)
    """
    root = Path(path)
    expected = ", ".join(_FILES)
    if not root.is_dir():
        raise DataError(f"{root}: MovieLens 100K directory not found (expected {expected})")
    missing = [f for f in _FILES if not (root / f).is_file()]
    if missing:
        raise DataError(f"{root}: missing {', '.join(missing)} (expected {expected})")

    ratings = _read_csv(
        root / "u.data", sep="\t", header=None,
        names=["user_id", "item_id", "rating", "timestamp"], dtype=np.int64,
    )
    it = build_interactions(ratings, source=str(root / "u.data"))
    users = align_attributes(
        _read_users(root / "u.user"), it.user_ids, id_column="user_id", source=str(root / "u.user")
    )
    users["activity_level"] = activity_levels(np.diff(it.matrix.indptr))
    return Dataset(
        interactions=it,
        users=users,
        items=align_attributes(
            _read_items(root / "u.item"), it.item_ids, id_column="item_id",
            source=str(root / "u.item"), defaults={"category": "unknown"},
        ),
        name="ml-100k",
    )


def _read_csv(path: Path, **kwargs: object) -> pd.DataFrame:
    """``pd.read_csv`` whose failures (binary garbage, a wrong column type) name the file."""
    try:
        return pd.read_csv(path, **kwargs)  # type: ignore[call-overload]
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(
            f"{path}: expected the MovieLens 100K file as GroupLens ships it, received something else ({reason})"
        ) from None


def _read_users(path: Path) -> pd.DataFrame:
    users = _read_csv(
        path, sep="|", header=None,
        names=["user_id", "age", "gender", "occupation", "zip"],
        dtype={"user_id": np.int64, "age": np.int64, "gender": str, "occupation": str, "zip": str},
    )
    users.insert(3, "age_group", age_groups(users["age"].to_numpy()))
    return users[["user_id", "gender", "age", "age_group", "occupation"]]


def _read_items(path: Path) -> pd.DataFrame:
    columns = ["item_id", "title", "release", "video", "url", *_GENRES]
    items = _read_csv(
        path, sep="|", header=None, names=columns, encoding="latin-1",
        dtype={"item_id": np.int64, "title": str, **{g: np.int8 for g in _GENRES}},
        usecols=["item_id", "title", *_GENRES], keep_default_na=False,
    )
    flags = items[list(_GENRES)].to_numpy().astype(bool)
    names = np.asarray(_GENRES, dtype=object)
    first = np.where(flags.any(axis=1), names[flags.argmax(axis=1)], "unknown")
    genres = ["|".join(names[row]) for row in flags]  # 1,682 short rows: a loop is clearer
    return pd.DataFrame(
        {"item_id": items["item_id"], "title": items["title"], "category": first, "genres": genres}
    )
