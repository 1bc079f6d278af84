"""What an epoch evaluates: the loss and its gradient, by ``jax.grad``, the book's hand-written
gradient, or the book's finite differences.

An :class:`Evaluation` is a small value of pure functions, built where its traced inputs (a
finite-difference ``delta``) are known, as optax builds a transformation from a traced learning
rate. :mod:`jaxcal.exact` builds the same three in the recording's float32 arithmetic.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax

from . import book
from ._layout import PLAIN, Layout
from .core import Model, loss_fn, objective
from .core import model as linear_model
from .onepass import one_pass

__all__ = ["GRADIENTS", "Evaluation", "analytic", "autograd", "by_name", "finite_difference"]

Array = jax.Array

#: The gradients jaxcal knows by name (``training_loop(gradient=...)``, the CLI's ``--gradient``).
GRADIENTS = ("autograd", "analytic", "finite-difference")


class Evaluation(NamedTuple):
    """What one epoch evaluates, as pure functions.

    ``readings`` is what the caller fits: ``(t_u, t_c)`` for one fit, a tile of a fleet.

    Attributes:
      loss: ``loss(params, readings) -> loss`` (validation, the final loss).
      loss_and_grad: ``loss_and_grad(params, data) -> (loss, grad)`` at ``params``, where
        ``data = arrange(readings)``; ``None`` for finite differences.
      arrange: ``arrange(readings) -> data``: the readings as ``loss_and_grad`` reads them, laid
        out once before the first epoch.
      rate: finite differences only: ``rate(params, readings, j)``, the loss's rate of change
        along ``params[j]``. The loop then updates one parameter after the other, as the book.
    """

    loss: Callable[[Any, Any], Array]
    loss_and_grad: Callable[[Any, Any], tuple[Array, Any]] | None
    arrange: Callable[[Any], Any] = lambda readings: readings
    rate: Callable[[Array, Any, int], Array] | None = None


def autograd(model: Model = linear_model, *, layout: Layout = PLAIN) -> Evaluation:
    """The loss and ``jax.value_and_grad`` of it: the seed's ``loss.backward()``.

    Every sum over the readings (the loss's and one per parameter of the gradient) runs as one
    pass (:func:`jaxcal.onepass.one_pass`), over the readings as ``layout`` arranges them.

    >>> import jax.numpy as jnp
    >>> from jaxcal import data
    >>> evaluation = autograd()
    >>> readings = evaluation.arrange((jnp.asarray(data.t_u), jnp.asarray(data.t_c)))
    >>> loss, grad = evaluation.loss_and_grad(jnp.array([1.0, 0.0]), readings)
    >>> print(f"{float(loss):.2f}", [round(float(g), 1) for g in grad])
    1763.88 [4517.3, 82.6]
    """
    differentiated = layout.objective(model)

    def loss_and_grad(params: Array, data: Any) -> tuple[Array, Array]:
        return jax.value_and_grad(differentiated)(params, *data)

    return Evaluation(_loss(model), one_pass(loss_and_grad, max_extent=layout.max_extent), layout.arrange)


def _loss(model: Model) -> Callable[[Array, Any], Array]:
    def loss(params: Array, readings: Any) -> Array:
        return objective(params, *readings, model=model)

    return loss


def analytic(*, layout: Layout = PLAIN) -> Evaluation:
    """The book's hand-written gradient of the linear model (:func:`jaxcal.book.grad_fn`)."""

    def loss_and_grad(params: Array, data: Any) -> tuple[Array, Array]:
        t_u, t_c = data
        w, b = params[0], params[1]
        t_p = linear_model(t_u, w, b)
        return loss_fn(t_p, t_c), book.grad_fn(t_u, t_c, t_p, w, b)

    return Evaluation(_loss(linear_model), one_pass(loss_and_grad, max_extent=layout.max_extent))


def finite_difference(delta: Array, model: Model = linear_model) -> Evaluation:
    """The book's central finite differences of half-width ``delta`` (traced), one parameter at a
    time (:func:`jaxcal.book.rate_of_change`)."""
    loss = _loss(model)

    def rate(params: Array, readings: Any, j: int) -> Array:
        return book.rate_of_change(lambda p: loss(p, readings), params, j, delta)

    return Evaluation(loss, None, rate=rate)


def by_name(gradient: str, model: Model, *, layout: Layout, delta: Array) -> Evaluation:
    """The evaluation ``gradient`` names (one of :data:`GRADIENTS`)."""
    if gradient == "analytic":
        return analytic(layout=layout)
    if gradient == "finite-difference":
        return finite_difference(delta, model)
    return autograd(model, layout=layout)

