"""Calibration-grade fits: one sensor or a fleet, by least squares, with each fit's uncertainty.

``calibrate`` builds the residuals of one sensor, runs a solver value through the one loop
(:mod:`jaxcal._iterate`) and adds the uncertainty (:mod:`jaxcal.uncertainty`); a fleet is that
single fit under ``jax.vmap``, all in one compiled program.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from . import _checks
from ._checks import InvalidInput, InvalidType, shown
from ._iterate import iterate_fleet
from .core import resolve_model
from .solvers import LeastSquares, LevenbergMarquardt
from .solvers._base import CONVERGED, JACOBI_MAX_PARAMS, NONFINITE, STATUS, UNDETERMINED
from .uncertainty import r_squared, uncertainty

__all__ = ["STATUS", "Calibrated", "calibrate"]

Array = jax.Array
_SENSORS = "sensors"


class Calibrated(NamedTuple):
    """A calibration: each fit's params and their uncertainty.

    Shapes are those of one sensor; a fleet adds a leading ``sensors`` axis to each array.

    Attributes:
      params: the fitted params, shape ``(k,)``, ordered as ``param_names``; NaN where the status is
        ``nonfinite`` or ``undetermined``.
      stderr: each param's standard error, ``sqrt(diag(cov))``, shape ``(k,)``.
      cov: the params' covariance ``s**2 (J^T J)^-1`` (see ``absolute_sigma``), shape ``(k, k)``.
      rss: the residual sum of squares (of ``(t_p - t_c) / sigma`` when weighted: chi-square).
      dof: the degrees of freedom, the counted readings less ``k``, int32.
      residual_sd: ``sqrt(rss / dof)``, NaN where ``dof <= 0``.
      r_squared: ``1 - rss / sum((t_c - mean)**2)`` (weighted by ``1 / sigma**2``) for a model with an
        intercept (``"linear"``, ``"quadratic"``); NaN for a caller's function.
      status: a code of :data:`STATUS` (``Calibrated.STATUS[code]`` names it), int32.
      steps: the solver's steps, int32.
      param_names: the names of the params, e.g. ``("w", "b")``.
    """

    params: Array
    stderr: Array
    cov: Array
    rss: Array
    dof: Array
    residual_sd: Array
    r_squared: Array
    status: Array
    steps: Array
    param_names: tuple[str, ...]

    STATUS = STATUS


def _residuals(model: Callable[..., Array], y: Array, args: tuple[Array, Array, Array, Array]) -> Array:
    t_u, t_c, weight, mask = args
    t_p = model(t_u, *(y[i] for i in range(y.shape[0])))
    # a masked reading's residual is 0 whatever the model gives there, and so is its Jacobian row
    return jnp.where(mask, (t_p - t_c) * weight, jnp.zeros_like(t_c))


def _finish(y: Array, status: Array, steps: Array, t_u: Array, t_c: Array, weight: Array, mask: Array, *,
            model: Callable[..., Array], intercept: bool, absolute_sigma: bool) -> tuple[Array, ...]:
    """One fit's uncertainty at the solver's last params ``y``, and its status made final."""
    fn = functools.partial(_residuals, model)
    args = (t_u, t_c, weight, mask)
    found = jnp.isfinite(y).all()
    y_at = jnp.where(found, y, jnp.zeros_like(y))  # where the Jacobian is taken: NaN params have none
    jac = jax.jacfwd(fn)(y_at, args)
    residuals = fn(y_at, args)
    count = jnp.sum(mask.astype(jnp.int32))
    fit = uncertainty(jac, residuals, count, absolute_sigma=absolute_sigma)
    status = jnp.where((status != UNDETERMINED) & jnp.logical_not(found), NONFINITE, status)
    status = jnp.where((status == CONVERGED) & jnp.logical_not(fit.full_rank), UNDETERMINED, status)
    status = status.astype(jnp.int32)
    kept = (status != NONFINITE) & (status != UNDETERMINED)
    nan = jnp.asarray(jnp.nan, y.dtype)
    params = jnp.where(kept, y, nan)
    cov = jnp.where(kept, fit.cov, nan)
    stderr = jnp.where(kept, fit.stderr, nan)
    rss = jnp.where(kept, fit.rss, nan)
    residual_sd = jnp.where(kept, fit.residual_sd, nan)
    r2 = jnp.where(kept, r_squared(t_c, fit.rss, weight * weight), nan) if intercept else nan
    return params, stderr, cov, rss, fit.dof, residual_sd, r2, status, steps


#: Fits that run at once on a device (the slots of :func:`jaxcal._iterate.iterate_fleet`), and the tile of
#: sensors whose uncertainty is computed together. Measured on 102,400 Misra1a-shaped Levenberg-Marquardt
#: fits in float32 on 2 CPU devices (jax 0.10.2): 6.8 us of CPU per fit for 512 slots, 7.2 for 2,048, 8.7
#: for 8,192. A new value changes which vectorised code XLA runs, so the last bits of a fit's values.
TILE = 512


@functools.partial(jax.jit, static_argnames=("model", "intercept", "absolute_sigma", "tile", "mesh", "sensors"))
def _fit_fleet(solver: Any, y0: Array, t_u: Array, t_c: Array, weight: Array | None, mask: Array | None, *,
               model: Callable[..., Array], intercept: bool, absolute_sigma: bool, tile: int,
               mesh: Mesh | None, sensors: int) -> tuple[Array, ...]:
    """Every sensor's fit, in one program: the sensors split evenly over ``mesh``'s devices (none: the
    default device), each device's share run ``tile`` fits at a time by the fleet loop (each slot taking
    the next sensor when its fit stops: :func:`jaxcal._iterate.iterate_fleet`), then each fit's
    uncertainty tile by tile (``lax.map`` of ``vmap``).

    ``y0``: ``(rows, k)``; ``t_u``, ``t_c``: ``(rows, n)``; ``weight`` (``1 / sigma``, 0 where masked) and
    ``mask``: ``(rows, n)`` or ``None`` (every reading counts, weight 1). ``rows`` is whole tiles on every
    device: on one device the first ``sensors`` are the fleet and the program pads to whole tiles with
    repeats of the first and drops them; over a mesh the caller placed every device's share, padded
    the same way, and drops the padding from the results on the host. Nothing here moves data between
    devices: with jax 0.10.2, a collective in such a program (a slice of a sharded result) deadlocked
    now and then on 2 CPU devices, XLA aborting the process after 40 s.
    """
    finish = functools.partial(_finish, model=model, intercept=intercept, absolute_sigma=absolute_sigma)
    fn = functools.partial(_residuals, model)

    def share(solver: Any, y0: Array, t_u: Array, t_c: Array, weight: Array | None,
              mask: Array | None) -> tuple[Array, ...]:
        if mask is None:
            mask = jnp.ones(t_u.shape, bool)
        if weight is None:
            weight = mask.astype(t_u.dtype)  # a masked reading weighs nothing, in R² too
        # masked entries may hold anything: the model sees a counted reading of the same sensor there
        first = jnp.take_along_axis(t_u, jnp.argmax(mask, axis=1)[:, None], axis=1)
        t_u = jnp.where(mask, t_u, first)
        t_u = jnp.where(jnp.isfinite(t_u), t_u, jnp.zeros_like(t_u))  # a sensor with no counted reading
        t_c = jnp.where(mask, t_c, jnp.zeros_like(t_c))
        solution = iterate_fleet(solver, fn, y0, (t_u, t_c, weight, mask), slots=tile)
        tiled = tuple(c.reshape(-1, tile, *c.shape[1:])
                      for c in (solution.value, solution.status, solution.steps, t_u, t_c, weight, mask))
        out = jax.lax.map(lambda xs: jax.vmap(finish)(*xs), tiled)
        return tuple(o.reshape(-1, *o.shape[2:]) for o in out)

    if mesh is not None:
        specs = (P(), *(None if c is None else P(_SENSORS) for c in (y0, t_u, t_c, weight, mask)))
        return jax.shard_map(share, mesh=mesh, in_specs=specs, out_specs=P(_SENSORS), check_vma=False)(
            solver, y0, t_u, t_c, weight, mask)
    rows = -(-sensors // tile) * tile
    columns = [None if c is None else jnp.concatenate([c, jnp.broadcast_to(c[:1], (rows - sensors, *c.shape[1:]))])
               for c in (y0, t_u, t_c, weight, mask)]
    return tuple(o[:sensors] for o in share(solver, *columns))


def _placed(values: Any, rows: int, mesh: Mesh) -> Array | None:
    """``values`` (``(sensors, ...)``, on the host) as an array of ``rows`` split evenly over ``mesh``'s
    devices, each device's share copied to it alone; rows past the fleet repeat its first sensor."""
    if values is None:
        return None
    values = np.asarray(values)

    def share(index: tuple[slice, ...]) -> np.ndarray:
        start, stop, _ = index[0].indices(rows)
        mine = values[min(start, len(values)):min(stop, len(values))]
        if len(mine) == stop - start:
            return mine
        return np.concatenate([mine, np.broadcast_to(values[:1], (stop - start - len(mine), *values.shape[1:]))])

    return jax.make_array_from_callback((rows, *values.shape[1:]), NamedSharding(mesh, P(_SENSORS)), share)


