"""Pure, vectorised evaluation metrics for ranked lists.

Ranked lists are 2-D ``ids`` arrays ``[n_users, k]`` (internal item indices,
best first, ``-1`` = padding); relevance is a user x item sparse matrix.
Per-user metrics return one float64 per row; :func:`evaluate_rankings`
bundles them into an immutable :class:`RelevanceReport`.

Fairness: :func:`group_quality` and :func:`outcome_parity` (fairlearn's
``MetricFrame`` over per-user vectors, consumer side), :func:`group_exposure`
and :func:`bias_amplification` (item side), bundled by
:func:`fairness_metrics` into a :class:`FairnessReport` with flat MLflow-safe
names. :func:`fairness_baseline` computes the list-independent half once, so a
run scores each candidate's lists with :meth:`FairnessBaseline.score`; a run
counts its training matrix once (:func:`item_counts`) for both sides.
"""

from evaluation._beyond import (
    average_popularity,
    catalog_coverage,
    exposure_gini,
    intra_list_diversity,
    novelty,
    popularity_share,
)
from evaluation._counts import item_counts
from evaluation._consent_metrics import ConsentReport, consent_metrics
from evaluation._monitoring import (
    DriftInterval,
    RatioMoments,
    mix_test,
    population_stability_index,
    proportion_interval,
    ratio_difference,
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
from evaluation._exposure import (
    BiasAmplification,
    ExposureReport,
    bias_amplification,
    group_exposure,
    long_tail_share,
    popularity_groups,
    popularity_groups_from_counts,
    rank_exposure,
)
from evaluation._fairness import (
    GroupQuality,
    OutcomeParity,
    contains_group,
    equal_opportunity,
    group_quality,
    outcome_parity,
    share_of_group,
)
from evaluation._fairness_metrics import FairnessBaseline, fairness_baseline, fairness_metrics
from evaluation._fairness_report import (
    FairnessReport,
    group_order,
    plot_exposure,
    plot_group_quality,
    sanitize_label,
)
from evaluation._explainability import coverage as explanation_coverage
from evaluation._explainability import (
    deletion_fidelity,
    explainability_scores,
    lime_r2,
    shap_lime_agreement,
    stability,
)
from evaluation._relevance import RelevanceReport, evaluate_rankings
from evaluation._spark import SparkEvaluation, spark_evaluate  # pyspark imported lazily
from evaluation._tradeoff import GapChange, compare_with_twin, gap_change

__all__ = [
    # served-list monitoring and consent
    "ConsentReport",
    "DriftInterval",
    "RatioMoments",
    "consent_metrics",
    "mix_test",
    "population_stability_index",
    "proportion_interval",
    "ratio_difference",
    "deletion_fidelity",
    "explanation_coverage",
    "explainability_scores",
    "lime_r2",
    "shap_lime_agreement",
    "stability",
    "GapChange",
    "compare_with_twin",
    "gap_change",
    "RelevanceReport",
    "SparkEvaluation",
    "spark_evaluate",
    "average_popularity",
    "average_precision_at_k",
    "catalog_coverage",
    "evaluate_rankings",
    "exposure_gini",
    "hit_matrix",
    "hit_rate_at_k",
    "intra_list_diversity",
    "item_counts",
    "log_rank_weight",
    "ndcg_at_k",
    "novelty",
    "popularity_share",
    "precision_at_k",
    "recall_at_k",
    "reciprocal_rank_at_k",
    # fairness (consumer side, item side, report)
    "BiasAmplification",
    "ExposureReport",
    "FairnessBaseline",
    "FairnessReport",
    "GroupQuality",
    "OutcomeParity",
    "bias_amplification",
    "contains_group",
    "equal_opportunity",
    "fairness_baseline",
    "fairness_metrics",
    "group_exposure",
    "group_quality",
    "long_tail_share",
    "outcome_parity",
    "plot_exposure",
    "plot_group_quality",
    "group_order",
    "popularity_groups",
    "popularity_groups_from_counts",
    "rank_exposure",
    "sanitize_label",
    "share_of_group",
]
