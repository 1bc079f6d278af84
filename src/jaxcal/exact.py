"""Bit-faithful float32 arithmetic: the operations of the torch build that recorded the book.

The recording summed every tensor strictly left to right in float32, rounded each product
before adding it, and divided where the code divides. XLA's CPU backend, left alone, does
three things differently (found by comparing its results element by element):

1. it sums in another order (vectorised partial sums), also in the sums that the backward
   pass hides (``dloss/dw`` is the transpose of broadcasting ``w``: a reduction);
2. it contracts ``a * b + c`` into one fused multiply-add (one rounding instead of two), even
   through ``select``, ``reduce_precision`` or ``optimization_barrier``;
3. it turns a division by a constant or by a broadcast scalar into a multiplication by the
   reciprocal (and vectorised division is not correctly rounded either).

:func:`make_ops` builds the counter-measures inside a traced function. They take a runtime
zero, an ``int32`` input that XLA cannot fold: rounding a value to float32 through
``bitcast -> or zero -> bitcast`` hides it from contraction, and a divisor passed that way
is not a constant. Sums run as a sequential ``lax.scan``; divisions run on scalars. The
differentiable operations carry ``jax.custom_vjp`` rules whose backward pass does what the
recorded build's autograd did (torch's ``mul``/``add`` backward: a left-to-right sum of
rounded products; ``mean`` backward: ``grad / n``; ``pow(x, 2)`` backward:
``grad * (2 * x)``), so the gradient still comes from ``jax.grad`` of the loss.

None of this is needed for correct results: it is how ``exact=True`` reproduces the recorded
digits, and why fast mode differs from them by a few ulps.

With these operations the module builds the same pieces as :mod:`jaxcal.evaluate` and
:mod:`jaxcal.updates` (:func:`autograd`, :func:`analytic`, :func:`finite_difference`,
:func:`plain`, :func:`sgd`); ``training_loop(..., exact=True)`` chooses them, once.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from . import book
from .core import MODELS as CORE_MODELS
from .core import ModelSpec
from .evaluate import Evaluation, sequential_epoch
from .updates import Update

__all__ = ["MODELS", "ExactOps", "analytic", "autograd", "evaluation", "finite_difference", "make_ops", "plain",
           "rounding_holds", "sgd", "update"]

_log = logging.getLogger(__name__)

Array = jax.Array


class ExactOps(NamedTuple):
    """Float32 operations with the recorded build's rounding, built by :func:`make_ops`."""

    rounded: Callable[[Array], Array]
    seq_sum: Callable[[Array], Array]
    scale: Callable[[Array, Array], Array]
    shift: Callable[[Array, Array], Array]
    square: Callable[[Array], Array]
    mean: Callable[[Array], Array]
    divide: Callable[[Array, Array], Array]
    fma: Callable[[Array, Array, Array], Array]


