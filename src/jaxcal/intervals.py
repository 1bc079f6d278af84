"""Converted readings with their intervals: a calibration's model applied to new readings, with the
confidence band of the mean or the prediction interval of a new reading.

Each reading's half-width is ``t * sqrt(g^T cov g)`` (confidence) or ``t * sqrt(g^T cov g +
residual_sd**2)`` (prediction), ``g`` the model's gradient in its params at the reading (exact for a
model linear in its params, the delta method otherwise) and ``t`` Student's t quantile at
``(1 + level) / 2`` with the fit's ``dof``: the formula of an OLS prediction (statsmodels'
``get_prediction``) for the linear models.

Weighted fits: :func:`jaxcal.calibrate` reports ``residual_sd`` as ``sqrt(chi2 / dof)``, in the units of
the weighted residuals ``(t_p - t_c) / sigma``. The prediction interval adds ``residual_sd**2`` as given,
as a variance in ``t_c``'s units: right for an unweighted fit. For a weighted one, pass the new
reading's own standard deviation in ``t_c``'s units as ``residual_sd`` (one per reading where they
differ): ``fit.residual_sd * sigma_new`` with relative sigma, ``sigma_new`` with ``absolute_sigma=True``
(and ``dof=None``: the scale is known, not estimated, and the quantile is the normal one).

The t quantiles are computed on the host (SciPy), once per distinct ``dof``; everything per reading
runs in one compiled program that follows the inputs' dtype.
"""

from __future__ import annotations

import functools
import numbers
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ._checks import InvalidInput, InvalidType, check_model, shown
from .core import resolve_model

__all__ = ["INTERVALS", "Prediction", "TablePredictor", "predict", "predict_table", "table_predictor"]

Array = jax.Array

#: The intervals :func:`predict` computes: the band of the mean, or where a new reading falls.
INTERVALS = ("prediction", "confidence")


class Prediction(NamedTuple):
    """Converted readings and their interval, each of ``t_u``'s shape.

    Attributes:
      t_c: the converted readings, ``model(t_u, *params)``.
      low: the interval's lower end, ``t_c - half_width``.
      high: its upper end, ``t_c + half_width``.
    """

    t_c: Array
    low: Array
    high: Array


def _quantiles(dof: np.ndarray | None, level: float, shape: tuple[int, ...]) -> np.ndarray:
    """Student's t quantile at ``(1 + level) / 2`` for each ``dof`` (float64, ``shape``): NaN where
    ``dof`` is not a positive number; the normal quantile for ``dof=None`` (a known scale)."""
    from scipy import stats  # SciPy comes with JAX; imported where needed

    q = (1.0 + level) / 2.0
    if dof is None:
        return np.full(shape, float(stats.norm.ppf(q)))
    dof = np.broadcast_to(np.asarray(dof, np.float64), shape)
    distinct, where = np.unique(dof, return_inverse=True)  # a fleet shares a few dof: one ppf each
    usable = np.isfinite(distinct) & (distinct > 0)
    values = np.full(distinct.shape, np.nan)
    values[usable] = stats.t.ppf(q, distinct[usable])
    return values[where].reshape(shape)


def _level(level: Any) -> float:
    if isinstance(level, (bool, np.bool_)) or not isinstance(level, (numbers.Real, np.floating, np.integer)):
        raise InvalidType(f"level: must be a number between 0 and 1, got {shown(level)}")
    value = float(level)
    if not (0.0 < value < 1.0):
        raise InvalidInput(f"level: must lie strictly between 0 and 1, got {shown(level)}")
    return value


def _interval(interval: Any, residual_sd: Any) -> bool:
    """Whether the prediction interval is asked for (else the confidence band)."""
    if not isinstance(interval, str) or interval not in INTERVALS:
        raise InvalidInput(f"interval: must be one of {', '.join(INTERVALS)}, got {shown(interval)}")
    if interval == "prediction" and residual_sd is None:
        raise InvalidInput("residual_sd: the prediction interval needs the fit's residual_sd "
                           "(or interval='confidence')")
    return interval == "prediction"


