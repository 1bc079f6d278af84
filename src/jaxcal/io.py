"""Tables in and out: CSV, Parquet and NumPy files (and JSON, written). The core never imports
this module; the CLI and callers do.

A readings file is CSV with a header naming the columns ``t_u`` and ``t_c`` (in either order)
and one reading per row, a Parquet file with those columns, or NumPy (``.npy``, ``.npz``). A
fleet has a ``sensor`` column too: its ids are text, kept as written. Every problem is reported as
:class:`~jaxcal._checks.InvalidInput` with one line that names the file (and the line or row,
where there is one) and what is wrong.

CSV is read by pyarrow's columnar reader (multi-threaded, in C++). It is the fast path only: a
file it cannot read as plain numbers (a malformed line, a value that is not a finite number,
padded cells, ...) is read again by the precise reader, cell by cell, which names the line, the
column and the value, or accepts what the fast path was too strict for. Both give the same
values. Parquet and uncompressed ``.npz`` files are read in part where a process needs only its
share: the Parquet row groups, or the memory-mapped rows, that hold it.
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

from ._checks import InvalidInput, shown

__all__ = [
    "FleetTable",
    "read_fleet",
    "read_fleet_share",
    "read_readings",
    "read_readings_share",
    "read_t_u",
    "table_format",
    "write_table",
]

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
    try:
        rows = [row for row in csv.reader(io.StringIO(_open_text(path, expected), newline=""))
                if any(cell.strip() for cell in row)]
    except csv.Error as error:  # e.g. a field longer than the csv module takes
        raise InvalidInput(f"{path}: not a readable CSV file: {error}") from None
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
        raise InvalidInput(f"{path}: line 1: expected {expected}, got {shown(','.join(header))}")
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
                raise InvalidInput(f"{path}: line {line_no}: {column} is not a number: {shown(cell)}") from None
            if not math.isfinite(value):
                raise InvalidInput(f"{path}: line {line_no}: {column} is not finite: {shown(cell)}")
            values[line_no - 2, k] = value
    return values


def _csv_header(path: Path) -> list[str] | None:
    """The first line's cells, if it is a plain header (no padding, no blank line before it)."""
    try:
        with open(path, "rb") as file:
            first = file.readline(1 << 16)
        cells = next(csv.reader([first.decode("utf-8-sig").rstrip("\r\n")]))
    except (OSError, UnicodeDecodeError, StopIteration, csv.Error):
        return None
    return cells if cells and all(cell == cell.strip() and cell for cell in cells) else None


def _arrow_csv(path: Path, floats: tuple[str, ...], header_ok: Any, text: str | None = None) -> dict[str, Any] | None:
    """The columns ``floats`` (as float64 NumPy arrays) and ``text`` (a pyarrow string array, as
    written) of a CSV file, read by pyarrow; ``None`` where the precise reader must decide:
    anything but a plain header that ``header_ok`` accepts and rows of finite numbers, or a file
    pyarrow cannot read."""
    header = _csv_header(path)
    if header is None or not header_ok(header):
        return None
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    names = [*floats, *([text] if text else [])]
    types = {name: pa.float64() for name in floats} | ({text: pa.string()} if text else {})
    options = pa_csv.ConvertOptions(column_types=types, include_columns=names, null_values=[],
                                    strings_can_be_null=False, quoted_strings_can_be_null=False)
    try:
        raw = path.read_bytes()
        if not raw.isascii():  # ASCII is UTF-8; else every byte, decoded as the precise reader decodes them
            raw.decode("utf-8")  # (pyarrow checks only its columns)
        # bytes, not the path: pyarrow would decompress a file named .gz, the precise reader would
        # not; a quoted value may hold a line break, as the csv module allows
        table = pa_csv.read_csv(_arrow_owned(raw), parse_options=pa_csv.ParseOptions(newlines_in_values=True),
                                convert_options=options)
    except (OSError, UnicodeDecodeError, pa.ArrowException):
        return None
    out: dict[str, Any] = {}
    for name in floats:
        values = table[name].to_numpy()
        if not np.isfinite(values).all():
            return None
        out[name] = values
    if text:
        out[text] = table[text]
    return out


