"""Execution engines beyond the in-process one: the Spark session factory and its errors.

pyspark is imported lazily, inside the functions, never at import time.
"""

from recsys.engine._spark_session import SparkEngineError, check_master, find_java, spark_session

__all__ = ["SparkEngineError", "check_master", "find_java", "spark_session"]
