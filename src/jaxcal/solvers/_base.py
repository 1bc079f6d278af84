"""What every solver shares: the status codes it reports and the protocol the loop calls.

A solver is a small frozen dataclass registered as a pytree: its numbers (damping, tolerances)
are leaves, traced by ``jit`` and batched by ``vmap``; its structure (``max_steps``) is static and
shapes the compiled program. The one loop (:func:`jaxcal._iterate.iterate`) calls ``init``,
``step`` and ``terminate`` and never asks which solver it runs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Protocol

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["CONVERGED", "JACOBI_MAX_PARAMS", "MAX_STEPS", "NONFINITE", "STATUS", "UNDETERMINED", "Residuals", "Solver",
           "check_settings", "scaled_svd", "svd"]

Array = jax.Array
#: ``fn(y, args) -> residuals``: what a solver minimises the sum of squares of, shape ``(n,)``.
Residuals = Callable[[Array, Any], Array]

#: Status codes, the index into :data:`STATUS`.
CONVERGED, MAX_STEPS, NONFINITE, UNDETERMINED = 0, 1, 2, 3
#: The name of each status code: the fit met its stopping test; it ran out of steps; its residuals or
#: Jacobian became NaN or infinite; its params are not determined by the data (a rank-deficient Jacobian,
#: e.g. every reading at the same ``t_u``).
STATUS = ("converged", "max_steps", "nonfinite", "undetermined")


class Solver(Protocol):
    """The protocol of a solver value (see the module's docstring)."""

    max_steps: int

    def init(self, fn: Residuals, y0: Array, args: Any) -> Any: ...

    def step(self, fn: Residuals, y: Array, args: Any, state: Any) -> tuple[Array, Any]: ...

    def terminate(self, fn: Residuals, y: Array, args: Any, state: Any) -> tuple[Array, Array]: ...


def check_settings(solver: Any, *, positive: tuple[str, ...] = (), optional: tuple[str, ...] = ()) -> None:
    """Refuse, in one line naming the field, a solver's setting that cannot be meant: ``max_steps`` not
    a whole number of at least 1, a ``positive`` field not a finite number above 0, an ``optional``
    one (``None`` for its default) negative or not finite. Values already traced (a solver rebuilt
    inside a program) were checked when the caller made it."""
    name = type(solver).__name__
    steps = solver.max_steps
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"{name}: max_steps must be a whole number of at least 1, got {steps!r}")
    checks = [(f, False) for f in positive] + [(f, True) for f in optional]
    for field, may_be_none in checks:
        value = getattr(solver, field)
        if value is None and may_be_none:
            continue
        if isinstance(value, jax.Array):  # a tracer too
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
        bad = not math.isfinite(number) or number < 0 or (number == 0 and not may_be_none)
        if isinstance(value, (bool, str)) or bad:
            what = "a finite number at least 0 (or None)" if may_be_none else "a finite number above 0"
            raise ValueError(f"{name}: {field} must be {what}, got {value!r}")


def scaled_svd(jac: Array) -> tuple[Array, Array, Array, Array, Array]:
    """The SVD of ``jac`` with its columns scaled to unit norm, and whether it has full column rank.

    Scaling first is what keeps digits where the columns differ by many orders of magnitude
    (Pontius's ``t_u**2`` reaches 9e12 beside a column of ones): the singular values of the scaled
    matrix measure how far the columns are from dependent, not how large they are.

    Args:
      jac: the Jacobian, shape ``(n, k)``.

    Returns:
      ``(d, u, s, vt, full_rank)``: the column norms ``(k,)`` (a zero column's taken as 1), and
      ``u (n, k)``, ``s (k,)``, ``vt (k, k)`` with ``jac / d == u @ diag(s) @ vt``; ``full_rank`` is
      False for fewer rows than columns, a zero column or a singular value below ``max(n, k) * eps * s.max()`` (NumPy's
      ``matrix_rank`` cut-off).
    """
    norms = jnp.sqrt(jnp.sum(jac * jac, axis=0))
    d = jnp.where(norms > 0, norms, jnp.ones_like(norms))
    u, s, vt = svd(jac / d[None, :])
    cutoff = max(jac.shape) * jnp.finfo(jac.dtype).eps * jnp.max(s)
    # fewer rows than columns: the thin SVD has only n singular values, all of which may be large
    full_rank = jnp.all(norms > 0) & (jnp.min(s) > cutoff) & jnp.all(jnp.isfinite(s)) & (jac.shape[0] >= jac.shape[1])
    return d, u, s, vt, full_rank


