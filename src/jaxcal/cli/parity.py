"""``jaxcal parity``: one configuration in jaxcal and in torch, every logged epoch compared."""

from __future__ import annotations

import argparse

from .. import _checks
from . import _parser
from ._settings import parse_fit
from ._startup import start_up

__all__ = ["add_parser", "run"]

EXIT_PARITY_FAILED = 1


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = _parser.subcommand(
        commands, "parity", help="run one configuration in jaxcal and in torch and compare every logged epoch",
        description="Run the same training in jaxcal and torch (the 'parity' extra) and print a table per "
                    "logged value; exit 1 if any difference exceeds its derived float32/float64 tolerance.",
        examples=["jaxcal parity", "jaxcal parity --scale 1 --optimizer adam --lr 0.1 --epochs 2000"])
    _parser.add_train_flags(parser)


def run(args: argparse.Namespace) -> int:
    s = parse_fit(args)  # bad flags are reported first, torch or not
    try:
        import torch  # noqa: F401
    except ImportError:
        raise _checks.InvalidInput("torch is not installed; install the parity extra: pip install 'jaxcal[parity]'"
                                   ) from None
    from ..parity import RunConfig, compare, format_table

    log_every, keep = s.log_schedule()
    if s.gradient == "finite-difference" and s.n_epochs > 1:
        raise _checks.InvalidInput("--gradient",
                                   "parity of finite-difference runs is derived for one step (--epochs 1)")
    start_up(x64=s.x64, cache=not args.no_cache)
    config = RunConfig(
        s.n_epochs, s.learning_rate, tuple(s.params), s.t_u, s.t_c, optimizer=s.library_optimizer,
        log_every=log_every, model=s.model, gradient=s.gradient, val=s.val, delta=s.delta,
    )
    comparison = compare(config, exact=s.exact)
    if keep is not None:
        comparison = comparison._replace(rows=[row for row in comparison.rows if row.epoch in keep])
    for line in format_table(comparison):
        print(line)
    return 0 if comparison.ok else EXIT_PARITY_FAILED
