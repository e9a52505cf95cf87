"""The shared fast paths of the fairness metrics equal slow, straightforward computations.

``fairness_metrics`` encodes each attribute once, counts the training matrix in
sliced passes (tested in ``test_counts.py``) and groups every per-user vector in
one product. Here each helper is compared with a loop-by-loop computation on
random data, and ``fairness_metrics`` with the plain composition of the public
metric functions.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import evaluation._counts as counts_module
from evaluation import (
    bias_amplification,
    contains_group,
    equal_opportunity,
    evaluate_rankings,
    fairness_baseline,
    fairness_metrics,
    group_exposure,
    group_quality,
    long_tail_share,
    outcome_parity,
    popularity_groups,
    rank_exposure,
    share_of_group,
)
from evaluation._counts import _scatter_add
from evaluation._exposure import _list_mix
from evaluation._fairness import (
    _encode_groups,
    _group_means,
    _GroupSums,
    _overall,
    _split_defined,
    _sum_by_group,
)

SEEDS = range(12)


def _label(value: object) -> str:
    """The documented rule: missing values are "unknown", everything else its str()."""
    missing = value is None or (isinstance(value, float) and math.isnan(value))
    return "unknown" if missing else str(value)


def _random_labels(rng: np.random.Generator, n: int) -> np.ndarray:
    pool = np.array(["a", "b", "unknown", 1, "1", 2.5, None, float("nan")], dtype=object)
    return pool[rng.integers(0, pool.size, n)]


def _random_case(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    n_users, n_items = int(rng.integers(4, 60)), int(rng.integers(3, 25))
    k = int(rng.integers(1, 5))
    train = sp.random(n_users, n_items, density=0.3, random_state=seed, format="lil")
    train[0, 0] = 1.0  # never empty
    train = train.tocsr()
    train.data[:] = rng.integers(1, 6, train.nnz)  # ratings: every stored entry counts once
    relevant = sp.random(n_users, n_items, density=0.2, random_state=seed + 100, format="lil")
    relevant[1, 1] = 1.0  # someone is evaluated
    relevant = relevant.tocsr()
    users = rng.permutation(n_users)[: int(rng.integers(2, n_users + 1))]
    if seed % 3 == 0:
        users = np.concatenate([users, users[:2]])  # a user listed twice
    ids = rng.integers(-1 if seed % 2 else 0, n_items, (users.size, k))
    users_table = pd.DataFrame({
        "gender": rng.choice(["F", "M"], n_users),
        "age": np.asarray(rng.choice(["<18", "18-24", "56+", None], n_users), dtype=object),
        "level": rng.integers(0, 3, n_users),
        "score": rng.choice([1.0, 2.5, np.nan], n_users),
    })
    if seed % 4 == 1:
        users_table["gender"] = users_table["gender"].astype("category")
    items_table = pd.DataFrame({"category": rng.choice(list("xyzw"), n_items)})
    return {
        "train": train, "relevant": relevant, "users": users, "ids": ids, "k": k,
        "users_table": users_table, "items_table": items_table,
    }


# --------------------------------------------------------------------- helpers
@pytest.mark.parametrize("seed", SEEDS)
def test_encode_groups_sorts_string_labels_with_missing_as_unknown(seed):
    values = _random_labels(np.random.default_rng(seed), 50)
    groups = _encode_groups(values, name="x")
    expected = [_label(v) for v in values]
    assert groups.names == sorted(set(expected))
    assert [groups.names[c] for c in groups.codes] == expected
    # a pandas Series (text, categorical) is factorized natively with the same labels
    text = pd.Series([v if isinstance(v, str) else None for v in values])
    for series in (text, text.astype("category"), text.astype(object)):
        encoded = _encode_groups(series, name="x")
        assert [encoded.names[c] for c in encoded.codes] == [_label(v) for v in text]


@pytest.mark.parametrize("seed", SEEDS)
def test_categoricals_are_encoded_from_their_codes_as_their_labels(seed):
    """Unused categories, missing values, an unused "unknown" and categories whose
    strings collide (1 and "1") give the groups of the same labels as an object array."""
    rng = np.random.default_rng(seed)
    pool = [1, "1", "a", "b", "unknown", "never"]
    values = [pool[i] if i < 4 else None for i in rng.integers(0, 5, 40)]
    series = pd.Series(pd.Categorical(values, categories=pool))
    encoded = _encode_groups(series, name="x")
    plain = _encode_groups(np.asarray(values, dtype=object), name="x")
    assert encoded.names == plain.names
    np.testing.assert_array_equal(encoded.codes, plain.codes)
    assert "never" not in encoded.names


def test_take_drops_groups_without_rows():
    groups = _encode_groups(np.array(["b", "a", "c", "a"], dtype=object), name="x")
    subset = groups.take(np.array([0, 3]))
    assert subset.names == ["a", "b"] and subset.codes.tolist() == [1, 0]


@pytest.mark.parametrize("seed", SEEDS)
def test_group_means_equal_nanmean_per_group(seed):
    rng = np.random.default_rng(seed)
    n = 80
    columns = rng.random((n, 4))
    columns[rng.random((n, 4)) < 0.2] = np.nan
    columns[:, 1] = rng.random(n)  # one column without nan
    columns[:, 3] = np.where(rng.random(n) < 0.5, np.nan, columns[:, 3])
    groups = _encode_groups(rng.choice(list("pqr"), n).astype(object), name="x")
    means = _group_means(_split_defined(columns), groups)
    for g, name in enumerate(groups.names):
        rows = columns[groups.codes == g]
        for j in range(columns.shape[1]):
            defined = rows[~np.isnan(rows[:, j]), j]
            expected = defined.mean() if defined.size else np.nan
            np.testing.assert_allclose(means[g, j], expected, rtol=1e-12, err_msg=name)


def test_overall_is_exactly_nanmean():
    rng = np.random.default_rng(3)
    vectors = {"full": rng.random(1001), "some_nan": rng.random(1001)}
    vectors["all_nan"] = np.full(4, np.nan)
    vectors["some_nan"][::7] = np.nan
    overall = _overall(vectors)
    assert overall["full"] == np.nanmean(vectors["full"])  # bit for bit
    assert overall["some_nan"] == np.nanmean(vectors["some_nan"])
    assert math.isnan(overall["all_nan"])
    # with the nan positions known (as the scoring passes them) the numbers are the same
    same_length = {name: v for name, v in vectors.items() if v.size == 1001}
    same_length["all_nan"] = np.full(1001, np.nan)
    known = _overall(same_length, _split_defined(list(same_length.values())).with_nan)
    assert math.isnan(known.pop("all_nan"))
    assert known == {"full": overall["full"], "some_nan": overall["some_nan"]}


@pytest.mark.parametrize("path", ["kernel", "mixed index dtypes", "public toarray"])
@pytest.mark.parametrize("seed", SEEDS)
def test_scatter_add_adds_in_entry_order_like_bincount(seed, path, monkeypatch):
    rng = np.random.default_rng(seed)
    n_rows, n_columns = int(rng.integers(1, 6)), int(rng.integers(1, 9))
    row_len = rng.integers(0, 30, n_rows)  # empty rows too
    indptr = np.concatenate([[0], np.cumsum(row_len)])
    columns = rng.integers(0, n_columns, indptr[-1])  # repeated columns within a row
    values = rng.random(indptr[-1]) * 10 ** rng.uniform(-3, 3, indptr[-1])
    if path == "mixed index dtypes":  # scipy's kernel would cast them: the public call does
        columns = columns.astype(np.int32)
    if path == "public toarray":  # a scipy without the private kernel
        monkeypatch.setattr(counts_module, "_csr_todense", None)
    out = np.full((n_rows, n_columns), np.nan)  # zeroed by _scatter_add
    _scatter_add(values, columns, indptr, out=out)
    keys = np.repeat(np.arange(n_rows), row_len) * n_columns + columns
    expected = np.bincount(keys, weights=values, minlength=n_rows * n_columns)
    np.testing.assert_array_equal(out.ravel(), expected)  # bit for bit: the same order of sums


@pytest.mark.parametrize("seed", SEEDS)
def test_group_sums_of_stacked_groupings_equal_row_by_row_sums(seed):
    rng = np.random.default_rng(seed)
    n = 60
    groupings = [
        _encode_groups(rng.choice(list("pqr"), n).astype(object), name="x"),
        _encode_groups(rng.choice(list("ab"), n).astype(object), name="y"),
        _encode_groups(np.array(["only"] * n, dtype=object), name="z"),
    ]
    columns = rng.random((n, 4)) * 10 ** rng.uniform(-3, 3, (n, 4))
    rows = rng.integers(0, n, 45)  # one grouping entry per row of a second table
    weights = rng.random(n) * 10 ** rng.uniform(-3, 3, n)
    weights[::5] = 0.0
    counts = rng.integers(0, 9, (n, 3))  # integer tables are weighted as floats
    cases = [(None, columns, None), (rows, columns[:45], None), (None, columns, weights),
             (rows, columns[:45], weights[:45]), (None, counts, weights)]
    for picked, table, weight in cases:
        sums = _GroupSums.of(groupings, rows=picked, weights=weight).sums(table)
        for groups, total in zip(groupings, sums, strict=True):
            codes = groups.codes if picked is None else groups.codes[picked]
            row_weight = np.ones(len(table)) if weight is None else weight
            expected = np.zeros((len(groups.names), table.shape[1]))
            for code, values, w in zip(codes, table, row_weight, strict=True):  # rows in order
                expected[code] += values * w
            np.testing.assert_array_equal(total, expected)
            np.testing.assert_array_equal(
                total, _sum_by_group(groups, table, rows=picked, weights=weight)
            )


def test_split_defined_takes_vectors_or_an_array():
    rng = np.random.default_rng(5)
    columns = rng.random((40, 3))
    columns[::4, 1] = np.nan
    outcome = rng.random(40) < 0.5
    from_array = _split_defined(np.column_stack([columns, outcome]))
    from_vectors = _split_defined([*columns.T, outcome])
    np.testing.assert_array_equal(from_vectors.table, from_array.table)
    assert from_vectors.m == from_array.m == 4
    assert from_vectors.with_nan.tolist() == from_array.with_nan.tolist() == [1]
    assert from_vectors.table.flags.c_contiguous


@pytest.mark.parametrize("seed", SEEDS)
def test_list_mix_and_exposure_equal_entry_by_entry_sums(seed):
    rng = np.random.default_rng(seed)
    n_items, k = 15, int(rng.integers(1, 6))
    ids = rng.integers(-1 if seed % 2 else 0, n_items, (20, k))  # odd seeds: padding
    categories = _encode_groups(rng.choice(list("xyz"), n_items).astype(object), name="c")
    for weighting in ("user", "interaction"):
        expected = np.zeros((ids.shape[0], len(categories.names)))
        for r, row in enumerate(ids):
            items = row[row >= 0]
            for item in items:
                expected[r, categories.codes[item]] += 1.0
            if weighting == "user":
                expected[r] *= 1.0 / max(items.size, 1)
        np.testing.assert_array_equal(_list_mix(ids, categories, weighting), expected)
    w = 1.0 / np.log2(np.arange(2, k + 2))
    valid = ids >= 0
    weights = np.broadcast_to(w, ids.shape)[valid]
    np.testing.assert_array_equal(
        rank_exposure(ids, n_items), np.bincount(ids[valid], weights=weights, minlength=n_items)
    )


# --------------------------------------------------------- bias amplification
def _slow_amplification(ids, train, user_group, item_category, users, weighting):
    """Entry-by-entry category counts per group, as the definition reads."""
    dense = train.toarray() != 0
    group = [_label(v) for v in user_group]
    category = [_label(v) for v in item_category]
    groups, categories = sorted(set(group)), sorted(set(category))
    counts = {side: np.zeros((len(groups), len(categories))) for side in ("train", "rec")}
    for u in range(dense.shape[0]):
        items = np.flatnonzero(dense[u])
        if weighting == "user" and (u not in set(users.tolist()) or not items.size):
            continue
        for i in items:
            weight = 1 / items.size if weighting == "user" else 1.0
            counts["train"][groups.index(group[u]), categories.index(category[i])] += weight
    for row, u in zip(ids, users, strict=True):
        items = row[row >= 0]
        for i in items:
            weight = 1 / items.size if weighting == "user" else 1.0
            counts["rec"][groups.index(group[u]), categories.index(category[i])] += weight
    shares = {}
    for side, c in counts.items():
        total = c.sum(axis=1, keepdims=True)
        with np.errstate(invalid="ignore"):
            shares[side] = np.where(total > 0, c / np.where(total > 0, total, 1), np.nan)
    return groups, categories, shares["train"], shares["rec"]


@pytest.mark.parametrize("weighting", ["user", "interaction"])
@pytest.mark.parametrize("seed", SEEDS)
def test_bias_amplification_equals_entry_by_entry_counts(seed, weighting):
    case = _random_case(seed)
    user_group = _random_labels(np.random.default_rng(seed), case["train"].shape[0])
    category = case["items_table"]["category"].to_numpy()
    ba = bias_amplification(
        case["ids"], case["train"], user_group, category, users=case["users"], weighting=weighting
    )
    groups, categories, train_share, rec_share = _slow_amplification(
        case["ids"], case["train"], user_group, category, case["users"], weighting
    )
    assert ba.groups == groups and ba.categories == categories
    np.testing.assert_allclose(ba.train_share, train_share, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(ba.rec_share, rec_share, rtol=1e-12, atol=1e-15)


# ---------------------------------------------------------- fairness_metrics
def _composed(report, *, ids, users, users_table, items_table, train, relevant, sensitive,
              weighting, item_group, protected_group):
    """fairness_metrics' numbers from the public functions, one call per metric and attribute."""
    keep = np.diff(relevant.tocsr().indptr)[users] > 0
    labels = (
        popularity_groups(train) if item_group == "popularity"
        else items_table[item_group].to_numpy()
    )
    protected = np.array([_label(v) for v in labels]) == protected_group
    outcome = contains_group(ids[keep], protected)
    out = {}
    for attr in sensitive:
        column = users_table[attr].to_numpy()
        groups = pd.Series(column[report.users], name=attr)
        out[attr] = {
            "quality": group_quality(report.per_user, groups),
            "parity": outcome_parity(outcome, groups),
            "eo": equal_opportunity(report.per_user["recall"], groups),
            "amplification": bias_amplification(
                ids, train, column, items_table["category"].to_numpy(), users=users,
                weighting=weighting,
            ),
        }
    shares = share_of_group(ids[keep], protected)
    return out, {
        "exposure": group_exposure(ids, labels, relevant=relevant.tocsr()[np.unique(users)]),
        "contains_rate": float(outcome.mean()),
        "list_share": float(np.nanmean(shares)) if (~np.isnan(shares)).any() else math.nan,
        "long_tail_share": long_tail_share(ids, popularity_groups(train) == "tail"),
    }


