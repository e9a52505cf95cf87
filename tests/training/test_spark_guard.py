"""ExecutorWatch without Spark: a stand-in context whose cluster has no executor."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from recsys.engine import SparkEngineError
from training._spark_guard import ExecutorWatch, guard


class _NoExecutors(ExecutorWatch):
    def _executors(self) -> int:
        return 0


def _context() -> SimpleNamespace:
    cancels: list[float] = []
    return SimpleNamespace(sparkContext=SimpleNamespace(cancelAllJobs=lambda: cancels.append(time.monotonic())),
                           cancels=cancels)


def test_a_lost_cluster_cancels_jobs_submitted_after_the_first_cancel() -> None:
    # the loss may be found between jobs (the driver working alone): the next job must be
    # cancelled too, or it waits forever for an executor
    spark = _context()
    with _NoExecutors(spark, "spark://127.0.0.1:7077", timeout=0.5) as watch:
        time.sleep(4.0)
        assert watch.lost
        with pytest.raises(SparkEngineError, match=r"engine.master: the cluster at spark://127.0.0.1:7077 lost "
                                                   r"every executor while fitting and got none back within 0.5 s"):
            guard("spark://127.0.0.1:7077", "fitting", lambda: 1 / 0)
    assert len(spark.cancels) >= 2  # about one per second after the first, at 1.5 s
    n = len(spark.cancels)
    time.sleep(1.5)
    assert len(spark.cancels) == n  # the watch stops with the run


def test_local_masters_are_not_watched() -> None:
    spark = _context()
    with _NoExecutors(spark, "local[2]", timeout=0.1) as watch:
        time.sleep(1.5)
    assert not watch.lost and spark.cancels == []
