"""What every solver shares: the status codes it reports and the protocol the loop calls.

A solver is a small frozen dataclass registered as a pytree: its numbers (damping, tolerances)
are leaves, traced by ``jit`` and batched by ``vmap``; its structure (``max_steps``) is static and
shapes the compiled program. The one loop (:func:`jaxcal._iterate.iterate`) calls ``init``,
``step`` and ``terminate`` and never asks which solver it runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import jax
import jax.numpy as jnp

__all__ = ["CONVERGED", "MAX_STEPS", "NONFINITE", "STATUS", "UNDETERMINED", "Residuals", "Solver", "scaled_svd"]

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
      False for a zero column or a singular value below ``max(n, k) * eps * s.max()`` (NumPy's
      ``matrix_rank`` cut-off).
    """
    norms = jnp.sqrt(jnp.sum(jac * jac, axis=0))
    d = jnp.where(norms > 0, norms, jnp.ones_like(norms))
    u, s, vt = jnp.linalg.svd(jac / d[None, :], full_matrices=False)
    cutoff = max(jac.shape) * jnp.finfo(jac.dtype).eps * jnp.max(s)
    full_rank = jnp.all(norms > 0) & (jnp.min(s) > cutoff) & jnp.all(jnp.isfinite(s))
    return d, u, s, vt, full_rank
