"""Wrappers around the ``implicit`` library: ALS and item-kNN (and BPR's recommending).

Each wrapper owns an implicit model (it does not subclass one) and builds a
fresh one inside every ``fit``. The CPU/GPU choice is made once, in
:func:`_new_inner`; fairrec always asks for the CPU. BPR is trained by cornac
(:mod:`recsys.models._bpr`) and recommends through an implicit BPR model
given its factors.

What implicit 0.7's batched ``recommend`` returns, and how it is converted
(:func:`_from_implicit`) to fairrec's convention (``-1`` ids and ``-inf``
scores as padding, best first, ties by lower item index):

* ALS/BPR: items filtered as already liked come back with their real id and the
  score ``-FLT_MAX`` when ``N`` exceeds the user's unseen items; ``N`` larger
  than the number of items gives trailing rows of id ``0`` and score ``0.0``
  (uninitialised output), so ``N`` is capped at ``n_items``.
* item-kNN: only items reachable through the similarity matrix are ranked,
  the rest padded with id ``-1`` and score ``-FLT_MAX``; already-liked items are
  *not* removed but returned with score ``0.0``; scores are float64.

Which of several items tied at the ``k``-th place makes the list is implicit's
choice; within the list, ties are ordered by item index.
"""

from __future__ import annotations

import io
import numbers
import warnings
from typing import Any, ClassVar, Literal

import implicit.als
import implicit.bpr
import implicit.gpu
import implicit.nearest_neighbours as implicit_nn
import numpy as np
import scipy.sparse as sp
from implicit.recommender_base import RecommenderBase
from implicit.utils import ParameterWarning
from sklearn.utils import check_scalar
from threadpoolctl import threadpool_limits

from recsys.models._als_solve import Solver, check_solver
from recsys.models._base import Recommender, UnknownUsers, check_fitted

__all__ = ["ALS", "ItemKNN"]

Similarity = Literal["cosine", "bm25", "tfidf"]
_SIMILARITIES: tuple[str, ...] = ("cosine", "bm25", "tfidf")
_FLT_MAX = np.finfo(np.float32).max


# ----------------------------------------------------------------- the factory
def _new_inner(kind: str, params: dict[str, Any], *, use_gpu: bool = False) -> RecommenderBase:
    """A fresh, unfitted implicit model: the one place that picks CPU or GPU.

    fairrec always calls this with ``use_gpu=False``. The GPU branch (ALS and
    BPR only, through implicit's own factories) needs a CUDA build of implicit
    and is not tested here.
    """
    if use_gpu and not implicit.gpu.HAS_CUDA:
        raise RuntimeError("use_gpu=True, but this build of implicit has no CUDA support")
    # implicit checks the BLAS thread pool when a model is built; build under the limit
    with threadpool_limits(1, "blas"):
        if kind == "als":
            return implicit.als.AlternatingLeastSquares(**params, use_gpu=use_gpu)
        if kind == "bpr":
            return implicit.bpr.BayesianPersonalizedRanking(**params, use_gpu=use_gpu)
    if use_gpu:
        raise ValueError(f"kind: implicit has no GPU implementation of {kind!r}")
    if kind == "cosine":
        return implicit_nn.CosineRecommender(**params)
    if kind == "bm25":
        return implicit_nn.BM25Recommender(**params)
    if kind == "tfidf":
        return implicit_nn.TFIDFRecommender(**params)
    raise ValueError(f"kind: unknown implicit model {kind!r}")


def _fit_inner(inner: RecommenderBase, X: sp.csr_matrix, *, show_progress: bool) -> RecommenderBase:
    """Fit ``inner`` with one BLAS thread (as implicit recommends); return a CPU model."""
    with threadpool_limits(1, "blas"), warnings.catch_warnings(), np.errstate(
        divide="ignore", invalid="ignore"
    ):
        # implicit's item-kNN weighting converts to COO and back internally and warns
        # about it; zero-norm items give 0/0 (cleaned by ItemKNN afterwards)
        warnings.simplefilter("ignore", ParameterWarning)
        inner.fit(X, show_progress=show_progress)
    if hasattr(inner, "to_cpu"):  # GPU models only
        inner = inner.to_cpu()
    return inner


