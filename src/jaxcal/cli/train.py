"""``jaxcal train``: the seed's training run, its log, and optionally the calibration and a plot."""

from __future__ import annotations

import argparse
import json

from .. import _checks
from . import _parser
from ._outputs import write
from ._settings import FitSettings, check_output, need_matplotlib, parse_devices, parse_fit
from ._startup import cluster_flags, join, start_up

__all__ = ["add_parser", "run"]


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = _parser.subcommand(
        commands, "train", help="run the seed's training loop (one compiled program)",
        description="Run gradient descent on the book's model and print the seed's log.",
        examples=["jaxcal train", "jaxcal train --scale 1 --optimizer adam --lr 0.1 --epochs 2000",
                  "jaxcal train --exact --json"])
    _parser.add_train_flags(parser)
    _parser.add_device_flag(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the log")
    parser.add_argument("--save", metavar="FILE", help="save the calibration (params, scale, model, ...) as JSON")
    parser.add_argument("--plot", metavar="FILE", help="draw the readings with the fitted line, and the loss curve "
                        "(.png, .pdf or .svg)")
    _parser.add_distributed_flags(parser)


def run(args: argparse.Namespace) -> int:
    from .. import distributed, report
    from ..training import training_loop

    processes, process_id, timeout = cluster_flags(args)
    planned = distributed.planned(args.coordinator, processes, process_id)
    # Each process of a multi-process run reads only its share of the readings, unless process 0
    # needs them all (to save their fingerprint or plot them).
    shared = planned is not None and not (args.save or args.plot)
    s = parse_fit(args, (lambda n: distributed.share(n, planned)) if shared else None)
    s.devices = parse_devices(args)
    check_output(args.save, "--save")
    check_output(args.plot, "--plot")
    if args.plot:
        need_matplotlib()
    start_up(x64=s.x64, devices=s.devices, cache=not args.no_cache)
    cluster = join(args.coordinator, processes, process_id, timeout)
    log_every, keep = s.log_schedule()
    if args.plot and log_every != 1:
        # The loss curve wants every epoch; the printed log keeps its own schedule, which may be
        # empty (a run shorter than --log-every): the curve is drawn all the same.
        log_every, keep = 1, set(range(s.log_every, s.n_epochs + 1, s.log_every))
    val = s.val or (None, None)
    t_u, t_c = s.t_u, s.t_c
    if cluster.num_processes > 1:
        if s.exact:
            raise _checks.InvalidInput("--exact", "a multi-process run sums in another order; run exact mode alone")
        # every process holds its share of the readings; the run's mean is an all-reduce (gloo)
        t_u, t_c = distributed.global_readings(t_u, t_c, cluster, s.n_total)
    elif s.devices is not None and s.devices > 1:
        from ..sharding import shard_readings

        t_u, t_c = shard_readings(t_u, t_c)
    result = training_loop(
        s.n_epochs, s.learning_rate, s.params, t_u, t_c, optimizer=s.library_optimizer, log_every=log_every,
        model=s.model, gradient=s.gradient, exact=s.exact, val_t_u=val[0], val_t_c=val[1], delta=s.delta,
        device=args.device,
    )
    if cluster.process_id != 0:
        return 0  # process 0 reports for everyone
    if args.save:
        write(args.save, lambda path: _save_calibration(path, s, result))
    if args.plot:
        from ..plots import plot_fit

        write(args.plot, lambda path: plot_fit(path, s.raw_t_u, s.t_c, result, scale=s.scale, model=s.model,
                                               name="--plot"))
    if args.json:
        print(json.dumps(report.result_to_dict(result, keep)))
    else:
        for line in report.train_log_lines(result, keep):
            print(line)
    return 0


def _save_calibration(path: str, s: FitSettings, result: object) -> None:
    import numpy as np

    from .. import __version__
    from ..calibration import Calibration, fingerprint, save_calibration

    # A diverged run is saved too, marked so: the record of what was tried, which predict refuses.
    params = tuple(float(p) for p in np.asarray(result.params))
    diverged = bool(result.diverged)
    settings = {"epochs": s.n_epochs, "learning_rate": s.learning_rate, "init": list(s.params),
                "optimizer": s.optimizer, "gradient": s.gradient, "exact": s.exact, "data": s.data,
                "epochs_run": int(result.epochs_run), "diverged": diverged}
    calibration = Calibration(params, s.model, s.scale, float(result.loss), settings, fingerprint(s.raw_t_u, s.t_c),
                              __version__, diverged=diverged,
                              diverged_at=int(result.epochs_run) if diverged else None)
    save_calibration(path, calibration, name="--save")
