"""Fleets: every sensor of a ``(sensors, readings)`` table fitted at once, near the hardware's limit.

A fleet is the single fit's pieces (:mod:`jaxcal.evaluate`'s ``jax.grad`` of the book's loss,
:mod:`jaxcal.updates`' rule) over another layout of the readings (:mod:`jaxcal._layout`):

* a small full table (up to ``SMALL_FLEET`` sensors) runs as ``vmap`` of the single fit over the
  sensors, one program on one device;
* a larger one in tiles that put sensors on the minor (SIMD) axis, ``(groups, readings, 8)`` on
  a CPU, eight sensors per vector with each group's readings contiguous; the loss is the book's
  ``loss_fn`` averaged over the readings axis (one loss per sensor), params a pytree of
  per-parameter arrays, and the gradient's sums over the readings run in one pass
  (:func:`jaxcal.onepass.one_pass`). On a CPU, tiles of ~1000 sensors whose readings stay in
  cache for all epochs (``lax.map`` over tiles, the epochs inside), split over every local
  device in one SPMD program (``jax.shard_map``, each device on its own share); on an
  accelerator, one tile per device.

Both run every epoch without per-epoch checks; the few sensors whose fit ends non-finite are
fitted again with divergence tracking, so that each stops at its own diverging epoch exactly as
``training_loop`` would. What this layout gains, measured, is in ``benchmarks/bench.py``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from . import _checks, _layout, loop, updates
from .core import MODELS, Model, resolve_model
from .evaluate import Evaluation
from .loop import TrainResult
from .onepass import one_pass
from .training import Plan, run
from .updates import OptimizerLike

__all__ = ["fit_fleet", "least_squares"]

Array = jax.Array
Progress = Callable[[int, int], None]

#: The mesh axis a fleet's sensors are split along, one share per device.
_SENSORS = "sensors"


def _tile_evaluation(model: Model) -> Evaluation:
    """``jax.value_and_grad`` of a tile's summed loss (per-sensor losses as the loss), every sum
    over the readings in one pass. The tile's readings are ``(x, y, m, count)``, ``m`` and
    ``count`` ``None`` for a full table."""

    def total(params: tuple[Array, ...], x: Array, y: Array, m: Array | None, count: Array | None) -> Any:
        per_sensor = _layout.tile_loss(model, params, x, y, m, count)
        return per_sensor.sum(), per_sensor

    value_and_grad = one_pass(jax.value_and_grad(total, has_aux=True))

    def loss_and_grad(params: Any, tile: Any) -> tuple[Array, Any]:
        (_, per_sensor), grads = value_and_grad(params, *tile)
        return per_sensor, grads

    return Evaluation(lambda params, tile: loss_and_grad(params, tile)[0], loss_and_grad)


def _chunk(n_epochs: int, optimizer: OptimizerLike, model: Model, learning_rate: Array, tiles: tuple[Any, ...],
           carry: tuple[Any, Any]) -> tuple[Any, Any]:
    """``n_epochs`` on every tile of one device's share; ``carry`` is (params, optimiser state)."""
    evaluation = _tile_evaluation(model)
    update = updates.resolve(optimizer, None if learning_rate is None else learning_rate.astype(tiles[0].dtype))
    return lax.map(lambda t: loop.epochs(evaluation, update, t[1][0], t[1][1], t[0], n_epochs), (tiles, carry))


def _start(optimizer: OptimizerLike, layout: tuple[int, int, int | None], learning_rate: Array,
           share: dict[str, Any]) -> tuple[tuple[Any, ...], tuple[Any, Any]]:
    """One device's share laid out in tiles, and the carry before the first epoch."""
    tiles, params = _tiles_of(jax.tree.map(lambda value: _layout.lay_out(value, *layout), share))
    update = updates.resolve(optimizer, None if learning_rate is None else learning_rate.astype(params[0].dtype))
    return tiles, (params, lax.map(update.init, params))


