"""fairrec data: core types, loaders, the synthetic generator and train/test splits."""

from recsys.data._movielens import load_movielens_100k
from recsys.data._split import (
    Split,
    apply_relevance_threshold,
    leave_last_k,
    random_holdout,
    time_cutoff,
)
from recsys.data._spark import (  # pyspark imported lazily
    SparkInteractions,
    SparkSplit,
    collect_interactions,
    read_table_spark,
    spark_from_interactions,
    spark_leave_last_k,
    spark_random_holdout,
    spark_relevance_threshold,
    spark_time_cutoff,
)
from recsys.data._spark_matrix import stream_matrix
from recsys.data._synthetic import generate_synthetic
from recsys.data._table import load_table
from recsys.data._types import Dataset, Interactions
from recsys.errors import DataError

__all__ = [
    "DataError",
    "Dataset",
    "Interactions",
    "Split",
    "SparkInteractions",
    "SparkSplit",
    "collect_interactions",
    "read_table_spark",
    "spark_from_interactions",
    "spark_leave_last_k",
    "spark_random_holdout",
    "spark_relevance_threshold",
    "spark_time_cutoff",
    "stream_matrix",
    "apply_relevance_threshold",
    "generate_synthetic",
    "leave_last_k",
    "load_movielens_100k",
    "load_table",
    "random_holdout",
    "time_cutoff",
]
