"""Private: how readings are laid out for speed, chosen from their size and the platform, here only.

Nothing in this module changes what is computed, only the order of the sums and where the
values sit in memory: float32 bounds for a sum of n terms cover every layout (see
``tests/test_training.py`` and ``tests/test_fleet.py``). Every figure below was measured on the
2-core CPU of ``benchmarks/``.

* A single fit reads its readings as one 1-D array, or, when large on one CPU device, in blocks
  of ``rows x lanes`` (:class:`Layout`).
* A fleet runs small tables as ``vmap`` of the single fit, in one program; larger ones in tiles
  that put sensors on the SIMD lanes (:class:`FleetLayout`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from . import _checks
from .core import Model, loss_fn
from .onepass import SMALL_EXTENT

Array = jax.Array

#: The CPU's blocked layouts for large fits, as (fewest readings, rows per block, lanes per row),
#: the first that applies wins. Measured, 100 epochs, as a fraction of a streaming read of the
#: same bytes: blocks of 20 x 8 readings (640 contiguous bytes: the kernel reads two sequential
#: streams) 1.06 at 1e7 readings, 1.47 at 1e6, 0.96 at 5e4 (10 x 1000: 0.64, 0.82, 0.88); below
#: ~50,000 readings, 10 rows of 1000 lanes cost less per epoch (1e4: 0.64 vs 0.45); the plain 1-D
#: sums reach 0.28-0.39 at every size.
BLOCK_LAYOUTS = ((50_000, 20, 8), (10_000, 10, 1000))


class Layout(NamedTuple):
    """How one fit's readings are read (a static value).

    Attributes:
      blocks: ``(blocks, rows, lanes)`` of the blocked layout, or ``None`` for the plain 1-D one.
      max_extent: merge the gradient's sums into one pass only over at most this many readings
        (``None``: always; see :func:`jaxcal.onepass.one_pass`).
    """

    blocks: tuple[int, int, int] | None = None
    max_extent: int | None = None

    def arrange(self, readings: tuple[Array, Array]) -> Any:
        """The readings ``(t_u, t_c)`` as :meth:`objective` reads them: laid out once."""
        if self.blocks is None:
            return readings
        return tuple(_to_blocks(values, self.blocks) for values in readings)

    def objective(self, model: Model) -> Callable[[Array, Any, Any], Array]:
        """The book's loss ``mean((model(t_u, *params) - t_c) ** 2)`` over arranged readings."""
        if self.blocks is None:
            return lambda params, t_u, t_c: loss_fn(model(t_u, *params), t_c)
        return _blocked_loss(model)


PLAIN = Layout()


def _to_blocks(values: Array, blocks: tuple[int, int, int]) -> tuple[Array, Array]:
    main = math.prod(blocks)
    return values[:main].reshape(blocks), values[main:]


def _blocked_loss(model: Model) -> Callable[[Array, Any, Any], Array]:
    """The book's loss on readings laid out as ``(blocks, rows, lanes)`` plus a 1-D tail.

    The same mean of squared residuals, summed in another order: over each block's rows, then
    over blocks, then over lanes. Its gradient's sums then come in the same three levels, and the
    first (the only one that reads the readings) runs as one pass over each block's few rows,
    which XLA's CPU backend unrolls and vectorises across the lanes.
    """

    def loss(params: Array, t_u: Any, t_c: Any) -> Array:
        (x, x_tail), (y, y_tail) = t_u, t_c
        blocks, _, lanes = x.shape
        laid = [jnp.broadcast_to(jnp.broadcast_to(p, (lanes,)), (blocks, lanes))[:, None, :] for p in params]
        main = ((model(x, *laid) - y) ** 2).sum(axis=1).sum(axis=0).sum()
        tail = ((model(x_tail, *params) - y_tail) ** 2).sum()
        return (main + tail) / (x.size + x_tail.shape[0])

    return loss