def _loss(model: Model, tiles: tuple[Any, ...], params: tuple[Array, ...]) -> tuple[Array, Any]:
    # Each sensor's loss and its gradient, both results of the program: XLA then keeps the one
    # reduction that sums them, in the same order whatever the tile width (the loss alone would
    # be a lone reduce_sum, whose order depends on it).
    evaluation = _tile_evaluation(model)
    return lax.map(lambda t: evaluation.loss_and_grad(t[1], t[0]), (tiles, params))


def _whole(n_epochs: int, optimizer: OptimizerLike, model: Model, layout: tuple[int, int, int | None],
           learning_rate: Array, share: dict[str, Any]) -> tuple[Any, tuple[Array, Any]]:
    """A device's whole fit (no progress to report between chunks): its share laid out in tiles,
    every epoch, and each sensor's loss; the same functions as the chunked path."""
    tiles, carry = _start(optimizer, layout, learning_rate, share)
    carry = _chunk(n_epochs, optimizer, model, learning_rate, tiles, carry)
    return carry[0], _loss(model, tiles, carry[0])


def _sharded(fn: Callable[..., Any], mesh: Mesh, learning_rate: Any, *shares: Any) -> Any:
    """``fn(learning_rate, *shares)`` as one SPMD program over ``mesh``: every device runs it on
    its own share (the leading axis of every share and of every result, split evenly), with no
    communication; the learning rate is every device's. One program to trace, lower and compile
    (or load from the persistent cache) for all the devices, where one per device cost each its
    own."""
    specs = (P(), *(P(_SENSORS) for _ in shares))
    # check_vma off: nothing is communicated, and an optimiser's state that starts from constants
    # (optax's zeros) is replicated where the loop carries it per device (jax < 0.7 rejects that)
    return jax.shard_map(fn, mesh=mesh, in_specs=specs, out_specs=P(_SENSORS), check_vma=False)(learning_rate, *shares)


@functools.partial(jax.jit, static_argnums=(0, 1, 2, 3, 4))
def _tiles_whole(n_epochs: int, optimizer: OptimizerLike, model: Model, layout: tuple[int, int, int | None],
                 mesh: Mesh, learning_rate: Array, share: dict[str, Any]) -> tuple[Any, tuple[Array, Any]]:
    """Every device's whole fit, in one program."""
    return _sharded(functools.partial(_whole, n_epochs, optimizer, model, layout), mesh, learning_rate, share)


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def _tiles_start(optimizer: OptimizerLike, layout: tuple[int, int, int | None], mesh: Mesh, learning_rate: Array,
                 share: dict[str, Any]) -> tuple[tuple[Any, ...], tuple[Any, Any]]:
    return _sharded(functools.partial(_start, optimizer, layout), mesh, learning_rate, share)


@functools.partial(jax.jit, static_argnums=(0, 1, 2, 3))
def _tiles_chunk(n_epochs: int, optimizer: OptimizerLike, model: Model, mesh: Mesh, learning_rate: Array,
                 tiles: tuple[Any, ...], carry: tuple[Any, Any]) -> tuple[Any, Any]:
    """``n_epochs`` on every tile of every device, in one program."""
    return _sharded(lambda lr, t, c: _chunk(n_epochs, optimizer, model, lr, t, c), mesh, learning_rate, tiles, carry)


@functools.partial(jax.jit, static_argnums=(0, 1))
def _tiles_loss(model: Model, mesh: Mesh, tiles: tuple[Any, ...], params: tuple[Array, ...]) -> tuple[Array, Any]:
    return _sharded(lambda _, t, p: _loss(model, t, p), mesh, None, tiles, params)


def _tiles_of(laid: dict[str, Any]) -> tuple[tuple[Any, ...], tuple[Array, ...]]:
    """A laid-out share's tiles ``(x, y, m, count)`` and initial params (one array per parameter)."""
    tiles = tuple(laid["readings"].get(key) for key in ("x", "y", "m", "count"))
    if tiles[2] is not None:
        # padded sensors get count 1 (not 0) so their loss stays finite; they are dropped at the end
        tiles = (*tiles[:3], jnp.maximum(tiles[3], 1))
    return tiles, laid["params"]


