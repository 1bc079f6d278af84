"""Tables in and out: CSV, Parquet and NumPy files (and JSON, written). The core never imports
this module; the CLI and callers do.

A readings table has columns ``t_u`` and ``t_c`` (in either order), one reading per row, and
optionally ``sigma`` (each reading's standard uncertainty) and ``sensor``; a fleet has a
``sensor`` column too: its ids are text, kept as written. Columns may be named otherwise
(``columns={"t_u": "raw", "t_c": "celsius"}``), headers match in any case, other columns are
ignored. CSV is comma-, semicolon- or tab-separated (found from the header line); an empty cell
or ``NA`` is a missing value, and a reading with one is dropped (counted per sensor). Every
problem is reported as :class:`~jaxcal._checks.InvalidInput` with one line that names the file
(and the line or row, where there is one) and what is wrong.

One table, :data:`_FORMATS`, says how each suffix is read and written. Each format opens a file
as a *source* of columns by role; the readers of each kind of table (:func:`read_fleet`,
:func:`read_readings`, :func:`read_t_u`, :func:`read_log`) are written once over sources. CSV is parsed by pyarrow
(multi-threaded, in C++); where it refuses a cell, only that column is read again, as text, to
name the line and the value. Parquet and uncompressed ``.npz`` files are read in part where a
process needs only its share (``part=``): the Parquet row groups, or the memory-mapped rows,
that hold it.
"""

from __future__ import annotations

import contextlib
import csv
import io
import itertools
import math
import os
import re
import struct
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ._checks import InvalidInput, UnexpectedHeader, check_positive_int, shown

__all__ = [
    "LOG_PART_ROWS",
    "MISSING",
    "ROLES",
    "Coded",
    "FleetTable",
    "LogParts",
    "LogTable",
    "Readings",
    "has_column",
    "parse_columns",
    "read_fleet",
    "read_fleet_share",
    "read_log",
    "read_log_parts",
    "read_readings",
    "read_readings_share",
    "read_t_u",
    "table_format",
    "write_table",
    "write_table_parts",
]

#: A process's share of ``n`` items: ``part(n)`` is the slice it reads.
Part = Callable[[int], slice]

#: The columns a table's readers know, by role: each is the column of that name unless mapped.
ROLES = ("sensor", "t_u", "t_c", "sigma")

#: The CSV cells that are missing values unless the caller says otherwise (``NaN`` is a number
#: that is not finite, refused, unless named here).
MISSING = ("", "NA")

#: The separators a CSV header is tried with, in this order (a tie goes to the first).
_SEPARATORS = (",", ";", "\t")


def parse_columns(text: str) -> dict[str, str]:
    """The column mapping of its text form, ``role=name`` pairs separated by commas.

    Args:
      text: e.g. ``"sensor=sensor_id,t_u=raw,t_c=celsius"``; roles are ``sensor``, ``t_u``,
        ``t_c`` and ``sigma``; spaces around roles and names are ignored.

    Returns:
      The mapping role -> column name.

    Raises:
      ValueError: one line naming the pair at fault: an unknown or repeated role, an empty name.

    >>> parse_columns("sensor=sensor_id, t_u=raw")
    {'sensor': 'sensor_id', 't_u': 'raw'}
    """
    mapping: dict[str, str] = {}
    for pair in text.split(","):
        role, equals, name = (piece.strip() for piece in pair.partition("="))
        if not equals:
            raise InvalidInput("columns", f"{shown(pair.strip())} is not role=name (e.g. t_u=raw)")
        if role not in ROLES:
            raise InvalidInput("columns", f"unknown role {shown(role)}; the roles are {', '.join(ROLES)}")
        if role in mapping:
            raise InvalidInput("columns", f"role {role} is given twice")
        if not name:
            raise InvalidInput("columns", f"role {role} has an empty column name")
        mapping[role] = name
    return mapping


def _mapping(columns: Mapping[str, str] | None) -> dict[str, str]:
    """Every role's column name: ``columns``' where it maps the role, else the role's own."""
    given = dict(columns or {})
    for role, name in given.items():
        if role not in ROLES:
            raise InvalidInput("columns", f"unknown role {shown(role)}; the roles are {', '.join(ROLES)}")
        if not isinstance(name, str) or not name.strip():
            raise InvalidInput("columns", f"role {role} needs a column name, got {shown(name)}")
    return {role: given.get(role, role).strip() for role in ROLES}


class _Request(NamedTuple):
    """What a reader asks of a table."""

    names: dict[str, str]  # every role's column name
    required: tuple[str, ...]  # roles the table must have
    optional: tuple[str, ...]  # roles read where the table has them (or where mapped: then required)
    kind: str  # "fleet", "readings", "t_u" or "log": how rows are named in errors
    separator: str | None  # CSV: given, or found from the header
    missing: tuple[str, ...]  # CSV cells that are missing values
    expected: str  # the table the reader expects, in words, for errors

    @property
    def nan_missing(self) -> bool:
        """Whether a NaN stored as a number (Parquet, NumPy) is a missing value: where ``NaN`` is one."""
        return any(marker.strip().lower() == "nan" for marker in self.missing)


def _request(kind: str, columns: Mapping[str, str] | None, separator: str | None, missing: Iterable[str] | None,
             required: tuple[str, ...], optional: tuple[str, ...]) -> _Request:
    names = _mapping(columns)
    given = set(columns or {})
    required = (*required, *(role for role in optional if role in given))  # a mapped role must be there
    expected = (f"a header with a {names['t_u']} column" if kind == "t_u" else
                "the header '" + ",".join(names[role] for role in required) + "'")
    optional = tuple(role for role in optional if role not in given)
    unused = given - set(required) - set(optional)
    if unused:
        raise InvalidInput("columns", f"a {kind} table has no role {', '.join(sorted(unused))}")
    if separator is not None and (not isinstance(separator, str) or len(separator) != 1
                                  or separator in '"\r\n'):
        raise InvalidInput("separator", f"must be one character (not a quote or a line break), got {shown(separator)}")
    missing = MISSING if missing is None else (missing,) if isinstance(missing, str) else tuple(missing)
    if not all(isinstance(marker, str) for marker in missing):
        raise InvalidInput("missing", f"must be strings, got {shown(missing)}")
    return _Request(names, required, optional, kind, separator, missing, expected)


def _label(request: _Request, role: str, name: str) -> str:
    """A column as errors call it: its name as written, and its role where that differs."""
    return name if name.lower() == role else f"{name} ({role})"


def _match(path: Path, found: list[str], request: _Request, where: str, strict: bool = True,
           missing_words: str | None = None) -> tuple[dict[str, int] | None, list[str]]:
    """Each wanted role's index in ``found`` (names compared in any case, spaces around them
    ignored), and the required roles not there (then ``None`` for the indices, or with
    ``missing_words``, the error naming them). Two names equal but for case that both match a role
    are an error (``strict``): which one is meant cannot be told."""
    folded = [str(name).strip().lower() for name in found]
    out, absent = {}, []
    for role in (*request.required, *request.optional):
        want = request.names[role].lower()
        hits = [i for i, name in enumerate(folded) if name == want]
        if len(hits) > 1 and strict:
            both = " and ".join(shown(str(found[i]).strip()) for i in hits[:2])
            raise InvalidInput(f"{path}: {where}: {both} both name {role} ({request.names[role]!r}, in any case); "
                               "rename one, or map the role to the one meant")
        if hits:
            out[role] = hits[0]
        elif role in request.required:
            absent.append(request.names[role])
    if absent and missing_words:
        wanted = [request.names[role] for role in request.required]
        listed = ", ".join(wanted[:-1]) + " and " + wanted[-1] if len(wanted) > 1 else wanted[0]
        raise InvalidInput(f"{path}: missing {missing_words} {', '.join(absent)}; expected {missing_words} {listed}")
    return (None if absent else out), absent


def _check_file(path: Path) -> None:
    if not path.exists():
        raise InvalidInput(f"{path}: no such file")
    if path.is_dir():
        raise InvalidInput(f"{path}: is a directory, not a readings file")


# -- sources: a table's columns by role, whatever its format ------------------------------------------


