"""generate_synthetic: sizes, attributes, long tail, personal niches, reproducibility and the planted bias."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.data import Dataset, generate_synthetic, random_holdout, time_cutoff
from recsys.models import ALS, EASE, Popularity

SMALL = dict(n_users=300, n_items=200, n_interactions=6_000)
NICHE = dict(n_users=600, n_items=300, n_interactions=12_000)  # 30 niches, about 10 items each


def _per_user_share(ds: Dataset, category: str) -> np.ndarray:
    """Share of ``category`` in each user's history."""
    it = ds.interactions
    hit = (ds.items["category"].to_numpy()[it.matrix.indices] == category).astype(float)
    return np.add.reduceat(hit, it.matrix.indptr[:-1]) / np.diff(it.matrix.indptr)


def _group_ratio(ds: Dataset, category: str = "cat_0", group: str = "F") -> tuple[float, float]:
    share = _per_user_share(ds, category)
    in_group = ds.users["gender"].to_numpy() == group
    return share[in_group].mean() / share[~in_group].mean(), share[~in_group].mean()


@pytest.fixture(scope="module")
def default() -> Dataset:
    return generate_synthetic()


def test_exact_number_of_distinct_pairs_and_ids(default: Dataset) -> None:
    it = default.interactions
    assert it.n_interactions == 50_000
    assert it.matrix.shape == (2000, 1000)
    np.testing.assert_array_equal(it.user_ids, np.arange(2000))
    np.testing.assert_array_equal(it.item_ids, np.arange(1000))
    merged = it.matrix.copy()
    merged.sum_duplicates()
    assert merged.nnz == 50_000  # no (user, item) pair stored twice
    assert it.matrix.has_sorted_indices
    assert default.name == "synthetic"


def test_every_user_has_at_least_three(default: Dataset) -> None:
    assert np.diff(default.interactions.matrix.indptr).min() == 3


@pytest.mark.parametrize(
    ("n_users", "n_items", "n_interactions", "low", "high"),
    [
        (40, 30, 40, 1, 1),  # one interaction each
        (40, 30, 80, 2, 30),  # floor is n_interactions // n_users = 2
        (12, 6, 72, 6, 6),  # every cell filled
    ],
)
def test_floor_and_cap_per_user(n_users: int, n_items: int, n_interactions: int, low: int, high: int) -> None:
    ds = generate_synthetic(
        n_users=n_users, n_items=n_items, n_interactions=n_interactions, n_categories=3, n_providers=2
    )
    counts = np.diff(ds.interactions.matrix.indptr)
    assert counts.sum() == n_interactions
    assert counts.min() == low
    assert counts.max() <= high


def test_heavy_users_get_exactly_their_count() -> None:
    # Very skewed activity forces the exact fill for users wanting most of the catalogue.
    ds = generate_synthetic(n_users=50, n_items=80, n_interactions=3_000, activity_sigma=3.0,
                            popularity_exponent=2.0)
    counts = np.diff(ds.interactions.matrix.indptr)
    assert counts.sum() == 3_000
    assert counts.max() == 80


def test_ratings_and_timestamps(default: Dataset) -> None:
    it = default.interactions
    assert it.has_ratings
    values, counts = np.unique(it.matrix.data, return_counts=True)
    np.testing.assert_array_equal(values, [1, 2, 3, 4, 5])
    # Ratings are quantiles matched to the MovieLens 100K shares.
    np.testing.assert_allclose(counts / counts.sum(), [0.061, 0.114, 0.271, 0.342, 0.212], atol=0.01)
    assert it.timestamps.dtype == np.int64
    assert it.timestamps.min() >= 1_420_070_400
    assert it.timestamps.max() < 1_420_070_400 + 3 * 365 * 86_400
    held_out = time_cutoff(it, test_fraction=0.2).test.n_interactions
    assert 9_900 <= held_out <= 10_100


def test_ratings_follow_taste(default: Dataset) -> None:
    # Users rate items of categories they interact with most higher than others.
    it = default.interactions
    share = np.zeros((it.n_users, 8))
    cats = default.items["category"].str.slice(4).astype(int).to_numpy()[it.matrix.indices]
    np.add.at(share, (it.row_index(), cats), 1.0)
    favourite = share.argmax(axis=1)[it.row_index()] == cats
    assert it.matrix.data[favourite].mean() > it.matrix.data[~favourite].mean() + 0.1


def test_user_attributes(default: Dataset) -> None:
    users = default.users
    assert list(users.columns) == ["user_id", "gender", "age_group", "activity_level"]
    assert set(users["gender"]) == {"F", "M"}
    assert abs((users["gender"] == "F").mean() - 0.4) < 0.03
    assert set(users["age_group"]) == {"18-24", "25-34", "35-44", "45+"}
    counts = np.diff(default.interactions.matrix.indptr)
    level = users["activity_level"].to_numpy()
    assert counts[level == "low"].max() < counts[level == "medium"].min()
    assert counts[level == "medium"].max() < counts[level == "high"].min()
    assert abs((level == "low").mean() - 1 / 3) < 0.05