def make_ops(zero: Array) -> ExactOps:
    """Build the exact operations around ``zero``, a traced ``int32`` array equal to 0.

    Call it inside the jitted function, with ``zero`` one of that function's arguments.
    """

    @jax.custom_jvp
    def rounded(x: Array) -> Array:
        # The integer round trip is invisible to XLA's float rewrites and LLVM's contraction,
        # so x is materialised as a float32 value: one rounding, exactly where the code says.
        # An OR, not an XOR: rounded(rounded(x)) must stay opaque, and LLVM folds x ^ z ^ z
        # back to x (then contracts the bare product into the next addition), but x | z | z
        # only to x | z.
        bits = lax.bitcast_convert_type(x, jnp.int32) | zero
        return lax.bitcast_convert_type(bits, x.dtype)

    @rounded.defjvp
    def _rounded_jvp(primals: tuple[Array], tangents: tuple[Array]) -> tuple[Array, Array]:
        # Mathematically the identity: derivatives pass through unchanged.
        return rounded(primals[0]), tangents[0]

    def seq_sum(v: Array) -> Array:
        # Left to right, one rounding per addition, as the recorded build's sum kernel.
        def add(acc: Array, x: Array) -> tuple[Array, None]:
            return rounded(acc + x), None

        total, _ = lax.scan(add, jnp.zeros((), v.dtype), v, unroll=min(v.shape[0], 16))
        return total

    def divide(v: Array, d: Array) -> Array:
        # Scalar divisions by an opaque divisor: correctly rounded, never a reciprocal.
        d = rounded(jnp.asarray(d, v.dtype))
        if v.ndim == 0:
            return rounded(v / d)
        return lax.map(lambda x: rounded(x / d), v)

    @jax.custom_vjp
    def scale(w: Array, x: Array) -> Array:
        """``w * x`` for a scalar ``w``: torch's ``mul`` with a broadcast operand."""
        return rounded(w * x)

    def scale_fwd(w: Array, x: Array) -> tuple[Array, tuple[Array, Array]]:
        return scale(w, x), (w, x)

    def scale_bwd(res: tuple[Array, Array], ct: Array) -> tuple[Array, Array]:
        w, x = res
        return seq_sum(rounded(ct * x)), rounded(ct * w)

    scale.defvjp(scale_fwd, scale_bwd)

    @jax.custom_vjp
    def shift(v: Array, b: Array) -> Array:
        """``v + b`` for a scalar ``b``: its gradient sums the cotangent left to right."""
        return rounded(v + b)

    def shift_fwd(v: Array, b: Array) -> tuple[Array, None]:
        return shift(v, b), None

    def shift_bwd(_: None, ct: Array) -> tuple[Array, Array]:
        return ct, seq_sum(ct)

    shift.defvjp(shift_fwd, shift_bwd)

    @jax.custom_vjp
    def square(d: Array) -> Array:
        """``d ** 2``; backward ``grad * (2 * d)`` as torch's ``pow_backward``."""
        return rounded(d * d)

    def square_fwd(d: Array) -> tuple[Array, Array]:
        return square(d), d

    def square_bwd(d: Array, ct: Array) -> tuple[Array]:
        return (rounded(ct * rounded(2 * d)),)

    square.defvjp(square_fwd, square_bwd)

    @jax.custom_vjp
    def mean(v: Array) -> Array:
        """``v.mean()``: a left-to-right sum divided by ``n``; backward ``grad / n``."""
        return divide(seq_sum(v), jnp.asarray(v.shape[0], v.dtype))

    def mean_fwd(v: Array) -> tuple[Array, Array]:
        return mean(v), v

    def mean_bwd(v: Array, ct: Array) -> tuple[Array]:
        return (jnp.broadcast_to(divide(ct, jnp.asarray(v.shape[0], v.dtype)), v.shape),)

    mean.defvjp(mean_fwd, mean_bwd)

    def two_sum(x: Array, y: Array) -> tuple[Array, Array]:
        # Knuth: x + y = s + e exactly, s the rounded sum
        s = rounded(x + y)
        bb = rounded(s - x)
        return s, rounded(rounded(x - rounded(s - bb)) + rounded(y - bb))

    def fma(a: Array, b: Array, c: Array) -> Array:
        """``a * b + c`` rounded once (what ``torch.add_(g, alpha=-lr)`` does on AVX2 CPUs).

        Boldo and Melquiond's emulation (IEEE Trans. Computers 57(4), 2008): Dekker's exact
        product ``a * b = ph + pl``, Knuth's exact sum ``c + ph = s + e``, then ``s + v`` rounded
        to nearest where ``v`` is ``e + pl`` rounded *to odd*. Rounding ``v`` to nearest instead
        breaks ties wrongly when the exact value lies just beside a midpoint.
        """
        split = jnp.asarray(4097.0, a.dtype)  # 2**12 + 1 splits a 24-bit mantissa in halves

        def halves(x: Array) -> tuple[Array, Array]:
            # split * x overflows above ~8e34: split such x scaled down by 2**-30 (exactly), and
            # scale the halves back up
            big = jnp.abs(x) > jnp.asarray(2.0**100, x.dtype)
            down = jnp.where(big, jnp.asarray(2.0**-30, x.dtype), jnp.asarray(1.0, x.dtype))
            up = jnp.where(big, jnp.asarray(2.0**30, x.dtype), jnp.asarray(1.0, x.dtype))
            x = rounded(x * down)
            t = rounded(split * x)
            hi = rounded(t - rounded(t - x))
            return rounded(hi * up), rounded(rounded(x - hi) * up)

        a_hi, a_lo = halves(a)
        b_hi, b_lo = halves(b)
        ph = rounded(a * b)
        pl = rounded(rounded(a_hi * b_hi) - ph)
        pl = rounded(pl + rounded(a_hi * b_lo))
        pl = rounded(pl + rounded(a_lo * b_hi))
        pl = rounded(pl + rounded(a_lo * b_lo))
        s, e = two_sum(c, ph)
        v, err = two_sum(e, pl)
        # round to odd: an inexact sum with an even last bit moves one ulp toward the exact value
        bits = lax.bitcast_convert_type(v, jnp.int32)
        step = jnp.where(jnp.signbit(err) == jnp.signbit(v), 1, -1).astype(jnp.int32)
        bits = jnp.where((err != 0) & ((bits & 1) == 0), bits + step, bits)
        fused = rounded(s + lax.bitcast_convert_type(bits, v.dtype))
        # a product that overflows: the sum is that infinity (or NaN), not the NaN of inf - inf
        return jnp.where(jnp.isfinite(ph), fused, rounded(ph + c))

    return ExactOps(rounded, seq_sum, scale, shift, square, mean, divide, fma)


