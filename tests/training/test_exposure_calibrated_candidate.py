"""A config's exposure_budget with cost: calibrated, as fit_candidate builds it."""

from __future__ import annotations

import numpy as np
import pytest

from evaluation import group_exposure, popularity_groups
from recsys.data import generate_synthetic
from recsys.mitigation import ReweightedRecommender
from recsys.models import EASE
from recsys.rerank import ExposureBudgetReranker, validation_candidates
from training._candidate import FairnessContext, fit_candidate
from training._config import parse_config

SEED, K, N_CAND = 1, 5, 30
BUDGET = {"kind": "exposure_budget", "strength": 0.2, "n_candidates": N_CAND}


@pytest.fixture(scope="module")
def setup() -> tuple:
    cfg = parse_config({
        "name": "cal", "seed": SEED,
        "data": {"loader": "synthetic", "n_users": 150, "n_items": 60, "n_interactions": 3000},
        "fairness": {"sensitive": ["gender"], "item_group": "popularity", "protected_group": "tail"},
        "models": [
            {"name": "plain", "type": "ease", "params": {"l2": 50.0}, "mitigation": BUDGET},
            {"name": "calibrated", "type": "ease", "params": {"l2": 50.0},
             "mitigation": {**BUDGET, "cost": "calibrated"}},
            {"name": "damped", "type": "ease", "params": {"l2": 50.0, "binary": False},
             "mitigation": [{"kind": "reweight", "popularity_damping": 0.1}, {**BUDGET, "cost": "calibrated"}]},
        ],
        "evaluation": {"k": K},
    })
    ds = generate_synthetic(n_users=150, n_items=60, n_interactions=3000, random_state=SEED)
    X = ds.interactions.binary()
    protected = popularity_groups(X) == "tail"
    ctx = FairnessContext(dataset=ds, fairness=cfg.fairness, protected_items=protected, seed=SEED, k=K)
    return cfg, X, protected, ctx


def test_the_default_cost_is_the_score(setup: tuple) -> None:
    cfg, X, _, ctx = setup
    _, rr = fit_candidate(cfg.models[0], X, ctx)
    assert rr.cost == "score" and not hasattr(rr, "tail_calibration_")


def test_calibrated_cost_learns_from_the_model_refitted_on_held_out_training_data(setup: tuple) -> None:
    cfg, X, protected, ctx = setup
    model, rr = fit_candidate(cfg.models[1], X, ctx)
    # the same steps by hand: 20% of each user's training interactions held out, seeded by the run
    vc = validation_candidates(lambda m: EASE(l2=50.0).fit(m), X, n_candidates=N_CAND, random_state=SEED)
    by_hand = ExposureBudgetReranker(strength=0.2, cost="calibrated").fit(
        X, protected_items=protected, validation_ids=vc.ids, validation_scores=vc.scores,
        validation_relevant=vc.relevant,
    )
    users = np.arange(X.shape[0])
    ids, scores = model.recommend(users, N_CAND)
    out = rr.rerank(ids, scores, users=users, k=K)[0]
    np.testing.assert_array_equal(out, by_hand.rerank(ids, scores, users=users, k=K)[0])
    assert group_exposure(out, np.where(protected, "tail", "head")).exposure_share["tail"] >= 0.2 - 1e-9


def test_a_damped_first_stage_is_refitted_with_its_damping(setup: tuple) -> None:
    cfg, X, protected, ctx = setup
    model, rr = fit_candidate(cfg.models[2], X, ctx)
    assert isinstance(model, ReweightedRecommender) and model.estimator_.binary is False

    def damped(m: object) -> ReweightedRecommender:
        return ReweightedRecommender(EASE(l2=50.0, binary=False), popularity_damping=0.1).fit(m)

    vc = validation_candidates(damped, X, n_candidates=N_CAND, random_state=SEED)
    by_hand = ExposureBudgetReranker(strength=0.2, cost="calibrated").fit(
        X, protected_items=protected, validation_ids=vc.ids, validation_scores=vc.scores,
        validation_relevant=vc.relevant,
    )
    np.testing.assert_array_equal(rr.tail_calibration_, by_hand.tail_calibration_)
    np.testing.assert_array_equal(rr.head_calibration_, by_hand.head_calibration_)
