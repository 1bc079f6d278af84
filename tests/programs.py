"""What a traced program holds: the sums in it (for tests that check a program's shape)."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax


class Sum(NamedTuple):
    primitive: str  # "reduce_sum", or "reduce" for a merged (variadic) one
    outputs: int
    shape: tuple[int, ...]  # of its (first) operand


def sums_in(fun: Any, *args: Any) -> list[Sum]:
    """Every reduction in ``fun``'s jaxpr for ``args``, nested jaxprs (loops, calls) included."""
    found = []

    def walk(jaxpr: Any) -> None:
        for eqn in jaxpr.eqns:
            if eqn.primitive.name in ("reduce_sum", "reduce"):
                found.append(Sum(eqn.primitive.name, len(eqn.outvars), tuple(eqn.invars[0].aval.shape)))
            for sub in jax.extend.core.jaxprs_in_params(eqn.params):
                walk(sub)

    walk(jax.make_jaxpr(fun)(*args).jaxpr)
    return found