#: The models exact mode knows, written with :class:`ExactOps`: ``t_p = MODELS[name](ops, t_u, params)``;
#: each is the ``exact`` form of its :data:`jaxcal.MODELS` entry.
MODELS: dict[str, Callable[[ExactOps, Array, Array], Array]] = {
    name: spec.exact for name, spec in CORE_MODELS.items() if spec.exact is not None}


def _loss(ops: ExactOps, model: str | ModelSpec) -> Callable[[Array, tuple[Array, Array]], Array]:
    exact_model = MODELS[model] if isinstance(model, str) else model.form("exact", "exact mode")

    def loss(params: Array, readings: tuple[Array, Array]) -> Array:  # torch: ((t_p - t_c) ** 2).mean()
        t_u, t_c = readings
        return ops.mean(ops.square(exact_model(ops, t_u, params) - t_c))

    return loss


def autograd(ops: ExactOps, model: str | ModelSpec = "linear") -> Evaluation:
    """:func:`jaxcal.evaluate.autograd` in the recording's arithmetic: ``jax.value_and_grad`` of
    the loss, whose operations carry torch's backward rules."""
    loss = _loss(ops, model)
    return Evaluation(loss, jax.value_and_grad(loss))


def analytic(ops: ExactOps) -> Evaluation:
    """:func:`jaxcal.evaluate.analytic` (the book's ``grad_fn``) as torch evaluates it."""

    def loss_and_grad(params: Array, data: tuple[Array, Array]) -> tuple[Array, Array]:
        t_u, t_c = data
        t_p = MODELS["linear"](ops, t_u, params)
        dloss_dtp = ops.divide(ops.rounded(2 * (t_p - t_c)), jnp.asarray(t_p.shape[0], t_p.dtype))
        dloss_dw = ops.seq_sum(ops.rounded(dloss_dtp * t_u))
        dloss_db = ops.seq_sum(ops.rounded(dloss_dtp * 1.0))
        return ops.mean(ops.square(t_p - t_c)), jnp.stack([dloss_dw, dloss_db])

    return Evaluation(_loss(ops, "linear"), loss_and_grad)


def finite_difference(ops: ExactOps, delta: Array, model: str | ModelSpec = "linear") -> Evaluation:
    """:func:`jaxcal.evaluate.finite_difference` with a correctly rounded division."""
    loss = _loss(ops, model)

    def rate(params: Array, readings: tuple[Array, Array], j: int) -> Array:
        return book.rate_of_change(lambda p: loss(p, readings), params, j, delta, divide=ops.divide)

    return Evaluation(loss, None, rate=rate, epoch=sequential_epoch)


def evaluation(ops: ExactOps, gradient: str, model: str | ModelSpec, delta: Array) -> Evaluation:
    """The exact evaluation ``gradient`` names (see :data:`jaxcal.evaluate.GRADIENTS`)."""
    if gradient == "analytic":
        return analytic(ops)
    if gradient == "finite-difference":
        return finite_difference(ops, delta, model)
    return autograd(ops, model)


