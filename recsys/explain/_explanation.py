"""The explanation record every explainer returns, and the checks and helpers they share.

:class:`Explanation` is the immutable result of every explainer (history,
factor and feature explanations alike). The helpers validate items, users,
histories, ``n_samples`` and ``n_jobs``, build the popularity fallback
explanations, seed shap's global random state, size Kernel SHAP's budget and
balance work across worker processes.
"""


from __future__ import annotations

import contextlib
import numbers
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
from joblib import effective_n_jobs

from recsys.models import Recommender, check_user_items

__all__ = ["Explanation"]

Method = Literal["shap", "lime", "als_explain", "representer", "popularity", "similarity"]


@dataclass(frozen=True, kw_only=True, eq=False)
class Explanation:
    """Why ``item`` was scored as it was for ``user``; an immutable value.

    Parameters
    ----------
    user, item : int
        Internal indices.
    method : {"shap", "lime", "als_explain", "representer", "popularity", "similarity"}
    features : tuple of int or str
        History item indices (history explanations) or feature names
        (feature-based explanations); ``()`` for popularity.
    weights : ndarray of float64, aligned with ``features`` (read-only)
    base_value : float
        The output with no feature present (for history explanations 0, except
        BPR's: the item bias; the surrogate's intercept for LIME).
    score : float
        The output being explained.
    extra : dict
        Method details: ``"space"`` (``"history"``, ``"features"`` or
        ``"popularity"``), ``"exact"``, ``"r2"`` (LIME), ...

    Examples
    --------
    >>> e = Explanation(user=0, item=3, method="shap", features=[1, 2],
    ...                 weights=[0.5, -0.1], base_value=0.0, score=0.4)
    >>> e.top_features(2)
    (1,)
    """

    user: int
    item: int
    method: Method
    features: tuple[int | str, ...]
    weights: np.ndarray
    base_value: float
    score: float
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        features = tuple(f if isinstance(f, str) else int(f) for f in self.features)
        weights = np.array(self.weights, dtype=np.float64).reshape(-1)
        if weights.size != len(features):
            raise ValueError(
                f"weights: expected one weight per feature ({len(features)}), got {weights.size}"
            )
        weights.setflags(write=False)
        object.__setattr__(self, "features", features)
        object.__setattr__(self, "weights", weights)
        object.__setattr__(self, "user", int(self.user))
        object.__setattr__(self, "item", int(self.item))
        object.__setattr__(self, "base_value", float(self.base_value))
        object.__setattr__(self, "score", float(self.score))
        object.__setattr__(self, "extra", dict(self.extra))

    def top_features(self, m: int) -> tuple[int | str, ...]:
        """The (at most) ``m`` features with the largest positive weights, best first."""
        order = np.argsort(-self.weights, kind="stable")[:m]
        return tuple(self.features[j] for j in order if self.weights[j] > 0)


# ------------------------------------------------------------------- helpers
def _check_items(items: object, n_items: int) -> np.ndarray:
    arr = np.asarray(items)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(
            f"items: expected a 1-D array of integer item indices, got dtype {arr.dtype} and "
            f"shape {arr.shape}"
        )
    bad = arr[(arr < 0) | (arr >= n_items)]
    if bad.size:
        raise ValueError(
            f"items: expected indices in [0, {n_items}), got {bad[:5].tolist()}"
        )
    return arr.astype(np.int64)


def _user_history(
    model: Recommender, user: int, history: sp.spmatrix | None
) -> sp.csr_matrix | None:
    """The user's history row (1 x n_items, float64), or None if the user is unknown."""
    if isinstance(user, bool) or not isinstance(user, numbers.Integral):
        raise TypeError(f"user: expected an integer user index, got {user!r}")
    if history is not None:
        row = check_user_items(history, name="history")
        if row.shape != (1, model.n_items_):
            raise ValueError(
                f"history: expected one row over the {model.n_items_} training items, "
                f"got shape {row.shape}"
            )
        return sp.csr_matrix(row, dtype=np.float64)
    if 0 <= user < model.n_users_:
        return sp.csr_matrix(model.user_items_[int(user)], dtype=np.float64)
    if getattr(model, "unknown_users", "error") == "popular":
        return None
    raise ValueError(
        f"user: expected an index in [0, {model.n_users_}) or a model with "
        f"unknown_users='popular', got {user}"
    )


def _check_n_samples(value: object, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        expected = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ValueError(f"n_samples: expected {expected}, got {value!r}")


def _popularity_explanations(
    model: Recommender, user: int, items: np.ndarray, reason: str
) -> list[Explanation]:
    counts = model.item_popularity_
    return [
        Explanation(
            user=user,
            item=i,
            method="popularity",
            features=(),
            weights=np.zeros(0),
            base_value=0.0,
            score=float(counts[i]),
            extra={"space": "popularity", "n_users": int(counts[i]), "reason": reason},
        )
        for i in items
    ]


@contextlib.contextmanager
def _global_rng_seeded(random_state: int | None) -> Iterator[None]:
    # shap's KernelExplainer draws coalitions from numpy's global RandomState:
    # seed it for reproducibility, and give the caller's global stream back
    state = np.random.get_state()
    try:
        seed = random_state if random_state is not None else np.random.default_rng().integers(2**32)
        np.random.seed(seed)
        yield
    finally:
        np.random.set_state(state)


def _check_n_jobs(n_jobs: object) -> int:
    """The number of worker processes ``n_jobs`` asks for (scikit-learn's convention)."""
    if n_jobs is None:
        return 1
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, numbers.Integral) or n_jobs == 0:
        raise ValueError(
            f"n_jobs: expected None, a positive number of processes or -1 (all cores), "
            f"got {n_jobs!r}"
        )
    return int(effective_n_jobs(int(n_jobs)))


def _kernel_budget(n_samples: Any, n_players: Any) -> Any:
    """Kernel SHAP's coalitions for ``n_players`` history items: at least ``2M + 2``."""
    return np.maximum(n_samples, 2 * np.asarray(n_players) + 2)


def _balanced_runs(costs: np.ndarray, n_runs: int) -> list[np.ndarray]:
    """Positions of ``costs`` dealt into at most ``n_runs`` runs of near-equal total cost.

    Longest first, each to the run with the least cost so far (the LPT rule);
    runs come most costly first, so the workers start on the long ones, and
    each run lists its positions in increasing order.

    Examples
    --------
    >>> [r.tolist() for r in _balanced_runs(np.array([1.0, 8.0, 3.0, 4.0, 2.0]), 2)]
    [[0, 1], [2, 3, 4]]
    """
    n_runs = max(1, min(int(n_runs), costs.size))
    totals = np.zeros(n_runs)
    members: list[list[int]] = [[] for _ in range(n_runs)]
    for position in np.argsort(-costs, kind="stable"):
        run = int(np.argmin(totals))
        members[run].append(int(position))
        totals[run] += costs[position]
    order = np.argsort(-totals, kind="stable")
    return [np.sort(np.asarray(members[r], dtype=np.int64)) for r in order if members[r]]
