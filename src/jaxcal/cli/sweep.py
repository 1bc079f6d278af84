"""``jaxcal sweep``: many learning rates in one compiled program, and where training diverges."""

from __future__ import annotations

import argparse
import dataclasses
import json

from .. import _checks
from . import _parser
from ._outputs import write
from ._settings import MAX_SWEEP, check_output, float_arg, int_arg, need_matplotlib, parse_devices, parse_fit
from ._startup import start_up

__all__ = ["add_parser", "run"]

#: Work per compiled chunk of a sweep: ~60 ns per configuration-epoch on 11 readings, chunks of
#: ~0.1 s when the sweep is long, so that the progress bar moves.
_NS_PER_CONFIG_EPOCH = 60e-9


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = _parser.subcommand(
        commands, "sweep", help="fit many learning rates in one compiled program and report where training diverges",
        description="Fit the data for --num learning rates, log-spaced from --lr-min to --lr-max (one compile).",
        examples=["jaxcal sweep --scale 1 --lr-min 1e-5 --lr-max 1e-1 --num 9",
                  "jaxcal sweep --lr-min 1e-3 --lr-max 1 --num 13 --json"])
    # a sweep's own flags: the readings and the model, no learning rate (a range) and no schedule (it logs none)
    _parser.add_data_flag(parser)
    _parser.add_model_flags(parser, lr=False)
    _parser.add_start_up_flags(parser, "split the learning rates over")
    _parser.add_device_flag(parser)
    add = parser.add_argument
    add("--lr-min", default="1e-5", metavar="LR", help="smallest learning rate (default 1e-5)")
    add("--lr-max", default="1e-1", metavar="LR", help="largest learning rate (default 1e-1)")
    add("--num", default="9", metavar="K", help="how many learning rates (default 9)")
    add("--json", action="store_true", help="print one JSON object instead of the table")
    add("--plot", metavar="PNG", help="draw the final loss against the learning rate")
    add("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    import jax
    import numpy as np

    from ..progress import ProgressBar
    from ..sweeps import sweep

    s = parse_fit(args)
    check_output(args.plot, "--plot")
    if args.plot:
        need_matplotlib()
    lo, hi = (_checks.check_learning_rate(float_arg(v, n), n) for v, n in ((args.lr_min, "--lr-min"),
                                                                           (args.lr_max, "--lr-max")))
    for value, flag in ((lo, "--lr-min"), (hi, "--lr-max")):
        _checks.fit_dtype(value, s.t_u.dtype, flag, nonzero=True)
    if lo > hi:
        raise _checks.InvalidInput("--lr-min", f"{lo} is larger than --lr-max {hi}")
    num = int_arg(args.num, "--num", MAX_SWEEP)
    s = dataclasses.replace(s, devices=parse_devices(args))
    start_up(x64=s.x64, devices=s.devices, cache=not args.no_cache)
    rates = np.geomspace(lo, hi, num)
    bar = ProgressBar("sweep", enabled=not args.quiet)
    work = num * s.n_epochs * max(1, len(s.t_u) / 11) * _NS_PER_CONFIG_EPOCH
    try:
        result = sweep(s.t_u, s.t_c, n_epochs=s.n_epochs, learning_rate=rates, params=s.params,
                       optimizer=s.library_optimizer, model=s.model, progress=bar,
                       chunks=max(1, min(num, int(work / 0.1))),
                       devices=None if s.devices is None else jax.local_devices(), device=args.device)
    finally:
        bar.close()
    params, loss, epochs_run, diverged = (a[:, 0] for a in (result.params, result.loss, result.epochs_run,
                                                            result.diverged))
    if args.plot:
        from ..plots import plot_sweep

        write(args.plot, lambda path: plot_sweep(path, rates, loss, diverged, name="--plot"))
    from ..report import sweep_rows

    rows = sweep_rows(rates, params, loss, epochs_run, diverged)
    if args.json:
        print(json.dumps({"configs": rows}))
        return 0
    print(f"{'lr':>10} {' '.join(f'{n:>12}' for n in result.param_names)} {'loss':>12} {'epochs':>7}  result")
    for row in rows:
        shown = "inf" if row["loss"] is None else f"{row['loss']:.6g}"
        state = f"diverged at epoch {row['epochs_run']}" if row["diverged"] else "converging"
        print(f"{row['learning_rate']:>10.3g} {' '.join(f'{p:>12.6g}' for p in row['params'])} {shown:>12} "
              f"{row['epochs_run']:>7}  {state}")
    return 0
