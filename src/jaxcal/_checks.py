"""Input checks shared by the library and the CLI, so both say the same words.

Each check takes the name the caller knows the value by (``learning_rate`` in the library,
``--lr`` on the command line) and raises :class:`InvalidInput` (a ``ValueError``) or
:class:`InvalidType` (a ``TypeError``) with a one-line message: ``<name>: <what is wrong>``.
"""

from __future__ import annotations

import copy
import functools
import math
import numbers
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "MAX_EPOCHS",
    "InputError",
    "InvalidInput",
    "InvalidType",
    "UnexpectedHeader",
    "check_finite_array",
    "check_fits",
    "check_learning_rate",
    "check_model",
    "check_positive_int",
    "check_readings",
    "fit_dtype",
    "shown",
]

#: The most epochs a run can have: the compiled loop counts epochs (and numbers the history's
#: rows) in int32.
MAX_EPOCHS = 2**31 - 1


class InputError(Exception):
    """Base of jaxcal's bad-input errors: the CLI turns these into one line and exit status 2.

    Attributes:
      name: the argument as the library knows it (``learning_rate``), or the file the value
        came from; the command line maps it to its flag (``--lr``).
      problem: what is wrong with it.

    Raised as ``InvalidInput("learning_rate", "must be positive")`` or with the message whole,
    ``InvalidInput("learning_rate: must be positive")``; ``str()`` is ``"name: problem"``.
    """

    def __init__(self, name: str, problem: str | None = None) -> None:
        if problem is None:
            name, _, problem = name.partition(": ")
        self.name, self.problem = name, problem
        super().__init__(f"{name}: {problem}" if problem else name)

    def renamed(self, name: str) -> InputError:
        """The same error, of the same class and with its other attributes, about ``name`` (the flag
        that gave the argument the library names)."""
        error = copy.copy(self)
        error.name = name
        error.args = (f"{name}: {self.problem}" if self.problem else name,)
        return error


class InvalidInput(InputError, ValueError):
    """A value of the right kind that jaxcal cannot use."""


class InvalidType(InputError, TypeError):
    """A value of the wrong kind."""


class UnexpectedHeader(InvalidInput):
    """A table whose header is not the one its reader expects.

    Attributes:
      roles: the roles the reader needs a column for (``("sensor", "t_u", "t_c")``): the command line
        answers with the ``--columns`` that would name them.
    """

    def __init__(self, name: str, problem: str | None = None, roles: tuple[str, ...] = ()) -> None:
        super().__init__(name, problem)
        self.roles = tuple(roles)

    def __reduce__(self) -> tuple:  # pickled with its roles (an error sent from a worker process)
        return type(self), (self.name, self.problem, self.roles)


def _is_concrete(value: Any) -> bool:
    # Traced values (inside jit or vmap) cannot be inspected; they are checked where they enter.
    # Nor can a multi-process array's other shares: each process checks its own.
    if isinstance(value, jax.core.Tracer):
        return False
    if isinstance(value, jax.Array):
        return value.is_fully_addressable
    try:
        np.asarray(value)
    except Exception:
        return False
    return True


@jax.jit
def _all_finite(values: Any) -> Any:
    return jnp.all(jnp.isfinite(values))


def _number(value: Any) -> str:
    # as Python prints a float (nan, inf, 1e+40, 0.01), never NumPy's np.float64(nan)
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        return repr(float(value))
    return repr(complex(value))


def shown(value: Any, most: int = 3) -> str:
    """``value`` in plain text for a one-line message, bounded whatever its size.

    Args:
      value: a number, a string, an array or any object.
      most: the most values of an array to show.

    Returns:
      Numbers as Python prints floats (``nan``, ``inf``, ``1e+40``); an array as its shape,
      dtype and first values; a string quoted and cut at 40 characters; any other object as
      its type.
    """
    if isinstance(value, str):
        return repr(value) if len(value) <= 40 else repr(value[:40])[:-1] + "...'"
    if isinstance(value, (numbers.Number, np.generic)):
        return _number(value)
    if isinstance(value, (list, tuple, np.ndarray, jax.Array)):
        if not _is_concrete(value):
            return f"a traced array of shape {tuple(np.shape(value))}"
        try:
            array = np.asarray(value)
        except Exception:  # a ragged list: not an array
            return f"a {type(value).__name__} of {len(value)} items"
        if array.dtype.kind in "biufc":
            if array.ndim == 0:
                return _number(array.item())
            flat = array.reshape(-1)
            values = ", ".join(_number(v) for v in flat[:most].tolist()) + (", ..." if flat.size > most else "")
            return f"{array.size} values of shape {array.shape} ({array.dtype}: {values})"
        return f"a {type(value).__name__} of shape {array.shape} and dtype {array.dtype}"
    return f"a {type(value).__module__.partition('.')[0]}.{type(value).__name__}".replace("a builtins.", "a ")


