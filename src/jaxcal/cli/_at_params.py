"""The uncertainty of params found elsewhere (gradient descent's): :func:`jaxcal.calibrate` with a solver
value that takes no step, so that the fit is evaluated where it starts.

Gradient descent has no stopping test: the params it ends with are reported with status ``max_steps``
(a diverged fit's, non-finite, as ``nonfinite`` by ``calibrate`` itself), their covariance, standard
errors, residual SD and R² computed by ``calibrate``'s own formulas at those params.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp

from ..solvers import STATUS

__all__ = ["AtParams"]


@functools.partial(jax.tree_util.register_dataclass, data_fields=[], meta_fields=["max_steps"])
@dataclasses.dataclass(frozen=True)
class AtParams:
    """A solver that stops before its first step: the fit is its start, status ``max_steps``.

    >>> import numpy as np
    >>> from jaxcal import calibrate
    >>> fit = calibrate(np.array([0.0, 1.0, 2.0]), np.array([1.0, 3.0, 5.5]), params=[2.0, 1.0], solver=AtParams())
    >>> fit.params.tolist(), float(fit.rss), fit.STATUS[int(fit.status)]
    ([2.0, 1.0], 0.25, 'max_steps')
    """

    max_steps: int = 1  # the loop's bound; terminate stops it before the first step

    def init(self, fn: Any, y0: jax.Array, args: Any) -> None:
        return None

    def step(self, fn: Any, y: jax.Array, args: Any, state: None) -> tuple[jax.Array, None]:
        return y, state

    def terminate(self, fn: Any, y: jax.Array, args: Any, state: None) -> tuple[jax.Array, jax.Array]:
        return jnp.ones((), bool), jnp.int32(STATUS.index("max_steps"))
