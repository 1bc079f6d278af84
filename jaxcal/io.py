"""Reading readings from files. The core never imports this module; the CLI and callers do.

A readings file is CSV with a header naming the columns ``t_u`` and ``t_c`` (in either order)
and one reading per row. Every problem is reported as :class:`~jaxcal._checks.InvalidInput`
with one line that names the file (and the line, where there is one) and what is wrong.
"""

from __future__ import annotations

import csv
import io
import math
import os
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ._checks import InvalidInput

__all__ = ["FleetTable", "read_fleet", "read_fleet_share", "read_readings", "read_readings_share", "read_t_u"]

#: A process's share of ``n`` items: ``part(n)`` is the slice it reads.
Part = Callable[[int], slice]

_COLUMNS = ("t_u", "t_c")


def _open_text(path: Path, expected: str = "a header 't_u,t_c' and at least 2 rows") -> str:
    if not path.exists():
        raise InvalidInput(f"{path}: no such file")
    if path.is_dir():
        raise InvalidInput(f"{path}: is a directory, not a readings file")
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise InvalidInput(f"{path}: cannot read: {error.strerror}") from None
    if not raw.strip():
        raise InvalidInput(f"{path}: is empty; expected {expected}")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput(f"{path}: is not a UTF-8 text CSV file") from None


def _csv_rows(path: Path, expected: str) -> list[list[str]]:
    """The non-blank rows of a CSV file (lines end only at ``\\n`` or ``\\r\\n``), at least one."""
    rows = [row for row in csv.reader(io.StringIO(_open_text(path, expected), newline=""))
            if any(cell.strip() for cell in row)]
    if not rows:
        raise InvalidInput(f"{path}: is empty; expected {expected}")
    return rows


def _csv_table(path: Path, columns: tuple[str, ...], header_ok: Any, expected: str) -> np.ndarray:
    """The named numeric columns of a CSV file, as float64 ``(rows, len(columns))``.

    ``header_ok(header)`` says whether the header is acceptable; ``expected`` describes it in the
    error. Every value must be a finite number; every row as long as the header.
    """
    rows = _csv_rows(path, expected)
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


