"""Many fits at once: fleets of sensors and sweeps of hyper-parameters, each one compiled program.

:func:`fit_fleet` fits every sensor of a ``(sensors, readings)`` table near the hardware's limit.
What makes it fast, measured on a 2-core CPU (see ``benchmarks/bench_fleet.py``):

* sensors on the minor (vector) axis: a CPU tile is laid out ``(groups, readings, 8)``, eight
  sensors per SIMD vector with each group's readings contiguous; the loss is the book's
  ``loss_fn`` averaged over the readings axis (one loss per sensor), and every operation is
  elementwise across sensors, so each SIMD lane is one sensor;
* the gradient's sums over the readings (one per parameter) run as one reduction
  (:func:`jaxcal.onepass.one_pass`): one pass over the tile's readings per epoch instead of one
  per parameter, which halved the time per epoch;
* params as a pytree of per-parameter arrays (``w`` and ``b`` of every sensor), not a stacked
  ``(sensors, 2)`` matrix, which would interleave the lanes;
* on CPU, tiles of ~1000 sensors whose readings stay in cache for all epochs (``lax.map`` over
  tiles, ``lax.fori_loop`` over epochs inside); on an accelerator, one tile per device;
* every local device busy: the tiles are split across ``jax.local_devices()`` (on CPU the CLI
  starts one device per core) and each device runs its share concurrently.

The gradient is still ``jax.grad`` of the loss, not a hand-derived formula.

:func:`sweep` fits one dataset for many learning rates and initial params: ``vmap`` of
:func:`jaxcal.training_loop` over the traced hyper-parameters, compiled once for the whole sweep.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

from . import _checks
from .core import MODELS, Model, loss_and_grad, loss_fn
from .onepass import one_pass
from .training import OptimizerLike, _check_optimizer, _resolve_model, training_loop

__all__ = ["FleetResult", "SweepResult", "fit_fleet", "least_squares", "sweep"]

Array = jax.Array
Progress = Callable[[int, int], None]


class FleetResult(NamedTuple):
    """Per-sensor results of :func:`fit_fleet`, as NumPy arrays on the host.

    Attributes:
      params: one array per model parameter (``(w, b)`` for the linear model), each ``(sensors,)``.
        After a divergence, the sensor's last finite params.
      loss: the loss at the final params, ``(sensors,)``.
      epochs_run: epochs run per sensor (the diverging epoch included), ``(sensors,)``.
      diverged: whether the sensor's loss or params stopped being finite, ``(sensors,)``.
      param_names: the names of ``params``, e.g. ``("w", "b")``.
    """

    params: tuple[np.ndarray, ...]
    loss: np.ndarray
    epochs_run: np.ndarray
    diverged: np.ndarray
    param_names: tuple[str, ...]


def _per_sensor_loss(model: Model, params: tuple[Array, ...], x: Array, y: Array, m: Array | None,
                     count: Array | None) -> Array:
    # The book's loss_fn, mean((model(t_u) - t_c) ** 2), for every sensor of a tile at once,
    # averaged over the readings (axis 1 of a tile: (groups, readings, lanes) on a CPU, (sensors,
    # readings) on an accelerator). Masked readings add exactly zero.
    t_p = model(x, *(jnp.expand_dims(p, 1) for p in params))
    if m is None:
        return loss_fn(t_p, y, axis=1)
    return (m * (t_p - y) ** 2).sum(axis=1) / count


def _make_update(optimizer: OptimizerLike, learning_rate: Array) -> tuple[Callable, Callable]:
    if optimizer is None:
        return (lambda params: (), lambda grads, state, params: (
            tuple(p - learning_rate * g for p, g in zip(params, grads, strict=True)), state))
    factory = {"sgd": optax.sgd, "adam": optax.adam}[optimizer] if isinstance(optimizer, str) else optimizer
    tx = factory(learning_rate)

    def update(grads: Any, state: Any, params: Any) -> tuple[Any, Any]:
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    return tx.init, update


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def _fleet_chunk(
    n_epochs: int, optimizer: OptimizerLike, model: Model, learning_rate: Array, data: tuple[Any, ...],
    state: tuple[Any, Any],
) -> tuple[Any, Any]:
    """Run ``n_epochs`` on every tile of one device's share; ``state`` is (params, opt_state).

    ``data`` is ``(x, y, m, count)`` per tile; ``m`` and ``count`` are ``None`` for a full table.
    """
    _, update = _make_update(optimizer, learning_rate.astype(data[0].dtype))
    loss_and_grad = _loss_and_grad(model)

    def grad(*args: Any) -> Any:
        return loss_and_grad(*args)[1]  # the loss's own sum is then dead code, never computed

    def fit_tile(tile: tuple[Any, ...]) -> tuple[Any, Any]:
        x, y, m, count, params, opt_state = tile

        def epoch(_: Any, carry: tuple[Any, Any]) -> tuple[Any, Any]:
            params, opt_state = carry
            return update(grad(params, x, y, m, count), opt_state, params)

        return lax.fori_loop(0, n_epochs, epoch, (params, opt_state))

    return lax.map(fit_tile, (*data, *state))


@functools.partial(jax.jit, static_argnums=(0,))
def _fleet_init(optimizer: OptimizerLike, learning_rate: Array, params: tuple[Array, ...]) -> Any:
    init, _ = _make_update(optimizer, learning_rate.astype(params[0].dtype))
    return lax.map(init, params)


@functools.partial(jax.jit, static_argnums=(0,))
def _fleet_loss(model: Model, data: tuple[Any, ...], params: tuple[Array, ...]) -> tuple[Array, Any]:
    # Each sensor's loss from the same one-pass reduction as its gradient, so that it is summed
    # in the same order whatever the tile width (a lone reduce_sum's order depends on it).
    return lax.map(lambda t: _loss_and_grad(model)(t[1], *t[0]), (data, params))


def _loss_and_grad(model: Model) -> Callable[..., tuple[Array, Any]]:
    """``(per-sensor loss, grads) = f(params, x, y, m, count)``: ``jax.value_and_grad`` of the
    fleet's summed loss, with every sum over the readings in one pass (:mod:`jaxcal.onepass`)."""

    def total(params: tuple[Array, ...], x: Array, y: Array, m: Array | None, count: Array | None) -> Any:
        per_sensor = _per_sensor_loss(model, params, x, y, m, count)
        return per_sensor.sum(), per_sensor

    value_and_grad = one_pass(jax.value_and_grad(total, has_aux=True))

    def loss_and_grad(*args: Any) -> tuple[Array, Any]:
        (_, per_sensor), grads = value_and_grad(*args)
        return per_sensor, grads

    return loss_and_grad


