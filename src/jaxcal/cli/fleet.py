"""``jaxcal fleet``: every sensor of a long table (sensor, t_u, t_c) fitted at once."""

from __future__ import annotations

import argparse
import json
import os

import numpy as np

from .. import _checks
from . import _parser
from ._outputs import write
from ._settings import check_fleet_determined, check_output, need_matplotlib, parse_devices, parse_model
from ._startup import cluster_flags, join, start_up

__all__ = ["FLEET_CHUNK_WORK", "add_parser", "fleet_chunks", "run"]

#: Sensor-epochs per compiled chunk of a fleet: ~0.1 s at ~1.2e9 sensor-epochs/s (2 CPU cores).
FLEET_CHUNK_WORK = 1.2e8


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = _parser.subcommand(
        commands, "fleet", help="fit every sensor of a long table (sensor,t_u,t_c) at once",
        description="Fit w * t_u + b for every sensor of DATA (CSV or Parquet with columns sensor,t_u,t_c in any row "
                    "order, or .npz with arrays sensor, t_u, t_c), all local devices busy.",
        examples=["jaxcal fleet sensors.csv --out fits.csv", "jaxcal fleet sensors.npz --epochs 2000 --json"])
    parser.add_argument("data", metavar="DATA", help="CSV, Parquet (.parquet) or .npz of readings per sensor")
    _parser.add_model_flags(parser)
    _parser.add_start_up_flags(parser, "split the sensors over; default one per core")
    _parser.add_device_flag(parser)
    add = parser.add_argument
    add("--out", metavar="FILE", help="write per-sensor results here (atomically), one row per sensor, in the format "
        "the name's suffix names: .csv, .json (an array of row objects; a value that is not a finite number as "
        "null), .parquet or .npz (an array per column)")
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
    from .. import distributed
    from ..fleet import fit_fleet, least_squares
    from ..io import read_fleet, read_fleet_share, table_format
    from ..progress import ProgressBar

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
        table = type(table)(*(column[mine] for column in table))
    scale = table.t_u.dtype.type(s.scale)
    with np.errstate(over="ignore", invalid="ignore"):
        t_un = (scale * table.t_u).astype(table.t_u.dtype)
    if not np.all(np.isfinite(t_un)):
        raise _checks.InvalidInput("--scale", "scaled readings overflow")
    check_fleet_determined(args.data, table.sensors, t_un, table.counts, s.model)
    bar = ProgressBar("fleet", enabled=not args.quiet and cluster.process_id == 0)
    try:
        # chunks only where a progress bar shows them (each ends in a wait for every device)
        result = fit_fleet(t_un, table.t_c, n_epochs=s.n_epochs, learning_rate=s.learning_rate, params=s.params,
                           counts=table.counts, optimizer=s.library_optimizer, model=s.model,
                           progress=bar if bar.enabled else None,
                           chunks=fleet_chunks(len(table.sensors) * s.n_epochs, s.n_epochs) if bar.enabled else 1,
                           device=args.device)
    finally:
        bar.close()
    names = result.param_names
    columns = {"params": result.params, "loss": result.loss, "epochs_run": result.epochs_run,
               "diverged": result.diverged}
    if args.out is not None:  # the closed-form check, per sensor of this share
        columns["lsq"] = least_squares(t_un, table.t_c, counts=table.counts, model=s.model)
    columns = distributed.gather_rows(columns, n, cluster)
    if cluster.process_id != 0:
        return 0  # process 0 reports for everyone
    params, loss, epochs_run = columns["params"], columns["loss"], columns["epochs_run"]
    diverged = np.asarray(columns["diverged"], bool)
    if args.plot:
        from ..plots import plot_fleet

        write(args.plot, lambda path: plot_fleet(path, names, params, diverged, name="--plot"))
    if args.out is not None:
        write(args.out, lambda path: _write_results(path, ids, names, params, loss, epochs_run, diverged,
                                                     columns["lsq"]))
    if args.json:
        sensors = [
            {"sensor": sensor, "params": [float(p) for p in params[i]],
             "loss": float(loss[i]) if np.isfinite(loss[i]) else None,
             "epochs_run": int(epochs_run[i]), "diverged": bool(diverged[i])}
            for i, sensor in enumerate(ids.tolist())
        ]
        print(json.dumps({"sensors": sensors}))
    elif args.out is None or not args.quiet:
        print(f"{n} sensors fitted, {int(np.sum(diverged))} diverged"
              + (f"; results in {args.out}" if args.out else "; use --out FILE or --json for the results"))
    return 0


def _write_results(path: str, ids: np.ndarray, names: tuple[str, ...], params: np.ndarray, loss: np.ndarray,
                   epochs_run: np.ndarray, diverged: np.ndarray, lsq: np.ndarray) -> None:
    from ..io import write_table

    columns = {"sensor": ids, **{n: params[:, j] for j, n in enumerate(names)}, "loss": loss,
               "epochs_run": np.asarray(epochs_run, np.int64), "diverged": diverged,
               **{f"lsq_{n}": lsq[:, j] for j, n in enumerate(names)}}
    write_table(path, columns, name="--out")
