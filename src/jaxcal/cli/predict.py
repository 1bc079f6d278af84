"""``jaxcal predict``: raw readings to Celsius with their intervals, through a saved calibration or one
sensor's row of a fleet's results table; or a whole log of many sensors' readings (a ``--data`` table
with a sensor column), each reading through its own sensor's row of a fleet's results table."""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import math
import os
import zipfile
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

import numpy as np

from .. import _checks
from . import _parser
from ._outputs import write
from ._settings import check_output, choice, flagged, float_arg

__all__ = ["JSON_MOST", "add_parser", "run"]

#: The most readings ``--json`` prints as columns; a larger log is written with ``--out``.
JSON_MOST = 100_000

#: A log's row statuses that are not a sensor's reason for having no fit, in their codes' order.
STATUSES = ("ok", "missing reading", "no calibration", "no sensor", "not finite")
_OK, _MISSING, _NO_CALIBRATION, _NO_SENSOR, _NOT_FINITE = range(len(STATUSES))


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = _parser.subcommand(
        commands, "predict", help="convert raw readings to Celsius with a saved calibration",
        description="Apply a calibration saved by 'jaxcal train --save', or a sensor's row of a 'jaxcal fleet --out' "
                    "results table, to raw readings, with each one's interval; or convert a log of many sensors' "
                    "readings, each through its own sensor's row.",
        examples=["jaxcal predict --cal cal.json 45.1 60.2", "jaxcal predict --cal cal.json --data readings.csv",
                  "jaxcal predict --cal fits.parquet --data log.csv --out converted.parquet"])
    parser.add_argument("readings", nargs="*", metavar="T_U", help="raw readings to convert")
    parser.add_argument("--cal", required=True, metavar="FILE",
                        help="a calibration saved by 'jaxcal train --save', or a 'jaxcal fleet --out' results table "
                             "(.csv, .parquet, .npz, .json) with --sensor ID")
    parser.add_argument("--sensor", metavar="ID", help="the sensor whose calibration in a fleet's results to apply "
                        "(to every reading, also of a --data table with a sensor column)")
    parser.add_argument("--data", metavar="FILE", help="a table with a t_u column (CSV, Parquet, or .npz/.npy arrays) "
                        "instead of readings on the line; with a sensor column too, and a fleet's results table as "
                        "--cal (no --sensor), a log: each reading through its own sensor's calibration (ids matched "
                        "as text), every row kept, in order, with its status")
    parser.add_argument("--out", metavar="FILE", help="write a log's converted readings here (atomically), one row per "
                        "row of --data in its order: sensor, t_u, t_c, low, high, status (ok, or why not: no "
                        "calibration, no fit: the sensor's reason, missing reading, no sensor, not "
                        "finite), as .csv or .parquet (or .json, .npz); the summary is printed")
    parser.add_argument("--columns", metavar="MAP", help="which columns of --data hold what, role=name pairs: sensor "
                        "and t_u, e.g. sensor=sensor_id,t_u=raw; names match in any case, other columns are ignored")
    parser.add_argument("--separator", metavar="CHAR", help="--data's separator, a CSV file's (default: found from "
                        "its header: comma, semicolon or tab)")
    parser.add_argument("--missing", metavar="LIST", help="the cells of --data that are missing values, "
                        "comma-separated (default: empty and NA); a log's missing reading is a row with status "
                        "'missing reading', elsewhere one is refused")
    parser.add_argument("--level", default="0.95", metavar="P", help="the interval's coverage (default 0.95)")
    parser.add_argument("--interval", default="prediction", metavar="KIND",
                        help="prediction: where a new reading's true value falls (default); confidence: the band of "
                             "the calibration's mean")
    parser.add_argument("--json", action="store_true", help="print one JSON object: t_u, t_c, low and high, a list "
                        "each (low and high null where the calibration has no uncertainty); of a log, sensor and "
                        f"status too (at most {JSON_MOST:,} readings: write more with --out), or with --out the "
                        "summary's counts")


class _Chosen(NamedTuple):
    """One calibration as the interval needs it: params applying to ``scale * t_u``."""

    params: np.ndarray
    cov: np.ndarray | None
    model: str
    scale: float
    residual_sd: float
    dof: int | None