def test_labels_are_categoricals_of_the_labels_that_occur() -> None:
    ds = generate_synthetic(n_users=60, n_items=50, n_interactions=900, random_state=3)
    columns = [ds.users[c] for c in ("gender", "age_group", "activity_level")]
    columns += [ds.items[c] for c in ("category", "provider")]
    for column in columns:
        assert column.dtype == "category", column.name
        assert set(column.cat.categories) == set(column.astype(str)), column.name
    # the same labels as text: the generator's codes map to the documented names
    assert set(ds.users["activity_level"].astype(str)) <= {"low", "medium", "high"}


def test_item_attributes(default: Dataset) -> None:
    items = default.items
    assert list(items.columns) == ["item_id", "category", "provider", "title"]
    assert set(items["category"]) == {f"cat_{c}" for c in range(8)}
    assert set(items["provider"]) == {f"prov_{p}" for p in range(20)}
    sizes = items["provider"].value_counts()
    assert sizes.iloc[0] > 5 * sizes.iloc[-1]  # skewed provider sizes
    assert items["title"].iloc[7] == "Item 7"


def test_popularity_long_tail() -> None:
    def top_decile_share(exponent: float, **kwargs: float) -> float:
        it = generate_synthetic(n_users=1000, n_items=400, n_interactions=10_000,
                                popularity_exponent=exponent, **kwargs).interactions
        pop = np.sort(np.bincount(it.matrix.indices, minlength=it.n_items))[::-1]
        return pop[: it.n_items // 10].sum() / pop.sum()

    # Uniform within a category and no niches: only the unequal category sizes and tastes remain.
    assert top_decile_share(0.0, personalization=0.0) < 0.2
    assert top_decile_share(1.0) > 0.35
    assert top_decile_share(1.0) > top_decile_share(0.0) + 0.15


def test_activity_spread() -> None:
    flat = np.diff(generate_synthetic(**SMALL, activity_sigma=0.0).interactions.matrix.indptr)
    skewed = np.diff(generate_synthetic(**SMALL, activity_sigma=1.5).interactions.matrix.indptr)
    # Equal activity leaves multinomial (about Poisson) spread only: CV about 1/sqrt(20).
    assert flat.std() / flat.mean() < 0.3
    assert skewed.std() / skewed.mean() > 1.0
    assert skewed.max() > 10 * np.median(skewed)


def test_same_seed_same_data_and_different_seed_differs() -> None:
    a, b = generate_synthetic(**SMALL, random_state=3), generate_synthetic(**SMALL, random_state=3)
    c = generate_synthetic(**SMALL, random_state=4)
    assert (a.interactions.matrix != b.interactions.matrix).nnz == 0
    np.testing.assert_array_equal(a.interactions.timestamps, b.interactions.timestamps)
    assert a.users.equals(b.users) and a.items.equals(b.items)
    assert (a.interactions.matrix != c.interactions.matrix).nnz > 0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_no_planted_bias_means_equal_category_shares(seed: int) -> None:
    ratio, _ = _group_ratio(generate_synthetic(bias_strength=0.0, random_state=seed))
    assert 0.9 < ratio < 1.1


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_planted_bias_lowers_the_biased_groups_share(seed: int) -> None:
    strength = 0.8
    ratio, other_share = _group_ratio(generate_synthetic(bias_strength=strength, random_state=seed))
    # Taste on the category times (1 - s), renormalised: about (1 - s) / (1 - s * share).
    expected = (1 - strength) / (1 - strength * other_share)
    assert ratio < 0.35
    assert abs(ratio - expected) < 0.06


def test_full_bias_removes_the_category_from_the_group() -> None:
    kwargs = dict(biased_group="M", biased_category="cat_3")
    ds = generate_synthetic(bias_strength=1.0, **kwargs)
    share = _per_user_share(ds, "cat_3")
    male = ds.users["gender"].to_numpy() == "M"
    assert share[male].max() == 0.0
    # The other group keeps its natural rate (same seed, same tastes, no bias).
    natural = _per_user_share(generate_synthetic(bias_strength=0.0, **kwargs), "cat_3")
    assert share[~male].mean() > 0.02
    assert abs(share[~male].mean() / natural[~male].mean() - 1.0) < 0.1


def _item_cooccurrence_vs_popularity(ds: Dataset) -> tuple[float, float]:
    """Hit rate at 10 of one random held-out item per user: item co-occurrence vs popularity scores."""
    X = ds.interactions.matrix.tocsr(copy=True)
    X.data[:] = 1.0
    rng = np.random.default_rng(0)
    pick = X.indptr[:-1] + (rng.random(X.shape[0]) * np.diff(X.indptr)).astype(np.int64)
    held = X.indices[pick]
    X.data[pick] = 0.0
    X.eliminate_zeros()
    seen = X.toarray() > 0
    pop = seen.sum(axis=0).astype(float)
    co = (X.T @ X).toarray()
    np.fill_diagonal(co, 0.0)
    cosine = co / np.sqrt(np.outer(pop, pop) + 1e-9)

    def hit_rate(scores: np.ndarray) -> float:
        top = np.argsort(np.where(seen, np.inf, -scores), axis=1, kind="stable")[:, :10]
        return float((top == held[:, None]).any(axis=1).mean())

    return hit_rate(X @ cosine), hit_rate(np.tile(pop, (X.shape[0], 1)))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_users_concentrate_on_niches(seed: int) -> None:
    # Items a user shares with others predict their other items far better than popularity
    # does; without niches (personalization=0) co-occurrence is no better than popularity.
    personal, popular = _item_cooccurrence_vs_popularity(generate_synthetic(**NICHE, random_state=seed))
    assert personal > 1.4 * popular
    flat = generate_synthetic(**NICHE, personalization=0.0, random_state=seed)
    personal, popular = _item_cooccurrence_vs_popularity(flat)
    assert personal < 1.2 * popular


def test_collaborative_models_beat_popularity() -> None:
    split = random_holdout(generate_synthetic(**NICHE).interactions, test_fraction=0.25)
    train, test = split.train.binary(), split.test.binary()
    users = np.flatnonzero(np.diff(test.indptr))

    def recall_at_10(model: Popularity | EASE | ALS) -> float:
        ids, _ = model.fit(train).recommend(users, 10)
        hits = np.asarray(test[np.repeat(users, 10), ids.ravel()]).reshape(ids.shape) != 0
        return float((hits.sum(axis=1) / np.minimum(np.diff(test.indptr)[users], 10)).mean())

    popularity = recall_at_10(Popularity())
    assert recall_at_10(EASE(l2=50.0)) > 1.3 * popularity
    assert recall_at_10(ALS(factors=32, alpha=2.0, iterations=10)) > 1.3 * popularity


@pytest.mark.parametrize("n_niches", [8, 50, 200])
def test_explicit_number_of_niches(n_niches: int) -> None:
    # One niche per category up to one item per niche: sizes stay exact.
    ds = generate_synthetic(**SMALL, n_niches=n_niches)
    counts = np.diff(ds.interactions.matrix.indptr)
    assert counts.sum() == 6_000
    assert counts.min() == 3


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_users": 0}, "n_users: expected an integer >= 1, got 0"),
        ({"n_interactions": 1999},
         r"n_interactions: expected an integer in \[2000, 2000000\] \(n_users to n_users \* n_items\), got 1999"),
        ({"n_users": 2, "n_items": 3, "n_interactions": 7, "n_categories": 1, "n_providers": 1},
         r"n_interactions: expected an integer in \[2, 6\] \(n_users to n_users \* n_items\), got 7"),
        ({"n_items": 5, "n_interactions": 5000},
         r"n_categories: expected an integer in \[1, 5\] \(at most n_items\), got 8"),
        ({"n_providers": 1.5}, r"n_providers: expected an integer in \[1, 1000\] \(at most n_items\), got 1.5"),
        ({"bias_strength": 1.2}, r"bias_strength: expected a number in \[0.0, 1.0\], got 1.2"),
        ({"group_share": -0.1}, r"group_share: expected a number in \[0.0, 1.0\], got -0.1"),
        ({"popularity_exponent": float("nan")},
         r"popularity_exponent: expected a number in \[0.0, 10.0\], got nan"),
        ({"activity_sigma": -1.0}, r"activity_sigma: expected a number in \[0.0, 10.0\], got -1.0"),
        ({"biased_group": "X"}, "biased_group: expected 'F' or 'M', got 'X'"),
        ({"biased_category": "cat_8"}, "biased_category: expected one of 'cat_0'..'cat_7', got 'cat_8'"),
        ({"n_niches": 5},
         r"n_niches: expected 0 \(automatic\) or an integer in \[8, 1000\] "
         r"\(n_categories to n_items\), got 5"),
        ({"n_niches": 1001},
         r"n_niches: expected 0 \(automatic\) or an integer in \[8, 1000\] "
         r"\(n_categories to n_items\), got 1001"),
        ({"n_items": 20, "n_interactions": 2000, "n_categories": 2, "n_providers": 2, "n_niches": 2.0},
         r"n_niches: expected 0 \(automatic\) or an integer in \[2, 20\] "
         r"\(n_categories to n_items\), got 2.0"),
        ({"personalization": 1.5}, r"personalization: expected a number in \[0.0, 1.0\], got 1.5"),
        ({"personalization": -0.1}, r"personalization: expected a number in \[0.0, 1.0\], got -0.1"),
    ],
)
def test_invalid_parameters(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{message}$"):
        generate_synthetic(**kwargs)


@pytest.mark.slow
def test_movielens_20m_scale() -> None:
    ds = generate_synthetic(n_users=138_000, n_items=27_000, n_interactions=20_000_000)
    counts = np.diff(ds.interactions.matrix.indptr)
    assert counts.sum() == 20_000_000
    assert counts.min() == 3
