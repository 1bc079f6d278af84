"""The ``jaxcal`` command line: ``main(argv) -> int`` for tests, ``entrypoint()`` for the script.

Bad input ends with one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from . import _checks

__all__ = ["entrypoint", "main"]

EXIT_OK = 0
EXIT_BAD_INPUT = 2


class _UsageError(Exception):
    def __init__(self, prog: str, message: str) -> None:
        super().__init__(f"{prog}: error: {message}")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (with a pointer to --help) instead of a block."""

    def error(self, message: str) -> NoReturn:
        raise _UsageError(self.prog, f"{message} (see '{self.prog} --help')")


def _add_train_flags(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--data", metavar="CSV", help="readings file with header t_u,t_c (default: the book's 11 readings)")
    add("--scale", default="0.1", metavar="S", help="multiply readings by S (default 0.1, the book's t_un; 1 = raw)")
    add("--epochs", default="5000", metavar="N", help="number of epochs (default 5000)")
    add("--lr", default="1e-2", metavar="LR", help="learning rate (default 1e-2)")
    add("--init", nargs="+", default=None, metavar="P", help="initial params, e.g. --init 1 0 (default: w=1, b=0)")
    add("--optimizer", default="plain", metavar="NAME", help="plain (the seed's params - lr * grad), sgd or adam")
    add("--log-every", default="500", metavar="K", help="log every K epochs (default 500)")


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
        description="Run gradient descent on w * t_u + b and print the seed's log.",
        epilog="example: jaxcal train --epochs 5000 --lr 1e-2 --init 1 0 --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_train_flags(train)
    train.add_argument("--json", action="store_true", help="print one JSON object instead of the log")

    graph = commands.add_parser(
        "graph",
        help="print the jaxprs of the loss and of its gradient (autograd's graph, the JAX way)",
        description="Print jax.make_jaxpr of the loss and of jax.grad of the loss.",
        epilog="example: jaxcal graph",
    )
    graph.add_argument("--model", default="linear", help="linear (default) or quadratic")
    return parser


def _float_arg(text: str, name: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise _checks.InvalidInput(f"{name}: not a number: {text!r}") from None


def _int_arg(text: str, name: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise _checks.InvalidInput(f"{name}: must be a positive integer, got {text!r}") from None
    return _checks.check_positive_int(value, name)


_OPTIMIZERS = {"plain": None, "sgd": "sgd", "adam": "adam"}


def _train_settings(args: argparse.Namespace) -> dict[str, Any]:
    """Parse and check every train flag before any JAX work starts."""
    import math

    import numpy as np

    from . import data as book

    epochs = _int_arg(args.epochs, "--epochs")
    log_every = _int_arg(args.log_every, "--log-every")
    lr = _checks.check_learning_rate(_float_arg(args.lr, "--lr"), "--lr")
    scale = _float_arg(args.scale, "--scale")
    if not (math.isfinite(scale) and scale != 0):
        raise _checks.InvalidInput(f"--scale: must be a finite nonzero number, got {args.scale!r}")
    if args.optimizer not in _OPTIMIZERS:
        raise _checks.InvalidInput(f"--optimizer: unknown optimizer {args.optimizer!r}; choose one of plain, sgd, adam")
    n_params = 2
    init = [1.0, 0.0] if args.init is None else [_float_arg(v, "--init") for v in args.init]
    if len(init) != n_params:
        raise _checks.InvalidInput(f"--init: expects {n_params} numbers (w b), got {len(init)}")
    _checks.check_finite_array(init, "--init")
    if args.data is None:
        t_u, t_c = book.t_u, book.t_c
    else:
        from .io import read_readings

        t_u, t_c = read_readings(args.data)
    dtype = t_u.dtype
    with np.errstate(over="ignore"):
        t_un = (dtype.type(scale) * t_u).astype(dtype)
    _checks.check_finite_array(t_un, "--scale")
    return {
        "n_epochs": epochs,
        "learning_rate": lr,
        "params": init,
        "t_u": t_un,
        "t_c": t_c,
        "optimizer": _OPTIMIZERS[args.optimizer],
        "log_every": log_every,
    }


def _cmd_train(args: argparse.Namespace) -> int:
    from . import report
    from .training import training_loop

    settings = _train_settings(args)
    params = settings.pop("params")
    result = training_loop(settings.pop("n_epochs"), settings.pop("learning_rate"), params,
                           settings.pop("t_u"), settings.pop("t_c"), **settings)
    if args.json:
        print(json.dumps(report.result_to_dict(result)))
    else:
        for line in report.train_log_lines(result):
            print(line)
    return EXIT_OK


def _cmd_graph(args: argparse.Namespace) -> int:
    from .graph import loss_jaxprs

    if args.model not in ("linear", "quadratic"):
        raise _checks.InvalidInput(f"--model: unknown model {args.model!r}; choose one of linear, quadratic")
    loss_text, grad_text = loss_jaxprs(args.model)
    print("# the loss: loss_fn(model(t_u, *params), t_c)")
    print(loss_text)
    print()
    print("# its gradient: jax.grad of the loss with respect to params")
    print(grad_text)
    return EXIT_OK


_COMMANDS = {"train": _cmd_train, "graph": _cmd_graph}


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
    try:
        return _COMMANDS[args.command](args)
    except _checks.InputError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT


def entrypoint() -> NoReturn:
    """The console script: ``sys.exit(main())``."""
    sys.exit(main())
