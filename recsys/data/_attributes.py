"""Small helpers shared by the loaders and the generator for attribute columns.

* :func:`age_groups` - MovieLens-1M style age buckets from integer ages.
* :func:`activity_levels` - ``low`` / ``medium`` / ``high`` by terciles of a
  per-user interaction count.
* :func:`align_attributes` - reorder an attribute table to an id vocabulary.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from recsys.errors import DataError

__all__ = [
    "ACTIVITY_LEVELS",
    "AGE_GROUPS",
    "activity_codes",
    "activity_levels",
    "age_groups",
    "align_attributes",
]

#: MovieLens-1M age buckets; bucket ``j`` holds ages in ``[_AGE_EDGES[j], _AGE_EDGES[j+1])``.
AGE_GROUPS: tuple[str, ...] = ("<18", "18-24", "25-34", "35-44", "45-49", "50-55", "56+")
_AGE_EDGES = np.array([18, 25, 35, 45, 50, 56])

ACTIVITY_LEVELS: tuple[str, ...] = ("low", "medium", "high")


def age_groups(age: np.ndarray | list[int]) -> np.ndarray:
    """Map ages to MovieLens-1M buckets (``"<18"``, ``"18-24"``, ..., ``"56+"``).

    Parameters
    ----------
    age : array-like of int
        Ages in years.

    Returns
    -------
    ndarray of str (object dtype)

    Examples
    --------
    >>> age_groups([7, 18, 24, 25, 49, 50, 56, 73]).tolist()
    ['<18', '18-24', '18-24', '25-34', '45-49', '50-55', '56+', '56+']
    """
    codes = np.searchsorted(_AGE_EDGES, np.asarray(age), side="right")
    return np.asarray(AGE_GROUPS, dtype=object)[codes]


def activity_levels(counts: np.ndarray | list[int]) -> np.ndarray:
    """Label users ``low`` / ``medium`` / ``high`` by terciles of their interaction count.

    ``low`` is a count at or below the 1/3 quantile, ``high`` a count above the
    2/3 quantile (linear interpolation), ``medium`` the rest. Equal counts always
    get the same label, so with many ties the three groups can differ in size
    (``medium`` can even be empty).

    Examples
    --------
    >>> activity_levels([1, 2, 3, 4, 5, 6]).tolist()
    ['low', 'low', 'medium', 'medium', 'high', 'high']
    >>> activity_levels([3, 3, 3]).tolist()
    ['low', 'low', 'low']
    """
    return np.asarray(ACTIVITY_LEVELS, dtype=object)[activity_codes(counts)]


def activity_codes(counts: np.ndarray | list[int]) -> np.ndarray:
    """:func:`activity_levels` as indices into :data:`ACTIVITY_LEVELS` (int8)."""
    c = np.asarray(counts, dtype=np.float64)
    if c.size == 0:
        return np.empty(0, dtype=np.int8)
    q1, q2 = np.quantile(c, [1 / 3, 2 / 3])
    return (c > q1).astype(np.int8) + (c > q2).astype(np.int8)


def align_attributes(
    table: pd.DataFrame | None,
    ids: np.ndarray,
    *,
    id_column: str,
    source: str,
    defaults: Mapping[str, object] | None = None,
) -> pd.DataFrame:
    """Reorder ``table`` so row ``i`` describes ``ids[i]``; ``id_column`` comes first.

    Rows whose id is not in ``ids`` are dropped; ids missing from the table get
    NaN attributes (or the value in ``defaults``). Columns named in
    ``defaults`` but absent from the table are added with that value.

    Raises
    ------
    DataError
        If ``table`` lacks ``id_column`` or has an id twice (the message names
        ``source``, the column and the first repeated id).

    Examples
    --------
    >>> t = pd.DataFrame({"item_id": [3, 1, 9], "category": ["b", "a", "z"]})
    >>> align_attributes(t, np.array([1, 2, 3]), id_column="item_id", source="items.csv",
    ...                  defaults={"category": "unknown"})
       item_id category
    0        1        a
    1        2  unknown
    2        3        b
    """
    defaults = dict(defaults or {})
    if table is None:
        table = pd.DataFrame({id_column: ids[:0]})
    if id_column not in table.columns:
        raise DataError(
            f"{source}: missing required column {id_column!r}; found columns {list(table.columns)}"
        )
    dup = table[id_column].duplicated()
    if dup.any():
        first = table[id_column][dup].iloc[0]
        first = first.item() if isinstance(first, np.generic) else first
        raise DataError(
            f"{source}: column {id_column!r} must hold unique ids, got {first!r} more than once"
        )
    key = table[id_column]
    if len(key) and key.dtype.kind != np.asarray(ids).dtype.kind:
        # Ids parsed as text in one file and as numbers in another: compare as text.
        key = key.astype(str)
        lookup = pd.Index(np.asarray(ids).astype(str))
    else:
        lookup = pd.Index(ids)
    out = table.drop(columns=[id_column]).set_index(pd.Index(key)).reindex(lookup)
    out = out.reset_index(drop=True)
    for col, value in defaults.items():
        if col not in out.columns:
            out[col] = value
        else:
            out[col] = out[col].where(out[col].notna(), value)
    out.insert(0, id_column, ids)
    return out
