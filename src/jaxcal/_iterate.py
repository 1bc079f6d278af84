"""The one loop every iterative fit runs: ``solver.init``, then ``solver.step`` until ``solver.terminate``.

The loop never asks which solver it runs; a new solver is a new value with these three methods.
It is traced inside the caller's ``jit`` (and batched by its ``vmap``: a fleet's loop runs until
its last sensor stops, each stopped sensor's values held by ``lax.while_loop``'s batching rule).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from .solvers._base import MAX_STEPS, Residuals, Solver

__all__ = ["Solution", "iterate"]


class Solution(NamedTuple):
    """What the loop returns.

    Attributes:
      value: the solver's last params, shape ``(k,)``.
      status: a code of :data:`jaxcal.solvers.STATUS`, an int32 scalar.
      steps: how many steps ran, an int32 scalar.
      state: the solver's last state.
    """

    value: jax.Array
    status: jax.Array
    steps: jax.Array
    state: Any


def iterate(solver: Solver, fn: Residuals, y0: jax.Array, args: Any) -> Solution:
    """Run ``solver`` on the residuals ``fn(y, args)`` from ``y0`` until it stops or runs ``max_steps``.

    Args:
      solver: a solver value (``init``, ``step``, ``terminate`` and a static ``max_steps``).
      fn: the residual function, ``fn(y, args) -> (n,)``.
      y0: the start, shape ``(k,)``.
      args: the data ``fn`` reads, any pytree.

    Returns:
      A :class:`Solution`; a fit still running after ``max_steps`` has status ``max_steps``.
    """
    state = solver.init(fn, y0, args)
    done, status = solver.terminate(fn, y0, args, state)

    def unfinished(carry: tuple) -> jax.Array:
        _, _, steps, done, _ = carry
        return jnp.logical_not(done) & (steps < solver.max_steps)

    def one_step(carry: tuple) -> tuple:
        y, state, steps, _, _ = carry
        y, state = solver.step(fn, y, args, state)
        done, status = solver.terminate(fn, y, args, state)
        return y, state, steps + 1, done, status

    carry = (y0, state, jnp.zeros((), jnp.int32), done, status)
    y, state, steps, done, status = lax.while_loop(unfinished, one_step, carry)
    status = jnp.where(done, status, jnp.int32(MAX_STEPS))
    return Solution(y, status, steps, state)
