"""CalibratedReranker (Steck 2018): p(c|u), the greedy trade-off and the KL it lowers."""

from __future__ import annotations

import re

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from recsys.rerank import CalibratedReranker
from recsys.rerank._calibration import calibration_kl

USER = np.array([0])


def test_fit_learns_the_weighted_category_distribution() -> None:
    # user 0: weight 2 on category 0, 1 + 1 on category 1, 1 on category 2 -> [2, 2, 1] / 5;
    # user 1 has no history -> all zero
    X = sp.csr_matrix(np.array([[2, 0, 1, 1, 1], [0, 0, 0, 0, 0]], dtype=np.float32))
    rr = CalibratedReranker().fit(X, item_category=np.array([0, 1, 1, 1, 2]))
    np.testing.assert_allclose(rr.user_category_dist_, [[0.4, 0.4, 0.2], [0, 0, 0]])
    assert rr.n_categories_ == 3


def test_calibration_kl_by_hand() -> None:
    # p = (1/2, 1/2), list all A: q~ = 0.99 * (1, 0) + 0.01 * p = (0.995, 0.005);
    # KL = 1/2 ln(0.5 / 0.995) + 1/2 ln(0.5 / 0.005) = 1/2 ln(100 / 1.99) = 1.958...
    kl = calibration_kl(np.array([[0.5, 0.5]]), np.array([[1.0, 0.0]]), 0.01)
    np.testing.assert_allclose(kl, [0.5 * np.log(100 / 1.99)])
    assert kl[0] == pytest.approx(1.95852, abs=1e-5)


# history: one item of category A (0), one of B (1) -> p = (1/2, 1/2); candidates 0-3
# are A and 4 is B, scores 5 > 4 > 3 > 2 > 1 -> relevance (1, 0.75, 0.5, 0.25, 0)
HALF_X = sp.csr_matrix(np.array([[0, 0, 0, 0, 0, 1, 1]], dtype=np.float32))
HALF_CATEGORY = np.array([0, 0, 0, 0, 1, 0, 1])
HALF_IDS = np.array([[0, 1, 2, 3, 4]])
HALF_SCORES = np.array([[5.0, 4.0, 3.0, 2.0, 1.0]])


def _half(strength: float, k: int = 2) -> list[int]:
    rr = CalibratedReranker(strength=strength).fit(HALF_X, item_category=HALF_CATEGORY)
    return rr.rerank(HALF_IDS, HALF_SCORES, users=USER, k=k)[0][0].tolist()


@pytest.mark.parametrize(
    ("strength", "expected"), [(0.0, [0, 1]), (0.25, [0, 1]), (0.3, [0, 4]), (0.9, [0, 4])]
)
def test_a_b_item_enters_the_top_two_when_strength_is_high(
    strength: float, expected: list[int]
) -> None:
    # Step 1: adding A or B gives the same KL (symmetric p), so item 0 (relevance 1) wins.
    # Step 2: another A -> list (A, A), KL = 1.958 (see above); B -> (A, B), q = p, KL = 0.
    # Gain of item 1 (A): (1 - s) * 0.75 - s * 1.958; of item 4 (B): (1 - s) * 0 - s * 0.
    # B wins iff s > 0.75 / (0.75 + 1.958) = 0.277.
    assert _half(strength) == expected


def test_strength_one_matches_the_history_mix() -> None:
    # pure calibration: two A and two B in the top 4, each group in input order
    assert _half(1.0, k=4) == [0, 4, 1, 2]  # only one B candidate: the rest are A


def test_users_without_history_keep_the_input_order() -> None:
    X = sp.csr_matrix(np.array([[0, 0, 0, 0, 0, 1, 1], [0, 0, 0, 0, 0, 0, 0]], dtype=np.float32))
    rr = CalibratedReranker(strength=1.0).fit(X, item_category=HALF_CATEGORY)
    ids = np.repeat(HALF_IDS, 2, axis=0)
    out = rr.rerank(ids, np.repeat(HALF_SCORES, 2, axis=0), users=np.array([0, 1]), k=3)[0]
    assert out.tolist() == [[0, 4, 1], [0, 1, 2]]


@pytest.mark.parametrize("smoothing", [0, 0.0, 1.5, -0.1, None])
def test_smoothing_must_be_in_the_half_open_unit_interval(smoothing: object) -> None:
    with pytest.raises(
        ValueError, match=re.escape(f"smoothing: expected a float in (0, 1], got {smoothing!r}")
    ):
        CalibratedReranker(smoothing=smoothing).fit(HALF_X, item_category=HALF_CATEGORY)


def test_category_codes_must_be_non_negative_integers() -> None:
    with pytest.raises(
        ValueError, match=re.escape("item_category: expected category codes >= 0, got -1")
    ):
        CalibratedReranker().fit(HALF_X, item_category=np.array([0, 0, 0, 0, -1, 0, 1]))
    with pytest.raises(
        ValueError,
        match=re.escape(
            "item_category: expected an integer array with one entry per item (7,), "
            "got dtype float64 and shape (7,)"
        ),
    ):
        CalibratedReranker().fit(HALF_X, item_category=HALF_CATEGORY.astype(float))


