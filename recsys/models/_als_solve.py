"""An ALS user factor re-solved from a history, with the equations that trained the factors.

With the item factors ``Y`` fixed, implicit-feedback ALS gives each user the
solution of one ``f x f`` linear system ``A x_u = b``. Explanations re-solve it
for perturbed histories, so they must use the system of the library that
learned the factors (:attr:`recsys.models.ALS.solver`):

``"implicit"`` (``implicit.cpu.als``, what :meth:`recsys.models.ALS.fit` trains with)
    fairrec passes ``alpha`` to implicit, which scales the stored values:
    ``c = alpha * r``. For the history items (``r > 0``, preference 1)::

        A = YᵀY + reg·I + Σ_j (c_j − 1) y_j y_jᵀ        b = Σ_j c_j y_j

    (implicit's ``user_linear_equation``, ``least_squares``, ``recalculate_user``
    and ``explain``).

``"mllib"`` (Spark ``org.apache.spark.ml.recommendation.ALS``, ``implicitPrefs=True``)
    The factors of :class:`recsys.models.SparkALS`, exported by
    :func:`recsys.models.als_serving_model`. MLlib's ``ALS.computeFactors`` merges
    ``YtY`` (``computeYtY``: every item factor) into a ``NormalEquation`` and, for
    each rating ``r`` of the user, calls ``ls.add(y, if (r > 0) 1 + c1 else 0, c1)``
    with ``c1 = alpha * |r|`` (``add(a, b, c)`` adds ``c·a aᵀ`` to ``AᵀA`` and
    ``b·a`` to ``Aᵀb``), counting ``numExplicits`` = the ratings ``r > 0``; then
    ``CholeskySolver.solve(ls, numExplicits * regParam)`` adds that to the
    diagonal and solves in float64. So, with ``n_u = #{j: r_j > 0}``::

        A = YᵀY + Σ_j alpha·|r_j| y_j y_jᵀ + regParam·n_u·I
        b = Σ_{j: r_j > 0} (1 + alpha·r_j) y_j

    Regularisation grows with the history (ALS-WR); non-positive ratings add
    confidence but no preference and no regularisation. MLlib updates the user
    factors last in every iteration, so re-solving a training user's history
    against the final item factors gives back MLlib's user factor (up to float32).

Both systems are written here with numpy, batched over many histories: neither
implicit nor MLlib exposes a single-user solve against another library's factors
(implicit's ``recalculate_user`` applies implicit's own equations; MLlib only
solves inside a distributed fit).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import scipy.sparse as sp

__all__ = ["SOLVERS", "Solver", "check_solver", "normal_equations", "resolve_user_factors"]

Solver = Literal["implicit", "mllib"]
SOLVERS: tuple[str, ...] = ("implicit", "mllib")

#: dense [histories x history items x factors] work per chunk of ``resolve_user_factors``
_CHUNK_ELEMENTS = 2**22


def check_solver(solver: object) -> str:
    """``solver`` if it names a known solver; a ``ValueError`` naming the choices otherwise."""
    if not isinstance(solver, str) or solver not in SOLVERS:
        raise ValueError(f"solver: expected one of {list(SOLVERS)}, got {solver!r}")
    return solver


def normal_equations(
    gram: np.ndarray,
    rows: np.ndarray,
    values: np.ndarray,
    *,
    solver: Solver,
    regularization: float,
    alpha: float,
) -> tuple[np.ndarray, np.ndarray]:
    """The systems ``A x = b`` of ``n`` histories (see the module docstring), float64.

    Parameters
    ----------
    gram : ndarray of shape (f, f)
        ``YᵀY`` over every item factor.
    rows : ndarray of shape (h, f)
        The factors of the items the histories draw from.
    values : ndarray of shape (n, h)
        Each history's value for those items; 0 means absent (an absent item
        adds nothing to either system).
    solver, regularization, alpha
        As in :class:`recsys.models.ALS`.

    Returns
    -------
    A : ndarray of shape (n, f, f)
    b : ndarray of shape (n, f)
    """
    n_factors = gram.shape[0]
    eye = np.eye(n_factors)
    if check_solver(solver) == "implicit":
        confidence = alpha * values
        # (c - 1) on the history items, 0 elsewhere
        A = (gram + regularization * eye) + np.einsum(
            "nh,hf,hg->nfg", confidence - (values > 0), rows, rows, optimize=True
        )
        return A, confidence @ rows
    c1 = alpha * np.abs(values)
    positive = values > 0
    A = gram + np.einsum("nh,hf,hg->nfg", c1, rows, rows, optimize=True)
    A += (regularization * positive.sum(axis=1))[:, None, None] * eye
    b = np.where(positive, 1.0 + c1, 0.0) @ rows
    return A, b


def resolve_user_factors(
    item_factors: np.ndarray,
    history: sp.csr_matrix,
    *,
    solver: Solver,
    regularization: float,
    alpha: float,
    gram: np.ndarray | None = None,
) -> np.ndarray:
    """One user factor per history row, solved with ``solver``'s equations (float64).

    ``history`` is a CSR matrix ``[n, n_items]`` of interaction values. An empty
    history gives ``x = 0``; so does, for ``"mllib"``, a history without a
    positive value (``b = 0``; MLlib's solve then has no regularisation and may
    be singular). ``gram`` (``YᵀY``) may be passed when it is reused.

    Examples
    --------
    MLlib's system for ratings 2 and 1 of items 0 and 2 (``alpha = 1``,
    ``regParam = 0.5``, so ``n_u·regParam = 1``) is ``A = [[6, 2], [2, 4]]``,
    ``b = 3·y_0 + 2·y_2 = [5, 2]``:

    >>> Y = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    >>> h = sp.csr_matrix([[2.0, 0.0, 1.0]])
    >>> resolve_user_factors(Y, h, solver="mllib", regularization=0.5, alpha=1.0).round(12).tolist()
    [[0.8, 0.1]]
    """
    check_solver(solver)
    Y = np.asarray(item_factors, dtype=np.float64)
    h = sp.csr_matrix(history, dtype=np.float64)
    gram = Y.T @ Y if gram is None else gram
    n_factors = Y.shape[1]
    cols = np.unique(h.indices)
    Yc = Y[cols]
    out = np.zeros((h.shape[0], n_factors))
    chunk = max(1, _CHUNK_ELEMENTS // max(1, cols.size * n_factors))
    for start in range(0, h.shape[0], chunk):
        values = h[start : start + chunk][:, cols].toarray()
        A, b = normal_equations(
            gram, Yc, values, solver=solver, regularization=regularization, alpha=alpha
        )
        if solver == "mllib":
            solvable = (values > 0).any(axis=1)
            x = np.zeros_like(b)
            if solvable.any():
                x[solvable] = np.linalg.solve(A[solvable], b[solvable][..., None])[..., 0]
        else:
            x = np.linalg.solve(A, b[..., None])[..., 0]
        out[start : start + chunk] = x
    return out