def _npz_columns(path: Path, names: tuple[str, ...], expected: str) -> dict[str, np.ndarray]:
    """The named arrays of an ``.npz`` archive, memory-mapped where stored uncompressed
    (``np.savez``): reading a slice of one then reads only those bytes of the file. Compressed
    members (``np.savez_compressed``) are read whole."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = {name.removesuffix(".npy"): archive.getinfo(name) for name in archive.namelist()}
    except (OSError, zipfile.BadZipFile):
        raise InvalidInput(f"{path}: not a readable .npz file") from None
    missing = [name for name in names if name not in members]
    if missing:
        raise InvalidInput(f"{path}: missing arrays {', '.join(missing)}; expected {expected}")
    out = {}
    try:
        with open(path, "rb") as file:
            for name in names:
                info = members[name]
                if info.compress_type != zipfile.ZIP_STORED:
                    with np.load(path, allow_pickle=False) as whole:
                        out[name] = np.asarray(whole[name])
                    continue
                file.seek(info.header_offset)
                local = file.read(30)  # the member's local header: its name and extra field follow
                name_length, extra_length = struct.unpack("<HH", local[26:30])
                file.seek(info.header_offset + 30 + name_length + extra_length)
                fmt = np.lib.format
                version = fmt.read_magic(file)
                header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
                shape, fortran, dtype = header(file)
                if dtype.hasobject:
                    raise ValueError("object arrays")
                out[name] = (np.memmap(path, dtype=dtype, mode="r", offset=file.tell(), shape=shape,
                                       order="F" if fortran else "C") if math.prod(shape) else np.zeros(shape, dtype))
    except (OSError, ValueError, struct.error):
        raise InvalidInput(f"{path}: not a readable .npz file") from None
    return out


def _read_numpy_readings(path: Path, dtype: Any, part: Part | None = None) -> tuple[np.ndarray, np.ndarray, int]:
    """``.npz`` with arrays ``t_u`` and ``t_c``, or ``.npy`` holding an ``(n, 2)`` array of
    (t_u, t_c): the rows ``part(n)`` (all by default), cast and checked, and ``n``."""
    if not path.exists():
        raise InvalidInput(f"{path}: no such file")
    if path.is_dir():
        raise InvalidInput(f"{path}: is a directory, not a readings file")
    if path.suffix == ".npz":
        columns = _npz_columns(path, _COLUMNS, "t_u and t_c")
        t_u, t_c = columns["t_u"], columns["t_c"]
    else:
        try:
            table = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError):
            raise InvalidInput(f"{path}: not a readable {path.suffix} file") from None
        if table.ndim != 2 or table.shape[1] != 2:
            raise InvalidInput(f"{path}: expected an (n, 2) array of t_u, t_c; got shape {table.shape}")
        t_u, t_c = table[:, 0], table[:, 1]
    if t_u.ndim != 1 or t_u.shape != t_c.shape:
        raise InvalidInput(f"{path}: t_u and t_c must be 1-D arrays of the same length")
    if not all(np.dtype(x.dtype).kind in "iuf" for x in (t_u, t_c)):
        raise InvalidInput(f"{path}: t_u and t_c must be real numbers (integer or floating arrays)")
    n = len(t_u)
    if n < 2:
        raise InvalidInput(f"{path}: needs at least 2 readings, got {n}")
    rows = slice(None) if part is None else part(n)
    with np.errstate(over="ignore", invalid="ignore"):
        cast_u, cast_c = np.array(t_u[rows], dtype), np.array(t_c[rows], dtype)  # reads only these rows
    bad = ~(np.isfinite(cast_u) & np.isfinite(cast_c))
    if bad.any():
        first = int(np.argmax(bad)) + (rows.start or 0)
        raise InvalidInput(f"{path}: reading {first}: not finite (or too large for {np.dtype(dtype).name})")
    return cast_u, cast_c, n


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
        return _read_numpy_readings(path, dtype)[:2]
    values = _csv_table(path, _COLUMNS, lambda header: sorted(header) == sorted(_COLUMNS), "the header 't_u,t_c'")
    if len(values) < 2:
        raise InvalidInput(f"{path}: needs at least 2 readings, got {len(values)}")
    with np.errstate(over="ignore"):
        cast = values.astype(dtype)
    if not np.all(np.isfinite(cast)):
        line_no = int(np.argwhere(~np.isfinite(cast))[0][0]) + 2
        raise InvalidInput(f"{path}: line {line_no}: value too large for {np.dtype(dtype).name}")
    return cast[:, 0].copy(), cast[:, 1].copy()


def read_readings_share(path: str | os.PathLike[str], dtype: Any, part: Part) -> tuple[np.ndarray, np.ndarray, int]:
    """One process's share of a readings file: ``(t_u, t_c)`` of the rows ``part(n)``, and ``n``.

    From ``.npy`` and uncompressed ``.npz`` files only those rows are read (memory-mapped); each
    process checks its own rows. A CSV file has no index of its lines: it is parsed whole.
    """
    path = Path(path)
    if path.suffix in (".npy", ".npz"):
        return _read_numpy_readings(path, dtype, part)
    t_u, t_c = read_readings(path, dtype)
    rows = part(len(t_u))
    return t_u[rows], t_c[rows], len(t_u)


_FLEET_COLUMNS = ("sensor", "t_u", "t_c")


class FleetTable(NamedTuple):
    """A long table of readings grouped by sensor: padded ``(sensors, max_readings)`` arrays."""

    sensors: np.ndarray  # sensor ids, sorted
    t_u: np.ndarray
    t_c: np.ndarray
    counts: np.ndarray


def _group(path: Path, sensor: np.ndarray, t_u: np.ndarray, t_c: np.ndarray, dtype: Any,
           rows: np.ndarray | None = None) -> FleetTable:
    """Readings grouped by sensor; ``rows`` are their row numbers in the file (0-based; default
    ``0..n-1``), for the error messages."""
    if len(sensor) == 0:
        raise InvalidInput(f"{path}: has no readings")

    def row(i: int) -> int:
        return (i if rows is None else int(rows[i])) + 1

    for column, values in (("t_u", t_u), ("t_c", t_c)):
        bad = ~np.isfinite(values)
        if bad.any():
            raise InvalidInput(f"{path}: row {row(int(np.argmax(bad)))}: {column} is not finite: {values[bad][0]!r}")
    with np.errstate(over="ignore"):
        cast_u, cast_c = t_u.astype(dtype), t_c.astype(dtype)
    bad = ~(np.isfinite(cast_u) & np.isfinite(cast_c))
    if bad.any():
        raise InvalidInput(f"{path}: row {row(int(np.argmax(bad)))}: value too large for {np.dtype(dtype).name}")
    if sensor.dtype.kind in "US":
        empty = np.char.strip(sensor.astype(str)) == ""
        if empty.any():
            raise InvalidInput(f"{path}: row {row(int(np.argmax(empty)))}: sensor is empty")
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
        return _read_fleet_npz(path, dtype)[0]
    rows = _csv_rows(path, "a header 'sensor,t_u,t_c' and 2 or more rows per sensor")
    header = [cell.strip() for cell in rows[0]]
    if sorted(header) != sorted(_FLEET_COLUMNS):
        raise InvalidInput(f"{path}: line 1: expected the header 'sensor,t_u,t_c', got {','.join(header)!r}")
    order = [header.index(name) for name in _FLEET_COLUMNS]
    sensors: list[str] = []
    values = np.empty((len(rows) - 1, 2))
    for line_no, row in enumerate(rows[1:], start=2):
        if len(row) != 3:
            raise InvalidInput(f"{path}: line {line_no}: expected 3 values, got {len(row)}")
        sensor = row[order[0]].strip()
        if not sensor:
            raise InvalidInput(f"{path}: line {line_no}: sensor is empty")
        sensors.append(sensor)
        for k, (column, index) in enumerate(zip(_FLEET_COLUMNS[1:], order[1:], strict=True)):
            try:
                values[line_no - 2, k] = float(row[index])
            except ValueError:
                cell = row[index].strip()
                raise InvalidInput(f"{path}: line {line_no}: {column} is not a number: {cell!r}") from None
    ids = np.asarray(sensors)
    if len(ids) and all(s.isascii() and s.lstrip("-").isdigit() and len(s) < 19 for s in sensors):
        ids = ids.astype(np.int64)  # numeric ids sort as numbers (those that fit int64; others stay text)
    try:
        return _group(path, ids, values[:, 0], values[:, 1], dtype)
    except InvalidInput as error:
        message = str(error)
        if ": row " in message:  # CSV rows are file lines; the header is line 1
            prefix, _, rest = message.partition(": row ")
            number, _, tail = rest.partition(":")
            message = f"{prefix}: line {int(number) + 1}:{tail}"
        raise InvalidInput(message) from None


def _read_fleet_npz(path: Path, dtype: Any, part: Part | None = None) -> tuple[FleetTable, np.ndarray]:
    """The sensors ``part(n)`` of the ``n`` in an ``.npz`` fleet (all by default), and every
    sensor id. The sensor column is read whole (to know which rows are whose); of the readings,
    only those rows (memory-mapped: one contiguous range when the file is grouped by sensor)."""
    if not path.exists():
        raise InvalidInput(f"{path}: no such file")
    columns = _npz_columns(path, _FLEET_COLUMNS, "sensor, t_u, t_c")
    sensor, t_u, t_c = (columns[k] for k in _FLEET_COLUMNS)
    if not (sensor.ndim == t_u.ndim == t_c.ndim == 1 and len(sensor) == len(t_u) == len(t_c)):
        raise InvalidInput(f"{path}: sensor, t_u and t_c must be 1-D arrays of the same length")
    if not all(np.dtype(x.dtype).kind in "iuf" for x in (t_u, t_c)):
        raise InvalidInput(f"{path}: t_u and t_c must be real numbers (integer or floating arrays)")
    if sensor.dtype.kind == "S":
        try:
            sensor = np.char.decode(np.asarray(sensor), "utf-8")
        except UnicodeDecodeError:
            raise InvalidInput(f"{path}: sensor ids must be UTF-8 text or integers") from None
    elif sensor.dtype.kind not in "iuU":
        raise InvalidInput(f"{path}: sensor ids must be text or integers, got {sensor.dtype}")
    sensor = np.asarray(sensor)
    ids, inverse = np.unique(sensor, return_inverse=True)
    if part is None:
        return _group(path, sensor, np.asarray(t_u, np.float64), np.asarray(t_c, np.float64), dtype), ids
    mine = part(len(ids))
    rows = np.nonzero((inverse >= mine.start) & (inverse < mine.stop))[0]
    return _group(path, sensor[rows], np.asarray(t_u[rows], np.float64), np.asarray(t_c[rows], np.float64), dtype,
                  rows), ids


def read_fleet_share(path: str | os.PathLike[str], dtype: Any, part: Part) -> tuple[FleetTable, np.ndarray]:
    """One process's share of a fleet: the table of the sensors ``part(n)`` (of the ``n`` sorted
    ids), and every sensor id. From an ``.npz`` file only the sensor column is read whole; a CSV
    file is parsed whole.
    """
    path = Path(path)
    if path.suffix == ".npz":
        return _read_fleet_npz(path, dtype, part)
    table = read_fleet(path, dtype)
    mine = part(len(table.sensors))
    return FleetTable(*(column[mine] for column in table)), table.sensors


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
