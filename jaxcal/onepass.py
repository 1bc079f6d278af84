"""Evaluate a function with its sibling sums done in one pass over the data.

``jax.grad`` of the book's loss ends in one sum per parameter: ``sum(ct * t_u)`` for ``w`` and
``sum(ct)`` for ``b`` (and ``sum(squared)`` when the loss is wanted too). Each is its own
``reduce_sum``, and XLA's CPU backend compiles each into its own kernel, which reads the readings
again and recomputes the residuals. :func:`one_pass` runs the same program, but evaluates sums
that are ready at the same time, over the same axes and shapes, as one variadic ``lax.reduce``:
one kernel that reads every reading once and produces every sum.

It changes no arithmetic and no gradient formula: the function is traced (``jax.make_jaxpr``),
dead code is dropped, and its equations are replayed in dependency order, with the ready sums of
each step merged. Only the grouping of the sums changes, and with it at most the order of their
additions (both are XLA reductions; float32 bounds for a sum of n terms cover either order).

Measured on the 2-core CPU of ``benchmarks/``: a tile of 1000 sensors x 11 readings runs an
epoch of ``jax.grad`` in ~1.6 us instead of ~3 us per core. XLA's CPU kernel for a variadic
reduction walks the reduced axes innermost, so it is fast when the reduced extent is small (the
readings of a sensor) and slow over millions of elements: :func:`one_pass` merges only sums whose
reduced extent is at most ``max_extent``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax
from jax.extend import core as jcore
from jax.extend.core import primitives

__all__ = ["SMALL_EXTENT", "one_pass"]

#: Up to how many readings a merged sum beats separate ones on the CPU (measured: value and
#: gradient of the book's loss per epoch, 11 readings 40 -> 31 ns, 100 readings 330 -> 68 ns,
#: 200 readings 550 -> 640 ns, 1000 readings 1.6 -> 2.2 us).
SMALL_EXTENT = 128

_REDUCE_SUM = primitives.reduce_sum_p


def one_pass(fun: Callable[..., Any], *, max_extent: int | None = None) -> Callable[..., Any]:
    """``fun`` with its independent ``reduce_sum`` s over the same axes merged into one reduction.

    Args:
      fun: a pure function of arrays (for example ``jax.grad(loss)``) returning a pytree.
      max_extent: merge only sums over at most this many elements each (``None``: no limit).

    Returns:
      A function with the signature and results of ``fun``. It is meant to be evaluated (inside
      ``jit``, ``vmap`` or a loop), not differentiated again.
    """

    def wrapped(*args: Any) -> Any:
        closed, out_shape = jax.make_jaxpr(fun, return_shape=True)(*args)
        outs = _replay(closed.jaxpr, closed.consts, jax.tree_util.tree_leaves(args), max_extent)
        return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(out_shape), outs)

    return wrapped


def _live_equations(jaxpr: jcore.Jaxpr) -> list[jcore.JaxprEqn]:
    """The equations that the outputs depend on (and any with effects), in their order."""
    live = {v for v in jaxpr.outvars if isinstance(v, jcore.Var)}
    kept = []
    for eqn in reversed(jaxpr.eqns):
        if eqn.effects or any(v in live for v in eqn.outvars):
            kept.append(eqn)
            live.update(v for v in eqn.invars if isinstance(v, jcore.Var))
    return kept[::-1]


def _replay(jaxpr: jcore.Jaxpr, consts: list[Any], args: list[Any], max_extent: int | None) -> list[Any]:
    env: dict[jcore.Var, Any] = dict(zip(jaxpr.constvars, consts, strict=True))
    env.update(zip(jaxpr.invars, args, strict=True))

    def read(v: Any) -> Any:
        return v.val if isinstance(v, jcore.Literal) else env[v]

    def ready(eqn: jcore.JaxprEqn) -> bool:
        return all(isinstance(v, jcore.Literal) or v in env for v in eqn.invars)

    def run(eqn: jcore.JaxprEqn) -> None:
        ans = eqn.primitive.bind(*map(read, eqn.invars), **eqn.primitive.get_bind_params(eqn.params))
        env.update(zip(eqn.outvars, ans if eqn.primitive.multiple_results else [ans], strict=True))

    def mergeable(eqn: jcore.JaxprEqn) -> bool:
        if eqn.primitive is not _REDUCE_SUM or eqn.params.get("out_sharding") is not None:
            return False
        shape = eqn.invars[0].aval.shape
        return max_extent is None or math.prod(shape[a] for a in eqn.params["axes"]) <= max_extent

    todo = _live_equations(jaxpr)
    while todo:
        # Everything but the mergeable sums runs as soon as it can; when nothing else can, the
        # sums that are ready are grouped and run, one reduction per group.
        waiting = []
        for eqn in todo:
            if not mergeable(eqn) and ready(eqn):
                run(eqn)
            else:
                waiting.append(eqn)
        if len(waiting) < len(todo):
            todo = waiting
            continue
        groups: dict[tuple[Any, ...], list[jcore.JaxprEqn]] = {}
        todo = []
        for eqn in waiting:
            if ready(eqn):  # only mergeable sums can be ready here
                aval = eqn.invars[0].aval
                groups.setdefault((tuple(eqn.params["axes"]), aval.shape, aval.dtype), []).append(eqn)
            else:
                todo.append(eqn)
        for (axes, _, dtype), eqns in groups.items():
            if len(eqns) == 1:
                run(eqns[0])
                continue
            operands = tuple(read(eqn.invars[0]) for eqn in eqns)
            zeros = tuple(jnp.zeros((), dtype) for _ in operands)
            sums = lax.reduce(operands, zeros, lambda a, b: tuple(x + y for x, y in zip(a, b, strict=True)), axes)
            env.update((eqn.outvars[0], s) for eqn, s in zip(eqns, sums, strict=True))
    return [read(v) for v in jaxpr.outvars]
