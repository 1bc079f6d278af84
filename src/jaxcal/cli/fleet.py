"""``jaxcal fleet``: every sensor of a long table (sensor, t_u, t_c) calibrated at once.

The default is the least-squares calibration (:func:`jaxcal.calibrate`: ``ls`` for a model linear in
its params, ``lm`` otherwise), each sensor with its standard errors, residual SD, dof and status;
``--solver gd`` is the book's gradient descent (:func:`jaxcal.fit_fleet`), its uncertainty computed
at its final params. Every solver writes the same fields (:func:`jaxcal.report.fleet_columns`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from typing import Any

import numpy as np

from .. import _checks
from . import _parser
from ._outputs import write
from ._settings import (
    FitSettings,
    check_output,
    need_matplotlib,
    parse_devices,
    parse_model,
    placed,
)
from ._startup import cluster_flags, join, start_up

__all__ = ["FLEET_CHUNK_WORK", "add_parser", "fleet_chunks", "run"]

#: Sensor-epochs per compiled chunk of a fleet: ~0.1 s at ~1.2e9 sensor-epochs/s (2 CPU cores).
FLEET_CHUNK_WORK = 1.2e8


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = _parser.subcommand(
        commands, "fleet", help="calibrate every sensor of a long table (sensor,t_u,t_c) at once",
        description="Calibrate every sensor of DATA (CSV or Parquet with columns sensor,t_u,t_c in any row order, "
                    "or .npz with arrays sensor, t_u, t_c), all local devices busy: by default the least-squares "
                    "fit of the model with each sensor's standard errors, residual SD, dof and status; "
                    "--solver gd is the book's gradient descent.",
        examples=["jaxcal fleet sensors.csv --out fits.csv", "jaxcal fleet sensors.csv --x64 --json",
                  "jaxcal fleet sensors.npz --solver gd --epochs 2000 --json"])
    parser.add_argument("data", metavar="DATA", help="CSV, Parquet (.parquet) or .npz of readings per sensor")
    _parser.add_solver_flag(parser, "auto")
    _parser.add_model_flags(parser, solver=True)
    _parser.add_start_up_flags(parser, "split the sensors over; default one per core")
    _parser.add_device_flag(parser)
    add = parser.add_argument
    add("--out", metavar="FILE", help="write per-sensor results here (atomically), one row per input sensor: "
        "sensor, each param (applying to the raw readings), stderr_<p>, cov_<p>_<q>, residual_sd, dof, readings, "
        "dropped, rss, r_squared, status, reason (why a sensor has no fit), steps, model, solver and scale, in the "
        "format the name's suffix names: .csv, .json (an array of row objects; a value that is not a finite "
        "number as null), .parquet or .npz (an array per column)")
    add("--json", action="store_true", help="print one JSON object (the same fields as --out) instead of a summary")
    add("--strict", action="store_true", help="any sensor without a fit (undetermined, non-finite, not converged) "
        "is an error: exit 1, nothing written")
    add("--quiet", action="store_true", help="no progress bar")
    add("--plot", metavar="PNG", help="draw the distribution of the fitted params")
    add("--report", metavar="HTML", help="write the calibration report: one self-contained page (what was fitted, "
        "counts per status, each param's and standard error's distribution, the worst-fitting sensors' data, fit, "
        "prediction band and residuals); needs matplotlib (the plot extra)")
    _parser.add_table_flags(parser, "fleet")
    _parser.add_distributed_flags(parser)


def fleet_chunks(work: float, n_epochs: int) -> int:
    """Compiled chunks for a fleet of ``work`` sensor-epochs, so that the progress bar moves
    during a long fit. Each chunk ends in a wait for every device (the slowest one's share),
    measured at ~4 ms per chunk for 100,000 sensors on 2 devices, so chunks of ~0.1 s keep the
    progress bar's cost near 4%."""
    return max(1, min(n_epochs, int(work / FLEET_CHUNK_WORK)))


def run(args: argparse.Namespace) -> int:
    from .. import distributed, report
    from ..io import parse_columns, read_fleet, table_format

    s = parse_model(args, expressions=True)
    s = dataclasses.replace(s, devices=parse_devices(args))
    processes, process_id, timeout = cluster_flags(args)
    check_output(args.out, "--out")
    if args.out is not None:
        table_format(args.out, "--out")  # an unknown suffix is refused before any fitting
    check_output(args.plot, "--plot")
    check_output(args.report, "--report")
    if args.report is not None and not args.report.lower().endswith((".html", ".htm")):
        raise _checks.InvalidInput("--report", f"{args.report}: the report is an HTML page; name it .html")
    if args.plot or args.report:
        need_matplotlib()
    for flag, path in (("--out", args.out), ("--plot", args.plot), ("--report", args.report)):
        if path is not None and os.path.exists(path) and os.path.exists(args.data) \
                and os.path.samefile(path, args.data):
            raise _checks.InvalidInput(flag, f"{path} is the input table {args.data}; choose another file")
    try:
        mapping = None if args.columns is None else parse_columns(args.columns)
    except _checks.InvalidInput as error:  # the library names its argument; the command line names the flag
        raise _checks.InvalidInput("--columns", str(error).removeprefix("columns: ")) from None
    reading = {"columns": mapping,
               "separator": args.separator,
               "missing": None if args.missing is None else [cell.strip() for cell in args.missing.split(",")]}
    planned = distributed.planned(args.coordinator, processes, process_id)
    if planned is not None and args.report is not None:
        raise _checks.InvalidInput("--report", "draws every sensor's readings, which no process of a run that "
                                               "splits the table holds; write the report from a one-process run")
    if planned is not None:
        # a process of a multi-process run reads only its share of the sensors' readings
        table = read_fleet(args.data, s.dtype, part=lambda n: distributed.share(n, planned), **reading)
        ids = table.all_sensors
    else:
        table = read_fleet(args.data, dtype=s.dtype, **reading)
        ids = table.sensors
    if table.sigma is not None and s.solver == "gd":
        raise _checks.InvalidInput("--solver", "gd fits without weights; a table with a sigma column needs "
                                               "--solver ls or lm")
    # every core a device: fleets keep them all busy
    start_up(x64=s.x64, devices=s.devices, all_cores=True, cache=not args.no_cache)
    cluster = join(args.coordinator, processes, process_id, timeout)
    n = len(ids)
    whole = table  # the report draws from every sensor's readings (process 0 of a one-reader run holds them)
    if planned is None:  # this process fits only its share of the sensors
        mine = distributed.share(n, cluster)
        table = table.select(mine)
    if not len(table.sensors):
        fits, names = _none(s)  # more processes than sensors: this one has none to fit
    elif s.solver == "gd":
        fits, names = _gradient_descent(args, s, table, cluster.process_id == 0)
    else:
        fits, names = _least_squares(args, s, table)
    fits = distributed.gather_rows(fits, n, cluster)
    if cluster.process_id != 0:
        return 0  # process 0 reports for everyone
    fits["reason"] = _reasons(fits, len(names), s.solver)
    unfitted = np.nonzero(fits["reason"] != "")[0]
    if args.strict and unfitted.size:
        more = ", ".join(str(ids[i]) for i in unfitted[1:4]) + (", ..." if unfitted.size > 4 else "")
        print(f"jaxcal fleet: error: --strict: {unfitted.size} of {n} sensors without a fit ({ids[unfitted[0]]!s}: "
              f"{fits['reason'][unfitted[0]]}{'; also ' + more if more else ''}); nothing written", file=sys.stderr)
        return 1
    scale = s.scale
    if s.solver == "gd":
        scale = _to_raw(fits, s.model, s.scale)
    columns = report.fleet_columns(ids, names, fits, model=s.model, solver=s.solver, scale=scale)
    if args.plot:
        from ..plots import plot_fleet

        params = fits["params"]
        write(args.plot, lambda path: plot_fleet(path, names, params, ~np.isfinite(params).all(axis=1),
                                                 name="--plot"))
    if args.out is not None:
        from ..io import write_table

        write(args.out, lambda path: write_table(path, columns, name="--out"))
    if args.report is not None:
        _report(args, s, whole, ids, fits, names, scale)
    if args.json:
        print(json.dumps({"sensors": report.fleet_json(columns)}))
    elif args.out is None or not args.quiet:
        print(report.fleet_summary(n, s.solver, fits["status"], fits["dropped"], args.out))
    return 0


def _report(args: argparse.Namespace, s: FitSettings, table: Any, ids: np.ndarray, fits: dict[str, np.ndarray],
            names: tuple, scale: float) -> None:
    """``--report``: the calibration report of every sensor, its readings in the units its params apply to."""
    from ..html_report import write_report

    t_u = table.t_u if scale == 1 else (scale * table.t_u).astype(table.t_u.dtype)
    meta = {"data": os.path.basename(args.data), "readings dropped (missing)": int(np.sum(fits["dropped"]))}
    if scale != 1:
        meta["readings scaled by"] = scale
    write(args.report, lambda path: write_report(path, sensors=ids, t_u=t_u, t_c=table.t_c, mask=_mask(table),
                                                 fit=fits, model=s.model, solver=s.solver, param_names=names,
                                                 title=f"Calibration report: {os.path.basename(args.data)}",
                                                 meta=meta))


#: The power of ``t_u`` each param of a polynomial model multiplies: a fit to ``scale * t_u`` is the fit to
#: ``t_u`` with each param times ``scale ** power``.
POWERS = {"linear": (1, 0), "quadratic": (2, 1, 0)}


def _to_raw(fits: dict[str, np.ndarray], model: str, scale: float) -> float:
    """Convert a fit to the scaled readings into the fit to the raw ones, in place, where the model is a
    polynomial (exact algebra: params, standard errors and covariance through the same diagonal Jacobian);
    returns the scale the params then apply to (1, or ``scale`` for a model this cannot convert)."""
    if model not in POWERS:
        return scale
    factor = np.asarray([scale ** p for p in POWERS[model]])
    dtype = fits["params"].dtype
    fits["params"] = (fits["params"] * factor).astype(dtype)
    fits["stderr"] = (fits["stderr"] * np.abs(factor)).astype(dtype)
    fits["cov"] = (fits["cov"] * factor[:, None] * factor[None, :]).astype(dtype)
    return 1.0


def _reasons(fits: dict[str, np.ndarray], n_params: int, solver: str) -> np.ndarray:
    """Why each sensor has no fit, in words (empty where it has one): from its readings, its distinct
    ``t_u``, its status and its steps. Gradient descent has no stopping test, so its ``max_steps`` is a fit."""
    from ..solvers import STATUS

    status, readings, distinct = fits["status"], fits["readings"], fits["distinct"]
    reasons = np.full(len(status), "", dtype=object)
    for i in np.nonzero((status != STATUS.index("converged"))
                        & ((status != STATUS.index("max_steps")) | (solver != "gd")))[0]:
        name, count, seen = STATUS[int(status[i])], int(readings[i]), int(distinct[i])
        if count == 0:
            reasons[i] = "no readings"
        elif count < n_params:
            reasons[i] = f"{count} reading{'s' if count > 1 else ''} for {n_params} params"
        elif seen < n_params:
            reasons[i] = "all readings at one t_u" if seen == 1 else f"{seen} distinct t_u for {n_params} params"
        elif name == "max_steps":
            reasons[i] = f"no convergence in {int(fits['steps'][i])} steps"
        elif name == "nonfinite":
            reasons[i] = "diverged" if solver == "gd" else "non-finite"
        else:
            reasons[i] = "params undetermined"
    return reasons.astype(str)


def _distinct(table: Any) -> np.ndarray:
    """Each sensor's distinct ``t_u`` among its readings."""
    valid = _mask(table)
    ordered = np.sort(np.where(valid, table.t_u, np.nan), axis=1)  # padding (NaN) sorts last
    new = np.ones(ordered.shape, bool)
    new[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    return (new & ~np.isnan(ordered)).sum(axis=1).astype(np.int32)


def _counts(table: Any) -> dict[str, np.ndarray]:
    """The per-sensor counts every solver reports: readings used, dropped (a missing value) and distinct t_u."""
    dropped = np.zeros(len(table.sensors), np.int32) if table.dropped is None else table.dropped
    return {"readings": np.asarray(table.counts, np.int32), "dropped": np.asarray(dropped, np.int32),
            "distinct": _distinct(table)}


def _none(s: FitSettings) -> tuple[dict[str, np.ndarray], tuple]:
    """The fields of no sensor, in the dtypes a process with sensors gathers."""
    from ..core import resolve_model

    names = resolve_model(s.model).param_names
    vector, scalar, count = np.empty((0, len(names)), s.dtype), np.empty(0, s.dtype), np.empty(0, np.int32)
    return {"params": vector, "stderr": vector, "cov": np.empty((0, len(names), len(names)), s.dtype),
            "residual_sd": scalar, "dof": count, "rss": scalar, "r_squared": scalar, "status": count,
            "steps": count, "readings": count, "dropped": count, "distinct": count}, names


def _mask(table: Any) -> np.ndarray:
    """Which entries of the padded ``(sensors, readings)`` table are readings."""
    return np.arange(table.t_u.shape[1])[None, :] < np.asarray(table.counts)[:, None]


def _calibrated(t_u: np.ndarray, t_c: np.ndarray, mask: np.ndarray, params: np.ndarray | None,
                **kwargs: Any) -> dict[str, np.ndarray]:
    """:func:`jaxcal.calibrate` of this process's sensors, as host arrays by field.

    The sensors are padded (with repeats of the first) to whole tiles of :data:`jaxcal.calibrate.TILE`
    on every local device, and the padding dropped from the results: a fit's last bits depend on how
    many fits its compiled tile holds (measured with jax 0.10.2 on a CPU: 812 of 1001 lines differ
    between tiles of 512 and 251 sensors), and ``calibrate`` sizes its tiles by the sensors per device,
    so that the results would otherwise change with ``--devices`` and with the number of processes.
    """
    import jax

    from ..calibrate import TILE, calibrate

    sensors = len(t_u)
    whole = TILE * jax.local_device_count()
    rows = -(-sensors // whole) * whole

    def padded(values: np.ndarray | None) -> np.ndarray | None:
        if values is None or rows == sensors:
            return values
        return np.concatenate([values, np.broadcast_to(values[:1], (rows - sensors, *values.shape[1:]))])

    if kwargs.get("sigma") is not None:
        kwargs["sigma"] = padded(kwargs["sigma"])
    fit = calibrate(padded(t_u), padded(t_c), mask=padded(mask), params=padded(params), **kwargs)
    fields = ("params", "stderr", "cov", "residual_sd", "dof", "rss", "r_squared", "status", "steps")
    return {key: np.asarray(getattr(fit, key))[:sensors] for key in fields}


def _least_squares(args: argparse.Namespace, s: FitSettings, table: Any) -> tuple[dict[str, np.ndarray], tuple]:
    """``--solver ls`` or ``lm``: one :func:`jaxcal.calibrate` of this process's sensors, on the readings as read."""
    from ..core import resolve_model
    from ..solvers import SOLVERS

    solver = SOLVERS[s.solver][0]()
    start = None if s.solver == "ls" else np.broadcast_to(np.asarray(s.params, s.dtype), (len(table.t_u),
                                                                                           len(s.params)))
    sigma = None
    if table.sigma is not None:  # a weighted fit; the padding's sigma is 1, any positive number (it is masked)
        sigma = np.where(_mask(table), table.sigma, table.sigma.dtype.type(1))
    with placed(args.device, "fleet", len(table.t_u)):
        fits = _calibrated(table.t_u, table.t_c, _mask(table), start, model=s.model, solver=solver, sigma=sigma)
    return fits | _counts(table), resolve_model(s.model).param_names


def _gradient_descent(args: argparse.Namespace, s: FitSettings, table: Any,
                      shows: bool) -> tuple[dict[str, np.ndarray], tuple]:
    """``--solver gd``: the book's gradient descent (:func:`jaxcal.fit_fleet`) of this process's sensors
    on the scaled readings, then each fit's uncertainty at its final params (:class:`._at_params.AtParams`).
    A sensor whose descent diverged has status ``nonfinite`` and no params; the others ``max_steps``
    (gradient descent has no stopping test: it runs its epochs); one with fewer distinct ``t_u`` than
    params ``undetermined``, also no params."""
    from ..core import resolve_model
    from ..fleet import fit_fleet
    from ..progress import ProgressBar
    from ..solvers import STATUS
    from ._at_params import AtParams

    scale = table.t_u.dtype.type(s.scale)
    with np.errstate(over="ignore", invalid="ignore"):
        t_un = (scale * table.t_u).astype(table.t_u.dtype)
    if not np.all(np.isfinite(t_un)):
        raise _checks.InvalidInput("--scale", "scaled readings overflow")
    counts = _counts(table)
    need = resolve_model(s.model).n_params
    undetermined = counts["distinct"] < need
    descent_u, descent_c, descent_n = t_un, table.t_c, table.counts
    if undetermined.any():
        # gradient descent takes no sensor with fewer readings than params: an undetermined sensor descends on
        # placeholder readings (need distinct t_u, t_c 0) in the same one program, its result then dropped
        width = max(need, t_un.shape[1])
        descent_u, descent_c = (np.pad(v, ((0, 0), (0, width - v.shape[1]))) for v in (t_un, table.t_c))
        descent_u[undetermined] = 0
        descent_u[undetermined, :need] = np.arange(need, dtype=t_un.dtype)
        descent_c[undetermined] = 0
        descent_n = np.where(undetermined, need, table.counts)
    bar = ProgressBar("fleet", enabled=not args.quiet and shows)
    try:
        # chunks only where a progress bar shows them (each ends in a wait for every device)
        result = fit_fleet(descent_u, descent_c, n_epochs=s.n_epochs, learning_rate=s.learning_rate,
                           params=s.params, counts=descent_n, optimizer=s.library_optimizer, model=s.model,
                           progress=bar if bar.enabled else None,
                           chunks=fleet_chunks(len(table.sensors) * s.n_epochs, s.n_epochs) if bar.enabled else 1,
                           device=args.device)
    finally:
        bar.close()
    params = np.asarray(result.params)
    lost = np.asarray(result.diverged, bool) | ~np.isfinite(params).all(axis=1) | undetermined
    # a diverged sensor starts where every sensor did (calibrate takes only finite params); its row is dropped below
    start = np.where(lost[:, None], np.asarray(s.params, params.dtype), params)
    with placed(args.device, "fleet", len(table.t_u)):
        fits = _calibrated(t_un, table.t_c, _mask(table), start, model=s.model, solver=AtParams())
    nan = np.asarray(np.nan, params.dtype)
    for key in ("params", "stderr", "cov", "residual_sd", "rss", "r_squared"):
        gone = lost.reshape(-1, *[1] * (fits[key].ndim - 1))
        fits[key] = np.where(gone, nan, fits[key])
    fits["status"] = np.where(lost, STATUS.index("nonfinite"), fits["status"])
    fits["status"] = np.where(undetermined, STATUS.index("undetermined"), fits["status"]).astype(np.int32)
    fits["steps"] = np.asarray(result.epochs_run, np.int32)
    return fits | counts, result.param_names