#: Sensors per SIMD group of a CPU tile: one AVX2 vector of float32. Measured per core, tiles of
#: 1000 sensors: 8 lanes 1.6 us per epoch, 16 lanes 2.4 us, 32 lanes 2.5 us.
LANES = 8


@functools.partial(jax.jit, static_argnums=(1, 2, 3))
def _lay_out(values: Array, share: int, tile: int, lanes: int | None) -> Array:
    """One device's ``(sensors, ...)`` share -> ``(n_tiles, tile, ...)`` or, with ``lanes``,
    ``(n_tiles, tile // lanes, ..., lanes)``, zero-padded to ``share`` sensors: sensor ``s`` at
    tile ``s // tile``, then group, then lane. Runs on the device that holds ``values``."""
    rest = values.shape[1:]
    padded = jnp.pad(values, [(0, share - values.shape[0])] + [(0, 0)] * len(rest))
    tiles = padded.reshape(-1, tile, *rest)
    if lanes:
        tiles = jnp.moveaxis(tiles.reshape(tiles.shape[0], tile // lanes, lanes, *rest), 2, -1)
    return tiles


def _unlayout(parts: Sequence[Any], sensors: int) -> np.ndarray:
    joined = np.concatenate([np.asarray(p).reshape(-1) for p in parts])
    return joined[:sensors]


def fit_fleet(
    t_u: Any,
    t_c: Any,
    *,
    n_epochs: int,
    learning_rate: float,
    params: Any = None,
    counts: Any = None,
    mask: Any = None,
    optimizer: OptimizerLike = None,
    model: str = "linear",
    tile: int | None = None,
    devices: Sequence[Any] | None = None,
    progress: Progress | None = None,
    chunks: int = 1,
) -> FleetResult:
    """Fit every sensor of a fleet by gradient descent, each exactly as ``training_loop`` would.

    Args:
      t_u, t_c: readings and targets, ``(sensors, readings)`` float arrays; for ragged data pad
        the rows and pass ``counts`` or ``mask``.
      n_epochs: epochs for every sensor (static).
      learning_rate: the step size (traced).
      params: initial params: one value per model parameter for all sensors (default: the
        book's ``(1, 0)``; ``(0, 1, 0)`` for the quadratic model), or ``(sensors, n_params)``.
      counts: valid readings per sensor, ``(sensors,)``: the first ``counts[s]`` of row ``s``.
      mask: or a boolean ``(sensors, readings)`` mask of the valid readings.
      optimizer: ``None`` (plain gradient descent), ``"sgd"``, ``"adam"`` or an optax factory.
      model: ``"linear"`` or ``"quadratic"``.
      tile: sensors per tile (static). Default: 1000 on CPU, whose data stays in a core's cache
        for all epochs; on an accelerator, all of a device's sensors in one tile.
      devices: the devices to split the tiles over (default: all local devices).
      progress: called as ``progress(epochs_done, n_epochs)`` between chunks.
      chunks: run the epochs in this many compiled chunks (for progress updates).

    Returns:
      A :class:`FleetResult` with NumPy arrays.

    Raises:
      ValueError, TypeError: on bad input, one line naming the argument.
    """
    n_epochs = _checks.check_positive_int(n_epochs, "n_epochs", _checks.MAX_EPOCHS)
    _checks.check_learning_rate(learning_rate, "learning_rate")
    optimizer = _check_optimizer(optimizer)
    model_fn, model_name, n_params = _resolve_model(model)
    if model_name is None or n_params is None:
        raise _checks.InvalidInput("model: fleets take a model by name (linear or quadratic)")
    t_u = np.asarray(t_u)
    t_c = np.asarray(t_c)
    for name, values in (("t_u", t_u), ("t_c", t_c)):
        if not np.issubdtype(values.dtype, np.floating):
            raise _checks.InvalidType(f"{name}: must be a floating-point array, got {values.dtype}")
        if values.ndim != 2:
            raise _checks.InvalidInput(f"{name}: must be (sensors, readings), got shape {values.shape}")
    if t_u.shape != t_c.shape:
        raise _checks.InvalidInput(f"t_u and t_c: must have the same shape, got {t_u.shape} and {t_c.shape}")
    sensors, width = t_u.shape
    dtype = jax.dtypes.canonicalize_dtype(np.result_type(t_u, t_c))
    if mask is None and counts is not None:
        counts = np.asarray(counts)
        if counts.shape != (sensors,) or not np.issubdtype(counts.dtype, np.integer):
            raise _checks.InvalidInput(f"counts: must be {sensors} integers, got shape {counts.shape}")
        mask = np.arange(width)[None, :] < counts[:, None]
    elif mask is not None:
        mask = np.asarray(mask, bool)
        if mask.shape != t_u.shape:
            raise _checks.InvalidInput(f"mask: must have the shape of t_u {t_u.shape}, got {mask.shape}")
    ragged = mask is not None and not np.all(mask)
    counts = mask.sum(axis=1) if ragged else np.full(sensors, width)
    if sensors == 0 or counts.min() < 2:
        worst = int(np.argmin(counts)) if sensors else 0
        raise _checks.InvalidInput(
            f"t_u: sensor {worst} has {int(counts[worst]) if sensors else 0} readings; each needs at least 2")
    finite = ((np.isfinite(t_u[mask]).all() and np.isfinite(t_c[mask]).all()) if ragged
              else (np.isfinite(t_u).all() and np.isfinite(t_c).all()))
    if not finite:
        raise _checks.InvalidInput("t_u, t_c: contain NaN or infinite readings")
    init = _checks.fit_dtype(([1.0, 0.0] if n_params == 2 else [0.0, 1.0, 0.0]) if params is None else params, dtype,
                             "params")
    if init.shape == (n_params,):
        init = np.broadcast_to(init, (sensors, n_params))
    if init.shape != (sensors, n_params) or not np.all(np.isfinite(init)):
        raise _checks.InvalidInput(f"params: must be {n_params} finite values or ({sensors}, {n_params})")

    devices = list(jax.local_devices() if devices is None else devices)
    per_device = math.ceil(sensors / len(devices))
    # A CPU tile puts sensors on the SIMD lanes, (groups, readings, LANES); an accelerator's is
    # (sensors, readings), whose compiler reduces each sensor's contiguous readings best
    # (measured on an H200).
    cpu = devices[0].platform == "cpu"
    lanes = LANES if cpu else None
    if tile is None:
        # A CPU core wants tiles that stay in its cache; an accelerator wants every sensor of its
        # share in one tile, so that an epoch is a few wide kernels rather than a loop of small ones.
        tile = 1000 if cpu else 128 * math.ceil(per_device / 128)
    tile = _checks.check_positive_int(tile, "tile")
    tile = 8 * math.ceil(min(tile, per_device) / 8)  # whole SIMD groups, at most a device's share
    share = tile * math.ceil(per_device / tile)  # sensors per device, padded: every device the same tiles
    if ragged:
        columns = {"x": np.where(mask, t_u, 0).astype(dtype), "y": np.where(mask, t_c, 0).astype(dtype),
                   "m": mask.astype(dtype), "count": counts.astype(dtype)}
    else:  # every sensor has every reading: no mask to build, carry or multiply by
        columns = {"x": t_u.astype(dtype, copy=False), "y": t_c.astype(dtype, copy=False)}
    columns.update({f"p{j}": np.ascontiguousarray(init[:, j]) for j in range(n_params)})
    lr = _checks.fit_dtype(learning_rate, dtype, "learning_rate", nonzero=True)
    shares = []
    for d, device in enumerate(devices):
        # each device's contiguous share goes over as it is and is laid out in tiles there
        mine = slice(min(d * share, sensors), min((d + 1) * share, sensors))
        laid = {key: _lay_out(value, share, tile, lanes)
                for key, value in jax.device_put({key: value[mine] for key, value in columns.items()}, device).items()}
        data = tuple(laid.get(key) for key in ("x", "y", "m", "count"))
        if ragged:
            # padded sensors get count 1 (not 0) so their loss stays finite; they are dropped at the end
            data = (*data[:3], jnp.maximum(data[3], 1))
        start = tuple(laid[f"p{j}"] for j in range(n_params))
        shares.append((data, (start, _fleet_init(optimizer, lr, start))))
    # Equal chunks (the last one takes the remainder), so at most two compiled programs.
    base = n_epochs // max(1, chunks)
    chunk_sizes = [base] * (max(1, chunks) - 1) + [n_epochs - base * (max(1, chunks) - 1)]
    done = 0
    for size in (s for s in chunk_sizes if s):
        # one asynchronous call per device: they run concurrently, each on its own share
        shares = [(data, _fleet_chunk(size, optimizer, model_fn, lr, data, state)) for data, state in shares]
        done += size
        if progress is not None:
            jax.block_until_ready([state for _, state in shares])
            progress(done, n_epochs)
    losses = [_fleet_loss(model_fn, data, state[0])[0] for data, state in shares]
    final = tuple(_unlayout([state[0][j] for _, state in shares], sensors) for j in range(n_params))
    loss = _unlayout(losses, sensors)
    epochs_run = np.full(sensors, n_epochs, np.int64)
    diverged = np.zeros(sensors, bool)
    suspects = np.nonzero(~(np.isfinite(loss) & np.all([np.isfinite(p) for p in final], axis=0)))[0]
    if len(suspects):
        final = tuple(p.copy() for p in final)
        _refit_diverged(suspects, t_u, t_c, np.ones(t_u.shape, bool) if mask is None else mask, init, n_epochs, lr,
                        optimizer, model_name, final, loss, epochs_run, diverged)
    return FleetResult(final, loss, epochs_run, diverged, MODELS[model_name].param_names)


def _refit_diverged(
    suspects: np.ndarray, t_u: np.ndarray, t_c: np.ndarray, mask: np.ndarray, init: np.ndarray, n_epochs: int,
    lr: np.ndarray, optimizer: OptimizerLike, model: str, final: tuple[np.ndarray, ...], loss: np.ndarray,
    epochs_run: np.ndarray, diverged: np.ndarray,
) -> None:
    """Run the sensors whose fast fit ended non-finite through ``training_loop``, which stops at
    the diverging epoch and keeps the last finite params (few sensors, grouped by reading count)."""
    counts = mask.sum(axis=1)
    for count in np.unique(counts[suspects]):
        group = suspects[counts[suspects] == count]
        x = np.stack([t_u[s][mask[s]] for s in group]).astype(init.dtype)
        y = np.stack([t_c[s][mask[s]] for s in group]).astype(init.dtype)

        def one(p: Array, x: Array, y: Array) -> tuple[Array, Array, Array, Array]:
            result = training_loop(n_epochs, lr, p, x, y, optimizer=optimizer, model=model, log_every=n_epochs)
            return result.params, result.epochs_run, result.diverged, loss_and_grad(
                result.params, x, y, MODELS[model].fn)[0]

        params, runs, flags, losses = jax.vmap(one)(init[group], x, y)
        for j in range(len(final)):
            final[j][group] = np.asarray(params)[:, j]
        epochs_run[group] = np.asarray(runs)
        diverged[group] = np.asarray(flags)
        loss[group] = np.asarray(losses)


class SweepResult(NamedTuple):
    """Per-configuration results of :func:`sweep` (NumPy arrays, one row per configuration)."""

    learning_rate: np.ndarray
    init: np.ndarray
    params: np.ndarray
    loss: np.ndarray
    epochs_run: np.ndarray
    diverged: np.ndarray


def sweep(
    t_u: Any,
    t_c: Any,
    *,
    n_epochs: int,
    learning_rates: Any,
    inits: Any = None,
    optimizer: OptimizerLike = None,
    model: str = "linear",
    progress: Progress | None = None,
    chunks: int = 1,
    devices: Sequence[Any] | None = None,
) -> SweepResult:
    """Fit one dataset for every (learning rate, initial params) pair, in one compiled program.

    ``vmap`` of :func:`jaxcal.training_loop` over the traced hyper-parameters: one compile for
    the whole grid (per device), and each configuration stops at its own divergence exactly as a
    single run. The configurations are split into equal chunks spread over ``devices``, which
    run concurrently.

    Args:
      t_u, t_c: the readings, ``(n,)``.
      n_epochs: epochs per configuration (static).
      learning_rates: ``(k,)`` learning rates.
      inits: ``(j, n_params)`` initial params (default: the book's one start).
      optimizer, model: as for :func:`jaxcal.training_loop`.
      progress: called as ``progress(configs_done, configs)`` between chunks.
      chunks: split the configurations into this many equal calls of the same compiled program
        (the last one padded), so that a long sweep can report progress; at least one per device.
      devices: the devices to spread the chunks over (default: all local accelerators, or the
        first CPU device, which already keeps every core busy).

    Returns:
      A :class:`SweepResult` with ``k * j`` rows (learning rates outer, inits inner).
    """
    rates = np.asarray(learning_rates, np.float64).reshape(-1)
    if rates.size == 0 or not np.all(np.isfinite(rates) & (rates > 0)):
        raise _checks.InvalidInput("learning_rates: must be positive finite numbers")
    _, _model_name, n_params = _resolve_model(model)
    default = [1.0, 0.0] if n_params == 2 else [0.0, 1.0, 0.0]
    starts = np.asarray([default] if inits is None else inits, np.float64).reshape(-1, n_params or 2)
    t_u = np.asarray(t_u)
    t_c = np.asarray(t_c)
    _checks.check_readings(t_u, t_c)
    dtype = np.result_type(t_u, t_c)
    grid_lr = _checks.fit_dtype(np.repeat(rates, len(starts)), dtype, "learning_rates", nonzero=True)
    grid_init = _checks.fit_dtype(np.tile(starts, (len(rates), 1)), dtype, "inits")
    total = len(grid_lr)
    if devices is None:
        # On CPU one device already spreads a sweep's wide kernels over the cores: measured, 4000
        # learning rates x 5000 epochs took 0.32 s on one device (1.7 cores busy), 0.64 s split
        # over two. Accelerators each take their own share.
        local = jax.local_devices()
        devices = local[:1] if local[0].platform == "cpu" else local
    devices = list(devices)
    size = -(-total // max(1, min(max(chunks, len(devices)), total)))
    run = _sweep_program(n_epochs, optimizer, model, t_u, t_c)
    pending: list[tuple[Any, int]] = []
    starts = range(0, total, size)
    for i, start in enumerate(starts):
        lrs, inits = grid_lr[start:start + size], grid_init[start:start + size]
        pad = size - len(lrs)  # the last chunk is padded to the same shape: no second compile
        if pad:
            lrs = np.concatenate([lrs, np.repeat(lrs[-1:], pad)])
            inits = np.concatenate([inits, np.repeat(inits[-1:], pad, axis=0)])
        # one asynchronous call per device at a time: a round of chunks runs concurrently
        pending.append((run(*jax.device_put((lrs, inits), devices[i % len(devices)])), size - pad))
        if progress is not None and ((i + 1) % len(devices) == 0 or i == len(starts) - 1):
            jax.block_until_ready([out for out, _ in pending])
            progress(min(start + size, total), total)
    outputs = [[np.asarray(a)[:keep] for a in out] for out, keep in pending]
    params, loss, runs, flags = (np.concatenate(parts) for parts in zip(*outputs, strict=True))
    return SweepResult(grid_lr, grid_init, params, loss, runs, flags)


def _sweep_program(n_epochs: int, optimizer: OptimizerLike, model: str, t_u: np.ndarray,
                   t_c: np.ndarray) -> Callable[[np.ndarray, np.ndarray], Any]:
    model_fn = MODELS[model].fn

    def one(lr: Array, p0: Array) -> tuple[Array, Array, Array, Array]:
        result = training_loop(n_epochs, lr, p0, t_u, t_c, optimizer=optimizer, model=model, log_every=n_epochs)
        return result.params, loss_and_grad(result.params, t_u, t_c, model_fn)[0], result.epochs_run, result.diverged

    return jax.jit(jax.vmap(one))


def least_squares(t_u: Any, t_c: Any, counts: Any = None, model: str = "linear") -> np.ndarray:
    """The closed-form least-squares params per sensor (float64), the point gradient descent
    converges to: a check of how far a fit got. Returns ``(sensors, n_params)``."""
    t_u = np.asarray(t_u, np.float64)
    t_c = np.asarray(t_c, np.float64)
    counts = np.full(t_u.shape[0], t_u.shape[1]) if counts is None else np.asarray(counts)
    mask = (np.arange(t_u.shape[1])[None, :] < counts[:, None]).astype(np.float64)
    degree = MODELS[model].n_params - 1
    phi = np.stack([t_u**k for k in range(degree, -1, -1)], axis=-1) * mask[..., None]  # (s, n, m)
    normal = np.einsum("snj,snk->sjk", phi, phi)
    rhs = np.einsum("snj,sn->sj", phi, t_c * mask)
    with np.errstate(all="ignore"):
        solved = np.full(rhs.shape, np.nan)
        ok = np.abs(np.linalg.det(normal)) > 0
        solved[ok] = np.linalg.solve(normal[ok], rhs[ok][..., None])[..., 0]
    return solved
