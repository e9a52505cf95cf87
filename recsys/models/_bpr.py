"""Bayesian personalised ranking, trained by cornac's BPR: negatives drawn uniformly.

Why cornac and not implicit
---------------------------
Both run the same SGD on ``ln σ(x_uij)``, ``x_uij = u·(v_i − v_j) + b_i − b_j``,
and differ in one thing: the negative ``j``. implicit's BPR takes the item of
another random training interaction, so negatives come in proportion to
popularity; cornac's (``cornac/models/bpr/recom_bpr.pyx``, ``_fit_sgd``) draws
them uniformly over the catalogue. On MovieLens 100K (per-user random 75/25
split, k = 10) implicit's reaches NDCG@10 0.30 (no tuning got it past 0.383),
cornac's 0.44 (``benchmarks/bpr_ml100k.py``). cornac's loop is compiled (Cython),
and its learned factors and item biases are plain arrays, kept here in the
layout explanations and serving bundles read (see :class:`BPR`).

cornac's sampler, which :mod:`recsys.explain._bpr` folds in: a training
interaction ``(u, i)`` drawn uniformly, then ``j`` uniformly over all items;
a ``j`` the user has is skipped with no update. Each kept sample takes one
step of ``lr * (σ(−x_uij) * gradient − reg * parameter)`` on ``u``, ``v_i``,
``v_j``, ``b_i`` and ``b_j``; an epoch is ``nnz`` draws.

Recommending uses implicit's batched top-k on the learned factors (the
factors alone define the model, as for a loaded ALS), so ranking, padding and
ties follow :mod:`recsys.models._implicit`.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.utils import check_scalar
from threadpoolctl import threadpool_limits

from recsys.errors import DataError
from recsys.models._base import UnknownUsers
from recsys.models._implicit import _check_common, _check_random_state, _MatrixFactorization

__all__ = ["BPR"]


def _train_cornac(
    X: sp.csr_matrix,
    *,
    factors: int,
    learning_rate: float,
    regularization: float,
    iterations: int,
    seed: int,
    verbose: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fit a fresh cornac BPR on the binary ``X``; return user factors, item factors, item biases.

    cornac trains on one thread whenever it is given a seed (its Hogwild loop
    is not reproducible otherwise), so fairrec always gives it one.
    """
    # imported here, not at module level: importing cornac takes about 2 s and pulls
    # in matplotlib.pyplot (through powerlaw), which loading or serving a model never needs
    from cornac.data import Dataset
    from cornac.models import BPR as CornacBPR

    n_users, n_items = X.shape
    users = np.repeat(np.arange(n_users, dtype=np.int64), np.diff(X.indptr))
    train_set = Dataset(
        num_users=n_users,
        num_items=n_items,
        # identity vocabularies: fairrec's internal indices are cornac's
        uid_map=dict(zip(range(n_users), range(n_users), strict=True)),
        iid_map=dict(zip(range(n_items), range(n_items), strict=True)),
        uir_tuple=(users, X.indices.astype(np.int64), np.ones(X.nnz, dtype=np.float32)),
        seed=seed,
    )
    inner = CornacBPR(
        k=factors,
        max_iter=iterations,
        learning_rate=learning_rate,
        lambda_reg=regularization,
        use_bias=True,
        seed=seed,
        verbose=verbose,
    )
    with threadpool_limits(1, "blas"):
        inner.fit(train_set)
    return inner.u_factors, inner.i_factors, inner.i_biases


class BPR(_MatrixFactorization):
    """Bayesian personalised ranking (Rendle et al. 2009), by SGD with uniform negatives.

    Trained by ``cornac.models.BPR`` (see the module docstring for why);
    weights are ignored (any stored interaction is a positive). A fresh cornac
    model per ``fit``.

    Parameters
    ----------
    factors : int, default 128
    learning_rate : float, default 0.01
    regularization : float, default 0.01
        The L2 penalty of every SGD step, on factors and biases alike.
    iterations : int, default 200
        Epochs; each draws as many samples as there are interactions.
    random_state : int or None, default 0
        Seed of the initial factors and the samplers. Fitting is single-threaded
        (cornac's seeded mode) and bit-for-bit reproducible for a given seed;
        ``None`` draws a fresh seed at each ``fit``.
    num_threads : int, default 0
        Threads for recommending (implicit's top-k); 0 means all cores.
    show_progress : bool, default False
        cornac's progress bar while fitting.
    unknown_users : {"error", "popular"}, default "error"

    Attributes
    ----------
    user_factors_ : ndarray of shape (n_users, factors + 1), float32
        cornac's user factors; the last column is all ones.
    item_factors_ : ndarray of shape (n_items, factors + 1), float32
        cornac's item factors; the last column is the item bias, so
        ``user_factors_ @ item_factors_.T`` is the full score.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> X = sp.csr_matrix([[1, 1, 0], [1, 1, 1], [0, 1, 1]])
    >>> model = BPR(factors=2, iterations=3).fit(X)
    >>> model.user_factors_.shape, model.user_factors_[:, -1].tolist()
    ((3, 3), [1.0, 1.0, 1.0])
    """

    def __init__(
        self,
        *,
        factors: int = 128,
        learning_rate: float = 0.01,
        regularization: float = 0.01,
        iterations: int = 200,
        random_state: int | None = 0,
        num_threads: int = 0,
        show_progress: bool = False,
        unknown_users: UnknownUsers = "error",
    ) -> None:
        self.factors = factors
        self.learning_rate = learning_rate
        self.regularization = regularization
        self.iterations = iterations
        self.random_state = random_state
        self.num_threads = num_threads
        self.show_progress = show_progress
        self.unknown_users = unknown_users

    def _fit(self, X: sp.csr_matrix) -> None:
        self._check_params()
        if X.nnz == 0:
            raise DataError(
                "X: BPR needs at least one interaction to learn from, "
                f"got an empty {X.shape} matrix"
            )
        seed = self.random_state
        if seed is None:
            seed = int(np.random.default_rng().integers(2**31 - 1))
        U, V, b = _train_cornac(
            X,
            factors=int(self.factors),
            learning_rate=float(self.learning_rate),
            regularization=float(self.regularization),
            iterations=int(self.iterations),
            seed=int(seed),
            verbose=self.show_progress,
        )
        # implicit's layout, which explanations and bundles read: [U | 1] · [V | b]
        ones = np.ones((U.shape[0], 1), dtype=np.float32)
        self.user_factors_ = np.ascontiguousarray(np.hstack([U, ones]), dtype=np.float32)
        self.item_factors_ = np.ascontiguousarray(np.hstack([V, b[:, None]]), dtype=np.float32)
        self._after_load()

    def _check_params(self) -> None:
        check_scalar(self.factors, "factors", numbers.Integral, min_val=1)
        check_scalar(
            self.learning_rate,
            "learning_rate",
            numbers.Real,
            min_val=0.0,
            include_boundaries="neither",
        )
        check_scalar(self.regularization, "regularization", numbers.Real, min_val=0.0)
        check_scalar(self.iterations, "iterations", numbers.Integral, min_val=1)
        _check_random_state(self.random_state)
        _check_common(self)

    def _inner_kind(self) -> str:
        # the inner implicit model only recommends: it is given the learned factors
        return "bpr"

    def _inner_params(self) -> dict[str, Any]:
        return {"factors": self.factors, "num_threads": self.num_threads}
