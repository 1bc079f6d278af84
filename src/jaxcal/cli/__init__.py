"""The ``jaxcal`` command line: ``main(argv) -> int``, called by tests and by ``jaxcal.__main__``.

One module per command (``train``, ``predict``, ``parity``, ``sweep``, ``fleet``, ``launch``,
``graph``), each with ``add_parser(commands)`` and ``run(args) -> int`` over typed settings
(:mod:`._settings`); start-up choices in :mod:`._startup`. Bad input ends with one line on stderr
and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .. import _checks
from . import fleet, graph, launch, parity, predict, sweep, train
from ._parser import Parser, UsageError

__all__ = ["FLAGS", "build_parser", "main"]

EXIT_PARITY_FAILED = parity.EXIT_PARITY_FAILED
EXIT_BAD_INPUT = 2

COMMANDS = {"train": train, "predict": predict, "parity": parity, "sweep": sweep, "fleet": fleet,
            "launch": launch, "graph": graph}

#: The library's argument names as the command line spells them, so that an error names what the
#: user typed: the one table between the library's words and the flags.
FLAGS = {
    "n_epochs": "--epochs", "learning_rate": "--lr", "log_every": "--log-every", "params": "--init",
    "optimizer": "--optimizer", "model": "--model", "gradient": "--gradient", "exact": "--exact",
    "val_fraction": "--val-fraction", "delta": "--fd-delta", "num_processes": "--num-processes", "device": "--device",
}


def build_parser() -> Parser:
    """The parser of every command (the command-line reference is generated from it)."""
    from .. import __version__

    parser = Parser(prog="jaxcal",
                    description="Fit the thermometer calibration of 'Deep Learning with PyTorch' ch. 5 in JAX.")
    parser.add_argument("--version", action="version", version=f"jaxcal {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    commands.required = True
    for command in COMMANDS.values():
        command.add_parser(commands)
    return parser


#: The arguments that name input files: an error about such a file is named by its path, which is not
#: mapped to a flag even where a file is called like a library argument (a table named ``model``).
_FILES = ("data", "cal")


def _as_flags(error: _checks.InputError, args: argparse.Namespace | None = None) -> str:
    if not error.problem:
        return error.name
    if error.name in {getattr(args, name, None) for name in _FILES}:
        return f"{error.name}: {error.problem}"
    return f"{FLAGS.get(error.name, error.name)}: {error.problem}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
        prog = f"jaxcal {args.command}"
        if extra:
            raise UsageError(prog, parser.unrecognized(args.command, extra))
    except UsageError as error:
        print(error, file=sys.stderr)
        return EXIT_BAD_INPUT
    from ._outputs import all_or_nothing

    try:
        with all_or_nothing():  # a run's output files appear together, or not at all
            return COMMANDS[args.command].run(args)
    except _checks.InputError as error:
        print(f"{prog}: error: {_as_flags(error, args)}{_columns_hint(args, error)}", file=sys.stderr)
        return EXIT_BAD_INPUT


def _columns_hint(args: argparse.Namespace, error: _checks.InputError) -> str:
    """Where a table's header is not the one expected and the command reads ``--columns`` (not given):
    how to name the table's own columns."""
    if getattr(args, "columns", "given") is not None or not isinstance(error, _checks.UnexpectedHeader):
        return ""
    return f"; where its columns are named otherwise, --columns {','.join(f'{r}=NAME' for r in error.roles)}"
