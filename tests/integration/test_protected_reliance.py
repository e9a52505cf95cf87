"""Evidence for explain.protected_reliance and explain.counterfactual_flip_rate on planted bias.

The generator plants the bias on category taste (users of group F never pick
cat_0 at ``bias_strength=1``). A two-stage ranker (gradient boosting, so it can
learn "F and cat_0"; popularity candidates; three categories and no hidden
niches, so that cat_0 pairs are common and a user's few interactions reveal
little of their taste) is given gender as a feature, or not. The numbers are
the run's metrics, computed by ``explain_candidate`` (60 sampled users, top-10
lists).

Measured over generator seeds 0-4 by benchmarks/protected_reliance.py (this test
uses seed 0):

* reliance, with gender, planted bias:    0.118, 0.108, 0.083, 0.046, 0.053
* reliance, with gender, no planted bias: 0.032, 0.016, 0.024, 0.019, 0.018 (fitting noise)
* reliance, without gender:               0.0 on every seed (no pair feature is a proxy of
  gender or age group at the AUC 0.6 threshold, so no feature counts at all)
* flip rate (top-10), with gender, planted bias:    0.967, 0.700, 0.817, 0.733, 0.900
  (change, the mean largest 1 - Jaccard:            0.341, 0.178, 0.304, 0.221, 0.267)
* flip rate, with gender, no planted bias:          0.317, 0.350, 0.967, 0.600, 0.233
  (change:                                          0.101, 0.076, 0.298, 0.137, 0.042)
* flip rate and change, without gender:             0.0 on every seed (re-ranked, not assumed)

"High" is relative for the reliance: most attribution mass sits on
popularity, activity and the first-stage score, and a user's own history
already carries much of the planted preference. Its thresholds sit below the
lowest measured value (0.046) and the lowest ratio to the no-bias control
(2.4). The flip rate is high: for 70-97% of the users the top-10 depends on
gender. It measures whether decisions use the attribute, not whether the data
justified it: trees given gender use it on data without a planted bias too
(seed 2: 0.967), so no control ratio is asserted for it. Its floors (0.8 for
the flip rate, 0.25 for the change) sit below seed 0's 0.967 and 0.341.
"""

from __future__ import annotations

import pytest

from benchmarks.protected_reliance import explained

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:fairlearn")

SEED = 0
FLIP_FLOOR = 0.8  # seed 0 measured 0.967 (58 of 60 users)
CHANGE_FLOOR = 0.25  # seed 0 measured 0.341


def _explained(*, bias: float, use_sensitive_feature: bool, k: int) -> tuple[dict[str, float], str]:
    return explained(seed=SEED, bias=bias, use_sensitive_feature=use_sensitive_feature, k=k)


def test_a_model_given_gender_relies_on_it_and_the_same_model_without_it_does_not():
    # top-10 lists (the run's default k) for the flip rates; the reliance covers every
    # candidate pair whatever k, so the control is explained on top-1 lists (LIME is faster),
    # and so is the model without gender: it reads no group, so no list of any length can
    # change (k = 10 gives the same exact 0s, in 15 s more)
    with_metrics, note_with = _explained(bias=1.0, use_sensitive_feature=True, k=10)
    without_metrics, note_without = _explained(bias=1.0, use_sensitive_feature=False, k=1)
    control_metrics, _ = _explained(bias=0.0, use_sensitive_feature=True, k=1)
    with_gender = with_metrics["explain.protected_reliance"]
    without = without_metrics["explain.protected_reliance"]
    control = control_metrics["explain.protected_reliance"]
    assert "sensitive features ['sensitive=F', 'sensitive=M']" in note_with
    assert note_without.endswith("sensitive features [], proxies []")
    assert with_gender >= 0.04
    assert without <= 0.005
    assert with_gender > 10 * without
    # the reliance comes from the planted bias, not from trees fitting noise on gender
    assert with_gender >= 2 * control

    # the decisions: nearly every sampled user's top-10 changes with her gender ...
    assert with_metrics["explain.counterfactual_flip_rate.gender"] >= FLIP_FLOOR
    assert with_metrics["explain.counterfactual_change.gender"] >= CHANGE_FLOOR
    assert with_metrics["explain.counterfactual_flip_rate"] == (
        with_metrics["explain.counterfactual_flip_rate.gender"])
    # ... never with her age group, which the model is not given
    assert with_metrics["explain.counterfactual_flip_rate.age_group"] == 0.0
    # and without the feature no list changes at all: measured (re-ranked), not assumed
    for name in ("flip_rate", "change"):
        for attribute in ("", ".gender", ".age_group"):
            assert without_metrics[f"explain.counterfactual_{name}{attribute}"] == 0.0
