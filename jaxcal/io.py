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

import numpy as np

from ._checks import InvalidInput

__all__ = ["read_readings"]

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


def read_readings(path: str | os.PathLike[str], dtype: np.dtype | type = np.float32) -> tuple[np.ndarray, np.ndarray]:
    """Read ``(t_u, t_c)`` from a CSV file with the header ``t_u,t_c``.

    Args:
      path: the CSV file.
      dtype: the floating dtype to return; values that do not fit (overflow to inf) are refused.

    Returns:
      ``(t_u, t_c)``, two 1-D arrays of ``dtype`` with at least 2 entries each.

    Raises:
      ValueError: one line naming the file, the line and the problem.
    """
    path = Path(path)
    text = _open_text(path)
    rows = [row for row in csv.reader(text.splitlines()) if any(cell.strip() for cell in row)]
    header = [cell.strip() for cell in rows[0]]
    if sorted(header) != sorted(_COLUMNS):
        raise InvalidInput(f"{path}: line 1: expected the header 't_u,t_c', got {','.join(header)!r}")
    order = [header.index(name) for name in _COLUMNS]
    values: list[list[float]] = []
    for line_no, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise InvalidInput(f"{path}: line {line_no}: expected {len(header)} values, got {len(row)}")
        parsed = []
        for column, index in zip(_COLUMNS, order, strict=True):
            cell = row[index].strip()
            try:
                value = float(cell)
            except ValueError:
                raise InvalidInput(f"{path}: line {line_no}: {column} is not a number: {cell!r}") from None
            if not math.isfinite(value):
                raise InvalidInput(f"{path}: line {line_no}: {column} is not finite: {cell!r}")
            parsed.append(value)
        values.append(parsed)
    if len(values) < 2:
        raise InvalidInput(f"{path}: needs at least 2 readings, got {len(values)}")
    table = np.asarray(values, dtype=np.float64)
    with np.errstate(over="ignore"):
        cast = table.astype(dtype)
    if not np.all(np.isfinite(cast)):
        line_no = int(np.argwhere(~np.isfinite(cast))[0][0]) + 2
        raise InvalidInput(f"{path}: line {line_no}: value too large for {np.dtype(dtype).name}")
    return cast[:, 0].copy(), cast[:, 1].copy()
