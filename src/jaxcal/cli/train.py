"""``jaxcal train``: the seed's training run, its log, and optionally the calibration and a plot.

``--solver ls`` or ``lm`` fits the same readings by :func:`jaxcal.calibrate` instead, and prints the
params with their standard errors (``auto``: ``ls`` for a model linear in its params, ``lm`` otherwise);
the default, ``gd``, is the seed's run, unchanged.

``--model`` is a named model or an expression in ``t_u`` (:mod:`jaxcal.expression`), its start given by
name (``--init b1=250,b2=5e-4``); the saved calibration carries the expression's text. ``--data`` is one
sensor's table, read as ``--columns``, ``--separator`` and ``--missing`` say: a reading with a missing
value is dropped and counted in the output, a sigma column weights the fit (``ls``, ``lm``).

Gradient descent fits ``model(S * t_u, *params)`` (``--scale S``, the book's preconditioning), and its
params, and ``--init``, apply to the scaled readings: the saved calibration records ``S`` with them, and
``jaxcal predict`` multiplies each reading by it before applying the model.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from typing import Any

from .. import _checks
from . import _parser
from ._outputs import write
from ._settings import FitSettings, check_output, need_matplotlib, parse_devices, parse_fit, parse_solver, placed
from ._startup import cluster_flags, join, start_up

__all__ = ["add_parser", "run"]


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = _parser.subcommand(
        commands, "train", help="run the seed's training loop (one compiled program)",
        description="Run gradient descent on the book's model and print the seed's log; --solver ls or lm fits "
                    "the same readings by least squares and prints the params with their standard errors. The "
                    "model may be an expression in t_u, and --data one sensor's table with its own column names.",
        examples=["jaxcal train", "jaxcal train --scale 1 --optimizer adam --lr 0.1 --epochs 2000",
                  "jaxcal train --exact --json", "jaxcal train --solver ls --x64 --save cal.json",
                  "jaxcal train --model 'b1*(1-exp(-b2*t_u))' --init b1=250,b2=5e-4 --solver lm --data misra.csv "
                  "--save cal.json",
                  "jaxcal train --solver ls --data logger.csv --columns t_u=RAW,t_c=REF --separator ';'"])
    _parser.add_solver_flag(parser, "gd", auto=True)
    _parser.add_train_flags(parser, solver=True, tables=True)
    _parser.add_device_flag(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the log")
    parser.add_argument("--save", metavar="FILE", help="save the calibration (params, scale, model, solver, "
                        "covariance, standard errors, dof, residual SD, ...) as JSON")
    parser.add_argument("--plot", metavar="FILE", help="draw the readings with the fitted line, and the loss curve "
                        "(the residuals for --solver ls, lm) (.png, .pdf or .svg)")
    _parser.add_distributed_flags(parser)


def run(args: argparse.Namespace) -> int:
    from .. import distributed, report
    from ..training import training_loop

    processes, process_id, timeout = cluster_flags(args)
    planned = distributed.planned(args.coordinator, processes, process_id)
    # Each process of a multi-process run reads only its share of the readings, unless process 0
    # needs them all (to save their fingerprint or plot them), or the fit is not gradient descent's
    # (each process fits them all; process 0 reports).
    shared = planned is not None and not (args.save or args.plot) and parse_solver(args) == "gd"
    s = parse_fit(args, (lambda n: distributed.share(n, planned)) if shared else None, expressions=True)
    s = dataclasses.replace(s, devices=parse_devices(args))
    check_output(args.save, "--save")
    check_output(args.plot, "--plot")
    if args.plot:
        from ..core import MODELS

        if s.model not in MODELS:
            raise _checks.InvalidInput("--plot", f"draws the named models ({', '.join(MODELS)}); for the expression "
                                                 f"{s.model!r} save the calibration (--save) and convert readings "
                                                 "with jaxcal predict")
        need_matplotlib()
    start_up(x64=s.x64, devices=s.devices, cache=not args.no_cache)
    cluster = join(args.coordinator, processes, process_id, timeout)
    if s.solver != "gd":
        return _calibrate(args, s, cluster.process_id == 0)
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
        print(json.dumps(report.result_to_dict(result, keep) | _dropped(s)))
    else:
        for line in _dropped_lines(s):
            print(line)
        for line in report.train_log_lines(result, keep):
            print(line)
    return 0


def _kept(s: FitSettings) -> int:
    """The readings of ``--data`` kept (the validation readings among them)."""
    return len(s.raw_t_u) + (0 if s.val is None else len(s.val[0]))


def _dropped(s: FitSettings) -> dict[str, int]:
    """The JSON's count of the readings of ``--data`` dropped for a missing value, and of those kept;
    nothing where none was dropped (the output is then what it always was)."""
    return {"readings": _kept(s), "dropped": s.dropped} if s.dropped else {}


def _dropped_lines(s: FitSettings) -> list[str]:
    """The log's line saying how many readings of ``--data`` were dropped, where some were."""
    if not s.dropped:
        return []
    return [f"{s.data}: {s.dropped} reading{'' if s.dropped == 1 else 's'} dropped for a missing value, "
            f"{_kept(s)} kept"]