def _from_implicit(
    ids: np.ndarray, scores: np.ndarray, k: int, seen: sp.csr_matrix | None
) -> tuple[np.ndarray, np.ndarray]:
    """Convert implicit's ``recommend`` output to fairrec's ``[n, k]`` convention.

    Entries with a negative id, a score of ``-FLT_MAX`` or below, a NaN score, or
    (when ``seen`` is given) an item in the user's row of ``seen`` become padding.
    Rows are re-sorted by score descending, then item index ascending.
    """
    ids = np.asarray(ids, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float32)
    invalid = (ids < 0) | ~(scores > -_FLT_MAX)
    if seen is not None and seen.nnz:
        n_items = seen.shape[1]
        seen_rows = np.repeat(np.arange(seen.shape[0], dtype=np.int64), np.diff(seen.indptr))
        seen_keys = seen_rows * n_items + seen.indices  # sorted for a canonical matrix
        if not seen.has_sorted_indices:
            seen_keys.sort()
        keys = np.arange(ids.shape[0], dtype=np.int64)[:, None] * n_items + ids
        # a binary search in the sorted keys: np.isin would hash and sort both sides
        at = np.minimum(np.searchsorted(seen_keys, keys), seen_keys.size - 1)
        invalid |= seen_keys[at] == keys
    ids[invalid] = -1
    scores[invalid] = -np.inf
    order = np.lexsort((ids, -scores), axis=1)
    ids = np.take_along_axis(ids, order, axis=1)[:, :k]
    scores = np.take_along_axis(scores, order, axis=1)[:, :k]
    if ids.shape[1] < k:
        pad = ((0, 0), (0, k - ids.shape[1]))
        ids = np.pad(ids, pad, constant_values=-1)
        scores = np.pad(scores, pad, constant_values=-np.inf)
    return ids, scores


def _check_common(est: _ImplicitRecommender) -> None:
    check_scalar(est.num_threads, "num_threads", numbers.Integral, min_val=0)
    if not isinstance(est.show_progress, bool):
        raise TypeError(f"show_progress: expected a bool, got {est.show_progress!r}")


def _check_random_state(random_state: object) -> None:
    if random_state is not None and (
        isinstance(random_state, bool)
        or not isinstance(random_state, numbers.Integral)
        or random_state < 0
    ):
        raise ValueError(
            f"random_state: expected None or a non-negative integer, got {random_state!r}"
        )