class _CsvSource:
    """A CSV file, parsed whole by pyarrow: the columns of the roles asked for, the others skipped.

    The header is the first line that is not blank; the separator the one given, or the one of
    comma, semicolon and tab that splits the header into the most fields among which every
    required column is named. A cell that pyarrow refuses is found by reading only the numeric
    columns again, as text.
    """

    def __init__(self, path: Path, request: _Request) -> None:
        self.path, self.request = path, request
        _check_file(path)
        try:
            raw = path.read_bytes()
        except OSError as error:
            raise InvalidInput(f"{path}: cannot read: {error.strerror}") from None
        if not re.search(rb"[^\s\xef\xbb\xbf]", raw):  # a search, not a copy of the file
            raise InvalidInput(f"{path}: is empty; expected {request.expected.replace('the header', 'a header', 1)}")
        if not raw.isascii():  # every byte, also of the columns not read (pyarrow checks only its own)
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidInput(f"{path}: is not a UTF-8 text CSV file") from None
        self.raw = raw
        text, self.skip = _header_line(raw)
        header = f"line {self.skip}"
        best = _split_header(path, text, request, header)
        if best is None:
            raise UnexpectedHeader(f"{path}: {header}: expected {request.expected}, got {shown(text.strip())}",
                                   roles=request.required)
        self.separator, cells = best
        roles, _ = _match(path, cells, request, header)
        assert roles is not None
        self.roles = roles
        self.width = len(cells)
        self.labels = {role: _label(request, role, cells[index].strip()) for role, index in roles.items()}
        self.names = [f"c{i}" for i in range(len(cells))]  # names of its own: headers may repeat
        self.column = {role: self.names[index] for role, index in roles.items()}
        self.buffer = _arrow_owned(raw)
        self._starts: np.ndarray | None = None
        import pyarrow as pa

        self.table = self._read({self.column[role]: pa.string() if role == "sensor" else pa.float64()
                                 for role in roles})
        self.n = self.table.num_rows

    def _read(self, types: dict[str, Any], use_threads: bool = True, handler: Any = None) -> Any:
        """The columns ``types`` names, as those types; pyarrow's refusal explained in one line."""
        import pyarrow as pa
        import pyarrow.csv as pa_csv

        convert = pa_csv.ConvertOptions(column_types=types, include_columns=list(types),
                                        null_values=list(self.request.missing), strings_can_be_null=True,
                                        quoted_strings_can_be_null=True)
        try:
            return pa_csv.read_csv(self.buffer, read_options=pa_csv.ReadOptions(
                column_names=self.names, skip_rows=self.skip, use_threads=use_threads),
                # a quoted value may hold a line break, as the csv module allows
                parse_options=pa_csv.ParseOptions(delimiter=self.separator, newlines_in_values=True,
                                                  invalid_row_handler=handler),
                convert_options=convert)
        except pa.ArrowInvalid as error:
            if handler is None:
                self._refused(error, types)
            raise

    def _refused(self, error: Exception, types: dict[str, Any]) -> None:
        """Name the line, and the column and value, of what pyarrow refused (``error``, in its words)."""
        import pyarrow as pa

        words = str(error).splitlines()[0]
        if "columns, got" in words:  # a row of another length than the header
            first: list[Any] = []

            def invalid(row: Any) -> str:
                first.append(row)
                return "error"

            with contextlib.suppress(pa.ArrowInvalid):  # one thread: pyarrow then numbers the rows
                self._read({name: pa.string() for name in types}, use_threads=False, handler=invalid)
            if first and first[0].number is not None:
                # pyarrow numbers rows from 1, the skipped lines counted, blank lines after them not
                raise InvalidInput(f"{self.path}: {self.where(first[0].number - self.skip - 1)}: expected "
                                   f"{self.width} values, got {first[0].actual_columns}") from None
        elif any(t != pa.string() for t in types.values()):  # a cell that is not a number
            text = self._read({self.column[role]: pa.string() for role in self.roles if role != "sensor"})
            bad = [(row, role) for role in self.roles if role != "sensor"
                   for row in [_first_not_a_number(text[self.column[role]])] if row is not None]
            if bad:
                row, role = min(bad, key=lambda hit: hit[0])
                cell = text[self.column[role]][row].as_py().strip()
                raise InvalidInput(f"{self.path}: {self.where(row)}: {self.labels[role]} is not a number: "
                                   f"{shown(cell)}") from None
        raise InvalidInput(f"{self.path}: not a readable CSV file: {words}") from None

    def _records(self) -> tuple[np.ndarray, np.ndarray]:
        """The byte offset where each record starts (a line, or lines joined inside quotes), and
        of every line break."""
        if self._starts is None:
            data = np.frombuffer(self.raw, np.uint8)
            self._newlines = np.flatnonzero(data == ord("\n"))
            ends = self._newlines
            if b'"' in self.raw:  # a line break after an odd number of quotes is inside a quoted value
                quotes = np.flatnonzero(data == ord('"'))
                ends = ends[np.searchsorted(quotes, ends) % 2 == 0]
            self._starts = np.concatenate([[0], ends + 1])
        return self._starts, self._newlines

    def where(self, row: int) -> str:
        """Data row ``row`` (from 0) as its line: pyarrow skips blank lines, and a quoted value
        may span lines."""
        starts, newlines = self._records()
        stops = np.concatenate([starts[1:] - 1, [len(self.raw)]])
        first = np.frombuffer(self.raw, np.uint8)[np.minimum(starts, len(self.raw) - 1)]
        blank = (stops <= starts) | ((stops - starts == 1) & (first == ord("\r")))
        records = np.flatnonzero(~blank & (np.arange(len(starts)) >= self.skip))
        if row >= len(records):  # quotes that do not pair as the lines suggest (a quote opened in the header)
            return f"data row {row + 1}"
        return f"line {int(np.searchsorted(newlines, starts[records[row]])) + 1}"

    def slices(self, size: int) -> Iterator[slice]:
        return _slices(self.n, size)

    def ids(self, rows: slice | None = None) -> tuple[np.ndarray, np.ndarray]:
        return _arrow_ids(self.path, _sliced(self.table[self.column["sensor"]], rows))

    def numbers(self, role: str, rows: np.ndarray | slice | None) -> np.ndarray:
        column = self.table[self.column[role]]
        if isinstance(rows, slice):  # a part of the file (see slices): only its cells converted
            column = _sliced(column, rows)
        values = column.to_numpy()  # a missing value (null) as NaN
        missing = column.is_null().to_numpy(zero_copy_only=False) if column.null_count else None
        if rows is not None and not isinstance(rows, slice):
            values = values[rows]
            missing = None if missing is None else missing[rows]
        bad = ~np.isfinite(values)
        if missing is not None:
            bad &= ~missing
        if bad.any():  # 'nan', 'inf', or a number too large for a double, written in the file
            import pyarrow as pa

            at = int(np.argmax(bad))
            row = _file_row(at, rows, self.n)
            if self.request.kind in ("fleet", "log"):  # as in every format: the sensor, and the value read
                ids, inverse = self.ids()
                who = f"sensor {shown(str(ids[inverse[row]]))}: " if inverse[row] >= 0 else ""
                raise InvalidInput(f"{self.path}: {self.where(row)}: {who}{self.labels[role]} is not finite: "
                                   f"{shown(values[at])}")
            cell = self._read({self.column[role]: pa.string()})[self.column[role]][row].as_py()
            raise InvalidInput(f"{self.path}: {self.where(row)}: {self.labels[role]} is not finite: "
                               f"{shown(cell.strip())}")
        return values


def _first_line(error: Exception) -> str:
    """An error's words, to their first line break (pyarrow's can span lines)."""
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def _slices(n: int, size: int) -> Iterator[slice]:
    """``n`` rows as consecutive slices of ``size`` (the last may be shorter)."""
    return (slice(start, min(start + size, n)) for start in range(0, n, size))


def _sliced(column: Any, rows: slice | None) -> Any:
    """A pyarrow column's ``rows``: of a slice of step 1 (a part), without a copy."""
    if rows is None:
        return column
    start, stop, step = rows.indices(len(column))
    if step == 1:
        return column.slice(start, max(stop - start, 0))
    import pyarrow as pa

    return column.take(pa.array(np.arange(start, stop, step)))


def _header_line(raw: bytes) -> tuple[str, int]:
    """A CSV file's header, the first line that is not blank (its text), and the lines up to it."""
    start, skip = 0, 0
    while True:
        end = raw.find(b"\n", start)
        line = raw[start:end if end >= 0 else len(raw)]
        skip += 1
        if line.replace(b"\xef\xbb\xbf", b"", 1).strip() or end < 0:
            break
        start = end + 1
    return line.decode("utf-8", errors="replace").removeprefix("\ufeff").rstrip("\r"), skip