# ------------------------------------------------------------ KL against strength
def _list_kl(rr: CalibratedReranker, out: np.ndarray, users: np.ndarray) -> np.ndarray:
    """KL(p(.|u) || q~) of each chosen list (uniform weight per item), as the re-ranker uses it."""
    q = np.zeros((out.shape[0], rr.n_categories_))
    for col in range(out.shape[1]):
        np.add.at(q, (np.arange(out.shape[0]), rr.item_category_[out[:, col]]), 1.0)
    q /= out.shape[1]
    return calibration_kl(rr.user_category_dist_[users], q, rr.smoothing)


def _random_case(seed: int, n_users: int, n_items: int, n_cand: int, n_cat: int) -> tuple:
    rng = np.random.default_rng(seed)
    dense = (rng.random((n_users, n_items)) < 0.2) * rng.integers(1, 5, (n_users, n_items))
    X = sp.csr_matrix(dense.astype(np.float32))
    category = rng.integers(0, n_cat, n_items)
    ids = np.argsort(rng.random((n_users, n_items)), axis=1)[:, :n_cand]
    scores = -np.sort(-rng.random((n_users, n_cand)), axis=1)
    return X, category, ids, scores


STRENGTHS = np.linspace(0.0, 1.0, 11)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_cand=st.integers(1, 12),
    n_cat=st.integers(1, 5),
    smoothing=st.sampled_from([0.01, 0.1, 0.5]),
)
def test_kl_of_the_first_choice_falls_as_strength_grows(
    seed: int, n_cand: int, n_cat: int, smoothing: float
) -> None:
    # For one greedy step (k = 1) the choice maximises (1 - s) * rel - s * KL exactly, so
    # the KL of the choice cannot rise with s (compare the optimality of the choices at s
    # and s' > s and add: (s' - s) * (KL(s) - KL(s')) >= 0).
    n_users = 30
    X, category, ids, scores = _random_case(seed, n_users, 15, n_cand, n_cat)
    rr = CalibratedReranker(smoothing=smoothing).fit(X, item_category=category)
    users = np.arange(n_users)
    kls = np.stack(
        [
            _list_kl(rr, rr.set_params(strength=s).rerank(ids, scores, users=users, k=1)[0], users)
            for s in STRENGTHS
        ]
    )
    assert (np.diff(kls, axis=0) <= 1e-12).all()


# derandomize: an observed, not a proven, property (no failure in 1,500 seeds tried),
# so the examples are fixed and the test cannot flake
@settings(max_examples=25, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**32 - 1), k=st.integers(2, 6))
def test_mean_kl_of_the_lists_falls_as_strength_grows(seed: int, k: int) -> None:
    # Greedy lists (k > 1) are not monotone for every single user (see the pinned case
    # below), so over many users the mean is checked.
    n_users = 300
    X, category, ids, scores = _random_case(seed, n_users, 40, 20, 4)
    rr = CalibratedReranker(smoothing=0.01).fit(X, item_category=category)
    users = np.arange(n_users)
    mean_kl = [
        _list_kl(rr, rr.set_params(strength=s).rerank(ids, scores, users=users, k=k)[0], users)
        .mean()
        for s in STRENGTHS
    ]
    assert (np.diff(mean_kl) <= 1e-12).all()
    assert mean_kl[-1] < mean_kl[0]


def test_greedy_lists_are_not_monotone_for_every_user() -> None:
    # Pinned counterexample found by random search (values from a run, not by hand).
    # p = (2/13, 0, 11/13). At strength 0.4 the greedy takes the category-0 item 3 at
    # step 2, which makes a second category-2 item worth less at step 3 than the
    # relevance of item 0 (category 1, absent from the history); at 0.375 it takes
    # item 0 at step 2 and item 4 (category 2) at step 3. The second list is better
    # calibrated although the strength is lower.
    category = [1, 2, 1, 0, 2, 0, 2, 0, 1, 0, 2, 1, 0]
    scores = [0.962, 0.879, 0.763, 0.697, 0.692, 0.595, 0.547, 0.466, 0.465, 0.25, 0.233]
    scores += [0.214, 0.172]
    X = sp.csr_matrix(np.array([[0] * 13 + [2, 11]], dtype=np.float32))
    rr = CalibratedReranker(smoothing=0.1).fit(X, item_category=np.array(category + [0, 2]))
    ids, sc = np.arange(13)[None, :], np.array([scores])
    low = rr.set_params(strength=0.375).rerank(ids, sc, users=USER, k=3)[0]
    high = rr.set_params(strength=0.4).rerank(ids, sc, users=USER, k=3)[0]
    assert low.tolist() == [[1, 0, 4]] and high.tolist() == [[1, 3, 0]]
    assert _list_kl(rr, high, USER)[0] > _list_kl(rr, low, USER)[0]
