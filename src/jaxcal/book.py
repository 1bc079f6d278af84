"""The book's hand-written derivatives and its finite-difference step, as pure JAX functions.

Before autograd, chapter 5 differentiates the loss by hand (``dloss_fn``, ``dmodel_dw``,
``dmodel_db``, ``grad_fn``) and, before that, estimates the rates of change by central finite
differences. jaxcal keeps both, in the book's names and argument orders, so that every run of
the chapter can be replayed (``training_loop(..., gradient="analytic")`` and
``gradient="finite-difference"``, see :mod:`jaxcal.evaluate`), and so that a test can show the analytic gradient and
``jax.grad`` agree.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

__all__ = ["dloss_fn", "dmodel_db", "dmodel_dw", "grad_fn", "rate_of_change"]

Array = jax.Array


def dloss_fn(t_p: Array, t_c: Array) -> Array:
    """d loss / d t_p for the mean squared error: ``2 * (t_p - t_c) / n``."""
    return 2 * (t_p - t_c) / t_p.shape[0]


def dmodel_dw(t_u: Array, w: Array, b: Array) -> Array:
    """d t_p / d w for ``t_p = w * t_u + b``."""
    return t_u


def dmodel_db(t_u: Array, w: Array, b: Array) -> float:
    """d t_p / d b for ``t_p = w * t_u + b``."""
    return 1.0


def grad_fn(t_u: Array, t_c: Array, t_p: Array, w: Array, b: Array) -> Array:
    """The book's analytic gradient ``[dloss/dw, dloss/db]`` by the chain rule.

    >>> import jax.numpy as jnp
    >>> from jaxcal import data, model
    >>> t_p = model(jnp.asarray(data.t_u), 1.0, 0.0)
    >>> [round(float(g), 1) for g in grad_fn(data.t_u, data.t_c, t_p, 1.0, 0.0)]
    [4517.3, 82.6]
    """
    dloss_dtp = dloss_fn(t_p, t_c)
    dloss_dw = dloss_dtp * dmodel_dw(t_u, w, b)
    dloss_db = dloss_dtp * dmodel_db(t_u, w, b)
    return jnp.stack([dloss_dw.sum(), dloss_db.sum()])


def rate_of_change(
    loss: Callable[[Array], Array],
    params: Array,
    j: int,
    delta: Array,
    *,
    divide: Callable[[Array, Array], Array] = jnp.divide,
) -> Array:
    """The book's central finite difference of ``loss`` along ``params[j]``.

    ``(loss(params + delta e_j) - loss(params - delta e_j)) / (2 * delta)``. The book updates
    each parameter before it takes the next one's rate (so ``b``'s rate is evaluated at the
    already-updated ``w``): the training loop does that with the rates this returns.

    Args:
      loss: the loss as a function of the params vector.
      params: shape ``(m,)``.
      j: which parameter (static).
      delta: the half-width (the book uses 0.1).
      divide: the division, replaceable by exact mode's (:mod:`jaxcal.exact`).

    >>> import jax.numpy as jnp
    >>> float(rate_of_change(lambda p: (p ** 2).sum(), jnp.array([3.0, 1.0]), 0, 0.5))
    6.0
    """
    step = jnp.zeros_like(params).at[j].set(delta)
    return divide(loss(params + step) - loss(params - step), 2 * delta)
