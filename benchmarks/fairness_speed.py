"""How much fairness metrics add to the relevance evaluation, at the scale benchmark's shape.

    .venv/bin/python benchmarks/fairness_speed.py

A fast proxy for the fairness line of ``benchmarks/scale.py`` (which needs
several minutes for data, ALS fits and implicit's evaluation). Builds data of
the same shape directly with numpy in a few seconds: 138,000 users x 27,000
items x about 20,000,000 distinct interactions (Zipf item popularity,
lognormal user activity), split 80/20 into train and test; one top-10 list
per test user drawn by popularity (distinct items, as a recommender returns);
a users table with ``gender``, ``age_group`` and ``activity_level`` and an
items table with ``category``, pandas categoricals as the synthetic generator
makes them. The fairness time is also given for the same labels as text
columns (as a CSV of the user's own data gives them), which costs the hashing
of every user's labels.

Times the calls ``training/_evaluate.py`` makes, with its inputs, alternating
over ``--repeats`` rounds (so none profits from a quiet moment):
``item_counts`` (the training entries per item, which a run counts once and
passes to both sides); the relevance evaluation ``evaluate_rankings`` given
those counts (per candidate); ``fairness_baseline`` (the list-independent half,
once per run); ``FairnessBaseline.score`` (per candidate and per sweep point);
and ``fairness_metrics`` (both halves in one call, for a single set of lists).
Also ``evaluate_rankings`` counting by itself, as a caller without the shared
counts runs it. Prints the medians and the ratios of the fairness time to the
relevance time (the requirement: fairness adds at most 25%), per candidate,
for one model alone (relevance = counting + ``evaluate_rankings``) and for a
run of ``--candidates`` models (counting once, relevance per model).

Then three breakdowns: where ``FairnessBaseline.score`` and
``fairness_baseline`` spend their time (cProfile, cumulative time of the
functions they call, grouped into parts), and the public building blocks
(``group_quality``, ``outcome_parity``, ...) each timed stand-alone on the
same inputs (they share work inside the report, so their sum can exceed it),
after the per-user category counts by packed products and by the
gather-and-scatter they replaced.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

SENSITIVE = ["gender", "age_group", "activity_level"]
# functions called by FairnessBaseline.score (and fairness_metrics), grouped into parts
PARTS = {
    "input checks, table columns": (
        "_as_binary_csr", "_check_item_counts", "_check_ids", "_check_users", "_check_head_share",
        "_check_not_empty", "_check_vectors", "_check_boot", "_column",
    ),
    "train passes: item popularity, user x category": (  # the first only without counts
        "_item_counts", "_category_counts", "popularity_groups",
    ),
    "popularity head/tail": ("_is_head", "_head_tail"),
    "attribute / category label encoding": ("_encode_groups", "take"),
    "protected-item outcome (contains, share)": (
        "_member_hits", "_share", "contains_group", "share_of_group",
    ),
    "group quality + parity + equal opportunity": (
        "_split_defined", "_overall", "_group_means", "_means", "_quality", "_parity", "_spread",
        "group_quality", "outcome_parity", "equal_opportunity",
    ),
    "group sums, all attributes (table, list mixes)": ("sums",),
    "bias amplification": (
        "_category_mix", "_list_mix", "_shares", "_amplification", "bias_amplification",
    ),
    "exposure + long-tail share": (
        "_exposure_per_item", "_exposure_report", "_tail_share", "log_rank_weight",
        "group_exposure", "long_tail_share",
    ),
    "relevant entries per item group": ("_relevant_items",),
}
TRANSPARENT = ("score", "_by_attribute")  # their callees are the parts
# the same for fairness_baseline, the list-independent half
BASELINE_PARTS = {
    "input checks (binary CSR, counts, users, columns)": (
        "_as_binary_csr", "_check_item_counts", "_check_users", "_check_head_share",
        "_check_not_empty", "_column", "_check_weighting",
    ),
    "train pass: user x category (item counts given)": ("_category_counts", "_item_counts"),
    "relevant entries per item": ("_relevant_items",),
    "attribute / category label encoding": ("_encode_groups", "take", "<dictcomp>"),
    "popularity head/tail": ("_is_head", "_head_tail"),
    "stacked group indicators (all attributes)": ("of",),
    "training category mix per group": ("_train_weights", "sums", "_shares"),
}
AGE_GROUPS = ("18-24", "25-34", "35-44", "45+")
AGE_SHARES = (0.25, 0.35, 0.22, 0.18)


def _median_time(fn: Callable[[], Any], repeats: int) -> tuple[Any, float]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return out, float(np.median(times))


def _zipf_cdf(rng: np.random.Generator, n_items: int, exponent: float) -> np.ndarray:
    weight = 1.0 / np.arange(1, n_items + 1) ** exponent
    weight = weight[rng.permutation(n_items)]  # popular items scattered over the indices
    cdf = np.cumsum(weight)
    return cdf / cdf[-1]


def build_data(
    *, n_users: int, n_items: int, n_interactions: int, k: int, n_categories: int, seed: int
) -> dict[str, Any]:
    """Train/test CSR, ranked lists, users and attribute tables of the benchmark's shape."""
    rng = np.random.default_rng(seed)
    cdf = _zipf_cdf(rng, n_items, 0.8)
    activity = rng.lognormal(0.0, 1.0, n_users)
    counts = np.clip(np.round(activity / activity.sum() * n_interactions * 1.08), 3, n_items // 2)
    counts = counts.astype(np.int64)
    rows = np.repeat(np.arange(n_users, dtype=np.int64), counts)
    cols = np.minimum(np.searchsorted(cdf, rng.random(rows.size)), n_items - 1)
    keys = np.sort(rows * n_items + cols)  # sorted by user then item
    del rows, cols
    keys = keys[np.concatenate([[True], keys[1:] != keys[:-1]])]  # distinct pairs
    in_test = rng.random(keys.size) < 0.2

    def csr(selected: np.ndarray) -> sp.csr_matrix:
        u, i = np.divmod(selected, n_items)
        indptr = np.zeros(n_users + 1, dtype=np.int64)
        np.cumsum(np.bincount(u, minlength=n_users), out=indptr[1:])
        data = np.ones(selected.size, dtype=np.float32)
        return sp.csr_matrix((data, i.astype(np.int32), indptr), shape=(n_users, n_items))

    train, test = csr(keys[~in_test]), csr(keys[in_test])
    n_per_user = np.bincount(keys // n_items, minlength=n_users)
    del keys, in_test
    users = np.flatnonzero(np.diff(test.indptr) > 0)

    # top-k lists: 2k popularity draws per user, first k distinct items in draw order
    draws = np.minimum(np.searchsorted(cdf, rng.random((users.size, 2 * k))), n_items - 1)
    order = np.argsort(draws, axis=1, kind="stable")
    sorted_draws = np.take_along_axis(draws, order, axis=1)
    first = np.ones_like(draws, dtype=bool)
    first_sorted = np.ones_like(draws, dtype=bool)
    first_sorted[:, 1:] = sorted_draws[:, 1:] != sorted_draws[:, :-1]
    np.put_along_axis(first, order, first_sorted, axis=1)
    position = np.cumsum(first, axis=1) - 1
    ids = np.full((users.size, k), -1, dtype=np.int64)
    keep = first & (position < k)
    ids[np.nonzero(keep)[0], position[keep]] = draws[keep]

    q1, q2 = np.quantile(n_per_user, [1 / 3, 2 / 3])
    activity_level = np.asarray(["low", "medium", "high"], dtype=object)[
        (n_per_user > q1).astype(int) + (n_per_user > q2).astype(int)
    ]
    # label columns as recsys.data.generate_synthetic makes them: categoricals from codes
    users_table = pd.DataFrame({
        "user_id": np.arange(n_users),
        "gender": pd.Categorical.from_codes(
            (rng.random(n_users) >= 0.4).astype(np.int8), categories=["F", "M"]
        ),
        "age_group": pd.Categorical.from_codes(
            rng.choice(len(AGE_GROUPS), n_users, p=AGE_SHARES), categories=list(AGE_GROUPS)
        ),
        "activity_level": pd.Categorical(activity_level, categories=["low", "medium", "high"]),
    })
    category = rng.integers(0, n_categories, n_items)
    items_table = pd.DataFrame({
        "item_id": np.arange(n_items),
        "category": pd.Categorical.from_codes(
            category, categories=[f"cat_{c}" for c in range(n_categories)]
        ),
    })
    return {
        "train": train, "test": test, "users": users, "ids": ids,
        "users_table": users_table, "items_table": items_table,
    }


def _profile_parts(
    fn: Callable[[], Any],
    repeats: int,
    parts: dict[str, tuple[str, ...]] = PARTS,
    transparent: tuple[str, ...] = TRANSPARENT,
) -> dict[str, float]:
    """Seconds per run of each part of ``fn`` (``FairnessBaseline.score`` with PARTS).

    A function's time counts where ``transparent[0]`` (the profiled
    function) or another of the ``transparent`` helpers calls it; the
    remainder is the numpy work done in those functions themselves.
    """
    profile = cProfile.Profile()
    profile.enable()
    for _ in range(repeats):
        fn()
    profile.disable()
    stats = pstats.Stats(profile).stats  # {(file, line, name): (cc, nc, tt, ct, callers)}
    top = next(key for key in stats if key[2] == transparent[0])
    part_of = {func: part for part, funcs in parts.items() for func in funcs}
    rest = f"rest (numpy work in {transparent[0]} itself)"
    out: dict[str, float] = {}
    for key, (*_, callers) in stats.items():
        if key[2] in transparent:
            continue
        for caller, (*_, cumulative) in callers.items():
            if caller[2] in transparent:
                part = part_of.get(key[2], rest)
                out[part] = out.get(part, 0.0) + cumulative
    out[rest] = out.get(rest, 0.0) + stats[top][3] - sum(out.values())
    return {part: t / repeats for part, t in out.items()}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--users", type=int, default=138_000)
    p.add_argument("--items", type=int, default=27_000)
    p.add_argument("--interactions", type=int, default=20_000_000)
    p.add_argument("--categories", type=int, default=8)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--candidates", type=int, default=3, help="models in a run (default config: 3)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-breakdown", action="store_true", help="only the two totals")
    args = p.parse_args(argv)

    from evaluation import (
        bias_amplification,
        contains_group,
        equal_opportunity,
        evaluate_rankings,
        fairness_baseline,
        fairness_metrics,
        group_exposure,
        group_quality,
        item_counts,
        long_tail_share,
        outcome_parity,
        popularity_groups,
        share_of_group,
    )

    t0 = time.perf_counter()
    d = build_data(
        n_users=args.users, n_items=args.items, n_interactions=args.interactions, k=args.k,
        n_categories=args.categories, seed=args.seed,
    )
    train, test, users, ids = d["train"], d["test"], d["users"], d["ids"]
    users_table, items_table = d["users_table"], d["items_table"]
    print(
        f"data: {train.shape[0]:,} users x {train.shape[1]:,} items, {train.nnz:,} train + "
        f"{test.nnz:,} test interactions, {users.size:,} lists of {args.k} "
        f"(built in {time.perf_counter() - t0:.1f}s)"
    )
    codes = np.asarray(items_table["category"].astype("category").cat.codes)
    counts = item_counts(train)

    def relevance() -> Any:
        return evaluate_rankings(
            ids, users=users, relevant=test, train=train, item_category=codes, k=args.k,
            item_counts=counts,
        )

    def relevance_counting() -> Any:
        return evaluate_rankings(
            ids, users=users, relevant=test, train=train, item_category=codes, k=args.k
        )

    report = relevance()
    if report.summary() != relevance_counting().summary():
        raise AssertionError("evaluate_rankings differs with the shared item counts")

    settings = {
        "users": users, "users_table": users_table, "items_table": items_table, "train": train,
        "relevant": test, "sensitive": SENSITIVE, "item_group": "popularity",
        "protected_group": "tail", "item_category": "category", "head_share": 0.8,
        "amplification_weighting": "user", "item_counts": counts,
    }

    def baseline() -> Any:
        return fairness_baseline(**settings)

    base = baseline()

    def score() -> Any:
        return base.score(report, ids[:, : args.k], n_boot=None, random_state=0)

    def fairness() -> Any:
        return fairness_metrics(
            report=report, ids=ids[:, : args.k], n_boot=None, random_state=0, **settings
        )

    fair = fairness()
    if score().flat() != fair.flat():
        raise AssertionError("FairnessBaseline.score differs from fairness_metrics")
    as_text = {
        "users_table": users_table.astype({a: "str" for a in SENSITIVE}),
        "items_table": items_table.astype({"category": "str"}),
    }

    def fairness_text() -> Any:
        return fairness_metrics(
            report=report, ids=ids[:, : args.k], n_boot=None, random_state=0,
            **{**settings, **as_text},
        )

    if fairness_text().flat() != fair.flat():
        raise AssertionError("fairness_metrics differs with text label columns")
    unshared = {**settings, "item_counts": None}
    if fairness_metrics(report=report, ids=ids[:, : args.k], **unshared).flat() != fair.flat():
        raise AssertionError("fairness_metrics differs with the shared item counts")
    timed = {"counts": lambda: item_counts(train), "relevance": relevance, "baseline": baseline,
             "score": score, "fairness": fairness, "relevance_counting": relevance_counting,
             "fairness_text": fairness_text}
    runs: dict[str, list[float]] = {name: [] for name in timed}
    for _ in range(args.repeats):
        for name, fn in timed.items():  # one run each, alternating
            runs[name].append(_median_time(fn, 1)[1])
    t = {name: float(np.median(v)) for name, v in runs.items()}
    t_rel, t_count, n = t["relevance"], t["counts"], args.candidates
    print(f"median of {args.repeats} alternating runs (min in brackets)")
    labels = {
        "counts": "item_counts (once per run)",
        "relevance": "evaluate_rankings, counts given",
        "relevance_counting": "  (counting by itself)",
        "baseline": "fairness_baseline (once per run)",
        "score": "FairnessBaseline.score (per model)",
        "fairness": "fairness_metrics (both at once)",
        "fairness_text": "  (labels as text columns)",
    }
    for name, label in labels.items():
        print(f"  {label:38s} {t[name]:8.3f} s  ({min(runs[name]):.3f})")
    print(f"  {len(fair.flat())} flat fairness metrics")
    print("fairness / relevance, target <= 25%:")
    print(f"  per model, baseline shared         {t['score'] / t_rel:7.1%}")
    print(f"  one model alone (fairness_metrics) {t['fairness'] / (t_count + t_rel):7.1%}")
    print(f"    (labels as text columns)         {t['fairness_text'] / (t_count + t_rel):7.1%}")
    run_fair, run_rel = t["baseline"] + n * t["score"], t_count + n * t_rel
    print(f"  a run of {n} models                  {run_fair / run_rel:7.1%}")
    if args.no_breakdown:
        return

    print(f"inside FairnessBaseline.score (cProfile, mean of {args.repeats} runs, "
          "adds some overhead):")
    parts = _profile_parts(score, args.repeats)
    for name, t in sorted(parts.items(), key=lambda item: -item[1]):
        print(f"  {name:48s} {t * 1000:8.1f} ms  {t / t_rel:7.1%} of relevance")
    print(f"inside fairness_baseline (cProfile, mean of {args.repeats} runs):")
    parts = _profile_parts(baseline, args.repeats, BASELINE_PARTS, ("fairness_baseline",))
    for name, t in sorted(parts.items(), key=lambda item: -item[1]):
        print(f"  {name:48s} {t * 1000:8.1f} ms  {t / t_rel:7.1%} of relevance")

    scored = ids[np.diff(test.indptr)[users] > 0]  # the evaluated users' lists
    labels = popularity_groups(train)
    tail = labels == "tail"
    outcome = contains_group(scored, tail)
    category = items_table["category"].to_numpy()
    columns = {a: users_table[a].to_numpy() for a in SENSITIVE}
    groups = {a: pd.Series(c[report.users], name=a) for a, c in columns.items()}
    from evaluation._counts import _category_counts, _scattered_code_counts

    blocks: dict[str, Callable[[], Any]] = {
        "user x category counts, packed products": lambda: _category_counts(
            train, codes.astype(np.int64), args.categories
        ),
        "  the same by gathering and scattering codes": lambda: _scattered_code_counts(
            train.indptr, train.indices, codes.astype(np.int64), args.categories
        ),
        "popularity_groups (train)": lambda: popularity_groups(train),
        "contains_group + share_of_group": lambda: (
            contains_group(scored, tail), share_of_group(scored, tail)
        ),
        "group_quality x3": lambda: [group_quality(report.per_user, g) for g in groups.values()],
        "outcome_parity x3": lambda: [outcome_parity(outcome, g) for g in groups.values()],
        "equal_opportunity x3": lambda: [
            equal_opportunity(report.per_user["recall"], g) for g in groups.values()
        ],
        "group_exposure (+ relevant rows)": lambda: group_exposure(
            ids, labels, relevant=test[np.unique(users)]
        ),
        "long_tail_share": lambda: long_tail_share(ids, tail),
        "bias_amplification x3": lambda: [
            bias_amplification(ids, train, c, category, users=users) for c in columns.values()
        ],
    }
    print("building blocks, each stand-alone (median):")
    for name, fn in blocks.items():
        _, t = _median_time(fn, args.repeats)
        print(f"  {name:48s} {t * 1000:8.1f} ms  {t / t_rel:7.1%} of relevance")


if __name__ == "__main__":
    main()
