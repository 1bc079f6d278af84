"""Reading readings from files. The core never imports this module; the CLI and callers do.

A readings file is CSV with a header naming the columns ``t_u`` and ``t_c`` (in either order)
and one reading per row. Every problem is reported as :class:`~jaxcal._checks.InvalidInput`
with one line that names the file (and the line, where there is one) and what is wrong.
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ._checks import InvalidInput

__all__ = ["FleetTable", "read_fleet", "read_readings", "read_t_u"]

_COLUMNS = ("t_u", "t_c")


def _open_text(path: Path) -> str:
    if not path.exists():
        raise InvalidInput(f"{path}: no such file")
    if path.is_dir():
        raise InvalidInput(f"{path}: is a directory, not a readings file")
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise InvalidInput(f"{path}: cannot read: {error.strerror}") from None
    if not raw.strip():
        raise InvalidInput(f"{path}: is empty; expected a header 't_u,t_c' and at least 2 rows")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput(f"{path}: is not a UTF-8 text CSV file") from None


def _csv_table(path: Path, columns: tuple[str, ...], header_ok: Any, expected: str) -> np.ndarray:
    """The named numeric columns of a CSV file, as float64 ``(rows, len(columns))``.

    ``header_ok(header)`` says whether the header is acceptable; ``expected`` describes it in the
    error. Every value must be a finite number; every row as long as the header.
    """
    text = _open_text(path)
    rows = [row for row in csv.reader(text.splitlines()) if any(cell.strip() for cell in row)]
    header = [cell.strip() for cell in rows[0]]
    if not header_ok(header):
        raise InvalidInput(f"{path}: line 1: expected {expected}, got {','.join(header)!r}")
    order = [header.index(name) for name in columns]
    values = np.empty((len(rows) - 1, len(columns)))
    for line_no, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise InvalidInput(f"{path}: line {line_no}: expected {len(header)} values, got {len(row)}")
        for k, (column, index) in enumerate(zip(columns, order, strict=True)):
            cell = row[index].strip()
            try:
                value = float(cell)
            except ValueError:
                raise InvalidInput(f"{path}: line {line_no}: {column} is not a number: {cell!r}") from None
            if not math.isfinite(value):
                raise InvalidInput(f"{path}: line {line_no}: {column} is not finite: {cell!r}")
            values[line_no - 2, k] = value
    return values


def _read_numpy_readings(path: Path, dtype: Any) -> tuple[np.ndarray, np.ndarray]:
    """``.npz`` with arrays ``t_u`` and ``t_c``, or ``.npy`` holding an ``(n, 2)`` array of (t_u, t_c)."""
    if not path.exists():
        raise InvalidInput(f"{path}: no such file")
    if path.is_dir():
        raise InvalidInput(f"{path}: is a directory, not a readings file")
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                missing = [k for k in _COLUMNS if k not in archive.files]
                if missing:
                    raise InvalidInput(f"{path}: missing arrays {', '.join(missing)}; expected t_u and t_c")
                t_u, t_c = np.asarray(archive["t_u"]), np.asarray(archive["t_c"])
        else:
            table = np.load(path, allow_pickle=False)
            if table.ndim != 2 or table.shape[1] != 2:
                raise InvalidInput(f"{path}: expected an (n, 2) array of t_u, t_c; got shape {table.shape}")
            t_u, t_c = table[:, 0], table[:, 1]
    except InvalidInput:
        raise
    except (OSError, ValueError):
        raise InvalidInput(f"{path}: not a readable {path.suffix} file") from None
    if t_u.ndim != 1 or t_u.shape != t_c.shape:
        raise InvalidInput(f"{path}: t_u and t_c must be 1-D arrays of the same length")
    if not (np.issubdtype(t_u.dtype, np.number) and np.issubdtype(t_c.dtype, np.number)):
        raise InvalidInput(f"{path}: t_u and t_c must be numeric")
    if len(t_u) < 2:
        raise InvalidInput(f"{path}: needs at least 2 readings, got {len(t_u)}")
    with np.errstate(over="ignore", invalid="ignore"):
        cast_u, cast_c = np.asarray(t_u, dtype), np.asarray(t_c, dtype)
    bad = ~(np.isfinite(cast_u) & np.isfinite(cast_c))
    if bad.any():
        raise InvalidInput(f"{path}: reading {int(np.argmax(bad))}: not finite (or too large for "
                           f"{np.dtype(dtype).name})")
    return cast_u, cast_c


def read_readings(path: str | os.PathLike[str], dtype: np.dtype | type = np.float32) -> tuple[np.ndarray, np.ndarray]:
    """Read ``(t_u, t_c)`` from a CSV file with the header ``t_u,t_c`` (or ``.npy``/``.npz``).

    Args:
      path: the CSV file.
      dtype: the floating dtype to return; values that do not fit (overflow to inf) are refused.

    Returns:
      ``(t_u, t_c)``, two 1-D arrays of ``dtype`` with at least 2 entries each.

    Raises:
      ValueError: one line naming the file, the line and the problem.
    """
    path = Path(path)
    if path.suffix in (".npy", ".npz"):
        return _read_numpy_readings(path, dtype)
    values = _csv_table(path, _COLUMNS, lambda header: sorted(header) == sorted(_COLUMNS), "the header 't_u,t_c'")
    if len(values) < 2:
        raise InvalidInput(f"{path}: needs at least 2 readings, got {len(values)}")
    with np.errstate(over="ignore"):
        cast = values.astype(dtype)
    if not np.all(np.isfinite(cast)):
        line_no = int(np.argwhere(~np.isfinite(cast))[0][0]) + 2
        raise InvalidInput(f"{path}: line {line_no}: value too large for {np.dtype(dtype).name}")
    return cast[:, 0].copy(), cast[:, 1].copy()


_FLEET_COLUMNS = ("sensor", "t_u", "t_c")


class FleetTable(NamedTuple):
    """A long table of readings grouped by sensor: padded ``(sensors, max_readings)`` arrays."""

    sensors: np.ndarray  # sensor ids, sorted
    t_u: np.ndarray
    t_c: np.ndarray
    counts: np.ndarray


def _group(path: Path, sensor: np.ndarray, t_u: np.ndarray, t_c: np.ndarray, dtype: Any) -> FleetTable:
    if len(sensor) == 0:
        raise InvalidInput(f"{path}: has no readings")
    for column, values in (("t_u", t_u), ("t_c", t_c)):
        bad = ~np.isfinite(values)
        if bad.any():
            raise InvalidInput(f"{path}: row {int(np.argmax(bad)) + 1}: {column} is not finite: {values[bad][0]!r}")
    with np.errstate(over="ignore"):
        cast_u, cast_c = t_u.astype(dtype), t_c.astype(dtype)
    bad = ~(np.isfinite(cast_u) & np.isfinite(cast_c))
    if bad.any():
        raise InvalidInput(f"{path}: row {int(np.argmax(bad)) + 1}: value too large for {np.dtype(dtype).name}")
    ids, inverse = np.unique(sensor, return_inverse=True)
    counts = np.bincount(inverse, minlength=len(ids))
    if counts.min() < 2:
        raise InvalidInput(f"{path}: sensor {ids[int(np.argmin(counts))]!s} has {int(counts.min())} reading; "
                           "each sensor needs at least 2")
    order = np.argsort(inverse, kind="stable")  # readings keep their file order within a sensor
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    position = np.arange(len(order)) - starts[inverse[order]]
    shape = (len(ids), int(counts.max()))
    u = np.zeros(shape, dtype)
    c = np.zeros(shape, dtype)
    u[inverse[order], position] = cast_u[order]
    c[inverse[order], position] = cast_c[order]
    return FleetTable(ids, u, c, counts)


def read_fleet(path: str | os.PathLike[str], dtype: Any = np.float32) -> FleetTable:
    """Read a fleet: CSV with columns ``sensor,t_u,t_c`` (any order of rows), or ``.npz`` with
    arrays ``sensor``, ``t_u``, ``t_c``. Readings are grouped by sensor, sensors sorted by id.

    Raises:
      ValueError: one line naming the file, the row and the problem.
    """
    path = Path(path)
    if path.suffix == ".npz":
        if not path.exists():
            raise InvalidInput(f"{path}: no such file")
        try:
            with np.load(path, allow_pickle=False) as archive:
                missing = [k for k in _FLEET_COLUMNS if k not in archive.files]
                if missing:
                    raise InvalidInput(f"{path}: missing arrays {', '.join(missing)}; expected sensor, t_u, t_c")
                sensor, t_u, t_c = (np.asarray(archive[k]) for k in _FLEET_COLUMNS)
        except (OSError, ValueError) as error:
            if isinstance(error, InvalidInput):
                raise
            raise InvalidInput(f"{path}: not a readable .npz file") from None
        if not (sensor.ndim == t_u.ndim == t_c.ndim == 1 and len(sensor) == len(t_u) == len(t_c)):
            raise InvalidInput(f"{path}: sensor, t_u and t_c must be 1-D arrays of the same length")
        if not (np.issubdtype(t_u.dtype, np.number) and np.issubdtype(t_c.dtype, np.number)):
            raise InvalidInput(f"{path}: t_u and t_c must be numeric arrays")
        return _group(path, sensor, t_u.astype(np.float64), t_c.astype(np.float64), dtype)
    text = _open_text(path)
    rows = [row for row in csv.reader(text.splitlines()) if any(cell.strip() for cell in row)]
    header = [cell.strip() for cell in rows[0]]
    if sorted(header) != sorted(_FLEET_COLUMNS):
        raise InvalidInput(f"{path}: line 1: expected the header 'sensor,t_u,t_c', got {','.join(header)!r}")
    order = [header.index(name) for name in _FLEET_COLUMNS]
    sensors: list[str] = []
    values = np.empty((len(rows) - 1, 2))
    for line_no, row in enumerate(rows[1:], start=2):
        if len(row) != 3:
            raise InvalidInput(f"{path}: line {line_no}: expected 3 values, got {len(row)}")
        sensors.append(row[order[0]].strip())
        for k, (column, index) in enumerate(zip(_FLEET_COLUMNS[1:], order[1:], strict=True)):
            try:
                values[line_no - 2, k] = float(row[index])
            except ValueError:
                cell = row[index].strip()
                raise InvalidInput(f"{path}: line {line_no}: {column} is not a number: {cell!r}") from None
    ids = np.asarray(sensors)
    if len(ids) and all(s.lstrip("-").isdigit() for s in sensors):
        ids = ids.astype(np.int64)  # numeric ids sort as numbers
    try:
        return _group(path, ids, values[:, 0], values[:, 1], dtype)
    except InvalidInput as error:
        message = str(error)
        if ": row " in message:  # CSV rows are file lines; the header is line 1
            prefix, _, rest = message.partition(": row ")
            number, _, tail = rest.partition(":")
            message = f"{prefix}: line {int(number) + 1}:{tail}"
        raise InvalidInput(message) from None


def read_t_u(path: str | os.PathLike[str]) -> np.ndarray:
    """Raw readings to convert: a CSV whose header has a ``t_u`` column (other columns ignored).

    Raises:
      ValueError: one line naming the file, the line and the problem.
    """
    path = Path(path)
    values = _csv_table(path, ("t_u",), lambda header: "t_u" in header, "a header with a t_u column")
    if not len(values):
        raise InvalidInput(f"{path}: has no readings")
    return values[:, 0]
