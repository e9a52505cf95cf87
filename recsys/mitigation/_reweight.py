"""Pre-processing mitigation: reweight the training interactions, then fit any model.

:func:`interaction_weights` gives one weight per stored interaction: popular items
damped, and each user group's category mix pulled towards the overall mix.
:class:`ReweightedRecommender` fits a fresh copy of a model on the reweighted matrix.

The weights are written by hand: fairlearn's reweighting lives inside its reductions
(per-sample weights of a classifier), not as a reusable function over a user x item
matrix.
"""

from __future__ import annotations

import numbers

import numpy as np
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.utils import check_scalar

from recsys.models._base import Recommender, check_fitted, check_user_items

__all__ = ["ReweightedRecommender", "interaction_weights"]


def _check_labels(labels: object, n: int, name: str, what: str) -> np.ndarray:
    arr = np.asarray(labels)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(
            f"{name}: expected one label per {what} (shape ({n},)), got shape {arr.shape}"
        )
    return arr


def interaction_weights(
    X: sp.spmatrix,
    *,
    popularity_damping: float = 0.0,
    user_group: np.ndarray | None = None,
    item_category: np.ndarray | None = None,
    group_balance: float = 0.0,
) -> np.ndarray:
    """One weight per stored interaction of ``X``, with mean 1.

    Every stored entry counts as one interaction whatever its value (pass the
    output of :func:`~recsys.models.check_user_items` to merge duplicates and drop
    stored zeros first). The weight of the entry ``(u, i)`` is the product of

    * popularity damping: ``(count_i / max_count) ** -popularity_damping``, where
      ``count_i`` is the number of users of item ``i``;
    * group balance: ``(share[c] / share[g, c]) ** group_balance`` for a user of
      group ``g`` and an item of category ``c``, where ``share[g, c]`` is the
      share of group ``g``'s (popularity-damped) interaction weight that falls in
      category ``c`` and ``share[c]`` the same share over all users. At
      ``group_balance=1`` every group's weighted category mix equals the overall
      (popularity-damped) mix, provided the group has interactions in every
      category: weights cannot create interactions, so a group's empty
      categories stay empty.

    and the weights are finally scaled to mean 1.

    Parameters
    ----------
    X : sparse matrix of shape (n_users, n_items)
        The weights are aligned with ``X.tocsr().data`` (``X.data`` for a CSR ``X``).
    popularity_damping : float, default 0.0
        Strength of the popularity damping, ``>= 0``; 0 leaves the weights alone.
    user_group : array of shape (n_users,), optional
        A group label per user (any sortable labels). Required if ``group_balance > 0``.
    item_category : array of shape (n_items,), optional
        A category label per item. Required if ``group_balance > 0``.
    group_balance : float, default 0.0
        Strength of the group balancing, in ``[0, 1]``; 0 leaves the weights alone.

    Returns
    -------
    ndarray of shape (X.nnz,), float64

    Examples
    --------
    >>> X = sp.csr_matrix([[1, 1, 1, 0], [1, 1, 0, 0], [1, 0, 0, 1]])
    >>> (interaction_weights(X, popularity_damping=1.0) * 12).round(6).tolist()
    [7.0, 10.5, 21.0, 7.0, 10.5, 7.0, 21.0]
    >>> w = interaction_weights(
    ...     X, user_group=np.array(["a", "a", "b"]), item_category=np.array([0, 0, 1, 1]),
    ...     group_balance=1.0)
    >>> (w * 28).round(6).tolist()  # group "a": 4 of 5 in category 0, overall 5 of 7
    [25.0, 25.0, 40.0, 25.0, 25.0, 40.0, 16.0]
    """
    check_scalar(popularity_damping, "popularity_damping", numbers.Real, min_val=0.0)
    if not np.isfinite(popularity_damping):
        raise ValueError(
            f"popularity_damping: expected a finite number >= 0, got {popularity_damping!r}"
        )
    check_scalar(group_balance, "group_balance", numbers.Real, min_val=0.0, max_val=1.0)
    if not sp.issparse(X):
        raise TypeError(f"X: expected a scipy sparse user x item matrix, got {type(X).__name__}")
    X = X.tocsr()
    n_users, n_items = X.shape
    if user_group is not None:
        user_group = _check_labels(user_group, n_users, "user_group", "user")
    if item_category is not None:
        item_category = _check_labels(item_category, n_items, "item_category", "item")
    if group_balance > 0 and (user_group is None or item_category is None):
        missing = "user_group" if user_group is None else "item_category"
        raise ValueError(f"{missing}: required when group_balance > 0, got None")

    weights = np.ones(X.nnz, dtype=np.float64)
    if X.nnz == 0:
        return weights
    rows = np.repeat(np.arange(n_users), np.diff(X.indptr))
    cols = X.indices
    if popularity_damping > 0:
        counts = np.bincount(cols, minlength=n_items).astype(np.float64)
        weights *= (counts[cols] / counts.max()) ** (-popularity_damping)
    if group_balance > 0:
        groups, g = np.unique(user_group, return_inverse=True)
        categories, c = np.unique(item_category, return_inverse=True)
        n_g, n_c = groups.size, categories.size
        cell = g[rows] * n_c + c[cols]
        mass = np.bincount(cell, weights=weights, minlength=n_g * n_c).reshape(n_g, n_c)
        share_gc = mass / np.maximum(mass.sum(axis=1, keepdims=True), np.finfo(float).tiny)
        share_c = mass.sum(axis=0) / mass.sum()
        # cells without interactions get no weight, so their factor is never used
        factor = np.divide(share_c, share_gc, out=np.ones_like(share_gc), where=mass > 0)
        weights *= factor.ravel()[cell] ** group_balance
    weights *= weights.size / weights.sum()
    return weights