@functools.lru_cache(maxsize=64)
def _small_plan(n_epochs: int, spec: Any, optimizer: OptimizerLike, platform: str, width: int) -> Plan:
    """A small fleet's plan: the single fit's, every epoch unchecked (see :func:`fit_fleet`)."""
    layout = _layout.layout_for((platform, True, width), elementwise=False)
    return Plan(n_epochs, None, spec, "autograd", optimizer, False, layout, track=False)


@functools.cache
def _vmapped(plan: Plan, shared: bool = False) -> Callable[..., TrainResult]:
    """``plan``'s single fit, ``vmap`` ped over sensors (t_u, t_c and, unless ``shared``, the
    initial params), compiled once."""
    batched = jax.vmap(lambda lr, p, x, y: run(plan, lr, p, x, y), in_axes=(None, None if shared else 0, 0, 0))

    def fleet(lr: Any, params: Any, x: Array, y: Array) -> TrainResult:
        if x.shape[0] == 1:  # one sensor: the single fit's program as it is (vmap of one costs ~25%)
            result = run(plan, lr, params if shared else params[0], x[0], y[0])
            return jax.tree.map(lambda a: a[None], result)
        return batched(lr, params, x, y)

    return jax.jit(fleet)


def fit_fleet(
    t_u: Any,
    t_c: Any,
    *,
    n_epochs: int,
    learning_rate: Any,
    params: Any = None,
    counts: Any = None,
    mask: Any = None,
    optimizer: OptimizerLike = None,
    model: str = "linear",
    tile: int | None = None,
    devices: Sequence[Any] | None = None,
    progress: Progress | None = None,
    chunks: int = 1,
    device: str | None = None,
) -> TrainResult:
    """Fit every sensor of a fleet by gradient descent, each exactly as ``training_loop`` would.

    The book's method for a fleet (``jaxcal fleet --solver gd``): fixed epochs at a learning rate,
    laid out for speed (sensors on the SIMD lanes, tiles, every device). For a calibration (the
    least-squares answer with each sensor's standard errors and status) use :func:`jaxcal.calibrate`,
    the fleet API; the uncertainty of these params is ``calibrate``'s formulas at them
    (:func:`jaxcal.uncertainty.uncertainty`).

    Args:
      t_u, t_c: readings and targets, ``(sensors, readings)`` float arrays; for ragged data pad
        the rows and pass ``counts`` or ``mask``.
      n_epochs: epochs for every sensor (static).
      learning_rate: the step size (traced); ``None`` with a built optax transformation.
      params: initial params: ``(n_params,)`` for every sensor (default: the model's, the book's
        ``(1, 0)`` for the linear one), or ``(sensors, n_params)``.
      counts: valid readings per sensor, ``(sensors,)``: the first ``counts[s]`` of row ``s``.
      mask: or a boolean ``(sensors, readings)`` mask of the valid readings.
      optimizer: as for :func:`jaxcal.training_loop`. One whose update requires optax's extra
        arguments (``optax.lbfgs()``, ``optax.contrib.reduce_on_plateau``) fits every sensor on
        its own (its loss, its line search), never in tiles.
      model: ``"linear"`` or ``"quadratic"``.
      tile: sensors per tile (static). Default: chosen from the size and the platform.
      devices: the devices to split the tiles over (default: all local devices).
      progress: called as ``progress(epochs_done, n_epochs)`` as the fit advances.
      chunks: run the epochs in this many compiled chunks (for progress updates).
      device: ``"auto"`` (``None``: the CPU devices for a fleet too small to fill an accelerator,
        from the crossover measured on one), ``"cpu"`` or ``"gpu"``; ``devices`` overrides it.

    Returns:
      A :class:`~jaxcal.loop.TrainResult` of NumPy arrays: params ``(sensors, n_params)``,
      loss, epochs run and divergence ``(sensors,)``; no history.

    Raises:
      ValueError, TypeError: on bad input, one line naming the argument.

    >>> import numpy as np
    >>> from jaxcal import data
    >>> fleet = fit_fleet(np.stack([data.t_un, data.t_un + 1]), np.stack([data.t_c, data.t_c]),
    ...                   n_epochs=5000, learning_rate=1e-2)
    >>> fleet.params.shape, fleet.param_names, fleet.diverged.tolist()
    ((2, 2), ('w', 'b'), [False, False])
    """
    n_epochs = _checks.check_positive_int(n_epochs, "n_epochs", _checks.MAX_EPOCHS)
    spec = resolve_model(model)
    if spec.name is None:
        raise _checks.InvalidInput("model", "fleets take a model by name (linear or quadratic)")
    t_u = np.asarray(t_u)
    t_c = np.asarray(t_c)
    for name, values in (("t_u", t_u), ("t_c", t_c)):
        if values.dtype.kind != "f":
            raise _checks.InvalidType(name, f"must be a floating-point array, got {values.dtype}")
        if values.ndim != 2:
            raise _checks.InvalidInput(name, f"must be (sensors, readings), got shape {values.shape}")
    if t_u.shape != t_c.shape:
        raise _checks.InvalidInput("t_u and t_c", f"must have the same shape, got {t_u.shape} and {t_c.shape}")
    sensors, width = t_u.shape
    dtype = t_u.dtype if t_u.dtype == t_c.dtype == np.float32 else jax.dtypes.canonicalize_dtype(
        np.result_type(t_u.dtype, t_c.dtype))
    if mask is None and counts is not None:
        counts = np.asarray(counts)
        if counts.shape != (sensors,) or not np.issubdtype(counts.dtype, np.integer):
            raise _checks.InvalidInput("counts", f"must be {sensors} integers, got shape {counts.shape}")
        mask = np.arange(width)[None, :] < counts[:, None]
    elif mask is not None:
        mask = np.asarray(mask, bool)
        if mask.shape != t_u.shape:
            raise _checks.InvalidInput("mask", f"must have the shape of t_u {t_u.shape}, got {mask.shape}")
    ragged = mask is not None and not mask.all()
    counts = mask.sum(axis=1) if ragged else None
    if sensors == 0 or (counts.min() if ragged else width) < 2:
        worst = int(np.argmin(counts)) if ragged else 0
        have = int(counts[worst]) if ragged else (width if sensors else 0)
        raise _checks.InvalidInput("t_u", f"sensor {worst} has {have} readings; each needs at least 2")
    for name, values in (("t_u", t_u), ("t_c", t_c)):
        # only the valid readings count: what pads a ragged row is never read
        valid = np.where(mask, values, 0) if ragged else values
        _checks.check_finite_array(valid, name, "reading")
        _checks.check_fits(valid, dtype, name, "reading")
    init = _checks.fit_dtype(spec.start(params), dtype, "params")
    shared = init.shape == (spec.n_params,)  # one start for every sensor
    if not (shared or init.shape == (sensors, spec.n_params)):
        raise _checks.InvalidInput("params", f"must be {spec.n_params} values or ({sensors}, {spec.n_params}), "
                                   f"got shape {init.shape}")
    _checks.check_finite_array(init, "params")
    optimizer = updates.check(optimizer, learning_rate is not None, init if shared else init[0])
    lr = None
    if learning_rate is not None:
        if not (type(learning_rate) is float and 0 < learning_rate < math.inf):  # the usual 1e-2 is fine
            _checks.check_learning_rate(learning_rate, "learning_rate")
        lr = _checks.fit_dtype(learning_rate, dtype, "learning_rate", nonzero=True)
    if tile is not None:
        tile = _checks.check_positive_int(tile, "tile")
    target = None if devices is not None else _layout.chosen_device(device, "fleet", sensors)
    layout = _layout.for_fleet(sensors, ragged=ragged, devices=devices, tile=tile,
                               platform=None if target is None else target.platform)
    alone = not layout.vmapped and updates.needs_extra_args(optimizer, spec.n_params, dtype)
    if layout.vmapped:
        x, y = t_u.astype(dtype, copy=False), t_c.astype(dtype, copy=False)
        if target is not None:  # placed elsewhere than JAX's default device
            x, y = jax.device_put((x, y), layout.devices[0])
        plan = _small_plan(n_epochs, spec, optimizer, layout.devices[0].platform, width)
        result = _vmapped(plan, shared)(lr, init, x, y)
        final, loss, nonfinite = np.asarray(result.params), np.asarray(result.loss), np.asarray(result.diverged)
        if progress is not None:
            progress(n_epochs, n_epochs)
    elif alone:
        # A loss or a line search read by the update is each sensor's own, as in training_loop: a
        # tile would share one between its sensors. Every sensor is fitted alone, with tracking.
        final, loss = np.zeros((sensors, spec.n_params), dtype), np.zeros(sensors, dtype)
        nonfinite = np.ones(sensors, bool)
    else:
        init = np.broadcast_to(init, (sensors, spec.n_params)) if shared else init
        final, loss = _fit_tiles(layout, t_u, t_c, mask if ragged else None, counts, init, lr, n_epochs, optimizer,
                                 spec.fn, dtype, progress, chunks)
        nonfinite = ~(np.isfinite(loss) & np.isfinite(final).all(axis=1))
    epochs_run = np.full(sensors, n_epochs, np.int64)
    diverged = np.zeros(sensors, bool)
    if nonfinite.any():
        final, loss = final.copy(), loss.copy()
        _refit(np.nonzero(nonfinite)[0], t_u, t_c, np.ones(t_u.shape, bool) if mask is None else mask,
               np.broadcast_to(init, (sensors, spec.n_params)), n_epochs, lr, optimizer, spec, final, loss, epochs_run,
               diverged)
        if progress is not None and alone:
            progress(n_epochs, n_epochs)
    return TrainResult(final, loss, epochs_run, diverged, None, spec.param_names)


