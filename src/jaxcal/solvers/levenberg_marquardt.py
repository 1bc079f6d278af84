"""Levenberg-Marquardt: nonlinear least squares for any JAX model, damped per fit."""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from ._base import CONVERGED, NONFINITE, Residuals, check_settings, svd

__all__ = ["LevenbergMarquardt"]


class _State(NamedTuple):
    scale: jax.Array  # MINPACK's diag: the largest norm each Jacobian column has had, (k,)
    damping: jax.Array  # mu, relative to the scaled columns' unit norm
    growth: jax.Array  # how much mu grows at the next rejected step (Nielsen's nu)
    done: jax.Array
    status: jax.Array
    residuals: jax.Array  # at the current params: each step evaluates the model once more, not twice


@functools.partial(jax.tree_util.register_dataclass, data_fields=["rtol", "atol", "damping"],
                   meta_fields=["max_steps"])
@dataclasses.dataclass(frozen=True)
class LevenbergMarquardt:
    """Levenberg-Marquardt for a model nonlinear in its params, each fit damped on its own.

    Each step solves ``(J^T J + mu D^2) delta = -J^T r``, with ``J`` by ``jax.jacfwd`` and ``D``
    Marquardt's scaling (MINPACK's: the largest norm each column of ``J`` has had), through the SVD of
    ``J / D`` rather than the normal equations. A step that lowers the sum of squares as the linear
    model predicts is taken and ``mu`` lowered; one that does not (or whose residuals are not finite)
    is refused and ``mu`` raised (Nielsen's rule).

    The fit stops when a step changes no param by more than ``atol + rtol * |y|`` (per param, as
    optimistix; MINPACK's ``xtol`` test takes the norm), or when the linear model predicts a relative
    reduction of the sum of squares of at most ``rtol**2`` (MINPACK's ``ftol`` test, in the units of the
    first: a step of ``rtol`` of the params' standard deviations reduces it by about that much). Its
    status: ``converged``, ``max_steps``, or ``nonfinite`` (residuals not finite at the start, a Jacobian
    not finite, or no finite step left).

    >>> import jax.numpy as jnp
    >>> from jaxcal import calibrate
    >>> t_u = jnp.array([1.0, 2.0, 3.0, 4.0])
    >>> fit = calibrate(t_u, 2.0 * jnp.exp(-0.5 * t_u), model=lambda t_u, a, k: a * jnp.exp(-k * t_u),
    ...                 params=[1.0, 1.0], solver=LevenbergMarquardt())
    >>> [round(float(p), 4) for p in fit.params], fit.STATUS[int(fit.status)]
    ([2.0, 0.5], 'converged')

    Args:
      rtol: the relative tolerance; ``None``: ``eps ** (2 / 3)`` of the params' dtype (3.7e-11 in float64,
        2.4e-5 in float32: what NIST's certified digits need; MINPACK's ``sqrt(eps)`` stopped short of
        6 digits on Chwirut, Hahn1, Roszman1 and ENSO).
      atol: the absolute tolerance on each param's step; ``None``: 0.
      damping: the first ``mu``, relative to the scaled columns (unit norm); 1e-3 as Nielsen.
      max_steps: the most steps (static: a new value compiles a new program).
    """

    rtol: float | None = None
    atol: float | None = None
    damping: float = 1e-3
    max_steps: int = 1000

    def __post_init__(self) -> None:
        check_settings(self, positive=("damping",), optional=("rtol", "atol"))

    def _tolerances(self, dtype: Any) -> tuple[Any, Any]:
        rtol = (jnp.finfo(dtype).eps ** (2 / 3)).astype(dtype) if self.rtol is None else self.rtol
        atol = jnp.zeros((), dtype) if self.atol is None else self.atol
        return rtol, atol

    def init(self, fn: Residuals, y0: jax.Array, args: Any) -> _State:
        r = fn(y0, args)
        # the sum of squares too: residuals of 1e20 are finite, their squares' sum is not (float32)
        finite = jnp.all(jnp.isfinite(r)) & jnp.all(jnp.isfinite(y0)) & jnp.isfinite(jnp.sum(r * r))
        status = jnp.where(finite, CONVERGED, NONFINITE).astype(jnp.int32)
        return _State(jnp.zeros_like(y0), jnp.asarray(self.damping, y0.dtype), jnp.asarray(2.0, y0.dtype),
                      jnp.logical_not(finite), status, r)

    def step(self, fn: Residuals, y: jax.Array, args: Any, state: _State) -> tuple[jax.Array, _State]:
        rtol, atol = self._tolerances(y.dtype)
        r = state.residuals
        jac = jax.jacfwd(fn)(y, args)
        f = jnp.sum(r * r)
        jac_finite = jnp.all(jnp.isfinite(jac))
        scale = jnp.maximum(state.scale, jnp.sqrt(jnp.sum(jac * jac, axis=0)))
        scale = jnp.where(scale > 0, scale, jnp.ones_like(scale))
        u, s, vt = svd(jnp.where(jac_finite, jac / scale[None, :], jnp.zeros_like(jac)))
        g = u.T @ r
        mu = state.damping
        # the step in the scaled params (scale * y), then back in y's units
        delta = -(vt.T @ (s * g / (s * s + mu))) / scale
        y_new = y + delta
        r_new = fn(y_new, args)
        f_new = jnp.sum(r_new * r_new)
        # predicted reduction ||r||^2 - ||r + J delta||^2, exact in the SVD's terms and never negative
        predicted = jnp.sum(g * g * (1 - (mu / (s * s + mu)) ** 2))
        actual = f - f_new
        ratio = actual / jnp.where(predicted > 0, predicted, jnp.ones_like(predicted))
        # Near the minimum the linear model promises less than the rounding of f can show: each residual
        # t_p - t_c is rounded to about eps |t_c|, not eps |r|, so f is known only to about
        # 2 eps sum(|r| |t_c|), which the solver cannot see (measured on Misra1a-shaped fits in float64: f
        # off by 1e-13 relative, 100 times n eps f). Refusing such a step (f came out no smaller) made mu
        # grow until the step passed the small-step test, stopping up to 8e-9 (relative) short of the
        # minimum. So a step that promises less than sqrt(eps) f (the Gauss-Newton regime, where the linear
        # model holds) is taken as long as f grows by no more than that much: a sloppy direction's long
        # step that the linear model misjudges still raises f by more and is refused.
        margin = jnp.sqrt(jnp.finfo(y.dtype).eps) * f
        tiny = (predicted <= margin) & (f_new <= f + margin)
        accept = jnp.isfinite(f_new) & (((ratio > 1e-4) & (predicted > 0)) | tiny)
        lower = jnp.maximum(1.0 / 10.0, 1 - (2 * ratio - 1) ** 3)
        damping = jnp.where(accept, mu * lower, mu * state.growth)
        growth = jnp.where(accept, jnp.asarray(2.0, y.dtype), 2 * state.growth)
        # per param, as optimistix's test: a param small beside the others (NIST's ENSO b8) still gets its
        # digits
        small_step = jnp.all(jnp.abs(delta) <= atol + rtol * jnp.abs(y))
        # the linear model promises no gain beyond rtol of the params' standard deviations (its predicted
        # reduction is about (step / sd)**2 of f)
        small_change = predicted <= rtol * rtol * f
        exact = f == 0
        converged = jac_finite & (small_step | small_change | exact)
        stuck = jnp.logical_not(jnp.isfinite(damping)) | jnp.logical_not(jac_finite)
        done = converged | stuck
        status = jnp.where(converged, CONVERGED, NONFINITE).astype(jnp.int32)
        taken = accept & jac_finite
        y = jnp.where(taken, y_new, y)
        r = jnp.where(taken, r_new, r)
        return y, _State(scale, damping, jnp.minimum(growth, jnp.asarray(2.0**30, y.dtype)), done, status, r)

    def terminate(self, fn: Residuals, y: jax.Array, args: Any, state: _State) -> tuple[jax.Array, jax.Array]:
        return state.done, state.status
