"""``jaxcal launch``: N local processes of a jaxcal command, joined on loopback."""

from __future__ import annotations

import argparse

from .. import _checks
from . import _parser
from ._settings import MAX_LAUNCHED, MAX_TIMEOUT, int_arg

__all__ = ["add_parser", "run"]

#: The commands that run in several processes.
LAUNCHED = ("fleet", "train")


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = _parser.subcommand(
        commands, "launch", help="start N local processes of a jaxcal command on loopback (jax.distributed)",
        description="Run COMMAND in N processes joined by jax.distributed on 127.0.0.1, for trying a "
                    "multi-process run on one machine. If one process fails, the others are stopped.",
        examples=["jaxcal launch -n 2 -- fleet sensors.csv --devices 2 --json",
                  "jaxcal launch -n 2 -- train --data big.npz --devices 2 --json"])
    parser.add_argument("-n", dest="processes", default="2", metavar="N", help="number of processes (default 2)")
    parser.add_argument("--timeout", default="60", metavar="S", help="seconds to wait for a process (default 60)")
    parser.add_argument("rest", nargs=argparse.REMAINDER, metavar="-- COMMAND ...",
                        help="the jaxcal command to run (fleet or train)")


def run(args: argparse.Namespace) -> int:
    from ._launch import launch

    rest = args.rest[1:] if args.rest[:1] == ["--"] else args.rest
    if not rest:
        raise _checks.InvalidInput("launch", "give the command to run after --, e.g. jaxcal launch -n 2 -- fleet DATA")
    command = _parser.canonical(rest[0], LAUNCHED)
    if command is None:
        close = _parser.closest(rest[0], LAUNCHED)
        raise _checks.InvalidInput("launch", "runs 'fleet' or 'train' in several processes; got "
                                   f"{_checks.shown(rest[0])}" + (f"; did you mean {close!r}?" if close else ""))
    processes = int_arg(args.processes, "-n", MAX_LAUNCHED)
    return launch([command, *rest[1:]], processes, int_arg(args.timeout, "--timeout", MAX_TIMEOUT))