def _fit_tiles(layout: _layout.FleetLayout, t_u: np.ndarray, t_c: np.ndarray, mask: np.ndarray | None,
               counts: np.ndarray, init: np.ndarray, lr: Any, n_epochs: int, optimizer: OptimizerLike, model: Model,
               dtype: Any, progress: Progress | None, chunks: int) -> tuple[np.ndarray, np.ndarray]:
    """The tiled fit over every device of ``layout``: ``(final params (sensors, n_params), loss)``."""
    sensors, n_params = init.shape
    if mask is not None:
        columns = {"x": np.where(mask, t_u, 0).astype(dtype), "y": np.where(mask, t_c, 0).astype(dtype),
                   "m": mask.astype(dtype), "count": counts.astype(dtype)}
    else:  # every sensor has every reading: no mask to build, carry or multiply by
        columns = {"x": t_u.astype(dtype, copy=False), "y": t_c.astype(dtype, copy=False)}
    columns = {"readings": columns, "params": tuple(np.ascontiguousarray(init[:, j]) for j in range(n_params))}
    # Each device's contiguous share of the sensors goes over as it is (the last ones padded with
    # zeros), and is laid out in tiles there.
    mesh = Mesh(np.asarray(layout.devices, dtype=object), (_SENSORS,))
    placed = jax.tree.map(lambda values: _placed(values, layout.share * len(layout.devices), mesh), columns)
    shape = (layout.share, layout.tile, layout.lanes)
    if chunks <= 1 and progress is None:  # one call, nothing to report on the way
        params, (loss, _) = _tiles_whole(n_epochs, optimizer, model, shape, mesh, lr, placed)
        return _gathered(params, loss, sensors)
    tiles, carry = _tiles_start(optimizer, shape, mesh, lr, placed)
    # Equal chunks (the last one takes the remainder), so at most two compiled programs.
    chunks = max(1, chunks)
    base = n_epochs // chunks
    done = 0
    for size in (s for s in [base] * (chunks - 1) + [n_epochs - base * (chunks - 1)] if s):
        carry = _tiles_chunk(size, optimizer, model, mesh, lr, tiles, carry)  # every device at once
        done += size
        if progress is not None:
            jax.block_until_ready(carry)
            progress(done, n_epochs)
    return _gathered(carry[0], _tiles_loss(model, mesh, tiles, carry[0])[0], sensors)