def _saved(path: str) -> _Chosen:
    from ..calibration import load_calibration

    calibration = load_calibration(path)
    if calibration.refusal is not None:  # before reading --data: no reading would be converted
        raise _checks.InvalidInput("--cal", f"{path}: {calibration.refusal}")
    cov = None if calibration.cov is None else np.asarray(calibration.cov, np.float64)
    return _Chosen(np.asarray(calibration.params, np.float64), cov, calibration.model, calibration.scale,
                   np.nan if calibration.residual_sd is None else float(calibration.residual_sd), calibration.dof)


def _results(path: str) -> dict[str, np.ndarray]:
    """A ``fleet --out`` table's columns, in any of its formats: text, numbers or objects (``None`` or
    empty text where a value is missing)."""
    from ..io import table_format

    kind = table_format(path, "--cal")
    if not os.path.isfile(path):
        what = "is a directory" if os.path.isdir(path) else "no such file"
        raise _checks.InvalidInput("--cal", f"{path}: {what}; expected a fleet's results table (fleet --out)")
    try:
        if kind == "NumPy":
            with np.load(path, allow_pickle=False) as archive:
                return {name: np.asarray(archive[name]) for name in archive.files}
        if kind == "Parquet":
            import pyarrow.parquet as pq

            table = pq.read_table(path)
            return {name: table.column(name).to_numpy(zero_copy_only=False) for name in table.column_names}
        if kind == "JSON":
            try:
                with open(path, encoding="utf-8") as file:
                    rows = json.load(file)
            except (ValueError, RecursionError) as error:  # a nesting too deep is Python's RecursionError
                what = "nested too deeply" if isinstance(error, RecursionError) else str(error)
                raise _checks.InvalidInput("--cal", f"{path}: not valid JSON ({what})") from None
            return ({name: _objects([row.get(name) for row in rows]) for name in rows[0]} if rows else {})
        with open(path, newline="", encoding="utf-8") as file:
            header, *rows = list(csv.reader(file))
        return {name: np.array([row[j] for row in rows], dtype=str) for j, name in enumerate(header)}
    # EOFError, BadZipFile: an empty or cut-off .npz
    except (OSError, EOFError, zipfile.BadZipFile, ValueError, KeyError, IndexError, AttributeError,
            TypeError) as error:
        raise _checks.InvalidInput("--cal", f"{path}: not a fleet's results table ({error})") from None


def _objects(values: list) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def _from_results(path: str, sensor: str | None) -> _Chosen:
    """One sensor's calibration from a fleet's results table (its params apply to ``scale * t_u``): its row
    of :func:`_fleet`, read and checked as a log's conversion reads them."""
    fleet = _fleet(path)
    if sensor is None:
        if len(fleet.ids) != 1:
            raise _checks.InvalidInput("--sensor", f"{path} holds {len(fleet.ids)} sensors' calibrations; say which "
                                                   "with --sensor ID")
        sensor = str(fleet.ids[0])
    i = int(_matched(fleet, np.array([sensor.strip()]))[0])
    if i < 0:
        raise _checks.InvalidInput("--sensor", f"{sensor!r} is not a sensor of {path}")
    if not fleet.usable[i]:
        raise _checks.InvalidInput("--sensor", f"sensor {sensor} has no calibration in {path} ({fleet.why[i]})")
    m = int(fleet.model[i])
    dof = float(fleet.dof[i])
    return _Chosen(fleet.params[m][i], fleet.cov[m][i], fleet.models[m], float(fleet.scale[i]),
                   float(fleet.residual_sd[i]), None if math.isnan(dof) else int(dof))


