"""Evaluate one set of ranked lists: relevance, then fairness, as one flat metrics dict."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
import scipy.sparse as sp

from evaluation import (
    FairnessBaseline,
    FairnessReport,
    RelevanceReport,
    evaluate_rankings,
    fairness_baseline,
    item_counts as count_item_entries,
)
from training._schema import FairnessConfig

__all__ = ["Evaluated", "EvaluationInputs", "evaluate_lists"]


@dataclass(frozen=True, kw_only=True)
class EvaluationInputs:
    """Everything the metrics need besides the lists, resolved once per run."""

    users: np.ndarray  # internal indices of the test users, aligned with the lists
    relevant: sp.csr_matrix
    train: sp.csr_matrix
    users_table: pd.DataFrame
    items_table: pd.DataFrame
    item_category: np.ndarray  # integer codes, for diversity
    fairness: FairnessConfig
    k: int
    seed: int

    @cached_property
    def item_counts(self) -> np.ndarray:
        """Training entries per item, counted once for relevance (novelty) and fairness."""
        return count_item_entries(self.train)

    @cached_property
    def fairness_baseline(self) -> FairnessBaseline:
        """The list-independent half of the fairness metrics, built once for all candidates."""
        cfg = self.fairness
        return fairness_baseline(
            users=self.users,
            users_table=self.users_table,
            items_table=self.items_table,
            train=self.train,
            relevant=self.relevant,
            sensitive=cfg.sensitive,
            item_group=cfg.item_group,
            protected_group=cfg.protected_group,
            item_category=cfg.amplification_attribute,
            head_share=cfg.head_share,
            amplification_weighting=cfg.amplification_weighting,
            item_counts=self.item_counts,
        )


@dataclass(frozen=True, kw_only=True)
class Evaluated:
    metrics: dict[str, float]
    relevance: RelevanceReport
    fairness: FairnessReport


def evaluate_lists(ids: np.ndarray, inputs: EvaluationInputs) -> Evaluated:
    relevance = evaluate_rankings(
        ids,
        users=inputs.users,
        relevant=inputs.relevant,
        train=inputs.train,
        item_category=inputs.item_category,
        k=inputs.k,
        item_counts=inputs.item_counts,
    )
    fairness = inputs.fairness_baseline.score(
        relevance, ids[:, : inputs.k], n_boot=inputs.fairness.n_boot, random_state=inputs.seed
    )
    metrics = dict(relevance.summary())
    metrics.update(fairness.flat())
    return Evaluated(metrics=metrics, relevance=relevance, fairness=fairness)
