"""load_table: CSV/Parquet, column mapping, attribute alignment and the error messages."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys.data import DataError, load_table


def _csv(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.fixture
def ratings(tmp_path: Path) -> Path:
    return _csv(
        tmp_path / "ratings.csv",
        "user_id,item_id,rating,timestamp\n"
        "b,20,4,300\n"
        "a,10,5,100\n"
        "a,20,2.5,200\n",
    )


def test_csv_with_ratings_and_timestamps(ratings: Path) -> None:
    ds = load_table(interactions=ratings)
    it = ds.interactions
    assert it.user_ids.tolist() == ["a", "b"]
    assert it.item_ids.tolist() == [10, 20]
    np.testing.assert_array_equal(it.matrix.toarray(), [[5.0, 2.5], [0.0, 4.0]])
    assert it.timestamps.tolist() == [100, 200, 300]  # aligned with matrix.data
    assert it.has_ratings
    assert ds.name == "ratings"
    assert ds.users.columns.tolist() == ["user_id"]
    assert ds.items.to_dict("list") == {"item_id": [10, 20], "category": ["unknown", "unknown"]}


def test_parquet_and_column_mapping(tmp_path: Path) -> None:
    path = tmp_path / "log.parquet"
    pd.DataFrame({"uid": [1, 1, 2], "sku": ["x", "y", "x"], "when": pd.to_datetime(
        ["1970-01-01 00:00:10", "1970-01-01 00:01:00", "1970-01-02"], format="ISO8601")}).to_parquet(path)
    ds = load_table(interactions=path, columns={"user_id": "uid", "item_id": "sku", "timestamp": "when"},
                    implicit_weight=2.0)
    it = ds.interactions
    assert not it.has_ratings
    np.testing.assert_array_equal(it.matrix.toarray(), [[2.0, 2.0], [2.0, 0.0]])
    assert it.timestamps.tolist() == [10, 60, 86_400]


def test_iso_date_strings(tmp_path: Path) -> None:
    path = _csv(tmp_path / "r.csv", "user_id,item_id,timestamp\n1,1,1970-01-02T00:00:00Z\n1,2,1970-01-01\n")
    assert load_table(interactions=path).interactions.timestamps.tolist() == [86_400, 0]


def test_attribute_tables_are_aligned(tmp_path: Path, ratings: Path) -> None:
    users = _csv(tmp_path / "users.csv", "user_id,gender\nz,F\nb,M\n")  # z unseen, a missing
    items = tmp_path / "items.parquet"
    pd.DataFrame({"item_id": [20, 10, 99], "category": ["drama", None, "x"], "title": ["T", "S", "U"]}).to_parquet(items)
    ds = load_table(interactions=ratings, users=users, items=items)
    assert ds.users["user_id"].tolist() == ["a", "b"]
    assert pd.isna(ds.users["gender"].iloc[0]) and ds.users["gender"].iloc[1] == "M"
    assert ds.items["item_id"].tolist() == [10, 20]
    assert ds.items["category"].tolist() == ["unknown", "drama"]
    assert ds.items["title"].tolist() == ["S", "T"]


def test_attribute_table_uses_the_mapped_id_column(tmp_path: Path) -> None:
    inter = _csv(tmp_path / "r.csv", "uid,item_id\n7,1\n8,1\n")
    users = _csv(tmp_path / "u.csv", "uid,age\n8,30\n7,20\n")
    ds = load_table(interactions=inter, users=users, columns={"user_id": "uid"})
    assert ds.users.to_dict("list") == {"user_id": [7, 8], "age": [20, 30]}


def _raises(message: str, **kwargs: object) -> None:
    with pytest.raises(DataError, match=f"^{re.escape(message)}$"):
        load_table(**kwargs)


def test_unknown_suffix(tmp_path: Path) -> None:
    path = _csv(tmp_path / "r.tsv", "user_id\titem_id\n")
    _raises(f"{path}: expected a file ending in .csv, .parquet, .pq, got '.tsv'", interactions=path)


def test_missing_file(tmp_path: Path) -> None:
    _raises(f"{tmp_path / 'r.csv'}: file not found", interactions=tmp_path / "r.csv")


def test_empty_file_and_header_only(tmp_path: Path) -> None:
    empty = _csv(tmp_path / "e.csv", "")
    _raises(f"{empty}: the file is empty (expected a header and at least one row)", interactions=empty)
    header = _csv(tmp_path / "h.csv", "user_id,item_id\n")
    _raises(f"{header}: the file has no rows (expected at least one)", interactions=header)


def test_missing_required_column(tmp_path: Path) -> None:
    path = _csv(tmp_path / "r.csv", "user,item_id\n1,2\n")
    _raises(f"{path}: missing required column 'user_id' (user_id); found columns ['user', 'item_id']",
            interactions=path)


def test_mapped_optional_column_must_exist(ratings: Path) -> None:
    _raises(f"{ratings}: missing required column 'stars' (rating); found columns "
            "['user_id', 'item_id', 'rating', 'timestamp']",
            interactions=ratings, columns={"rating": "stars"})


def test_non_numeric_rating(tmp_path: Path) -> None:
    path = _csv(tmp_path / "r.csv", "user_id,item_id,rating\n1,1,4\n1,2,good\n")
    _raises(f"{path}: column 'rating' must be numeric, got 'good' at data row 2", interactions=path)


def test_missing_rating(tmp_path: Path) -> None:
    path = _csv(tmp_path / "r.csv", "user_id,item_id,rating\n1,1,\n")
    _raises(f"{path}: column 'rating' must be numeric, got a missing value at data row 1", interactions=path)


def test_bad_timestamp(tmp_path: Path) -> None:
    path = _csv(tmp_path / "r.csv", "user_id,item_id,timestamp\n1,1,yesterday\n")
    _raises(f"{path}: column 'timestamp' must hold integer seconds or ISO dates, got 'yesterday' at data row 1",
            interactions=path)


def test_missing_datetime(tmp_path: Path) -> None:
    path = tmp_path / "r.parquet"
    pd.DataFrame({"user_id": [1, 2], "item_id": [1, 1],
                  "timestamp": pd.to_datetime(["2020-01-01", None])}).to_parquet(path)
    _raises(f"{path}: column 'timestamp' must hold integer seconds or ISO dates, got a missing value "
            "at data row 2", interactions=path)


def test_missing_id(tmp_path: Path) -> None:
    path = _csv(tmp_path / "r.csv", "user_id,item_id\n1,1\n2,\n")
    _raises(f"{path}: column 'item_id' must not have missing values, got one at data row 2", interactions=path)


def test_duplicate_pair(tmp_path: Path) -> None:
    path = _csv(tmp_path / "r.csv", "user_id,item_id\n1,1\n2,5\n1,3\n2,5\n1,1\n")
    _raises(f"{path}: duplicate (user_id, item_id) pair (2, 5); expected one row per pair "
            "(aggregate duplicates before loading)", interactions=path)


def test_duplicate_ids_in_attribute_table(tmp_path: Path, ratings: Path) -> None:
    items = _csv(tmp_path / "items.csv", "item_id,category\n10,a\n20,b\n10,c\n")
    _raises(f"{items}: column 'item_id' must hold unique ids, got 10 more than once",
            interactions=ratings, items=items)


def test_attribute_table_without_id_column(tmp_path: Path, ratings: Path) -> None:
    users = _csv(tmp_path / "users.csv", "id,gender\na,F\n")
    _raises(f"{users}: missing required column 'user_id' (user_id); found columns ['id', 'gender']",
            interactions=ratings, users=users)


def test_invalid_arguments(ratings: Path) -> None:
    with pytest.raises(ValueError, match=r"^implicit_weight: expected a finite number > 0, got 0\.0$"):
        load_table(interactions=ratings, implicit_weight=0.0)
    with pytest.raises(ValueError, match=r"^columns: keys must be among \['user_id', 'item_id', 'rating', "
                       r"'timestamp'\], got \['user'\]$"):
        load_table(interactions=ratings, columns={"user": "u"})
