"""``jaxcal predict``: raw readings to Celsius with a saved calibration."""

from __future__ import annotations

import argparse
import json

from .. import _checks
from . import _parser
from ._settings import float_arg

__all__ = ["add_parser", "run"]


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = _parser.subcommand(
        commands, "predict", help="convert raw readings to Celsius with a saved calibration",
        description="Apply a calibration saved by 'jaxcal train --save' (its scale and params) to readings.",
        examples=["jaxcal predict --cal cal.json 45.1 60.2", "jaxcal predict --cal cal.json --data readings.csv"])
    parser.add_argument("readings", nargs="*", metavar="T_U", help="raw readings to convert")
    parser.add_argument("--cal", required=True, metavar="FILE", help="calibration file from 'jaxcal train --save'")
    parser.add_argument("--data", metavar="FILE", help="a table with a t_u column (CSV, Parquet, or .npz/.npy arrays) "
                        "instead of readings on the line")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from ..calibration import load_calibration

    calibration = load_calibration(args.cal)
    if calibration.refusal is not None:  # before reading --data: no reading would be converted
        raise _checks.InvalidInput("--cal", f"{args.cal}: {calibration.refusal}")
    if args.data and args.readings:
        raise _checks.InvalidInput("predict", "give readings on the command line or --data, not both")
    if args.data:
        from ..io import read_t_u

        readings = read_t_u(args.data)
    else:
        if not args.readings:
            raise _checks.InvalidInput("predict", "give readings to convert, e.g. jaxcal predict --cal cal.json 45.1")
        readings = np.asarray([float_arg(v, "T_U") for v in args.readings])
        _checks.check_finite_array(readings, "T_U")
    celsius = calibration.predict(readings)
    if args.json:
        print(json.dumps({"t_u": readings.tolist(), "t_c": celsius.tolist()}))
    else:
        for raw, value in zip(readings.tolist(), celsius.tolist(), strict=True):
            print(f"{raw:g} -> {value:.4f}")
    return 0
