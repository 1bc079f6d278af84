"""The JAX counterpart of autograd's graph (``grad_fn``): the jaxprs of the loss and its gradient.

torch records a graph on the tensors while the forward pass runs and walks it backwards in
``loss.backward()``. JAX records nothing on arrays: ``jax.make_jaxpr`` traces a pure function
into a small typed program (a jaxpr), and ``jax.grad`` is a transformation that turns the loss's
program into the gradient's program before anything runs.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from . import data
from .core import MODELS, objective

__all__ = ["loss_jaxprs"]


def loss_jaxprs(model: str = "linear") -> tuple[str, str]:
    """The jaxprs of ``objective`` and of ``jax.grad(objective)`` on the book's readings.

    Returns:
      ``(loss_jaxpr, grad_jaxpr)`` as text.
    """
    spec = MODELS[model]
    params = jnp.zeros((spec.n_params,), jnp.float32)

    def loss(params: jax.Array, t_u: jax.Array, t_c: jax.Array) -> jax.Array:
        return objective(params, t_u, t_c, model=spec.fn)

    t_un = jnp.asarray(data.t_un)
    t_c = jnp.asarray(data.t_c)
    return str(jax.make_jaxpr(loss)(params, t_un, t_c)), str(jax.make_jaxpr(jax.grad(loss))(params, t_un, t_c))
