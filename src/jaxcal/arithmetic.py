"""The arithmetic a training run computes in, as a value: XLA's own (``NATIVE``), or the book's float32
recording reproduced digit for digit (``EXACT``, :mod:`jaxcal.exact`).

:func:`jaxcal.training_loop` asks its arithmetic for everything that differs between the two (which
combinations it refuses, the pieces an epoch runs, where the run is placed and how it is called)
and never asks which one it holds. ``exact=True`` selects ``EXACT``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from . import _checks, _layout, evaluate, updates
from . import exact as exact_ops

__all__ = ["EXACT", "NATIVE", "Exact", "Native"]

Array = jax.Array


class Native:
    """XLA's arithmetic: the pieces by name (:func:`jaxcal.evaluate.by_name`,
    :func:`jaxcal.updates.resolve`), any device, any layout."""

    #: whether the blocked layouts of large fits may be used (they sum in another order)
    blocked_layouts = True

    def __repr__(self) -> str:
        return "NATIVE"

    def check(self, gradient: str, optimizer: Any, model: Any, dtype: Any) -> None:
        """Refuse what this arithmetic cannot run (nothing: any model, optimizer and dtype)."""

    def check_device(self, target: Any) -> None:
        """Refuse a device this arithmetic cannot run on (none)."""

    def zero(self) -> Any:
        """The runtime ``int32`` 0 the program takes, or ``None`` (see :mod:`jaxcal.exact`)."""
        return None

    def pieces(self, plan: Any, learning_rate: Array, delta: Array,
               zero: Array) -> tuple[evaluate.Evaluation, updates.Update]:
        return (evaluate.by_name(plan.gradient, plan.model.fn, layout=plan.layout, delta=delta),
                updates.resolve(plan.optimizer, learning_rate))

    def scalars(self, optimizer: Any) -> bool:
        """Whether the params may be carried as scalars: the seed's plain rule takes them so (fewer
        kernels per epoch); an optax transformation gets the vector it was written for."""
        return optimizer is None

    def place(self, args: Any, target: Any, t_u: Any) -> Any:
        return args if target is None else jax.device_put(args, target)

    def call(self, compiled: Callable[..., Any], plan: Any, args: tuple[Any, ...]) -> Any:
        return compiled(plan, *args)


class Exact(Native):
    """The recording's float32 arithmetic (:mod:`jaxcal.exact`): the plain and SGD updates, models with
    their exact form, float32 readings, on the CPU device."""

    blocked_layouts = False

    def __repr__(self) -> str:
        return "EXACT"

    def check(self, gradient: str, optimizer: Any, model: Any, dtype: Any) -> None:
        if optimizer not in (None, "sgd"):
            raise _checks.InvalidInput(
                "exact", "exact mode reproduces the plain and SGD updates; Adam's recording is not bit-reproducible")
        model.form("exact", "exact mode")  # a model without its exact float32 form is refused here
        if dtype != np.float32:
            raise _checks.InvalidInput("exact", f"exact mode reproduces float32 recordings; got {dtype} readings")

    def check_device(self, target: Any) -> None:
        if target is not None and target.platform != "cpu":
            raise _checks.InvalidInput("device", "exact mode runs on the CPU device (its roundings are the CPU's)")

    def zero(self) -> Any:
        return np.int32(0)

    def pieces(self, plan: Any, learning_rate: Array, delta: Array,
               zero: Array) -> tuple[evaluate.Evaluation, updates.Update]:
        # the same pieces in the recording's arithmetic, around ``zero`` (a runtime 0 XLA cannot fold)
        ops = exact_ops.make_ops(zero)
        return (exact_ops.evaluation(ops, plan.gradient, plan.model, delta),
                exact_ops.update(ops, plan.optimizer, learning_rate))

    def scalars(self, optimizer: Any) -> bool:
        return optimizer in (None, "sgd")

    def place(self, args: Any, target: Any, t_u: Any) -> Any:
        if target is None and not _layout.on_cpu(t_u):
            # The counter-measures of exact mode are written against XLA's CPU code generation: the
            # run is placed on the CPU whatever the default device (a GPU rounds differently).
            return jax.device_put(args, jax.devices("cpu")[0])
        return super().place(args, target, t_u)

    def call(self, compiled: Callable[..., Any], plan: Any, args: tuple[Any, ...]) -> Any:
        if not exact_ops.rounding_holds():
            # This XLA rewrites some of exact mode's roundings (see jaxcal.exact.rounding_holds):
            # one operation at a time, nothing can be fused or reordered. Slower, still exact.
            with jax.disable_jit():
                return compiled(plan, *args)
        return compiled(plan, *args)


NATIVE, EXACT = Native(), Exact()