def _arrow_owned(raw: bytes) -> Any:
    """A copy of ``raw`` in memory that pyarrow owns (a few ms for a 19 MB table).

    pyarrow's threaded CSV reader can drop its last reference to the source after ``read_csv``
    has returned, on one of its pool threads. Were the source a Python ``bytes`` (``pa.py_buffer``),
    that thread would take the GIL to release it; at interpreter exit Python ends such a thread with
    ``pthread_exit``, whose unwinding through pyarrow's C++ destructor aborts the process
    ("terminate called without an active exception", exit 134 after a clean one-line error).
    Memory of pyarrow's own needs no GIL to be released."""
    import pyarrow as pa

    owned = pa.allocate_buffer(len(raw))
    np.frombuffer(owned, np.uint8)[:] = np.frombuffer(raw, np.uint8)
    return owned


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
    _check_real(path, t_u, t_c)
    n = len(t_u)
    if n < 2:
        raise InvalidInput(f"{path}: needs at least 2 readings, got {n}")
    rows = slice(None) if part is None else part(n)
    return (*_cast_readings(path, t_u[rows], t_c[rows], dtype, rows.start or 0), n)  # reads only these rows


def _check_real(path: Path, *columns: np.ndarray) -> None:
    if not all(np.dtype(x.dtype).kind in "iuf" for x in columns):
        raise InvalidInput(f"{path}: t_u and t_c must be real numbers (integer or floating arrays)")


def _cast_readings(path: Path, t_u: np.ndarray, t_c: np.ndarray, dtype: Any, first: int) -> tuple[np.ndarray, ...]:
    """Readings ``first, first + 1, ...`` of a file as ``dtype``, checked finite."""
    with np.errstate(over="ignore", invalid="ignore"):
        cast_u, cast_c = np.array(t_u, dtype), np.array(t_c, dtype)
    bad = ~(np.isfinite(cast_u) & np.isfinite(cast_c))
    if bad.any():
        raise InvalidInput(f"{path}: reading {int(np.argmax(bad)) + first}: not finite (or too large for "
                           f"{np.dtype(dtype).name})")
    return cast_u, cast_c


def _parquet_file(path: Path, names: tuple[str, ...], expected: str) -> Any:
    """An open ``pyarrow.parquet.ParquetFile`` that has the columns ``names``."""
    if not path.exists():
        raise InvalidInput(f"{path}: no such file")
    if path.is_dir():
        raise InvalidInput(f"{path}: is a directory, not a readings file")
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        file = pq.ParquetFile(path, memory_map=True)
    except (OSError, pa.ArrowException):
        raise InvalidInput(f"{path}: not a readable Parquet file") from None
    missing = [name for name in names if name not in file.schema_arrow.names]
    if missing:
        raise InvalidInput(f"{path}: missing columns {', '.join(missing)}; expected {expected}")
    return file


def _parquet_rows(path: Path, file: Any, names: tuple[str, ...], rows: np.ndarray | slice) -> dict[str, Any]:
    """The columns ``names`` of ``rows`` (a slice, or sorted row numbers) of a Parquet file,
    reading only the row groups that hold them; pyarrow arrays, checked for missing values."""
    import pyarrow as pa

    if isinstance(rows, slice) and rows == slice(None):  # the whole file
        try:
            table = file.read(columns=list(names))
        except (OSError, pa.ArrowException) as error:
            raise InvalidInput(f"{path}: not a readable Parquet file ({error})") from None
        return {name: _present(path, name, table[name], np.arange(table.num_rows)) for name in names}
    sizes = [file.metadata.row_group(g).num_rows for g in range(file.num_row_groups)]
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    n = int(starts[-1])
    wanted = np.arange(n)[rows] if isinstance(rows, slice) else np.asarray(rows, np.int64)
    group_of = np.searchsorted(starts, wanted, side="right") - 1
    groups = np.unique(group_of)
    try:
        table = file.read_row_groups([int(g) for g in groups], columns=list(names))
    except (OSError, pa.ArrowException) as error:
        raise InvalidInput(f"{path}: not a readable Parquet file ({error})") from None
    base = np.zeros(len(sizes) + 1, np.int64)  # where each group read starts in their concatenation
    base[groups] = np.cumsum([0, *(sizes[int(g)] for g in groups)])[:-1]
    position = wanted - starts[group_of] + base[group_of]
    return {name: _present(path, name, table[name].take(pa.array(position)), wanted) for name in names}