def _split_header(path: Path, text: str, request: _Request, header: str) -> tuple[str, list[str]] | None:
    """The separator (the one given, or the one of comma, semicolon and tab that splits the header
    into the most fields among which every required column is named) and the header's fields; or
    ``None`` where no separator names every required column."""
    best: tuple[int, str, list[str]] | None = None
    for separator in [request.separator] if request.separator else _SEPARATORS:
        cells = next(csv.reader([text], delimiter=separator), [])
        found, _ = _match(path, cells, request, header, strict=False)
        if found is not None and (best is None or len(cells) > best[0]):
            best = (len(cells), separator, cells)
    return None if best is None else best[1:]


def _csv_names(path: Path, request: _Request) -> list[str]:
    """A CSV file's column names, from its header alone (read up to its end, not the whole file);
    none where no separator names every required column (the reader then says why)."""
    head = b""
    with open(path, "rb") as file:
        while True:
            chunk = file.read(1 << 16)
            head += chunk
            if not chunk or re.search(rb"[^\s\xef\xbb\xbf][^\n]*\n", head):
                break
    text, skip = _header_line(head)
    found = _split_header(path, text, request, f"line {skip}")
    return [] if found is None else found[1]


def _file_row(at: int, rows: np.ndarray | slice | None, n: int) -> int:
    """The file's row number of the ``at``-th of ``rows`` (all ``n`` by default)."""
    if rows is None:
        return at
    if isinstance(rows, slice):
        return int(np.arange(n)[rows][at])
    return int(rows[at])


def _first_not_a_number(text: Any) -> int | None:
    """The first row of a pyarrow text column that is not a number as pyarrow's CSV reader reads
    them (spaces around it ignored), or ``None``: a bisection by casts of slices, about twice the
    column's length of work, all in C++."""
    import pyarrow as pa
    import pyarrow.compute as pc

    trimmed = pc.utf8_trim_whitespace(text.combine_chunks() if hasattr(text, "combine_chunks") else text)

    def numbers(start: int, stop: int) -> bool:
        try:
            pc.cast(trimmed.slice(start, stop - start), pa.float64())
        except pa.ArrowInvalid:
            return False
        return True

    low, high = 0, len(trimmed)
    if numbers(low, high):
        return None
    while high - low > 1:  # the first cell that is not a number is in [low, high)
        middle = (low + high) // 2
        if numbers(low, middle):
            low = middle
        else:
            high = middle
    return low


class _BinarySource:
    """What Parquet and NumPy sources share: rows named by number, numbers stored as numbers."""

    path: Path
    request: _Request
    labels: dict[str, str]
    n: int

    def where(self, row: int) -> str:
        return f"reading {row}" if self.request.kind == "readings" else f"row {row + 1}"

    def slices(self, size: int) -> Iterator[slice]:
        return _slices(self.n, size)

    def ids(self, rows: slice | None = None) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def checked(self, role: str, values: np.ndarray, missing: np.ndarray | None,
                rows: np.ndarray | slice | None) -> np.ndarray:
        """``values`` (float64) with NaN where missing; a value present and not finite refused."""
        if self.request.nan_missing:
            missing = np.isnan(values) if missing is None else missing | np.isnan(values)
        bad = ~np.isfinite(values)
        if missing is not None:
            bad &= ~missing
            values = np.where(missing, np.nan, values)
        if bad.any():
            at = int(np.argmax(bad))
            row = _file_row(at, rows, self.n)
            if self.request.kind == "readings":
                raise InvalidInput(f"{self.path}: reading {row}: not finite ({self.labels[role]} is "
                                   f"{shown(values[at])})")
            who = ""
            if self.request.kind in ("fleet", "log"):
                ids, inverse = self.ids()
                who = f"sensor {shown(str(ids[inverse[row]]))}: " if inverse[row] >= 0 else ""
            raise InvalidInput(f"{self.path}: {self.where(row)}: {who}{self.labels[role]} is not finite: "
                               f"{shown(values[at])}")
        return values


def _not_real(path: Path, role: str, kind: str, what: str, got: Any = None) -> InvalidInput:
    names = "sigma" if role == "sigma" else "t_u" if kind in ("t_u", "log") else "t_u and t_c"
    return InvalidInput(f"{path}: {names} must be real numbers ({what})" + (f", got {got}" if got is not None else ""))


class _ParquetSource(_BinarySource):
    """A Parquet file: each column read when asked for, from the row groups that hold the rows asked for."""

    def __init__(self, path: Path, request: _Request) -> None:
        self.path, self.request = path, request
        _check_file(path)
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            self.file = pq.ParquetFile(path, memory_map=True)
        except (OSError, pa.ArrowException):
            raise InvalidInput(f"{path}: not a readable Parquet file") from None
        names = self.file.schema_arrow.names
        roles, _ = _match(path, names, request, "columns", missing_words="columns")
        assert roles is not None
        self.roles = roles
        self.column = {role: names[index] for role, index in roles.items()}
        self.labels = {role: _label(request, role, name) for role, name in self.column.items()}
        self.n = self.file.metadata.num_rows
        self._ids: tuple[np.ndarray, np.ndarray] | None = None
        self._read_rows: Any = ()
        self._read_columns: dict[str, Any] = {}

    def slices(self, size: int) -> Iterator[slice]:
        """Consecutive parts of ``size`` rows (the last may have fewer), each read in batches when reached,
        whatever the file's row groups (a file of one large group is still read a part at a time; a
        dictionary column, which pyarrow reads a row group at a time, in batches joined into parts):
        ``ids`` and ``numbers`` of the slice given take that part's columns."""
        import pyarrow as pa

        names = list(dict.fromkeys(self.column.values()))
        batches = self.file.iter_batches(batch_size=size, columns=names)
        start, held = 0, {name: pa.chunked_array([], self.file.schema_arrow.field(name).type) for name in names}
        while True:
            try:
                batch = next(batches, None)
            except (OSError, pa.ArrowException) as error:
                raise InvalidInput(f"{self.path}: not a readable Parquet file ({_first_line(error)})") from None
            if batch is not None:
                held = {name: pa.chunked_array([*held[name].chunks, batch.column(name)]) for name in names}
            while len(held[names[0]]) >= size or (batch is None and len(held[names[0]])):
                rows = slice(start, start + min(size, len(held[names[0]])))
                self._read_rows = rows
                self._read_columns = {name: column.slice(0, rows.stop - start) for name, column in held.items()}
                held = {name: column.slice(rows.stop - start) for name, column in held.items()}
                yield rows
                start = rows.stop
            if batch is None:
                return

    def ids(self, rows: slice | None = None) -> tuple[np.ndarray, np.ndarray]:
        name = self.column["sensor"]
        if rows is not None:  # a part: the column of the batch slices() read, where it is that part
            column = (self._read_columns[name] if self._read_rows is rows and name in self._read_columns
                      else _parquet_rows(self.path, self.file, (name,), rows)[name])
            return _arrow_ids(self.path, column)
        if self._ids is None:
            self._ids = _arrow_ids(self.path, _parquet_rows(self.path, self.file, (name,), slice(None))[name])
        return self._ids

    def numbers(self, role: str, rows: np.ndarray | slice | None) -> np.ndarray:
        import pyarrow as pa

        if self._read_rows is not rows:  # every numeric column of these rows at once: each row group read once
            names = tuple(self.column[key] for key in ("t_u", "t_c", "sigma") if key in self.column)
            self._read_rows = rows
            self._read_columns = _parquet_rows(self.path, self.file, names, slice(None) if rows is None else rows)
        column = self._read_columns[self.column[role]]
        if not (pa.types.is_integer(column.type) or pa.types.is_floating(column.type)):
            raise _not_real(self.path, role, self.request.kind, "integer or floating columns", column.type)
        missing = column.is_null().to_numpy(zero_copy_only=False) if column.null_count else None
        values = np.asarray(column.to_numpy(zero_copy_only=False), np.float64)
        return self.checked(role, values, missing, rows)


class _NpzSource(_BinarySource):
    """An ``.npz`` archive of 1-D arrays, memory-mapped where stored uncompressed (``np.savez``):
    reading a share of a column then reads only those bytes of the file."""

    def __init__(self, path: Path, request: _Request) -> None:
        self.path, self.request = path, request
        _check_file(path)
        members = _npz_members(path)
        names = list(members)
        roles, _ = _match(path, names, request, "arrays", missing_words="arrays")
        assert roles is not None
        self.roles = roles
        self.column = {role: names[index] for role, index in roles.items()}
        self.labels = {role: _label(request, role, name) for role, name in self.column.items()}
        arrays = _npz_load(path, members, list(self.column.values()))
        self.arrays = {role: arrays[name] for role, name in self.column.items()}
        shapes = {array.shape for array in self.arrays.values()}
        if len(shapes) > 1 or len(next(iter(shapes))) != 1:
            listed = ", ".join(self.column.values())
            raise InvalidInput(f"{path}: {listed} must be 1-D arrays of the same length")
        self.n = len(next(iter(self.arrays.values())))
        self._ids: tuple[np.ndarray, np.ndarray] | None = None

    def ids(self, rows: slice | None = None) -> tuple[np.ndarray, np.ndarray]:
        if rows is not None:
            return _array_ids(self.path, self.arrays["sensor"][rows])
        if self._ids is None:
            self._ids = _array_ids(self.path, self.arrays["sensor"])
        return self._ids

    def numbers(self, role: str, rows: np.ndarray | slice | None) -> np.ndarray:
        values = self.arrays[role]
        if np.dtype(values.dtype).kind not in "iuf":
            raise _not_real(self.path, role, self.request.kind, "integer or floating arrays")
        values = values if rows is None else values[rows]  # of a memory map: reads only these rows
        return self.checked(role, np.asarray(values, np.float64), None, rows)


