"""Spark reading and splits against the in-process loader and splits on the same data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.data import (
    DataError,
    Interactions,
    leave_last_k,
    load_table,
    random_holdout,
    time_cutoff,
)
from recsys.data._spark import (
    collect_interactions,
    read_table_spark,
    spark_from_interactions,
    spark_leave_last_k,
    spark_random_holdout,
    spark_relevance_threshold,
    spark_time_cutoff,
)


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(4)
    pairs = rng.choice(30 * 12, size=150, replace=False)
    return pd.DataFrame({"uid": [f"u{p // 12:02d}" for p in pairs], "item_id": pairs % 12 * 10,
                         "rating": rng.integers(1, 6, size=150),
                         "timestamp": rng.integers(0, 40, size=150)})  # many tied timestamps


@pytest.fixture(scope="module")
def local(frame, tmp_path_factory) -> Interactions:
    d = tmp_path_factory.mktemp("table")
    frame.to_csv(d / "r.csv", index=False)
    return load_table(interactions=d / "r.csv", columns={"user_id": "uid"}).interactions


def _same(a: Interactions, b: Interactions) -> None:
    assert a.user_ids.astype(str).tolist() == b.user_ids.astype(str).tolist()
    assert a.item_ids.astype(str).tolist() == b.item_ids.astype(str).tolist()
    assert (a.matrix != b.matrix).nnz == 0 and a.matrix.nnz == b.matrix.nnz
    assert np.array_equal(a.timestamps, b.timestamps)


@pytest.mark.parametrize("form", ["csv", "parquet", "parts"])
def test_table_files_read_by_spark_equal_load_table(spark, frame, local, tmp_path, form) -> None:
    if form == "csv":
        path = tmp_path / "r.csv"
        frame.to_csv(path, index=False)
    elif form == "parquet":
        path = tmp_path / "r.parquet"
        frame.to_parquet(path, index=False)
    else:
        path = tmp_path / "parts"
        path.mkdir()
        for i, start in enumerate(range(0, len(frame), 50)):
            frame.iloc[start:start + 50].to_parquet(path / f"part-{i}.parquet", index=False)
    got = read_table_spark(spark, interactions=path, columns={"user_id": "uid"})
    assert (got.n_users, got.n_items) == (local.n_users, local.n_items)
    assert got.has_ratings and got.has_timestamps
    _same(collect_interactions(got), local)


def test_bad_tables_name_the_file_and_column(spark, frame, tmp_path) -> None:
    path = tmp_path / "r.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(DataError, match=r"r.csv: missing required column 'user_id' \(user_id\); found"):
        read_table_spark(spark, interactions=path)
    dup = pd.concat([frame, frame.iloc[:1]])
    dup.to_csv(path, index=False)
    with pytest.raises(DataError, match=r"r.csv: duplicate \(user_id, item_id\) pair \('u\d\d', \d+\); "
                                        r"expected one row per pair"):
        read_table_spark(spark, interactions=path, columns={"user_id": "uid"})
    with pytest.raises(DataError, match=r"nowhere.csv: file not found"):
        read_table_spark(spark, interactions=tmp_path / "nowhere.csv")


def test_leave_last_k_and_time_cutoff_give_the_same_entries(spark, local) -> None:
    data = spark_from_interactions(spark, local)
    for ours, theirs in (
        (leave_last_k(local, k=2, min_train=1), spark_leave_last_k(data, k=2, min_train=1)),
        (time_cutoff(local, test_fraction=0.3), spark_time_cutoff(data, test_fraction=0.3)),
        (time_cutoff(local, cutoff=25), spark_time_cutoff(data, cutoff=25)),
    ):
        _same(collect_interactions(theirs.train, user_ids=local.user_ids, item_ids=local.item_ids), ours.train)
        _same(collect_interactions(theirs.test, user_ids=local.user_ids, item_ids=local.item_ids), ours.test)


def test_random_holdout_keeps_the_per_user_counts(spark, local) -> None:
    data = spark_from_interactions(spark, local)
    ours = random_holdout(local, test_fraction=0.35, min_train=2, random_state=3)
    theirs = spark_random_holdout(data, test_fraction=0.35, min_train=2, random_state=3)
    train = collect_interactions(theirs.train, user_ids=local.user_ids, item_ids=local.item_ids)
    test = collect_interactions(theirs.test, user_ids=local.user_ids, item_ids=local.item_ids)
    assert np.array_equal(test.matrix.getnnz(axis=1), ours.test.matrix.getnnz(axis=1))
    assert ((train.matrix + test.matrix) != local.matrix).nnz == 0  # a partition of the input
    assert train.matrix.multiply(test.matrix).nnz == 0
    again = spark_random_holdout(data, test_fraction=0.35, min_train=2, random_state=3)
    assert (collect_interactions(again.test, user_ids=local.user_ids,
                                 item_ids=local.item_ids).matrix != test.matrix).nnz == 0


def test_relevance_threshold_filters_test_only(spark, local) -> None:
    split = spark_leave_last_k(spark_from_interactions(spark, local), k=3)
    kept = spark_relevance_threshold(split, 4.0)
    assert kept.train is split.train
    values = kept.test.frame.select("value").toPandas()["value"]
    assert values.min() >= 4.0
    assert len(values) == split.test.frame.filter("value >= 4").count()


@pytest.mark.parametrize("batch_rows", [7, 1 << 20])  # 7: a user's entries span record batches
def test_streamed_matrix_equals_the_in_process_one_and_leaves_no_staging(spark, local, tmp_path,
                                                                         batch_rows) -> None:
    from recsys.data import stream_matrix

    split = leave_last_k(local, k=1, min_train=1)
    data = spark_from_interactions(spark, split.train)
    data = data.with_frame(data.frame.repartition(5))  # unordered input
    staging = tmp_path / "staging"
    ratings = stream_matrix(data, staging, batch_rows=batch_rows)
    assert not staging.exists()
    want = split.train.matrix
    assert ratings.dtype == np.float32 and ratings.shape == want.shape and ratings.has_sorted_indices
    assert np.array_equal(ratings.indptr, want.indptr) and np.array_equal(ratings.indices, want.indices)
    assert np.array_equal(ratings.data, want.data)
    binary = stream_matrix(data, staging, binary=True, batch_rows=batch_rows)
    assert (binary != split.train.binary()).nnz == 0 and set(binary.data.tolist()) == {1.0}


def test_streamed_matrix_keeps_rows_of_users_without_entries(spark, tmp_path) -> None:
    import scipy.sparse as sp

    from recsys.data import stream_matrix

    X = sp.csr_matrix(np.array([[0, 0, 0], [0, 2, 1], [0, 0, 0], [3, 0, 0]], dtype=np.float32))
    inter = Interactions(matrix=X, user_ids=np.array(["a", "b", "c", "d"]), item_ids=np.array(["x", "y", "z"]))
    got = stream_matrix(spark_from_interactions(spark, inter), tmp_path / "s")
    assert got.indptr.tolist() == [0, 0, 2, 2, 3] and got.indices.tolist() == [1, 2, 0]
    assert got.data.tolist() == [2.0, 1.0, 3.0]


def test_streamed_matrix_refuses_an_existing_staging_directory(spark, local, tmp_path) -> None:
    from recsys.data import stream_matrix

    (tmp_path / "s").mkdir()
    with pytest.raises(FileExistsError, match=r"stream_matrix: the staging directory .*/s already exists"):
        stream_matrix(spark_from_interactions(spark, local), tmp_path / "s")
    assert (tmp_path / "s").is_dir()  # not removed: it was not ours