def plain(ops: ExactOps, learning_rate: Array) -> Update:
    """The seed's ``params -= learning_rate * params.grad``: two roundings, never fused."""
    def step(grad: Any, state: Any, params: Any) -> tuple[Any, Any]:
        return jax.tree.map(lambda p, g: ops.rounded(p - ops.rounded(learning_rate * g)), params, grad), state

    return Update(lambda params: (), step)


def sgd(ops: ExactOps, learning_rate: Array) -> Update:
    """torch's ``optim.SGD`` step, ``param.add_(grad, alpha=-lr)``: one fused rounding."""
    def step(grad: Any, state: Any, params: Any) -> tuple[Any, Any]:
        return jax.tree.map(lambda p, g: ops.fma(-learning_rate, g, p), params, grad), state

    return Update(lambda params: (), step)


def update(ops: ExactOps, optimizer: str | None, learning_rate: Array) -> Update:
    """The exact update of ``optimizer=None`` (plain) or ``"sgd"``; Adam's recording is not
    bit-reproducible."""
    return sgd(ops, learning_rate) if optimizer == "sgd" else plain(ops, learning_rate)


def _numpy_loss_and_grad(params: np.ndarray, t_u: np.ndarray, t_c: np.ndarray) -> np.ndarray:
    """The linear model's loss and autograd gradient, one NumPy float32 rounding per operation."""
    f32 = np.float32

    def total(values: np.ndarray) -> np.float32:
        acc = f32(0.0)
        for value in values:
            acc = f32(acc + value)
        return acc

    w, b = params
    diff = ((w * t_u) + b) - t_c
    loss = f32(total(diff * diff) / f32(len(t_u)))
    grad_tp = f32(f32(1.0) / f32(len(t_u))) * (f32(2.0) * diff)
    return np.asarray([loss, total(grad_tp * t_u), total(grad_tp)], f32)


@functools.cache
def rounding_holds() -> bool:
    """Whether this JAX and XLA keep exact mode's roundings where they are written.

    Exact mode's counter-measures are written against XLA's CPU code generation, which a new
    release may change. This compiles the book's loss and gradient with them, as the training
    loop does (a ``lax.scan``, here over 64 points near the seed's trajectory), plus the fused
    update on a case beside a midpoint, and compares with NumPy doing one rounding per
    operation. Checked once per process.
    """
    from . import data

    t_u, t_c = np.asarray(data.t_un, np.float32), np.asarray(data.t_c, np.float32)
    rng = np.random.default_rng(0)
    points = np.stack([rng.uniform(1.0, 5.5, 64), rng.uniform(-17.5, 0.0, 64)], axis=1).astype(np.float32)

    def program(points: jax.Array, zero: jax.Array) -> tuple[jax.Array, jax.Array]:
        ops = make_ops(zero)

        def loss(params: jax.Array) -> jax.Array:
            return ops.mean(ops.square(MODELS["linear"](ops, jnp.asarray(t_u), params) - jnp.asarray(t_c)))

        def one(carry: None, params: jax.Array) -> tuple[None, jax.Array]:
            value, grad = jax.value_and_grad(loss)(params)
            return carry, jnp.concatenate([value[None], grad])

        # a * b + c = (1 + 2**-23) + (2**-24 - 2**-60): just below a midpoint, so 1 + 2**-23
        a, b, c = (jnp.asarray(v, jnp.float32) for v in (2**-12 * (1 + 2**-18), 2**-12 * (1 - 2**-18), 1 + 2**-23))
        return lax.scan(one, None, points)[1], ops.fma(a, b, c)

    try:
        with jax.default_device(jax.devices("cpu")[0]):
            got, fused = jax.jit(program)(points, np.int32(0))
        want = np.stack([_numpy_loss_and_grad(p, t_u, t_c) for p in points])
        holds = bool(np.array_equal(np.asarray(got).view(np.uint32), want.view(np.uint32))
                     and np.float32(fused) == np.float32(1 + 2**-23))
    except Exception as error:  # an API this JAX lacks: treat as not holding
        _log.info("exact mode's rounding check failed to run (%s: %s)", type(error).__name__, error)
        holds = False
    if not holds:
        _log.info("exact mode: this XLA does not keep every rounding; evaluating operation by operation")
    return holds
