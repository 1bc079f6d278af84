"""The uncertainty of a least-squares fit: covariance, standard errors, residual SD, dof and R².

Pure maths on one fit's Jacobian and residuals; ``vmap`` it for a fleet.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from .solvers._base import scaled_svd

__all__ = ["Uncertainty", "r_squared", "uncertainty"]


class Uncertainty(NamedTuple):
    """One fit's uncertainty (see :func:`uncertainty`)."""

    cov: jax.Array
    stderr: jax.Array
    rss: jax.Array
    dof: jax.Array
    residual_sd: jax.Array
    full_rank: jax.Array


def uncertainty(jac: jax.Array, residuals: jax.Array, n: jax.Array, *, absolute_sigma: bool = False) -> Uncertainty:
    """The covariance ``s**2 (J^T J)^-1`` of a fit's params, with ``s**2 = rss / (n - k)``.

    ``rss / (n - k)`` is the convention of NIST's certified standard deviations. The inverse is taken
    through the SVD of ``J`` with its columns scaled to unit norm, then unscaled: a plain inverse of
    ``J^T J`` squares the condition number and leaves no correct digit on NIST's Hahn1, Misra1c and
    Roszman1.

    Args:
      jac: the Jacobian of the (weighted) residuals at the fit's params, shape ``(n_rows, k)``; rows of
        masked readings are zero.
      residuals: the (weighted) residuals there, shape ``(n_rows,)``; masked readings' are zero.
      n: how many readings count, an integer scalar.
      absolute_sigma: False: the residuals were divided by *relative* uncertainties, and the covariance
        is scaled by the reduced chi-square ``rss / (n - k)`` (an unweighted fit is this case, with
        every sigma 1). True: they were divided by *absolute* standard uncertainties, and the
        covariance is ``(J^T J)^-1`` alone, whatever the scatter of the residuals.

    Returns:
      An :class:`Uncertainty`: ``cov (k, k)``, ``stderr (k,)``, ``rss`` (the sum of squared weighted
      residuals: chi-square for a weighted fit), ``dof = n - k`` (0 where there are no more readings
      than params, never negative), ``residual_sd = sqrt(rss / dof)``, and
      ``full_rank``. ``cov`` and ``stderr`` are NaN where the Jacobian is rank-deficient, and (with
      relative sigma) where ``dof <= 0``.
    """
    dtype = jac.dtype
    k = jac.shape[-1]
    d, _, s, vt, full_rank = scaled_svd(jac)
    s_safe = jnp.where(s > 0, s, jnp.ones_like(s))
    # (J^T J)^-1 = D^-1 V S^-2 V^T D^-1 for J / D = U S V^T
    half = (vt.T / s_safe[None, :]) / d[:, None]
    inverse = half @ half.T
    rss = jnp.sum(residuals * residuals)
    dof = jnp.maximum(jnp.asarray(n) - k, 0).astype(jnp.int32)  # fewer readings than params: none left
    has_dof = dof > 0
    variance = jnp.where(has_dof, rss / jnp.where(has_dof, dof, 1).astype(dtype), jnp.asarray(jnp.nan, dtype))
    cov = inverse if absolute_sigma else variance * inverse
    cov = jnp.where(full_rank, cov, jnp.full_like(cov, jnp.nan))
    stderr = jnp.sqrt(jnp.diagonal(cov))
    return Uncertainty(cov, stderr, rss, dof, jnp.sqrt(variance), full_rank)


def r_squared(t_c: jax.Array, rss: jax.Array, weights: jax.Array) -> jax.Array:
    """The coefficient of determination ``1 - rss / sum(w * (t_c - mean_w)**2)``.

    Defined for a model with an intercept (then it lies in [0, 1]); ``weights`` are ``1 / sigma**2``
    (0 for a masked reading, 1 for an unweighted one), and ``rss`` the weighted sum of squares.

    Args:
      t_c: the targets, shape ``(n,)``.
      rss: the fit's (weighted) residual sum of squares.
      weights: each reading's weight, shape ``(n,)``.

    Returns:
      R², a scalar; NaN when every counted target is the same.
    """
    mean = jnp.sum(weights * t_c) / jnp.sum(weights)
    total = jnp.sum(weights * (t_c - mean) ** 2)
    return jnp.where(total > 0, 1 - rss / jnp.where(total > 0, total, 1), jnp.asarray(jnp.nan, t_c.dtype))