def _assert_close(actual, expected):
    if isinstance(expected, dict):
        assert list(actual) == list(expected)
        for key in expected:
            _assert_close(actual[key], expected[key])
    elif isinstance(expected, (float, np.floating)) and math.isnan(expected):
        assert math.isnan(actual)
    elif isinstance(expected, (float, np.floating)):
        assert actual == pytest.approx(expected, rel=1e-12, abs=1e-15)
    else:
        assert actual == expected


@pytest.mark.parametrize(
    ("weighting", "item_group", "protected_group"),
    [("user", "popularity", "tail"), ("interaction", "category", "x")],
)
@pytest.mark.parametrize("seed", SEEDS)
def test_fairness_metrics_equals_the_public_functions_composed(
    seed, weighting, item_group, protected_group
):
    case = _random_case(seed)
    ids, users, k = case["ids"], case["users"], case["k"]
    if seed % 2:  # only users with a relevant item, as in a run (the baseline shares indicators)
        evaluated = np.diff(case["relevant"].indptr)[users] > 0
        ids, users = ids[evaluated], users[evaluated]
    report = evaluate_rankings(ids, users=users, relevant=case["relevant"], train=case["train"])
    sensitive = ["gender", "age", "level", "score"]
    inputs = {
        "ids": ids, "users": users, "users_table": case["users_table"],
        "items_table": case["items_table"], "train": case["train"],
        "relevant": case["relevant"], "sensitive": sensitive,
    }
    if item_group != "popularity" and protected_group not in set(case["items_table"][item_group]):
        protected_group = str(case["items_table"][item_group].iloc[0])  # a group this catalogue has
    fr = fairness_metrics(
        report=report, amplification_weighting=weighting, item_group=item_group,
        protected_group=protected_group, **inputs,
    )
    per_attribute, items = _composed(
        report, weighting=weighting, item_group=item_group, protected_group=protected_group,
        **inputs,
    )
    assert fr.k == k
    for attr, expected in per_attribute.items():
        _assert_close(vars(fr.quality[attr]), vars(expected["quality"]))
        _assert_close(vars(fr.parity[attr]), vars(expected["parity"]))
        _assert_close(dict(enumerate(fr.equal_opportunity[attr])), dict(enumerate(expected["eo"])))
        actual_ba, expected_ba = fr.amplification[attr], expected["amplification"]
        assert actual_ba.groups == expected_ba.groups
        for name in ("train_share", "rec_share", "amplification", "train_gap", "rec_gap"):
            np.testing.assert_allclose(
                getattr(actual_ba, name), getattr(expected_ba, name), rtol=1e-12, atol=1e-15
            )
    _assert_close(vars(fr.exposure), vars(items["exposure"]))
    for name in ("contains_rate", "list_share", "long_tail_share"):
        _assert_close(getattr(fr, name), items[name])
    # numeric columns are labelled by their values' strings
    assert set(fr.quality["level"].groups) <= {"0", "1", "2"}
    assert set(fr.quality["score"].groups) <= {"1.0", "2.5", "unknown"}


