"""Any optax optimiser as a solver value, on the book's loss (the mean squared residual)."""

from __future__ import annotations

import dataclasses
import functools
from typing import TYPE_CHECKING, Any, NamedTuple

import jax
import jax.numpy as jnp

from ._base import CONVERGED, NONFINITE, Residuals, check_settings
from .gradient_descent import counted_rows, mean_square, small_step

if TYPE_CHECKING:
    import optax

__all__ = ["Optax"]

Array = jax.Array


class _State(NamedTuple):
    count: jax.Array  # the rows the loss averages over (see GradientDescent)
    opt_state: Any
    done: jax.Array
    status: jax.Array


@functools.partial(jax.tree_util.register_dataclass, data_fields=["rtol", "atol"],
                   meta_fields=["optimizer", "max_steps"])
@dataclasses.dataclass(frozen=True)
class Optax:
    """Any ``optax.GradientTransformation`` run on the book's loss, the mean squared residual.

    Each step takes the loss and its gradient (``jax.value_and_grad``) and applies the optimiser's
    update. The loss, the status and the stopping test are :class:`GradientDescent`'s: the rows that
    count as there; ``converged`` when a step changes no param by more than ``atol + rtol * |y|`` (only
    with ``rtol`` given); ``max_steps``; ``nonfinite`` with the last finite params (the optimiser's state
    kept with them).

    An ``optax.GradientTransformationExtraArgs`` (``optax.lbfgs()``, a chain with
    ``optax.contrib.reduce_on_plateau``) gets optax's extra arguments each step, as
    :mod:`jaxcal.updates` passes them: the loss at the params (``value``), its gradient (``grad``) and
    the loss as a function of the params (``value_fn``, for a line search).

    >>> import optax
    >>> from jaxcal import calibrate, data
    >>> fit = calibrate(data.t_un, data.t_c, params=[1.0, 0.0], solver=Optax(optax.lbfgs(), rtol=1e-4))
    >>> [round(float(p), 3) for p in fit.params], fit.STATUS[int(fit.status)]
    ([5.368, -17.305], 'converged')

    Args:
      optimizer: a built transformation such as ``optax.adam(0.1)`` (static, compared by identity, as
        its functions are: another transformation, even one built alike, compiles a new program; its
        learning rate is its own).
      max_steps: the most steps (static).
      rtol: the relative tolerance of the stopping test; ``None``: no test, every step runs.
      atol: the absolute tolerance on each param's step; ``None``: 0.
    """

    optimizer: optax.GradientTransformation
    max_steps: int = 5000
    rtol: float | None = None
    atol: float | None = None

    def __post_init__(self) -> None:
        check_settings(self, optional=("rtol", "atol"))

    def init(self, fn: Residuals, y0: Array, args: Any) -> _State:
        return _State(counted_rows(fn, y0, args), self.optimizer.init(y0), jnp.zeros((), bool), jnp.int32(CONVERGED))

    def step(self, fn: Residuals, y: Array, args: Any, state: _State) -> tuple[Array, _State]:
        from ..updates import from_optax  # optax is imported where a fit runs it

        loss = mean_square(fn, args, state.count)
        f, grad = jax.value_and_grad(loss)(y)
        # the extra arguments go only to an update that takes them (GradientTransformationExtraArgs)
        y_new, opt_state = from_optax(self.optimizer).step(grad, state.opt_state, y, value=f, grad=grad,
                                                           value_fn=loss)
        finite = jnp.isfinite(f) & jnp.all(jnp.isfinite(y_new))
        done = jnp.logical_not(finite) | small_step(y_new - y, y, self.rtol, self.atol)
        status = jnp.where(finite, CONVERGED, NONFINITE).astype(jnp.int32)
        y = jnp.where(finite, y_new, y)
        opt_state = jax.tree.map(lambda new, old: jnp.where(finite, new, old), opt_state, state.opt_state)
        return y, _State(state.count, opt_state, done, status)

    def terminate(self, fn: Residuals, y: Array, args: Any, state: _State) -> tuple[Array, Array]:
        return state.done, state.status
