"""BPR's per-history fold-in objective and its batched inexact Newton-CG solver.

Holds the pair-block objective (gradient, Hessian, Hessian-vector products),
its inputs (the drawn negatives and a batch of histories), the conjugate
gradient and Newton steps that maximise it, and the representer split at
the optimum. The derivation, and the scorer that batches histories for the
solver, are in :mod:`recsys.explain._bpr`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

_MAX_HALVINGS = 40
_ARMIJO = 1e-4
_ETA = 0.1  # Newton systems are solved to this relative accuracy, tighter near the optimum
_CG_REFRESH = 8  # a row whose system needs more CG iterations gets its own preconditioner
_ROUGH = 1e-3  # float32 gradients until a row's relative gradient is within this


# ------------------------------------------------------------------ negatives
@dataclass(frozen=True)
class _Negatives:
    """The drawn negatives: items, draw counts, factors and biases (and float32 copies)."""

    items: np.ndarray  # [K]
    counts: np.ndarray  # [K]
    factors: np.ndarray  # [K, f] float64
    bias: np.ndarray  # [K]
    factors32: np.ndarray  # [K, f] float32
    outer32: np.ndarray  # [K, f * f] float32: v_j v_jᵀ flattened


@dataclass(frozen=True)
class _Batch:
    """Histories of similar length, their positives gathered per row (padding weighs 0)."""

    factors: np.ndarray  # [c, P, f] float64
    factors32: np.ndarray  # [c, P, f] float32 (the Hessian's)
    bias: np.ndarray  # [c, P]
    a: np.ndarray  # [c, P]: 1/|S| on the history's items
    q: np.ndarray  # [c, K]: negative weights, summing to 1 (0 for a history without pairs)


# ------------------------------------------------------------------ objective
class _Workspace:
    """Pair-block buffers reused across one solve's batches and steps.

    A batch's pair blocks are megabytes; allocating them afresh at every step
    made the allocator hand back fresh pages (page faults), about a quarter of
    the solve time on MovieLens 100K. One workspace per ``user_factors`` call,
    never shared between calls (so never between threads).
    """

    def __init__(self) -> None:
        self._flat: dict[tuple[str, str], np.ndarray] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype: type) -> np.ndarray:
        """An uninitialised ``shape`` array, the same memory on every call with ``name``."""
        size, key = math.prod(shape), (name, np.dtype(dtype).str)
        flat = self._flat.get(key)
        if flat is None or flat.size < size:
            flat = self._flat[key] = np.empty(size, dtype=dtype)
        return flat[:size].reshape(shape)


class _Objective:
    """Gradient and curvature of ``f(u) = Σ_ij a_i q_j log σ(x_ij) − reg/2 |u|²``, per row."""

    def __init__(
        self,
        batch: _Batch,
        negatives: _Negatives,
        regularization: float,
        workspace: _Workspace | None = None,
    ) -> None:
        self.batch, self.neg, self.reg = batch, negatives, regularization
        self.workspace = _Workspace() if workspace is None else workspace

    def take(self, rows: np.ndarray) -> _Objective:
        """The objective of ``rows`` only (indices or a mask), on the same workspace."""
        return _Objective(_take(self.batch, rows), self.neg, self.reg, self.workspace)

    def misranked(
        self, u: np.ndarray, dtype: type = np.float64, buffer: str = "sigma"
    ) -> np.ndarray:
        """``σ(−x_ij)`` for every row, positive and negative: ``[c, P, K]``, in ``dtype``.

        How far each pair is from ranked right: its weight in the gradient.
        Written as ``e^{s_j − m} / (e^{s_i − m} + e^{s_j − m})``, ``s`` the scores
        and ``m`` the middle of the row's score range: one exponential per item
        rather than per pair, two passes over the pair block, and no ``1 − σ``
        to cancel. Exact while every ``|s − m|`` stays within ``bound`` (350 in
        float64, 40 in float32), where neither exponential nor their sum leaves
        the dtype's range; a row whose scores spread wider (never seen at an
        optimum) takes one exponential per pair instead. The result lives in
        the workspace's ``buffer``: the next call with that name overwrites it.
        """
        b = self.batch
        s_pos = (b.factors @ u[:, :, None])[..., 0] + b.bias
        s_neg = u @ self.neg.factors.T + self.neg.bias
        lo = np.minimum(s_pos.min(axis=1), s_neg.min(axis=1))
        hi = np.maximum(s_pos.max(axis=1), s_neg.max(axis=1))
        m = ((lo + hi) / 2)[:, None]
        bound = 350.0 if dtype == np.float64 else 40.0
        e_pos = np.exp(np.clip(s_pos - m, -bound, bound)).astype(dtype, copy=False)[:, :, None]
        e_neg = np.exp(np.clip(s_neg - m, -bound, bound)).astype(dtype, copy=False)[:, None, :]
        out = self.workspace.get(buffer, (u.shape[0], e_pos.shape[1], e_neg.shape[2]), dtype)
        np.divide(e_neg, np.add(e_pos, e_neg, out=out), out=out)
        wide = np.flatnonzero((hi - lo) / 2 > bound)
        if wide.size:
            x = (s_pos[wide][:, :, None] - s_neg[wide][:, None, :]).astype(dtype)
            with np.errstate(over="ignore"):  # e^x = inf: σ(−x) = 0, its limit
                out[wide] = 1.0 / (1.0 + np.exp(x))
        return out

    def gradient(
        self, u: np.ndarray, buffer: str = "sigma", dtype: type = np.float64
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``∇f``, ``|∇f| / (|∇ data term| + reg |u|)`` (0 when both are 0), and ``σ(−x)``.

        ``σ(−x)`` (:meth:`misranked`) is computed in ``dtype``, in the
        workspace's ``buffer``; the sums over pairs too, the rest in float64.
        A float32 gradient is off by about a millionth of its scale: enough to
        steer Newton far from the optimum, not to certify it (see :func:`_newton`).
        """
        b = self.batch
        r = self.misranked(u, dtype, buffer=buffer)
        a, q = b.a.astype(dtype, copy=False), b.q.astype(dtype, copy=False)
        pos_mass = b.a * (r @ q[:, :, None])[..., 0]  # a_i Σ_j q_j σ(−x_ij)
        neg_mass = b.q * (a[:, None, :] @ r)[:, 0]  # q_j Σ_i a_i σ(−x_ij)
        data = (pos_mass[:, None, :] @ b.factors)[:, 0] - neg_mass @ self.neg.factors
        grad = data - self.reg * u
        scale = np.linalg.norm(data, axis=1) + self.reg * np.linalg.norm(u, axis=1)
        residual = np.linalg.norm(grad, axis=1) / np.where(scale > 0, scale, 1.0)
        return grad, residual, r

    def curvature(self, sig: np.ndarray) -> _Curvature:
        """The pair weights of ``−∇²f``, ``w_ij = a_i q_j s_ij``, from ``σ(−x)`` (or ``σ(x)``).

        ``s = σ(1 − σ)`` in float32 (the workspace's ``"curvature"``): an
        inexact Hessian only slows Newton's last steps a little; the gradient,
        which fixes the optimum, stays float64.
        """
        b = self.batch
        s = self.workspace.get("curvature", sig.shape, np.float32)
        np.copyto(s, sig, casting="same_kind")
        s -= np.square(s, out=self.workspace.get("square", sig.shape, np.float32))
        a, q = b.a.astype(np.float32), b.q.astype(np.float32)
        # Σ_j w_ij and Σ_i w_ij, as matrix products
        return _Curvature(s, a, q, a * (s @ q[:, :, None])[..., 0], q * (a[:, None, :] @ s)[:, 0])

    def hessian(self, u: np.ndarray) -> np.ndarray:
        """``−∇²f = Σ_ij w_ij (v_i − v_j)(v_i − v_j)ᵀ + reg I``, per row, in float32."""
        b = self.batch
        n_rows, f = u.shape
        c = self.curvature(self.misranked(u, np.float32, buffer="sigma32"))
        w = c.s * c.a[:, :, None]
        w *= c.q[:, None, :]
        pos32 = b.factors32
        # Σ_i α_i v_i v_iᵀ + Σ_j β_j v_j v_jᵀ − Σ_ij w_ij (v_i v_jᵀ + v_j v_iᵀ)
        hess = (np.swapaxes(pos32, 1, 2) * c.by_pos[:, None, :]) @ pos32
        hess += (c.by_neg @ self.neg.outer32).reshape(n_rows, f, f)
        cross = np.swapaxes(pos32, 1, 2) @ (w @ self.neg.factors32)
        hess -= cross + np.swapaxes(cross, 1, 2)
        hess[:, np.arange(f), np.arange(f)] += np.float32(self.reg)
        return hess

    def hessian_product(self, c: _Curvature, v: np.ndarray) -> np.ndarray:
        """``−∇²f · v`` per row (float32), never forming ``∇²f``.

        With ``d_i = v_i·v`` and ``e_j = v_j·v``, the sum over pairs of
        ``w_ij (d_i − e_j)(v_i − v_j)`` needs two products with ``s``: about
        ``2 P K`` operations per row against ``P K f`` to form the Hessian.
        """
        b, neg = self.batch, self.neg
        d = (b.factors32 @ v[:, :, None])[..., 0]  # [c, P]
        e = v @ neg.factors32.T  # [c, K]
        # Σ_j w_ij (d_i − e_j) and Σ_i w_ij (d_i − e_j)
        by_pos = c.by_pos * d - c.a * (c.s @ (c.q * e)[:, :, None])[..., 0]
        by_neg = c.q * ((c.a * d)[:, None, :] @ c.s)[:, 0] - c.by_neg * e
        return (by_pos[:, None, :] @ b.factors32)[:, 0] - by_neg @ neg.factors32 + self.reg * v