def placement(t_u: Any) -> tuple[str, bool, int]:
    """Where a fit of ``t_u`` runs: ``(platform, on one device, readings)``."""
    if isinstance(t_u, jax.Array) and not isinstance(t_u, jax.core.Tracer):
        devices = t_u.devices()
        return next(iter(devices)).platform, len(devices) == 1, t_u.shape[0]
    return jax.default_backend(), True, t_u.shape[0]


def for_fit(t_u: Any, *, elementwise: bool) -> Layout:
    """The layout of one fit's readings ``t_u`` (a NumPy array, or a ``jax.Array`` where it lies).

    ``elementwise``: the model is the book's (named), elementwise in ``t_u``, so that the readings
    may be reshaped into blocks.
    """
    return layout_for(placement(t_u), elementwise=elementwise)


def layout_for(where: tuple[str, bool, int], *, elementwise: bool) -> Layout:
    """:func:`for_fit` from the fit's :func:`placement`."""
    platform, single, n = where
    if platform != "cpu":
        return PLAIN  # one pass over any extent: an accelerator's reduction kernel takes them all
    # The loss and gradient sums in one pass up to SMALL_EXTENT readings, where XLA's CPU kernel
    # for it beats separate sums; large fits on one CPU device read their readings in blocks.
    if elementwise and single:
        for least, rows, lanes in BLOCK_LAYOUTS:
            if n >= least and n >= rows * lanes:
                return Layout((n // (rows * lanes), rows, lanes), SMALL_EXTENT)
    return Layout(None, SMALL_EXTENT)


# Placement --------------------------------------------------------------------------------------

#: Where work may be placed (``device=``; the CLI's ``--device``).
DEVICES = ("auto", "cpu", "gpu")

#: From what size an accelerator runs a kind of work faster than the CPU device: readings of one
#: fit ("fit"), configurations of a sweep ("sweep"), sensors of a fleet ("fleet"). Measured on a
#: GPU by benchmarks/bench_gpu.py; ``None`` where no measurement has been recorded yet, and then
#: "auto" keeps JAX's default device (on a CPU-only machine nothing ever moves).
CROSSOVER: dict[str, int | None] = {"fit": None, "sweep": None, "fleet": None}


def chosen_device(device: str | None, kind: str, size: int) -> Any:
    """The device ``device`` (``None`` or ``"auto"``, ``"cpu"``, ``"gpu"``) places ``size`` of a
    ``kind`` of work on, or ``None`` for JAX's default device (and where the inputs already are).

    Raises:
      ValueError: one line naming ``device`` (an unknown choice, or no such device here).
    """
    if device is None or device == "auto":
        crossover = CROSSOVER[kind]
        if jax.default_backend() == "cpu" or crossover is None or size >= crossover:
            return None
        return jax.devices("cpu")[0]
    if device not in DEVICES:
        raise _checks.InvalidInput("device", f"must be one of {', '.join(DEVICES)}, got {device!r}")
    if jax.default_backend() == device:
        return None
    try:
        return jax.devices(device)[0]
    except (RuntimeError, ValueError):
        raise _checks.InvalidInput("device", f"no {device} device here (JAX runs on {jax.default_backend()})") from None


def on_cpu(t_u: Any) -> bool:
    """Whether a fit of ``t_u`` runs on the CPU (where exact mode's arithmetic is written)."""
    if isinstance(t_u, jax.Array) and not isinstance(t_u, jax.core.Tracer):
        return next(iter(t_u.devices())).platform == "cpu"
    return jax.default_backend() == "cpu"


# Fleets ---------------------------------------------------------------------------------------

#: Sensors per SIMD group of a CPU tile: one AVX2 vector of float32. Measured per core, tiles of
#: 1000 sensors: 8 lanes 1.6 us per epoch, 16 lanes 2.4 us, 32 lanes 2.5 us.
LANES = 8

#: Up to how many sensors a full fleet runs as ``vmap`` of the single fit in one program on one
#: device, rather than in tiles over every device. Measured (11 readings, 5000 epochs, 2 CPU
#: devices; ``benchmarks/bench.py`` reports both against a plain vmap): 64 sensors 2.2 ms vmapped
#: against 4.1 ms in tiles, 100 sensors 3.0 against 3.4 ms, 200 sensors 4.8 against 2.9 ms: the
#: tiles' per-device placement, layout and dispatches cost more than they save below ~150.
SMALL_FLEET = 128


class FleetLayout(NamedTuple):
    """How a fleet's ``(sensors, readings)`` table is laid out over devices and tiles.

    Attributes:
      vmapped: ``True``: the whole table in one program, ``vmap`` over sensors of the single fit.
      devices: the devices the tiles are split over (in tiles mode).
      tile: sensors per tile; ``share``: sensors per device, padded to whole tiles.
      lanes: sensors per SIMD group of a CPU tile, or ``None`` (an accelerator's tile is
        ``(sensors, readings)``, whose compiler reduces each sensor's contiguous readings best).
    """

    vmapped: bool
    devices: tuple[Any, ...]
    tile: int = 0
    share: int = 0
    lanes: int | None = None


def for_fleet(sensors: int, *, ragged: bool, devices: Sequence[Any] | None, tile: int | None,
              platform: str | None = None) -> FleetLayout:
    """The layout of a fleet of ``sensors`` (``tile``, ``devices``: the caller's choice, if any;
    ``platform``: where placement put it, default JAX's)."""
    chosen = tuple(jax.local_devices(backend=platform) if devices is None else devices)
    if sensors <= SMALL_FLEET and not ragged and devices is None and tile is None:
        return FleetLayout(True, chosen[:1])
    per_device = math.ceil(sensors / len(chosen))
    cpu = chosen[0].platform == "cpu"
    if tile is None:
        # A CPU core wants tiles that stay in its cache (~1000 sensors); an accelerator wants every
        # sensor of its share in one tile, so that an epoch is a few wide kernels.
        tile = 1000 if cpu else 128 * math.ceil(per_device / 128)
    tile = 8 * math.ceil(min(tile, per_device) / 8)  # whole SIMD groups, at most a device's share
    share = tile * math.ceil(per_device / tile)  # every device the same tiles
    return FleetLayout(False, chosen, tile, share, LANES if cpu else None)


def tile_loss(model: Model, params: Any, x: Array, y: Array, m: Array | None, count: Array | None) -> Array:
    """The book's loss of every sensor of a tile at once: ``mean((model(t_u) - t_c) ** 2)`` over
    each sensor's readings (axis 1 of a tile: ``(groups, readings, lanes)`` on a CPU,
    ``(sensors, readings)`` on an accelerator). Masked readings add exactly zero."""
    t_p = model(x, *(jnp.expand_dims(p, 1) for p in params))
    if m is None:
        return loss_fn(t_p, y, axis=1)
    return (m * (t_p - y) ** 2).sum(axis=1) / count


@functools.partial(jax.jit, static_argnums=(1, 2, 3))
def lay_out(values: Array, share: int, tile: int, lanes: int | None) -> Array:
    """One device's ``(sensors, ...)`` share -> ``(n_tiles, tile, ...)`` or, with ``lanes``,
    ``(n_tiles, tile // lanes, ..., lanes)``, zero-padded to ``share`` sensors: sensor ``s`` at
    tile ``s // tile``, then group, then lane. Runs on the device that holds ``values``."""
    rest = values.shape[1:]
    padded = jnp.pad(values, [(0, share - values.shape[0])] + [(0, 0)] * len(rest))
    tiles = padded.reshape(-1, tile, *rest)
    if lanes:
        tiles = jnp.moveaxis(tiles.reshape(tiles.shape[0], tile // lanes, lanes, *rest), 2, -1)
    return tiles


def unlay_out(values: Any, sensors: int) -> np.ndarray:
    """The inverse of :func:`lay_out` for per-sensor values of every device's tiles, in order:
    ``(sensors,)``."""
    return np.asarray(values).reshape(-1)[:sensors]
