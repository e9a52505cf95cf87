"""Pure, vectorised evaluation metrics for ranked lists.

Ranked lists are 2-D ``ids`` arrays ``[n_users, k]`` (internal item indices,
best first, ``-1`` = padding); relevance is a user x item sparse matrix.
Per-user metrics return one float64 per row; :func:`evaluate_rankings`
bundles them into an immutable :class:`RelevanceReport`.
"""

from evaluation._beyond import (
    average_popularity,
    catalog_coverage,
    exposure_gini,
    intra_list_diversity,
    novelty,
    popularity_share,
)
from evaluation._ranking import (
    average_precision_at_k,
    hit_matrix,
    hit_rate_at_k,
    log_rank_weight,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
    reciprocal_rank_at_k,
)
from evaluation._relevance import RelevanceReport, evaluate_rankings

__all__ = [
    "RelevanceReport",
    "average_popularity",
    "average_precision_at_k",
    "catalog_coverage",
    "evaluate_rankings",
    "exposure_gini",
    "hit_matrix",
    "hit_rate_at_k",
    "intra_list_diversity",
    "log_rank_weight",
    "ndcg_at_k",
    "novelty",
    "popularity_share",
    "precision_at_k",
    "recall_at_k",
    "reciprocal_rank_at_k",
]
