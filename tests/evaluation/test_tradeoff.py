"""Mitigated model vs its unmitigated twin: gap changes and the levelling-down flag."""

from __future__ import annotations

import pytest

from evaluation import gap_change


def test_gap_closed_by_lowering_the_best_group_is_levelling_down() -> None:
    g = gap_change("gender", "ndcg", {"F": 0.30, "M": 0.40}, {"F": 0.30, "M": 0.32})
    assert g.best_group == "M" and g.worst_group == "F"
    assert g.gap_twin == pytest.approx(0.10)
    assert g.gap_mitigated == pytest.approx(0.02)
    assert g.levelling_down


def test_gap_closed_by_raising_the_worst_group_is_not() -> None:
    g = gap_change("gender", "ndcg", {"F": 0.30, "M": 0.40}, {"F": 0.36, "M": 0.39})
    assert not g.levelling_down


def test_gap_that_does_not_narrow_is_not_flagged_even_if_everyone_loses() -> None:
    g = gap_change("gender", "ndcg", {"F": 0.30, "M": 0.40}, {"F": 0.20, "M": 0.30})
    assert g.gap_mitigated == pytest.approx(g.gap_twin)
    assert not g.levelling_down


def test_changes_within_tolerance_are_not_flagged() -> None:
    g = gap_change("gender", "ndcg", {"F": 0.300, "M": 0.400}, {"F": 0.300, "M": 0.399}, tolerance=0.002)
    assert not g.levelling_down


def test_three_groups_use_the_twins_best_and_worst() -> None:
    twin = {"a": 0.2, "b": 0.3, "c": 0.5}
    mitigated = {"a": 0.2, "b": 0.3, "c": 0.35}
    g = gap_change("age", "ndcg", twin, mitigated)
    assert (g.best_group, g.worst_group) == ("c", "a")
    assert g.gap_mitigated == pytest.approx(0.15)
    assert g.levelling_down


def test_needs_two_groups_in_both() -> None:
    with pytest.raises(ValueError, match=r"gender: need at least two groups with a ndcg value in both models, got \['F'\]"):
        gap_change("gender", "ndcg", {"F": 0.3, "M": 0.4}, {"F": 0.3})
