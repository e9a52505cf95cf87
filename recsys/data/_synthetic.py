"""A seeded synthetic recommendation dataset with a long tail and a planted group bias.

How one dataset is drawn (all vectorised, users processed in chunks):

1. Items get a category (skewed sizes, every category non-empty), a provider
   (skewed sizes) and a Zipf popularity ``rank ** -popularity_exponent``.
2. Users get a gender (``"F"`` with probability ``group_share``), an age group
   and a taste over categories: a Dirichlet draw around one shared base
   preference. Users of ``biased_group`` have their weight on
   ``biased_category`` multiplied by ``1 - bias_strength`` (then renormalised).
3. Each user's number of interactions is ``min(3, n_interactions // n_users)``
   plus a multinomial share of the rest proportional to a lognormal activity
   (capped at ``n_items``).
4. An interaction picks a category from the user's taste, then an item of that
   category by popularity. Draws are deduplicated per user and topped up until
   each user has exactly their count (extras are dropped at random); users a
   few rounds of top-ups cannot satisfy (very heavy users) get the missing
   items by weighted sampling without replacement over the items they lack.
5. Ratings 1..5 are quantiles of ``item quality + user bias + log taste +
   noise``, matched to the MovieLens 100K rating shares. Timestamps are
   uniform in a per-user active window inside three years from 2015-01-01.
"""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys.data._attributes import activity_levels
from recsys.data._types import Dataset, Interactions

__all__ = ["generate_synthetic"]

_T0 = 1_420_070_400  # 2015-01-01T00:00:00Z
_SPAN = 3 * 365 * 86_400
_AGE_GROUPS = ("18-24", "25-34", "35-44", "45+")
_AGE_SHARES = (0.25, 0.35, 0.22, 0.18)
_RATING_SHARES = (0.061, 0.114, 0.271, 0.342, 0.212)  # MovieLens 100K
_CHUNK_DRAWS = 2_000_000  # draws per chunk of users; bounds the working memory
_TOP_UP_ROUNDS = 4
_DENSE_CELLS = 4_000_000  # cells per block in the exact fill for heavy users


