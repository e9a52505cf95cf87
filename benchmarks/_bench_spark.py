"""The Spark session every benchmark opens: this machine's Java and this Python on the executors."""

from __future__ import annotations

import os
import sys
from typing import Any


def bench_spark(master: str, driver_memory: str, shuffle_partitions: int, app_name: str) -> Any:
    """``recsys.engine.spark_session`` with Arrow on, quiet logs, executors running ``sys.executable``."""
    from recsys.engine import spark_session

    spark = spark_session(master, {"spark.driver.memory": driver_memory,
                                   "spark.sql.shuffle.partitions": shuffle_partitions,
                                   "spark.sql.execution.arrow.pyspark.enabled": True},
                          app_name=app_name, java_home=os.environ.get("JAVA_HOME"),
                          path=os.environ.get("PATH"), python=sys.executable)
    spark.sparkContext.setLogLevel("ERROR")
    return spark