class _NpySource(_NpzSource):
    """An ``.npy`` array: ``(n, 2)`` of (t_u, t_c) readings, or 1-D of t_u to convert."""

    def __init__(self, path: Path, request: _Request) -> None:  # not the archive's: no super()
        self.path, self.request = path, request
        _check_file(path)
        try:
            table = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError):
            raise InvalidInput(f"{path}: not a readable .npy file") from None
        extra = [role for role in request.required if role not in ("t_u", "t_c")]
        if extra:
            raise InvalidInput(f"{path}: an .npy file holds t_u and t_c only, not {', '.join(extra)}")
        if request.kind == "t_u":
            if table.ndim != 1:
                raise InvalidInput(f"{path}: t_u must be a 1-D array, got shape {table.shape}")
            self.arrays = {"t_u": table}
        else:
            if table.ndim != 2 or table.shape[1] != 2:
                raise InvalidInput(f"{path}: expected an (n, 2) array of t_u, t_c; got shape {table.shape}")
            self.arrays = {"t_u": table[:, 0], "t_c": table[:, 1]}
        self.roles = dict.fromkeys(self.arrays, 0)
        self.labels = {role: role for role in self.arrays}
        self.n = len(table)


# -- NumPy archives and Parquet row groups ------------------------------------------------------------


def _npz_members(path: Path) -> dict[str, zipfile.ZipInfo]:
    try:
        with zipfile.ZipFile(path) as archive:
            return {name.removesuffix(".npy"): archive.getinfo(name) for name in archive.namelist()}
    except (OSError, zipfile.BadZipFile):
        raise InvalidInput(f"{path}: not a readable .npz file") from None


def _npz_load(path: Path, members: dict[str, zipfile.ZipInfo], names: list[str]) -> dict[str, np.ndarray]:
    """The arrays ``names`` of an archive, memory-mapped where stored uncompressed; compressed
    members (``np.savez_compressed``) are read whole."""
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


def _npz_columns(path: Path, names: tuple[str, ...], expected: str) -> dict[str, np.ndarray]:
    """The named arrays of an ``.npz`` archive (exact names), memory-mapped where stored uncompressed."""
    members = _npz_members(path)
    missing = [name for name in names if name not in members]
    if missing:
        raise InvalidInput(f"{path}: missing arrays {', '.join(missing)}; expected {expected}")
    return _npz_load(path, members, list(names))


def _parquet_rows(path: Path, file: Any, names: tuple[str, ...], rows: np.ndarray | slice) -> dict[str, Any]:
    """The columns ``names`` of ``rows`` (a slice, or sorted row numbers) of a Parquet file,
    reading only the row groups that hold them; pyarrow arrays."""
    import pyarrow as pa

    if isinstance(rows, slice) and rows == slice(None):  # the whole file
        try:
            table = file.read(columns=list(names))
        except (OSError, pa.ArrowException) as error:
            raise InvalidInput(f"{path}: not a readable Parquet file ({_first_line(error)})") from None
        return {name: table[name] for name in names}
    sizes = [file.metadata.row_group(g).num_rows for g in range(file.num_row_groups)]
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    n = int(starts[-1])
    wanted = np.arange(n)[rows] if isinstance(rows, slice) else np.asarray(rows, np.int64)
    group_of = np.searchsorted(starts, wanted, side="right") - 1
    groups = np.unique(group_of)
    try:
        table = file.read_row_groups([int(g) for g in groups], columns=list(names))
    except (OSError, pa.ArrowException) as error:
        raise InvalidInput(f"{path}: not a readable Parquet file ({_first_line(error)})") from None
    base = np.zeros(len(sizes) + 1, np.int64)  # where each group read starts in their concatenation
    base[groups] = np.cumsum([0, *(sizes[int(g)] for g in groups)])[:-1]
    position = wanted - starts[group_of] + base[group_of]
    return {name: table[name].take(pa.array(position)) for name in names}


def _parquet_names(path: Path, request: _Request) -> list[str]:
    """A Parquet file's column names, from its schema alone."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return list(pq.read_schema(path).names)
    except pa.ArrowException as error:
        raise ValueError(str(error)) from None


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


# -- sensor ids -------------------------------------------------------------------------------------


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


#: The ids looked at first, where every id of a column must be an integer for a faster path: text ids
#: (``T-000042``) fail at once, before the whole column (a million ids) is looked at.
_SAMPLE = 64


def _decimal(text: Any) -> bool:
    """Whether every value of a pyarrow text column (nulls skipped) is ``-``s then digits."""
    import pyarrow.compute as pc

    return bool(pc.all(pc.ascii_is_decimal(pc.ascii_ltrim(text, "-"))).as_py())


def _plain_integer_ids(text: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """Sorted ids and each row's index into them (-1 where the value is missing), grouped as
    integers, from a pyarrow text column whose every value is an integer written plainly (``0``
    or ``-?[1-9][0-9]*``, at most int64); else ``None``. Number and text then name each other one
    to one, so grouping by the number is grouping by the text, with counting instead of hashing
    (the usual numbered sensors)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not _decimal(text):
        return None
    try:
        numbers = pc.cast(text, pa.int64())
    except pa.ArrowInvalid:  # '--5', or too large for int64
        return None
    ids, inverse = _integer_ids((numbers.drop_null() if numbers.null_count else numbers).to_numpy())
    # Each text is '-'s and then digits, read as that number: never shorter than the number's
    # plain text, and as long only when it is that text ('007' and '-0' are longer). Equal
    # total lengths: every id is written plainly.
    plain = np.dot(np.bincount(inverse, minlength=len(ids)), np.char.str_len(ids))
    if plain != pc.sum(pc.binary_length(text)).as_py():
        return None
    if numbers.null_count:
        full = np.full(len(numbers), -1, np.int64)
        full[numbers.is_valid().to_numpy(zero_copy_only=False)] = inverse
        inverse = full
    return ids, inverse