def _present(path: Path, name: str, column: Any, rows: np.ndarray) -> Any:
    """Column ``name`` (of the file's ``rows``), refused if a value is missing."""
    if column.null_count:
        first = int(rows[int(np.argmax(column.is_null().to_numpy(zero_copy_only=False)))])
        raise InvalidInput(f"{path}: row {first + 1}: {name} is missing")
    return column


def _numbers(path: Path, column: Any) -> np.ndarray:
    import pyarrow as pa

    if not (pa.types.is_integer(column.type) or pa.types.is_floating(column.type)):
        raise InvalidInput(f"{path}: t_u and t_c must be real numbers (integer or floating columns), "
                           f"got {column.type}")
    return column.to_numpy()


def _read_parquet_readings(path: Path, dtype: Any, part: Part | None = None) -> tuple[np.ndarray, np.ndarray, int]:
    """A Parquet file with columns ``t_u`` and ``t_c``: the rows ``part(n)`` (all by default; only
    the row groups that hold them are read), cast and checked, and ``n``."""
    file = _parquet_file(path, _COLUMNS, "columns t_u and t_c")
    n = file.metadata.num_rows
    if n < 2:
        raise InvalidInput(f"{path}: needs at least 2 readings, got {n}")
    rows = slice(None) if part is None else part(n)
    columns = _parquet_rows(path, file, _COLUMNS, rows)
    t_u, t_c = (_numbers(path, columns[name]) for name in _COLUMNS)
    return (*_cast_readings(path, t_u, t_c, dtype, rows.start or 0), n)


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
    if path.suffix == ".parquet":
        return _read_parquet_readings(path, dtype)[:2]
    header_ok = lambda header: sorted(header) == sorted(_COLUMNS)  # noqa: E731
    fast = _arrow_csv(path, _COLUMNS, header_ok)
    if fast is not None:
        values = np.stack([fast[name] for name in _COLUMNS], axis=1)
    else:
        values = _csv_table(path, _COLUMNS, header_ok, "the header 't_u,t_c'")
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

    From ``.npy`` and uncompressed ``.npz`` files only those rows are read (memory-mapped), from
    Parquet only the row groups that hold them; each process checks its own rows. A CSV file has
    no index of its lines: it is parsed whole.
    """
    path = Path(path)
    if path.suffix in (".npy", ".npz"):
        return _read_numpy_readings(path, dtype, part)
    if path.suffix == ".parquet":
        return _read_parquet_readings(path, dtype, part)
    t_u, t_c = read_readings(path, dtype)
    rows = part(len(t_u))
    return t_u[rows], t_c[rows], len(t_u)


_FLEET_COLUMNS = ("sensor", "t_u", "t_c")


class FleetTable(NamedTuple):
    """A long table of readings grouped by sensor: padded ``(sensors, max_readings)`` arrays."""

    sensors: np.ndarray  # sensor ids as text (a Unicode array), sorted
    t_u: np.ndarray
    t_c: np.ndarray
    counts: np.ndarray


def _unique(sensor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(sensor, return_inverse=True)`` of integers; a compact range by counting (no
    sort: the usual numbered sensors)."""
    if sensor.dtype != np.uint64 and len(sensor):
        low, high = int(sensor.min()), int(sensor.max())
        if high - low < 4 * len(sensor):
            offset = sensor.astype(np.int64) - low  # in int64: no small type wraps around
            present = np.bincount(offset, minlength=high - low + 1) > 0
            ids = (np.nonzero(present)[0] + low).astype(sensor.dtype)
            return ids, (np.cumsum(present) - 1)[offset]
    ids, inverse = np.unique(sensor, return_inverse=True)
    return ids, inverse.reshape(-1)


