"""Linear least squares in one step: the exact solution for a model linear in its params."""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from ._base import CONVERGED, MAX_STEPS, NONFINITE, UNDETERMINED, Residuals, check_settings, scaled_svd

__all__ = ["LeastSquares"]


class _State(NamedTuple):
    done: jax.Array
    status: jax.Array


@functools.partial(jax.tree_util.register_dataclass, data_fields=[], meta_fields=["max_steps", "known_linear"])
@dataclasses.dataclass(frozen=True)
class LeastSquares:
    """The least-squares solution of a model linear in its params, in one step.

    The design columns are the model's Jacobian (``jax.jacfwd``, exact for such a model); the step
    solves with those columns scaled to unit norm, by SVD, never the normal equations (which
    square the condition number: Pontius's ``t_u**2`` reaches 9e12 and would lose half the digits).
    A rank-deficient design (e.g. every ``t_u`` equal) gives status ``undetermined`` and NaN params.

    For a model that is not linear in its params the step is one Gauss-Newton step from the start,
    not the solution: where the residuals after the step differ from the linear prediction
    ``r + J delta`` by more than ``sqrt(eps)`` of the residuals' scale (a linear model's differ by
    its rounding, some ``eps``), the status is ``max_steps`` (the one step did not reach a
    minimum), never ``converged``. Use :class:`LevenbergMarquardt` there.

    Args:
      max_steps: 1 (static): one step reaches the solution.
      known_linear: the caller knows the model is linear in its params, and the check above is
        skipped (an evaluation of the model per fit: a third of a million lines' fit). ``calibrate``'s
        default solver sets it for the models it knows to be linear (the named ones, an expression
        that is a sum of param-times-column terms).

    >>> import jax.numpy as jnp
    >>> from jaxcal import calibrate
    >>> fit = calibrate(jnp.array([0.0, 1.0, 2.0]), jnp.array([1.0, 3.0, 5.0]), solver=LeastSquares())
    >>> [round(float(p), 4) for p in fit.params]
    [2.0, 1.0]
    """

    max_steps: int = 1  # static: one step reaches the solution
    known_linear: bool = False  # static: whether the linearity check is compiled in

    def __post_init__(self) -> None:
        check_settings(self)
        if not isinstance(self.known_linear, bool):
            raise TypeError(f"LeastSquares: known_linear must be True or False, got {self.known_linear!r}")

    def init(self, fn: Residuals, y0: jax.Array, args: Any) -> _State:
        return _State(jnp.zeros((), bool), jnp.int32(CONVERGED))

    def step(self, fn: Residuals, y: jax.Array, args: Any, state: _State) -> tuple[jax.Array, _State]:
        r = fn(y, args)
        jac = jax.jacfwd(fn)(y, args)
        finite = jnp.all(jnp.isfinite(r)) & jnp.all(jnp.isfinite(jac))
        d, u, s, vt, full_rank = scaled_svd(jnp.where(finite, jac, jnp.zeros_like(jac)))
        s_safe = jnp.where(s > 0, s, jnp.ones_like(s))
        delta = -(vt.T @ ((u.T @ jnp.where(finite, r, jnp.zeros_like(r))) / s_safe)) / d
        status = jnp.where(finite, jnp.where(full_rank, CONVERGED, UNDETERMINED), NONFINITE).astype(jnp.int32)
        y_new = y + delta
        if self.known_linear:
            y = jnp.where(status == CONVERGED, y_new, jnp.full_like(y, jnp.nan))
            return y, _State(jnp.ones((), bool), status)
        # linear in its params: the residuals after the step are the linear model's prediction, but for rounding
        predicted = r + jac @ delta
        after = fn(y_new, args)
        scale = jnp.max(jnp.abs(r)) + jnp.max(jnp.abs(predicted)) + jnp.max(jnp.abs(after))
        linear = jnp.max(jnp.abs(after - predicted)) <= jnp.sqrt(jnp.finfo(y.dtype).eps) * scale
        status = jnp.where((status == CONVERGED) & jnp.logical_not(linear), MAX_STEPS, status).astype(jnp.int32)
        y = jnp.where((status == CONVERGED) | (status == MAX_STEPS), y_new, jnp.full_like(y, jnp.nan))
        return y, _State(jnp.ones((), bool), status)

    def terminate(self, fn: Residuals, y: jax.Array, args: Any, state: _State) -> tuple[jax.Array, jax.Array]:
        return state.done, state.status
