"""Spark tests: skipped without pyspark or Java; each module shares one local session."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest


def _skip_without_spark() -> None:
    pytest.importorskip("pyspark", reason="the Spark engine needs pyspark (pip install 'fairrec[spark]')")
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip("the Spark engine needs Java 17 (openjdk-17-jre-headless)")


@pytest.fixture(scope="module")
def spark() -> Iterator[object]:
    """One local[2] session for a test module, stopped after it."""
    _skip_without_spark()
    from recsys.engine import spark_session

    session = spark_session(
        "local[2]",
        {"spark.sql.shuffle.partitions": 2, "spark.ui.enabled": False,
         "spark.default.parallelism": 2, "spark.driver.memory": "1g",
         "spark.sql.execution.arrow.pyspark.enabled": True},
        app_name="fairrec-tests",
        java_home=os.environ.get("JAVA_HOME"),
        path=os.environ.get("PATH"),
        python=sys.executable,  # Python workers need fairrec's dependencies, not the python3 on PATH
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def lists_frame(spark: object, users: np.ndarray, ids: np.ndarray) -> object:
    """Ranked lists ``[n_users, k]`` (-1 padding) as the long ``user, rank, item`` frame."""
    valid = ids >= 0
    rows, cols = np.nonzero(valid)
    frame = pd.DataFrame({"user": users[rows].astype(np.int64),
                          "rank": (cols + 1).astype(np.int32),
                          "item": ids[valid].astype(np.int64)})
    if frame.empty:
        return spark.createDataFrame(frame, "user long, rank int, item long")
    return spark.createDataFrame(frame)


def users_frame(spark: object, users: np.ndarray) -> object:
    return spark.createDataFrame(pd.DataFrame({"user": np.asarray(users, dtype=np.int64)}))


def attributes_frame(spark: object, table: pd.DataFrame, columns: list[str]) -> object:
    """A user table (row = internal index) as ``user`` plus string labels (None = missing)."""
    out = pd.DataFrame({"user": np.arange(len(table), dtype=np.int64)})
    for c in columns:
        values = table[c].astype("string")
        out[c] = values.astype(object).where(values.notna(), None)
    return spark.createDataFrame(out, ", ".join(["user long"] + [f"`{c}` string" for c in columns]))