def _placed(values: np.ndarray, rows: int, mesh: Mesh) -> Array:
    """``values`` (``(sensors, ...)``) as one array of ``rows`` split evenly over ``mesh``'s
    devices, each device's share copied from ``values`` as it is and zero-padded past its end."""

    def share(index: tuple[slice, ...]) -> np.ndarray:
        start, stop, _ = index[0].indices(rows)
        mine = values[min(start, len(values)):min(stop, len(values))]
        if len(mine) == stop - start:
            return mine
        return np.pad(mine, [(0, stop - start - len(mine))] + [(0, 0)] * (values.ndim - 1))

    return jax.make_array_from_callback((rows, *values.shape[1:]), NamedSharding(mesh, P(_SENSORS)), share)


def _gathered(params: tuple[Array, ...], loss: Array, sensors: int) -> tuple[np.ndarray, np.ndarray]:
    """The tiles' params and losses as ``(sensors, n_params)`` and ``(sensors,)``."""
    final = np.stack([_layout.unlay_out(p, sensors) for p in params], axis=1)
    return final, _layout.unlay_out(loss, sensors)


def _refit(
    suspects: np.ndarray, t_u: np.ndarray, t_c: np.ndarray, mask: np.ndarray, init: np.ndarray, n_epochs: int,
    lr: Any, optimizer: OptimizerLike, spec: Any, final: np.ndarray, loss: np.ndarray, epochs_run: np.ndarray,
    diverged: np.ndarray,
) -> None:
    """Fit the sensors whose fast fit ended non-finite again with tracking, which stops at the
    diverging epoch and keeps the last finite params (few sensors, grouped by reading count)."""
    counts = mask.sum(axis=1)
    for count in np.unique(counts[suspects]):
        group = suspects[counts[suspects] == count]
        x = np.stack([t_u[s][mask[s]] for s in group]).astype(init.dtype)
        y = np.stack([t_c[s][mask[s]] for s in group]).astype(init.dtype)
        plan = Plan(n_epochs, None, spec, "autograd", optimizer, False,
                    _layout.for_fit(np.empty(int(count), init.dtype), elementwise=False))
        result = _vmapped(plan)(lr, init[group], x, y)
        final[group] = np.asarray(result.params)
        epochs_run[group] = np.asarray(result.epochs_run)
        diverged[group] = np.asarray(result.diverged)
        loss[group] = np.asarray(result.loss)


