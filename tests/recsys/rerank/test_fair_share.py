"""FA*IR (FairShareReranker): the mtable and where protected items are forced up."""

from __future__ import annotations

import re

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from recsys.rerank import FairShareReranker
from recsys.rerank._fair_share import fair_mtable

N_ITEMS = 20
X = sp.csr_matrix(np.ones((1, N_ITEMS), dtype=np.float32))
USER = np.array([0])


def _rerank(protected: list[int], order: list[int], k: int, **params: float) -> list[int]:
    """Re-rank ``order`` (best first, scores descending) for one user; the output ids."""
    mask = np.zeros(N_ITEMS, dtype=bool)
    mask[protected] = True
    rr = FairShareReranker(**params).fit(X, protected_items=mask)
    ids = np.array([order])
    scores = np.arange(len(order), 0, -1, dtype=np.float64)[None, :]
    return rr.rerank(ids, scores, users=USER, k=k)[0][0].tolist()


def test_mtable_for_p_half_alpha_tenth() -> None:
    # binom.ppf(0.1, i, 0.5) is the smallest m with P[Bin(i, 0.5) <= m] >= 0.1:
    #   i=1: P[0] = 1/2              >= 0.1 -> 0
    #   i=2: P[0] = 1/4              >= 0.1 -> 0
    #   i=3: P[0] = 1/8  = 0.125     >= 0.1 -> 0
    #   i=4: P[0] = 1/16 = 0.0625    <  0.1;  P[<=1] = 5/16 = 0.3125 -> 1
    #   i=5: P[0] = 1/32 = 0.03125   <  0.1;  P[<=1] = 6/32 = 0.1875 -> 1
    assert fair_mtable(5, 0.5, 0.1).tolist() == [0, 0, 0, 1, 1]


def test_mtable_at_the_ends_of_p() -> None:
    assert fair_mtable(4, 0.0, 0.1).tolist() == [0, 0, 0, 0]
    assert fair_mtable(4, 1.0, 0.1).tolist() == [1, 2, 3, 4]  # Bin(i, 1) is always i


def test_protected_item_is_forced_up_where_the_mtable_requires() -> None:
    # items 0-4 not protected, 5 and 6 protected, candidates in id order; mtable
    # [0, 0, 0, 1, 1]: positions 1-3 take the best candidates (0, 1, 2); position 4
    # needs one protected item, so 5 comes up; position 5 needs one, has one: 3.
    assert _rerank([5, 6], [0, 1, 2, 3, 4, 5, 6], k=5) == [0, 1, 2, 5, 3]


def test_protected_items_follow_the_ten_position_mtable() -> None:
    # binom.ppf(0.1, i, 0.5) for i = 1..10 is [0, 0, 0, 1, 1, 1, 2, 2, 3, 3]
    # (e.g. i=7: P[<=1] = 8/128 = 0.0625 < 0.1 <= P[<=2] = 29/128).
    assert fair_mtable(10, 0.5, 0.1).tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 3, 3]
    # items 0-9 not protected, 10-14 protected: a protected item enters at positions
    # 4, 7 and 9, where the required count goes up; the rest is the input order.
    order = list(range(15))
    expected = [0, 1, 2, 10, 3, 4, 11, 5, 12, 6]
    assert _rerank(list(range(10, 15)), order, k=10) == expected


def test_a_list_that_meets_the_mtable_is_unchanged() -> None:
    # protected items 2 and 5 already sit within the first 4 and 7 positions
    order = [0, 1, 2, 3, 4, 5, 6, 7]
    assert _rerank([2, 5], order, k=7) == [0, 1, 2, 3, 4, 5, 6]


def test_when_protected_candidates_run_out_the_best_others_follow() -> None:
    # strength 1 requires a protected item everywhere, but only item 7 is one
    assert _rerank([7], list(range(8)), k=4, strength=1.0) == [7, 0, 1, 2]


def test_strength_one_fills_every_slot_with_protected_items_in_input_order() -> None:
    protected = [1, 4, 6, 7, 9, 11]
    out = _rerank(protected, list(range(12)), k=5, strength=1.0)
    assert out == [1, 4, 6, 7, 9]


def test_a_larger_alpha_demands_protected_items_earlier() -> None:
    # binom.ppf(0.3, i, 0.5) for i = 1..3: P[0] = 0.5 >= 0.3 -> 0; P[0] = 0.25 < 0.3 <=
    # P[<=1] = 0.75 -> 1; P[0] = 0.125 < 0.3 <= P[<=1] = 0.5 -> 1 (all 0 at alpha 0.1)
    assert fair_mtable(3, 0.5, 0.3).tolist() == [0, 1, 1]
    assert _rerank([5], list(range(6)), k=3, alpha=0.3) == [0, 5, 1]


@pytest.mark.parametrize("alpha", [0, 1, 0.0, 1.5, True, None])
def test_alpha_must_be_strictly_between_zero_and_one(alpha: object) -> None:
    with pytest.raises(
        ValueError, match=re.escape(f"alpha: expected a float in (0, 1), got {alpha!r}")
    ):
        FairShareReranker(alpha=alpha).fit(X, protected_items=np.zeros(N_ITEMS, dtype=bool))


def test_protected_items_must_be_boolean() -> None:
    with pytest.raises(
        ValueError,
        match=re.escape(
            f"protected_items: expected a boolean array with one entry per item ({N_ITEMS},), "
            f"got dtype int64 and shape ({N_ITEMS},)"
        ),
    ):
        FairShareReranker().fit(X, protected_items=np.zeros(N_ITEMS, dtype=np.int64))


@settings(max_examples=60, deadline=None)
@given(
    protected=st.lists(st.booleans(), min_size=N_ITEMS, max_size=N_ITEMS),
    strength=st.floats(0.05, 1.0),
    alpha=st.floats(0.01, 0.5),
    k=st.integers(1, 12),
    seed=st.integers(0, 2**16),
)
def test_every_prefix_meets_the_mtable_and_groups_keep_their_order(
    protected: list[bool], strength: float, alpha: float, k: int, seed: int
) -> None:
    mask = np.array(protected)
    order = np.random.default_rng(seed).permutation(N_ITEMS)[:15]
    rr = FairShareReranker(strength=strength, alpha=alpha).fit(X, protected_items=mask)
    scores = np.linspace(1.0, 0.0, order.size)[None, :]
    out = rr.rerank(order[None, :], scores, users=USER, k=k)[0][0]
    mtable = fair_mtable(k, strength, alpha)
    n_protected = int(mask[order].sum())
    prefix_protected = np.cumsum(mask[out])
    assert (prefix_protected >= np.minimum(mtable, n_protected)).all()
    # each group's items appear in their input order
    for group in (True, False):
        chosen = out[mask[out] == group]
        in_order = order[mask[order] == group]
        assert chosen.tolist() == in_order[: chosen.size].tolist()