def _float_array(values: Any, name: str) -> Any:
    if not isinstance(values, (jax.Array, np.ndarray)):
        try:
            values = np.asarray(values)
        except (TypeError, ValueError):
            raise InvalidType(f"{name}: must be an array of numbers, got {shown(values)}") from None
    if not np.issubdtype(np.dtype(values.dtype), np.floating):
        if np.issubdtype(np.dtype(values.dtype), np.integer) and name != "t_u":
            return np.asarray(values, np.float64)  # e.g. residual_sd=1
        raise InvalidType(f"{name}: must be a floating-point array, got {shown(values)}")
    return values


def _shaped(values: Any, name: str, shapes: tuple[tuple[int, ...], ...], said: str) -> Any:
    if tuple(np.shape(values)) not in shapes:
        raise InvalidInput(f"{name}: must have shape {said}, got {tuple(np.shape(values))}")
    return values


def _spec_and_k(model: Any, params: Any) -> tuple[Callable[..., Array], int]:
    spec = resolve_model(model)
    k = int(np.shape(params)[-1]) if np.ndim(params) else 0
    if k < 1:
        raise InvalidInput(f"params: must be (k,) or (rows, k) with k >= 1, got shape {tuple(np.shape(params))}")
    if spec.param_names and k != spec.n_params:
        raise InvalidInput(f"params: the model takes {spec.n_params} ({', '.join(spec.param_names)}), got {k}")
    return spec.fn, k


def _table(params: Any, cov: Any, residual_sd: Any, dof: Any, level: float, prediction: bool, dtype: Any,
           rows: int) -> Array:
    """Each calibration's numbers as one column: ``k`` params, the upper triangle of ``t**2 cov`` (row by
    row) and ``t**2 residual_sd**2`` (0 for the confidence band): ``(k + k(k+1)/2 + 1, rows)``, one
    field per row, so that a log gathers each field from a contiguous 1-D table (XLA fuses such
    gathers into the pass over the readings; a gather of whole rows it materialises first).

    Scaling by ``t**2`` here, once per calibration, leaves a square root per reading and nothing else;
    NaN ``t`` (``dof <= 0``) makes the row's interval NaN.
    """
    t = _quantiles(None if dof is None else np.asarray(dof), level, (rows,))
    return _pack(jnp.asarray(params, dtype), jnp.asarray(cov, dtype),
                 jnp.zeros((rows,), dtype) if not prediction else jnp.broadcast_to(jnp.asarray(residual_sd, dtype),
                                                                                   (rows,)),
                 jnp.asarray(t, dtype))


@jax.jit
def _pack(params: Array, cov: Array, residual_sd: Array, t: Array) -> Array:
    k = params.shape[-1]
    t2 = t * t
    upper = [cov[:, i, j] * t2 for i in range(k) for j in range(i, k)]
    columns = [params[:, i] for i in range(k)] + upper + [residual_sd * residual_sd * t2]
    return jnp.stack(columns, axis=0)


def _evaluate(fn: Callable[..., Array], k: int, t_u: Array, row: tuple[Array, ...]) -> tuple[Array, Array, Array]:
    """One reading through one calibration's packed fields ``row`` (see :func:`_table`); vmapped over
    readings."""
    p = jnp.stack(row[:k])

    def at(p: Array) -> Array:
        return fn(t_u, *(p[i] for i in range(k)))

    t_c, g = at(p), jax.jacfwd(at)(p)
    # g^T A g over the upper triangle, written out: elementwise under vmap, so XLA fuses the gather,
    # the model and the square root into one pass over the readings
    variance = row[-1]
    index = k
    for i in range(k):
        for j in range(i, k):
            term = row[index] * g[i] * g[j]
            variance = variance + (term if i == j else 2 * term)
            index += 1
    half = jnp.sqrt(variance)
    nan = jnp.asarray(jnp.nan, t_c.dtype)
    t_c = jnp.where(jnp.isfinite(t_u), t_c, nan)
    return t_c, t_c - half, t_c + half


@functools.partial(jax.jit, static_argnames=("fn", "k"))
def _per_row(t_u: Array, table: Array, *, fn: Callable[..., Array], k: int) -> tuple[Array, Array, Array]:
    return jax.vmap(functools.partial(_evaluate, fn, k))(t_u, tuple(table))


@functools.partial(jax.jit, static_argnames=("fn", "k"))
def _shared(t_u: Array, row: Array, *, fn: Callable[..., Array], k: int) -> tuple[Array, Array, Array]:
    return jax.vmap(functools.partial(_evaluate, fn, k), in_axes=(0, None))(t_u, tuple(row))