def least_squares(t_u: Any, t_c: Any, *, counts: Any = None, model: str = "linear") -> np.ndarray:
    """The closed-form least-squares params per sensor in float64 NumPy, whatever JAX's x64 setting:
    the point gradient descent converges to, a check of how far a fit got. Returns
    ``(sensors, n_params)``.

    A check, not a calibration: :func:`jaxcal.calibrate` is the fleet API (the same params in the
    readings' dtype, with standard errors, statuses and any model); this stays for the float64
    check of a float32 gradient-descent fleet."""
    t_u = np.asarray(t_u, np.float64)
    t_c = np.asarray(t_c, np.float64)
    counts = np.full(t_u.shape[0], t_u.shape[1]) if counts is None else np.asarray(counts)
    mask = (np.arange(t_u.shape[1])[None, :] < counts[:, None]).astype(np.float64)
    degree = MODELS[model].n_params - 1
    if degree == 1:  # the line: centred sums, no system to solve (a few passes over the table)
        with np.errstate(all="ignore"):
            x_mean = (mask * t_u).sum(axis=1) / counts
            y_mean = (mask * t_c).sum(axis=1) / counts
            dx = mask * (t_u - x_mean[:, None])
            spread = (dx * dx).sum(axis=1)
            w = (dx * (t_c - y_mean[:, None])).sum(axis=1) / spread
            solved = np.stack([w, y_mean - w * x_mean], axis=1)
        solved[~(spread > 0)] = np.nan  # every reading at one t_u: the line is not determined
        return solved
    phi = np.stack([t_u**k for k in range(degree, -1, -1)], axis=-1) * mask[..., None]  # (s, n, m)
    normal = np.einsum("snj,snk->sjk", phi, phi)
    rhs = np.einsum("snj,sn->sj", phi, t_c * mask)
    with np.errstate(all="ignore"):
        solved = np.full(rhs.shape, np.nan)
        ok = np.abs(np.linalg.det(normal)) > 0
        solved[ok] = np.linalg.solve(normal[ok], rhs[ok][..., None])[..., 0]
    return solved
