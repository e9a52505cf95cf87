"""The per-group quality plot: groups in reading order, their sizes, intervals when there are some, titles in view."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.container import ErrorbarContainer

from evaluation import ExposureReport, FairnessReport, group_order, group_quality, plot_exposure, plot_group_quality

AGES = ["56+", "25-34", "<18", "18-24", "50-55", "35-44", "45-49"]


def _report(n_boot: int | None) -> FairnessReport:
    rng = np.random.default_rng(0)
    labels = pd.Series(np.repeat(AGES, [5, 40, 3, 30, 8, 20, 9]), name="age_group")
    gq = group_quality({"ndcg": rng.random(labels.size)}, labels, n_boot=n_boot, random_state=0)
    ex = ExposureReport(groups=["head", "tail"], exposure_share={"head": 0.9, "tail": 0.1},
                        catalog_share={"head": 0.2, "tail": 0.8}, relevant_share=None, exposure_ratio=0.03)
    return FairnessReport(k=10, quality={"age_group": gq, "age_group_2": gq}, parity={}, equal_opportunity={},
                          item_group="popularity_group", protected_group="tail", exposure=ex, contains_rate=0.0,
                          list_share=0.0, long_tail_share=0.1, item_category=None, amplification={})


def test_age_buckets_are_in_reading_order() -> None:
    assert group_order(AGES + ["unknown"]) == ["<18", "18-24", "25-34", "35-44", "45-49", "50-55", "56+", "unknown"]
    assert group_order(["lt18", "56plus", "18-24"]) == ["lt18", "18-24", "56plus"]  # sanitised labels too


def test_bars_carry_group_sizes_and_intervals() -> None:
    ax = plot_group_quality(_report(n_boot=50), "ndcg").axes[0]
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert ticks == ["<18\nn=3", "18-24\nn=30", "25-34\nn=40", "35-44\nn=20", "45-49\nn=9", "50-55\nn=8", "56+\nn=5"]
    assert "95% bootstrap intervals" in ax.get_title().replace("\n", " ")
    errorbars = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    assert len(errorbars[0].lines[2][0].get_segments()) == 7  # one error bar per group
    plain = plot_group_quality(_report(n_boot=None), "ndcg").axes[0]
    assert "no intervals (set fairness.n_boot)" in plain.get_title().replace("\n", " ")


def test_titles_fit_inside_the_figure() -> None:
    for fig in (plot_group_quality(_report(n_boot=None), "ndcg"), plot_exposure(_report(n_boot=None))):
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        box = fig.bbox
        for ax in fig.axes:
            title = ax.title.get_window_extent(renderer)
            assert box.x0 <= title.x0 and title.x1 <= box.x1 and title.y1 <= box.y1, ax.get_title()
