"""load_movielens_100k: the facts stated in the dataset's README, and missing-file errors."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from recsys.data import DataError, Dataset, load_movielens_100k

@pytest.fixture(scope="module")
def ml(ml100k_dir: Path) -> Dataset:
    return load_movielens_100k(ml100k_dir)


@pytest.mark.ml100k
def test_sizes(ml: Dataset) -> None:
    it = ml.interactions
    assert (it.n_interactions, it.n_users, it.n_items) == (100_000, 943, 1_682)
    np.testing.assert_array_equal(it.user_ids, np.arange(1, 944))
    np.testing.assert_array_equal(it.item_ids, np.arange(1, 1683))
    assert ml.name == "ml-100k"


@pytest.mark.ml100k
def test_ratings_and_timestamps(ml: Dataset) -> None:
    it = ml.interactions
    assert it.has_ratings
    values, counts = np.unique(it.matrix.data, return_counts=True)
    np.testing.assert_array_equal(values, [1, 2, 3, 4, 5])
    np.testing.assert_array_equal(counts, [6_110, 11_370, 27_145, 34_174, 21_201])
    assert it.timestamps.dtype == np.int64
    # Collected 1997-09-19 .. 1998-04-22 (UTC seconds).
    assert 874_627_200 <= it.timestamps.min() and it.timestamps.max() < 893_289_600
    assert np.diff(it.matrix.indptr).min() == 20  # each user rated at least 20 movies


@pytest.mark.ml100k
def test_users(ml: Dataset) -> None:
    users = ml.users
    assert list(users.columns) == [
        "user_id", "gender", "age", "age_group", "occupation", "activity_level"
    ]
    assert users["gender"].value_counts().to_dict() == {"M": 670, "F": 273}
    first = users.iloc[0]
    assert (first["user_id"], first["age"], first["gender"], first["occupation"]) == (1, 24, "M", "technician")
    assert first["age_group"] == "18-24"
    assert set(users["age_group"]) == {"<18", "18-24", "25-34", "35-44", "45-49", "50-55", "56+"}
    by_age = dict(zip(users["age"], users["age_group"], strict=True))
    assert (by_age[17], by_age[18], by_age[25], by_age[49], by_age[50], by_age[56]) == (
        "<18", "18-24", "25-34", "45-49", "50-55", "56+"
    )
    assert users["occupation"].nunique() == 21


@pytest.mark.ml100k
def test_activity_levels_are_terciles(ml: Dataset) -> None:
    counts = np.diff(ml.interactions.matrix.indptr)
    level = ml.users["activity_level"].to_numpy()
    assert counts[level == "low"].max() < counts[level == "medium"].min()
    assert counts[level == "medium"].max() < counts[level == "high"].min()
    assert all(abs((level == name).mean() - 1 / 3) < 0.02 for name in ("low", "medium", "high"))


@pytest.mark.ml100k
def test_items(ml: Dataset) -> None:
    items = ml.items.set_index("item_id")
    assert list(ml.items.columns) == ["item_id", "title", "category", "genres"]
    assert items.loc[1, "title"] == "Toy Story (1995)"
    assert items.loc[1, "genres"] == "Animation|Children's|Comedy"
    assert items.loc[1, "category"] == "Animation"
    # u.item is Latin-1: byte 0xE9 is "é".
    assert items.loc[543, "title"] == "Misérables, Les (1995)"
    assert items["genres"].str.split("|").map(len).min() >= 1
    assert (items["category"] == items["genres"].str.split("|").str[0]).all()


def test_missing_directory(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(
        DataError,
        match=f"^{re.escape(str(missing))}: MovieLens 100K directory not found "
        r"\(expected u.data, u.user, u.item\)$",
    ):
        load_movielens_100k(missing)


def test_missing_file(tmp_path: Path) -> None:
    (tmp_path / "u.data").write_text("1\t1\t5\t874965758\n")
    with pytest.raises(
        DataError,
        match=f"^{re.escape(str(tmp_path))}: missing u.user, u.item "
        r"\(expected u.data, u.user, u.item\)$",
    ):
        load_movielens_100k(str(tmp_path))
