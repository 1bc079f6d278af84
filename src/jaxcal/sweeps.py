"""Sweeps: one dataset fitted for many learning rates and initial params, in one compiled program.

A sweep is the single fit (:func:`jaxcal.training.run`) under ``vmap`` over its traced
hyper-parameters: one compile for the whole grid (per device), and each configuration stops at
its own divergence exactly as a single run.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

from . import _checks, _layout, updates
from .core import resolve_model
from .loop import TrainResult
from .training import Plan, as_readings, check_narrowed, run
from .updates import OptimizerLike

__all__ = ["sweep"]

Progress = Callable[[int, int], None]


@functools.cache
def _program(plan: Plan) -> Callable[..., TrainResult]:
    return jax.jit(jax.vmap(lambda lr, p, x, y: run(plan, lr, p, x, y), in_axes=(0, 0, None, None)))


def _floats(values: Any, name: str) -> np.ndarray:
    try:
        return np.asarray(values, np.float64)
    except (TypeError, ValueError, OverflowError):  # strings, objects, ragged lists, huge integers
        raise _checks.InvalidType(name, f"must be numbers, got {_checks.shown(values)}") from None


def sweep(
    t_u: Any,
    t_c: Any,
    *,
    n_epochs: int,
    learning_rate: Any,
    params: Any = None,
    optimizer: OptimizerLike = None,
    model: str = "linear",
    progress: Progress | None = None,
    chunks: int = 1,
    devices: Sequence[Any] | None = None,
    device: str | None = None,
) -> TrainResult:
    """Fit ``(t_u, t_c)`` for every (learning rate, initial params) pair, in one compiled program.

    The configurations are split into equal chunks spread over ``devices``, which run
    concurrently.

    Args:
      t_u, t_c: the readings, ``(n,)``.
      n_epochs: epochs per configuration (static).
      learning_rate: ``(k,)`` learning rates (or one).
      params: ``(j, n_params)`` initial params (or one ``(n_params,)``; default: the model's).
      optimizer, model: as for :func:`jaxcal.training_loop` (a factory or a name: the learning
        rate must be traced).
      progress: called as ``progress(configs_done, configs)`` between chunks.
      chunks: split the configurations into this many equal calls of the same compiled program
        (the last one padded), so that a long sweep can report progress; at least one per device.
      devices: the devices to spread the chunks over (default: all local accelerators, or the
        first CPU device, which already keeps every core busy).
      device: ``"auto"`` (``None``: the CPU device for a sweep too small to fill an accelerator,
        from the crossover measured on one), ``"cpu"`` or ``"gpu"``; ``devices`` overrides it.

    Returns:
      A :class:`~jaxcal.loop.TrainResult` of NumPy arrays over the grid: params
      ``(k, j, n_params)``; loss, epochs run and divergence ``(k, j)``; no history.

    >>> from jaxcal import data
    >>> result = sweep(data.t_un, data.t_c, n_epochs=500, learning_rate=[1e-3, 1e-2, 1e-1])
    >>> result.params.shape, result.diverged[:, 0].tolist()
    ((3, 1, 2), [False, False, True])
    """
    n_epochs = _checks.check_positive_int(n_epochs, "n_epochs", _checks.MAX_EPOCHS)
    spec = resolve_model(model)
    rates = _floats(learning_rate, "learning_rate").reshape(-1)
    if rates.size == 0:
        raise _checks.InvalidInput("learning_rate", "must be positive finite numbers, got none")
    bad = ~(np.isfinite(rates) & (rates > 0))
    if bad.any():
        first = int(np.argmax(bad))
        where = f" at index {first}" if np.ndim(learning_rate) else ""
        raise _checks.InvalidInput("learning_rate",
                                   f"must be positive finite numbers, got {_checks.shown(rates[first])}{where}")
    try:
        optimizer = updates.check(optimizer, True)  # a built transformation only with an injected learning rate
    except _checks.InvalidInput as error:
        if error.name != "learning_rate":
            raise
        raise _checks.InvalidInput("optimizer", "a sweep varies the learning rate: pass a factory (optax.adam) or a "
                                   "transformation built with optax.inject_hyperparams and a number") from None
    starts = _floats([spec.start(None)] if params is None else params, "params")
    if starts.ndim == 1:
        starts = starts[None]
    if starts.ndim != 2 or (spec.param_names and starts.shape[1] != spec.n_params):
        raise _checks.InvalidInput("params", f"must be (n_params,) or (j, n_params), got shape {starts.shape}")
    _checks.check_finite_array(starts, "params")
    t_u, t_c = as_readings(np.asarray(t_u), np.asarray(t_c))
    dtype = jax.dtypes.canonicalize_dtype(np.result_type(t_u.dtype, t_c.dtype))  # what the program computes in
    check_narrowed(t_u, t_c, dtype)
    grid_lr = _checks.fit_dtype(np.repeat(rates, len(starts)), dtype, "learning_rate", nonzero=True)
    grid_init = _checks.fit_dtype(np.tile(starts, (len(rates), 1)), dtype, "params")
    total = len(grid_lr)
    if devices is None:
        # On CPU one device already spreads a sweep's wide kernels over the cores: measured, 4000
        # learning rates x 5000 epochs took 0.32 s on one device (1.7 cores busy), 0.64 s split
        # over two. Accelerators each take their own share.
        target = _layout.chosen_device(device, "sweep", total)
        local = jax.local_devices(backend=None if target is None else target.platform)
        devices = local[:1] if local[0].platform == "cpu" else local
    devices = list(devices)
    size = -(-total // max(1, min(max(chunks, len(devices)), total)))
    plan = Plan(n_epochs, None, spec, "autograd", optimizer, False,
                _layout.for_fit(t_u, elementwise=spec.name is not None))
    program = _program(plan)
    pending: list[tuple[Any, int]] = []
    firsts = range(0, total, size)
    for i, first in enumerate(firsts):
        lrs, inits = grid_lr[first:first + size], grid_init[first:first + size]
        pad = size - len(lrs)  # the last chunk is padded to the same shape: no second compile
        if pad:
            lrs = np.concatenate([lrs, np.repeat(lrs[-1:], pad)])
            inits = np.concatenate([inits, np.repeat(inits[-1:], pad, axis=0)])
        # one asynchronous call per device at a time: a round of chunks runs concurrently
        placed = jax.device_put((lrs, inits, t_u, t_c), devices[i % len(devices)])
        pending.append((program(*placed), size - pad))
        if progress is not None and ((i + 1) % len(devices) == 0 or i == len(firsts) - 1):
            jax.block_until_ready([out for out, _ in pending])
            progress(min(first + size, total), total)
    parts = [jax.tree.map(lambda a, keep=keep: np.asarray(a)[:keep], out) for out, keep in pending]
    joined = jax.tree.map(lambda *a: np.concatenate(a), *parts)
    grid = (len(rates), len(starts))
    return TrainResult(joined.params.reshape(*grid, -1), joined.loss.reshape(grid), joined.epochs_run.reshape(grid),
                       joined.diverged.reshape(grid), None, spec.param_names or tuple(f"p{j}" for j in
                                                                                       range(starts.shape[1])))
