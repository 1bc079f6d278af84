"""What an epoch evaluates: the loss and its gradient, by ``jax.grad``, the book's hand-written
gradient, or the book's finite differences.

An :class:`Evaluation` is a small value of pure functions, built where its traced inputs (a
finite-difference ``delta``) are known, as optax builds a transformation from a traced learning
rate. :mod:`jaxcal.exact` builds the same three in the recording's float32 arithmetic.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

import jax
import jax.numpy as jnp

from . import book
from ._layout import PLAIN, Layout
from .core import Model, loss_fn, objective
from .core import model as linear_model
from .onepass import one_pass

if TYPE_CHECKING:
    from .updates import Update

__all__ = ["GRADIENTS", "Evaluation", "analytic", "autograd", "by_name", "finite_difference", "gradient_epoch",
           "sequential_epoch", "step_with_extras"]

Array = jax.Array

#: The gradients jaxcal knows by name, each with a one-line summary (``training_loop(gradient=...)``; the
#: command line's ``--gradient`` choices and help).
GRADIENTS: dict[str, str] = {
    "autograd": "jax.grad of the loss",
    "analytic": "the book's grad_fn, the chain rule written out",
    "finite-difference": "central differences of the loss, the book's first attempt",
}


def gradient_epoch(evaluation: Evaluation, update: Update, params: Any, state: Any, data: Any,
                   readings: Any) -> tuple[Array, Any, Any, Any]:
    """One epoch of the usual kind: the loss and gradient at ``params``, then ``update``'s step
    (with optax's extra arguments where it takes them). Returns ``(loss, grad, new_params, state)``."""
    loss, grad = evaluation.loss_and_grad(params, data)
    if isinstance(params, tuple) and isinstance(grad, jax.Array):  # params carried as scalars
        grad = tuple(grad[j] for j in range(grad.shape[0]))
    return (loss, grad, *step_with_extras(evaluation, update, grad, state, params, loss, readings))


def step_with_extras(evaluation: Evaluation, update: Update, grad: Any, state: Any, params: Any, loss: Array,
                     readings: Any) -> tuple[Any, Any]:
    """``update``'s step, with optax's extra arguments where it takes them: the loss and gradient
    at ``params`` and the objective on ``readings`` (for a line search or a plateau's value)."""
    if not update.extra_args or readings is None:
        return update.step(grad, state, params)
    return update.step(grad, state, params, value=loss, grad=grad,
                       value_fn=lambda candidate: evaluation.loss(candidate, readings))


def sequential_epoch(evaluation: Evaluation, update: Update, params: Any, state: Any, data: Any,
                     readings: Any) -> tuple[Array, Any, Any, Any]:
    """The book's finite differences: each parameter's rate at the params as updated so far, and
    its update before the next parameter's rate. Returns ``(loss, rates, new_params, state)``."""
    scalars = isinstance(params, tuple)
    params = jnp.stack(params) if scalars else params
    loss = evaluation.loss(params, readings)
    rates = []
    for j in range(params.shape[0]):
        rate = evaluation.rate(params, readings, j)
        params, state = update.step(jnp.zeros_like(params).at[j].set(rate), state, params)
        rates.append(rate)
    if scalars:
        return loss, tuple(rates), tuple(params[j] for j in range(params.shape[0])), state
    return loss, jnp.stack(rates), params, state


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
        along ``params[j]``.
      epoch: ``epoch(evaluation, update, params, state, data, readings) -> (loss, grad, new_params,
        state)``: how an epoch evaluates and updates; the loop calls it and never asks which kind
        it runs (:func:`gradient_epoch`; the book's finite differences update one parameter after
        the other, :func:`sequential_epoch`).
    """

    loss: Callable[[Any, Any], Array]
    loss_and_grad: Callable[[Any, Any], tuple[Array, Any]] | None
    arrange: Callable[[Any], Any] = lambda readings: readings
    rate: Callable[[Array, Any, int], Array] | None = None
    epoch: Callable[..., tuple[Array, Any, Any, Any]] = gradient_epoch


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

    return Evaluation(loss, None, rate=rate, epoch=sequential_epoch)


def by_name(gradient: str, model: Model, *, layout: Layout, delta: Array) -> Evaluation:
    """The evaluation ``gradient`` names (one of :data:`GRADIENTS`)."""
    if gradient == "analytic":
        return analytic(layout=layout)
    if gradient == "finite-difference":
        return finite_difference(delta, model)
    return autograd(model, layout=layout)