def _first(mask: np.ndarray) -> tuple[int, ...] | int:
    index = tuple(int(i) for i in np.unravel_index(int(np.argmax(mask.reshape(-1))), mask.shape))
    return index[0] if len(index) == 1 else index


def check_positive_int(value: Any, name: str, most: int | None = None) -> int:
    """An integer >= 1 (epochs, log interval), and at most ``most``; bools and floats are refused."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InvalidType(f"{name}: must be a positive integer, got {shown(value)}")
    if value < 1:
        raise InvalidInput(f"{name}: must be a positive integer, got {shown(value)}")
    if most is not None and value > most:
        raise InvalidInput(f"{name}: must be at most {most}, got {shown(value)}")
    return int(value)


@functools.cache
def _limits(dtype: np.dtype) -> tuple[float, float]:
    """The smallest magnitude that rounds to infinity in ``dtype`` (halfway from its largest
    finite number to the next power of two), and its smallest normal number, as float64."""
    info = np.finfo(dtype)
    half_ulp = 2.0 ** (info.maxexp - 2 - info.nmant)  # half the spacing of numbers near the largest
    return float(info.max) + half_ulp, float(info.tiny)


def fit_dtype(values: Any, dtype: Any, name: str, *, nonzero: bool = False) -> np.ndarray:
    """``values`` as a NumPy array of ``dtype``, refusing numbers that do not fit it: those that
    overflow to infinity and, with ``nonzero``, nonzero ones that underflow to 0 (a learning
    rate or a scale that would silently become 0)."""
    overflows, smallest = _limits(np.dtype(dtype))
    # Python numbers (the usual learning rate and initial params) are checked without arrays
    numbers_ = [values] if isinstance(values, (float, int)) else values if isinstance(values, (list, tuple)) else None
    if numbers_ is not None and all(type(v) in (float, int) for v in numbers_) and all(
            abs(v) < overflows and (not nonzero or abs(v) >= smallest or v == 0) for v in numbers_):
        return np.asarray(values, dtype)
    try:
        wide = np.asarray(values, np.float64)  # compared in float64: a float32 limit would overflow itself
    except OverflowError:  # a Python integer beyond float64
        raise InvalidInput(f"{name}: does not fit {np.dtype(dtype).name}: {shown(values)}") from None
    except (TypeError, ValueError):  # strings, objects, ragged lists
        raise InvalidType(f"{name}: must be numbers, got {shown(values)}") from None
    magnitude = np.abs(wide)
    name_of = np.dtype(dtype).name
    overflow = (magnitude >= overflows) & np.isfinite(wide)  # NaN and inf are check_finite_array's to refuse
    if overflow.any():
        raise InvalidInput(f"{name}: {_number(wide[overflow].flat[0])} does not fit {name_of} "
                           f"(largest {float(np.finfo(dtype).max):.7g}){_at(overflow)}")
    # below the smallest normal number: 0, or a subnormal that XLA's CPU code flushes to 0
    underflow = (magnitude < smallest) & (wide != 0) if nonzero else np.zeros((), bool)
    if underflow.any():
        raise InvalidInput(f"{name}: {_number(wide[underflow].flat[0])} is too small for {name_of} "
                           f"(smallest normal {smallest:.7g}){_at(underflow)}")
    return np.asarray(wide, dtype)  # every value fits: the cast neither overflows nor warns


def _at(mask: np.ndarray) -> str:
    return f" at index {_first(mask)}" if mask.ndim else ""


def check_fits(values: Any, dtype: Any, name: str, item: str = "value") -> None:
    """Refuse finite entries of a concrete float array that overflow ``dtype`` (float64 readings
    a float32 fit would turn into infinities). ``item`` names one entry (``"reading"``)."""
    if not _is_concrete(values) or np.dtype(values.dtype).itemsize <= np.dtype(dtype).itemsize:
        return  # nothing wider than the fit's dtype to narrow
    overflows, _ = _limits(np.dtype(dtype))
    wide = np.asarray(values)
    overflow = np.abs(wide) >= overflows
    if overflow.any():  # NaN and inf compare False: check_finite_array's to refuse
        raise InvalidInput(f"{name}: {_where(item, overflow)} is {_number(wide[overflow].flat[0])}, which does not "
                           f"fit {np.dtype(dtype).name}, the dtype the fit computes in "
                           f"(largest {float(np.finfo(dtype).max):.7g})")


def _where(item: str, mask: np.ndarray) -> str:
    index = _first(mask)
    if isinstance(index, int):
        return f"{item} {index}"
    if item == "reading" and len(index) == 2:  # a fleet's (sensors, readings) table
        return f"sensor {index[0]}, reading {index[1]}"
    return f"{item} at index {index}"


def check_learning_rate(value: Any, name: str = "learning_rate") -> Any:
    """A positive finite number; traced values pass through unchecked."""
    if isinstance(value, (bool, str)):
        raise InvalidType(f"{name}: must be a positive finite number, got {shown(value)}")
    if not _is_concrete(value):
        return value
    array = np.asarray(value)
    if array.shape != () or not np.issubdtype(array.dtype, np.number):
        raise InvalidType(f"{name}: must be a positive finite number, got {shown(value)}")
    as_float = float(array)
    if not (math.isfinite(as_float) and as_float > 0):
        raise InvalidInput(f"{name}: must be a positive finite number, got {as_float!r}")
    return value


def check_finite_array(values: Any, name: str, item: str = "value") -> None:
    """Refuse NaN or infinite entries in a concrete array (traced arrays pass); the message names
    the first one by ``item`` (``"reading"``) and index, and its value."""
    if isinstance(values, np.ndarray):  # the common case first: a few microseconds per call count
        finite = bool(np.isfinite(values).all())
    elif not _is_concrete(values):
        return
    elif isinstance(values, jax.Array) and any(d.platform != "cpu" for d in values.devices()):
        # on the accelerator: one bool crosses to the host, not the readings (measured on an
        # H200, copying 1e7 readings out for the check cost 12 ms per call)
        finite = bool(_all_finite(values))
    else:
        finite = bool(np.isfinite(np.asarray(values)).all())
    if not finite:
        values = np.asarray(values)  # refused: the copy to the host is the message's
        bad = ~np.isfinite(values)
        raise InvalidInput(f"{name}: {_where(item, bad)} is {_number(values[bad].flat[0])}; it must be finite")


def check_readings(t_u: Any, t_c: Any, prefix: str = "") -> None:
    """Readings and targets: 1-D, the same length, at least 2 of them, floating, finite."""
    if (type(t_u) is np.ndarray and type(t_c) is np.ndarray and t_u.dtype.kind == "f" and t_c.dtype.kind == "f"
            and t_u.ndim == 1 and t_u.shape == t_c.shape and t_u.shape[0] >= 2
            and np.isfinite(t_u).all() and np.isfinite(t_c).all()):
        return  # the usual NumPy readings, checked in a few microseconds; else say what is wrong
    for name, values in ((prefix + "t_u", t_u), (prefix + "t_c", t_c)):
        dtype = getattr(values, "dtype", None)
        if dtype is None or not (getattr(dtype, "kind", None) == "f" or np.issubdtype(np.dtype(dtype), np.floating)):
            raise InvalidType(f"{name}: must be a floating-point array, got {type(values).__name__}"
                              + (f" of {dtype}" if dtype is not None else ""))
        if values.ndim != 1:
            raise InvalidInput(f"{name}: must be 1-D (one value per reading), got shape {tuple(values.shape)}")
    if t_u.shape != t_c.shape:
        raise InvalidInput(f"{prefix}t_u and {prefix}t_c: must have the same length, got {t_u.shape[0]} and "
                           f"{t_c.shape[0]}")
    if t_u.shape[0] < 2:
        raise InvalidInput(f"{prefix}t_u: needs at least 2 readings, got {t_u.shape[0]}")
    check_finite_array(t_u, prefix + "t_u", "reading")
    check_finite_array(t_c, prefix + "t_c", "reading")


def check_model(model: Any, readings: tuple[int, ...], k: int, dtype: Any) -> None:
    """Refuse, in one line, a model that cannot be called with ``k`` params or does not return one
    prediction per reading (checked by shapes alone, ``jax.eval_shape``: nothing is computed).

    Args:
      model: ``model(t_u, *params)``.
      readings: the shape of ``t_u`` it is called with: ``(n,)`` (a sensor's readings; a scalar
        prediction, broadcast, is accepted too) or ``()`` (one reading).
      k: how many params it takes.
      dtype: the readings' and params' dtype.
    """
    scalar = jax.ShapeDtypeStruct((), dtype)
    what = f"t_u of shape {readings}" if readings else "one reading"
    try:
        out = jax.eval_shape(model, jax.ShapeDtypeStruct(readings, dtype), *(scalar,) * k)
    except Exception as error:  # whatever the caller's function raises, said in one line
        text = " ".join(str(error).split())
        raise InvalidInput(f"model: calling it with {what} and {k} params failed: "
                           f"{type(error).__name__}: {text[:160]}") from None
    shape = getattr(out, "shape", None)
    if shape in (readings, ()):
        return
    if not readings:
        raise InvalidInput(f"model: must return one value for one reading, got {shown(out)}")
    raise InvalidInput(f"model: must return one prediction per reading, shape {readings}; it returned "
                       f"{'shape ' + str(tuple(shape)) if shape is not None else type(out).__name__}")

