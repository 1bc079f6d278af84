"""``jaxcal predict``: raw readings to Celsius with their intervals, through a saved calibration or one
sensor's row of a fleet's results table."""

from __future__ import annotations

import argparse
import csv
import json
import math
from typing import NamedTuple

import numpy as np

from .. import _checks
from . import _parser
from ._settings import choice, float_arg

__all__ = ["add_parser", "run"]


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = _parser.subcommand(
        commands, "predict", help="convert raw readings to Celsius with a saved calibration",
        description="Apply a calibration saved by 'jaxcal train --save' (its scale and params) to readings.",
        examples=["jaxcal predict --cal cal.json 45.1 60.2", "jaxcal predict --cal cal.json --data readings.csv"])
    parser.add_argument("readings", nargs="*", metavar="T_U", help="raw readings to convert")
    parser.add_argument("--cal", required=True, metavar="FILE",
                        help="a calibration saved by 'jaxcal train --save', or a 'jaxcal fleet --out' results table "
                             "(.csv, .parquet, .npz, .json) with --sensor ID")
    parser.add_argument("--sensor", metavar="ID", help="the sensor whose calibration in a fleet's results to apply")
    parser.add_argument("--data", metavar="FILE", help="a table with a t_u column (CSV, Parquet, or .npz/.npy arrays) "
                        "instead of readings on the line")
    parser.add_argument("--level", default="0.95", metavar="P", help="the interval's coverage (default 0.95)")
    parser.add_argument("--interval", default="prediction", metavar="KIND",
                        help="prediction: where a new reading's true value falls (default); confidence: the band of "
                             "the calibration's mean")
    parser.add_argument("--json", action="store_true", help="print one JSON object: t_u, t_c, low and high, a list "
                        "each (low and high null where the calibration has no uncertainty)")


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


def _results(path: str) -> dict[str, list]:
    """A ``fleet --out`` table's columns, in any of its formats."""
    from ..io import table_format

    kind = table_format(path, "--cal")
    try:
        if kind == "NumPy":
            with np.load(path, allow_pickle=False) as archive:
                return {name: archive[name].tolist() for name in archive.files}
        if kind == "Parquet":
            import pyarrow.parquet as pq

            return pq.read_table(path).to_pydict()
        if kind == "JSON":
            try:
                with open(path, encoding="utf-8") as file:
                    rows = json.load(file)
            except (ValueError, RecursionError) as error:  # a nesting too deep is Python's RecursionError
                what = "nested too deeply" if isinstance(error, RecursionError) else str(error)
                raise _checks.InvalidInput("--cal", f"{path}: not valid JSON ({what})") from None
            return {name: [row.get(name) for row in rows] for name in rows[0]} if rows else {}
        with open(path, newline="", encoding="utf-8") as file:
            header, *rows = list(csv.reader(file))
        return {name: [row[j] for row in rows] for j, name in enumerate(header)}
    except (OSError, ValueError, KeyError, IndexError, AttributeError, TypeError) as error:
        raise _checks.InvalidInput("--cal", f"{path}: not a fleet's results table ({error})") from None


def _number(value: object) -> float:
    return math.nan if value in (None, "") else float(value)  # type: ignore[arg-type]


def _from_results(path: str, sensor: str | None) -> _Chosen:
    """One sensor's calibration from a fleet's results table (its params apply to ``scale * t_u``)."""
    from ..core import resolve_model

    columns = _results(path)
    for need in ("sensor", "model", "status", "scale", "residual_sd", "dof"):
        if need not in columns:
            raise _checks.InvalidInput("--cal", f"{path}: not a fleet's results table (no {need!r} column)")
    ids = [str(s) for s in columns["sensor"]]
    if sensor is None:
        if len(ids) != 1:
            raise _checks.InvalidInput("--sensor", f"{path} holds {len(ids)} sensors' calibrations; say which "
                                                   "with --sensor ID")
        sensor = ids[0]
    if sensor not in ids:
        raise _checks.InvalidInput("--sensor", f"{sensor!r} is not a sensor of {path}")
    i = ids.index(sensor)
    model = str(columns["model"][i])
    names = resolve_model(model).param_names
    try:
        params = np.array([_number(columns[n][i]) for n in names])
        cov = np.array([[_number(columns[f"cov_{names[min(a, b)]}_{names[max(a, b)]}"][i]) for b in range(len(names))]
                        for a in range(len(names))])
    except KeyError as missing:
        raise _checks.InvalidInput("--cal", f"{path}: no column {missing} for the {model} model") from None
    if not np.all(np.isfinite(params)):
        reason = str(columns.get("reason", [""] * len(ids))[i]) or str(columns["status"][i])
        raise _checks.InvalidInput("--sensor", f"sensor {sensor} has no calibration in {path} ({reason})")
    dof = _number(columns["dof"][i])
    return _Chosen(params, cov, model, _number(columns["scale"][i]), _number(columns["residual_sd"][i]),
                   None if math.isnan(dof) else int(dof))


def run(args: argparse.Namespace) -> int:
    from ..intervals import INTERVALS, predict

    interval = choice(args.interval, INTERVALS, "--interval", "interval")
    level = float_arg(args.level, "--level")
    if not 0 < level < 1:
        raise _checks.InvalidInput("--level", f"must be strictly between 0 and 1, got {args.level!r}")
    if args.data and args.readings:
        raise _checks.InvalidInput("predict", "give readings on the command line or --data, not both")
    saved = args.cal.endswith(".json") and _starts_with_brace(args.cal)
    if saved and args.sensor is not None:
        raise _checks.InvalidInput("--sensor", f"{args.cal} is one saved calibration; --sensor picks a row of a "
                                               "fleet's results table")
    chosen = _saved(args.cal) if saved else _from_results(args.cal, args.sensor)
    if args.data:
        from ..io import read_t_u

        readings = read_t_u(args.data)
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
        def listed(values: np.ndarray) -> list[float | None]:
            return [v if math.isfinite(v) else None for v in values.tolist()]

        print(json.dumps({"t_u": readings.tolist(), "t_c": celsius.tolist(), "low": listed(low),
                          "high": listed(high), "level": level, "interval": interval}))
    else:
        what = f"{level:g} {interval} interval"
        for raw, value, lo, hi in zip(readings.tolist(), celsius.tolist(), low.tolist(), high.tolist(), strict=True):
            bounds = f"  [{lo:.4f}, {hi:.4f}] ({what})" if math.isfinite(lo) and math.isfinite(hi) else ""
            print(f"{raw:g} -> {value:.4f}{bounds}")
    return 0


def _starts_with_brace(path: str) -> bool:
    """Whether a .json file is one object (a saved calibration) rather than an array of rows (a fleet's results)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            return file.read(4096).lstrip()[:1] != "["
    except OSError:
        return True  # load_calibration says why it cannot be read
