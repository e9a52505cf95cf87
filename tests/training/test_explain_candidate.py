"""explain_candidate's inputs and its SHAP summary, without a full run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recsys.data import generate_synthetic
from recsys.explain import HistoryShapExplainer
from recsys.models import EASE, Popularity
from training._explain import explain_candidate
from training._schema import ExplainConfig


@pytest.fixture(scope="module")
def data():
    return generate_synthetic(n_users=60, n_items=30, n_interactions=600, random_state=3)


def _explain(model, ds, sensitive):
    users = np.arange(60)
    ids, _ = model.recommend(users, 3)
    return explain_candidate(
        model, ids, users,
        user_ids=ds.interactions.user_ids, item_ids=ds.interactions.item_ids,
        titles=ds.items["title"].to_numpy(), sensitive=sensitive,
        config=ExplainConfig(n_users=5, lime_samples=30), seed=0,
    )


def test_sensitive_labels_must_cover_every_user(data):
    model = EASE(l2=10.0).fit(data.interactions.binary())
    with pytest.raises(ValueError, match=r"sensitive\['gender'\]: expected one label per user "
                                         r"\(shape \(60,\)\), got shape \(59,\)"):
        _explain(model, data, {"gender": data.users["gender"].to_numpy()[:59]})


def test_the_summary_is_the_mean_absolute_shap_per_history_item(data, tmp_path: Path):
    model = EASE(l2=10.0).fit(data.interactions.binary())
    result = _explain(model, data, {"gender": data.users["gender"].to_numpy()})
    shap = result.frame[result.frame["method"] == "shap"]
    assert len(shap) == 15  # 5 users x 3 items
    summary = result.summary
    assert list(summary.columns) == ["feature", "mean_abs_shap"]
    assert 0 < len(summary) <= 15
    assert summary["mean_abs_shap"].is_monotonic_decreasing
    assert set(summary["feature"]) <= set(data.items["title"])
    # the largest bar, by hand: sum |SHAP| of that history item over the 15 explanations / 15
    title_of = dict(zip(range(30), data.items["title"]))
    total = {}
    for user in shap["user_id"].unique():
        items = shap.loc[shap["user_id"] == user].sort_values("rank")["item_id"].to_numpy()
        for e in HistoryShapExplainer(model).explain(int(user), items):
            for f, w in zip(e.features, e.weights):
                total[title_of[f]] = total.get(title_of[f], 0.0) + abs(w)
    best = max(total, key=total.get)
    assert summary.loc[0, "feature"] == best
    assert summary.loc[0, "mean_abs_shap"] == pytest.approx(total[best] / 15)
    assert result.save_summary_plot(tmp_path / "plots" / "shap_summary.png")
    assert (tmp_path / "plots" / "shap_summary.png").read_bytes()[:4] == b"\x89PNG"


def test_popularity_has_no_shap_summary_to_plot(data, tmp_path: Path):
    model = Popularity().fit(data.interactions.binary())
    result = _explain(model, data, {"gender": data.users["gender"].to_numpy()})
    assert len(result.frame) == 15 and result.summary.empty
    assert not result.save_summary_plot(tmp_path / "shap_summary.png")
    assert not (tmp_path / "shap_summary.png").exists()


@pytest.mark.parametrize("make", [lambda: EASE(l2=10.0), Popularity], ids=["ease", "popularity"])
def test_models_that_never_read_an_attribute_log_a_zero_flip_rate_for_each(data, make):
    model = make().fit(data.interactions.binary())
    sensitive = {"gender": data.users["gender"].to_numpy(),
                 "age group": data.users["age_group"].to_numpy()}
    metrics = _explain(model, data, sensitive).metrics
    counterfactual = {k: v for k, v in metrics.items() if "counterfactual" in k}
    assert counterfactual == {
        **{f"explain.counterfactual_{m}{a}": 0.0 for m in ("flip_rate", "change") for a in ("", ".gender", ".age_group")},
        "explain.counterfactual_n_users": 5.0,  # the sample the gate's binomial test is over
    }