#: The most params (columns) whose SVD :func:`svd` takes by one-sided Jacobi rotations; wider
#: Jacobians go to LAPACK (``jnp.linalg.svd``).
JACOBI_MAX_PARAMS = 4


def svd(a: Array) -> tuple[Array, Array, Array]:
    """The thin SVD ``a == u @ diag(s) @ vt`` of a tall ``(n, k)`` matrix, singular values unsorted.

    For ``k <= JACOBI_MAX_PARAMS`` by one-sided Jacobi (Hestenes) rotations of the columns, written as
    elementwise operations and sums over the ``n`` rows: under ``vmap`` a fleet's SVDs are then a few
    vectorised passes over its readings, where ``jnp.linalg.svd`` calls LAPACK once per fit (measured on
    102,400 Misra1a-shaped fits: the LAPACK calls were most of a Levenberg-Marquardt step). One-sided
    Jacobi is also the accurate way for small singular values (Demmel and Veselic, 1992): each rotation
    is computed from the columns themselves, never from ``a^T a``. The sweeps are a static count,
    enough for the rotations' quadratic convergence to reach the dtype's rounding: 1 for ``k == 2``
    (its one rotation leaves the columns orthogonal but for rounding; a second sweep cost a third of
    a million lines' fit and changed no test's figure), 6 for ``k`` of 3 or 4, run as a loop of one
    compiled sweep: unrolled, the six made every program with such an SVD slow to compile (measured with
    jax 0.10.2 on 2 CPU devices: Roszman1's float64 Levenberg-Marquardt fit 5.2 s to first result
    unrolled, 2.2 s looped; 102,400 quadratic least-squares fits in float32 took 0.16 s unrolled and
    0.11 s looped, medians of 5).

    Args:
      a: shape ``(n, k)`` with ``n >= k``.

    Returns:
      ``(u (n, k), s (k,), vt (k, k))``.
    """
    n, k = a.shape
    if k > JACOBI_MAX_PARAMS or n < k:
        return jnp.linalg.svd(a, full_matrices=False)
    one, zero = jnp.ones((), a.dtype), jnp.zeros((), a.dtype)
    big_zeta = 1 / jnp.sqrt(jnp.finfo(a.dtype).eps)

    def sweep(carry: tuple[list[Array], list[list[Array]]]) -> tuple[list[Array], list[list[Array]]]:
        cols, v = list(carry[0]), [list(row) for row in carry[1]]
        for p in range(k):
            for q in range(p + 1, k):
                alpha = jnp.sum(cols[p] * cols[p])
                beta = jnp.sum(cols[q] * cols[q])
                gamma = jnp.sum(cols[p] * cols[q])
                rotate = gamma != 0
                zeta = (beta - alpha) / (2 * jnp.where(rotate, gamma, one))
                # the smaller of the two rotations that zero gamma; 1 / (|zeta| + sqrt(1 + zeta**2)) without
                # overflowing for a huge zeta (then t is 1 / (2 |zeta|), or 0)
                big = jnp.abs(zeta) > big_zeta
                root = jnp.sqrt(1 + jnp.where(big, zero, zeta * zeta))
                t = jnp.where(big, 1 / (2 * jnp.abs(zeta)), 1 / (jnp.abs(zeta) + root))
                t = jnp.where(rotate, jnp.where(zeta < 0, -t, t), zero)
                c = 1 / jnp.sqrt(1 + t * t)
                s = c * t
                cols[p], cols[q] = c * cols[p] - s * cols[q], s * cols[p] + c * cols[q]
                for i in range(k):
                    v[i][p], v[i][q] = c * v[i][p] - s * v[i][q], s * v[i][p] + c * v[i][q]
        return cols, v

    carry = ([a[:, j] for j in range(k)], [[one if i == j else zero for j in range(k)] for i in range(k)])
    if k == 2:
        cols, v = sweep(carry)
    else:  # the sweeps as a loop, not unrolled: XLA compiles one sweep, not six
        cols, v = jax.lax.fori_loop(0, 6, lambda _, c: sweep(c), carry)
    sv = [jnp.sqrt(jnp.sum(col * col)) for col in cols]
    u = jnp.stack([col / jnp.where(sj > 0, sj, one) for col, sj in zip(cols, sv, strict=True)], axis=1)
    vt = jnp.stack([jnp.stack([v[i][j] for i in range(k)]) for j in range(k)])  # row j of vt: column j of v
    return u, jnp.stack(sv), vt