def generate_synthetic(
    *,
    n_users: int = 2000,
    n_items: int = 1000,
    n_interactions: int = 50_000,
    n_categories: int = 8,
    n_providers: int = 20,
    popularity_exponent: float = 1.0,
    activity_sigma: float = 1.0,
    bias_strength: float = 0.0,
    biased_group: str = "F",
    biased_category: str = "cat_0",
    group_share: float = 0.4,
    random_state: int | None = 0,
) -> Dataset:
    """Draw a synthetic dataset with exactly ``n_interactions`` distinct (user, item) pairs.

    Parameters
    ----------
    n_users, n_items : int
        Vocabulary sizes; ids are ``0..n-1``. Every user has at least one
        interaction (three when ``n_interactions >= 3 * n_users``); items may
        be unseen but stay in the catalogue.
    n_interactions : int
        Distinct (user, item) pairs, in ``[n_users, n_users * n_items]``.
    n_categories, n_providers : int
        Item labels ``cat_0..`` and ``prov_0..``, each in ``[1, n_items]``.
    popularity_exponent : float
        Zipf exponent of item popularity (0 = uniform).
    activity_sigma : float
        Sigma of the lognormal user activity (0 = equal activity).
    bias_strength : float
        In ``[0, 1]``: members of ``biased_group`` pick ``biased_category`` at
        ``1 - bias_strength`` times their natural rate.
    biased_group : {"F", "M"}
    biased_category : str
        One of ``cat_0..cat_{n_categories-1}``.
    group_share : float
        Probability that a user is ``"F"``.
    random_state : int or None
        Seed; equal seeds give equal datasets.

    Returns
    -------
    Dataset
        ``users``: ``user_id, gender, age_group, activity_level``; ``items``:
        ``item_id, category, provider, title``; explicit ratings 1..5 with
        int64 timestamps; ``name="synthetic"``.

    Examples
    --------
    >>> ds = generate_synthetic(n_users=50, n_items=40, n_interactions=600, random_state=1)
    >>> ds.interactions.n_interactions, int(ds.interactions.matrix.getnnz(axis=1).min())
    (600, 3)
    >>> sorted(set(ds.interactions.matrix.data.tolist()))
    [1.0, 2.0, 3.0, 4.0, 5.0]
    """
    _validate(locals())  # the arguments, by name
    rng = np.random.default_rng(random_state)
    item_cat, provider, popularity = _items(rng, n_items, n_categories, n_providers, popularity_exponent)
    gender = np.where(rng.random(n_users) < group_share, "F", "M")
    age = rng.choice(len(_AGE_GROUPS), size=n_users, p=_AGE_SHARES)
    taste = _tastes(rng, n_users, n_categories)
    biased = gender == biased_group
    taste[biased, int(biased_category[4:])] *= 1.0 - bias_strength
    taste /= taste.sum(axis=1, keepdims=True)
    counts = _user_counts(rng, n_users, n_items, n_interactions, activity_sigma)

    sampler = _Sampler(taste, item_cat, popularity)
    quality = rng.normal(0.0, 0.6, n_items)
    user_bias = rng.normal(0.0, 0.4, n_users)
    start = rng.random(n_users) * _SPAN * 0.7
    length = np.maximum(rng.random(n_users) * (_SPAN - start), 86_400.0)
    indices, scores, stamps = [], [], []
    bounds = _chunk_bounds(counts)
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        keys = sampler.exact(rng, lo, counts[lo:hi])
        u = keys // n_items
        i = keys - u * n_items
        affinity = np.log(taste[u, item_cat[i]] * n_categories + 1e-3)
        noise = rng.normal(0.0, 0.7, keys.size)
        scores.append((quality[i] + user_bias[u] + 0.3 * affinity + noise).astype(np.float32))
        stamps.append(_T0 + (start[u] + rng.random(keys.size) * length[u]).astype(np.int64))
        indices.append(i.astype(np.int32))
        del keys, u, i, affinity, noise
    score = np.concatenate(scores)
    del scores
    sample = score if score.size <= 1_000_000 else rng.choice(score, 1_000_000, replace=False)
    cuts = np.quantile(sample, np.cumsum(_RATING_SHARES)[:-1])
    ratings = (np.searchsorted(cuts, score) + 1).astype(np.float32)
    del score
    indptr = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    matrix = sp.csr_matrix((ratings, np.concatenate(indices), indptr), shape=(n_users, n_items))
    interactions = Interactions(
        matrix=matrix,
        user_ids=np.arange(n_users, dtype=np.int64),
        item_ids=np.arange(n_items, dtype=np.int64),
        timestamps=np.concatenate(stamps),
        has_ratings=True,
    )
    users = pd.DataFrame({
        "user_id": interactions.user_ids,
        "gender": gender,
        "age_group": np.asarray(_AGE_GROUPS)[age],
        "activity_level": activity_levels(counts),
    })
    items = pd.DataFrame({
        "item_id": interactions.item_ids,
        "category": np.char.add("cat_", item_cat.astype(str)),
        "provider": np.char.add("prov_", provider.astype(str)),
        "title": np.char.add("Item ", interactions.item_ids.astype(str)),
    })
    return Dataset(interactions=interactions, users=users, items=items, name="synthetic")