@functools.partial(jax.jit, static_argnames=("fn", "k"))
def _gathered(t_u: Array, rows: Array, table: Array, *, fn: Callable[..., Array], k: int) -> tuple[Array, ...]:
    # a NaN row before the first calibration is what rows == -1 reads; the caller checked the range
    table = jnp.concatenate([jnp.full((table.shape[0], 1), jnp.nan, table.dtype), table], axis=1)
    index = rows + 1
    picked = tuple(field.at[index].get(mode="promise_in_bounds") for field in table)
    return jax.vmap(functools.partial(_evaluate, fn, k))(t_u, picked)


def _dtype(*values: Any) -> Any:
    return jax.dtypes.canonicalize_dtype(np.result_type(*(np.dtype(v.dtype) for v in values)))


def _common(level: Any, interval: Any, residual_sd: Any, t_u: Any, params: Any, cov: Any) -> tuple:
    """The arguments both entry points check alike: ``(level, prediction?, t_u, params, cov)``."""
    level = _level(level)
    prediction = _interval(interval, residual_sd)
    t_u = _float_array(t_u, "t_u")
    params = _float_array(params, "params")
    cov = _float_array(cov, "cov")
    if t_u.ndim != 1:
        raise InvalidInput(f"t_u: must be 1-D (one value per reading), got shape {tuple(t_u.shape)}")
    return level, prediction, t_u, params, cov


def predict(t_u: Any, params: Any, cov: Any, *, model: Any = "linear", residual_sd: Any = None, dof: Any = None,
            level: float = 0.95, interval: str = "prediction") -> Prediction:
    """Convert readings through a calibration, each with its confidence or prediction interval.

    One calibration for every reading (``params (k,)``), or one per reading (``params (m, k)``: reading
    ``i`` through row ``i``'s calibration, e.g. a fleet's :class:`~jaxcal.Calibrated` gathered per
    reading); one compiled program either way, computing in the inputs' dtype.

    Args:
      t_u: the readings, shape ``(m,)``.
      params: the fitted params, ``(k,)`` or ``(m, k)`` (a :class:`~jaxcal.Calibrated`'s ``params``).
      cov: their covariance, ``(k, k)`` or ``(m, k, k)``.
      model: ``"linear"``, ``"quadratic"`` or the function the calibration fitted.
      residual_sd: the scatter of a new reading about the model, in ``t_c``'s units (the fit's
        ``residual_sd`` for an unweighted fit; see the module's note on weighted fits): a scalar or one
        per reading, ``(m,)``. Required for the prediction interval, unused for the confidence band.
      dof: the fit's degrees of freedom, a scalar or ``(m,)``: Student's t quantile; ``None`` takes the
        normal quantile (a scale known, not estimated: ``absolute_sigma=True``).
      level: the interval's coverage, strictly between 0 and 1.
      interval: ``"prediction"`` (where a new reading's true value falls: the model's uncertainty and
        the reading's own scatter) or ``"confidence"`` (the band of the mean, the model's alone).

    Returns:
      A :class:`Prediction` ``(t_c, low, high)``, each ``(m,)``. A reading that is not finite, or a
      calibration with NaN params, gives NaN in all three; ``dof <= 0`` or a NaN ``cov`` gives NaN
      ``low`` and ``high``.

    Raises:
      ValueError, TypeError: one line naming the argument (a level outside (0, 1), an unknown interval,
      shapes that do not match).

    >>> import numpy as np
    >>> p = predict(np.array([40.0, 60.0], np.float32), np.array([0.5, -17.0], np.float32),
    ...             np.diag(np.array([1e-4, 0.25], np.float32)), residual_sd=1.0, dof=9)
    >>> [round(float(v), 2) for v in p.t_c], [round(float(v), 2) for v in p.high - p.t_c]
    ([3.0, 13.0], [2.69, 2.87])
    """
    level, prediction, t_u, params, cov = _common(level, interval, residual_sd, t_u, params, cov)
    m = t_u.shape[0]
    if params.ndim not in (1, 2):
        raise InvalidInput(f"params: must be (k,) for one calibration or ({m}, k) for one per reading, "
                           f"got shape {tuple(params.shape)}")
    fn, k = _spec_and_k(model, params)
    per_row = params.ndim == 2
    if per_row:
        _shaped(params, "params", ((m, k),), f"({m}, {k}), one row per reading")
        _shaped(cov, "cov", ((m, k, k),), f"({m}, {k}, {k}), one per reading")
    else:
        _shaped(cov, "cov", ((k, k),), f"({k}, {k})")
    scalars = []
    for name, value in (("residual_sd", residual_sd if prediction else None), ("dof", dof)):
        if value is not None:
            value = _float_array(value, name) if name == "residual_sd" else np.asarray(value)
            _shaped(value, name, ((), (m,)), f"() or ({m},)")
        scalars.append(value)
    residual_sd, dof = scalars
    if dof is not None and not (np.issubdtype(dof.dtype, np.integer) or np.issubdtype(dof.dtype, np.floating)):
        raise InvalidType(f"dof: must be numbers, got {shown(dof)}")
    dtype = _dtype(t_u, params, cov, *(() if residual_sd is None else (residual_sd,)))
    check_model(fn, (), k, dtype)
    t_u = jnp.asarray(t_u, dtype)
    shared = not per_row and (dof is None or dof.ndim == 0) and (residual_sd is None or residual_sd.ndim == 0)
    if shared:  # one calibration, one row: every reading reads the same numbers
        table = _table(params[None], cov[None], residual_sd, dof, level, prediction, dtype, 1)
        return Prediction(*_shared(t_u, table[:, 0], fn=fn, k=k))
    if not per_row:  # residual_sd or dof per reading: the calibration repeated per reading
        params = jnp.broadcast_to(jnp.asarray(params, dtype), (m, k))
        cov = jnp.broadcast_to(jnp.asarray(cov, dtype), (m, k, k))
    table = _table(params, cov, residual_sd, dof, level, prediction, dtype, m)
    return Prediction(*_per_row(t_u, table, fn=fn, k=k))


