"""BPR: cornac's SGD with uniform negatives, kept in implicit's factor layout."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import implicit.bpr
import numpy as np
import pytest
import scipy.sparse as sp
from scipy.stats import spearmanr

from recsys.errors import DataError
from recsys.models import BPR, load_model, save_model


def _skewed(seed: int = 0, n_users: int = 200, n_items: int = 60) -> sp.csr_matrix:
    """Each user picks 12 items with probability falling as a power of the item index."""
    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, n_items + 1) ** 0.8
    X = np.zeros((n_users, n_items), dtype=np.float32)
    for u in range(n_users):
        X[u, rng.choice(n_items, size=12, replace=False, p=p / p.sum())] = 1.0
    return sp.csr_matrix(X)


def test_the_factors_are_cornacs_for_the_same_parameters_and_seed() -> None:
    """The wrapper passes every parameter through: cornac's own run gives the same arrays."""
    from cornac.data import Dataset
    from cornac.models import BPR as CornacBPR

    X = _skewed(1, n_users=30, n_items=15)
    model = BPR(factors=3, learning_rate=0.03, regularization=0.02, iterations=7,
                random_state=5).fit(X)
    rows, cols = X.nonzero()
    train = Dataset(30, 15, {u: u for u in range(30)}, {i: i for i in range(15)},
                    (rows, cols, np.ones(rows.size, dtype=np.float32)), seed=5)
    ref = CornacBPR(k=3, max_iter=7, learning_rate=0.03, lambda_reg=0.02, seed=5).fit(train)
    np.testing.assert_array_equal(model.user_factors_[:, :-1], ref.u_factors)
    np.testing.assert_array_equal(model.item_factors_[:, :-1], ref.i_factors)
    np.testing.assert_array_equal(model.item_factors_[:, -1], ref.i_biases)
    assert np.all(model.user_factors_[:, -1] == 1.0)
    assert model.user_factors_.dtype == model.item_factors_.dtype == np.float32


def test_uniform_negatives_make_the_item_bias_follow_popularity() -> None:
    """Sampled uniformly, a popular item is mostly a positive, so its bias grows with popularity.

    implicit's popularity-weighted negatives (the sampler this model replaced)
    cancel most of that: the same data gives its biases a weaker rank
    correlation with popularity (0.63 with these parameters).
    """
    X = _skewed()
    popularity = np.asarray(X.sum(axis=0)).ravel()
    ours = BPR(factors=8, iterations=30, learning_rate=0.05, random_state=0).fit(X)
    assert spearmanr(ours.item_factors_[:, -1], popularity)[0] > 0.9
    theirs = implicit.bpr.BayesianPersonalizedRanking(
        factors=8, iterations=30, learning_rate=0.05, random_state=0, num_threads=1
    )
    theirs.fit(X, show_progress=False)
    assert spearmanr(theirs.item_factors[:, -1], popularity)[0] < 0.8


def test_recommendations_are_the_full_score_with_seen_items_removed() -> None:
    X = _skewed(2, n_users=40, n_items=20)
    model = BPR(factors=4, iterations=10, num_threads=1).fit(X)
    users = np.arange(40)
    ids, scores = model.recommend(users, k=20)
    dense = model.user_factors_ @ model.item_factors_.T
    for u in users:
        unseen = np.setdiff1d(np.arange(20), X[u].indices)
        kept = ids[u][ids[u] >= 0]
        assert sorted(kept.tolist()) == unseen.tolist()
        np.testing.assert_allclose(scores[u][: kept.size], dense[u, kept], rtol=1e-5, atol=1e-6)


def test_a_fixed_random_state_is_reproducible_and_none_is_not() -> None:
    X = _skewed(3, n_users=30, n_items=15)
    first = BPR(factors=3, iterations=5, random_state=9).fit(X).item_factors_
    again = BPR(factors=3, iterations=5, random_state=9, num_threads=2).fit(X).item_factors_
    np.testing.assert_array_equal(first, again)  # fitting is single-threaded whatever num_threads
    fresh = [BPR(factors=3, iterations=5, random_state=None).fit(X).item_factors_ for _ in "ab"]
    assert not np.array_equal(fresh[0], fresh[1])


def test_a_loaded_model_recommends_like_the_saved_one(tmp_path) -> None:
    X = _skewed(4, n_users=30, n_items=15)
    model = BPR(factors=4, iterations=5).fit(X)
    save_model(model, tmp_path)
    loaded = load_model(tmp_path)
    assert isinstance(loaded, BPR) and loaded.get_params() == model.get_params()
    np.testing.assert_array_equal(loaded.item_factors_, model.item_factors_)
    for got, want in zip(loaded.recommend(np.arange(30), 5), model.recommend(np.arange(30), 5),
                         strict=True):
        np.testing.assert_array_equal(got, want)


def test_loading_and_recommending_do_not_import_cornac(tmp_path) -> None:
    """cornac (and the matplotlib.pyplot it imports) is needed to fit, never to serve."""
    save_model(BPR(factors=2, iterations=3).fit(_skewed(6, n_users=20, n_items=15)), tmp_path)
    script = (
        "import sys; from recsys.models import load_model; "
        f"load_model({str(tmp_path)!r}).recommend([0, 1], 3); "
        "print(sorted(m for m in ('cornac', 'matplotlib.pyplot') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True, cwd=Path(__file__).resolve().parents[3])
    assert done.stdout.strip() == "[]"


def test_a_matrix_without_interactions_is_refused() -> None:
    message = "X: BPR needs at least one interaction to learn from, got an empty (3, 4) matrix"
    with pytest.raises(DataError, match=re.escape(message)):
        BPR().fit(sp.csr_matrix((3, 4), dtype=np.float32))


@pytest.mark.parametrize(
    ("params", "error", "message"),
    [
        ({"factors": 0}, ValueError, "factors == 0, must be >= 1."),
        ({"regularization": -0.1}, ValueError, "regularization == -0.1, must be >= 0.0."),
        ({"learning_rate": "fast"}, TypeError, "learning_rate must be an instance of"),
        ({"random_state": 1.5}, ValueError,
         "random_state: expected None or a non-negative integer, got 1.5"),
    ],
)
def test_parameters_are_validated_before_training(params: dict, error: type, message: str) -> None:
    with pytest.raises(error, match=re.escape(message)):
        BPR(**params).fit(_skewed(5, n_users=10, n_items=15))


def test_docstring_examples() -> None:
    import doctest

    import recsys.models._bpr as module

    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0
