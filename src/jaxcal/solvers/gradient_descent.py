"""The book's gradient descent as a solver value: ``params - learning_rate * grad`` of the mean squared residual."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from ..book import rate_of_change
from ._base import CONVERGED, NONFINITE, Residuals, check_settings

__all__ = ["Autograd", "FiniteDifference", "GradientDescent"]

Array = jax.Array
#: ``loss(y) -> scalar``: what a gradient value differentiates.
Loss = Callable[[Array], Array]


@functools.partial(jax.tree_util.register_dataclass, data_fields=[], meta_fields=[])
@dataclasses.dataclass(frozen=True)
class Autograd:
    """The gradient by ``jax.value_and_grad``: the seed's ``loss.backward()``.

    >>> import jax.numpy as jnp
    >>> loss, grad = Autograd().value_and_grad(lambda y: jnp.sum(y * y), jnp.array([3.0, 1.0]))
    >>> float(loss), grad.tolist()
    (10.0, [6.0, 2.0])
    """

    def value_and_grad(self, loss: Loss, y: Array) -> tuple[Array, Array]:
        """``(loss(y), d loss / d y)``."""
        return jax.value_and_grad(loss)(y)


@functools.partial(jax.tree_util.register_dataclass, data_fields=["delta"], meta_fields=[])
@dataclasses.dataclass(frozen=True)
class FiniteDifference:
    """The book's central finite differences of half-width ``delta``, every param's at the same ``y``.

    ``(loss(y + delta e_j) - loss(y - delta e_j)) / (2 delta)`` for each param ``j``
    (:func:`jaxcal.book.rate_of_change`): 2 evaluations of the loss per param, and one at ``y``. For a
    model linear in its params the loss is quadratic in them and the differences are exact but for
    rounding, whatever ``delta``; elsewhere they are off by ``O(delta**2)``. (``training_loop(...,
    gradient="finite-difference")`` replays the book's run, which updates each param before it takes
    the next one's rate; a solver takes a gradient, all of it at one ``y``.)

    A value rather than a name: ``delta`` belongs to finite differences alone, and as a leaf it is
    traced (a new ``delta`` reuses the compiled program).

    >>> import jax.numpy as jnp
    >>> loss, grad = FiniteDifference(0.5).value_and_grad(lambda y: jnp.sum(y * y), jnp.array([3.0, 1.0]))
    >>> float(loss), grad.tolist()
    (10.0, [6.0, 2.0])

    Args:
      delta: the half-width, in the params' units (the book's 0.1).
    """

    delta: float = 0.1

    def value_and_grad(self, loss: Loss, y: Array) -> tuple[Array, Array]:
        """``(loss(y), the central differences of loss at y)``."""
        delta = jnp.asarray(self.delta, y.dtype)
        rates = [rate_of_change(loss, y, j, delta) for j in range(y.shape[0])]
        return loss(y), jnp.stack(rates)


class _State(NamedTuple):
    count: jax.Array  # the rows the loss averages over (see GradientDescent)
    done: jax.Array
    status: jax.Array


def counted_rows(fn: Residuals, y0: Array, args: Any) -> Array:
    """How many rows of ``fn(y, args)`` count: those whose residual at ``y0`` is not zero or moves
    with the params there (a row of the Jacobian not all zero). :func:`jaxcal.calibrate`'s masked
    readings have residual 0 and a zero Jacobian row, and so count for nothing; at least 1."""
    r = fn(y0, args)
    jac = jax.jacfwd(fn)(y0, args)
    counts = (r != 0) | jnp.any(jac != 0, axis=1)
    return jnp.maximum(jnp.sum(counts.astype(jnp.int32)), 1)


def mean_square(fn: Residuals, args: Any, count: Array) -> Loss:
    """The book's loss of residuals ``fn``: ``sum(fn(y, args) ** 2) / count``, a function of ``y``."""

    def loss(y: Array) -> Array:
        r = fn(y, args)
        return jnp.sum(r * r) / count.astype(r.dtype)

    return loss