@jax.jit
def _row_range(rows: Array) -> tuple[Array, Array]:
    return jnp.min(rows), jnp.max(rows)


def predict_table(t_u: Any, rows: Any, params: Any, cov: Any, residual_sd: Any = None, dof: Any = None, *,
                  model: Any = "linear", level: float = 0.95, interval: str = "prediction") -> Prediction:
    """Convert a log of readings from many sensors, each through its sensor's calibration.

    ``rows[i]`` is the index of reading ``i``'s sensor in the calibration arrays (a fleet's
    :class:`~jaxcal.Calibrated`, in its order), ``-1`` for a sensor without a calibration: its reading
    converts to NaN. Each calibration's numbers are packed into one row once (its t quantile and
    ``cov`` folded together); the readings then take one gather and one fused pass in one compiled
    program.

    Args:
      t_u: the readings, shape ``(n,)``.
      rows: each reading's calibration, integers of shape ``(n,)`` in ``[-1, sensors)``.
      params: the calibrations' params, ``(sensors, k)``.
      cov: their covariances, ``(sensors, k, k)``.
      residual_sd: each calibration's residual SD, ``(sensors,)`` or a scalar (see :func:`predict`).
      dof: each calibration's degrees of freedom, ``(sensors,)`` or a scalar; ``None``: normal quantile.
      model, level, interval: as :func:`predict`.

    Returns:
      A :class:`Prediction`, each ``(n,)``; NaN for ``rows == -1`` and as :func:`predict` says.

    Raises:
      ValueError, TypeError: one line naming the argument, a row index out of range among them.

    >>> import numpy as np
    >>> p = predict_table(np.array([40.0, 40.0, 40.0], np.float32), np.array([1, -1, 0]),
    ...                   np.array([[0.5, -17.0], [0.6, -18.0]], np.float32), np.zeros((2, 2, 2), np.float32),
    ...                   interval="confidence", dof=np.array([9, 9]))
    >>> [round(float(v), 2) for v in p.t_c]
    [6.0, nan, 3.0]
    """
    _common(level, interval, residual_sd, t_u, params, cov)  # the readings' checks first, as predict's
    return table_predictor(params, cov, residual_sd, dof, model=model, level=level, interval=interval)(t_u, rows)


