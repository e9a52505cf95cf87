"""Re-rankers: reorder a first-stage model's candidate lists towards a fairness target.

Every re-ranker is a :class:`Reranker`: ``fit(X, **attributes)`` on the training
user x item CSR matrix and the user or item attributes it needs, then
``rerank(ids, scores, users=..., k=...)`` returning ``[n_users, k]`` ids and the
original scores of the chosen candidates. They only reorder; none re-scores with
a model. ``strength=0`` returns the input order truncated to ``k``.
"""

from recsys.rerank._base import Reranker
from recsys.rerank._calibration import CalibratedReranker
from recsys.rerank._category_share import CategoryShareReranker, fit_users_sample
from recsys.rerank._exposure_budget import ExposureBudgetReranker
from recsys.rerank._fair_share import FairShareReranker
from recsys.rerank._spark import SPARK_RERANK_KINDS, SparkReranker, fit_spark_reranker, spark_rerank
from recsys.rerank._user_fair import UserGroupBlendReranker
from recsys.rerank._validation import ValidationCandidates, validation_candidates

__all__ = [
    "RERANKERS",
    "SPARK_RERANK_KINDS",
    "CalibratedReranker",
    "CategoryShareReranker",
    "ExposureBudgetReranker",
    "FairShareReranker",
    "Reranker",
    "SparkReranker",
    "UserGroupBlendReranker",
    "ValidationCandidates",
    "fit_spark_reranker",
    "fit_users_sample",
    "spark_rerank",
    "validation_candidates",
]

#: re-rankers by registry key, as named in configs
RERANKERS: dict[str, type[Reranker]] = {
    "fair_share": FairShareReranker,
    "exposure_budget": ExposureBudgetReranker,
    "calibration": CalibratedReranker,
    "category_share": CategoryShareReranker,
    "user_blend": UserGroupBlendReranker,
}