@dataclass(frozen=True)
class _Curvature:
    """The Hessian's pair weights ``w_ij = a_i q_j s_ij`` (float32) and their sums."""

    s: np.ndarray  # [c, P, K]: σ(x)σ(−x)
    a: np.ndarray  # [c, P]
    q: np.ndarray  # [c, K]
    by_pos: np.ndarray  # [c, P]: Σ_j w_ij
    by_neg: np.ndarray  # [c, K]: Σ_i w_ij


def _conjugate_gradient(
    problem: _Objective,
    curvature: _Curvature,
    g: np.ndarray,
    preconditioner: np.ndarray,
    eta: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """``d`` with ``|(−∇²f) d − g| <= eta |g|`` per row, by preconditioned conjugate gradients.

    ``preconditioner`` approximates the inverse Hessian: one ``[f, f]`` shared
    by all rows, or one per row ``[c, f, f]``. Runs at most ``f`` iterations
    (where exact arithmetic would finish). Returns ``d`` (float64) and each
    row's iteration count. Written by hand: scipy's ``cg`` solves one system
    at a time, and these are thousands of small ones.
    """

    def precondition(r: np.ndarray) -> np.ndarray:
        if preconditioner.ndim == 2:
            return r @ preconditioner.T
        return (preconditioner @ r[:, :, None])[..., 0]

    r = g.astype(np.float32)
    x = np.zeros_like(r)
    z = precondition(r)
    p = z.copy()
    rz = np.einsum("rf,rf->r", r, z)
    limit = (eta * np.linalg.norm(g, axis=1)) ** 2
    done = rz <= 0
    iterations = np.zeros(r.shape[0], dtype=np.int64)
    for _ in range(r.shape[1]):
        hp = problem.hessian_product(curvature, p)
        php = np.einsum("rf,rf->r", p, hp)
        done |= php <= 0  # rounding: the Hessian is positive definite
        step = np.divide(rz, php, out=np.zeros_like(rz), where=~done)
        x += step[:, None] * p
        r -= step[:, None] * hp
        iterations += ~done
        done |= np.einsum("rf,rf->r", r, r) <= limit
        if done.all():
            break
        z = precondition(r)
        rz_next = np.einsum("rf,rf->r", r, z)
        p = z + np.divide(rz_next, rz, out=np.zeros_like(rz), where=rz > 0)[:, None] * p
        rz = rz_next
    return x.astype(np.float64), iterations


def _newton(
    problem: _Objective,
    u: np.ndarray,
    *,
    tol: float,
    max_iter: int,
    inverse: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Inexact Newton steps from ``u`` (modified in place); returns ``u`` and relative gradients.

    Each step solves the Newton system by conjugate gradients with Hessian-
    vector products (:meth:`_Objective.hessian_product`), to a relative
    accuracy ``min(_ETA, sqrt(residual))`` (a forcing term that makes the
    convergence superlinear; Eisenstat and Walker, 1996). The preconditioner
    is ``inverse`` (an inverse Hessian shared by all rows, e.g. the union's)
    or else each row's inverse Hessian at ``u``; a row whose solve needs more
    than ``_CG_REFRESH`` iterations gets its own, at its new ``u``.

    Two phases: gradients in float32 until a row's relative gradient is within
    ``_ROUGH`` (far from the optimum float32 steers as well, at half the
    cost), then in float64 to ``tol`` for every row: only a float64 gradient
    ends a solve. ``max_iter`` counts the steps of both.
    """
    if inverse is None:
        preconditioner = np.linalg.inv(problem.hessian(u))
        fresh = np.ones(u.shape[0], dtype=bool)  # preconditioner taken at the current u
    else:
        preconditioner = inverse.astype(np.float32)
        fresh = np.zeros(u.shape[0], dtype=bool)
    state = _NewtonState(u, preconditioner, fresh)
    # the float64 phase always evaluates its gradient, even with no steps left
    used = _newton_phase(problem, state, dtype=np.float32, target=max(_ROUGH, tol),
                         max_iter=max_iter - 1)
    residual = np.zeros(u.shape[0])
    _newton_phase(problem, state, dtype=np.float64, target=tol, max_iter=max_iter - used,
                  residual=residual)
    return u, residual


@dataclass
class _NewtonState:
    """Every row's iterate and preconditioner (shared ``[f, f]`` or per row ``[n, f, f]``)."""

    u: np.ndarray
    preconditioner: np.ndarray
    fresh: np.ndarray  # the row's preconditioner was taken at its current u


def _newton_phase(
    problem: _Objective,
    state: _NewtonState,
    *,
    dtype: type,
    target: float,
    max_iter: int,
    residual: np.ndarray | None = None,
) -> int:
    """Newton steps with ``dtype`` gradients until each row's relative gradient is ``<= target``.

    Updates ``state`` (and ``residual``, if given) in place; returns the steps
    taken. The step length is found by backtracking on ``|∇f|²`` (Armijo),
    which needs gradients only. A row whose step fails even with a
    preconditioner taken at its current ``u`` (then the step is Newton's own:
    rounding) leaves the phase with its residual (the reported one, in the
    float64 phase). Rows that are done leave the batch, so later steps work
    on fewer.
    """
    rows = np.arange(state.u.shape[0])  # rows still being solved
    sub, uw, fresh = problem, state.u.copy(), state.fresh.copy()
    preconditioner = state.preconditioner
    grad, res, sig = sub.gradient(uw, buffer="sigma", dtype=dtype)
    current, spare = "sigma", "trial"  # the buffers holding σ(−x) at uw and at a trial point
    stalled = np.zeros(rows.size, dtype=bool)
    steps = 0

    def save() -> None:  # the rows' progress, back into the state
        state.u[rows], state.fresh[rows] = uw, fresh
        if residual is not None:
            residual[rows] = res
        if preconditioner.ndim == 3:
            if state.preconditioner.ndim == 2:
                state.preconditioner = np.repeat(
                    state.preconditioner[None], state.u.shape[0], axis=0
                )
            state.preconditioner[rows] = preconditioner

    for steps in range(max_iter + 1):
        keep = (res > target) & ~stalled
        if steps == max_iter or not keep.any():
            break
        if not keep.all():  # converged or stalled rows leave
            save()
            rows, uw, grad, res, fresh, stalled = (
                rows[keep], uw[keep], grad[keep], res[keep], fresh[keep], stalled[keep]
            )
            old, sig = sig, sub.workspace.get(spare, (rows.size, *sig.shape[1:]), dtype)
            np.take(old, np.flatnonzero(keep), axis=0, out=sig)
            current, spare = spare, current
            sub = sub.take(keep)
            if preconditioner.ndim == 3:
                preconditioner = preconditioner[keep]
        step, iterations = _conjugate_gradient(
            sub, sub.curvature(sig), grad, preconditioner, np.minimum(_ETA, np.sqrt(res))
        )
        merit = np.einsum("rf,rf->r", grad, grad)
        trial = uw + step
        g, r, trial_sig = sub.gradient(trial, buffer=spare, dtype=dtype)
        ok = (np.einsum("rf,rf->r", g, g) <= (1 - 2 * _ARMIJO) * merit) | (r <= target)
        if ok.all():  # the usual case: the full step, and σ(−x) is already at the new u
            uw, grad, res, sig = trial, g, r, trial_sig
            current, spare = spare, current
            moved = ok
        else:
            uw[ok], grad[ok], res[ok], sig[ok] = trial[ok], g[ok], r[ok], trial_sig[ok]
            moved = ok.copy()
            _backtrack(sub, uw, grad, res, sig, np.flatnonzero(~ok), step[~ok], merit[~ok],
                       target=target, moved=moved, dtype=dtype)
        # a failed step with a preconditioner at the current u: the row leaves the phase
        stalled |= ~moved & fresh
        refresh = (~moved & ~fresh) | (moved & (iterations > _CG_REFRESH))
        fresh &= ~moved
        if refresh.any():
            if preconditioner.ndim == 2:
                preconditioner = np.repeat(preconditioner[None], rows.size, axis=0)
            at = np.flatnonzero(refresh)
            preconditioner[at] = np.linalg.inv(sub.take(at).hessian(uw[at]))
            fresh[at] = True
    save()
    return steps


def _backtrack(
    problem: _Objective,
    u: np.ndarray,
    grad: np.ndarray,
    residual: np.ndarray,
    sig: np.ndarray,
    rows: np.ndarray,
    step: np.ndarray,
    merit: np.ndarray,
    *,
    target: float,
    moved: np.ndarray,
    dtype: type,
) -> None:
    """Halve the steps of ``rows`` until ``|∇f|²`` falls enough; updates the arrays in place."""
    t = np.full(rows.size, 0.5)
    sub = problem.take(rows)
    for _ in range(_MAX_HALVINGS):
        trial = u[rows] + t[:, None] * step
        g, r, trial_sig = sub.gradient(trial, buffer="backtrack", dtype=dtype)
        ok = (np.einsum("rf,rf->r", g, g) <= (1 - 2 * _ARMIJO * t) * merit) | (r <= target)
        hit = rows[ok]
        u[hit], grad[hit], residual[hit], sig[hit] = trial[ok], g[ok], r[ok], trial_sig[ok]
        moved[hit] = True
        if ok.all():
            return
        rows, step, merit, t = rows[~ok], step[~ok], merit[~ok], t[~ok] / 2
        sub = sub.take(~ok)


def _representer_terms(problem: _Objective, u: np.ndarray) -> np.ndarray:
    """One history's factor split over its items at the optimum ``u`` (``[1, f]``): ``[P, f]``.

    ``t_i = (a_i / reg) Σ_j q_j σ(−x_ij) (v_i − v_j)``; at the optimum ``Σ_i t_i = u``
    (the gradient vanishes). See :meth:`_BprScorer.representer`.
    """
    b = problem.batch
    pair = problem.misranked(u)[0] * b.q[0][None, :]  # [P, K]: q_j σ(−x_ij)
    pos = b.factors[0] * (b.a[0] * pair.sum(axis=1))[:, None]  # a_i Σ_j r_ij v_i
    neg = b.a[0][:, None] * (pair @ problem.neg.factors)  # a_i Σ_j r_ij v_j
    return (pos - neg) / problem.reg


def _take(batch: _Batch, rows: np.ndarray) -> _Batch:
    """The sub-batch of ``rows`` (indices or a mask)."""
    return _Batch(
        batch.factors[rows], batch.factors32[rows], batch.bias[rows], batch.a[rows], batch.q[rows]
    )