class ReweightedRecommender(Recommender):
    """Fit a fresh copy of ``base`` on interactions reweighted by :func:`interaction_weights`.

    ``fit`` clones ``base`` (a new inner model every time), multiplies the
    interaction values by the weights and fits the clone on that matrix; ranking
    is delegated to the fitted clone, ``estimator_``. The attributes of the
    estimator contract (``user_items_``, ``cold_users_``, ``item_popularity_``)
    describe the original ``X``.

    The weights only matter to a model that uses interaction values: ALS
    (confidences) is the intended base. BPR ignores values; EASE ignores them
    unless ``binary=False``.

    Parameters
    ----------
    base : Recommender
        The unfitted model to fit on the reweighted interactions.
    popularity_damping : float, default 0.0
    group_balance : float, default 0.0
        Passed to :func:`interaction_weights`.

    Attributes
    ----------
    estimator_ : Recommender
        The clone of ``base`` fitted on the reweighted matrix.
    weights_ : ndarray of shape (nnz,)
        The weights, aligned with ``user_items_.data``.

    Examples
    --------
    >>> from recsys.models import ALS
    >>> X = sp.csr_matrix([[1, 1, 0, 0], [1, 0, 1, 0], [1, 0, 0, 1], [0, 1, 1, 0]])
    >>> model = ReweightedRecommender(ALS(factors=2, iterations=2, num_threads=1),
    ...                               popularity_damping=1.0).fit(X)
    >>> model.weights_.mean().round(6), model.recommend([0], k=2)[0].shape
    (np.float64(1.0), (1, 2))
    """

    def __init__(
        self,
        base: Recommender,
        *,
        popularity_damping: float = 0.0,
        group_balance: float = 0.0,
    ) -> None:
        self.base = base
        self.popularity_damping = popularity_damping
        self.group_balance = group_balance

    def fit(
        self,
        X: sp.spmatrix,
        y: None = None,
        *,
        user_group: np.ndarray | None = None,
        item_category: np.ndarray | None = None,
    ) -> ReweightedRecommender:
        """Fit a clone of ``base`` on ``X`` reweighted; see the class docstring."""
        if not isinstance(self.base, Recommender):
            raise TypeError(
                f"base: expected an unfitted fairrec Recommender, got {type(self.base).__name__}"
            )
        X = check_user_items(X)
        weights = interaction_weights(
            X,
            popularity_damping=self.popularity_damping,
            user_group=user_group,
            item_category=item_category,
            group_balance=self.group_balance,
        )
        X_weighted = X.copy()
        X_weighted.data = (X.data * weights).astype(np.float32)
        self.estimator_ = clone(self.base).fit(X_weighted)
        self.weights_ = weights
        # the base class validates X again and records the contract's attributes
        # from the original (unweighted) matrix
        return super().fit(X)

    def _fit(self, X: sp.csr_matrix) -> None:
        # the inner model is fitted in fit(), which receives the side information
        # (user_group, item_category) that the base class's fit does not pass on
        pass

    def _score(self, users: np.ndarray) -> np.ndarray:
        check_fitted(self)
        return self.estimator_._score(users)

    def _recommend_known(
        self, users: np.ndarray, k: int, exclude_seen: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        return self.estimator_._recommend_known(users, k, exclude_seen)

    def personalised(self, users: np.ndarray | list[int]) -> np.ndarray:
        """True where ``recommend`` ranks with the user's own history."""
        check_fitted(self)
        return self.estimator_.personalised(users)

    def recommend(
        self,
        users: np.ndarray | list[int],
        k: int = 10,
        *,
        exclude_seen: bool = True,
        batch_size: int = 4096,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` items per user from the fitted clone (its ``unknown_users`` applies)."""
        check_fitted(self)
        return self.estimator_.recommend(
            users, k, exclude_seen=exclude_seen, batch_size=batch_size
        )