def _calibrate(args: argparse.Namespace, s: FitSettings, reports: bool) -> int:
    """``--solver ls`` or ``lm``: :func:`jaxcal.calibrate` of the readings as read, printed (or as JSON),
    saved and drawn; every process of a multi-process run fits them all, process 0 (``reports``) reports."""
    from .. import report
    from ..calibrate import calibrate
    from ..solvers import SOLVERS

    solver = SOLVERS[s.solver][0]()
    start = None if s.solver == "ls" else s.params
    with placed(args.device, "fit", len(s.t_u)):
        # a sigma column: weights relative to each other, as jaxcal fleet's (the covariance follows the scatter)
        fit = calibrate(s.t_u, s.t_c, model=s.model, params=start, solver=solver, sigma=s.sigma)
    if not reports:
        return 0
    if args.save:
        write(args.save, lambda path: _save_calibration(path, s, None, fit))
    if args.plot:
        from ..plots import plot_fit

        write(args.plot, lambda path: plot_fit(path, s.raw_t_u, s.t_c, fit, scale=s.scale, model=s.model,
                                               name="--plot"))
    if args.json:
        print(json.dumps(report.calibration_to_dict(fit, s.solver, s.scale) | _dropped(s)))
    else:
        for line in _dropped_lines(s):
            print(line)
        for line in report.calibration_lines(fit, f"{s.solver} ({_parser.solver_choices(auto=False)[s.solver]})"):
            print(line)
    return 0


def _uncertainty_at(s: FitSettings, params: Any) -> Any:
    """The uncertainty of gradient descent's final ``params`` (``None`` if they are not finite), on the
    scaled readings the params apply to (:class:`._at_params.AtParams`)."""
    import numpy as np

    from ..calibrate import calibrate
    from ._at_params import AtParams

    if not np.isfinite(np.asarray(params)).all():
        return None
    return calibrate(s.t_u, s.t_c, model=s.model, params=np.asarray(params, s.t_u.dtype), solver=AtParams())


def _save_calibration(path: str, s: FitSettings, result: Any, fit: Any = None) -> None:
    """Save gradient descent's ``result`` (its uncertainty computed at its final params), or a
    calibration's ``fit`` (``--solver ls``, ``lm``)."""
    import math

    import numpy as np

    from .. import __version__
    from ..calibration import Calibration, fingerprint, save_calibration
    from ..core import resolve_model
    from ..solvers import STATUS

    if fit is None:
        # A diverged run is saved too, marked so: the record of what was tried, which predict refuses.
        params = tuple(float(p) for p in np.asarray(result.params))
        diverged = bool(result.diverged)
        settings = {"epochs": s.n_epochs, "learning_rate": s.learning_rate, "init": list(s.params),
                    "optimizer": s.optimizer, "gradient": s.gradient, "exact": s.exact, "data": s.data,
                    "epochs_run": int(result.epochs_run), "diverged": diverged}
        loss, diverged_at = float(result.loss), int(result.epochs_run) if diverged else None
        fit = None if diverged else _uncertainty_at(s, result.params)
    else:
        params = tuple(float(p) for p in np.asarray(fit.params))
        status = STATUS[int(fit.status)]
        settings = {"solver": s.solver, "init": list(s.params) if s.solver != "ls" else None, "data": s.data,
                    "status": status, "steps": int(fit.steps)}
        # the book's loss, the mean squared error, of the fit's params
        loss = float(fit.rss) / len(s.t_u)
        diverged = not all(math.isfinite(p) for p in params)
        diverged_at = None
    # how --data was read: readings dropped for a missing value, the weights, the sensor its table names
    settings |= {"dropped": s.dropped, "weighted": s.sigma is not None, "sensor": s.sensor}
    uncertainty = {"dof": len(s.t_u) - resolve_model(s.model).n_params}
    if fit is not None:
        uncertainty = {"cov": tuple(tuple(float(c) for c in row) for row in np.asarray(fit.cov)),
                       "stderr": tuple(float(e) for e in np.asarray(fit.stderr)), "dof": int(fit.dof),
                       "residual_sd": float(fit.residual_sd)}
    calibration = Calibration(params, s.model, s.scale, loss, settings, fingerprint(s.raw_t_u, s.t_c), __version__,
                              diverged=diverged, diverged_at=diverged_at, solver=s.solver, **uncertainty)
    save_calibration(path, calibration, name="--save")
