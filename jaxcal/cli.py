"""The ``jaxcal`` command line: ``main(argv) -> int``, called by tests and by ``jaxcal.__main__``.

Bad input ends with one line on stderr and exit status 2, never a traceback. Start-up choices
(``--x64``) are applied here, before any JAX computation, never inside the library.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from . import _checks

__all__ = ["main"]

EXIT_OK = 0
EXIT_PARITY_FAILED = 1
EXIT_BAD_INPUT = 2

_OPTIMIZERS = {"plain": None, "sgd": "sgd", "adam": "adam"}
_MODEL_PARAMS = {"linear": ("w", "b"), "quadratic": ("w2", "w1", "b")}
_DEFAULT_INIT = {"linear": [1.0, 0.0], "quadratic": [0.0, 1.0, 0.0]}
# Library argument names as the command line spells them, so errors name what the user typed.
_FLAG_NAMES = {
    "n_epochs": "--epochs", "learning_rate": "--lr", "log_every": "--log-every", "params": "--init",
    "optimizer": "--optimizer", "model": "--model", "gradient": "--gradient", "exact": "--exact",
    "val_fraction": "--val-fraction",
}


class _UsageError(Exception):
    def __init__(self, prog: str, message: str) -> None:
        super().__init__(f"{prog}: error: {message}")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (with a pointer to --help) instead of a block."""

    def error(self, message: str) -> NoReturn:
        raise _UsageError(self.prog, f"{message} (see '{self.prog} --help')")


