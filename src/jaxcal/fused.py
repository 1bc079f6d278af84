"""A fused fleet kernel (JAX Pallas): every epoch of a block of sensors in one kernel.

Every XLA formulation of a fleet re-reads each sensor's readings from memory at every epoch. Here
each program of the grid loads a block of sensors' readings once and runs all the epochs in a
``fori_loop`` inside the kernel, params and readings in registers: the work becomes arithmetic,
not memory traffic. The gradient is still ``jax.vjp`` of the book's loss, traced inside the
kernel body, not a formula written by hand; each sensor stops at its own diverging epoch and
keeps its last finite params, as :func:`jaxcal.fit_fleet` reports.

Layout: the readings are sent as rows, one ``(sensors,)`` vector per reading, and each row is a
``(block,)`` slice in the kernel, so that every block shape is a power of two (Triton's rule) and
the mean over the readings is a sum written in Python order (no reduction in the kernel); ragged
sensors carry a mask row per reading. On a CPU the kernel runs in Pallas's interpret mode (for
tests: the same kernel, evaluated as JAX operations); on an NVIDIA GPU it is compiled.

This module is opt-in: :func:`jaxcal.fit_fleet` stays the default path on every platform until a
measurement on a GPU says where the kernel is faster (``benchmarks/device_check.sh``).
"""

from __future__ import annotations

import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from . import _checks
from .core import MODELS, Model
from .loop import TrainResult

__all__ = ["BACKENDS", "fit_fleet_fused", "kernel_body"]

#: Pallas's GPU backends a caller may choose (``None``: Pallas's default for the installed JAX).
BACKENDS = (None, "triton", "mosaic_gpu")


def kernel_body(model: Model, n_epochs: int, n_readings: int, masked: bool) -> Any:
    """The kernel: ``(lr, x rows, y rows, [mask rows, count], params) -> (params, loss, epochs,
    running)``, ``running`` 0 where the sensor diverged.

    Every argument is a Pallas ref of one block of sensors (``lr`` a ``(1,)`` ref). Exposed so
    that its jaxpr can be checked: elementwise operations only, the gradient from ``jax.vjp``.
    """

    def kernel(*refs: Any) -> None:
        lr_ref, x_refs, y_refs = refs[0], refs[1:1 + n_readings], refs[1 + n_readings:1 + 2 * n_readings]
        rest = refs[1 + 2 * n_readings:]
        if masked:
            m_refs, count_ref, rest = rest[:n_readings], rest[n_readings], rest[n_readings + 1:]
        n_params = (len(rest) - 3) // 2
        p_refs, out_p_refs = rest[:n_params], rest[n_params:2 * n_params]
        loss_ref, epochs_ref, running_ref = rest[-3:]
        lr = lr_ref[0]
        xs = [ref[...] for ref in x_refs]
        ys = [ref[...] for ref in y_refs]
        ms = [ref[...] for ref in m_refs] if masked else None
        n = count_ref[...] if masked else jnp.asarray(n_readings, xs[0].dtype)

        def loss(*params: Any) -> Any:
            # the book's loss_fn, mean((model(t_u) - t_c) ** 2), over the rows in Python order
            total = None
            for r in range(n_readings):
                error = model(xs[r], *params) - ys[r]
                term = error * error if ms is None else ms[r] * (error * error)
                total = term if total is None else total + term
            return total / n

        def epoch(_: Any, carry: tuple) -> tuple:
            params, epochs, alive = carry
            value, pullback = jax.vjp(loss, *params)
            grads = pullback(jnp.ones_like(value))
            new = tuple(p - lr * g for p, g in zip(params, grads, strict=True))
            finite = jnp.isfinite(value)
            for p in new:
                finite = finite & jnp.isfinite(p)
            accept = (alive > 0) & finite
            params = tuple(jnp.where(accept, q, p) for q, p in zip(new, params, strict=True))
            return params, epochs + alive, accept.astype(jnp.int32)

        start = tuple(ref[...] for ref in p_refs)
        zeros = jnp.zeros(xs[0].shape, jnp.int32)
        params, epochs, running = lax.fori_loop(0, n_epochs, epoch, (start, zeros, zeros + 1))
        for ref, p in zip(out_p_refs, params, strict=True):
            ref[...] = p
        loss_ref[...] = loss(*params)
        epochs_ref[...] = epochs
        running_ref[...] = running

    return kernel


