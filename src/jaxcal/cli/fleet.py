"""``jaxcal fleet``: every sensor of a long table (sensor, t_u, t_c) calibrated at once.

The default is the least-squares calibration (:func:`jaxcal.calibrate`: ``ls`` for a model linear in
its params, ``lm`` otherwise), each sensor with its standard errors, residual SD, dof and status;
``--solver gd`` is the book's gradient descent (:func:`jaxcal.fit_fleet`), its uncertainty computed
at its final params. Every solver writes the same fields (:func:`jaxcal.report.fleet_columns`).
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

import numpy as np

from .. import _checks
from . import _parser
from ._outputs import write
from ._settings import (
    FitSettings,
    check_fleet_determined,
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
    add("--out", metavar="FILE", help="write per-sensor results here (atomically), one row per sensor: sensor, "
        "each param, stderr_<param>, residual_sd, dof, rss, r_squared, status, steps, solver, scale and lsq_<param> "
        "(the float64 least-squares check), in the format the name's suffix names: .csv, .json (an array of row "
        "objects; a value that is not a finite number as null), .parquet or .npz (an array per column)")
    add("--json", action="store_true", help="print one JSON object instead of a summary")
    add("--quiet", action="store_true", help="no progress bar")
    add("--plot", metavar="PNG", help="draw the distribution of the fitted params")
    _parser.add_distributed_flags(parser)


def fleet_chunks(work: float, n_epochs: int) -> int:
    """Compiled chunks for a fleet of ``work`` sensor-epochs, so that the progress bar moves
    during a long fit. Each chunk ends in a wait for every device (the slowest one's share),
    measured at ~4 ms per chunk for 100,000 sensors on 2 devices, so chunks of ~0.1 s keep the
    progress bar's cost near 4%."""
    return max(1, min(n_epochs, int(work / FLEET_CHUNK_WORK)))


def run(args: argparse.Namespace) -> int:
    from .. import distributed, report
    from ..io import read_fleet, read_fleet_share, table_format

    s = parse_model(args)
    s.devices = parse_devices(args)
    processes, process_id, timeout = cluster_flags(args)
    check_output(args.out, "--out")
    if args.out is not None:
        table_format(args.out, "--out")  # an unknown suffix is refused before any fitting
    check_output(args.plot, "--plot")
    if args.plot:
        need_matplotlib()
    for flag, path in (("--out", args.out), ("--plot", args.plot)):
        if path is not None and os.path.exists(path) and os.path.exists(args.data) \
                and os.path.samefile(path, args.data):
            raise _checks.InvalidInput(flag, f"{path} is the input table {args.data}; choose another file")
    planned = distributed.planned(args.coordinator, processes, process_id)
    if planned is not None:
        # a process of a multi-process run reads only its share of the sensors' readings
        table, ids = read_fleet_share(args.data, s.dtype, lambda n: distributed.share(n, planned))
    else:
        table = read_fleet(args.data, dtype=s.dtype)
        ids = table.sensors
    # every core a device: fleets keep them all busy
    start_up(x64=s.x64, devices=s.devices, all_cores=True, cache=not args.no_cache)
    cluster = join(args.coordinator, processes, process_id, timeout)
    n = len(ids)
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
    columns = report.fleet_columns(ids, names, fits, s.solver, s.scale)
    if args.plot:
        from ..plots import plot_fleet

        params = fits["params"]
        write(args.plot, lambda path: plot_fleet(path, names, params, ~np.isfinite(params).all(axis=1),
                                                 name="--plot"))
    if args.out is not None:
        from ..io import write_table

        write(args.out, lambda path: write_table(path, columns, name="--out"))
    if args.json:
        print(json.dumps({"sensors": report.fleet_json(columns, names)}))
    elif args.out is None or not args.quiet:
        print(f"{n} sensors fitted (--solver {s.solver}): {report.status_counts(fits['status'])}"
              + (f"; results in {args.out}" if args.out else "; use --out FILE or --json for the results"))
    return 0


def _none(s: FitSettings) -> tuple[dict[str, np.ndarray], tuple]:
    """The fields of no sensor, in the dtypes a process with sensors gathers."""
    from ..core import MODELS

    names = MODELS[s.model].param_names
    vector, scalar, count = np.empty((0, len(names)), s.dtype), np.empty(0, s.dtype), np.empty(0, np.int32)
    return {"params": vector, "stderr": vector, "residual_sd": scalar, "dof": count, "rss": scalar,
            "r_squared": scalar, "status": count, "steps": count, "lsq": np.empty((0, len(names)))}, names


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

    fit = calibrate(padded(t_u), padded(t_c), mask=padded(mask), params=padded(params), **kwargs)
    fields = ("params", "stderr", "residual_sd", "dof", "rss", "r_squared", "status", "steps")
    return {key: np.asarray(getattr(fit, key))[:sensors] for key in fields}


def _least_squares(args: argparse.Namespace, s: FitSettings, table: Any) -> tuple[dict[str, np.ndarray], tuple]:
    """``--solver ls`` or ``lm``: one :func:`jaxcal.calibrate` of this process's sensors, on the readings as read."""
    from ..core import MODELS
    from ..fleet import least_squares
    from ..solvers import SOLVERS, STATUS

    solver = SOLVERS[s.solver][0]()
    start = None if s.solver == "ls" else np.broadcast_to(np.asarray(s.params, s.dtype), (len(table.t_u),
                                                                                           len(s.params)))
    with placed(args.device, "fleet", len(table.t_u)):
        fits = _calibrated(table.t_u, table.t_c, _mask(table), start, model=s.model, solver=solver)
    # the check is the least-squares answer; where the fit found the params undetermined, it has none either
    fits["lsq"] = least_squares(table.t_u, table.t_c, counts=table.counts, model=s.model)
    fits["lsq"][fits["status"] == STATUS.index("undetermined")] = np.nan
    return fits, MODELS[s.model].param_names


def _gradient_descent(args: argparse.Namespace, s: FitSettings, table: Any,
                      shows: bool) -> tuple[dict[str, np.ndarray], tuple]:
    """``--solver gd``: the book's gradient descent (:func:`jaxcal.fit_fleet`) of this process's sensors
    on the scaled readings, then each fit's uncertainty at its final params (:class:`._at_params.AtParams`).
    A sensor whose descent diverged has status ``nonfinite`` and no params; the others ``max_steps``
    (gradient descent has no stopping test: it runs its epochs)."""
    from ..fleet import fit_fleet, least_squares
    from ..progress import ProgressBar
    from ..solvers import STATUS
    from ._at_params import AtParams

    scale = table.t_u.dtype.type(s.scale)
    with np.errstate(over="ignore", invalid="ignore"):
        t_un = (scale * table.t_u).astype(table.t_u.dtype)
    if not np.all(np.isfinite(t_un)):
        raise _checks.InvalidInput("--scale", "scaled readings overflow")
    check_fleet_determined(args.data, table.sensors, t_un, table.counts, s.model)
    bar = ProgressBar("fleet", enabled=not args.quiet and shows)
    try:
        # chunks only where a progress bar shows them (each ends in a wait for every device)
        result = fit_fleet(t_un, table.t_c, n_epochs=s.n_epochs, learning_rate=s.learning_rate, params=s.params,
                           counts=table.counts, optimizer=s.library_optimizer, model=s.model,
                           progress=bar if bar.enabled else None,
                           chunks=fleet_chunks(len(table.sensors) * s.n_epochs, s.n_epochs) if bar.enabled else 1,
                           device=args.device)
    finally:
        bar.close()
    params = np.asarray(result.params)
    lost = np.asarray(result.diverged, bool) | ~np.isfinite(params).all(axis=1)
    # a diverged sensor starts where every sensor did (calibrate takes only finite params); its row is dropped below
    start = np.where(lost[:, None], np.asarray(s.params, params.dtype), params)
    with placed(args.device, "fleet", len(table.t_u)):
        fits = _calibrated(t_un, table.t_c, _mask(table), start, model=s.model, solver=AtParams())
    fits["lsq"] = least_squares(t_un, table.t_c, counts=table.counts, model=s.model)
    nan = np.asarray(np.nan, params.dtype)
    for key in ("params", "stderr", "residual_sd", "rss", "r_squared"):
        fits[key] = np.where(lost if fits[key].ndim == 1 else lost[:, None], nan, fits[key])
    fits["status"] = np.where(lost, STATUS.index("nonfinite"), fits["status"]).astype(np.int32)
    fits["steps"] = np.asarray(result.epochs_run, np.int32)
    return fits, result.param_names
