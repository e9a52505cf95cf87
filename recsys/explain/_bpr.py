"""BPR's user factor folded in from a history: the value function of BPR explanations.

BPR (:class:`~recsys.models.BPR`, trained by cornac) learns every user factor
by SGD, so its served score is not a function of the user's history. The
fold-in defines one from BPR's own objective, with the learned item factors
held fixed.

Where the objective comes from
------------------------------
cornac's trainer (``cornac/models/bpr/recom_bpr.pyx``, ``_fit_sgd``) draws a
training interaction uniformly (a user ``u`` and a liked item ``i``), then the
negative ``j`` **uniformly over all items**. A negative the user has liked is
skipped, with no update at all. Otherwise, with ``x_uij = u·(v_i − v_j) + b_i −
b_j`` (``b`` the item bias, the last item column; the user's last column stays
1) and ``z = σ(−x_uij)``::

    u += lr * (z * (v_i − v_j) − reg * u)

The penalty is applied once per sample, with the gradient's step. Given ``u``,
the liked item is uniform over the history ``S`` and the kept negatives are
uniform over the items outside ``S``, so the expected update vanishes exactly
where the gradient of

    f_S(u) = mean_{i ∈ S} E_{j uniform, j ∉ S} log σ(x_uij) − (reg / 2) |u|²

does: the fixed point of the SGD in expectation, item factors fixed, is
``u(S) = argmax f_S``, with the model's own ``regularization`` at that scale. The
expectation over negatives is taken over a fixed, seeded sample of
``n_negatives`` items drawn uniformly without replacement (every item when the
catalogue is no larger). Per history, the drawn items in the history are
dropped and the rest re-weighted, as the trainer's skipping does. The sample
depends only on the model and ``random_state``: SHAP, LIME and the deletion
test explain one and the same function. (fairrec's earlier BPR, implicit's,
drew its negatives in proportion to popularity, and so did this fold-in.)

The value function
------------------
``score_S(t) = u(S)·v_t + b_t``. The empty history, and a history that holds
every drawn negative (no pairs left), give ``u = 0``: the **base value is the
item bias** ``b_t``, not 0, and Shapley values sum to ``score − b_t``.

Solving it
----------
``f_S`` is strictly concave for ``reg > 0``. Each history's maximiser is found
by an inexact Newton method, batched with numpy: histories are sorted by length
and cut into batches whose pair blocks (histories x positives x negatives) stay
within a few megabytes, reused from step to step. Each Newton system is solved
by preconditioned conjugate gradients with Hessian-vector products (two passes
over the pair block, where forming the Hessian costs ``f`` of them). When the
histories overlap heavily (the masked histories of one user), every one starts
from the solution for their union, and its inverse Hessian preconditions every
system; otherwise each starts from 0 with its own. The step length is found by
backtracking on ``|∇f|²``. A history has converged when
``|∇f| <= tol * (|∇ data term| + reg |u|)``, ``tol = 1e-6`` (the two terms
balance at the optimum); those that do not within ``max_iter`` steps trigger a
``ConvergenceWarning`` saying how many and how far off they are.

The objective and its Newton-CG solver are in :mod:`recsys.explain._bpr_solver`;
this module draws the negatives, batches the histories and reports the fold-in.
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np
import scipy.sparse as sp
from scipy.stats import rankdata
from sklearn.exceptions import ConvergenceWarning

from recsys._threads import one_blas_thread
from recsys.explain._bpr_solver import (
    _Batch,
    _Negatives,
    _Objective,
    _Workspace,
    _newton,
    _representer_terms,
)
from recsys.explain._checks import check_user_indices
from recsys.models import BPR, Recommender, check_fitted

__all__ = ["foldin_agreement"]

N_NEGATIVES = 256  # items in the negative sample (ML-100K: 256 of 1,682)
_TOL = 1e-6
_MAX_ITER = 50
_BLOCK = 2**19  # histories x positives x negatives per batch (4 MB float64 blocks)
_WARM_OVERLAP = 0.25  # warm start when the histories average this share of their union


# ------------------------------------------------------------------ negatives
def _uniform_negatives(
    n_items: int, n_negatives: int, random_state: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """``n_negatives`` items drawn uniformly without replacement (all items if fewer).

    Returns the items drawn (sorted) and their draw counts (all 1), the form
    the objective weighs negatives in.

    Examples
    --------
    >>> items, counts = _uniform_negatives(3, 4, 0)
    >>> items.tolist(), counts.tolist()
    ([0, 1, 2], [1.0, 1.0, 1.0])
    >>> _uniform_negatives(10, 4, 0)[0].size
    4
    """
    if n_negatives >= n_items:
        items = np.arange(n_items, dtype=np.int64)
    else:
        rng = np.random.default_rng(random_state)
        items = np.sort(rng.choice(n_items, size=n_negatives, replace=False)).astype(np.int64)
    return items, np.ones(items.size)


# -------------------------------------------------------------------- scorer
class _BprScorer:
    """BPR's per-user objective maximised for arbitrary histories (a ``ScoresHistory``).

    See the module docstring. ``item_factors`` as :class:`~recsys.models.BPR`
    keeps them, ``[n_items, factors + 1]`` with the item bias last.
    """

    def __init__(
        self,
        item_factors: np.ndarray,
        *,
        regularization: float,
        n_negatives: int = N_NEGATIVES,
        random_state: int | None = 0,
        tol: float = _TOL,
        max_iter: int = _MAX_ITER,
    ) -> None:
        Y = np.asarray(item_factors, dtype=np.float64)
        if Y.ndim != 2 or Y.shape[1] < 2:
            raise ValueError(
                "item_factors: expected shape (n_items, factors + 1) with the item bias last, "
                f"got {Y.shape}"
            )
        if isinstance(regularization, bool) or not (
            isinstance(regularization, numbers.Real) and regularization > 0
        ):
            raise ValueError(
                "regularization: the BPR fold-in needs a positive regularization (the objective "
                f"has no maximiser otherwise), got {regularization!r}"
            )
        if isinstance(n_negatives, bool) or not isinstance(n_negatives, numbers.Integral) or (
            n_negatives < 1
        ):
            raise ValueError(f"n_negatives: expected a positive integer, got {n_negatives!r}")
        self.factors, self.bias = Y[:, :-1], Y[:, -1]
        self.regularization = float(regularization)
        self.tol, self.max_iter = float(tol), int(max_iter)
        items, counts = _uniform_negatives(Y.shape[0], int(n_negatives), random_state)
        V = self.factors[items]
        f = V.shape[1]
        self.negatives = _Negatives(
            items=items,
            counts=counts,
            factors=V,
            bias=self.bias[items],
            factors32=V.astype(np.float32),
            outer32=np.einsum("jf,jg->jfg", V, V).reshape(-1, f * f).astype(np.float32),
        )

    def user_factors(self, history: sp.csr_matrix) -> np.ndarray:
        """``u(S)`` for each history row: ``[n_rows, factors]`` (without the constant 1)."""
        h = sp.csr_matrix(history, dtype=np.float64, copy=True)
        h.sum_duplicates()
        h.eliminate_zeros()  # values are ignored: any stored non-zero is an interaction
        out = np.zeros((h.shape[0], self.factors.shape[1]))
        lengths = np.diff(h.indptr)
        live = np.flatnonzero(lengths > 0)
        if live.size == 0:
            return out
        # small matrices: BLAS threads cost more than they save (and stall a busy machine)
        with one_blas_thread():
            workspace = _Workspace()
            start, inverse = self._warm_start(h, lengths[live], workspace)
            residuals = np.zeros(h.shape[0])
            # sorted by length, so a batch pads its histories little
            order = live[np.argsort(lengths[live], kind="stable")]
            for rows in self._cut(order, lengths):
                problem = _Objective(
                    self._batch(h, rows), self.negatives, self.regularization, workspace
                )
                u0 = np.repeat(start[None, :], rows.size, axis=0)
                out[rows], residuals[rows] = _newton(
                    problem, u0, tol=self.tol, max_iter=self.max_iter, inverse=inverse
                )
        failed = residuals > self.tol
        if failed.any():
            warnings.warn(
                f"BPR fold-in: {int(failed.sum())} of {h.shape[0]} histories did not converge "
                f"in {self.max_iter} Newton steps (largest relative gradient "
                f"{residuals.max():.2e}, tolerance {self.tol:.0e})",
                ConvergenceWarning,
                stacklevel=2,
            )
        return out

    def score_history(self, history: sp.csr_matrix, items: np.ndarray) -> np.ndarray:
        """``u(S)·v_t + b_t`` for each history row and item: ``[n_rows, len(items)]``."""
        items = np.asarray(items, dtype=np.int64)
        return self.user_factors(history) @ self.factors[items].T + self.bias[items]

    def representer(
        self, history: sp.csr_matrix, items: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The fold-in score of one history split exactly over its items.

        At the maximiser the gradient of ``f_S`` vanishes, so

            u(S) = (1 / reg) Σ_{i ∈ S} a_i Σ_j q_j σ(−x_ij) (v_i − v_j)

        (``a_i = 1/|S|``, ``q_j`` the negative weights): the folded-in factor *is*
        a sum of one term per history item (the representer theorem; Yeh et al.,
        "Representer Point Selection for Explaining Deep Neural Networks", 2018),
        and so is ``score_t − b_t = u(S)·v_t``. Item ``i``'s term pulls the user
        towards ``v_i`` and away from the negatives it is not yet ranked above,
        in proportion to how badly each pair is ranked. Not Shapley values (each
        term is taken at the optimum of the *whole* history, as implicit's ALS
        ``explain`` takes its weights), but exact and additive: one solve instead
        of one per coalition. Written by hand: no library decomposes BPR.

        Parameters
        ----------
        history : sparse matrix, shape (1, n_items)
            One history (any stored non-zero is an interaction).
        items : 1-D array of int
            The items to explain.

        Returns
        -------
        features : ndarray of int64, shape (n_history,)
            The history items, sorted.
        weights : ndarray, shape (n_history, len(items))
            Row ``p`` for the history item ``features[p]``.
        scores : ndarray, shape (len(items),)
            The fold-in scores ``u(S)·v_t + b_t``. The weights sum to
            ``scores − b_t`` up to the solver's tolerance (the relative gradient
            left at the optimum, at most ``tol``).
        """
        h = sp.csr_matrix(history, dtype=np.float64, copy=True)
        if h.shape[0] != 1:
            raise ValueError(f"history: expected one row, got {h.shape[0]}")
        h.sum_duplicates()  # sorts the indices: row p of the weights is features[p]
        h.eliminate_zeros()
        features = h.indices.astype(np.int64)
        items = np.asarray(items, dtype=np.int64)
        u = self.user_factors(h)  # [1, f]
        targets = self.factors[items]  # [T, f]
        scores = (u @ targets.T)[0] + self.bias[items]
        if h.nnz == 0:
            return features, np.zeros((0, items.size)), scores
        problem = _Objective(self._batch(h, np.array([0])), self.negatives, self.regularization)
        return features, _representer_terms(problem, u) @ targets.T, scores

    # ------------------------------------------------------------- internals
    def _warm_start(
        self, h: sp.csr_matrix, lengths: np.ndarray, workspace: _Workspace
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """``u`` of the union of the histories and its inverse Hessian, when they overlap.

        Only the speed depends on it (the optimum is unique): the masked
        histories of one user then start a few Newton steps from their optimum,
        with the union's inverse Hessian as every system's preconditioner.
        Histories that overlap little (different users) start from 0. (Starting
        each subset from its share of the union's representer split instead,
        ``(|U|/|S|) Σ_{i ∈ S} t_i``, took 40% more Hessians on MovieLens 100K
        with the earlier chord solver.)
        """
        union = np.unique(h.indices)
        if lengths.mean() < _WARM_OVERLAP * union.size:
            return np.zeros(self.factors.shape[1]), None
        row = sp.csr_matrix(
            (np.ones(union.size), union, [0, union.size]), shape=(1, h.shape[1])
        )
        problem = _Objective(
            self._batch(row, np.array([0])), self.negatives, self.regularization, workspace
        )
        u, _ = _newton(
            problem, np.zeros((1, self.factors.shape[1])), tol=self.tol, max_iter=self.max_iter
        )
        return u[0], np.linalg.inv(problem.hessian(u))[0]

    def _cut(self, order: np.ndarray, lengths: np.ndarray) -> list[np.ndarray]:
        """Consecutive runs of ``order`` whose pair blocks stay within ``_BLOCK``."""
        widths = lengths[order] * self.negatives.items.size
        batches, begin = [], 0
        while begin < order.size:
            # rows sorted by length: a run's block is its size times its last (widest) row
            blocks = np.arange(1, order.size - begin + 1) * widths[begin:]
            size = max(1, int(np.searchsorted(blocks, _BLOCK, side="right")))
            batches.append(order[begin : begin + size])
            begin += size
        return batches

    def _batch(self, h: sp.csr_matrix, rows: np.ndarray) -> _Batch:
        """The positives of ``rows`` gathered and padded, and their weights ``a`` and ``q``."""
        lengths = h.indptr[rows + 1] - h.indptr[rows]
        width = int(lengths.max())
        offsets = np.arange(width)
        valid = offsets[None, :] < lengths[:, None]
        positions = np.where(valid, h.indptr[rows][:, None] + offsets[None, :], 0)
        items = np.where(valid, h.indices[positions], 0)
        a = valid / lengths[:, None]
        liked = h[rows][:, self.negatives.items].toarray() != 0
        q = np.where(liked, 0.0, self.negatives.counts)
        total = q.sum(axis=1, keepdims=True)
        # every drawn negative liked: no pairs, f = -reg/2 |u|², so u = 0
        q = np.divide(q, total, out=np.zeros_like(q), where=total > 0)
        a[total[:, 0] == 0] = 0.0
        factors = self.factors[items] * valid[:, :, None]
        return _Batch(factors, factors.astype(np.float32), self.bias[items] * valid, a, q)


def bpr_scorer(
    model: BPR, *, n_negatives: int = N_NEGATIVES, random_state: int | None = 0
) -> _BprScorer:
    """The fold-in scorer of a fitted :class:`~recsys.models.BPR`."""
    check_fitted(model)
    return _BprScorer(
        model.item_factors_,
        regularization=model.regularization,
        n_negatives=n_negatives,
        random_state=random_state,
    )


# ----------------------------------------------------------------- agreement
def foldin_agreement(
    model: Recommender,
    users: np.ndarray,
    *,
    exclude_seen: bool = True,
    n_negatives: int = N_NEGATIVES,
    random_state: int | None = 0,
) -> np.ndarray:
    """Spearman correlation between BPR's fold-in scores and its served scores, per user.

    For each user the fold-in factor ``u(S)`` is solved from her training
    history (see :mod:`recsys.explain._bpr`), and the items are scored with it
    and with the factor ``recommend`` uses (learned by cornac's SGD). The
    correlation is over the items she can be recommended (``exclude_seen``,
    the default) or over all items: 1 means the explained function ranks
    exactly like the served model. Users without history get ``nan``.

    Parameters
    ----------
    model : fitted BPR
    users : 1-D array of int
        Internal user indices.
    exclude_seen : bool, default True
    n_negatives : int, default 256
    random_state : int or None, default 0
        The negative sample, as the explainers draw it.

    Returns
    -------
    ndarray of float64, shape (len(users),)

    Examples
    --------
    >>> X = sp.csr_matrix(np.kron(np.eye(2), np.ones((4, 4))))
    >>> model = BPR(factors=4, iterations=200, learning_rate=0.05, num_threads=1).fit(X)
    >>> rho = foldin_agreement(model, np.array([0, 5]), exclude_seen=False)
    >>> bool(np.all(rho > 0.5))
    True
    """
    if not isinstance(model, BPR):
        raise TypeError(f"model: expected a fitted BPR, got {type(model).__name__}")
    check_fitted(model)
    users = check_user_indices(users, model.n_users_)
    history = model.user_items_[users]
    folded = bpr_scorer(model, n_negatives=n_negatives, random_state=random_state).score_history(
        history, np.arange(model.n_items_)
    )
    served = np.asarray(model._score(users), dtype=np.float64)
    keep = history.toarray() == 0 if exclude_seen else np.ones(folded.shape, dtype=bool)
    return _masked_spearman(folded, served, keep, valid=np.diff(history.indptr) > 0)


def _masked_spearman(
    x: np.ndarray, y: np.ndarray, keep: np.ndarray, *, valid: np.ndarray
) -> np.ndarray:
    """Row-wise Spearman correlation of ``x`` and ``y`` over the entries in ``keep``."""
    rx = rankdata(np.where(keep, x, np.nan), axis=1, nan_policy="omit")
    ry = rankdata(np.where(keep, y, np.nan), axis=1, nan_policy="omit")
    n = keep.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        rx = rx - np.nansum(rx, axis=1, keepdims=True) / n[:, None]
        ry = ry - np.nansum(ry, axis=1, keepdims=True) / n[:, None]
        rho = np.nansum(rx * ry, axis=1) / np.sqrt(
            np.nansum(rx * rx, axis=1) * np.nansum(ry * ry, axis=1)
        )
    return np.where(valid & (n > 1), rho, np.nan)