def small_step(step: Array, y: Array, rtol: Any, atol: Any) -> Array:
    """Whether ``step`` changes no param by more than ``atol + rtol * |y|`` (False where ``rtol`` is None)."""
    if rtol is None:
        return jnp.zeros((), bool)
    rtol = jnp.asarray(rtol, y.dtype)
    atol = jnp.zeros((), y.dtype) if atol is None else jnp.asarray(atol, y.dtype)
    return jnp.all(jnp.abs(step) <= atol + rtol * jnp.abs(y))


@functools.partial(jax.tree_util.register_dataclass, data_fields=["learning_rate", "rtol", "atol", "gradient"],
                   meta_fields=["max_steps"])
@dataclasses.dataclass(frozen=True)
class GradientDescent:
    """The book's gradient descent: ``y - learning_rate * grad`` of the mean squared residual, each step.

    The loss is the book's ``loss_fn``, the mean of the squared residuals, here over the rows that count:
    ``sum(r**2) / m`` with ``m`` the rows whose residual at the start is not zero or moves with the
    params (:func:`counted_rows`). :func:`jaxcal.calibrate`'s masked readings are neither, so a ragged
    sensor takes the steps it would take on its own readings alone; a reading the start fits exactly
    and that no param moves there is not counted either (it adds nothing to the gradient there).

    Status: ``converged`` when a step changes no param by more than ``atol + rtol * |y|`` (only with
    ``rtol`` given: gradient descent has no natural end, and the book runs its epochs); ``max_steps``
    after ``max_steps`` steps; ``nonfinite`` when the loss or the updated params stop being finite,
    the params then the last finite ones (those whose loss or update was not finite, as
    :func:`jaxcal.training_loop` keeps them; :func:`jaxcal.calibrate` reports NaN params for that
    status). A small step is not always a close answer: for a model linear in its params the params
    lie within ``|step| / (learning_rate * lambda_min)`` of the minimum, ``lambda_min`` the smallest
    eigenvalue of the loss's Hessian, which badly scaled readings make tiny (the book scales ``t_u``).

    >>> from jaxcal import calibrate, data
    >>> fit = calibrate(data.t_un, data.t_c, params=[1.0, 0.0], solver=GradientDescent(1e-2))
    >>> [round(float(p), 3) for p in fit.params], fit.STATUS[int(fit.status)], int(fit.steps)
    ([5.367, -17.301], 'max_steps', 5000)

    Args:
      learning_rate: the step size (traced: a new value reuses the compiled program).
      max_steps: the most steps, the book's ``n_epochs`` (static: a new value compiles a new program).
      rtol: the relative tolerance of the stopping test; ``None``: no test, every step runs.
      atol: the absolute tolerance on each param's step; ``None``: 0.
      gradient: :class:`Autograd` (``jax.grad``) or :class:`FiniteDifference` (the book's central
        differences); which one is static, its ``delta`` traced.
    """

    learning_rate: float
    max_steps: int = 5000
    rtol: float | None = None
    atol: float | None = None
    gradient: Autograd | FiniteDifference = Autograd()

    def __post_init__(self) -> None:
        check_settings(self, positive=("learning_rate",), optional=("rtol", "atol"))

    def init(self, fn: Residuals, y0: Array, args: Any) -> _State:
        return _State(counted_rows(fn, y0, args), jnp.zeros((), bool), jnp.int32(CONVERGED))

    def step(self, fn: Residuals, y: Array, args: Any, state: _State) -> tuple[Array, _State]:
        f, grad = self.gradient.value_and_grad(mean_square(fn, args, state.count), y)
        y_new = y - jnp.asarray(self.learning_rate, y.dtype) * grad
        finite = jnp.isfinite(f) & jnp.all(jnp.isfinite(y_new))
        done = jnp.logical_not(finite) | small_step(y_new - y, y, self.rtol, self.atol)
        status = jnp.where(finite, CONVERGED, NONFINITE).astype(jnp.int32)
        return jnp.where(finite, y_new, y), _State(state.count, done, status)

    def terminate(self, fn: Residuals, y: Array, args: Any, state: _State) -> tuple[Array, Array]:
        return state.done, state.status
