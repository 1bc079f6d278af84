"""The command line's argparse pieces: one-line usage errors and the flags commands share."""

from __future__ import annotations

import argparse
import difflib
from collections.abc import Iterable, Sequence
from typing import Any, NoReturn

from .._checks import shown

__all__ = ["Parser", "UsageError", "add_data_flag", "add_device_flag", "add_distributed_flags", "add_model_flags",
           "add_solver_flag", "add_start_up_flags", "add_table_flags", "add_train_flags", "canonical", "closest",
           "did_you_mean", "solver_choices", "subcommand"]

#: How long the echo of unrecognized arguments may grow: a message stays one bounded line.
MOST_ECHOED = 80


class UsageError(Exception):
    def __init__(self, prog: str, message: str) -> None:
        super().__init__(f"{prog}: error: {message}")


def canonical(value: str, choices: Iterable[str]) -> str | None:
    """The choice ``value`` names, whatever its case (``Adam`` is ``adam``), or ``None``."""
    folded = value.casefold()
    return next((c for c in choices if c.casefold() == folded), None)


def did_you_mean(value: str, choices: Sequence[str], lead: str = "choose one of") -> str:
    """The end of a message about a mistyped choice: the closest choice, and the list of them.

    Args:
      value: what was typed.
      choices: what it could have been.
      lead: the words before the list.

    Returns:
      ``"did you mean 'adam'? (choose one of plain, sgd, adam)"``, or only
      ``"choose one of plain, sgd, adam"`` when no choice is close (difflib's ratio of at least
      0.6, on case-folded text).
    """
    listed = f"{lead} {', '.join(choices)}"
    close = closest(value, choices)
    return f"did you mean {close!r}? ({listed})" if close else listed


def closest(value: str, choices: Sequence[str]) -> str | None:
    """The choice a mistyped ``value`` is closest to (difflib's ratio of at least 0.6, on case-folded
    text), or ``None``."""
    folded = {c.casefold(): c for c in choices}
    close = difflib.get_close_matches(value.casefold()[:100], list(folded), n=1)
    return folded[close[0]] if close else None


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (with a pointer to --help) instead of a block, a
    choice is taken in any case, and a mistyped choice or flag is answered with the closest one."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(self.prog, f"{message} (see '{self.prog} --help')")

    def _get_value(self, action: argparse.Action, arg_string: str) -> Any:
        value = super()._get_value(action, arg_string)
        if action.choices is not None and isinstance(value, str) and value not in action.choices:
            value = canonical(value, action.choices) or value
        return value

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        if action.choices is not None and value not in action.choices:
            names = [str(c) for c in action.choices]
            raise argparse.ArgumentError(
                action, f"invalid choice: {shown(str(value))}; {did_you_mean(str(value), names, 'choose from')}")

    def unrecognized(self, command: str | None, extra: Sequence[str]) -> str:
        """The one-line message for arguments ``command``'s parser did not know, with the flag
        each unknown one is closest to."""
        parser = self._commands().get(command, self)
        flags = [flag for action in parser._actions for flag in action.option_strings]
        hints = []
        for word in extra:
            typed = word.partition("=")[0]
            if typed.startswith("-") and (close := difflib.get_close_matches(typed[:100], flags, n=1)):
                hints.append((typed, close[0]))
        echoed = " ".join(extra)
        if len(echoed) > MOST_ECHOED:
            echoed = echoed[:MOST_ECHOED - 3] + "..."
        message = f"unrecognized arguments: {echoed}"
        if len(hints) == 1:
            message += f"; did you mean {hints[0][1]}?"
        elif hints:  # the first few: the line stays short
            message += "; did you mean " + ", ".join(f"{close} for {shown(typed)}" for typed, close in hints[:3]) + "?"
        return f"{message} (see '{parser.prog} --help')"

    def _commands(self) -> dict[str, argparse.ArgumentParser]:
        actions = self._subparsers._group_actions if self._subparsers is not None else []
        return next((dict(a.choices) for a in actions if isinstance(a, argparse._SubParsersAction)), {})


def subcommand(commands: argparse._SubParsersAction, name: str, *, help: str, description: str,
               examples: list[str]) -> argparse.ArgumentParser:
    """A subcommand's parser, its examples in the epilog (as they are typed)."""
    epilog = (f"example: {examples[0]}" if len(examples) == 1
              else "examples:\n" + "\n".join(f"  {e}" for e in examples))
    return commands.add_parser(name, help=help, description=description, epilog=epilog,
                               formatter_class=argparse.RawDescriptionHelpFormatter)