class _Sampler:
    """Draws (user, item) keys ``user * n_items + item`` from the two-stage model."""

    def __init__(self, taste: np.ndarray, item_cat: np.ndarray, popularity: np.ndarray) -> None:
        n_users, n_cat = taste.shape
        self.taste, self.item_cat, self.n_cat = taste, item_cat, n_cat
        self.n_items = item_cat.size
        cum = np.cumsum(taste, axis=1)
        cum[:, -1] = 1.0
        # Inverse-CDF sampling for all users at once: user u's CDF lives in [u, u + 1).
        self.taste_cdf = (np.arange(n_users)[:, None] + cum).ravel()
        self.order = np.argsort(item_cat, kind="stable")
        sorted_cat = item_cat[self.order]
        self.start = np.searchsorted(sorted_cat, np.arange(n_cat))
        self.end = np.searchsorted(sorted_cat, np.arange(n_cat), side="right")
        cat_total = np.bincount(item_cat, weights=popularity, minlength=n_cat)
        self.within = popularity / cat_total[item_cat]  # P(item | its category)
        cs = np.cumsum(self.within[self.order])
        offset = np.concatenate([[0.0], cs[self.end[:-1] - 1]])
        # Category c's item CDF lives in [c, c + 1).
        self.item_cdf = sorted_cat + cs - offset[sorted_cat]
        self.item_cdf[self.end - 1] = np.arange(1, n_cat + 1)

    def draw(self, rng: np.random.Generator, users: np.ndarray) -> np.ndarray:
        """One item draw per entry of ``users``; returns sorted unique keys."""
        pos = np.searchsorted(self.taste_cdf, users + rng.random(users.size), side="right")
        cat = np.clip(pos - users * self.n_cat, 0, self.n_cat - 1)
        pos = np.searchsorted(self.item_cdf, cat + rng.random(users.size), side="right")
        items = self.order[np.clip(pos, self.start[cat], self.end[cat] - 1)]
        return _sorted_unique(users * self.n_items + items)

    def exact(self, rng: np.random.Generator, lo: int, want: np.ndarray) -> np.ndarray:
        """Sorted keys giving users ``lo..lo+len(want)-1`` exactly ``want`` distinct items."""
        users = np.arange(lo, lo + want.size)
        drawn = np.ceil(want * 1.2).astype(np.int64) + 1
        keys = self.draw(rng, np.repeat(users, drawn))
        have = self._have(keys, lo, want.size)
        for _ in range(_TOP_UP_ROUNDS):
            deficit = np.maximum(want - have, 0)
            if not deficit.any():
                break
            # Draw more for users whose draws yielded few new items (heavy users).
            yield_rate = np.maximum(have / drawn, 0.05)
            extra = np.where(deficit > 0, np.ceil(deficit / yield_rate * 1.2).astype(np.int64) + 2, 0)
            keys = _sorted_unique(np.concatenate([keys, self.draw(rng, np.repeat(users, extra))]))
            drawn += extra
            have = self._have(keys, lo, want.size)
        deficit = np.maximum(want - have, 0)
        if deficit.any():
            lacking = deficit > 0
            filled = self._fill(rng, keys, users[lacking], deficit[lacking])
            keys = _sorted_unique(np.concatenate([keys, filled]))
            have = self._have(keys, lo, want.size)
        return _trim(rng, keys, self.n_items, lo, want, have)

    def _have(self, keys: np.ndarray, lo: int, n: int) -> np.ndarray:
        return np.bincount(keys // self.n_items - lo, minlength=n)

    def _fill(self, rng: np.random.Generator, keys: np.ndarray, users: np.ndarray,
              deficit: np.ndarray) -> np.ndarray:
        """Weighted sampling without replacement (exponential keys) over items a user lacks."""
        block = max(1, _DENSE_CELLS // self.n_items)
        out = []
        for b in range(0, users.size, block):
            us, need = users[b:b + block], deficit[b:b + block]
            held = np.zeros((us.size, self.n_items), dtype=bool)
            first, stop = np.searchsorted(keys, np.stack([us, us + 1]) * self.n_items)
            length = stop - first
            row = np.repeat(np.arange(us.size), length)
            # Position of each of these users' keys: first[row] + rank within the user.
            within = np.arange(row.size) - np.repeat(np.cumsum(length) - length, length)
            mine = keys[np.repeat(first, length) + within]
            held[row, mine - us[row] * self.n_items] = True
            weight = np.maximum(self.taste[us][:, self.item_cat] * self.within, 1e-300)
            prio = rng.exponential(size=held.shape) / weight
            prio[held] = np.inf
            best = np.argsort(prio, axis=1)[:, : need.max()]
            take = np.arange(best.shape[1]) < need[:, None]
            out.append((us[:, None] * self.n_items + best)[take])
        return np.concatenate(out)


def _sorted_unique(keys: np.ndarray) -> np.ndarray:
    """Sorted distinct values (np.unique's hash path is much slower on large int64 arrays)."""
    keys = np.sort(keys)
    keep = np.ones(keys.size, dtype=bool)
    np.not_equal(keys[1:], keys[:-1], out=keep[1:])
    return keys[keep]


def _trim(rng: np.random.Generator, keys: np.ndarray, n_items: int, lo: int,
          want: np.ndarray, have: np.ndarray) -> np.ndarray:
    """Drop a random ``have - want`` of each user's keys (keys stay sorted)."""
    if np.array_equal(have, want):
        return keys
    local = keys // n_items - lo
    order = np.argsort(local + rng.random(keys.size))  # random order within each user
    starts = np.concatenate([[0], np.cumsum(have)[:-1]])
    rank = np.arange(keys.size) - starts[local[order]]
    keep = np.empty(keys.size, dtype=bool)
    keep[order] = rank < want[local[order]]
    return keys[keep]


def _items(rng: np.random.Generator, n_items: int, n_cat: int, n_prov: int,
           exponent: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Category, provider (both with skewed sizes, none empty) and Zipf popularity per item."""
    def labels(n_labels: int, skew: float) -> np.ndarray:
        share = 1.0 / np.arange(1, n_labels + 1) ** skew
        rest = rng.choice(n_labels, size=n_items - n_labels, p=share / share.sum())
        return rng.permutation(np.concatenate([np.arange(n_labels), rest]))

    popularity = (rng.permutation(n_items) + 1.0) ** -exponent
    return labels(n_cat, 0.5), labels(n_prov, 1.0), popularity


def _tastes(rng: np.random.Generator, n_users: int, n_cat: int) -> np.ndarray:
    """Per-user category preferences: Dirichlet around a shared base preference."""
    base = rng.dirichlet(np.full(n_cat, 10.0))
    taste = rng.dirichlet(base * 2.0 * n_cat, size=n_users)
    return np.maximum(taste, 1e-9)


def _user_counts(rng: np.random.Generator, n_users: int, n_items: int, total: int,
                 sigma: float) -> np.ndarray:
    """Interactions per user: a floor plus a lognormal-weighted multinomial share, capped at n_items."""
    floor = min(3, total // n_users)
    weight = rng.lognormal(0.0, sigma, n_users)
    counts = floor + rng.multinomial(total - floor * n_users, weight / weight.sum())
    for _ in range(20):  # hand over what exceeds the cap to users with room
        over = np.maximum(counts - n_items, 0)
        if not over.any():
            return counts
        counts -= over
        room = weight * (counts < n_items)
        counts += rng.multinomial(over.sum(), room / room.sum())
    over = np.maximum(counts - n_items, 0)
    counts -= over
    room = n_items - counts
    counts += np.clip(over.sum() - (np.cumsum(room) - room), 0, room)
    return counts


def _chunk_bounds(counts: np.ndarray) -> np.ndarray:
    """User index boundaries so that each chunk holds about ``_CHUNK_DRAWS`` interactions."""
    cum = np.cumsum(counts)
    cuts = np.searchsorted(cum, np.arange(_CHUNK_DRAWS, cum[-1], _CHUNK_DRAWS), side="right")
    return np.unique(np.concatenate([[0], cuts, [counts.size]]))


def _validate(p: dict) -> None:
    def integer(name: str, low: int, high: int | None = None, why: str = "") -> None:
        v = p[name]
        ok = isinstance(v, numbers.Integral) and not isinstance(v, bool)
        if not ok or v < low or (high is not None and v > high):
            rng = f">= {low}" if high is None else f"in [{low}, {high}]"
            raise ValueError(f"{name}: expected an integer {rng}{why}, got {v!r}")

    def real(name: str, low: float, high: float | None = None) -> None:
        v = p[name]
        ok = isinstance(v, numbers.Real) and not isinstance(v, bool) and np.isfinite(v)
        if not ok or v < low or (high is not None and v > high):
            rng = f">= {low}" if high is None else f"in [{low}, {high}]"
            raise ValueError(f"{name}: expected a number {rng}, got {v!r}")

    integer("n_users", 1)
    integer("n_items", 1)
    n_u, n_i = p["n_users"], p["n_items"]
    integer("n_interactions", n_u, n_u * n_i, " (n_users to n_users * n_items)")
    integer("n_categories", 1, n_i, " (at most n_items)")
    integer("n_providers", 1, n_i, " (at most n_items)")
    real("popularity_exponent", 0.0, 10.0)
    real("activity_sigma", 0.0, 10.0)
    real("bias_strength", 0.0, 1.0)
    real("group_share", 0.0, 1.0)
    if p["biased_group"] not in ("F", "M"):
        raise ValueError(f"biased_group: expected 'F' or 'M', got {p['biased_group']!r}")
    cats = [f"cat_{c}" for c in range(p["n_categories"])]
    if p["biased_category"] not in cats:
        shown = f"'cat_0'..'{cats[-1]}'" if len(cats) > 1 else "'cat_0'"
        raise ValueError(f"biased_category: expected one of {shown}, got {p['biased_category']!r}")
