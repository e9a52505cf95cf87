"""Fairness mitigations that wrap fairrec's recommenders.

* Pre-processing: :func:`interaction_weights` and :class:`ReweightedRecommender`
  reweight the training interactions (popularity damping, group balance).
* In-processing: :class:`TwoStageRanker` re-scores a first stage's candidates with a
  classifier, optionally a fairlearn reduction under a group-fairness constraint.
"""

from recsys.mitigation._reweight import ReweightedRecommender, interaction_weights
from recsys.mitigation._two_stage import TwoStageRanker

__all__ = ["ReweightedRecommender", "TwoStageRanker", "interaction_weights"]