@functools.partial(jax.jit, static_argnames=("model_name", "n_epochs", "block", "interpret", "backend"))
def _fused(learning_rate: Any, x: Any, y: Any, mask: Any, count: Any, params: Any, *, model_name: str, n_epochs: int,
           block: int, interpret: bool, backend: str | None) -> tuple[Any, Any, Any, Any]:
    from jax.experimental import pallas as pl

    n_readings, padded = x.shape
    dtype = x.dtype
    row = pl.BlockSpec((block,), lambda i: (i,))
    masked = mask is not None
    inputs = [learning_rate.reshape(1), *x, *y, *((*mask, count) if masked else ()), *params]
    in_specs = [pl.BlockSpec((1,), lambda i: (0,)), *[row] * (len(inputs) - 1)]
    n_params = len(params)
    out_shape = [*[jax.ShapeDtypeStruct((padded,), dtype)] * (n_params + 1),
                 *[jax.ShapeDtypeStruct((padded,), jnp.int32)] * 2]
    kwargs: dict[str, Any] = {}
    if backend == "triton":
        from jax.experimental.pallas import triton as pl_triton

        kwargs["compiler_params"] = pl_triton.CompilerParams()
    elif backend == "mosaic_gpu":
        from jax.experimental.pallas import mosaic_gpu as pl_mosaic

        kwargs["compiler_params"] = pl_mosaic.CompilerParams()
    call = pl.pallas_call(kernel_body(MODELS[model_name].fn, n_epochs, n_readings, masked), out_shape=out_shape,
                          grid=(padded // block,), in_specs=in_specs, out_specs=[row] * len(out_shape),
                          interpret=interpret, name="jaxcal_fused_fleet", **kwargs)
    *final, loss, epochs, running = call(*inputs)
    return tuple(final), loss, epochs, running


def fit_fleet_fused(
    t_u: Any,
    t_c: Any,
    *,
    n_epochs: int,
    learning_rate: float,
    params: Any = None,
    counts: Any = None,
    model: str = "linear",
    block: int = 128,
    interpret: bool | None = None,
    backend: str | None = None,
) -> TrainResult:
    """Fit every sensor of a fleet with the seed's plain update, all epochs in one Pallas kernel.

    Args:
      t_u, t_c: readings and targets, ``(sensors, readings)`` float arrays.
      n_epochs: epochs for every sensor (static).
      learning_rate: the step size (traced).
      params: initial params, ``(n_params,)`` for every sensor (default: the model's).
      counts: valid readings per sensor (the first ``counts[s]`` of row ``s``), for ragged tables.
      model: ``"linear"`` or ``"quadratic"``.
      block: sensors per program of the grid, a power of two (static).
      interpret: run the kernel in Pallas's interpret mode (default: on a CPU).
      backend: ``"triton"`` or ``"mosaic_gpu"`` on a GPU (default: Pallas's).

    Returns:
      A :class:`~jaxcal.loop.TrainResult` of NumPy arrays, as :func:`jaxcal.fit_fleet` returns.

    Raises:
      ValueError, TypeError: on bad input, one line naming the argument.
    """
    n_epochs = _checks.check_positive_int(n_epochs, "n_epochs", _checks.MAX_EPOCHS)
    if model not in MODELS:
        raise _checks.InvalidInput("model", f"must be one of {', '.join(MODELS)}, got {model!r}")
    if not (isinstance(block, int) and block > 0 and block & (block - 1) == 0):
        raise _checks.InvalidInput("block", f"must be a power of two, got {block!r}")
    if backend not in BACKENDS:
        raise _checks.InvalidInput("backend", f"must be one of {', '.join(map(str, BACKENDS))}, got {backend!r}")
    t_u, t_c = np.asarray(t_u), np.asarray(t_c)
    if t_u.ndim != 2 or t_u.shape != t_c.shape or t_u.dtype.kind != "f" or t_c.dtype.kind != "f":
        raise _checks.InvalidInput("t_u", f"t_u and t_c must be float (sensors, readings) arrays of one shape, got "
                                   f"{t_u.shape} and {t_c.shape}")
    sensors, width = t_u.shape
    dtype = np.result_type(t_u.dtype, t_c.dtype)
    if not (np.isfinite(t_u).all() and np.isfinite(t_c).all()):
        raise _checks.InvalidInput("t_u, t_c", "contain NaN or infinite readings")
    spec = MODELS[model]
    init = _checks.fit_dtype(spec.start(params), dtype, "params")
    if init.shape != (spec.n_params,):
        raise _checks.InvalidInput("params", f"must be {spec.n_params} values, got shape {init.shape}")
    _checks.check_learning_rate(learning_rate, "learning_rate")
    lr = _checks.fit_dtype(learning_rate, dtype, "learning_rate", nonzero=True)
    if interpret is None:
        interpret = jax.default_backend() == "cpu"
    padded = block * math.ceil(sensors / block)

    def rows(values: np.ndarray) -> np.ndarray:  # (readings, padded sensors); padded sensors read zeros
        out = np.zeros((width, padded), dtype)
        out[:, :sensors] = values.T
        return out

    mask = count = None
    if counts is not None:
        counts = np.asarray(counts)
        if counts.shape != (sensors,) or counts.dtype.kind not in "iu" or counts.min() < 2 or counts.max() > width:
            raise _checks.InvalidInput("counts", f"must be {sensors} integers from 2 to {width}")
        mask = rows((np.arange(width)[None, :] < counts[:, None]).astype(dtype))
        count = np.ones(padded, dtype)
        count[:sensors] = counts
    start = tuple(np.full(padded, value, dtype) for value in init)
    final, loss, epochs, running = _fused(lr, rows(t_u), rows(t_c), mask, count, start, model_name=model,
                                          n_epochs=n_epochs, block=block, interpret=bool(interpret), backend=backend)
    final = np.stack([np.asarray(p)[:sensors] for p in final], axis=1)
    epochs = np.asarray(epochs)[:sensors].astype(np.int64)
    diverged = np.asarray(running)[:sensors] == 0
    return TrainResult(final, np.asarray(loss)[:sensors], epochs, diverged, None, spec.param_names)