# ------------------------------------------------ baseline built once, lists scored many times
def _nan_equal_dicts(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name in a:
        if math.isnan(a[name]):
            assert math.isnan(b[name]), name
        else:
            assert a[name] == b[name], name  # same arithmetic in the same order: bit for bit


@pytest.mark.parametrize("weighting", ["user", "interaction"])
@pytest.mark.parametrize("seed", SEEDS)
def test_one_baseline_scores_every_list_set_as_fairness_metrics_does(seed, weighting):
    case = _random_case(seed)
    rng = np.random.default_rng(seed + 7)
    users, n_items = case["users"], case["train"].shape[1]
    data = {
        "users": users, "users_table": case["users_table"], "items_table": case["items_table"],
        "train": case["train"], "relevant": case["relevant"],
        "sensitive": ["gender", "age", "level", "score"],
        "amplification_weighting": weighting,
    }
    baseline = fairness_baseline(**data)
    n_rows, k = case["ids"].shape

    def distinct_lists() -> np.ndarray:  # k distinct items per row (padding beyond n_items)
        ids = np.argsort(rng.random((n_rows, n_items)), axis=1)[:, :k]
        return np.pad(ids, ((0, 0), (0, k - ids.shape[1])), constant_values=-1)

    lists = [case["ids"], *(distinct_lists() for _ in range(3))]
    flats = []
    for ids in lists:  # candidates of one run: different lists of the same users
        report = evaluate_rankings(ids, users=users, relevant=case["relevant"], train=case["train"])
        expected = fairness_metrics(report=report, ids=ids, **data).flat()
        actual = baseline.score(report, ids).flat()
        _nan_equal_dicts(actual, expected)
        flats.append(actual)
    # the lists differ, so the scores must too: the baseline holds no list-dependent state
    assert any(f != flats[0] for f in flats[1:])


def test_baseline_refuses_lists_of_other_users():
    case = _random_case(1)
    users, relevant, train = case["users"], case["relevant"], case["train"]
    baseline = fairness_baseline(
        users=users, users_table=case["users_table"], items_table=case["items_table"],
        train=train, relevant=relevant, sensitive=["gender"],
    )
    ids = case["ids"]
    report = evaluate_rankings(ids, users=users, relevant=relevant, train=train)
    with pytest.raises(ValueError, match=rf"ids: expected one list per user of the baseline \({users.size} rows\), got {users.size - 1}"):
        baseline.score(report, ids[:-1])
    other = users[::-1].copy()
    other_report = evaluate_rankings(ids, users=other, relevant=relevant, train=train)
    if not np.array_equal(other_report.users, report.users):
        with pytest.raises(ValueError, match="report: its users are not the rows"):
            baseline.score(other_report, ids)
    with pytest.raises(ValueError, match=r"ids: item indices must lie in \[0, "):
        baseline.score(report, ids + train.shape[1])
