"""Evaluate a function with its sibling sums done in one pass over the data.

``jax.grad`` of the book's loss ends in one sum per parameter: ``sum(ct * t_u)`` for ``w`` and
``sum(ct)`` for ``b`` (and ``sum(squared)`` when the loss is wanted too). Each is its own
``reduce_sum``, and XLA's CPU backend compiles each into its own kernel, which reads the readings
again and recomputes the residuals. :func:`one_pass` runs the same program, but evaluates sums
that are ready at the same time, over the same axes and shapes, as one variadic ``lax.reduce``:
one kernel that reads every reading once and produces every sum.

It changes no gradient formula: the function is traced (``jax.make_jaxpr``), dead code is
dropped, and its equations are replayed in dependency order, with the ready sums of each step
merged. Two things change, both only the order of floating-point operations: the grouping of the
sums (and with it the order of their additions), and factors that are constant along a sum's axes
(the ``2`` and ``1/n`` of the mean's derivative), which multiply the sum once instead of every
term: ``sum(c * t) = c * sum(t)``. That takes one multiplication per reading out of the kernel
(measured per CPU core, fleet tiles of 1000 sensors: 1.75 -> 1.61 us per epoch). Float32 bounds
for a sum of n terms cover either evaluation (see ``tests/test_onepass.py``).

Measured on the 2-core CPU of ``benchmarks/``: a tile of 1000 sensors x 11 readings runs an
epoch of ``jax.grad`` in ~1.6 us instead of ~3 us per core. XLA's CPU kernel for a variadic
reduction walks the reduced axes innermost, so it is fast when the reduced extent is small (the
readings of a sensor) and slow over millions of elements: :func:`one_pass` merges only sums whose
reduced extent is at most ``max_extent``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

try:  # the replay leans on JAX's jaxpr data structures: where they differ, evaluate plainly
    from jax.extend import core as jcore
    from jax.extend.core import primitives

    _REDUCE_SUM, _MUL, _BROADCAST = primitives.reduce_sum_p, primitives.mul_p, primitives.broadcast_in_dim_p
    _AVAILABLE = all(hasattr(jcore, name) for name in ("Jaxpr", "JaxprEqn", "Literal", "Var"))
except (ImportError, AttributeError):  # pragma: no cover - depends on the installed jax
    _AVAILABLE = False

__all__ = ["SMALL_EXTENT", "one_pass"]

_log = logging.getLogger(__name__)

#: Up to how many readings a merged sum beats separate ones on the CPU (measured: value and
#: gradient of the book's loss per epoch, 11 readings 40 -> 31 ns, 100 readings 330 -> 68 ns,
#: 200 readings 550 -> 640 ns, 1000 readings 1.6 -> 2.2 us).
SMALL_EXTENT = 128

def one_pass(fun: Callable[..., Any], *, max_extent: int | None = None) -> Callable[..., Any]:
    """``fun`` with its independent ``reduce_sum`` s over the same axes merged into one reduction.

    Args:
      fun: a pure function of arrays (for example ``jax.grad(loss)``) returning a pytree.
      max_extent: merge only sums over at most this many elements each (``None``: no limit).

    Returns:
      A function with the signature and results of ``fun``. It is meant to be evaluated (inside
      ``jit``, ``vmap`` or a loop), not differentiated again. Where the installed JAX's jaxprs
      are not what the replay expects (it reads their internals), or the replay's results do
      not have the shapes and dtypes of ``fun``'s, it evaluates ``fun`` as it is: slower, the
      same results.
    """

    def wrapped(*args: Any) -> Any:
        if not _AVAILABLE:
            return fun(*args)
        closed, out_shape = jax.make_jaxpr(fun, return_shape=True)(*args)
        try:
            outs = _replay(closed.jaxpr, closed.consts, jax.tree_util.tree_leaves(args), max_extent)
            wanted = jax.tree_util.tree_leaves(out_shape)
            if len(outs) != len(wanted) or any(jnp.shape(o) != w.shape or jnp.result_type(o) != w.dtype
                                               for o, w in zip(outs, wanted, strict=True)):
                raise TypeError("the replayed program's results differ in shape or dtype")
        except Exception as error:  # an internal this JAX does not have: the plain program instead
            _log.info("one_pass: evaluating %s without merged sums (%s: %s)", getattr(fun, "__name__", fun),
                      type(error).__name__, error)
            return fun(*args)
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
        params = eqn.primitive.get_bind_params(eqn.params)
        subfuns: Any = ()
        if isinstance(params, tuple):  # jax < 0.7: (subfuns, params)
            subfuns, params = params
        ans = eqn.primitive.bind(*subfuns, *map(read, eqn.invars), **params)
        env.update(zip(eqn.outvars, ans if eqn.primitive.multiple_results else [ans], strict=True))

    defs = {eqn.outvars[0]: eqn for eqn in jaxpr.eqns if eqn.primitive in (_MUL, _BROADCAST)}

    def constant_along(v: Any, axes: tuple[int, ...]) -> Any:
        """``v``'s value with ``axes`` dropped if ``v`` does not vary along them, else None."""
        if not v.aval.shape:
            return read(v)
        eqn = defs.get(v) if isinstance(v, jcore.Var) else None
        if eqn is None or eqn.primitive is not _BROADCAST or set(axes) & set(eqn.params["broadcast_dimensions"]):
            return None
        kept = [d for d in range(len(v.aval.shape)) if d not in axes]
        return lax.broadcast_in_dim(read(eqn.invars[0]), tuple(v.aval.shape[d] for d in kept),
                                    tuple(kept.index(d) for d in eqn.params["broadcast_dimensions"]))

    def factor(v: Any, axes: tuple[int, ...]) -> tuple[Any, list[Any]]:
        """``(core, scales)`` with ``v == core * scales[0] * ...``, each scale constant along
        ``axes``, so that ``sum(v) == sum(core) * scales[0] * ...``."""
        eqn = defs.get(v) if isinstance(v, jcore.Var) else None
        if eqn is None or eqn.primitive is not _MUL:
            return read(v), []
        a, b = eqn.invars
        scale_a, scale_b = constant_along(a, axes), constant_along(b, axes)
        if (scale_a is None) != (scale_b is None):
            core, scales = factor(a if scale_a is None else b, axes)
            return core, [*scales, scale_b if scale_a is None else scale_a]
        if scale_a is None:
            (core_a, scales_a), (core_b, scales_b) = factor(a, axes), factor(b, axes)
            if scales_a or scales_b:
                return lax.mul(core_a, core_b), scales_a + scales_b
        return read(v), []

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
            factored = [factor(eqn.invars[0], axes) for eqn in eqns]
            operands = tuple(core for core, _ in factored)
            if len(eqns) == 1:
                sums = [eqns[0].primitive.bind(operands[0], **eqns[0].params)]
            else:
                zeros = tuple(jnp.zeros((), dtype) for _ in operands)
                sums = lax.reduce(operands, zeros, lambda a, b: tuple(x + y for x, y in zip(a, b, strict=True)), axes)
            for eqn, total, (_, scales) in zip(eqns, sums, factored, strict=True):
                for scale in scales:
                    total = lax.mul(total, lax.convert_element_type(scale, dtype))
                env[eqn.outvars[0]] = total
    return [read(v) for v in jaxpr.outvars]
