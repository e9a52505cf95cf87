"""A seeded synthetic recommendation dataset with a long tail, personal niches and a planted group bias.

How one dataset is drawn (all vectorised, users processed in chunks):

1. Items get a category (skewed sizes, every category non-empty), a provider
   (skewed sizes) and a Zipf popularity ``rank ** -popularity_exponent``.
   Each category is split into hidden niches (``n_niches`` in all, shared
   out in proportion to category size, none empty); an item joins a random
   niche of its category. A niche's *share* is its part of its category's
   total popularity.
2. Users get a gender (``"F"`` with probability ``group_share``), an age group
   and a taste over categories: a Dirichlet draw around one shared base
   preference. Users of ``biased_group`` have their weight on
   ``biased_category`` multiplied by ``1 - bias_strength`` (then renormalised).
   Inside every category a user also has a sparse taste over its niches: a
   Dirichlet whose mean is the niches' shares and whose concentration is
   small (0.03 per niche), so most users favour a few niches of a category
   and popular niches are favoured by more users.
3. Each user's number of interactions is ``min(3, n_interactions // n_users)``
   plus a multinomial share of the rest proportional to a lognormal activity
   (capped at ``n_items``).
4. A user's count is split over categories by a multinomial draw from their
   category taste (what exceeds a category's size goes to the user's other
   categories), so realised category shares follow the taste and the planted
   bias acts on whole categories. Each interaction in a category picks, with
   probability ``personalization``, a niche from the user's niche taste,
   otherwise a niche by its share; then an item of the niche by popularity.
   A niche by its share and then an item by popularity is an item of the
   category by popularity, so ``personalization=0`` is the model without
   niches, and averaged over users an item's draw probability is the same
   whatever ``personalization``. Draws are deduplicated and topped up until
   every (user, category) pair has exactly its count (extras are dropped at
   random); pairs that a few rounds of top-ups cannot fill cheaply (heavy
   users) get the missing items by weighted sampling without replacement over
   the category's items they lack.
5. Ratings 1..5 are quantiles of ``item quality + user bias + log category
   taste + noise``, matched to the MovieLens 100K rating shares. Timestamps
   are uniform in a per-user active window inside three years from 2015-01-01.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys.data._attributes import ACTIVITY_LEVELS, activity_codes
from recsys.data._types import Dataset, Interactions

__all__ = ["generate_synthetic"]

_T0 = 1_420_070_400  # 2015-01-01T00:00:00Z
_SPAN = 3 * 365 * 86_400
_AGE_GROUPS = ("18-24", "25-34", "35-44", "45+")
_GENDERS = ("F", "M")
_AGE_SHARES = (0.25, 0.35, 0.22, 0.18)
_RATING_SHARES = (0.061, 0.114, 0.271, 0.342, 0.212)  # MovieLens 100K
_CHUNK_DRAWS = 2_000_000  # draws per chunk of users; bounds the working memory
_TOP_UP_ROUNDS = 4
_DENSE_CELLS = 4_000_000  # cells per block in the exact fill for heavy users
_CHUNK_CELLS = 8_000_000  # users x niches per chunk (the chunk's niche CDFs)
_AUTO_NICHES = 200  # cap of the automatic number of niches
_NICHE_ALPHA = 0.03  # mean Dirichlet concentration per niche of a user's taste in a category


def generate_synthetic(
    *,
    n_users: int = 2000,
    n_items: int = 1000,
    n_interactions: int = 50_000,
    n_categories: int = 8,
    n_providers: int = 20,
    popularity_exponent: float = 0.8,
    activity_sigma: float = 1.0,
    bias_strength: float = 0.0,
    biased_group: str = "F",
    biased_category: str = "cat_0",
    group_share: float = 0.4,
    random_state: int | None = 0,
    n_niches: int = 0,
    personalization: float = 1.0,
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
        Zipf exponent of item popularity (0 = uniform), in ``[0, 10]``.
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
    n_niches : int
        Hidden niches (groups of items some users favour), in
        ``[n_categories, n_items]``; 0 (default) means
        ``max(n_categories, min(n_items // 10, 200))``.
    personalization : float
        In ``[0, 1]``: the probability that an interaction picks its niche
        from the user's own niche taste rather than by popularity. 0 gives
        the category-and-popularity model with no item-level personal taste.

    Returns
    -------
    Dataset
        ``users``: ``user_id, gender, age_group, activity_level``; ``items``:
        ``item_id, category, provider, title``; the label columns are pandas
        categoricals of the labels that occur; explicit ratings 1..5 with
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
    n_niches = n_niches or max(n_categories, min(n_items // 10, _AUTO_NICHES))
    item_niche, niche_cat, niche_share = _niches(rng, item_cat, popularity, n_categories, n_niches)
    gender = (rng.random(n_users) >= group_share).astype(np.int8)  # index into _GENDERS
    age = rng.choice(len(_AGE_GROUPS), size=n_users, p=_AGE_SHARES)
    taste = _tastes(rng, n_users, n_categories)
    biased = gender == _GENDERS.index(biased_group)
    taste[biased, int(biased_category[4:])] *= 1.0 - bias_strength
    total = taste.sum(axis=1, keepdims=True)  # 0 only for a full bias on the one category
    taste = np.where(total > 0, taste / np.where(total > 0, total, 1.0), 1.0 / n_categories)
    niche_taste = _niche_tastes(rng, n_users, niche_cat, niche_share)
    counts = _user_counts(rng, n_users, n_items, n_interactions, activity_sigma)

    sampler = _Sampler(taste, niche_taste, niche_share, niche_cat, item_niche, popularity, personalization)
    quality = rng.normal(0.0, 0.6, n_items)
    user_bias = rng.normal(0.0, 0.4, n_users)
    start = rng.random(n_users) * _SPAN * 0.7
    length = np.maximum(rng.random(n_users) * (_SPAN - start), 86_400.0)
    indices, scores, stamps = [], [], []
    bounds = _chunk_bounds(counts, max(1, _CHUNK_CELLS // n_niches))
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
    # labels as pandas categoricals made from their codes: no string per user or item to
    # build here or to hash again when the labels are grouped (the fairness metrics)
    users = pd.DataFrame({
        "user_id": interactions.user_ids,
        "gender": _labels(gender, _GENDERS),
        "age_group": _labels(age, _AGE_GROUPS),
        "activity_level": _labels(activity_codes(counts), ACTIVITY_LEVELS),
    })
    items = pd.DataFrame({
        "item_id": interactions.item_ids,
        "category": _labels(item_cat, [f"cat_{c}" for c in range(n_categories)]),
        "provider": _labels(provider, [f"prov_{p}" for p in range(n_providers)]),
        "title": np.char.add("Item ", interactions.item_ids.astype(str)),
    })
    return Dataset(interactions=interactions, users=users, items=items, name="synthetic")


def _labels(codes: np.ndarray, names: Sequence[str]) -> pd.Categorical:
    """The labels ``names[codes]`` as a categorical of the labels that occur."""
    return pd.Categorical.from_codes(codes, categories=list(names)).remove_unused_categories()


class _Sampler:
    """Draws each user's items, category by category, from the niche model.

    A user's count is split over categories by a multinomial of their category
    taste (capped at the category sizes). Within a (user, category) group,
    ``P(niche) = rho * niche_taste[user, niche] + (1 - rho) * niche_share[niche]``
    and ``P(item | niche)`` is proportional to popularity. Items are handled
    by their position in ``order`` (sorted by niche, hence by category), so a
    user's items of one category are contiguous; keys are
    ``local_user * n_items + position``.
    """

    def __init__(self, taste: np.ndarray, niche_taste: np.ndarray, niche_share: np.ndarray,
                 niche_cat: np.ndarray, item_niche: np.ndarray, popularity: np.ndarray,
                 personalization: float) -> None:
        self.taste, self.niche_taste, self.niche_share = taste, niche_taste, niche_share
        self.niche_cat, self.rho = niche_cat, personalization
        self.n_items, self.n_niches, self.n_cat = item_niche.size, niche_cat.size, taste.shape[1]
        self.order = np.argsort(item_niche, kind="stable")
        self.pos_niche = item_niche[self.order]
        self.pos_cat = niche_cat[self.pos_niche]
        niches, cats = np.arange(self.n_niches), np.arange(self.n_cat)
        self.start = np.searchsorted(self.pos_niche, niches)  # positions of niche n: [start, end)
        self.end = np.searchsorted(self.pos_niche, niches, side="right")
        self.cat_start = np.searchsorted(self.pos_cat, cats)
        self.cat_size = np.searchsorted(self.pos_cat, cats, side="right") - self.cat_start
        self.first_niche = np.searchsorted(niche_cat, cats)
        self.last_niche = np.searchsorted(niche_cat, cats, side="right") - 1
        total = np.bincount(item_niche, weights=popularity, minlength=self.n_niches)
        self.within = popularity[self.order] / total[self.pos_niche]  # P(position | its niche)
        cs = np.cumsum(self.within)
        offset = np.concatenate([[0.0], cs[self.end[:-1] - 1]])
        # Niche n's item CDF lives in [n, n + 1).
        self.item_cdf = self.pos_niche + cs - offset[self.pos_niche]
        self.item_cdf[self.end - 1] = niches + 1.0
        self.niche_cdf = np.zeros(0)  # set per chunk by exact()

    def exact(self, rng: np.random.Generator, lo: int, counts: np.ndarray) -> np.ndarray:
        """Sorted keys ``user * n_items + item`` giving users ``lo, lo + 1, ...`` exactly ``counts`` items."""
        n = counts.size
        users = np.arange(lo, lo + n)
        want = self._category_counts(rng, counts, self.taste[users]).ravel()  # group j * n_cat + c
        probs = self._niche_probs(users)
        self._set_niche_cdf(probs)
        groups = np.arange(want.size)
        limit = np.tile(np.maximum(self.cat_size // 4, 64), n)  # draws worth one exact fill
        drawn = np.where(want > 0, np.ceil(want * 1.2).astype(np.int64) + 1, 0)
        keys = self._draw(rng, np.repeat(groups, drawn))
        have = self._have(keys, want.size)
        for _ in range(_TOP_UP_ROUNDS):
            deficit = np.maximum(want - have, 0)
            # Draw more for groups whose draws yielded few new items; those that would need
            # more draws than the exact fill costs are left to the fill.
            yield_rate = np.maximum(have / np.maximum(drawn, 1), 0.05)
            extra = np.ceil(deficit / yield_rate * 1.2).astype(np.int64) + 2
            extra[(deficit == 0) | (extra > limit)] = 0
            if not extra.any():
                break
            keys = _sorted_unique(np.concatenate([keys, self._draw(rng, np.repeat(groups, extra))]))
            drawn += extra
            have = self._have(keys, want.size)
        deficit = np.maximum(want - have, 0)
        if deficit.any():
            keys = _sorted_unique(np.concatenate([keys, self._fill(rng, keys, probs, deficit)]))
            have = self._have(keys, want.size)
        del probs
        keys = _trim(rng, keys, self._group(keys), want, have)
        local = keys // self.n_items
        return np.sort((local + lo) * self.n_items + self.order[keys - local * self.n_items])

    def _category_counts(self, rng: np.random.Generator, counts: np.ndarray,
                         taste: np.ndarray) -> np.ndarray:
        """Each user's count split over categories by their taste, at most the category sizes."""
        size = self.cat_size
        want = rng.multinomial(counts, taste)
        for _ in range(5):  # hand what exceeds a category to the user's other categories
            over = np.maximum(want - size, 0).sum(axis=1)
            if not over.any():
                return want
            want = np.minimum(want, size)
            room = taste * (want < size)
            total = room.sum(axis=1)
            ok = total > 0
            want += rng.multinomial(np.where(ok, over, 0), room / np.where(ok, total, 1.0)[:, None])
            want = _spill(want, size, np.where(ok, 0, over))
        over = np.maximum(want - size, 0).sum(axis=1)
        return _spill(np.minimum(want, size), size, over)

    def _set_niche_cdf(self, probs: np.ndarray) -> None:
        """Inverse-CDF table for all groups of the chunk: group g's niche CDF lives in ``[g, g + 1)``."""
        cum = np.cumsum(probs, axis=1)
        before = np.concatenate([np.zeros((cum.shape[0], 1)), cum[:, self.first_niche[1:] - 1]], axis=1)
        cum -= before[:, self.niche_cat]
        cum /= cum[:, self.last_niche][:, self.niche_cat]  # each category's niches sum to 1
        np.clip(cum, 0.0, 1.0, out=cum)
        cum[:, self.last_niche] = 1.0
        cum += (np.arange(cum.shape[0]) * self.n_cat)[:, None] + self.niche_cat
        self.niche_cdf = cum.ravel()

    def _niche_probs(self, users: np.ndarray) -> np.ndarray:
        """``P(niche | user, its category)``, shape ``(len(users), n_niches)``."""
        if self.rho == 1.0:
            return self.niche_taste[users].astype(np.float64)
        return self.rho * self.niche_taste[users].astype(np.float64) + (1.0 - self.rho) * self.niche_share

    def _draw(self, rng: np.random.Generator, groups: np.ndarray) -> np.ndarray:
        """One draw per entry of ``groups`` (sorted); returns sorted unique keys."""
        # searchsorted is several times faster on sorted queries. Sorting ``group + uniform``
        # keeps every uniform in its group (the integer part) and only reorders a group's
        # exchangeable draws, so the sample is unchanged in distribution.
        pos = np.searchsorted(self.niche_cdf, np.sort(groups + rng.random(groups.size)), side="right")
        local = groups // self.n_cat
        cat = groups - local * self.n_cat
        niche = np.clip(pos - local * self.n_niches, self.first_niche[cat], self.last_niche[cat])
        del pos, cat
        pair = local * self.n_niches + niche  # non-decreasing: each group's niches are now sorted
        key = np.sort(pair + rng.random(groups.size)) - (pair - niche)
        del pair
        pos = np.searchsorted(self.item_cdf, key, side="right")
        return _sorted_unique(local * self.n_items + np.clip(pos, self.start[niche], self.end[niche] - 1))

    def _group(self, keys: np.ndarray) -> np.ndarray:
        local = keys // self.n_items
        return local * self.n_cat + self.pos_cat[keys - local * self.n_items]

    def _have(self, keys: np.ndarray, n_groups: int) -> np.ndarray:
        """Keys per group; group ``j * n_cat + c`` holds keys from ``j * n_items + cat_start[c]``."""
        n = n_groups // self.n_cat
        edges = (np.arange(n)[:, None] * self.n_items + self.cat_start).ravel()
        return np.diff(np.searchsorted(keys, np.append(edges, n * self.n_items)))

    def _fill(self, rng: np.random.Generator, keys: np.ndarray, probs: np.ndarray,
              deficit: np.ndarray) -> np.ndarray:
        """Weighted sampling without replacement (exponential keys) over the items a group lacks.

        Dense over the group's category, in blocks of rows; float32 halves the
        memory traffic (weights below 1e-30 tie at that floor).
        """
        out = []
        lacking = np.flatnonzero(deficit)
        for c in np.unique(lacking % self.n_cat):
            groups = lacking[lacking % self.n_cat == c]
            c0, size = self.cat_start[c], self.cat_size[c]
            block = max(1, _DENSE_CELLS // size)
            for b in range(0, groups.size, block):
                g = groups[b:b + block]
                us, need = g // self.n_cat, deficit[g]
                first, stop = np.searchsorted(keys, np.stack([us, us]) * self.n_items + [[c0], [c0 + size]])
                length = stop - first
                row = np.repeat(np.arange(g.size), length)
                # Position of each of these groups' keys: first[row] + rank within the group.
                rank = np.arange(row.size) - np.repeat(np.cumsum(length) - length, length)
                held = np.zeros((g.size, size), dtype=bool)
                held[row, keys[first[row] + rank] - us[row] * self.n_items - c0] = True
                weight = probs[us][:, self.pos_niche[c0:c0 + size]] * self.within[c0:c0 + size]
                weight = np.maximum(weight.astype(np.float32), np.float32(1e-30))
                prio = rng.standard_exponential(size=held.shape, dtype=np.float32)
                prio /= weight
                prio[held] = np.inf
                most = need.max()
                best = np.argpartition(prio, most - 1, axis=1)[:, :most]  # the `most` smallest
                rank = np.argsort(np.take_along_axis(prio, best, axis=1), axis=1)
                best = np.take_along_axis(best, rank, axis=1)
                take = np.arange(most) < need[:, None]
                out.append((us[:, None] * self.n_items + c0 + best)[take])
        return np.concatenate(out)


def _spill(want: np.ndarray, size: np.ndarray, extra: np.ndarray) -> np.ndarray:
    """Add ``extra[u]`` to row ``u`` of ``want``, filling the room left under ``size`` left to right."""
    room = np.maximum(size - want, 0)
    return want + np.clip(extra[:, None] - (np.cumsum(room, axis=1) - room), 0, room)


def _sorted_unique(keys: np.ndarray) -> np.ndarray:
    """Sorted distinct values (np.unique's hash path is much slower on large int64 arrays)."""
    keys = np.sort(keys)
    keep = np.ones(keys.size, dtype=bool)
    np.not_equal(keys[1:], keys[:-1], out=keep[1:])
    return keys[keep]


def _trim(rng: np.random.Generator, keys: np.ndarray, group: np.ndarray, want: np.ndarray,
          have: np.ndarray) -> np.ndarray:
    """Drop a random ``have - want`` of each group's keys (``group`` non-decreasing; keys stay sorted)."""
    if np.array_equal(have, want):
        return keys
    order = np.argsort(group + rng.random(keys.size))  # random order within each group
    starts = np.cumsum(have) - have
    rank = np.arange(keys.size) - starts[group[order]]
    keep = np.empty(keys.size, dtype=bool)
    keep[order] = rank < want[group[order]]
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


def _niches(rng: np.random.Generator, item_cat: np.ndarray, popularity: np.ndarray, n_cat: int,
            n_niches: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split every category into niches: each item's niche, each niche's category and share.

    A category gets one niche plus a part of the other ``n_niches - n_cat``
    proportional to its size minus one (largest remainders, in integers, so a
    category never has more niches than items). Its items, in random order,
    first fill one slot of every niche, the rest join a uniformly random niche.
    Niche ids are grouped by category (``niche_cat`` is non-decreasing); a
    niche's share is its part of its category's total popularity.
    """
    size = np.bincount(item_cat, minlength=n_cat)
    extra = n_niches - n_cat
    per_cat = np.ones(n_cat, dtype=np.int64)
    if extra:
        numerator = extra * (size - 1)
        share = numerator // (item_cat.size - n_cat)
        remainder = numerator % (item_cat.size - n_cat)
        share[np.argsort(-remainder, kind="stable")[: extra - share.sum()]] += 1
        per_cat += share
    first_niche = np.cumsum(per_cat) - per_cat
    order = np.lexsort((rng.random(item_cat.size), item_cat))
    cat = item_cat[order]
    rank = np.arange(cat.size) - np.searchsorted(cat, np.arange(n_cat))[cat]
    spread = (rng.random(cat.size) * per_cat[cat]).astype(np.int64)
    item_niche = np.empty(cat.size, dtype=np.int64)
    item_niche[order] = first_niche[cat] + np.where(rank < per_cat[cat], rank, spread)
    niche_cat = np.repeat(np.arange(n_cat), per_cat)
    niche_total = np.bincount(item_niche, weights=popularity, minlength=n_niches)
    cat_total = np.bincount(niche_cat, weights=niche_total, minlength=n_cat)
    return item_niche, niche_cat, niche_total / cat_total[niche_cat]


def _niche_tastes(rng: np.random.Generator, n_users: int, niche_cat: np.ndarray,
                  niche_share: np.ndarray) -> np.ndarray:
    """Per-user taste over the niches of each category: one sparse Dirichlet per category.

    Category ``c``'s Dirichlet has concentration ``_NICHE_ALPHA`` per niche on
    average, spread in proportion to ``niche_share`` (each niche's share of its
    category's popularity), so a user's expected niche taste is ``niche_share``
    and popular niches attract more users. float32 (the largest array of the
    generator); each row sums to 1 over the niches of every category.
    """
    first = np.searchsorted(niche_cat, np.arange(niche_cat[-1] + 1))
    per_cat = np.diff(np.append(first, niche_cat.size))
    alpha = (_NICHE_ALPHA * per_cat[niche_cat] * niche_share).astype(np.float32)
    taste = rng.standard_gamma(alpha, size=(n_users, niche_cat.size), dtype=np.float32)
    np.maximum(taste, np.float32(1e-30), out=taste)  # tiny shapes underflow to 0
    taste /= np.add.reduceat(taste, first, axis=1)[:, niche_cat]
    return taste


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


def _chunk_bounds(counts: np.ndarray, max_users: int) -> np.ndarray:
    """Chunk boundaries (user indices): about ``_CHUNK_DRAWS`` interactions, at most ``max_users`` users."""
    cum = np.cumsum(counts)
    cuts = np.searchsorted(cum, np.arange(_CHUNK_DRAWS, cum[-1], _CHUNK_DRAWS), side="right")
    every = np.arange(0, counts.size, max_users)
    return np.unique(np.concatenate([every, cuts, [counts.size]]))


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
    v = p["n_niches"]
    if not (isinstance(v, numbers.Integral) and not isinstance(v, bool)
            and (v == 0 or p["n_categories"] <= v <= n_i)):
        raise ValueError(f"n_niches: expected 0 (automatic) or an integer in [{p['n_categories']}, {n_i}] "
                         f"(n_categories to n_items), got {v!r}")
    real("popularity_exponent", 0.0, 10.0)
    real("personalization", 0.0, 1.0)
    real("activity_sigma", 0.0, 10.0)
    real("bias_strength", 0.0, 1.0)
    real("group_share", 0.0, 1.0)
    if p["biased_group"] not in ("F", "M"):
        raise ValueError(f"biased_group: expected 'F' or 'M', got {p['biased_group']!r}")
    cats = [f"cat_{c}" for c in range(p["n_categories"])]
    if p["biased_category"] not in cats:
        shown = f"'cat_0'..'{cats[-1]}'" if len(cats) > 1 else "'cat_0'"
        raise ValueError(f"biased_category: expected one of {shown}, got {p['biased_category']!r}")
