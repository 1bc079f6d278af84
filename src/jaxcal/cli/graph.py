"""``jaxcal graph``: the jaxprs of the loss and of its gradient (autograd's graph, the JAX way)."""

from __future__ import annotations

import argparse

from . import _parser
from ._settings import choice

__all__ = ["add_parser", "run"]


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = _parser.subcommand(
        commands, "graph", help="print the jaxprs of the loss and of its gradient (autograd's graph, the JAX way)",
        description="Print jax.make_jaxpr of the loss and of jax.grad of the loss.",
        examples=["jaxcal graph --model quadratic"])
    parser.add_argument("--model", default="linear", help="linear (default) or quadratic")


def run(args: argparse.Namespace) -> int:
    from ..core import MODELS
    from ..graph import loss_jaxprs

    loss_text, grad_text = loss_jaxprs(choice(args.model, list(MODELS), "--model", "model"))
    print("# the loss: loss_fn(model(t_u, *params), t_c)")
    print(loss_text)
    print()
    print("# its gradient: jax.grad of the loss with respect to params")
    print(grad_text)
    return 0