def run(args: argparse.Namespace) -> int:
    from ..intervals import INTERVALS, predict

    interval = choice(args.interval, INTERVALS, "--interval", "interval")
    level = float_arg(args.level, "--level")
    if not 0 < level < 1:
        raise _checks.InvalidInput("--level", f"must be strictly between 0 and 1, got {args.level!r}")
    if args.data and args.readings:
        raise _checks.InvalidInput("predict", "give readings on the command line or --data, not both")
    reading = _reading_flags(args)
    saved = args.cal.endswith(".json") and _starts_with_brace(args.cal)
    if saved and args.sensor is not None:
        raise _checks.InvalidInput("--sensor", f"{args.cal} is one saved calibration; --sensor picks a row of a "
                                               "fleet's results table")
    if args.data and not saved and args.sensor is None and _is_log(args.data, reading):
        return _run_log(args, reading, level, interval)
    if args.out is not None:
        raise _checks.InvalidInput("--out", "writes a log's converted readings: --data with a sensor column, and a "
                                            "fleet's results table as --cal (without --sensor)")
    chosen = _saved(args.cal) if saved else _from_results(args.cal, args.sensor)
    if args.data:
        from ..io import read_t_u

        t_u = {"t_u": reading["columns"]["t_u"]} if reading["columns"] and "t_u" in reading["columns"] else None
        readings = flagged(lambda: read_t_u(args.data, columns=t_u, separator=reading["separator"],
                                             missing=reading["missing"]), args.data)
    else:
        if not args.readings:
            raise _checks.InvalidInput("predict", "give readings to convert, e.g. jaxcal predict --cal cal.json 45.1")
        readings = np.asarray([float_arg(v, "T_U") for v in args.readings])
        _checks.check_finite_array(readings, "T_U")
    readings = np.asarray(readings, np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        scaled = chosen.scale * readings
    known = chosen.cov is not None and chosen.dof is not None
    cov = chosen.cov if known else np.zeros((len(chosen.params),) * 2)
    got = predict(scaled, chosen.params, cov, model=chosen.model, residual_sd=chosen.residual_sd,
                  dof=chosen.dof if known else None, level=level, interval=interval)
    # the value itself in float64 (NumPy, as a saved calibration always converted); the interval's half-width
    # from the intervals' program, in the dtype JAX runs (float32 unless x64: a relative 6e-8 of the width)
    from ..core import resolve_model

    with np.errstate(over="ignore", invalid="ignore"):
        celsius = np.asarray(resolve_model(chosen.model).fn(scaled, *chosen.params), np.float64)
    half = (np.asarray(got.high, np.float64) - np.asarray(got.low, np.float64)) / 2
    low, high = celsius - half, celsius + half
    if not np.all(np.isfinite(celsius)):
        raise _checks.InvalidInput("t_u: a converted reading is not finite (a reading too large for this calibration)")
    if not known:
        low = high = np.full_like(celsius, np.nan)
    if args.json:
        print(json.dumps({"t_u": readings.tolist(), "t_c": celsius.tolist(), "low": _listed(low),
                          "high": _listed(high), "level": level, "interval": interval}))
    else:
        what = f"{level:g} {interval} interval"
        for raw, value, lo, hi in zip(readings.tolist(), celsius.tolist(), low.tolist(), high.tolist(), strict=True):
            bounds = f"  [{lo:.4f}, {hi:.4f}] ({what})" if math.isfinite(lo) and math.isfinite(hi) else ""
            print(f"{raw:g} -> {value:.4f}{bounds}")
    return 0


def _listed(values: np.ndarray) -> list[float | None]:
    """Numbers for JSON: one that is not finite as ``None``."""
    cells = values.tolist()
    for i in np.flatnonzero(~np.isfinite(values)).tolist():
        cells[i] = None
    return cells


# -- flags of the --data table ---------------------------------------------------------------------------


def _reading_flags(args: argparse.Namespace) -> dict:
    """``--columns``, ``--separator`` and ``--missing`` as the table readers take them."""
    from ..io import parse_columns

    given = [flag for flag, value in (("--columns", args.columns), ("--separator", args.separator),
                                      ("--missing", args.missing)) if value is not None]
    if given and not args.data:
        raise _checks.InvalidInput(given[0], "describes the --data table; give one with --data FILE")
    try:
        mapping = None if args.columns is None else parse_columns(args.columns)
    except _checks.InvalidInput as error:  # the library names its argument; the command line names the flag
        raise _checks.InvalidInput("--columns", str(error).removeprefix("columns: ")) from None
    extra = sorted(set(mapping or {}) - {"sensor", "t_u"})
    if extra:
        raise _checks.InvalidInput("--columns", f"role {extra[0]} is not read by predict; its roles are sensor "
                                                "and t_u")
    return {"columns": mapping, "separator": args.separator,
            "missing": None if args.missing is None else [cell.strip() for cell in args.missing.split(",")]}


def _is_log(data: str, reading: dict) -> bool:
    """Whether ``--data`` is a log of many sensors' readings: its sensor column mapped, or there; or a
    table not readable as readings alone either (the log's reader then says what it lacks)."""
    from ..io import has_column

    mapping = reading["columns"] or {}
    if "sensor" in mapping:
        return True
    return flagged(lambda: has_column(data, "sensor", columns=mapping, separator=reading["separator"])
                    or not has_column(data, "t_u", columns=mapping, separator=reading["separator"]), data)


# -- a log: each reading through its own sensor's calibration ----------------------------------------------


class _Fleet(NamedTuple):
    """A fleet's calibrations, one per row of its results table: what a log's readings need of them."""

    ids: np.ndarray  # each row's sensor id (text)
    model: np.ndarray  # each row's model, an index into models
    models: list[str]
    params: list[np.ndarray]  # per model: (rows, k) float64, NaN but in that model's rows
    cov: list[np.ndarray]  # per model: (rows, k, k)
    residual_sd: np.ndarray
    dof: np.ndarray  # float64, NaN where unknown
    scale: np.ndarray
    usable: np.ndarray  # whether the row's params are all finite
    why: np.ndarray  # the row's reason for no fit (its reason, else its status); "" where usable
    order: np.ndarray  # the rows in the order of their ids (sorted as text): each log's part is matched by it


def _texts(values: np.ndarray) -> np.ndarray:
    """A column as text (a Unicode array): a missing value (``None``) as empty."""
    values = np.asarray(values)
    if values.dtype.kind == "O":
        return np.array(["" if v is None else str(v) for v in values.tolist()], dtype=str)
    return values.astype(str)


def _floats(path: str, columns: dict[str, np.ndarray], name: str) -> np.ndarray:
    """A column as float64: empty text, ``None`` and ``NA`` as NaN; a cell that is not a number refused."""
    values = np.asarray(columns[name])
    if values.dtype.kind in "iufb":
        return values.astype(np.float64)
    text = np.char.strip(_texts(values))
    text = np.where((text == "") | (text == "NA"), "nan", text)
    try:
        return text.astype(np.float64)
    except ValueError:
        for i, cell in enumerate(text.tolist()):
            try:
                float(cell)
            except ValueError:
                raise _checks.InvalidInput("--cal", f"{path}: row {i + 1}: {name} is not a number: "
                                                    f"{_checks.shown(cell)}") from None
        raise


def _fleet(path: str) -> _Fleet:
    """Every calibration of a fleet's results table (``jaxcal fleet --out``), column by column."""
    from ..core import resolve_model

    columns = _results(path)
    for need in ("sensor", "model", "status", "scale", "residual_sd", "dof"):
        if need not in columns:
            raise _checks.InvalidInput("--cal", f"{path}: not a fleet's results table (no {need!r} column)")
    ids = np.char.strip(_texts(columns["sensor"]))
    order = np.argsort(ids, kind="stable")
    twice = np.flatnonzero(ids[order][1:] == ids[order][:-1])
    if twice.size:
        raise _checks.InvalidInput("--cal", f"{path}: sensor {_checks.shown(str(ids[order][twice[0]]))} has two "
                                            "rows; a fleet's results hold one per sensor")
    models, model = np.unique(_texts(columns["model"]), return_inverse=True)
    model = model.reshape(-1)
    n = len(ids)
    params, cov, usable = [], [], np.zeros(n, bool)
    for m, text in enumerate(models.tolist()):
        try:
            names = resolve_model(text).param_names
        except _checks.InputError as error:
            raise _checks.InvalidInput("--cal", f"{path}: sensor {ids[np.argmax(model == m)]}'s model: "
                                                f"{error.problem or error}") from None
        mine = model == m
        try:
            p = np.stack([np.where(mine, _floats(path, columns, name), np.nan) for name in names], axis=1)
            c = np.stack([np.stack([np.where(mine, _floats(path, columns, f"cov_{names[min(a, b)]}_{names[max(a, b)]}"),
                                             np.nan) for b in range(len(names))], axis=1)
                          for a in range(len(names))], axis=1)
        except KeyError as missing:
            raise _checks.InvalidInput("--cal", f"{path}: no column {missing} for the {text} model") from None
        usable |= mine & np.all(np.isfinite(p), axis=1)
        params.append(p)
        cov.append(c)
    reason = _texts(columns["reason"]) if "reason" in columns else np.full(n, "")
    status = _texts(columns["status"])
    why = np.where(usable, "", np.where(np.char.strip(reason) != "", reason, status))
    return _Fleet(ids, model, models.tolist(), params, cov, _floats(path, columns, "residual_sd"),
                  _floats(path, columns, "dof"), _floats(path, columns, "scale"), usable, why, order)


def _matched(fleet: _Fleet, sensors: np.ndarray) -> np.ndarray:
    """Each of ``sensors``' row in the fleet's results (ids equal as text), -1 where it has none."""
    order = fleet.order
    known = fleet.ids[order]
    if not len(known):
        return np.full(len(sensors), -1, np.int64)
    at = np.minimum(np.searchsorted(known, sensors), len(known) - 1)
    return np.where(known[at] == sensors, order[at], -1)


def _bucket(n: int) -> int:
    """The length a log's ``n`` readings are padded to for the intervals' program: a power of two up to a
    part (:data:`jaxcal.io.LOG_PART_ROWS`), a multiple of a part above. Each length is a program of its
    own (~0.15 s to compile); a log's parts, and a fleet's models within them, select counts that vary."""
    from .. import io

    if n > io.LOG_PART_ROWS:
        return -(-n // io.LOG_PART_ROWS) * io.LOG_PART_ROWS
    return 1 << max(n - 1, 0).bit_length()


def _padded(values: np.ndarray, fill: Any) -> np.ndarray:
    out = np.full(_bucket(len(values)), fill, values.dtype)
    out[:len(values)] = values
    return out


class _Conversion:
    """A log's readings, each through its own sensor's calibration, a part of the log at a time; what the
    log's summary says, gathered part by part (each status's count, the distinct sensors).

    Each part's columns: ``sensor`` and ``status`` are :class:`jaxcal.io.Coded` text; ``t_u``, ``t_c``,
    ``low`` and ``high`` float64, NaN but where a reading converted. As for one calibration, the value is
    computed in float64 on the host and the interval's half-width by the intervals' program (one gather and
    one fused pass over the readings per model of the fleet, its calibrations packed once for all parts:
    :func:`jaxcal.intervals.table_predictor`).
    """

    def __init__(self, fleet: _Fleet, level: float, interval: str) -> None:
        from ..intervals import table_predictor

        self.fleet = fleet
        # per model with a calibration: its predictor, its rows (and a last entry for row -1, no row: not
        # its) and its params (for row -1: NaN)
        self.predictors, self.rows, self.params = {}, {}, {}
        for m, model in enumerate(fleet.models):
            used = fleet.usable & (fleet.model == m)
            if used.any():
                self.predictors[m] = table_predictor(fleet.params[m], fleet.cov[m], fleet.residual_sd, fleet.dof,
                                                     model=model, level=level, interval=interval)
                self.rows[m] = np.append(used, False)
                self.params[m] = np.append(fleet.params[m], np.full((1, fleet.params[m].shape[1]), np.nan), axis=0)
        # each row's usability and reason, and for an index of -1 (no row) the entry appended last
        self.usable = np.append(fleet.usable, False)
        self.why = np.append(fleet.why, "")
        self._counts: dict[str, int] = {}
        self.known = np.zeros(len(fleet.ids), bool)  # the fleet's rows some reading names
        self.unknown: set[str] = set()  # ids the fleet has no row for

    @property
    def sensors(self) -> int:
        return int(self.known.sum()) + len(self.unknown)

    @property
    def counts(self) -> dict[str, int]:
        """Each status's readings, in the order of :data:`STATUSES`, then the reasons for no fit sorted:
        the same however the log was split into parts."""
        return dict(sorted(self._counts.items(), key=lambda item: (
            STATUSES.index(item[0]) if item[0] in STATUSES else len(STATUSES), item[0])))

    def __call__(self, log: Any) -> dict[str, Any]:
        """``log``'s (a part's) columns, counted."""
        match = _matched(self.fleet, log.sensors)
        self.known[match[match >= 0]] = True
        self.unknown.update(log.sensors[match < 0].tolist())
        columns = self._converted(log, match)
        status = columns["status"]
        for name, count in zip(status.values.tolist(), np.bincount(status.codes, minlength=len(status.values)).tolist(),
                               strict=True):
            if count:
                self._counts[name] = self._counts.get(name, 0) + count
        return columns

    def _converted(self, log: Any, match: np.ndarray) -> dict[str, Any]:
        """The columns of ``log``, whose ids' rows in the fleet are ``match`` (-1: none)."""
        from ..core import resolve_model
        from ..io import Coded

        fleet = self.fleet
        n = len(log.t_u)
        # each distinct id's status: its calibration, none, or its sensor's reason for none
        usable = self.usable[match]
        reasons, why = np.unique(self.why[match][~usable & (match >= 0)], return_inverse=True)
        sensor_status = np.where(match < 0, _NO_CALIBRATION, _OK)
        sensor_status[~usable & (match >= 0)] = len(STATUSES) + why.reshape(-1)
        sensor_row = np.where(sensor_status == _OK, match, -1)
        # per reading, by the index of its id: an index of -1 (no id) takes the last entry appended
        codes = np.min_scalar_type(len(STATUSES) + len(reasons))
        status = np.append(sensor_status, _NO_SENSOR).astype(codes)[log.index]
        row = np.append(sensor_row, -1).astype(np.int32 if len(fleet.ids) < 2**31 - 1 else np.int64)[log.index]
        gone = np.isnan(log.t_u)
        status[gone & (status == _OK)] = _MISSING
        row[gone] = -1
        t_c = low = high = None
        if fleet.usable.any():
            scales = np.unique(fleet.scale[fleet.usable])
            with np.errstate(over="ignore", invalid="ignore"):  # one scale (the usual fleet's 1): no gather
                scaled = (log.t_u if scales.tolist() == [1.0] else log.t_u * scales[0] if len(scales) == 1
                          else log.t_u * np.append(fleet.scale, np.nan)[row])
            for m, predictor in self.predictors.items():
                model = fleet.models[m]
                # one model (the usual fleet): every reading in one call, no selection
                sel = slice(None) if len(fleet.models) == 1 else np.flatnonzero(self.rows[m][row])
                rows = row[sel]
                each = [self.params[m][:, j][rows] for j in range(self.params[m].shape[1])]  # row -1: NaN
                with np.errstate(over="ignore", invalid="ignore"):  # a reading too large: not finite, its status says
                    got = predictor(_padded(scaled[sel], np.nan), _padded(rows, -1))
                    value = np.asarray(resolve_model(model).fn(scaled[sel], *each), np.float64)  # no copy where it can
                    value = value if value.flags.writeable else value.copy()  # a JAX array's view is read-only
                    # in place where it can be: each new array of a large log is ~0.1 s of the system's paging
                    taken = len(rows)
                    half = np.subtract(np.asarray(got.high)[:taken], np.asarray(got.low)[:taken], dtype=np.float64)
                    half *= 0.5
                    upper = np.add(value, half)
                    lower = np.subtract(value, half, out=half)
                    if len(fleet.models) == 1:  # every reading's: the arrays themselves
                        t_c, low, high = value, lower, upper
                        continue
                    if t_c is None:
                        t_c, low, high = (np.full(n, np.nan) for _ in range(3))
                    t_c[sel], low[sel], high[sel] = value, lower, upper
        if t_c is None:  # no reading has a calibration
            t_c, low, high = (np.full(n, np.nan) for _ in range(3))
        status[(status == _OK) & ~np.isfinite(t_c)] = _NOT_FINITE
        off = status != _OK
        if off.any():
            t_c[off] = low[off] = high[off] = np.nan
        sensor = Coded(np.append(log.sensors, ""), np.where(log.index < 0, len(log.sensors), log.index))
        # a sensor without a fit: its reason, said to be one ("no fit: 1 reading for 2 params")
        return {"sensor": sensor, "t_u": log.t_u, "t_c": t_c, "low": low, "high": high,
                "status": Coded(np.array([*STATUSES, *(f"no fit: {r}" for r in reasons.tolist())], dtype=str), status)}


_END = object()


def _ahead(items: Iterable[Any]) -> Iterator[Any]:
    """``items``, each made in a thread of its own while the one before is used: a stage of a pipeline
    (pyarrow, NumPy and XLA work without Python's lock). An error in making one is raised where it is
    taken; the thread has then finished, and so has one left when the consumer stops early."""
    from concurrent.futures import ThreadPoolExecutor

    items = iter(items)
    with ThreadPoolExecutor(1, thread_name_prefix="jaxcal-predict") as pool:
        coming = pool.submit(next, items, _END)
        while (item := coming.result()) is not _END:
            coming = pool.submit(next, items, _END)
            yield item


def _flagged_parts(parts: Iterator[Any], path: str) -> Iterator[Any]:
    """A log's parts, an error in reading one named as :func:`flagged` names it."""
    while (part := flagged(lambda: next(parts, _END), path)) is not _END:
        yield part


def _run_log(args: argparse.Namespace, reading: dict, level: float, interval: str) -> int:
    from .. import io
    from ..io import read_log_parts, table_format, write_table_parts

    check_output(args.out, "--out")
    if args.out is not None:
        table_format(args.out, "--out")  # an unknown suffix is refused before any reading
        for path in (args.data, args.cal):
            if os.path.exists(args.out) and os.path.exists(path) and os.path.samefile(args.out, path):
                raise _checks.InvalidInput("--out", f"{args.out} is the input table {path}; choose another file")
    fleet = _fleet(args.cal)
    log = flagged(lambda: read_log_parts(args.data, rows=io.LOG_PART_ROWS, **reading), args.data)
    n = log.readings
    if args.json and args.out is None and n > JSON_MOST:
        raise _checks.InvalidInput("--json", f"{args.data} holds {n:,} readings, more than --json prints "
                                             f"({JSON_MOST:,}); write them with --out FILE (.csv or .parquet)")
    conversion = _Conversion(fleet, level, interval)
    # a pipeline of three stages, a part of the log in each: while a part is written, the next is converted
    # and the one after it read (the run takes little more than its slowest stage, not the three's sum)
    parts = _ahead(conversion(part) for part in _ahead(_flagged_parts(log.parts, args.data)))
    with contextlib.closing(parts):
        if args.out is not None:
            write(args.out, lambda path: write_table_parts(path, parts, name="--out"))
            rows = None
        else:
            rows = {key: [] for key in ("sensor", "t_u", "t_c", "low", "high", "status")}
            for columns in parts:
                if args.json:
                    for key, value in columns.items():
                        rows[key] += (value.decoded().tolist() if key in ("sensor", "status")
                                      else _listed(value))
    if args.json and rows is not None:
        print(json.dumps({**rows, "level": level, "interval": interval}))
    elif args.json:
        print(json.dumps({"readings": n, "sensors": conversion.sensors, "converted": conversion.counts.get("ok", 0),
                          "status": conversion.counts, "level": level, "interval": interval, "out": args.out}))
    else:
        print(_summary(n, conversion.sensors, conversion.counts, args.out))
    return 0


def _summary(n: int, sensors: int, counts: dict[str, int], out: str | None) -> str:
    """A log's summary line: its readings and sensors, how many converted, and why the others were not."""
    ok = counts.get("ok", 0)
    why = ", ".join(f"{c} {name}" for name, c in counts.items() if name != "ok")
    return (f"{n} reading{'' if n == 1 else 's'} of {sensors} sensor{'' if sensors == 1 else 's'}: {ok} converted"
            + (f", {n - ok} not ({why})" if why else "")
            + (f"; results in {out}" if out else "; use --out FILE (.csv or .parquet) for the converted readings"))


def _starts_with_brace(path: str) -> bool:
    """Whether a .json file is one object (a saved calibration) rather than an array of rows (a fleet's results)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            return file.read(4096).lstrip()[:1] != "["
    except OSError:
        return True  # load_calibration says why it cannot be read
