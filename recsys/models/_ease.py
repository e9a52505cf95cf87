"""EASE: the closed-form item-item linear autoencoder of Steck (2019).

Written by hand because none of our libraries (implicit, scikit-learn) provides
it; it is a dozen lines of linear algebra.
"""

from __future__ import annotations

import numbers
from typing import ClassVar

import numpy as np
import scipy.sparse as sp
from sklearn.utils import check_scalar

from recsys.errors import DataError
from recsys.models._base import Recommender, UnknownUsers, check_fitted

__all__ = ["EASE"]

# float64 matrices alive at the peak of the fit: the Gram matrix and its inverse,
# plus the float64 weights before they are cast to float32
_PEAK_DENSE_MATRICES = 3


class EASE(Recommender):
    """Embarrassingly Shallow Autoencoder (Steck, WWW 2019).

    Learns an item-item weight matrix ``B`` with a zero diagonal in closed form::

        G = XᵀX + l2·I,   P = G⁻¹,   B = -P / diag(P) (column-wise),   diag(B) = 0

    and scores a user ``u`` by ``X_u B``. The inverse is computed in float64;
    ``B`` is stored as float32.

    Parameters
    ----------
    l2 : float, default 500.0
        L2 regularisation added to the diagonal of the Gram matrix; must be > 0.
    binary : bool, default True
        Use 1 for every interaction (True) or the weights as given (False), both
        when learning ``B`` and when scoring.
    max_items : int, default 30_000
        Refuse to fit more items than this (with a :class:`~recsys.errors.DataError`,
        a ``ValueError``): memory grows as ``n_items²``.
    unknown_users : {"error", "popular"}, default "error"
        What ``recommend`` does with user indices outside the training users.

    Attributes
    ----------
    B_ : ndarray of shape (n_items, n_items), float32
        Item-item weights with a zero diagonal.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> X = sp.csr_matrix([[1, 1, 0], [0, 1, 1], [1, 1, 1]])
    >>> model = EASE(l2=1.0).fit(X)
    >>> model.B_.diagonal().tolist()
    [0.0, 0.0, 0.0]
    >>> model.recommend([0], k=1)[0].tolist()
    [[2]]
    """

    _state_arrays: ClassVar[tuple[str, ...]] = ("B_",)

    def __init__(
        self,
        *,
        l2: float = 500.0,
        binary: bool = True,
        max_items: int = 30_000,
        unknown_users: UnknownUsers = "error",
    ) -> None:
        self.l2 = l2
        self.binary = binary
        self.max_items = max_items
        self.unknown_users = unknown_users

    def _fit(self, X: sp.csr_matrix) -> None:
        check_scalar(self.l2, "l2", numbers.Real, min_val=0.0, include_boundaries="neither")
        if not np.isfinite(self.l2):
            raise ValueError(f"l2: expected a finite number > 0, got {self.l2!r}")
        check_scalar(self.max_items, "max_items", numbers.Integral, min_val=1)
        if not isinstance(self.binary, bool):
            raise TypeError(f"binary: expected a bool, got {self.binary!r}")
        n_items = X.shape[1]
        if n_items > self.max_items:
            gib = _PEAK_DENSE_MATRICES * 8 * n_items**2 / 2**30
            raise DataError(
                f"X: EASE inverts a dense n_items x n_items matrix; n_items={n_items} needs "
                f"about {gib:.1f} GiB of memory, above max_items={self.max_items}. Raise "
                "max_items if the machine has that memory, or use another model."
            )
        Xb = self._weights(X).astype(np.float64)
        gram = (Xb.T @ Xb).toarray()
        gram[np.diag_indices(n_items)] += self.l2
        # G is symmetric positive definite (l2 > 0), so the inverse is well defined
        P = np.linalg.inv(gram)
        del gram
        B = P / (-np.diag(P))  # divides column j by -P_jj
        np.fill_diagonal(B, 0.0)
        self.B_ = B.astype(np.float32)

    def _weights(self, X: sp.csr_matrix) -> sp.csr_matrix:
        if not self.binary:
            return X
        Xb = X.copy()
        Xb.data[:] = 1.0
        return Xb

    def _score(self, users: np.ndarray) -> np.ndarray:
        """Dense scores ``X_u B`` for each user in ``users``: ``[len(users), n_items]``."""
        check_fitted(self)
        rows = self._weights(self.user_items_[np.asarray(users, dtype=np.int64)])
        return np.asarray(rows @ self.B_, dtype=np.float32)