def _integer_ids(sensor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ids stored as integers: sorted as numbers, named by their decimal text."""
    ids, inverse = _unique(np.asarray(sensor))
    return ids.astype(str), inverse


def _text_ids(sensor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Text ids (a Unicode array), grouped as text: sorted as numbers when every one is an
    integer written plainly (see :func:`_plain_integer_ids`), else as text."""
    import pyarrow as pa

    ids, inverse = np.unique(sensor, return_inverse=True)
    inverse = inverse.reshape(-1)
    plain = _plain_integer_ids(pa.array(ids, pa.string())) if len(ids) else None
    if plain is None:
        return ids, inverse
    return plain[0], plain[1][inverse]


def _plain_integer_ids(text: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """Sorted ids and each row's index into them, grouped as integers, from a pyarrow text column
    whose every value is an integer written plainly (``0`` or ``-?[1-9][0-9]*``, at most int64);
    else ``None``. Number and text then name each other one to one, so grouping by the number is
    grouping by the text, with counting instead of hashing (the usual numbered sensors)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not pc.all(pc.ascii_is_decimal(pc.ascii_ltrim(text, "-"))).as_py():
        return None
    try:
        numbers = pc.cast(text, pa.int64())
    except pa.ArrowInvalid:  # '--5', or too large for int64
        return None
    ids, inverse = _integer_ids(numbers.to_numpy())
    # Each text is '-'s and then digits, read as that number: never shorter than the number's
    # plain text, and as long only when it is that text ('007' and '-0' are longer). Equal
    # total lengths: every id is written plainly.
    plain = np.dot(np.bincount(inverse, minlength=len(ids)), np.char.str_len(ids))
    if plain != pc.sum(pc.binary_length(text)).as_py():
        return None
    return ids, inverse


def _arrow_ids(path: Path, column: Any, from_csv: bool) -> tuple[np.ndarray, np.ndarray] | None:
    """Sorted ids (text) and each row's index into them, from a pyarrow column of text or
    integers (text through a dictionary: each distinct id is looked at once). ``from_csv`` (a
    CSV's ids, as written): ``None`` means the precise reader must decide (an id that is blank or
    padded with spaces, which it strips)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    if pa.types.is_integer(column.type):
        return _integer_ids(column.to_numpy())
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        raise InvalidInput(f"{path}: sensor ids must be text or integers, got {column.type}")
    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    plain = _plain_integer_ids(column) if len(column) else None
    if plain is not None:
        return plain
    coded = pc.dictionary_encode(column)
    names = coded.dictionary
    if from_csv and len(names) and not (pc.all(pc.equal(pc.utf8_trim_whitespace(names), names)).as_py()
                                        and pc.min(pc.utf8_length(names)).as_py()):
        return None
    # not every id an integer written plainly (just checked): sorted as text
    ids, remap = np.unique(names.to_numpy(zero_copy_only=False).astype(str), return_inverse=True)
    return ids, remap.reshape(-1)[coded.indices.to_numpy()]


def _group(path: Path, ids: np.ndarray, inverse: np.ndarray, t_u: np.ndarray, t_c: np.ndarray, dtype: Any,
           rows: np.ndarray | None = None) -> FleetTable:
    """Readings grouped by sensor: ``ids`` the sorted sensor ids, ``inverse`` each reading's index
    into them; ``rows`` are the readings' row numbers in the file (0-based; default ``0..n-1``),
    for the error messages."""
    if len(inverse) == 0:
        raise InvalidInput(f"{path}: has no readings")

    def row(i: int) -> int:
        return (i if rows is None else int(rows[i])) + 1

    for column, values in (("t_u", t_u), ("t_c", t_c)):
        bad = ~np.isfinite(values)
        if bad.any():
            at = int(np.argmax(bad))
            raise InvalidInput(f"{path}: row {row(at)}: sensor {shown(str(ids[inverse[at]]))}: {column} is not "
                               f"finite: {shown(values[at])}")
    with np.errstate(over="ignore"):
        cast_u, cast_c = t_u.astype(dtype), t_c.astype(dtype)
    bad = ~(np.isfinite(cast_u) & np.isfinite(cast_c))
    if bad.any():
        raise InvalidInput(f"{path}: row {row(int(np.argmax(bad)))}: value too large for {np.dtype(dtype).name}")
    empty = np.char.strip(ids) == ""
    if empty.any():
        raise InvalidInput(f"{path}: row {row(int(np.argmax(empty[inverse])))}: sensor is empty")  # in file order
    counts = np.bincount(inverse, minlength=len(ids))
    if counts.min() < 2:
        raise InvalidInput(f"{path}: sensor {ids[int(np.argmin(counts))]!s} has {int(counts.min())} reading; "
                           "each sensor needs at least 2")
    shape = (len(ids), int(counts.max()))
    u = np.zeros(shape, dtype)
    c = np.zeros(shape, dtype)
    full = len(ids) * shape[1] == len(inverse)  # every sensor the same count: no padding
    if full and np.all(inverse[1:] >= inverse[:-1]):  # and grouped by sensor: a reshape
        u[:], c[:] = cast_u.reshape(shape), cast_c.reshape(shape)
        return FleetTable(ids, u, c, counts)
    order = np.argsort(inverse, kind="stable")  # readings keep their file order within a sensor
    if full:
        u[:], c[:] = cast_u[order].reshape(shape), cast_c[order].reshape(shape)
        return FleetTable(ids, u, c, counts)
    sensor = inverse[order]
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    position = np.arange(len(order)) - starts[sensor]
    u[sensor, position] = cast_u[order]
    c[sensor, position] = cast_c[order]
    return FleetTable(ids, u, c, counts)


def read_fleet(path: str | os.PathLike[str], dtype: Any = np.float32) -> FleetTable:
    """Read a fleet: CSV with columns ``sensor,t_u,t_c`` (any order of rows), Parquet with those
    columns, or ``.npz`` with arrays ``sensor``, ``t_u``, ``t_c``. Readings are grouped by sensor.

    A sensor id is text, kept as written (``007`` stays ``007``; ``S1`` and ``s1`` are two
    sensors); ids stored as integers (a Parquet integer column, an integer array) are their
    decimal text. Sensors are sorted by id: as numbers when every id is an integer written plainly
    (``-?[1-9][0-9]*`` or ``0``), else as text.

    Returns:
      A :class:`FleetTable`; its ``sensors`` a Unicode array.

    Raises:
      ValueError: one line naming the file, the row and the problem.
    """
    path = Path(path)
    if path.suffix == ".npz":
        return _read_fleet_npz(path, dtype)[0]
    if path.suffix == ".parquet":
        return _read_fleet_parquet(path, dtype)[0]
    return _read_fleet_csv(path, dtype)


def _read_fleet_csv(path: Path, dtype: Any, fast_path: bool = True) -> FleetTable:
    fast = None
    if fast_path:
        fast = _arrow_csv(path, _FLEET_COLUMNS[1:], lambda header: sorted(header) == sorted(_FLEET_COLUMNS), "sensor")
    coded = None if fast is None else _arrow_ids(path, fast["sensor"], from_csv=True)
    if coded is not None:
        ids, inverse = coded
        t_u, t_c = fast["t_u"], fast["t_c"]
    else:
        ids, inverse, values = _fleet_csv_precise(path)
        t_u, t_c = values[:, 0], values[:, 1]
    try:
        return _group(path, ids, inverse, t_u, t_c, dtype)
    except InvalidInput as error:
        message = str(error)
        if ": row " in message:  # CSV rows are file lines; the header is line 1
            prefix, _, rest = message.partition(": row ")
            number, _, tail = rest.partition(":")
            message = f"{prefix}: line {int(number) + 1}:{tail}"
        raise InvalidInput(message) from None


def _fleet_csv_precise(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A fleet CSV read cell by cell: the first bad line is named with its column and value."""
    rows = _csv_rows(path, "a header 'sensor,t_u,t_c' and 2 or more rows per sensor")
    header = [cell.strip() for cell in rows[0]]
    if sorted(header) != sorted(_FLEET_COLUMNS):
        raise InvalidInput(f"{path}: line 1: expected the header 'sensor,t_u,t_c', got {shown(','.join(header))}")
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
                raise InvalidInput(f"{path}: line {line_no}: {column} is not a number: {shown(cell)}") from None
    return (*_text_ids(np.asarray(sensors, str)), values)


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
    ids, inverse = _text_ids(np.asarray(sensor)) if sensor.dtype.kind == "U" else _integer_ids(sensor)
    if part is None:
        return _group(path, ids, inverse, np.asarray(t_u, np.float64), np.asarray(t_c, np.float64), dtype), ids
    mine, rows = _my_rows(ids, inverse, part)
    return _group(path, ids[mine], inverse[rows] - mine.start, np.asarray(t_u[rows], np.float64),
                  np.asarray(t_c[rows], np.float64), dtype, rows), ids


def _my_rows(ids: np.ndarray, inverse: np.ndarray, part: Part) -> tuple[slice, np.ndarray]:
    """A process's sensors ``part(n)`` of the ``n`` ids, and the rows that hold their readings."""
    mine = part(len(ids))
    start, stop, _ = mine.indices(len(ids))
    mine = slice(start, stop)
    return mine, np.nonzero((inverse >= start) & (inverse < stop))[0]


def _read_fleet_parquet(path: Path, dtype: Any, part: Part | None = None) -> tuple[FleetTable, np.ndarray]:
    """The sensors ``part(n)`` of the ``n`` in a Parquet fleet (all by default), and every sensor
    id. The sensor column is read whole; of the readings, only the row groups holding those
    sensors' rows (one contiguous range of groups when the file is grouped by sensor)."""
    file = _parquet_file(path, _FLEET_COLUMNS, "columns sensor, t_u and t_c")
    if file.metadata.num_rows == 0:
        raise InvalidInput(f"{path}: has no readings")
    ids, inverse = _arrow_ids(path, _parquet_rows(path, file, ("sensor",), slice(None))["sensor"], from_csv=False)
    if part is None:
        mine, rows = slice(0, len(ids)), slice(None)
    else:
        mine, rows = _my_rows(ids, inverse, part)
    columns = _parquet_rows(path, file, _FLEET_COLUMNS[1:], rows)
    t_u, t_c = (_numbers(path, columns[name]).astype(np.float64) for name in _FLEET_COLUMNS[1:])
    if part is None:
        return _group(path, ids, inverse, t_u, t_c, dtype), ids
    return _group(path, ids[mine], inverse[rows] - mine.start, t_u, t_c, dtype, rows), ids


def read_fleet_share(path: str | os.PathLike[str], dtype: Any, part: Part) -> tuple[FleetTable, np.ndarray]:
    """One process's share of a fleet: the table of the sensors ``part(n)`` (of the ``n`` sorted
    ids), and every sensor id. From ``.npz`` and Parquet files only the sensor column is read
    whole; a CSV file is parsed whole.
    """
    path = Path(path)
    if path.suffix == ".npz":
        return _read_fleet_npz(path, dtype, part)
    if path.suffix == ".parquet":
        return _read_fleet_parquet(path, dtype, part)
    table = read_fleet(path, dtype)
    mine = part(len(table.sensors))
    return FleetTable(*(column[mine] for column in table)), table.sensors


def read_t_u(path: str | os.PathLike[str]) -> np.ndarray:
    """Raw readings to convert: a CSV or Parquet file with a ``t_u`` column (other columns
    ignored), an ``.npz`` with an array ``t_u``, or a 1-D ``.npy`` array.

    Raises:
      ValueError: one line naming the file, the line (or row) and the problem.
    """
    path = Path(path)
    if path.suffix in (".parquet", ".npz", ".npy"):
        if path.suffix == ".parquet":
            file = _parquet_file(path, ("t_u",), "a t_u column")
            values = _numbers(path, _parquet_rows(path, file, ("t_u",), slice(None))["t_u"])
        else:
            values = _numpy_t_u(path)
        values = np.asarray(values, np.float64)
        if not np.isfinite(values).all():
            raise InvalidInput(f"{path}: row {int(np.argmax(~np.isfinite(values))) + 1}: t_u is not finite")
        values = values[:, None]
    else:
        header_ok = lambda header: "t_u" in header  # noqa: E731
        fast = _arrow_csv(path, ("t_u",), header_ok)
        values = fast["t_u"][:, None] if fast is not None else _csv_table(path, ("t_u",), header_ok,
                                                                          "a header with a t_u column")
    if not len(values):
        raise InvalidInput(f"{path}: has no readings")
    return values[:, 0]


def _numpy_t_u(path: Path) -> np.ndarray:
    if not path.exists():
        raise InvalidInput(f"{path}: no such file")
    if path.suffix == ".npz":
        values = _npz_columns(path, ("t_u",), "an array t_u")["t_u"]
    else:
        try:
            values = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError):
            raise InvalidInput(f"{path}: not a readable .npy file") from None
    if values.ndim != 1:
        raise InvalidInput(f"{path}: t_u must be a 1-D array, got shape {values.shape}")
    _check_real(path, values)
    return values


#: What :func:`write_table` writes, by the file name's suffix (in any case).
_TABLE_FORMATS = {".csv": "CSV", ".json": "JSON", ".parquet": "Parquet", ".npz": "NumPy"}


def table_format(path: str | os.PathLike[str], name: str = "path") -> str:
    """The format :func:`write_table` writes ``path`` in, by its suffix; a check before any work.

    Args:
      path: the file to write.
      name: what to call it in the error (``--out`` on the command line).

    Returns:
      ``"CSV"`` (``.csv``), ``"JSON"`` (``.json``), ``"Parquet"`` (``.parquet``) or ``"NumPy"`` (``.npz``).

    Raises:
      ValueError: one line naming ``name`` and the suffixes jaxcal writes, for any other suffix.
    """
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in _TABLE_FORMATS:
        what = f"unknown table format {target.suffix!r}" if target.suffix else "no suffix to tell the table format"
        raise InvalidInput(name, f"{target.name}: {what}; jaxcal writes {', '.join(list(_TABLE_FORMATS)[:-1])} "
                                 f"or {list(_TABLE_FORMATS)[-1]}")
    return _TABLE_FORMATS[suffix]


def write_table(path: str | os.PathLike[str], columns: dict[str, np.ndarray], name: str = "path") -> None:
    """Write named columns of equal length as a table, atomically, in the format its suffix names.

    ``.csv``: a header, then a line per row; floats in the shortest form that reads back to the
    same value, booleans as ``true``/``false``, text quoted where it holds a comma, a quote or a
    line break. ``.json``: an array of row objects, one per line (``[{"sensor": "007", "w": 5.37,
    ...}, ...]``), numbers as JSON numbers (the same shortest form), a number that is not finite
    (NaN, an infinity) as ``null``. ``.parquet``: a Parquet table. ``.npz``: an array per column
    (text as Unicode arrays).

    Args:
      path: the file; its suffix (in any case) names the format.
      columns: 1-D arrays of equal length, by column name (numbers, booleans or text).
      name: what to call ``path`` in an error (``--out`` on the command line).

    Raises:
      ValueError: one line naming ``name``: an unknown suffix (see :func:`table_format`), or the
        file cannot be written.
    """
    from ._files import write_atomic

    target = Path(path)
    kind = table_format(target, name)
    columns = {key: np.char.decode(value, "utf-8") if np.asarray(value).dtype.kind == "S" else
               np.asarray(value).astype(str) if np.asarray(value).dtype.kind == "O" else np.asarray(value)
               for key, value in columns.items()}
    if kind == "NumPy":
        buffer = io.BytesIO()
        np.savez(buffer, **columns)
        write_atomic(target, buffer.getvalue(), name=name)
        return
    if kind == "JSON":
        write_atomic(target, _json_bytes(columns), name=name)
        return
    import pyarrow as pa

    if kind == "Parquet":
        import pyarrow.parquet as pq

        sink = pa.BufferOutputStream()
        pq.write_table(pa.table({key: pa.array(value) for key, value in columns.items()}), sink)
        data = sink.getvalue().to_pybytes()
    else:
        data = _csv_bytes(columns)
    write_atomic(target, data, name=name)


def _json_bytes(columns: dict[str, np.ndarray]) -> bytes:
    """``columns`` as a JSON array of row objects, one per line; a non-finite number as null."""
    import json

    listed = []
    for value in columns.values():
        if value.dtype.kind == "f":
            # float32 values as the doubles they are, as in CSV: the shortest text that reads back to them
            value = value.astype(np.float64)
            cells = value.tolist()
            for i in np.flatnonzero(~np.isfinite(value)).tolist():
                cells[i] = None
        else:
            cells = value.tolist()
        listed.append(cells)
    keys = list(columns)
    rows = [json.dumps(dict(zip(keys, row, strict=True)), ensure_ascii=False, allow_nan=False)
            for row in zip(*listed, strict=True)]
    return ("[\n" + ",\n".join(rows) + "\n]\n" if rows else "[]\n").encode()


#: Rows of CSV from which a table is written in parts, one per core (fewer: in one part).
_CSV_PART_ROWS = 20_000
#: The characters that make a CSV cell need quotes (as the csv module quotes them).
_QUOTED = np.array([ord(c) for c in '",\r\n'], np.uint32)


def _csv_bytes(columns: dict[str, np.ndarray]) -> bytes:
    """``columns`` as CSV: pyarrow's writer (in C++) when no text cell needs quotes, which
    numbers and plain ids never do; else cell by cell, the few quoted as the csv module would."""
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    header = io.StringIO()
    csv.writer(header, lineterminator="\n").writerow(list(columns))
    if not len(next(iter(columns.values()), [])):
        return header.getvalue().encode()
    # float32 values print as the doubles they are: the shortest text that reads back to them
    arrays = {key: pa.array(value.astype(np.float64) if value.dtype.kind == "f" else value)
              for key, value in columns.items()}
    # a Unicode array's code points, all checked at once
    if any(value.dtype.kind == "U" and np.isin(np.ascontiguousarray(value).view(np.uint32), _QUOTED).any()
           for value in columns.values()):
        return (header.getvalue() + _csv_quoted(arrays)).encode()
    table = pa.table(arrays)

    def rows(part: Any) -> bytes:
        sink = pa.BufferOutputStream()
        pa_csv.write_csv(part, sink, pa_csv.WriteOptions(include_header=False, quoting_style="none",
                                                         batch_size=1 << 16))
        return sink.getvalue().to_pybytes()

    # pyarrow's writer runs on one core, without Python's lock: a large table is written in one
    # part per core at once, the parts joined in order (the same bytes as one part)
    parts = min(os.cpu_count() or 1, len(table) // _CSV_PART_ROWS) or 1
    if parts == 1:
        return header.getvalue().encode() + rows(table)
    from concurrent.futures import ThreadPoolExecutor

    bounds = [len(table) * k // parts for k in range(parts + 1)]
    with ThreadPoolExecutor(parts, thread_name_prefix="jaxcal-csv") as pool:
        written = list(pool.map(lambda k: rows(table.slice(bounds[k], bounds[k + 1] - bounds[k])), range(parts)))
    return b"".join([header.getvalue().encode(), *written])


def _csv_quoted(arrays: dict[str, Any]) -> str:
    """The rows of a table some of whose text cells need quotes, cell by cell."""
    import pyarrow as pa
    import pyarrow.compute as pc

    def cells(array: Any) -> Any:
        if pa.types.is_boolean(array.type):
            return pc.if_else(array, "true", "false")
        text = array.cast(pa.string())
        if pa.types.is_string(array.type):
            needs = pc.match_substring_regex(text, '[",\r\n]').to_numpy(zero_copy_only=False)
            if needs.any():  # the few that need quotes, as the csv module quotes them
                values = text.to_pylist()
                for i in np.nonzero(needs)[0]:
                    values[i] = '"' + values[i].replace('"', '""') + '"'
                text = pa.array(values, pa.string())
        return text

    rows = pc.binary_join_element_wise(*(cells(array) for array in arrays.values()), ",")
    return "\n".join(rows.to_pylist()) + "\n"