def _sorted_text_ids(names: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct text ids (already stripped, none empty) sorted: as numbers when every one is an
    integer written plainly, else as text; and each name's index into them."""
    import pyarrow as pa

    ids, inverse = np.unique(names, return_inverse=True)
    inverse = inverse.reshape(-1)
    plain = (_plain_integer_ids(pa.array(ids, pa.string()))
             if len(ids) and _decimal(pa.array(ids[:_SAMPLE], pa.string())) else None)
    if plain is None:
        return ids, inverse
    return plain[0], plain[1][inverse]


def _named(ids: np.ndarray, inverse: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ids stripped of spaces around them, an empty one a missing id (index -1), then sorted."""
    stripped = np.char.strip(ids.astype(str))
    empty = stripped == ""
    if not len(ids):
        return ids.astype(str), inverse
    kept, remap = _sorted_text_ids(stripped[~empty]) if (~empty).any() else (np.array([], str), np.array([], int))
    full = np.full(len(ids), -1, np.int64)
    full[~empty] = remap
    return kept, full[inverse]


def _arrow_ids(path: Path, column: Any) -> tuple[np.ndarray, np.ndarray]:
    """Sorted ids (text) and each row's index into them (-1: no id), from a pyarrow column of
    text or integers; a missing value (null) or an id of only spaces is no id. Text goes through
    a dictionary: each distinct id is looked at once."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if pa.types.is_integer(column.type):
        if not column.null_count:
            return _integer_ids(column.to_numpy())
        ids, inverse = _integer_ids(column.drop_null().to_numpy())
        full = np.full(len(column), -1, np.int64)
        full[column.is_valid().to_numpy(zero_copy_only=False)] = inverse
        return ids, full
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        raise InvalidInput(f"{path}: sensor ids must be text or integers, got {column.type}")
    plain = (_plain_integer_ids(column) if len(column) > column.null_count and _decimal(column.slice(0, _SAMPLE))
             else None)
    if plain is not None:
        return plain
    coded = pc.dictionary_encode(column)  # a missing value: a missing index
    names = coded.dictionary.to_numpy(zero_copy_only=False).astype(str)
    ids, remap = _named(names, np.arange(len(names)))
    return ids, np.append(remap, -1)[pc.fill_null(coded.indices, -1).to_numpy()]


def _array_ids(path: Path, sensor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted ids (text) and each row's index into them (-1: no id) from a NumPy array of text
    (Unicode or UTF-8 bytes) or integers."""
    if sensor.dtype.kind == "S":
        try:
            sensor = np.char.decode(np.asarray(sensor), "utf-8")
        except UnicodeDecodeError:
            raise InvalidInput(f"{path}: sensor ids must be UTF-8 text or integers") from None
    elif sensor.dtype.kind not in "iuU":
        raise InvalidInput(f"{path}: sensor ids must be text or integers, got {sensor.dtype}")
    if sensor.dtype.kind != "U":
        return _integer_ids(sensor)
    ids, inverse = np.unique(np.asarray(sensor), return_inverse=True)
    return _named(ids, inverse.reshape(-1))


# -- the formats ------------------------------------------------------------------------------------


class _Format(NamedTuple):
    """How a suffix's files are read (a source of columns; their names alone) and written (bytes of columns)."""

    name: str
    source: Callable[[Path, _Request], Any] | None
    # of a table's parts (column dicts), the file's bytes, or a function that writes them into the
    # file-like it is given (see _files.write_atomic)
    write: Callable[[Iterator[dict[str, np.ndarray]]], Any] | None
    names: Callable[[Path, _Request], list[str]] | None = None


def _source(path: Path, request: _Request) -> Any:
    """The file's columns, in its suffix's format (CSV where the suffix is none of the others)."""
    form = _FORMATS.get(path.suffix.lower())
    return (form.source if form is not None and form.source is not None else _CsvSource)(path, request)


# -- the readers, one per kind of table -----------------------------------------------------------------


def _readings_of(source: Any, rows: np.ndarray | slice | None) -> dict[str, np.ndarray]:
    """The numeric columns (t_u, t_c, and sigma where the table has one) of ``rows``, float64,
    NaN where missing; a sigma present and not positive refused."""
    out = {role: source.numbers(role, rows) for role in ("t_u", "t_c", "sigma") if role in source.roles}
    if "sigma" in out:
        bad = out["sigma"] <= 0
        if bad.any():
            at = int(np.argmax(bad))
            raise InvalidInput(f"{source.path}: {source.where(_file_row(at, rows, source.n))}: "
                               f"{source.labels['sigma']} must be positive: {shown(out['sigma'][at])}")
    return out


def _cast(source: Any, values: dict[str, np.ndarray], keep: np.ndarray, dtype: Any,
          rows: np.ndarray | slice | None) -> dict[str, np.ndarray]:
    """The kept readings as ``dtype``; a value too large for it refused."""
    out = {}
    every = bool(keep.all())
    for role, column in values.items():
        with np.errstate(over="ignore"):
            out[role] = (column if every else column[keep]).astype(dtype)
        bad = ~np.isfinite(out[role])
        if bad.any():
            at = int(np.argmax(bad)) if every else int(np.flatnonzero(keep)[np.argmax(bad)])
            raise InvalidInput(f"{source.path}: {source.where(_file_row(at, rows, source.n))}: "
                               f"value too large for {np.dtype(dtype).name}")
    return out


def _present(values: dict[str, np.ndarray]) -> np.ndarray:
    """Which rows have every value (a source gives NaN only where a value is missing)."""
    return np.logical_and.reduce([~np.isnan(column) for column in values.values()])


class Readings(tuple):
    """One sensor's readings: unpacks as ``(t_u, t_c)``; the rest are attributes.

    Attributes:
      t_u, t_c: 1-D arrays of the readings kept, in file order.
      sigma: each reading's standard uncertainty (same shape), or ``None`` without a sigma column.
      dropped: how many readings were dropped for a missing value.
      total: the rows of the file (a process reading its share reads ``part(total)`` of them).
      sensor: the sensor's id where the table names it, else ``None``.
    """

    t_u: np.ndarray
    t_c: np.ndarray
    sigma: np.ndarray | None
    dropped: int
    total: int
    sensor: str | None

    def __new__(cls, t_u: np.ndarray, t_c: np.ndarray, sigma: np.ndarray | None = None, dropped: int = 0,
                total: int | None = None, sensor: str | None = None) -> Readings:
        self = super().__new__(cls, (t_u, t_c))
        self.t_u, self.t_c, self.sigma, self.dropped = t_u, t_c, sigma, dropped
        self.total = len(t_u) if total is None else total
        self.sensor = sensor
        return self


def read_readings(path: str | os.PathLike[str], dtype: Any = np.float32, *, columns: Mapping[str, str] | None = None,
                  separator: str | None = None, missing: Iterable[str] | None = None,
                  part: Part | None = None) -> Readings:
    """Read one sensor's readings: a table with columns ``t_u`` and ``t_c`` (CSV, Parquet,
    ``.npz``; or an ``(n, 2)`` ``.npy`` array), optionally ``sigma`` and ``sensor``.

    A reading with a missing value is dropped (and counted). A ``sensor`` column, where there is
    one, must name one sensor: a table of several is a fleet (:func:`read_fleet`).

    Args:
      path: the file; its suffix names the format (CSV for any suffix but ``.parquet``, ``.npz``, ``.npy``).
      dtype: the floating dtype to return; values that do not fit (overflow to inf) are refused.
      columns: role -> column name where a column is not named as its role (see :func:`parse_columns`).
      separator: a CSV file's separator; by default found from its header (comma, semicolon or tab).
      missing: the CSV cells that are missing values (default :data:`MISSING`: empty and ``NA``);
        naming ``NaN`` makes NaN a missing value in every format (else it is refused, as is inf).
      part: a process's share, ``part(n)`` of the ``n`` rows: only those are read from ``.npy``,
        uncompressed ``.npz`` and Parquet files (a CSV file is parsed whole). A share keeps every
        row (the shares must stay even): a missing value in it is refused.

    Returns:
      :class:`Readings`: ``t_u, t_c = read_readings(path)``, each a 1-D array of ``dtype``, at
      least 2 readings (of the whole file; a share may hold fewer).

    Raises:
      ValueError: one line naming the file, the line (or row) and the problem.
    """
    path = Path(path)
    request = _request("readings", columns, separator, missing, ("t_u", "t_c"), ("sensor", "sigma"))
    source = _source(path, request)
    n = source.n
    named = None
    sensor = None
    if "sensor" in source.roles:
        ids, inverse = source.ids()
        if len(ids) > 1:
            raise InvalidInput(f"{path}: names {len(ids)} sensors; a readings table holds one sensor's readings "
                               "(read a fleet's as a fleet)")
        sensor = str(ids[0]) if len(ids) else None
        named = inverse >= 0
    rows = None if part is None else part(n)
    if n < 2 and part is not None:
        raise InvalidInput(f"{path}: needs at least 2 readings, got {n}")
    values = _readings_of(source, rows)
    keep = _present(values)
    if named is not None:
        keep &= named if rows is None else named[rows]
    if part is not None and not keep.all():
        at = _file_row(int(np.argmin(keep)), rows, n)
        raise InvalidInput(f"{path}: {source.where(at)}: a value is missing; a process's share of the readings "
                           "keeps every row (the shares must stay even)")
    if part is None and keep.sum() < 2:
        dropped = f" ({len(keep) - int(keep.sum())} dropped for a missing value)" if not keep.all() else ""
        raise InvalidInput(f"{path}: needs at least 2 readings, got {int(keep.sum())}{dropped}")
    cast = _cast(source, values, keep, dtype, rows)
    return Readings(cast["t_u"], cast["t_c"], cast.get("sigma"), len(keep) - int(keep.sum()), n, sensor)


def read_readings_share(path: str | os.PathLike[str], dtype: Any, part: Part) -> tuple[np.ndarray, np.ndarray, int]:
    """One process's share of a readings file: ``(t_u, t_c)`` of the rows ``part(n)``, and ``n``
    (:func:`read_readings` with ``part``)."""
    readings = read_readings(path, dtype, part=part)
    return readings.t_u, readings.t_c, readings.total


class FleetTable(NamedTuple):
    """A long table of readings grouped by sensor: padded ``(sensors, max_readings)`` arrays.

    Every sensor the table names is here, also one whose every reading was dropped (0 readings).
    """

    sensors: np.ndarray  #: sensor ids as text (a Unicode array), sorted
    t_u: np.ndarray  #: ``(sensors, max_readings)``, padded with zeros past each sensor's count
    t_c: np.ndarray
    counts: np.ndarray  #: each sensor's readings
    sigma: np.ndarray | None = None  #: padded like t_u; ``None`` where the table has no sigma column
    dropped: np.ndarray | None = None  #: each sensor's readings dropped for a missing value
    no_sensor: int = 0  #: rows dropped for a missing sensor id (of the whole table)
    all_sensors: np.ndarray | None = None  #: every sensor of the file (a share's table holds some)

    @property
    def mask(self) -> np.ndarray:
        """Which entries of the padded arrays are readings: ``(sensors, max_readings)`` booleans."""
        return np.arange(self.t_u.shape[1])[None, :] < np.asarray(self.counts)[:, None]

    def select(self, rows: slice) -> FleetTable:
        """The table of the sensors ``rows`` (a slice of ``sensors``)."""
        return self._replace(sensors=self.sensors[rows], t_u=self.t_u[rows], t_c=self.t_c[rows],
                             counts=self.counts[rows], sigma=None if self.sigma is None else self.sigma[rows],
                             dropped=None if self.dropped is None else self.dropped[rows])


def read_fleet(path: str | os.PathLike[str], dtype: Any = np.float32, *, columns: Mapping[str, str] | None = None,
               separator: str | None = None, missing: Iterable[str] | None = None,
               part: Part | None = None) -> FleetTable:
    """Read a fleet: a long table with columns ``sensor``, ``t_u``, ``t_c`` (any order of rows),
    optionally ``sigma``, as CSV, Parquet or ``.npz``. Readings are grouped by sensor.

    A sensor id is text, kept as written (``007`` stays ``007``; ``S1`` and ``s1`` are two
    sensors; spaces around it are not part of it); ids stored as integers (a Parquet integer
    column, an integer array) are their decimal text. Sensors are sorted by id: as numbers when
    every id is an integer written plainly (``-?[1-9][0-9]*`` or ``0``), else as text.

    A reading with a missing value is dropped and counted in its sensor's ``dropped``; a row with
    no sensor id is dropped and counted in ``no_sensor``. A value present that is not a number,
    or not finite, is refused, naming its line.

    Args:
      path: the file; its suffix names the format (CSV for any suffix but ``.parquet`` and ``.npz``).
      dtype: the floating dtype of the readings; values that do not fit are refused.
      columns: role -> column name where a column is not named as its role (see :func:`parse_columns`).
      separator: a CSV file's separator; by default found from its header (comma, semicolon or tab).
      missing: the CSV cells that are missing values (default :data:`MISSING`: empty and ``NA``);
        naming ``NaN`` makes NaN a missing value in every format.
      part: a process's share: the sensors ``part(n)`` of the ``n`` sorted ids. Of ``.npz`` and
        Parquet files only the sensor column is read whole, of the readings only those rows.

    Returns:
      A :class:`FleetTable`; its ``sensors`` a Unicode array.

    Raises:
      ValueError: one line naming the file, the line (or row) and the problem.

    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "fleet.csv"
    >>> _ = path.write_text("Sensor;raw;celsius;site\\n007;35.7;0.5;a\\n007;;14.0;a\\n7;55.9;14.0;b\\n")
    >>> fleet = read_fleet(path, columns={"t_u": "raw", "t_c": "celsius"})
    >>> fleet.sensors.tolist(), fleet.counts.tolist(), fleet.dropped.tolist()
    (['007', '7'], [1, 1], [1, 0])
    """
    path = Path(path)
    request = _request("fleet", columns, separator, missing, ("sensor", "t_u", "t_c"), ("sigma",))
    source = _source(path, request)
    ids, inverse = source.ids()
    no_sensor = int(np.count_nonzero(inverse < 0))
    if source.n == 0:
        raise InvalidInput(f"{path}: has no readings")
    if not len(ids):
        raise InvalidInput(f"{path}: {source.where(0)}: sensor is empty, and so is every other row's: no sensor "
                           "to read")
    if part is None:
        mine, rows = slice(0, len(ids)), None
    else:
        mine = slice(*part(len(ids)).indices(len(ids))[:2])
        rows = np.flatnonzero((inverse >= mine.start) & (inverse < mine.stop))
    values = _readings_of(source, rows)
    whose = inverse if rows is None else inverse[rows] - mine.start
    present = _present(values)
    named = whose >= 0  # a row without an id (-1) is no sensor's
    if part is None and not (present & named).any():
        raise InvalidInput(f"{path}: has no readings: every row has a missing value")
    keep = present & named
    sensors = mine.stop - mine.start
    dropped = np.bincount(whose[named & ~present], minlength=sensors)
    cast = _cast(source, values, keep, dtype, rows)
    counts, padded = _padded(whose if keep.all() else whose[keep], cast, sensors)
    return FleetTable(ids[mine], padded["t_u"], padded["t_c"], counts, padded.get("sigma"), dropped, no_sensor, ids)


def _padded(whose: np.ndarray, values: dict[str, np.ndarray], sensors: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Readings grouped by sensor (``whose``: each one's), as padded ``(sensors, most)`` arrays,
    each sensor's in file order; and each sensor's count."""
    counts = np.bincount(whose, minlength=sensors)
    shape = (sensors, int(counts.max()) if sensors else 0)
    out = {role: np.zeros(shape, column.dtype) for role, column in values.items()}
    full = sensors * shape[1] == len(whose)  # every sensor the same count: no padding
    if full and np.all(whose[1:] >= whose[:-1]):  # and grouped by sensor: a reshape
        for role, column in values.items():
            out[role][:] = column.reshape(shape)
        return counts, out
    order = _stable_order(whose)  # readings keep their file order within a sensor
    if full:
        for role, column in values.items():
            out[role][:] = column[order].reshape(shape)
        return counts, out
    # the readings in sensor order fill each sensor's first ``count`` places, row by row: the
    # places a boolean mask takes in its (row-major) order
    mask = np.arange(shape[1])[None, :] < counts[:, None]
    for role, column in values.items():
        out[role][mask] = column[order]
    return counts, out


def _stable_order(keys: np.ndarray) -> np.ndarray:
    """``np.argsort(keys, kind="stable")`` of small non-negative integers (sensor numbers), by
    16-bit digits: NumPy sorts 16-bit integers by radix, in linear time (measured: 0.08 s for
    1.1 million keys below 100,000, against 0.3 s for the comparison sort of int64)."""
    if not len(keys) or int(keys.max()) >= 1 << 32:
        return np.argsort(keys, kind="stable")
    order = np.argsort((keys & 0xFFFF).astype(np.uint16), kind="stable")
    if int(keys.max()) >= 1 << 16:
        order = order[np.argsort((keys[order] >> 16).astype(np.uint16), kind="stable")]
    return order


def read_fleet_share(path: str | os.PathLike[str], dtype: Any, part: Part) -> tuple[FleetTable, np.ndarray]:
    """One process's share of a fleet: the table of the sensors ``part(n)`` (of the ``n`` sorted
    ids), and every sensor id (:func:`read_fleet` with ``part``)."""
    table = read_fleet(path, dtype, part=part)
    return table, table.all_sensors


def read_t_u(path: str | os.PathLike[str], *, columns: Mapping[str, str] | None = None,
             separator: str | None = None, missing: Iterable[str] | None = ()) -> np.ndarray:
    """Raw readings to convert: a CSV or Parquet file with a ``t_u`` column (other columns
    ignored), an ``.npz`` with an array ``t_u``, or a 1-D ``.npy`` array. Every row is converted:
    a missing value is refused.

    Args:
      path: the file.
      columns: ``{"t_u": name}`` where the column is named otherwise.
      separator: a CSV file's separator; by default found from its header.
      missing: the CSV cells that are missing values (``None``: :data:`MISSING`); each refused as
        missing, naming its line.

    Returns:
      The readings, float64, in file order.

    Raises:
      ValueError: one line naming the file, the line (or row) and the problem.
    """
    path = Path(path)
    request = _request("t_u", columns, separator, missing, ("t_u",), ())
    source = _source(path, request)
    values = source.numbers("t_u", None)
    gone = np.isnan(values)
    if gone.any():
        raise InvalidInput(f"{path}: {source.where(int(np.argmax(gone)))}: t_u is missing")
    if not len(values):
        raise InvalidInput(f"{path}: has no readings")
    return values


class LogTable(NamedTuple):
    """A log of raw readings from many sensors, in file order: each row's sensor and reading."""

    sensors: np.ndarray  #: the distinct sensor ids as text (a Unicode array), sorted as :func:`read_fleet` sorts them
    index: np.ndarray  #: each row's sensor, an index into ``sensors``; -1 where the row has no id
    t_u: np.ndarray  #: each row's reading, float64; NaN where the cell is a missing value


def read_log(path: str | os.PathLike[str], *, columns: Mapping[str, str] | None = None,
             separator: str | None = None, missing: Iterable[str] | None = None) -> LogTable:
    """Read a log of raw readings to convert: a table with columns ``sensor`` and ``t_u`` (other
    columns ignored), as CSV, Parquet or ``.npz``. Nothing is dropped: every row of the file is a
    row of the log, in file order.

    Sensor ids are read as :func:`read_fleet` reads them (text kept as written, spaces around an
    id not part of it, integers as their decimal text). A row without an id has index -1; a
    missing reading is NaN. A value present that is not a number, or not finite, is refused,
    naming its line.

    Args:
      path: the file; its suffix names the format (CSV for any suffix but ``.parquet`` and ``.npz``).
      columns: ``{"sensor": name, "t_u": name}`` where a column is not named as its role.
      separator: a CSV file's separator; by default found from its header.
      missing: the CSV cells that are missing values (default :data:`MISSING`: empty and ``NA``);
        naming ``NaN`` makes NaN a missing value in every format.

    Returns:
      A :class:`LogTable`.

    Raises:
      ValueError: one line naming the file, the line (or row) and the problem; a file of no rows.

    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "log.csv"
    >>> _ = path.write_text("id;raw\\nb;35.7\\na;NA\\n;12\\nb;55.9\\n")
    >>> log = read_log(path, columns={"sensor": "id", "t_u": "raw"})
    >>> log.sensors.tolist(), log.index.tolist(), log.t_u.tolist()
    (['a', 'b'], [1, 0, -1, 1], [35.7, nan, 12.0, 55.9])
    """
    return _log_rows(_log_source(path, columns, separator, missing), None)


#: The rows of each part :func:`read_log_parts` reads by default: pyarrow's default row group (a part's
#: columns in and out are about 50 MB).
LOG_PART_ROWS = 2**20


class LogParts(NamedTuple):
    """A log opened to be read a part at a time (:func:`read_log_parts`)."""

    readings: int  #: the log's rows, all parts together
    parts: Iterator[LogTable]  #: each part, in file order; read when the iterator reaches it


def read_log_parts(path: str | os.PathLike[str], *, columns: Mapping[str, str] | None = None,
                   separator: str | None = None, missing: Iterable[str] | None = None,
                   rows: int = LOG_PART_ROWS) -> LogParts:
    """:func:`read_log` a part at a time, for a log too large to hold, or to convert one part while
    the next is read and the last written.

    The file is opened here, and its header (or columns) checked; each part is read when the iterator
    reaches it, and an error in its cells is raised there, naming the file's line or row as
    :func:`read_log` does. A Parquet file is read ``rows`` at a time, whatever its row groups; an
    ``.npz`` archive stored uncompressed (``np.savez``) a part of its memory-mapped rows at a time. A
    CSV file is parsed whole here, and a compressed ``.npz`` archive read whole (their cells are
    converted part by part).

    Args:
      path, columns, separator, missing: as :func:`read_log`.
      rows: the rows of each part (the last may have fewer).

    Returns:
      A :class:`LogParts`: the log's rows, and an iterator of :class:`LogTable`, one per part, each of
      its own rows (its ``sensors`` the distinct ids of that part). Together they are the rows of
      :func:`read_log`, in the same order.

    Raises:
      ValueError, TypeError: as :func:`read_log`, and one line naming ``rows`` where it is not a
        positive integer.

    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "log.csv"
    >>> _ = path.write_text("sensor,t_u\\nb,35.7\\na,NA\\nb,55.9\\n")
    >>> log = read_log_parts(path, rows=2)
    >>> log.readings, [(part.sensors.tolist(), part.index.tolist()) for part in log.parts]
    (3, [(['a', 'b'], [1, 0]), (['b'], [0])])
    """
    rows = check_positive_int(rows, "rows")
    source = _log_source(path, columns, separator, missing)
    return LogParts(source.n, (_log_rows(source, part) for part in source.slices(rows)))


def _log_source(path: str | os.PathLike[str], columns: Mapping[str, str] | None, separator: str | None,
                missing: Iterable[str] | None) -> Any:
    path = Path(path)
    source = _source(path, _request("log", columns, separator, missing, ("sensor", "t_u"), ()))
    if source.n == 0:
        raise InvalidInput(f"{path}: has no readings")
    return source


def _log_rows(source: Any, rows: slice | None) -> LogTable:
    """A log's ``rows`` (all by default): their distinct ids, each row's index into them, its reading."""
    ids, index = source.ids(rows)
    return LogTable(ids, np.asarray(index, np.int64), source.numbers("t_u", rows))


def has_column(path: str | os.PathLike[str], role: str, *, columns: Mapping[str, str] | None = None,
               separator: str | None = None) -> bool:
    """Whether a table of readings to convert (one with a ``t_u`` column) has the column of
    ``role`` too, from its header, schema or array names alone: no rows are read.

    Names match as the readers match them (in any case, spaces around ignored; ``columns`` maps a
    role to its name). ``False`` where the file cannot be read or has no ``t_u`` column: the
    reader then says why.

    Args:
      path: the file.
      role: one of :data:`ROLES`.
      columns: role -> column name where a column is not named as its role.
      separator: a CSV file's separator; by default found from its header.

    Raises:
      ValueError: one line naming the argument at fault (an unknown role, a bad separator or mapping).
    """
    path = Path(path)
    if role not in ROLES:
        raise InvalidInput("role", f"unknown role {shown(role)}; the roles are {', '.join(ROLES)}")
    request = _request("t_u", {key: value for key, value in (columns or {}).items() if key == "t_u"}, separator,
                       None, ("t_u",), ())  # its arguments checked as the readers check them
    names = _mapping({key: value for key, value in (columns or {}).items() if key in ("t_u", role)})
    request = request._replace(names=names, optional=(role,) if role != "t_u" else ())
    try:
        form = _FORMATS.get(path.suffix.lower())
        found = (form.names if form is not None and form.names is not None else _csv_names)(path, request)
        roles, _ = _match(path, found, request, "columns", strict=False)
    except (OSError, ValueError, TypeError):
        return False
    return roles is not None and role in roles


class Coded:
    """A text column given as its distinct values and each row's index into them, for
    :func:`write_table`: a column of few values over many rows (a log's sensor ids, its statuses)
    that need not be spelt out row by row in memory.

    Attributes:
      values: the distinct values, text.
      codes: each row's index into ``values``.
    """

    def __init__(self, values: Any, codes: Any) -> None:
        self.values = np.asarray(values, str)
        self.codes = np.asarray(codes)
        if self.codes.ndim != 1 or not np.issubdtype(self.codes.dtype, np.integer):
            raise InvalidInput(f"codes: must be a 1-D array of integers, got {shown(codes)}")
        if len(self.codes) and (int(self.codes.min()) < 0 or int(self.codes.max()) >= len(self.values)):
            raise InvalidInput(f"codes: each must index values, in [0, {len(self.values)})")

    def __len__(self) -> int:
        return len(self.codes)

    def decoded(self) -> np.ndarray:
        """Each row's value, a Unicode array."""
        return self.values[self.codes]

    def arrow(self) -> Any:
        """Each row's value, a pyarrow text array (decoded in C++)."""
        import pyarrow as pa

        return pa.array(self.values, pa.string()).take(pa.array(self.codes))

    def dictionary(self) -> Any:
        """The column as a pyarrow dictionary array (its codes as int32 where they fit)."""
        import pyarrow as pa

        small = len(self.values) < 2**31
        return pa.DictionaryArray.from_arrays(pa.array(self.codes.astype(np.int32) if small else self.codes),
                                              pa.array(self.values, pa.string()))


# -- writing ----------------------------------------------------------------------------------------


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
    writes = [key for key, form in _FORMATS.items() if form.write is not None]
    if suffix not in writes:
        what = f"unknown table format {target.suffix!r}" if target.suffix else "no suffix to tell the table format"
        raise InvalidInput(name, f"{target.name}: {what}; jaxcal writes {', '.join(writes[:-1])} or {writes[-1]}")
    return _FORMATS[suffix].name


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
      columns: 1-D arrays of equal length, by column name (numbers, booleans or text); a text column
        may be :class:`Coded` (its distinct values and each row's index), written as the text it codes.
      name: what to call ``path`` in an error (``--out`` on the command line).

    Raises:
      ValueError: one line naming ``name``: an unknown suffix (see :func:`table_format`), or the
        file cannot be written.
    """
    write_table_parts(path, (columns,), name)


def write_table_parts(path: str | os.PathLike[str], parts: Iterable[dict[str, np.ndarray]],
                      name: str = "path") -> None:
    """Write a table given a part at a time (the same columns in each), atomically, as :func:`write_table`
    writes it whole: the same file, but a CSV or Parquet file is written as each part comes, so the
    table is never all in memory at once (a Parquet row group per part, of at most 2**20 rows). JSON and
    ``.npz`` files are written once all parts are in.

    Args:
      path: the file; its suffix (in any case) names the format.
      parts: an iterable of column dicts, each as :func:`write_table` takes them; at least one.
      name: what to call ``path`` in an error (``--out`` on the command line).

    Raises:
      ValueError: as :func:`write_table`; no part, or a part whose columns are not the first's. An
        error raised while the parts are made is raised as it is, and no file is left.
    """
    from ._files import write_atomic

    target = Path(path)
    kind = table_format(target, name)
    parts = iter(parts)
    first = next(parts, None)
    if first is None:
        raise InvalidInput(name, f"{target.name}: no parts to write")
    keys = list(first)
    kinds = {key: _kind(value) for key, value in first.items()}

    def normal(columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if list(columns) != keys:
            raise InvalidInput(name, f"{target.name}: a part's columns {list(columns)} are not the first's {keys}")
        for key, value in columns.items():
            if _kind(value) != kinds[key]:
                raise InvalidInput(name, f"{target.name}: a part's column {key!r} holds {_kind(value)}, the first's "
                                         f"{kinds[key]}")
        return {key: (value if kind in ("CSV", "Parquet") else value.decoded()) if isinstance(value, Coded) else
                np.char.decode(value, "utf-8") if np.asarray(value).dtype.kind == "S" else
                np.asarray(value).astype(str) if np.asarray(value).dtype.kind == "O" else np.asarray(value)
                for key, value in columns.items()}

    write = _FORMATS[target.suffix.lower()].write
    assert write is not None
    write_atomic(target, write(normal(columns) for columns in itertools.chain((first,), parts)), name=name)


def _kind(values: Any) -> str:
    """What a column holds, as the table formats tell them apart: text, integers, floats or booleans."""
    if isinstance(values, Coded):
        return "text"
    kind = np.asarray(values).dtype.kind
    return {"f": "floats", "i": "integers", "u": "integers", "b": "booleans"}.get(kind, "text")


def _joined(parts: Iterator[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The parts of a table as one (the formats written whole)."""
    listed = list(parts)
    if len(listed) == 1:
        return listed[0]
    return {key: np.concatenate([part[key] for part in listed]) for key in listed[0]}


def _npz_bytes(parts: Iterator[dict[str, np.ndarray]]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **_joined(parts))
    return buffer.getvalue()


def _compression(table: Any) -> dict[str, str]:
    """Each column's codec: snappy, but none for a float column whose first finite values snappy cannot
    shrink by a tenth (full-precision results: trying costs a fifth of the writing, for nothing)."""
    import pyarrow as pa

    codecs = {}
    for name, column in zip(table.column_names, table.columns, strict=True):
        codecs[name] = "snappy"
        if pa.types.is_floating(column.type):
            values = column.slice(0, 64 * _SAMPLE_VALUES).to_numpy()
            sample = np.ascontiguousarray(values[np.isfinite(values)][:_SAMPLE_VALUES])
            if len(sample) and pa.compress(pa.py_buffer(sample), codec="snappy").size > 0.9 * sample.nbytes:
                codecs[name] = "none"
    return codecs


#: The values of a column :func:`_compression` tries snappy on.
_SAMPLE_VALUES = 1 << 14


def _parquet_writer(parts: Iterator[dict[str, np.ndarray]]) -> Callable[[Any], None]:
    """A writer of the parts of a table as a Parquet file, into the file-like it is given: pyarrow streams
    each page as it encodes it (a 10,000,000-reading log's conversion is ~310 MB: never held in memory
    whole, nor copied from a buffer into the file)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    def write(sink: Any) -> None:
        writer = None
        try:
            for columns in parts:
                table = pa.table({key: value.dictionary() if isinstance(value, Coded) else pa.array(value)
                                  for key, value in columns.items()})
                if writer is None:
                    # a dictionary for the columns whose values repeat (ids, statuses); floats rarely do, and
                    # trying one for them costs a tenth of the writing, to be thrown away. A coded column is
                    # written as the dictionary it is, without statistics (their min and max over the text
                    # cost three times the rest of its writing); without pyarrow's own schema, it reads back
                    # as the text it codes.
                    repeat = [key for key, field in zip(table.column_names, table.schema, strict=True)
                              if not pa.types.is_floating(field.type)]
                    plain = [key for key, value in columns.items() if not isinstance(value, Coded)]
                    writer = pq.ParquetWriter(sink, table.schema, use_dictionary=repeat,
                                              write_statistics=plain or False, store_schema=False,
                                              compression=_compression(table))
                elif not table.schema.equals(writer.schema):  # a part of other widths (int32 for int64 ...)
                    table = table.cast(writer.schema)
                writer.write_table(table)
        finally:
            if writer is not None:
                writer.close()

    return write


def _json_bytes(parts: Iterator[dict[str, np.ndarray]]) -> bytes:
    """A table as a JSON array of row objects, one per line; a non-finite number as null."""
    import json

    columns = _joined(parts)
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


def _csv_writer(parts: Iterator[dict[str, np.ndarray]]) -> Callable[[Any], None]:
    """A writer of the parts of a table as CSV, into the file-like it is given: the header, then each
    part's rows as it comes (:func:`_csv_rows`)."""

    def write(sink: Any) -> None:
        for number, columns in enumerate(parts):
            if number == 0:
                header = io.StringIO()
                csv.writer(header, lineterminator="\n").writerow(list(columns))
                sink.write(header.getvalue().encode())
            for piece in _csv_rows(columns):
                sink.write(piece)

    return write


def _csv_rows(columns: dict[str, np.ndarray]) -> list[Any]:
    """The rows of ``columns`` as CSV (buffers of bytes, in order): pyarrow's writer (in C++) when no
    text cell needs quotes, which numbers and plain ids never do; else cell by cell, the few quoted as
    the csv module would."""
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    if not len(next(iter(columns.values()), [])):
        return []
    # float32 values print as the doubles they are: the shortest text that reads back to them
    arrays = {key: value.arrow() if isinstance(value, Coded) else
              pa.array(value.astype(np.float64) if value.dtype.kind == "f" else value)
              for key, value in columns.items()}
    # a Unicode array's code points, all checked at once (of a coded column, its distinct values')
    if any(text.dtype.kind == "U" and np.isin(np.ascontiguousarray(text).view(np.uint32), _QUOTED).any()
           for text in (value.values if isinstance(value, Coded) else value for value in columns.values())):
        return [_csv_quoted(arrays).encode()]
    table = pa.table(arrays)

    def rows(part: Any) -> Any:  # a pyarrow buffer, written as it is
        sink = pa.BufferOutputStream()
        pa_csv.write_csv(part, sink, pa_csv.WriteOptions(include_header=False, quoting_style="none",
                                                         batch_size=1 << 16))
        return sink.getvalue()

    # pyarrow's writer runs on one core, without Python's lock: a large table is written in one
    # part per core at once, the parts in order (the same bytes as one part)
    parts = min(os.cpu_count() or 1, len(table) // _CSV_PART_ROWS) or 1
    if parts == 1:
        return [rows(table)]
    from concurrent.futures import ThreadPoolExecutor

    bounds = [len(table) * k // parts for k in range(parts + 1)]
    with ThreadPoolExecutor(parts, thread_name_prefix="jaxcal-csv") as pool:
        return list(pool.map(lambda k: rows(table.slice(bounds[k], bounds[k + 1] - bounds[k])), range(parts)))


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


#: Each suffix's format: how its files are read and written (a file of any other suffix is read as CSV).
_FORMATS = {
    ".csv": _Format("CSV", _CsvSource, _csv_writer, _csv_names),
    ".json": _Format("JSON", None, _json_bytes),
    ".parquet": _Format("Parquet", _ParquetSource, _parquet_writer, _parquet_names),
    ".npz": _Format("NumPy", _NpzSource, _npz_bytes, lambda path, request: list(_npz_members(path))),
    ".npy": _Format("NumPy", _NpySource, None, lambda path, request: []),
}
