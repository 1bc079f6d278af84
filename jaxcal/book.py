"""The book's hand-written derivatives and its finite-difference step, as pure JAX functions.

Before autograd, chapter 5 differentiates the loss by hand (``dloss_fn``, ``dmodel_dw``,
``dmodel_db``, ``grad_fn``) and, before that, estimates the rates of change by central finite
differences. jaxcal keeps both, in the book's names and argument orders, so that every run of
the chapter can be replayed (``training_loop(..., gradient="analytic")`` and
``gradient="finite-difference"``), and so that a test can show the analytic gradient and
``jax.grad`` agree.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

__all__ = ["dloss_fn", "dmodel_db", "dmodel_dw", "finite_difference_step", "grad_fn"]

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


def finite_difference_step(
    loss: Callable[[Array], Array],
    params: Array,
    learning_rate: Array,
    delta: Array,
    *,
    divide: Callable[[Array, Array], Array] = jnp.divide,
    update: Callable[[Array, Array], Array] = lambda p, step: p - step,
    multiply: Callable[[Array, Array], Array] = jnp.multiply,
) -> tuple[Array, Array]:
    """One step of the book's central finite differences, one parameter after the other.

    As in the book, each parameter is updated before the next one's rate of change is taken
    (so ``b``'s rate is evaluated at the already-updated ``w``).

    Args:
      loss: the loss as a function of the params vector.
      params: shape ``(m,)``.
      learning_rate: the step size.
      delta: the finite-difference half-width (the book uses 0.1).
      divide, update, multiply: the arithmetic, replaceable by exact mode's
        (``jaxcal.exact``) to reproduce the recorded rounding.

    Returns:
      ``(new_params, rates)``: the updated params and the rates of change used, shape ``(m,)``.
    """
    rates = []
    for j in range(params.shape[0]):
        step = jnp.zeros_like(params).at[j].set(delta)
        rate = divide(loss(params + step) - loss(params - step), 2 * delta)
        params = params.at[j].set(update(params[j], multiply(learning_rate, rate)))
        rates.append(rate)
    return params, jnp.stack(rates)
