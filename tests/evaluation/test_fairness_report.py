"""fairness_metrics and FairnessReport: a hand-worked case, flat names, JSON, plots, errors."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from evaluation import (
    FairnessReport,
    RelevanceReport,
    evaluate_rankings,
    fairness_metrics,
    plot_exposure,
    plot_group_quality,
    sanitize_label,
)

A = 1 / math.log2(3)  # attention at rank 2

# 6 users x 6 items. Training counts per item [4, 3, 1, 1, 1, 0] (10 in all):
# with head_share 0.8 the head is items {0, 1, 2} (4 + 3 < 8 <= 4 + 3 + 1), the tail {3, 4, 5}.
TRAIN = sp.csr_matrix(
    (np.ones(10), ([0, 0, 1, 1, 2, 2, 3, 3, 4, 4], [0, 1, 0, 1, 0, 2, 0, 3, 1, 4])), shape=(6, 6)
)
# held out: u0 {3}, u1 {2}, u2 {5}, u3 {1}, u4 {0}; u5 nothing (not evaluated)
RELEVANT = sp.csr_matrix((np.ones(5), ([0, 1, 2, 3, 4], [3, 2, 5, 1, 0])), shape=(6, 6))
IDS = np.array([[3, 0], [0, 1], [5, -1], [2, 0], [0, 2], [4, 3]])
USERS = np.arange(6)
USERS_TABLE = pd.DataFrame({
    "user_id": [10, 11, 12, 13, 14, 15],
    "gender": ["F", "F", "F", "M", "M", "M"],
    "age_group": ["<18", "<18", "56+", "56+", "18-24", "18-24"],
})
ITEMS_TABLE = pd.DataFrame({"item_id": list(range(100, 106)), "category": list("xxyyzz")})


def _fairness(report: RelevanceReport | None = None, **kw) -> FairnessReport:
    args = {
        "report": report if report is not None else evaluate_rankings(
            IDS, users=USERS, relevant=RELEVANT, train=TRAIN
        ),
        "ids": IDS,
        "users": USERS,
        "users_table": USERS_TABLE,
        "items_table": ITEMS_TABLE,
        "train": TRAIN,
        "relevant": RELEVANT,
        "sensitive": ["gender", "age_group"],
        **kw,
    }
    return fairness_metrics(**args)


def _small_report() -> RelevanceReport:
    # hits: u0 rank 1, u1 none, u2 rank 1, u3 none, u4 rank 1 (one relevant item each)
    hit = np.array([1.0, 0.0, 1.0, 0.0, 1.0])
    return RelevanceReport(
        k=2, users=np.arange(5), per_user={"ndcg": hit, "recall": hit}, catalog={}
    )


def test_flat_names_exactly():
    flat = _fairness(_small_report()).flat()
    expected = set()
    for attr, groups in (("gender", ["F", "M"]), ("age_group", ["18-24", "56plus", "lt18"])):
        for metric in ("ndcg_at_2", "recall_at_2"):
            expected |= {f"{attr}.{metric}.{g}" for g in groups}
            expected |= {f"{attr}.{metric}.difference", f"{attr}.{metric}.ratio"}
            expected.add(f"disparate_impact.{attr}.{metric}")
        expected |= {f"{attr}.contains_tail_at_2.{g}" for g in groups}
        expected |= {
            f"demographic_parity_difference.{attr}",
            f"demographic_parity_ratio.{attr}",
            f"disparate_impact.{attr}",
            f"four_fifths_violated.{attr}",
            f"equal_opportunity_difference.{attr}",
            f"equal_opportunity_ratio.{attr}",
            f"bias_amplification.{attr}.category.mean_abs",
            f"bias_amplification.{attr}.category.gap",
        }
    for g in ("head", "tail"):
        expected |= {
            f"exposure_share.popularity.{g}",
            f"catalog_share.popularity.{g}",
            f"relevant_share.popularity.{g}",
        }
    expected |= {
        "exposure_ratio.popularity",
        "contains_rate_at_2.popularity.tail",
        "list_share_at_2.popularity.tail",
        "long_tail_share_at_2",
    }
    assert set(flat) == expected
    assert "gender.ndcg_at_2.F" in flat and "age_group.ndcg_at_2.lt18" in flat
    assert all(isinstance(v, float) for v in flat.values())


def test_hand_worked_values():
    fr = _fairness(amplification_weighting="interaction")
    flat = fr.flat()
    # consumer side over u0..u4: F = u0, u1, u2 with ndcg 1, 0, 1; M = u3, u4 with 0, 1
    assert flat["gender.ndcg_at_2.F"] == pytest.approx(2 / 3)
    assert flat["gender.ndcg_at_2.M"] == 0.5
    assert flat["gender.ndcg_at_2.difference"] == pytest.approx(1 / 6)
    assert flat["gender.ndcg_at_2.ratio"] == pytest.approx(0.75)
    assert flat["disparate_impact.gender.ndcg_at_2"] == pytest.approx(0.75)
    assert flat["equal_opportunity_difference.gender"] == pytest.approx(1 / 6)
    assert flat["equal_opportunity_ratio.gender"] == pytest.approx(0.75)
    # a tail item in the top 2: u0 (item 3) and u2 (item 5) -> F 2/3, M 0
    assert flat["gender.contains_tail_at_2.F"] == pytest.approx(2 / 3)
    assert flat["gender.contains_tail_at_2.M"] == 0.0
    assert flat["demographic_parity_difference.gender"] == pytest.approx(2 / 3)
    assert flat["demographic_parity_ratio.gender"] == 0.0
    assert flat["disparate_impact.gender"] == 0.0
    assert flat["four_fifths_violated.gender"] == 1.0
    # age: lt18 = u0, u1 (1/2); 56plus = u2, u3 (1/2); 18-24 = u4 (0)
    assert flat["age_group.contains_tail_at_2.lt18"] == 0.5
    assert flat["age_group.contains_tail_at_2.56plus"] == 0.5
    assert flat["age_group.contains_tail_at_2.18-24"] == 0.0
    assert flat["contains_rate_at_2.popularity.tail"] == pytest.approx(2 / 5)
    # tail shares per evaluated list: 1/2, 0, 1/1, 0, 0
    assert flat["list_share_at_2.popularity.tail"] == pytest.approx(0.3)

    # item side over all six lists: 6 entries at rank 1, 5 at rank 2 -> total 6 + 5A;
    # head {0, 1, 2}: item 0 2 + 2A, item 1 A, item 2 1 + A; tail {3, 4, 5}: 3 + A
    tail = (3 + A) / (6 + 5 * A)
    assert flat["exposure_share.popularity.tail"] == pytest.approx(tail)
    assert flat["exposure_share.popularity.head"] == pytest.approx(1 - tail)
    assert flat["catalog_share.popularity.tail"] == 0.5
    assert flat["relevant_share.popularity.tail"] == pytest.approx(2 / 5)  # items 3, 5 of 5
    assert flat["exposure_ratio.popularity"] == pytest.approx((3 + A) / (3 + 4 * A))
    assert flat["long_tail_share_at_2"] == pytest.approx(tail)

    # bias amplification by gender over categories x {0,1}, y {2,3}, z {4,5}:
    # train F [5/6, 1/6, 0], M [1/2, 1/4, 1/4]; recs F [3/5, 1/5, 1/5], M [1/3, 1/2, 1/6]
    ba = fr.amplification["gender"]
    np.testing.assert_allclose(ba.train_share, [[5 / 6, 1 / 6, 0], [1 / 2, 1 / 4, 1 / 4]])
    np.testing.assert_allclose(ba.rec_share, [[3 / 5, 1 / 5, 1 / 5], [1 / 3, 1 / 2, 1 / 6]])
    assert flat["bias_amplification.gender.category.mean_abs"] == pytest.approx(29 / 180)
    # gaps F - M: train [1/3, -1/12, -1/4], recs [4/15, -3/10, 1/30] -> mean of |rec| - |train|
    assert flat["bias_amplification.gender.category.gap"] == pytest.approx(-1 / 45)


def test_item_group_from_a_column_and_no_category():
    fr = _fairness(_small_report(), item_group="category", protected_group="z", item_category=None)
    flat = fr.flat()
    assert {n for n in flat if n.startswith("exposure_share.")} == {
        "exposure_share.category.x", "exposure_share.category.y", "exposure_share.category.z"
    }
    # a z item (4 or 5) in the top 2: u2 only of the evaluated u0..u4
    assert flat["contains_rate_at_2.category.z"] == pytest.approx(1 / 5)
    assert flat["gender.contains_z_at_2.F"] == pytest.approx(1 / 3)
    assert not any(n.startswith("bias_amplification") for n in flat)
    assert "long_tail_share_at_2" in flat  # always the popularity tail


def test_bootstrap_intervals_reach_the_json_artifact():
    fr = _fairness(_small_report(), sensitive=["gender"], n_boot=5, random_state=1)
    doc = fr.to_json()
    json.dumps(doc, allow_nan=False)
    ndcg = doc["consumer"]["gender"]["metrics"]["ndcg"]
    assert set(ndcg["ci"]) == {"F", "M"}
    for group, (low, high) in ndcg["ci"].items():
        assert low <= ndcg["by_group"][group] <= high
    assert doc["consumer"]["gender"]["ci_level"] == 0.95


def test_to_json_tables():
    doc = _fairness().to_json()
    text = json.dumps(doc, allow_nan=False)  # nan is written as null
    assert json.loads(text) == doc
    assert doc["k"] == 2
    gender = doc["consumer"]["gender"]
    assert gender["counts"] == {"F": 3, "M": 2}
    assert gender["metrics"]["ndcg"]["ci"] is None
    assert gender["outcome"]["four_fifths_violated"] is True
    assert set(doc["items"]["exposure_share"]) == {"head", "tail"}
    amp = doc["bias_amplification"]["gender"]
    assert amp["groups"] == ["F", "M"] and amp["categories"] == ["x", "y", "z"]
    assert amp["train_share"][0] == pytest.approx([5 / 6, 1 / 6, 0.0])


# ---------------------------------------------------------------- sanitizing
@pytest.mark.parametrize(
    ("label", "name"),
    [
        ("<18", "lt18"),
        ("56+", "56plus"),
        ("18-24", "18-24"),
        ("Sci Fi", "Sci_Fi"),
        ("a  b\tc", "a_b_c"),
        ("<=5", "le5"),
        (">=5", "ge5"),
        ("a.b/c", "a_b_c"),
        ("Children's", "Children_s"),
        ("", "empty"),
        (3, "3"),
    ],
)
def test_sanitize_label(label, name):
    assert sanitize_label(label) == name


def test_colliding_labels_are_an_error():
    table = USERS_TABLE.assign(gender=["a b", "a_b", "a b", "x", "x", "x"])
    fr = _fairness(_small_report(), users_table=table, sensitive=["gender"])
    with pytest.raises(ValueError, match=r"group labels 'a b' and 'a_b' both sanitize to 'a_b'"):
        fr.flat()


# --------------------------------------------------------------------- plots
def test_plot_group_quality_bars_with_error_bars():
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.container import BarContainer
    from matplotlib.figure import Figure

    fr = _fairness(_small_report(), n_boot=5)
    fig = plot_group_quality(fr, "ndcg")
    assert isinstance(fig, Figure) and isinstance(fig.canvas, FigureCanvasAgg)
    assert [len(ax.patches) for ax in fig.axes] == [2, 3]
    (bars,) = [c for c in fig.axes[0].containers if isinstance(c, BarContainer)]
    assert bars.errorbar is not None
    assert [p.get_height() for p in bars.patches] == pytest.approx([2 / 3, 0.5])
    message = r"metric: expected one of \['ndcg', 'recall'\], got 'map'"
    with pytest.raises(ValueError, match=message):
        plot_group_quality(fr, "map")


def test_plot_exposure_bars():
    fig = plot_exposure(_fairness(_small_report()))
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["head", "tail"]
    assert len(ax.patches) == 6  # exposure, catalogue and relevant share per group
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["exposure", "catalogue", "relevant"]


# -------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sensitive": "gender"}, r"sensitive: expected a sequence of column names, got 'gender'"),
        (
            {"sensitive": ["income"]},
            r"users_table: no column 'income'; available: \['user_id', 'gender', 'age_group'\]",
        ),
        ({"item_group": "provider"}, r"items_table: no column 'provider'"),
        (
            {"protected_group": "niche"},
            r"protected_group: expected one of the 'popularity' groups \['head', 'tail'\], "
            r"got 'niche'",
        ),
        (
            {"users_table": USERS_TABLE.iloc[:3]},
            r"users_table: expected one row per internal index \(6\), got 3",
        ),
        ({"ids": IDS[:, :1]}, r"ids: expected at least report.k = 2 columns, got 1"),
        (
            {"users": USERS[::-1].copy()},
            r"report: its users are not the rows of users with a relevant item",
        ),
        ({"train": TRAIN[:, :5]}, r"train: expected the shape of relevant \(6, 6\), got \(6, 5\)"),
    ],
)
def test_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        _fairness(_small_report(), **kwargs)