def _add_distributed_flags(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--coordinator", default=None, metavar="HOST:PORT", help="jax.distributed coordinator (process 0's address)")
    add("--num-processes", default=None, metavar="N", help="processes in the run")
    add("--process-id", default=None, metavar="I", help="this process's index, 0..N-1")
    add("--timeout", default="60", metavar="S", help="seconds to wait for the other processes (default 60)")


def _add_train_flags(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--data", metavar="CSV", help="readings file with header t_u,t_c (default: the book's 11 readings)")
    add("--scale", default="0.1", metavar="S", help="multiply readings by S (default 0.1, the book's t_un; 1 = raw)")
    add("--epochs", default="5000", metavar="N", help="number of epochs (default 5000)")
    add("--lr", default="1e-2", metavar="LR", help="learning rate (default 1e-2)")
    add("--init", nargs="+", default=None, metavar="P",
        help="initial params: W B (linear, default 1 0) or W2 W1 B (quadratic, default 0 1 0)")
    add("--optimizer", default="plain", metavar="NAME", help="plain (the seed's params - lr * grad), sgd or adam")
    add("--model", default="linear", metavar="NAME", help="linear (w * t_u + b) or quadratic (w2 * t_u**2 + ...)")
    add("--gradient", default="autograd", metavar="HOW",
        help="autograd (jax.grad), analytic (the book's grad_fn) or finite-difference")
    add("--fd-delta", default="0.1", metavar="D", help="finite-difference half-width (default 0.1, the book's)")
    add("--log-every", default="500", metavar="K", help="log every K epochs (default 500)")
    add("--log-epochs", default=None, metavar="LIST", help="also log these epochs, e.g. 1,2,3,10,11,99,100")
    add("--val-fraction", default=None, metavar="F", help="hold out int(F * n) readings for validation")
    add("--split-seed", default="0", metavar="S", help="seed of the random train/validation split (default 0)")
    add("--book-split", action="store_true", help="use the book's recorded split (train 9,6,5,8,4,7,0,1,3; val 2,10)")
    add("--exact", action="store_true", help="reproduce the book's float32 recording digit for digit (CPU)")
    add("--x64", action="store_true", help="compute in float64 (set at start-up)")
    add("--devices", default=None, metavar="N", help="CPU devices to start and shard the readings over (start-up)")


def _build_parser() -> _Parser:
    from . import __version__

    parser = _Parser(
        prog="jaxcal",
        description="Fit the thermometer calibration of 'Deep Learning with PyTorch' ch. 5 in JAX.",
    )
    parser.add_argument("--version", action="version", version=f"jaxcal {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    train = commands.add_parser(
        "train",
        help="run the seed's training loop (one compiled program)",
        description="Run gradient descent on the book's model and print the seed's log.",
        epilog="examples:\n  jaxcal train\n  jaxcal train --scale 1 --optimizer adam --lr 0.1 --epochs 2000\n"
               "  jaxcal train --exact --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_train_flags(train)
    train.add_argument("--json", action="store_true", help="print one JSON object instead of the log")
    train.add_argument("--save", metavar="FILE", help="save the calibration (params, scale, model, ...) as JSON")
    train.add_argument("--plot", metavar="PNG", help="draw the readings with the fitted line, and the loss curve")
    _add_distributed_flags(train)

    predict = commands.add_parser(
        "predict",
        help="convert raw readings to Celsius with a saved calibration",
        description="Apply a calibration saved by 'jaxcal train --save' (its scale and params) to readings.",
        epilog="examples:\n  jaxcal predict --cal cal.json 45.1 60.2\n"
               "  jaxcal predict --cal cal.json --data readings.csv",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    predict.add_argument("readings", nargs="*", metavar="T_U", help="raw readings to convert")
    predict.add_argument("--cal", required=True, metavar="FILE", help="calibration file from 'jaxcal train --save'")
    predict.add_argument("--data", metavar="CSV", help="a CSV with a t_u column instead of readings on the line")
    predict.add_argument("--json", action="store_true", help="print one JSON object")

    parity = commands.add_parser(
        "parity",
        help="run one configuration in jaxcal and in torch and compare every logged epoch",
        description="Run the same training in jaxcal and torch (the 'parity' extra) and print a table per "
                    "logged value; exit 1 if any difference exceeds its derived float32/float64 tolerance.",
        epilog="examples:\n  jaxcal parity\n  jaxcal parity --scale 1 --optimizer adam --lr 0.1 --epochs 2000",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_train_flags(parity)

    sweep = commands.add_parser(
        "sweep",
        help="fit many learning rates in one compiled program and report where training diverges",
        description="Fit the data for --num learning rates, log-spaced from --lr-min to --lr-max (one compile).",
        epilog="examples:\n  jaxcal sweep --scale 1 --lr-min 1e-5 --lr-max 1e-1 --num 9\n"
               "  jaxcal sweep --lr-min 1e-3 --lr-max 1 --num 13 --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_train_flags(sweep)
    sweep.add_argument("--lr-min", default="1e-5", metavar="LR", help="smallest learning rate (default 1e-5)")
    sweep.add_argument("--lr-max", default="1e-1", metavar="LR", help="largest learning rate (default 1e-1)")
    sweep.add_argument("--num", default="9", metavar="K", help="how many learning rates (default 9)")
    sweep.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    sweep.add_argument("--plot", metavar="PNG", help="draw the final loss against the learning rate")
    sweep.add_argument("--quiet", action="store_true", help="no progress bar")

    fleet = commands.add_parser(
        "fleet",
        help="fit every sensor of a long table (sensor,t_u,t_c) at once",
        description="Fit w * t_u + b for every sensor of DATA (CSV with columns sensor,t_u,t_c in any row "
                    "order, or .npz with arrays sensor, t_u, t_c), all local devices busy.",
        epilog="examples:\n  jaxcal fleet sensors.csv --out fits.csv\n  jaxcal fleet sensors.npz --epochs 2000 --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    fleet.add_argument("data", metavar="DATA", help="CSV or .npz of readings per sensor")
    for flag in ("--scale", "--epochs", "--lr", "--init", "--optimizer", "--model", "--x64", "--devices"):
        action = next(a for a in train._actions if flag in a.option_strings)
        fleet._add_action(action)
    fleet.add_argument("--out", metavar="CSV", help="write per-sensor results here (written atomically)")
    fleet.add_argument("--json", action="store_true", help="print one JSON object instead of a summary")
    fleet.add_argument("--quiet", action="store_true", help="no progress bar")
    fleet.add_argument("--plot", metavar="PNG", help="draw the distribution of the fitted params")
    _add_distributed_flags(fleet)

    launch = commands.add_parser(
        "launch",
        help="start N local processes of a jaxcal command on loopback (jax.distributed)",
        description="Run COMMAND in N processes joined by jax.distributed on 127.0.0.1, for trying a "
                    "multi-process run on one machine. If one process fails, the others are stopped.",
        epilog="examples:\n  jaxcal launch -n 2 -- fleet sensors.csv --devices 2 --json\n"
               "  jaxcal launch -n 2 -- train --data big.npz --devices 2 --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    launch.add_argument("-n", dest="processes", default="2", metavar="N", help="number of processes (default 2)")
    launch.add_argument("--timeout", default="60", metavar="S", help="seconds to wait for a process (default 60)")
    launch.add_argument("rest", nargs=argparse.REMAINDER, metavar="-- COMMAND ...",
                        help="the jaxcal command to run (fleet or train)")

    graph = commands.add_parser(
        "graph",
        help="print the jaxprs of the loss and of its gradient (autograd's graph, the JAX way)",
        description="Print jax.make_jaxpr of the loss and of jax.grad of the loss.",
        epilog="example: jaxcal graph --model quadratic",
    )
    graph.add_argument("--model", default="linear", help="linear (default) or quadratic")
    return parser


def _float_arg(text: str, name: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise _checks.InvalidInput(f"{name}: not a number: {text!r}") from None


def _int_arg(text: str, name: str, most: int = _checks.MAX_EPOCHS) -> int:
    """A positive integer flag, at most ``most`` (by default what an int32 counter holds)."""
    try:
        value = int(text)
    except ValueError:
        raise _checks.InvalidInput(f"{name}: must be a positive integer, got {text!r}") from None
    return _checks.check_positive_int(value, name, most)


def _choice(value: str, choices: Sequence[str], name: str, what: str) -> str:
    if value not in choices:
        raise _checks.InvalidInput(f"{name}: unknown {what} {value!r}; choose one of {', '.join(choices)}")
    return value


def _train_settings(args: argparse.Namespace, part: Any = None) -> dict[str, Any]:
    """Parse and check every train flag before any JAX work starts; return run settings.

    ``part``: read only the rows ``part(n)`` of ``--data`` (a process's share of a multi-process
    run); ``n_total`` in the settings is then the file's count (``None`` when all were read).
    """
    import numpy as np

    from . import data as book
    from .training import GRADIENTS

    dtype = np.float64 if args.x64 else np.float32
    epochs = _int_arg(args.epochs, "--epochs")
    log_every = _int_arg(args.log_every, "--log-every")
    lr = _checks.check_learning_rate(_float_arg(args.lr, "--lr"), "--lr")
    _checks.fit_dtype(lr, dtype, "--lr", nonzero=True)
    scale = _float_arg(args.scale, "--scale")
    if not (math.isfinite(scale) and scale != 0):
        raise _checks.InvalidInput(f"--scale: must be a finite nonzero number, got {args.scale!r}")
    _checks.fit_dtype(scale, dtype, "--scale", nonzero=True)
    _choice(args.optimizer, list(_OPTIMIZERS), "--optimizer", "optimizer")
    model = _choice(args.model, list(_MODEL_PARAMS), "--model", "model")
    gradient = _choice(args.gradient, list(GRADIENTS), "--gradient", "gradient")
    delta = _float_arg(args.fd_delta, "--fd-delta")
    if not (math.isfinite(delta) and delta > 0):
        raise _checks.InvalidInput(f"--fd-delta: must be a positive finite number, got {args.fd_delta!r}")
    _checks.fit_dtype(delta, dtype, "--fd-delta", nonzero=True)
    names = _MODEL_PARAMS[model]
    init = list(_DEFAULT_INIT[model]) if args.init is None else [_float_arg(v, "--init") for v in args.init]
    if len(init) != len(names):
        raise _checks.InvalidInput(
            f"--init: the {model} model expects {len(names)} numbers ({' '.join(names)}), got {len(init)}")
    _checks.check_finite_array(init, "--init")
    _checks.fit_dtype(init, dtype, "--init")
    log_epochs: set[int] = set()
    if args.log_epochs:
        log_epochs = {_int_arg(part.strip(), "--log-epochs") for part in args.log_epochs.split(",") if part.strip()}
    if args.exact and args.x64:
        raise _checks.InvalidInput("--exact: reproduces the float32 recording; it cannot be combined with --x64")

    n_total = None
    if args.data is None:
        t_u, t_c = book.readings(dtype)
    elif part is not None and not (args.book_split or args.val_fraction is not None):
        from .io import read_readings_share

        t_u, t_c, n_total = read_readings_share(args.data, dtype, part)
    else:
        from .io import read_readings

        t_u, t_c = read_readings(args.data, dtype=dtype)
    val = None
    if args.book_split or args.val_fraction is not None:
        if args.book_split:
            if args.data is not None:
                raise _checks.InvalidInput("--book-split: the recorded split is for the book's readings only")
            train_idx, val_idx = (np.asarray(i) for i in book.BOOK_SPLIT)
        else:
            fraction = _float_arg(args.val_fraction, "--val-fraction")
            try:
                seed = int(args.split_seed)
            except ValueError:
                seed = -1
            if seed < 0:
                raise _checks.InvalidInput(f"--split-seed: must be an integer >= 0, got {args.split_seed!r}")
            train_idx, val_idx = book.split_indices(len(t_u), fraction, seed)
        val = (t_u[val_idx], t_c[val_idx])
        t_u, t_c = t_u[train_idx], t_c[train_idx]
    with np.errstate(over="ignore"):
        t_un = (dtype(scale) * t_u).astype(dtype)
        if val is not None:
            val = ((dtype(scale) * val[0]).astype(dtype), val[1])
    _checks.check_finite_array(t_un, "--scale")
    if n_total is None:  # a process's share of a split run cannot tell (its peers hold the rest)
        _check_determined(t_un, model, "--data" if args.data is not None else "--scale")
    return {
        "n_epochs": epochs, "learning_rate": lr, "params": init, "t_u": t_un, "t_c": t_c,
        "optimizer": _OPTIMIZERS[args.optimizer], "model": model, "gradient": gradient, "delta": delta,
        "log_every": log_every, "log_epochs": log_epochs, "val": val, "exact": bool(args.exact), "raw_t_u": t_u,
        "n_total": n_total,
    }


def _distinct(values: Any) -> str:
    return f"{values} distinct t_u value" + ("" if values == 1 else "s")


def _check_determined(t_u: Any, model: str, name: str) -> None:
    """Refuse readings from which the model cannot be determined: fewer distinct ``t_u`` values
    than it has parameters (all readings at one temperature leave the slope undetermined)."""
    import numpy as np

    need = len(_MODEL_PARAMS[model])
    distinct = len(np.unique(t_u))
    if distinct < need:
        raise _checks.InvalidInput(f"{name}: the readings have {_distinct(distinct)}; the {model} model's {need} "
                                   f"parameters need at least {need} (the fit is undetermined)")


def _check_fleet_determined(path: str, ids: Any, t_u: Any, counts: Any, model: str) -> None:
    """:func:`_check_determined` for every sensor of a padded ``(sensors, readings)`` table."""
    import numpy as np

    need = len(_MODEL_PARAMS[model])
    if need <= 1:
        return
    valid = np.arange(t_u.shape[1])[None, :] < np.asarray(counts)[:, None]
    ordered = np.sort(np.where(valid, t_u, np.nan), axis=1)  # padding (NaN) sorts last
    new = np.ones(ordered.shape, bool)
    new[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    distinct = (new & ~np.isnan(ordered)).sum(axis=1)
    short = np.nonzero(distinct < need)[0]
    if short.size:
        first = int(short[0])
        others = f" (and {short.size - 1} more sensors)" if short.size > 1 else ""
        raise _checks.InvalidInput(
            f"{path}: sensor {ids[first]!s} has {_distinct(int(distinct[first]))}{others}; the {model} model's "
            f"{need} parameters need at least {need} (the fit is undetermined)")


def _cluster_flags(args: argparse.Namespace) -> tuple[int | None, int | None, int]:
    """``--num-processes``, ``--process-id`` and ``--timeout``, checked."""
    processes = None if args.num_processes is None else _int_arg(args.num_processes, "--num-processes", 1 << 20)
    process_id = None
    if args.process_id is not None:
        if not (args.process_id.isascii() and args.process_id.isdigit()):
            raise _checks.InvalidInput(f"--process-id: must be an integer >= 0, got {args.process_id!r}")
        process_id = int(args.process_id)
    return processes, process_id, _int_arg(args.timeout, "--timeout", MAX_TIMEOUT)


def _start_up(args: argparse.Namespace) -> None:
    """Apply the start-up choices, once every flag has been checked and before any computation."""
    if args.x64:
        import jax

        jax.config.update("jax_enable_x64", True)


def _join(args: argparse.Namespace, processes: int | None, process_id: int | None, timeout: int) -> Any:
    """Join the multi-process run the flags describe (or none); interrupts stay jaxcal's."""
    from . import _interrupts, distributed

    cluster = distributed.initialize(args.coordinator, processes, process_id, timeout)
    _interrupts.reclaim()  # jax.distributed's preemption service takes SIGTERM
    return cluster


def _set_cpu_devices(requested: int | None) -> None:
    """Start one CPU device per core (or ``requested``): a start-up choice, before any computation."""
    import os

    import jax

    try:
        jax.config.update("jax_num_cpu_devices", requested or os.cpu_count() or 1)
    except RuntimeError:
        # The backend is already running (jaxcal called from a program that used JAX first).
        if requested is not None and requested != len(jax.devices("cpu")):
            raise _checks.InvalidInput(
                f"--devices: JAX is already running with {len(jax.devices('cpu'))} CPU devices; "
                "the count can only be chosen at start-up") from None


def _log_schedule(settings: dict[str, Any]) -> tuple[int, set[int] | None]:
    """The library's log interval, and the epochs to keep on the host (None: all of them)."""
    if not settings["log_epochs"]:
        return settings["log_every"], None
    every = settings["log_every"]
    keep = set(settings["log_epochs"]) | set(range(every, settings["n_epochs"] + 1, every))
    return 1, keep


def _cmd_train(args: argparse.Namespace) -> int:
    from . import distributed, report
    from .training import training_loop

    processes, process_id, timeout = _cluster_flags(args)
    planned = distributed.planned(args.coordinator, processes, process_id)
    # Each process of a multi-process run reads only its share of the readings, unless process 0
    # needs them all (to save their fingerprint or plot them).
    shared = planned is not None and not (args.save or args.plot)
    s = _train_settings(args, (lambda n: distributed.share(n, planned)) if shared else None)
    devices = None if args.devices is None else _int_arg(args.devices, "--devices", MAX_CPU_DEVICES)
    _check_output(args.save, "--save")
    _check_output(args.plot, "--plot")
    if args.plot:
        _need_matplotlib()
    if devices is not None:
        _set_cpu_devices(devices)
    _start_up(args)
    cluster = _join(args, processes, process_id, timeout)
    if args.plot and not s["log_epochs"]:
        # the loss curve wants every epoch; the printed log keeps its own schedule
        s["log_epochs"] = set(range(s["log_every"], s["n_epochs"] + 1, s["log_every"]))
    log_every, keep = _log_schedule(s)
    val = s["val"] or (None, None)
    t_u, t_c = s["t_u"], s["t_c"]
    if cluster.num_processes > 1:
        if s["exact"]:
            raise _checks.InvalidInput("--exact: a multi-process run sums in another order; run exact mode alone")
        # every process holds its share of the readings; the run's mean is an all-reduce (gloo)
        t_u, t_c = distributed.global_readings(t_u, t_c, cluster, s["n_total"])
    elif devices is not None and devices > 1:
        from .sharding import shard_readings

        t_u, t_c = shard_readings(t_u, t_c)
    result = training_loop(
        s["n_epochs"], s["learning_rate"], s["params"], t_u, t_c, optimizer=s["optimizer"],
        log_every=log_every, model=s["model"], gradient=s["gradient"], exact=s["exact"],
        val_t_u=val[0], val_t_c=val[1], delta=s["delta"],
    )
    if cluster.process_id != 0:
        return EXIT_OK  # process 0 reports for everyone
    if args.save:
        _save_calibration(args, s, result)
    if args.plot:
        from .plots import plot_fit

        plot_fit(args.plot, args, s, result)
    if args.json:
        print(json.dumps(report.result_to_dict(result, keep)))
    else:
        for line in report.train_log_lines(result, keep):
            print(line)
    return EXIT_OK


def _check_output(path: str | None, name: str) -> None:
    import os

    if path is None:
        return
    if os.path.isdir(path):
        raise _checks.InvalidInput(f"{name}: {path} is a directory")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder) or not os.access(folder, os.W_OK):
        raise _checks.InvalidInput(f"{name}: cannot write {path}: its folder is missing or not writable")


def _need_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise _checks.InvalidInput("--plot: matplotlib is not installed; install the plot extra: "
                                   "pip install 'jaxcal[plot]'") from None


def _save_calibration(args: argparse.Namespace, s: dict[str, Any], result: Any) -> None:
    import numpy as np

    from . import __version__
    from .calibration import Calibration, fingerprint, save_calibration
    from .core import MODELS, loss_and_grad

    params = tuple(float(p) for p in np.asarray(result.params))
    loss = float(loss_and_grad(np.asarray(params, s["t_u"].dtype), s["t_u"], s["t_c"], MODELS[s["model"]].fn)[0])
    settings = {"epochs": s["n_epochs"], "learning_rate": s["learning_rate"], "init": list(s["params"]),
                "optimizer": args.optimizer, "gradient": s["gradient"], "exact": s["exact"],
                "data": args.data, "epochs_run": int(result.epochs_run), "diverged": bool(result.diverged)}
    save_calibration(args.save, Calibration(params, s["model"], float(args.scale), loss, settings,
                                            fingerprint(s["raw_t_u"], s["t_c"]), __version__))


def _cmd_predict(args: argparse.Namespace) -> int:
    import numpy as np

    from .calibration import load_calibration

    calibration = load_calibration(args.cal)
    if args.data and args.readings:
        raise _checks.InvalidInput("predict: give readings on the command line or --data, not both")
    if args.data:
        from .io import read_t_u

        readings = read_t_u(args.data)
    else:
        if not args.readings:
            raise _checks.InvalidInput("predict: give readings to convert, e.g. jaxcal predict --cal cal.json 45.1")
        readings = np.asarray([_float_arg(v, "T_U") for v in args.readings])
        _checks.check_finite_array(readings, "T_U")
    celsius = calibration.predict(readings)
    if args.json:
        print(json.dumps({"t_u": readings.tolist(), "t_c": celsius.tolist()}))
    else:
        for raw, value in zip(readings.tolist(), celsius.tolist(), strict=True):
            print(f"{raw:g} -> {value:.4f}")
    return EXIT_OK


def _cmd_parity(args: argparse.Namespace) -> int:
    s = _train_settings(args)  # bad flags are reported first, torch or not
    try:
        import torch  # noqa: F401
    except ImportError:
        raise _checks.InvalidInput("torch is not installed; install the parity extra: pip install 'jaxcal[parity]'"
                                   ) from None
    from .parity import RunConfig, compare, format_table

    log_every, keep = _log_schedule(s)
    if s["gradient"] == "finite-difference" and s["n_epochs"] > 1:
        raise _checks.InvalidInput("--gradient: parity of finite-difference runs is derived for one step (--epochs 1)")
    _start_up(args)
    config = RunConfig(
        s["n_epochs"], s["learning_rate"], tuple(s["params"]), s["t_u"], s["t_c"], optimizer=s["optimizer"],
        log_every=log_every, model=s["model"], gradient=s["gradient"], val=s["val"], delta=s["delta"],
    )
    comparison = compare(config, exact=s["exact"])
    if keep is not None:
        comparison = comparison._replace(rows=[row for row in comparison.rows if row.epoch in keep])
    for line in format_table(comparison):
        print(line)
    return EXIT_OK if comparison.ok else EXIT_PARITY_FAILED


def _cmd_graph(args: argparse.Namespace) -> int:
    from .graph import loss_jaxprs

    _choice(args.model, list(_MODEL_PARAMS), "--model", "model")
    loss_text, grad_text = loss_jaxprs(args.model)
    print("# the loss: loss_fn(model(t_u, *params), t_c)")
    print(loss_text)
    print()
    print("# its gradient: jax.grad of the loss with respect to params")
    print(grad_text)
    return EXIT_OK


#: Bounds of the flags that start things: local processes of a loopback trial, CPU devices of one
#: process, and seconds to wait for a peer (a day).
MAX_LAUNCHED = 64
MAX_CPU_DEVICES = 256
MAX_TIMEOUT = 86_400

#: The most learning rates of one sweep: every configuration's params and results are held in memory.
MAX_SWEEP = 10_000_000


def _cmd_sweep(args: argparse.Namespace) -> int:
    import jax
    import numpy as np

    from .fleet import sweep
    from .progress import ProgressBar

    s = _train_settings(args)
    _check_output(args.plot, "--plot")
    if args.plot:
        _need_matplotlib()
    lo, hi = (_checks.check_learning_rate(_float_arg(v, n), n) for v, n in ((args.lr_min, "--lr-min"),
                                                                             (args.lr_max, "--lr-max")))
    for value, flag in ((lo, "--lr-min"), (hi, "--lr-max")):
        _checks.fit_dtype(value, s["t_u"].dtype, flag, nonzero=True)
    if lo > hi:
        raise _checks.InvalidInput(f"--lr-min: {lo} is larger than --lr-max {hi}")
    num = _int_arg(args.num, "--num", MAX_SWEEP)
    devices = None if args.devices is None else _int_arg(args.devices, "--devices", MAX_CPU_DEVICES)
    if devices is not None:
        _set_cpu_devices(devices)
    _start_up(args)
    rates = np.geomspace(lo, hi, num)
    bar = ProgressBar("sweep", enabled=not args.quiet)
    # ~60 ns per configuration-epoch on 11 readings: chunks of ~0.1 s of work when it is long
    work = num * s["n_epochs"] * max(1, len(s["t_u"]) / 11) * 6e-8
    try:
        result = sweep(s["t_u"], s["t_c"], n_epochs=s["n_epochs"], learning_rates=rates, inits=[s["params"]],
                       optimizer=s["optimizer"], model=s["model"], progress=bar,
                       chunks=max(1, min(num, int(work / 0.1))),
                       devices=None if devices is None else jax.local_devices())
    finally:
        bar.close()
    names = _MODEL_PARAMS[s["model"]]
    if args.plot:
        from .plots import plot_sweep

        plot_sweep(args.plot, result.learning_rate, result.loss, result.diverged)
    rows = [
        {"learning_rate": float(result.learning_rate[i]), "params": [float(p) for p in result.params[i]],
         "loss": float(result.loss[i]) if np.isfinite(result.loss[i]) else None,
         "epochs_run": int(result.epochs_run[i]), "diverged": bool(result.diverged[i])}
        for i in range(len(rates))
    ]
    if args.json:
        print(json.dumps({"configs": rows}))
        return EXIT_OK
    print(f"{'lr':>10} {' '.join(f'{n:>12}' for n in names)} {'loss':>12} {'epochs':>7}  result")
    for row in rows:
        loss = "inf" if row["loss"] is None else f"{row['loss']:.6g}"
        state = f"diverged at epoch {row['epochs_run']}" if row["diverged"] else "converging"
        print(f"{row['learning_rate']:>10.3g} {' '.join(f'{p:>12.6g}' for p in row['params'])} {loss:>12} "
              f"{row['epochs_run']:>7}  {state}")
    return EXIT_OK


#: Sensor-epochs per compiled chunk of a fleet: ~0.1 s at ~1.2e9 sensor-epochs/s (2 CPU cores).
FLEET_CHUNK_WORK = 1.2e8


def fleet_chunks(work: float, n_epochs: int) -> int:
    """Compiled chunks for a fleet of ``work`` sensor-epochs, so that the progress bar moves
    during a long fit. Each chunk ends in a wait for every
    device (the slowest one's share), measured at ~4 ms per chunk for 100,000 sensors on 2
    devices, so chunks of ~0.1 s keep the progress bar's cost near 4%."""
    return max(1, min(n_epochs, int(work / FLEET_CHUNK_WORK)))


def _cmd_fleet(args: argparse.Namespace) -> int:

    import numpy as np

    from . import distributed
    from ._files import write_atomic
    from .fleet import fit_fleet, least_squares
    from .io import read_fleet, read_fleet_share
    from .progress import ProgressBar

    s = _train_settings(argparse.Namespace(**{**vars(args), "data": None, "log_every": "1", "log_epochs": None,
                                              "gradient": "autograd", "fd_delta": "0.1", "val_fraction": None,
                                              "book_split": False, "exact": False, "split_seed": "0"}))
    devices = None if args.devices is None else _int_arg(args.devices, "--devices", MAX_CPU_DEVICES)
    processes, process_id, timeout = _cluster_flags(args)
    _check_output(args.out, "--out")
    _check_output(args.plot, "--plot")
    if args.plot:
        _need_matplotlib()
    dtype = np.float64 if args.x64 else np.float32
    planned = distributed.planned(args.coordinator, processes, process_id)
    if planned is not None:
        # a process of a multi-process run reads only its share of the sensors' readings
        table, ids = read_fleet_share(args.data, dtype, lambda n: distributed.share(n, planned))
    else:
        table = read_fleet(args.data, dtype=dtype)
        ids = table.sensors
    _set_cpu_devices(devices)
    _start_up(args)
    cluster = _join(args, processes, process_id, timeout)
    n = len(ids)
    if planned is None:  # this process fits only its share of the sensors
        mine = distributed.share(n, cluster)
        table = type(table)(*(column[mine] for column in table))
    scale = table.t_u.dtype.type(float(args.scale))
    with np.errstate(over="ignore", invalid="ignore"):
        t_un = (scale * table.t_u).astype(table.t_u.dtype)
    if not np.all(np.isfinite(t_un)):
        raise _checks.InvalidInput("--scale: scaled readings overflow")
    _check_fleet_determined(args.data, table.sensors, t_un, table.counts, s["model"])
    bar = ProgressBar("fleet", enabled=not args.quiet and cluster.process_id == 0)
    work = len(table.sensors) * s["n_epochs"]
    chunks = fleet_chunks(work, s["n_epochs"])
    try:
        result = fit_fleet(t_un, table.t_c, n_epochs=s["n_epochs"], learning_rate=s["learning_rate"],
                           params=s["params"], counts=table.counts, optimizer=s["optimizer"], model=s["model"],
                           progress=bar, chunks=chunks)
    finally:
        bar.close()
    names = result.param_names
    columns = {**{name: result.params[j] for j, name in enumerate(names)}, "loss": result.loss,
               "epochs_run": result.epochs_run, "diverged": result.diverged}
    if args.out is not None:  # the closed-form check, per sensor of this share
        columns["lsq"] = least_squares(t_un, table.t_c, table.counts, s["model"])
    columns = distributed.gather_rows(columns, n, cluster)
    if cluster.process_id != 0:
        return EXIT_OK  # process 0 reports for everyone
    if args.plot:
        from .plots import plot_fleet

        plot_fleet(args.plot, names, columns, np.asarray(columns["diverged"], bool))
    if args.out is not None:
        import csv
        import io

        lsq = columns["lsq"]
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")  # quotes a sensor id holding a comma or a newline
        writer.writerow(["sensor", *names, "loss", "epochs_run", "diverged", *(f"lsq_{n}" for n in names)])
        for i, sensor in enumerate(ids.tolist()):
            values = [repr(float(columns[name][i])) for name in names]
            writer.writerow([str(sensor), *values, repr(float(columns["loss"][i])), str(int(columns["epochs_run"][i])),
                             str(bool(columns["diverged"][i])).lower(), *(repr(float(v)) for v in lsq[i])])
        write_atomic(args.out, text.getvalue())
    if args.json:
        sensors = [
            {"sensor": sensor, "params": [float(columns[name][i]) for name in names],
             "loss": float(columns["loss"][i]) if np.isfinite(columns["loss"][i]) else None,
             "epochs_run": int(columns["epochs_run"][i]), "diverged": bool(columns["diverged"][i])}
            for i, sensor in enumerate(ids.tolist())
        ]
        print(json.dumps({"sensors": sensors}))
    elif args.out is None or not args.quiet:
        print(f"{n} sensors fitted, {int(np.sum(columns['diverged']))} diverged"
              + (f"; results in {args.out}" if args.out else "; use --out CSV or --json for the results"))
    return EXIT_OK


def _cmd_launch(args: argparse.Namespace) -> int:
    from .launch import launch

    rest = args.rest[1:] if args.rest[:1] == ["--"] else args.rest
    if not rest:
        raise _checks.InvalidInput("launch: give the command to run after --, e.g. jaxcal launch -n 2 -- fleet DATA")
    if rest[0] not in ("fleet", "train"):
        raise _checks.InvalidInput(f"launch: runs 'fleet' or 'train' in several processes; got {rest[0]!r}")
    return launch(rest, _int_arg(args.processes, "-n", MAX_LAUNCHED), _int_arg(args.timeout, "--timeout", MAX_TIMEOUT))


_COMMANDS = {
    "train": _cmd_train, "parity": _cmd_parity, "sweep": _cmd_sweep, "fleet": _cmd_fleet, "graph": _cmd_graph,
    "launch": _cmd_launch, "predict": _cmd_predict,
}


def _as_flag(message: str) -> str:
    name, sep, rest = message.partition(": ")
    return f"{_FLAG_NAMES.get(name, name)}{sep}{rest}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    parser = _build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
        prog = f"jaxcal {args.command}"
        if extra:
            raise _UsageError(prog, f"unrecognized arguments: {' '.join(extra)} (see '{prog} --help')")
    except _UsageError as error:
        print(error, file=sys.stderr)
        return EXIT_BAD_INPUT
    from ._files import all_or_nothing

    try:
        with all_or_nothing():  # a run's output files appear together, or not at all
            return _COMMANDS[args.command](args)
    except _checks.InputError as error:
        print(f"{prog}: error: {_as_flag(str(error))}", file=sys.stderr)
        return EXIT_BAD_INPUT
