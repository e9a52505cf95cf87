"""Attribute helpers: age buckets, activity terciles, table alignment."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.data import DataError
from recsys.data._attributes import activity_levels, age_groups, align_attributes


def test_age_group_boundaries() -> None:
    ages = [0, 17, 18, 24, 25, 34, 35, 44, 45, 49, 50, 55, 56, 90]
    assert age_groups(ages).tolist() == [
        "<18", "<18", "18-24", "18-24", "25-34", "25-34", "35-44", "35-44",
        "45-49", "45-49", "50-55", "50-55", "56+", "56+",
    ]


def test_activity_terciles_with_ties() -> None:
    # Quantiles of [1, 1, 2, 2, 3, 9] at 1/3 and 2/3 are 1.667 and 2.333.
    assert activity_levels([2, 9, 1, 3, 1, 2]).tolist() == ["medium", "high", "low", "high", "low", "medium"]
    assert activity_levels([]).tolist() == []


def test_align_drops_unknown_ids_and_fills_missing() -> None:
    table = pd.DataFrame({"user_id": ["c", "a"], "gender": ["F", "M"]})
    out = align_attributes(table, np.array(["a", "b"], dtype=object), id_column="user_id", source="u.csv")
    assert out["user_id"].tolist() == ["a", "b"]
    assert out["gender"].iloc[0] == "M" and pd.isna(out["gender"].iloc[1])


def test_align_matches_numeric_ids_read_as_text() -> None:
    table = pd.DataFrame({"item_id": ["2", "1"], "category": ["x", "y"]})
    out = align_attributes(table, np.array([1, 2]), id_column="item_id", source="i.csv")
    assert out.to_dict("list") == {"item_id": [1, 2], "category": ["y", "x"]}


def test_align_errors() -> None:
    with pytest.raises(DataError, match=r"^i\.csv: missing required column 'item_id'; found columns \['id'\]$"):
        align_attributes(pd.DataFrame({"id": [1]}), np.array([1]), id_column="item_id", source="i.csv")
    with pytest.raises(DataError, match=r"^i\.csv: column 'item_id' must hold unique ids, got 'x' more than once$"):
        align_attributes(pd.DataFrame({"item_id": ["x", "x"]}), np.array(["x"]), id_column="item_id", source="i.csv")