class TablePredictor:
    """:func:`predict_table`'s calibrations, checked and packed once (:func:`table_predictor`): called
    with ``(t_u, rows)``, it gives what ``predict_table(t_u, rows, ...)`` gives."""

    def __init__(self, params: Any, cov: Any, residual_sd: Any, dof: Any, model: Any, level: Any,
                 interval: Any) -> None:
        self.level = _level(level)
        self.prediction = _interval(interval, residual_sd)
        params, cov = _float_array(params, "params"), _float_array(cov, "cov")
        if params.ndim != 2:
            raise InvalidInput(f"params: must be (sensors, k), got shape {tuple(params.shape)}")
        self.fn, self.k = _spec_and_k(model, params)
        self.sensors = params.shape[0]
        _shaped(cov, "cov", ((self.sensors, self.k, self.k),), f"({self.sensors}, {self.k}, {self.k})")
        if self.prediction:
            residual_sd = _float_array(residual_sd, "residual_sd")
            _shaped(residual_sd, "residual_sd", ((), (self.sensors,)), f"() or ({self.sensors},)")
        if dof is not None:
            dof = np.asarray(dof)
            _shaped(dof, "dof", ((), (self.sensors,)), f"() or ({self.sensors},)")
        self.params, self.cov, self.residual_sd, self.dof = params, cov, residual_sd, dof
        self._tables: dict[Any, Array] = {}  # by dtype: packed once for each the readings come in

    def __call__(self, t_u: Any, rows: Any) -> Prediction:
        t_u = _float_array(t_u, "t_u")
        if t_u.ndim != 1:
            raise InvalidInput(f"t_u: must be 1-D (one value per reading), got shape {tuple(t_u.shape)}")
        if not isinstance(rows, (jax.Array, np.ndarray)):
            rows = np.asarray(rows)
        if not np.issubdtype(np.dtype(rows.dtype), np.integer):
            raise InvalidType(f"rows: must be integers (each reading's calibration), got {shown(rows)}")
        _shaped(rows, "rows", (tuple(t_u.shape),), f"{tuple(t_u.shape)}, t_u's")
        if rows.size:
            ends = _row_range(rows) if isinstance(rows, jax.Array) else (rows.min(), rows.max())
            low, high = (int(v) for v in ends)
            if low < -1 or high >= self.sensors:
                bad = low if low < -1 else high
                raise InvalidInput(f"rows: {bad} is not a calibration's index: each must be -1 (none) or in "
                                   f"[0, {self.sensors})")
        dtype = _dtype(t_u, self.params, self.cov, *((self.residual_sd,) if self.prediction else ()))
        if dtype not in self._tables:
            check_model(self.fn, (), self.k, dtype)
            self._tables[dtype] = _table(self.params, self.cov, self.residual_sd, self.dof, self.level,
                                         self.prediction, dtype, self.sensors)
        index_dtype = np.int32 if self.sensors < 2**31 - 1 else np.int64
        return Prediction(*_gathered(jnp.asarray(t_u, dtype), jnp.asarray(rows, index_dtype), self._tables[dtype],
                                     fn=self.fn, k=self.k))


def table_predictor(params: Any, cov: Any, residual_sd: Any = None, dof: Any = None, *, model: Any = "linear",
                    level: float = 0.95, interval: str = "prediction") -> TablePredictor:
    """:func:`predict_table` for a log converted a part at a time: the calibrations are checked, and
    packed with their t quantiles, once (for a fleet of 100,000 that is ~10 ms a part saved).

    Args:
      params, cov, residual_sd, dof, model, level, interval: as :func:`predict_table`.

    Returns:
      A :class:`TablePredictor`: ``predictor(t_u, rows)`` is ``predict_table(t_u, rows, params, cov, ...)``.

    Raises:
      ValueError, TypeError: as :func:`predict_table`, for these arguments here and for ``t_u`` and
        ``rows`` at each call.

    >>> import numpy as np
    >>> convert = table_predictor(np.array([[0.5, -17.0]], np.float32), np.zeros((1, 2, 2), np.float32),
    ...                           interval="confidence", dof=9)
    >>> [[round(float(v), 2) for v in convert(np.array(part, np.float32), np.zeros(len(part), int)).t_c]
    ...  for part in ([40.0, 60.0], [80.0])]
    [[3.0, 13.0], [23.0]]
    """
    return TablePredictor(params, cov, residual_sd, dof, model, level, interval)
