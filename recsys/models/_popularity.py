"""Most-popular baseline: every user gets the items with the most training users."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from recsys.models._base import Recommender, UnknownUsers, check_fitted

__all__ = ["Popularity"]


class Popularity(Recommender):
    """Rank items by how many training users interacted with them.

    The score of an item is its number of distinct training users (weights are
    ignored); ties go to the lower item index. The ranking is the same for every
    user, minus the items that user has seen.

    Parameters
    ----------
    unknown_users : {"error", "popular"}, default "error"
        What ``recommend`` does with user indices outside the training users.

    Attributes
    ----------
    item_popularity_ : ndarray of shape (n_items,), float32
        Number of training users per item (set by :meth:`Recommender.fit`).

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> X = sp.csr_matrix([[1, 0, 0], [1, 1, 0], [0, 1, 1]])
    >>> model = Popularity().fit(X)
    >>> ids, scores = model.recommend([0], k=2)
    >>> ids.tolist(), scores.tolist()
    ([[1, 2]], [[2.0, 1.0]])
    """

    _state_arrays: ClassVar[tuple[str, ...]] = ()

    def __init__(self, *, unknown_users: UnknownUsers = "error") -> None:
        self.unknown_users = unknown_users

    def _fit(self, X: sp.csr_matrix) -> None:
        # the counts themselves are item_popularity_, computed by Recommender.fit
        pass

    def _score(self, users: np.ndarray) -> np.ndarray:
        """Item popularity repeated for each user in ``users``: ``[len(users), n_items]``."""
        check_fitted(self)
        users = np.asarray(users, dtype=np.int64)
        return np.tile(self.item_popularity_, (users.size, 1))
