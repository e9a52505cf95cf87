"""The evaluation harness: ranked lists plus held-out relevance in, a report out.

:func:`evaluate_rankings` never calls a model; it scores the ``ids`` it is
given. :class:`RelevanceReport` is an immutable value: per-user vectors for
every metric (aligned with the evaluated users), catalogue-level numbers, and
flat MLflow-safe summaries.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from evaluation._beyond import (
    _popularity,
    average_popularity,
    catalog_coverage,
    exposure_gini,
    intra_list_diversity,
    novelty,
)
from evaluation._counts import _check_item_counts, _counted_entries, _item_counts
from evaluation._ranking import (
    _as_binary_csr,
    _check_ids,
    _check_users,
    average_precision_at_k,
    hit_matrix,
    hit_rate_at_k,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
    reciprocal_rank_at_k,
)

__all__ = ["RelevanceReport", "evaluate_rankings"]


def _frozen(values: np.ndarray) -> np.ndarray:
    arr = np.array(values, copy=True)
    arr.setflags(write=False)
    return arr


def _mean(values: np.ndarray) -> float:
    """Mean over the defined (non-nan) values; nan when there are none."""
    defined = values[~np.isnan(values)]
    return float(defined.mean()) if defined.size else float("nan")


@dataclass(frozen=True, kw_only=True, eq=False)
class RelevanceReport:
    """Ranking-quality results for one set of ranked lists.

    Parameters
    ----------
    k : int
        List length the metrics were computed at.
    users : ndarray of int
        The evaluated users (those with at least one relevant item), in the
        order of the rows of ``ids``.
    per_user : dict of str to ndarray
        One float64 vector per metric, aligned with ``users``: ``precision``,
        ``recall``, ``ndcg``, ``map``, ``mrr``, ``hit_rate``,
        ``avg_popularity``, ``novelty`` and, when categories were given,
        ``diversity``.
    catalog : dict of str to float
        ``coverage`` and ``exposure_gini`` over every list that was scored.

    The arrays are copied and made read-only on construction.

    Examples
    --------
    >>> report = RelevanceReport(
    ...     k=2, users=np.array([3, 5]),
    ...     per_user={"precision": np.array([0.5, 1.0])}, catalog={"coverage": 0.25})
    >>> report.summary()
    {'precision_at_2': 0.75, 'coverage_at_2': 0.25, 'n_users_evaluated': 2.0}
    """

    k: int
    users: np.ndarray
    per_user: dict[str, np.ndarray]
    catalog: dict[str, float]

    def __post_init__(self) -> None:
        if isinstance(self.k, bool) or not isinstance(self.k, (int, np.integer)) or self.k < 1:
            raise ValueError(f"RelevanceReport.k: expected a positive integer, got {self.k!r}")
        users = np.asarray(self.users)
        if users.ndim != 1:
            raise ValueError(
                f"RelevanceReport.users: expected a 1-D array, got shape {users.shape}"
            )
        per_user = {}
        for name, values in self.per_user.items():
            arr = np.asarray(values, dtype=np.float64)
            if arr.shape != users.shape:
                raise ValueError(
                    f"RelevanceReport.per_user[{name!r}]: expected one value per evaluated user "
                    f"({users.size}), got shape {arr.shape}"
                )
            per_user[name] = _frozen(arr)
        object.__setattr__(self, "k", int(self.k))
        object.__setattr__(self, "users", _frozen(users))
        object.__setattr__(self, "per_user", per_user)
        object.__setattr__(self, "catalog", {n: float(v) for n, v in self.catalog.items()})

    @property
    def n_users_evaluated(self) -> int:
        return int(self.users.size)

    def summary(self) -> dict[str, float]:
        """Flat ``{name}_at_{k}`` numbers: user means of per-user metrics, catalogue values,
        then ``n_users_evaluated``.

        Users whose list holds only padding have no popularity or novelty
        (``nan``) and are left out of those two means.
        """
        out = {f"{name}_at_{self.k}": _mean(v) for name, v in self.per_user.items()}
        out.update({f"{name}_at_{self.k}": v for name, v in self.catalog.items()})
        out["n_users_evaluated"] = float(self.n_users_evaluated)
        return out

    def per_user_frame(self) -> pd.DataFrame:
        """One row per evaluated user: column ``user`` then one column per metric."""
        return pd.DataFrame({"user": self.users, **self.per_user})


def _check_k(k: object, width: int) -> int:
    if k is None:
        return width
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= width:
        raise ValueError(
            f"k: expected a positive integer no larger than the list width ({width}), got {k!r}"
        )
    return int(k)


def evaluate_rankings(
    ids: np.ndarray,
    *,
    users: np.ndarray,
    relevant: sp.spmatrix | sp.sparray,
    train: sp.spmatrix | sp.sparray,
    item_category: np.ndarray | None = None,
    k: int | None = None,
    item_counts: np.ndarray | None = None,
) -> RelevanceReport:
    """Score ranked lists against held-out relevance.

    Parameters
    ----------
    ids : ndarray of int, shape (n_rows, width)
        Ranked item indices, best first, ``-1`` = padding.
    users : ndarray of int, shape (n_rows,)
        User (row of ``relevant`` and ``train``) of each row of ``ids``.
    relevant : scipy sparse matrix, shape (n_users, n_items)
        Held-out relevance; stored nonzero entries are relevant items.
    train : scipy sparse matrix, shape (n_users, n_items)
        Training interactions. Item popularity is the share of its rows
        (users) with a nonzero entry on the item (:func:`popularity_share`).
    item_category : ndarray of int, shape (n_items,), optional
        Category code per item; adds the ``diversity`` metric.
    k : int, optional
        Cut-off; defaults to ``width``; smaller values truncate the lists.
    item_counts : ndarray of int, shape (n_items,), optional
        ``item_counts(train)``, when the caller has it: a run counts its
        training matrix once and passes the counts here (for every model)
        and to ``fairness_baseline``. Counted from ``train`` when omitted.
        Counts that add up to all of ``train``'s stored entries also vouch
        that none of them is zero, so ``train`` is not scanned for zeros.

    Returns
    -------
    RelevanceReport
        Per-user metrics for the users with at least one relevant item (the
        others are dropped and not counted in ``n_users_evaluated``);
        ``coverage`` and ``exposure_gini`` over all ``n_rows`` lists.
        Novelty floors popularity at half a training user
        (``0.5 / n_users``), see :func:`novelty`.

    Raises
    ------
    ValueError
        When no row has a relevant item, or on malformed inputs.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> train = sp.csr_matrix([[1, 1, 0, 0], [1, 0, 0, 0]])
    >>> relevant = sp.csr_matrix([[0, 0, 1, 1], [0, 0, 0, 0]])
    >>> report = evaluate_rankings(
    ...     np.array([[2, 3], [1, 2]]), users=np.array([0, 1]), relevant=relevant, train=train)
    >>> report.users.tolist(), report.per_user["ndcg"].tolist()
    ([0], [1.0])
    >>> {n: round(v, 3) for n, v in report.summary().items()}["coverage_at_2"]
    0.75
    """
    ids = _check_ids(ids)
    k = _check_k(k, ids.shape[1])
    ids = ids[:, :k]
    rel = _as_binary_csr(relevant, name="relevant")
    tr = _as_binary_csr(train, name="train", nonzero=_counted_entries(item_counts))
    if tr.shape != rel.shape:
        raise ValueError(
            f"train: expected the shape of relevant {rel.shape} (same users and items), "
            f"got {tr.shape}"
        )
    n_items = rel.shape[1]
    users = _check_users(users, n_rows=ids.shape[0], n_users=rel.shape[0])
    if item_category is not None and np.shape(item_category) != (n_items,):
        raise ValueError(
            f"item_category: expected one code per item ({n_items}), "
            f"got shape {np.shape(item_category)}"
        )
    ids = _check_ids(ids, n_items=n_items)

    n_relevant = np.diff(rel.indptr)[users]
    keep = n_relevant > 0
    if not keep.any():
        raise ValueError(
            f"relevant: none of the {users.size} users has a relevant item; nothing to evaluate"
        )
    scored_ids, scored_users, n_rel = ids[keep], users[keep], n_relevant[keep]
    hits = hit_matrix(scored_ids, rel, scored_users)
    counts = _item_counts(tr) if item_counts is None else _check_item_counts(item_counts, tr)
    popularity = _popularity(tr, counts)

    per_user = {
        "precision": precision_at_k(hits),
        "recall": recall_at_k(hits, n_rel),
        "ndcg": ndcg_at_k(hits, n_rel),
        "map": average_precision_at_k(hits, n_rel),
        "mrr": reciprocal_rank_at_k(hits),
        "hit_rate": hit_rate_at_k(hits),
        "avg_popularity": average_popularity(scored_ids, popularity),
        "novelty": novelty(scored_ids, popularity, floor=0.5 / tr.shape[0]),
    }
    if item_category is not None:
        per_user["diversity"] = intra_list_diversity(scored_ids, item_category)
    catalog = {
        "coverage": catalog_coverage(ids, n_items),
        "exposure_gini": exposure_gini(ids, n_items),
    }
    return RelevanceReport(k=k, users=scored_users, per_user=per_user, catalog=catalog)