# -------------------------------------------------------------- the wrappers
class _ImplicitRecommender(Recommender):
    """Shared fit/recommend plumbing; subclasses say what to build and what to keep."""

    num_threads: int
    show_progress: bool
    _state_arrays: ClassVar[tuple[str, ...]] = ()

    def _fit(self, X: sp.csr_matrix) -> None:
        self._check_params()
        fitted = _fit_inner(
            _new_inner(self._inner_kind(), self._inner_params()),
            X,
            show_progress=self.show_progress,
        )
        self._keep_state(fitted)
        self._after_load()

    def _after_load(self) -> None:
        """(Re)build the inner implicit model from the learned arrays alone.

        Used after ``fit`` as well as by ``load_model``, so a loaded model ranks
        exactly like the one that was saved.
        """
        self._inner_ = self._inner_from_state()

    def _recommend_known(
        self, users: np.ndarray, k: int, exclude_seen: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        user_items = self.user_items_[users]
        ids, scores = self._inner_.recommend(
            users,
            user_items,
            N=self._n_candidates(k, user_items, exclude_seen),
            filter_already_liked_items=exclude_seen,
        )
        return _from_implicit(ids, scores, k, user_items if exclude_seen else None)

    def _n_candidates(self, k: int, user_items: sp.csr_matrix, exclude_seen: bool) -> int:
        return min(k, self.n_items_)

    # hooks ------------------------------------------------------------------
    def _check_params(self) -> None:
        raise NotImplementedError

    def _inner_kind(self) -> str:
        raise NotImplementedError

    def _inner_params(self) -> dict[str, Any]:
        raise NotImplementedError

    def _keep_state(self, fitted: RecommenderBase) -> None:
        raise NotImplementedError

    def _inner_from_state(self) -> RecommenderBase:
        raise NotImplementedError


class _MatrixFactorization(_ImplicitRecommender):
    """ALS and BPR: ``score(u, i) = user_factors_[u] · item_factors_[i]``."""

    _state_arrays: ClassVar[tuple[str, ...]] = ("user_factors_", "item_factors_")
    random_state: int | None

    def _keep_state(self, fitted: RecommenderBase) -> None:
        self.user_factors_ = np.ascontiguousarray(fitted.user_factors, dtype=np.float32)
        self.item_factors_ = np.ascontiguousarray(fitted.item_factors, dtype=np.float32)

    def _inner_from_state(self) -> RecommenderBase:
        inner = _new_inner(self._inner_kind(), self._inner_params())
        inner.user_factors = self.user_factors_
        inner.item_factors = self.item_factors_
        return inner

    def _score(self, users: np.ndarray) -> np.ndarray:
        """Dense scores ``user_factors_[users] @ item_factors_.T``: ``[len(users), n_items]``."""
        check_fitted(self)
        return self.user_factors_[np.asarray(users, dtype=np.int64)] @ self.item_factors_.T


class ALS(_MatrixFactorization):
    """Implicit-feedback alternating least squares (Hu, Koren & Volinsky 2008).

    Wraps ``implicit.cpu.als.AlternatingLeastSquares``; the interaction weights
    are confidences, multiplied by ``alpha``.

    ``solver`` records which library's equations produced the factors, and so
    which equations re-solve a user factor from a history (the explanations of
    :mod:`recsys.explain`, see :mod:`recsys.models._als_solve`): ``"implicit"``
    for a model fitted here, ``"mllib"`` for the factors of a Spark MLlib fit
    (:func:`recsys.models.als_serving_model`), where ``regularization`` and
    ``alpha`` are MLlib's ``regParam`` and ``alpha``. ``fit`` trains with implicit
    and refuses ``"mllib"``. Saved with the parameters; models saved before it
    existed load as ``"implicit"``.

    Parameters
    ----------
    factors : int, default 64
    regularization : float, default 0.05
    alpha : float, default 1.0
    iterations : int, default 15
    random_state : int or None, default 0
        Seed of the initial factors. Results are reproducible for a given seed,
        whatever ``num_threads``.
    num_threads : int, default 0
        Threads for fitting and recommending; 0 means all cores.
    show_progress : bool, default False
    unknown_users : {"error", "popular"}, default "error"
    solver : {"implicit", "mllib"}, default "implicit"
        The equations the factors solve (see above).

    Attributes
    ----------
    user_factors_ : ndarray of shape (n_users, factors), float32
    item_factors_ : ndarray of shape (n_items, factors), float32

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> X = sp.csr_matrix([[1, 1, 0], [1, 1, 1], [0, 1, 1]])
    >>> model = ALS(factors=2, iterations=3, num_threads=1).fit(X)
    >>> model.item_factors_.shape
    (3, 2)
    >>> model.recommend([0], k=1)[0].tolist()
    [[2]]
    """

    def __init__(
        self,
        *,
        factors: int = 64,
        regularization: float = 0.05,
        alpha: float = 1.0,
        iterations: int = 15,
        random_state: int | None = 0,
        num_threads: int = 0,
        show_progress: bool = False,
        unknown_users: UnknownUsers = "error",
        solver: Solver = "implicit",
    ) -> None:
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.random_state = random_state
        self.num_threads = num_threads
        self.show_progress = show_progress
        self.unknown_users = unknown_users
        self.solver = solver

    def _check_params(self) -> None:
        check_scalar(self.factors, "factors", numbers.Integral, min_val=1)
        check_scalar(self.regularization, "regularization", numbers.Real, min_val=0.0)
        check_scalar(self.alpha, "alpha", numbers.Real, min_val=0.0, include_boundaries="neither")
        check_scalar(self.iterations, "iterations", numbers.Integral, min_val=1)
        _check_random_state(self.random_state)
        _check_common(self)
        if check_solver(self.solver) != "implicit":
            raise ValueError(
                f"solver: ALS.fit trains with implicit, so it needs solver='implicit', got "
                f"{self.solver!r} (solver='mllib' marks the factors of a Spark MLlib fit: see "
                "recsys.models.als_serving_model)"
            )

    def _inner_kind(self) -> str:
        return "als"

    def _inner_params(self) -> dict[str, Any]:
        return {
            "factors": self.factors,
            "regularization": self.regularization,
            "alpha": self.alpha,
            "iterations": self.iterations,
            "random_state": self.random_state,
            "num_threads": self.num_threads,
        }


class ItemKNN(_ImplicitRecommender):
    """Item-based nearest neighbours: ``score(u, ·) = X_u @ similarity_``.

    Wraps implicit's ``CosineRecommender``, ``BM25Recommender`` or
    ``TFIDFRecommender``: each item keeps its ``k_neighbours`` most similar items
    (itself included). Only items linked through ``similarity_`` to the user's
    history are recommended; the rest of a row is padding.

    Parameters
    ----------
    k_neighbours : int, default 100
    similarity : {"cosine", "bm25", "tfidf"}, default "cosine"
    bm25_k1, bm25_b : float, default 1.2, 0.75
        BM25 weighting parameters (used only when ``similarity="bm25"``).
    num_threads : int, default 0
        Threads for fitting; 0 means all cores.
    show_progress : bool, default False
    unknown_users : {"error", "popular"}, default "error"

    Attributes
    ----------
    similarity_ : scipy.sparse.csr_matrix of shape (n_items, n_items), float32
        Row ``i`` holds item ``i``'s neighbours. Non-finite similarities (implicit
        gives NaN for items whose weighted vector is all zero, e.g. under TF-IDF)
        are set to 0.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> X = sp.csr_matrix([[1, 1, 0], [1, 1, 1], [0, 0, 1]])
    >>> model = ItemKNN(k_neighbours=3).fit(X)  # cos(item 0, item 2) = cos(item 1, item 2) = 1/2
    >>> ids, scores = model.recommend([0], k=2)
    >>> ids.tolist(), scores.round(3).tolist()
    ([[2, -1]], [[1.0, -inf]])
    """

    _state_arrays: ClassVar[tuple[str, ...]] = ("similarity_",)

    def __init__(
        self,
        *,
        k_neighbours: int = 100,
        similarity: Similarity = "cosine",
        bm25_k1: float = 1.2,
        bm25_b: float = 0.75,
        num_threads: int = 0,
        show_progress: bool = False,
        unknown_users: UnknownUsers = "error",
    ) -> None:
        self.k_neighbours = k_neighbours
        self.similarity = similarity
        self.bm25_k1 = bm25_k1
        self.bm25_b = bm25_b
        self.num_threads = num_threads
        self.show_progress = show_progress
        self.unknown_users = unknown_users

    def _check_params(self) -> None:
        check_scalar(self.k_neighbours, "k_neighbours", numbers.Integral, min_val=1)
        if self.similarity not in _SIMILARITIES:
            raise ValueError(
                f"similarity: expected one of {list(_SIMILARITIES)}, got {self.similarity!r}"
            )
        check_scalar(self.bm25_k1, "bm25_k1", numbers.Real, min_val=0.0)
        check_scalar(self.bm25_b, "bm25_b", numbers.Real, min_val=0.0, max_val=1.0)
        _check_common(self)

    def _inner_kind(self) -> str:
        return self.similarity

    def _inner_params(self) -> dict[str, Any]:
        params: dict[str, Any] = {"K": self.k_neighbours, "num_threads": self.num_threads}
        if self.similarity == "bm25":
            params.update(K1=self.bm25_k1, B=self.bm25_b)
        return params

    def _keep_state(self, fitted: RecommenderBase) -> None:
        similarity = sp.csr_matrix(fitted.similarity, dtype=np.float32, copy=True)
        similarity.data[~np.isfinite(similarity.data)] = 0.0
        self.similarity_ = similarity

    def _inner_from_state(self) -> RecommenderBase:
        # implicit's own pickle-free loader is its public way to build a
        # nearest-neighbour model around a given similarity matrix
        s = self.similarity_
        buffer = io.BytesIO()
        np.savez(
            buffer,
            K=self.k_neighbours,
            data=s.data,
            indices=s.indices,
            indptr=s.indptr,
            shape=np.asarray(s.shape),
        )
        buffer.seek(0)
        return implicit_nn.ItemItemRecommender.load(buffer)

    def _n_candidates(self, k: int, user_items: sp.csr_matrix, exclude_seen: bool) -> int:
        # implicit returns already-liked items (score 0) instead of dropping them;
        # ask for enough extra items that k unseen ones survive their removal
        extra = int(np.diff(user_items.indptr).max(initial=0)) if exclude_seen else 0
        return min(k + extra, self.n_items_)

    def _score(self, users: np.ndarray) -> np.ndarray:
        """Dense scores ``X_u @ similarity_`` for each user: ``[len(users), n_items]``."""
        check_fitted(self)
        rows = self.user_items_[np.asarray(users, dtype=np.int64)]
        return np.asarray((rows @ self.similarity_).toarray(), dtype=np.float32)