def add_distributed_flags(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--coordinator", default=None, metavar="HOST:PORT", help="jax.distributed coordinator (process 0's address)")
    add("--num-processes", default=None, metavar="N", help="processes in the run")
    add("--process-id", default=None, metavar="I", help="this process's index, 0..N-1")
    add("--timeout", default="60", metavar="S", help="seconds to wait for the other processes (default 60)")


#: What ``--solver gd`` is, where the library's table (:data:`jaxcal.solvers.SOLVERS`) has no entry for it.
GD_SUMMARY = "gradient descent, the book's method (--lr, --epochs, --optimizer, --scale)"

#: ``--solver auto``: the library's own default (:func:`jaxcal.calibrate`'s).
AUTO_SUMMARY = "ls for a model linear in its params, as linear and quadratic are; lm otherwise"


def solver_choices(*, auto: bool) -> dict[str, str]:
    """``--solver``'s choices, each with its one-line summary: ``auto`` first where ``auto``, then the
    library's table of solvers (:data:`jaxcal.solvers.SOLVERS`), then ``gd`` unless the table has it."""
    from ..solvers import SOLVERS

    choices = {"auto": AUTO_SUMMARY} if auto else {}
    choices.update({name: summary for name, (_, summary) in SOLVERS.items()})
    choices.setdefault("gd", GD_SUMMARY)
    return choices


def add_solver_flag(parser: argparse.ArgumentParser, default: str, *, auto: bool = False) -> None:
    """``--solver``, its choices and their help from the library's table (see :func:`solver_choices`);
    ``auto`` is a choice where it is the default, or where ``auto`` says so."""
    choices = solver_choices(auto=auto or default == "auto")
    if default != "auto":  # the default first
        choices = {default: choices.pop(default), **choices}
    listed = "; ".join(f"{name} ({summary})" for name, summary in choices.items())
    parser.add_argument("--solver", default=default, metavar="NAME", choices=list(choices),
                        help=f"how to fit (default {default}): {listed}")


def _defaults(solver: bool) -> dict[str, str | None]:
    """The defaults of gradient descent's flags: ``None`` in a command with ``--solver`` (see
    :func:`add_model_flags`)."""
    from ._settings import DEFAULTS

    return {name: None if solver else value for name, value in DEFAULTS.items()}


def _listed(table: dict[str, str]) -> str:
    """A table's choices with their summaries, for a flag's help: ``a (what a is), b (what b is)``."""
    return ", ".join(f"{name} ({summary})" for name, summary in table.items())


def add_model_flags(parser: argparse.ArgumentParser, lr: bool = True, solver: bool = False) -> None:
    """The flags of what is fitted, shared by train, parity, sweep (``lr=False``: it has a range) and fleet;
    the choices of ``--model`` and ``--optimizer``, and their help, come from the library's tables
    (:data:`jaxcal.MODELS`, :data:`jaxcal.updates.OPTIMIZERS`).

    In a command with ``--solver`` (``solver=True``) the flags only gradient descent reads default to
    ``None``, which stands for their default (:data:`._settings.DEFAULTS`), so that a flag given to
    another solver, which reads none of them, is seen."""
    from ..core import MODELS
    from ..updates import OPTIMIZERS

    gd = " (--solver gd)" if solver else ""
    default = _defaults(solver)
    add = parser.add_argument
    add("--scale", default=default["scale"], metavar="S",
        help=f"multiply readings by S (default 0.1, the book's t_un; 1 = raw){gd}")
    add("--epochs", default=default["epochs"], metavar="N", help=f"number of epochs (default 5000){gd}")
    if lr:
        add("--lr", default=default["lr"], metavar="LR", help=f"learning rate (default 1e-2){gd}")
    starts = " or ".join(f"{' '.join(spec.param_names).upper()} ({name}, default "
                         f"{' '.join(f'{v:g}' for v in spec.init)})" for name, spec in MODELS.items() if spec.init)
    add("--init", nargs="+", default=None, metavar="P",
        help=f"initial params: {starts}"
             + (", or by name, e.g. b1=250,b2=5e-4 (an expression's params, which have no default) "
                "(--solver gd, lm)" if solver else ""))
    add("--optimizer", default=default["optimizer"], metavar="NAME",
        help=f"{_listed(OPTIMIZERS)} (default {_defaults(False)['optimizer']}){gd}")
    models = _listed({name: spec.formula or name for name, spec in MODELS.items()})
    add("--model", default="linear", metavar="NAME", help=f"{models} (default linear)"
        + (", or an expression in t_u, e.g. 'b1*(1-exp(-b2*t_u))' (read by jaxcal.expression, never run as "
           "Python; its params are its other names; with --solver gd they apply to the scaled readings, "
           "S * t_u)" if solver else ""))


def add_data_flag(parser: argparse.ArgumentParser, tables: bool = False) -> None:
    """``--data``: the readings of one sensor. ``tables``: read as :func:`add_table_flags` says
    (``--columns``, ``--separator``, ``--missing``; train)."""
    parser.add_argument(
        "--data", metavar="FILE", help="readings: CSV with header t_u,t_c, Parquet (.parquet) with those columns, "
        ".npy or .npz (default: the book's 11 readings)"
        + ("; a sensor column naming one sensor, and a sigma column (weights), are read too" if tables else ""))
    if tables:
        add_table_flags(parser, "readings")


#: ``--columns`` and ``--missing`` of a fleet (a sensor column required) and of one sensor's readings.
_TABLE_HELP = {
    "fleet": ("which columns hold what, role=name pairs: sensor, t_u, t_c and sigma (each reading's standard "
              "uncertainty: a weighted fit), e.g. sensor=sensor_id,t_u=raw,t_c=celsius; names match in any case, "
              "other columns are ignored",
              "a reading with one is dropped and counted in its sensor's dropped column"),
    "readings": ("which columns of --data hold what, role=name pairs: t_u and t_c, and optionally sensor (a table "
                 "of one sensor's readings; a table of several is a fleet: jaxcal fleet) and sigma (each "
                 "reading's standard uncertainty: a weighted fit, --solver ls or lm), e.g. t_u=raw,t_c=celsius; "
                 "names match in any case, other columns are ignored",
                 "a reading with one is dropped, and the output says how many (the JSON's dropped field, "
                 "absent where none is)"),
}


def add_table_flags(parser: argparse.ArgumentParser, table: str) -> None:
    """``--columns``, ``--separator`` and ``--missing``: how a table's file is read, for a ``table`` of
    ``"fleet"`` (``jaxcal fleet``) or ``"readings"`` (one sensor's: ``jaxcal train --data``)."""
    columns, dropped = _TABLE_HELP[table]
    add = parser.add_argument
    add("--columns", metavar="MAP", help=columns)
    add("--separator", metavar="CHAR", help="a CSV file's separator (default: found from its header: comma, "
        "semicolon or tab)")
    add("--missing", metavar="LIST", help="the cells that are missing values, comma-separated (default: empty and "
        f"NA); {dropped}")


def add_start_up_flags(parser: argparse.ArgumentParser, splits: str = "shard the readings over") -> None:
    add = parser.add_argument
    add("--x64", action="store_true", help="compute in float64 (set at start-up)")
    add("--devices", default=None, metavar="N", help=f"CPU devices to start and {splits} (start-up)")
    add("--no-cache", action="store_true",
        help="do not keep or load compiled programs in jaxcal's persistent compilation cache, in the "
             "user's cache directory (also JAXCAL_NO_CACHE=1; JAXCAL_CACHE_DIR chooses the folder)")


def add_device_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto", metavar="WHERE", type=_device,
                        help="auto (default: work too small for an accelerator runs on the CPU device), cpu or gpu")


def _device(text: str) -> str:
    from .._layout import DEVICES

    name = canonical(text, DEVICES)
    if name is None:
        close = closest(text, DEVICES)
        raise argparse.ArgumentTypeError(f"must be one of {', '.join(DEVICES)}, got {shown(text)}"
                                         + (f"; did you mean {close!r}?" if close else ""))
    return name


def add_train_flags(parser: argparse.ArgumentParser, splits: str = "shard the readings over",
                    solver: bool = False, tables: bool = False) -> None:
    """The flags of train and parity: the readings, the model, the schedule and start-up. ``solver``: the
    command has ``--solver`` (train), and the help says which flags only gradient descent reads.
    ``tables``: ``--data`` is read as :func:`add_table_flags` says (``--columns``, ``--separator``,
    ``--missing``). (sweep has its own: no schedule, a range of learning rates.)"""
    from ..evaluate import GRADIENTS

    gd = " (--solver gd)" if solver else ""
    default = _defaults(solver)
    add = parser.add_argument
    add_data_flag(parser, tables)
    add_model_flags(parser, solver=solver)
    add("--gradient", default=default["gradient"], metavar="HOW",
        help=f"{_listed(GRADIENTS)} (default {_defaults(False)['gradient']}){gd}")
    add("--fd-delta", default=default["fd_delta"], metavar="D",
        help=f"finite-difference half-width (default 0.1, the book's){gd}")
    add("--log-every", default=default["log_every"], metavar="K", help=f"log every K epochs (default 500){gd}")
    add("--log-epochs", default=None, metavar="LIST", help=f"also log these epochs, e.g. 1,2,3,10,11,99,100{gd}")
    add("--val-fraction", default=None, metavar="F", help=f"hold out int(F * n) readings for validation{gd}")
    add("--split-seed", default=default["split_seed"], metavar="S",
        help=f"seed of the random train/validation split (default 0){gd}")
    add("--book-split", action="store_true",
        help=f"use the book's recorded split (train 9,6,5,8,4,7,0,1,3; val 2,10){gd}")
    add("--exact", action="store_true", help=f"reproduce the book's float32 recording digit for digit (CPU){gd}")
    add_start_up_flags(parser, splits)