def _split(sensors: int, k: int) -> tuple[int, Mesh | None, int]:
    """``(tile, mesh, padded sensors)`` for a fleet of ``sensors`` fits of ``k`` params: every local
    device of the default backend, tiles of at most :data:`TILE` sensors."""
    devices = jax.local_devices()
    # LAPACK's SVD (more params than the Jacobi SVD takes) inside a loop split over several CPU devices
    # hangs with jax 0.10.2 at 10,240 sensors: such fleets stay on one device
    if k > JACOBI_MAX_PARAMS and devices[0].platform == "cpu":
        devices = devices[:1]
    devices = devices[:max(1, min(len(devices), sensors))]
    per_device = -(-sensors // len(devices))
    tile = min(TILE, per_device)
    per_device = -(-per_device // tile) * tile
    mesh = Mesh(np.asarray(devices, dtype=object), (_SENSORS,)) if len(devices) > 1 else None
    return tile, mesh, per_device * len(devices)


def _array(values: Any, name: str) -> Any:
    if isinstance(values, (jax.Array, np.ndarray)):
        return values
    try:
        return np.asarray(values)
    except (TypeError, ValueError):  # e.g. rows of different lengths: shown() would fail the same way
        raise InvalidType(f"{name}: must be an array of numbers, got a {type(values).__name__} NumPy cannot "
                          "make one of") from None


def _floating(values: Any, name: str) -> Any:
    values = _array(values, name)
    if not np.issubdtype(np.dtype(values.dtype), np.floating):
        raise InvalidType(f"{name}: must be a floating-point array, got {shown(values)}")
    return values


def _finite_where(values: Any, mask: np.ndarray | None, name: str) -> None:
    host = np.asarray(values)
    finite = np.isfinite(host)
    if mask is not None:
        finite |= ~mask
    if not finite.all():
        bad = ~finite
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        where = f"reading {index[0]}" if len(index) == 1 else f"sensor {index[0]}, reading {index[1]}"
        raise InvalidInput(f"{name}: {where} is {shown(host[index])}; it must be finite")


def calibrate(t_u: Any, t_c: Any, *, model: str | Callable[..., Array] = "linear", params: Any = None,
              sigma: Any = None, absolute_sigma: bool = False, solver: Any = None, mask: Any = None) -> Calibrated:
    """Fit a model to one sensor's readings, or to every sensor of a fleet, with each fit's uncertainty.

    One compiled program fits the whole fleet (``jax.vmap`` of the single fit); it computes in the
    readings' dtype (float64 only for float64 readings with x64 enabled).

    Args:
      t_u: the readings, shape ``(n,)`` for one sensor or ``(sensors, n)`` for a fleet.
      t_c: the true values, the same shape.
      model: ``"linear"`` or ``"quadratic"`` (:data:`jaxcal.MODELS`), or any JAX function
        ``model(t_u, *params) -> t_p``.
      params: the start, shape ``(k,)`` or ``(sensors, k)``: required for a function with
        :class:`~jaxcal.solvers.LevenbergMarquardt`; ``None`` starts at zeros.
      sigma: each reading's standard uncertainty, a scalar or ``t_c``'s shape; ``None`` is an unweighted
        fit. The fit minimises ``sum(((t_p - t_c) / sigma) ** 2)``.
      absolute_sigma: as SciPy's ``curve_fit``. False (relative sigma): only the ratios of ``sigma``
        matter, and the covariance is scaled by the reduced chi-square ``rss / dof``, so it follows the
        residuals' actual scatter. True (absolute sigma): ``sigma`` are standard uncertainties in
        ``t_c``'s units, and the covariance is ``(J^T J)^-1`` of the weighted Jacobian, unscaled.
      solver: a solver value (:mod:`jaxcal.solvers`); ``None``: ``LeastSquares(known_linear=True)`` for
        a model known to be linear in its params (the named ones, an expression that is a sum of
        param-times-column terms), ``LevenbergMarquardt()`` otherwise.
      mask: which readings count, bool of ``t_u``'s shape (a ragged fleet padded to one length; padded
        entries may hold anything, NaN too); ``None``: all of them. ``dof`` counts only those kept.

    Returns:
      A :class:`Calibrated`: params, stderr, cov, rss, dof, residual_sd, r_squared, status, steps and
      param_names, with a leading ``sensors`` axis for a fleet.

    Raises:
      ValueError, TypeError: one line naming the argument, for input the fit cannot use.

    >>> from jaxcal import data
    >>> fit = calibrate(data.t_u, data.t_c)
    >>> fit.param_names, [round(float(p), 3) for p in fit.params], calibrate.__module__
    (('w', 'b'), [0.537, -17.305], 'jaxcal.calibrate')
    """
    spec = resolve_model(model)
    t_u, t_c = _floating(t_u, "t_u"), _floating(t_c, "t_c")
    if t_u.ndim not in (1, 2):
        raise InvalidInput(f"t_u: must be (n,) for one sensor or (sensors, n) for a fleet, got shape {t_u.shape}")
    if t_c.shape != t_u.shape:
        raise InvalidInput(f"t_c: must have t_u's shape {tuple(t_u.shape)}, got {tuple(t_c.shape)}")
    if t_u.shape[-1] < 1 or (t_u.ndim == 2 and t_u.shape[0] < 1):
        raise InvalidInput(f"t_u: needs at least one reading, got shape {tuple(t_u.shape)}")
    if not isinstance(absolute_sigma, (bool, np.bool_)):
        raise InvalidType(f"absolute_sigma: must be True or False, got {shown(absolute_sigma)}")
    dtype = jax.dtypes.canonicalize_dtype(np.result_type(t_u.dtype, t_c.dtype))
    single = t_u.ndim == 1

    if mask is None:
        counted = None
    else:
        counted = np.asarray(_array(mask, "mask"))
        if counted.dtype != np.bool_:
            raise InvalidType(f"mask: must be a bool array, got {shown(mask)}")
        if counted.shape != tuple(t_u.shape):
            raise InvalidInput(f"mask: must have t_u's shape {tuple(t_u.shape)}, got {counted.shape}")
    _finite_where(t_u, counted, "t_u")
    _finite_where(t_c, counted, "t_c")
    _checks.check_fits(t_u, dtype, "t_u", "reading")
    _checks.check_fits(t_c, dtype, "t_c", "reading")

    weight = None
    if sigma is not None:
        sigma = _array(sigma, "sigma")
        if np.issubdtype(np.dtype(sigma.dtype), np.integer):  # sigma=1: a number of t_c's units
            sigma = np.asarray(sigma, np.float64)
        sigma = _floating(sigma, "sigma")
        if sigma.ndim and tuple(sigma.shape) != tuple(t_u.shape):
            raise InvalidInput(f"sigma: must be a scalar or have t_u's shape {tuple(t_u.shape)}, got {sigma.shape}")
        host = np.broadcast_to(np.asarray(sigma, np.float64), t_u.shape)
        counts = np.ones(t_u.shape, bool) if counted is None else counted
        bad = counts & ~(np.isfinite(host) & (host > 0))
        if bad.any():
            index = tuple(int(i) for i in np.argwhere(bad)[0])
            raise InvalidInput(f"sigma: {shown(host[index])} at index {index if len(index) > 1 else index[0]} "
                               "must be positive and finite")
        weight = np.where(counts, 1.0 / np.where(counts, host, 1.0), 0.0).astype(dtype)

    if solver is None:
        solver = LeastSquares(known_linear=True) if spec.linear else LevenbergMarquardt()
    elif isinstance(solver, type):
        raise InvalidType(f"solver: pass a solver value, e.g. {solver.__name__}(), not the class")
    elif not all(callable(getattr(solver, method, None)) for method in ("init", "step", "terminate")):
        raise InvalidType(f"solver: must be a solver value (jaxcal.solvers), got {shown(solver)}")

    if params is None:
        if spec.init is None and not isinstance(solver, LeastSquares):  # a function or an expression
            raise InvalidInput("params: a model function needs start values (one per parameter)")
        if not spec.param_names:
            raise InvalidInput("params: give start values: the model's signature does not name its parameters")
        k = spec.n_params
        start = np.zeros(k, dtype)
    else:
        start = _checks.fit_dtype(_array(params, "params"), dtype, "params")
        if start.ndim not in (1, 2) or (start.ndim == 2 and single):
            raise InvalidInput(f"params: must be (k,) or (sensors, k), got shape {start.shape}")
        k = start.shape[-1]
        if spec.param_names and k != spec.n_params:
            raise InvalidInput(f"params: the model takes {spec.n_params} ({', '.join(spec.param_names)}), got {k}")
        if not np.isfinite(start).all():
            raise InvalidInput(f"params: must be finite, got {shown(start)}")
    names = spec.param_names or tuple(f"p{i}" for i in range(k))

    _checks.check_model(spec.fn, (t_u.shape[-1],), k, dtype)
    sensors = 1 if single else t_u.shape[0]
    if start.ndim == 2 and start.shape[0] != sensors:
        raise InvalidInput(f"params: has {start.shape[0]} rows for {sensors} sensors")

    def fleet_shaped(values: Any) -> Any:
        return None if values is None else values.reshape(sensors, -1)

    y0 = np.broadcast_to(np.asarray(start, dtype), (sensors, k))
    columns = [y0, *(fleet_shaped(np.asarray(c, dtype)) for c in (t_u, t_c)), fleet_shaped(weight),
               fleet_shaped(counted)]
    tile, mesh, rows = _split(sensors, k)
    if mesh is not None:  # every device's share placed on it alone
        columns = [_placed(c, rows, mesh) for c in columns]
    out = _fit_fleet(solver, *columns, model=spec.fn, intercept=spec.intercept, absolute_sigma=bool(absolute_sigma),
                     tile=tile, mesh=mesh, sensors=sensors)
    if mesh is not None:  # each device's results copied to the host, the padding dropped there
        out = tuple(jnp.asarray(np.asarray(o)[:sensors]) for o in out)
    if single:
        out = tuple(value[0] for value in out)
    return Calibrated(*out, param_names=names)
