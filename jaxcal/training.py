"""Training: the explicit step (plain SGD or any optax optimiser) and the compiled training loop.

The seed's loop mutates ``params`` in place, zeroes ``params.grad`` and hides the update from
autograd with ``torch.no_grad()``. Here a step is a pure function from ``(params, state)`` to new
``(params, state)``; :func:`training_loop` runs all epochs inside one XLA program (``lax.scan``)
and returns the values at the log points as stacked arrays, with no host round trip per epoch.
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Callable
from typing import Any, NamedTuple, Union

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

from . import _checks, book
from . import exact as exact_ops
from .core import MODELS, Model, loss_and_grad, loss_fn, objective
from .core import model as linear_model
from .onepass import SMALL_EXTENT, one_pass

__all__ = [
    "GRADIENTS",
    "History",
    "OptimizerLike",
    "TrainResult",
    "optax_step",
    "sgd_step",
    "training_loop",
]

Array = jax.Array

#: What ``optimizer=`` accepts: ``None`` (the seed's plain update ``params - lr * grad``), the
#: name ``"sgd"`` or ``"adam"``, or a factory ``learning_rate -> optax.GradientTransformation``
#: such as ``optax.adam``. A factory rather than a built transformation keeps the learning rate a
#: traced value, so changing it never recompiles.
OptimizerLike = Union[None, str, Callable[[Any], optax.GradientTransformation]]

_NAMED_OPTIMIZERS: dict[str, Callable[[Any], optax.GradientTransformation]] = {
    "sgd": optax.sgd,
    "adam": optax.adam,
}


class History(NamedTuple):
    """Values at the log points, stacked along the first axis (one row per log point).

    Attributes:
      epoch: the epoch number (1-based), shape ``(n_logs,)``.
      loss: the loss at the params entering that epoch, shape ``(n_logs,)``.
      grad: the gradient at the params entering that epoch, shape ``(n_logs, n_params)``.
      params: the params after that epoch's update, shape ``(n_logs, n_params)``.
      val_loss: the validation loss at the params entering that epoch, shape ``(n_logs,)``, or
        ``None`` when the run had no validation readings.
    """

    epoch: Array
    loss: Array
    grad: Array
    params: Array
    val_loss: Array | None = None


class TrainResult(NamedTuple):
    """What :func:`training_loop` returns.

    Attributes:
      params: the final params, shape ``(n_params,)``. After a divergence, the last finite
        params (those entering the epoch whose loss or update was not finite).
      history: the log points, see :class:`History`. Rows with ``epoch > epochs_run`` were never
        reached (the run diverged earlier) and hold no meaning.
      epochs_run: how many epochs ran, the diverging one included.
      diverged: whether the loss or the update became non-finite.
    """

    params: Array
    history: History
    epochs_run: Array
    diverged: Array


def _sgd_step(
    params: Array, t_u: Array, t_c: Array, learning_rate: Array, model: Model = linear_model
) -> tuple[Array, Array, Array]:
    """One epoch of the seed's plain gradient descent: ``params - learning_rate * grad``.

    Args:
      params: ``(w, b)``, shape ``(n_params,)``.
      t_u, t_c: readings and targets, shape ``(n,)``.
      learning_rate: a scalar (traced: a new value does not recompile).
      model: the model function (static).

    Returns:
      ``(new_params, loss, grad)`` with ``loss`` and ``grad`` taken at the incoming ``params``
      (what the seed prints).
    """
    loss, grad = loss_and_grad(params, t_u, t_c, model)
    return params - learning_rate * grad, loss, grad


sgd_step = jax.jit(_sgd_step, static_argnames="model")


def _optax_step(
    optimizer: optax.GradientTransformation,
    params: Array,
    opt_state: optax.OptState,
    t_u: Array,
    t_c: Array,
    model: Model = linear_model,
) -> tuple[Array, optax.OptState, Array, Array]:
    """One epoch with an optax optimiser; the optimiser state goes in and comes out explicitly.

    Args:
      optimizer: any ``optax.GradientTransformation`` (static: hashed by identity).
      params: shape ``(n_params,)``.
      opt_state: ``optimizer.init(params)`` or the state a previous step returned.
      t_u, t_c: readings and targets, shape ``(n,)``.
      model: the model function (static).

    Returns:
      ``(new_params, new_opt_state, loss, grad)``, ``loss`` and ``grad`` at the incoming params.

    >>> import jax.numpy as jnp, optax
    >>> from jaxcal import data
    >>> opt = optax.sgd(1e-2)
    >>> params = jnp.array([1.0, 0.0])
    >>> params, state, loss, grad = optax_step(opt, params, opt.init(params), data.t_un, data.t_c)
    >>> print(f"{float(loss):.4f}")
    80.3643
    """
    loss, grad = loss_and_grad(params, t_u, t_c, model)
    updates, opt_state = optimizer.update(grad, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss, grad


optax_step = jax.jit(_optax_step, static_argnames=("optimizer", "model"))


GRADIENTS = ("autograd", "analytic", "finite-difference")


class _Rule(NamedTuple):
    """An update rule as two pure functions, in optax's shape but with the learning rate traced."""

    init: Callable[[Array], Any]
    update: Callable[[Array, Any, Array], tuple[Array, Any]]


def _make_rule(optimizer: OptimizerLike, learning_rate: Array, ops: exact_ops.ExactOps | None) -> _Rule:
    if optimizer is None:
        if ops is not None:  # the seed's `params -= lr * params.grad`: two roundings, never fused
            return _Rule(lambda params: (), lambda grad, state, params: (
                ops.rounded(params - ops.rounded(learning_rate * grad)), state))
        return _Rule(lambda params: (), lambda grad, state, params: (params - learning_rate * grad, state))
    if ops is not None:  # optimizer == "sgd": torch's param.add_(grad, alpha=-lr), one fused rounding
        return _Rule(lambda params: (), lambda grad, state, params: (ops.fma(-learning_rate, grad, params), state))
    factory = _NAMED_OPTIMIZERS[optimizer] if isinstance(optimizer, str) else optimizer
    tx = factory(learning_rate)

    def update(grad: Array, state: Any, params: Array) -> tuple[Array, Any]:
        updates, state = tx.update(grad, state, params)
        return optax.apply_updates(params, updates), state

    return _Rule(tx.init, update)


class _Problem(NamedTuple):
    """How one epoch evaluates: the loss, and the loss with the gradient (or the whole step)."""

    loss: Callable[[Array, Array, Array], Array]
    loss_and_grad: Callable[[Array, Array, Array], tuple[Array, Array]]


#: The CPU's blocked layouts for large fits, as (fewest readings, rows per block, lanes per row),
#: the first that applies wins. Measured on one 2-core CPU, 100 epochs, as a fraction of a
#: streaming read of the same bytes: blocks of 20 x 8 readings (640 contiguous bytes: the kernel
#: reads two sequential streams) 1.06 at 1e7 readings, 1.47 at 1e6, 0.96 at 5e4 (10 x 1000: 0.64,
#: 0.82, 0.88); below ~50,000 readings, 10 rows of 1000 lanes cost less per epoch (1e4: 0.64 vs
#: 0.45); the plain 1-D sums reach 0.28-0.39 at every size.
BLOCK_LAYOUTS = ((50_000, 20, 8), (10_000, 10, 1000))


def _block_layout(n: int) -> tuple[int, int, int] | None:
    """``(blocks, rows, lanes)`` of the blocked layout for ``n`` readings, or ``None``."""
    for least, rows, lanes in BLOCK_LAYOUTS:
        if n >= least and n >= rows * lanes:
            return n // (rows * lanes), rows, lanes
    return None


def _blocked_loss(model: Model, n: int) -> Callable[[Array, Any, Any], Array]:
    """The book's loss on readings laid out as ``(blocks, rows, lanes)`` plus a 1-D tail.

    The same mean of squared residuals, summed in another order: over each block's rows, then
    over blocks, then over lanes. Its gradient's sums then come in the same three levels, and the
    first (the only one that reads the readings) runs as one pass over each block's few rows,
    which XLA's CPU backend unrolls and vectorises across the lanes (see :mod:`jaxcal.onepass`).
    """

    def loss(params: Array, t_u: Any, t_c: Any) -> Array:
        (x, x_tail), (y, y_tail) = t_u, t_c
        blocks, _, lanes = x.shape
        laid = [jnp.broadcast_to(jnp.broadcast_to(p, (lanes,)), (blocks, lanes))[:, None, :] for p in params]
        main = ((model(x, *laid) - y) ** 2).sum(axis=1).sum(axis=0).sum()
        tail = ((model(x_tail, *params) - y_tail) ** 2).sum()
        return (main + tail) / n

    return loss


def _to_blocks(values: Array, layout: tuple[int, int, int]) -> tuple[Array, Array]:
    main = math.prod(layout)
    return values[:main].reshape(layout), values[main:]


def _make_problem(model: Model, model_name: str | None, gradient: str, ops: exact_ops.ExactOps | None,
                  max_extent: int | None, blocked_n: int | None = None) -> _Problem:
    if ops is None:
        loss = functools.partial(objective, model=model)
    else:
        exact_model = exact_ops.MODELS[model_name or ""]

        def loss(params: Array, t_u: Array, t_c: Array) -> Array:
            return ops.mean(ops.square(exact_model(ops, t_u, params) - t_c))

    if gradient == "analytic":
        def analytic(params: Array, t_u: Array, t_c: Array) -> tuple[Array, Array]:
            w, b = params[0], params[1]
            if ops is None:
                t_p = model(t_u, w, b)
                return loss_fn(t_p, t_c), book.grad_fn(t_u, t_c, t_p, w, b)
            t_p = exact_ops.MODELS["linear"](ops, t_u, params)
            dloss_dtp = ops.divide(ops.rounded(2 * (t_p - t_c)), jnp.asarray(t_p.shape[0], t_p.dtype))
            dloss_dw = ops.seq_sum(ops.rounded(dloss_dtp * t_u))
            dloss_db = ops.seq_sum(ops.rounded(dloss_dtp * 1.0))
            return ops.mean(ops.square(t_p - t_c)), jnp.stack([dloss_dw, dloss_db])

        return _Problem(loss, analytic if ops is not None else one_pass(analytic, max_extent=max_extent))
    if ops is not None:
        return _Problem(loss, jax.value_and_grad(loss))
    # The loss and both gradient sums in one pass over the readings (see jaxcal.onepass); large
    # fits on a CPU take them over the blocked layout
    differentiated = loss if blocked_n is None else _blocked_loss(model, blocked_n)
    return _Problem(loss, one_pass(jax.value_and_grad(differentiated), max_extent=max_extent))


def _check_optimizer(optimizer: Any) -> OptimizerLike:
    if optimizer is None or callable(optimizer):
        return optimizer
    if isinstance(optimizer, str):
        if optimizer not in _NAMED_OPTIMIZERS:
            raise _checks.InvalidInput(
                f"optimizer: unknown optimizer {optimizer!r}; choose one of {', '.join(_NAMED_OPTIMIZERS)}"
            )
        return optimizer
    if isinstance(optimizer, optax.GradientTransformation):
        raise _checks.InvalidType(
            "optimizer: pass a factory taking the learning rate (e.g. optax.adam), not a built "
            "GradientTransformation, so that the learning rate stays a traced value"
        )
    raise _checks.InvalidType(f"optimizer: must be None, 'sgd', 'adam' or a callable, got {optimizer!r}")


def _resolve_model(model: str | Model) -> tuple[Model, str | None, int | None]:
    if isinstance(model, str):
        if model not in MODELS:
            raise _checks.InvalidInput(f"model: unknown model {model!r}; choose one of {', '.join(MODELS)}")
        spec = MODELS[model]
        return spec.fn, model, spec.n_params
    if callable(model):
        return model, None, None
    raise _checks.InvalidType(f"model: must be a model name or a function, got {model!r}")


def _check_modes(gradient: str, exact: bool, optimizer: OptimizerLike, model_name: str | None, dtype: Any) -> None:
    if gradient not in GRADIENTS:
        raise _checks.InvalidInput(f"gradient: unknown gradient {gradient!r}; choose one of {', '.join(GRADIENTS)}")
    if gradient != "autograd" and optimizer is not None:
        raise _checks.InvalidInput(f"gradient: the book's {gradient} runs use the plain update (optimizer=None)")
    if gradient == "analytic" and model_name != "linear":
        raise _checks.InvalidInput("gradient: the book's analytic gradient is written for the linear model only")
    if exact:
        if optimizer not in (None, "sgd"):
            raise _checks.InvalidInput(
                "exact: exact mode reproduces the plain and SGD updates; Adam's recording is not bit-reproducible"
            )
        if model_name is None:
            raise _checks.InvalidInput("exact: exact mode needs a model by name (linear or quadratic)")
        if dtype != np.float32:
            raise _checks.InvalidInput(f"exact: exact mode reproduces float32 recordings; got {dtype} readings")


def _as_readings(t_u: Any, t_c: Any, prefix: str = "") -> tuple[Any, Any]:
    default_float = jax.dtypes.canonicalize_dtype(np.float64)  # float32 unless x64 is on
    t_u, t_c = (x if hasattr(x, "dtype") else np.asarray(x, default_float) for x in (t_u, t_c))
    _checks.check_readings(t_u, t_c, prefix)
    return t_u, t_c


def training_loop(
    n_epochs: int,
    learning_rate: Any,
    params: Any,
    t_u: Any,
    t_c: Any,
    *,
    optimizer: OptimizerLike = None,
    log_every: int = 500,
    model: str | Model = "linear",
    gradient: str = "autograd",
    exact: bool = False,
    val_t_u: Any = None,
    val_t_c: Any = None,
    delta: float = 0.1,
) -> TrainResult:
    """Fit ``model`` to ``(t_u, t_c)`` by gradient descent: the seed's loop as one XLA program.

    Each epoch takes the loss and its gradient at the current params (``jax.value_and_grad``)
    and applies the update. If the loss or the updated params stop being finite the run stops
    there: later epochs leave the params unchanged and the result says ``diverged``.

    Args:
      n_epochs: number of epochs (static: a new value compiles a new program).
      learning_rate: step size, a positive scalar (traced: a new value reuses the program).
      params: initial params, shape ``(n_params,)`` (traced). Cast to the readings' dtype.
      t_u: readings, shape ``(n,)``, float32 or float64; the computation follows this dtype.
      t_c: targets, shape ``(n,)``.
      optimizer: ``None`` for the seed's update ``params - learning_rate * grad``; ``"sgd"`` or
        ``"adam"`` for optax's; or a factory ``learning_rate -> GradientTransformation``
        (static).
      log_every: record a history row every ``log_every`` epochs (static).
      model: ``"linear"``, ``"quadratic"`` or a function ``model(t_u, *params)`` (static).
      gradient: ``"autograd"`` (``jax.grad``), ``"analytic"`` (the book's ``grad_fn``) or
        ``"finite-difference"`` (the book's central differences, one parameter at a time).
      exact: reproduce the recorded float32 rounding of the book's torch build digit for digit
        (float32; runs on the CPU device; see :mod:`jaxcal.exact`). Slower; still ``jax.grad``
        and compiled.
      val_t_u, val_t_c: optional validation readings; the history then holds their loss at the
        params entering each logged epoch (the book's train/validation run).
      delta: the finite-difference half-width (traced; only for ``"finite-difference"``).

    Returns:
      A :class:`TrainResult`.

    Raises:
      ValueError, TypeError: on bad input, with a one-line message naming the argument.

    >>> from jaxcal import data
    >>> result = training_loop(5000, 1e-2, [1.0, 0.0], data.t_un, data.t_c)
    >>> [round(float(p), 3) for p in result.params]
    [5.367, -17.301]
    >>> int(result.history.epoch[-1]), bool(result.diverged)
    (5000, False)
    """
    n_epochs = _checks.check_positive_int(n_epochs, "n_epochs", _checks.MAX_EPOCHS)
    log_every = _checks.check_positive_int(log_every, "log_every", _checks.MAX_EPOCHS)
    _checks.check_learning_rate(learning_rate, "learning_rate")
    optimizer = _check_optimizer(optimizer)
    model_fn, model_name, n_params = _resolve_model(model)
    t_u, t_c = _as_readings(t_u, t_c)
    has_val = val_t_u is not None or val_t_c is not None
    if has_val:
        val_t_u, val_t_c = _as_readings(val_t_u, val_t_c, "val_")
    # One dtype for params and learning rate whatever form they come in (Python float, NumPy,
    # jax.Array), so that a new value never changes the compiled program's signature.
    dtype = np.result_type(t_u, t_c)
    _check_modes(gradient, bool(exact), optimizer, model_name, dtype)
    as_dtype = functools.partial(jnp.asarray, dtype=dtype)
    params = as_dtype(params) if isinstance(params, jax.Array) else _checks.fit_dtype(params, dtype, "params")
    if isinstance(learning_rate, jax.Array):
        learning_rate = as_dtype(learning_rate)
    else:
        learning_rate = _checks.fit_dtype(learning_rate, dtype, "learning_rate", nonzero=True)
    if params.ndim != 1 or (n_params is not None and params.shape[0] != n_params):
        want = f"{n_params} values" if n_params is not None else "a 1-D vector"
        raise _checks.InvalidInput(f"params: must be {want}, got shape {tuple(params.shape)}")
    _checks.check_finite_array(params, "params")
    val = (val_t_u, val_t_c) if has_val else None
    if not isinstance(delta, jax.core.Tracer):
        if not (isinstance(delta, numbers.Real) or np.ndim(delta) == 0) or not float(delta) > 0:
            raise _checks.InvalidInput(f"delta: must be a positive finite number, got {delta!r}")
        delta = _checks.fit_dtype(delta, dtype, "delta", nonzero=True)
    args = (learning_rate, params, t_u, t_c, val, delta, np.int32(0))
    placed = isinstance(t_u, jax.Array) and not isinstance(t_u, jax.core.Tracer)
    platform = next(iter(t_u.devices())).platform if placed else jax.default_backend()
    if exact and platform != "cpu":
        # The counter-measures of exact mode are written against XLA's CPU code generation: the
        # run is placed on the CPU whatever the default device (a GPU rounds differently).
        args = jax.device_put(args, jax.devices("cpu")[0])
        platform = "cpu"
    # The loss and gradient sums in one pass: always on an accelerator, up to SMALL_EXTENT
    # readings on a CPU, where XLA's kernel for it only beats separate sums on short axes.
    max_extent = SMALL_EXTENT if platform == "cpu" else None
    # Large fits on one CPU device read their readings in blocks (see _blocked_loss and
    # BLOCK_LAYOUTS). Named models only: they are elementwise in t_u.
    single = not placed or len(t_u.devices()) == 1
    layout = _block_layout(t_u.shape[0])
    blocked = (platform == "cpu" and single and layout is not None and model_name is not None
               and gradient == "autograd" and not exact)
    statics = (n_epochs, log_every, optimizer, model_fn, model_name, gradient, bool(exact), max_extent,
               layout if blocked else None)
    if exact and not exact_ops.rounding_holds():
        # This XLA rewrites some of exact mode's roundings (see jaxcal.exact.rounding_holds):
        # one operation at a time, nothing can be fused or reordered. Slower, still exact.
        with jax.disable_jit():
            return _compiled_loop(*statics, *args)
    return _compiled_loop(*statics, *args)


@functools.partial(jax.jit, static_argnums=(0, 1, 2, 3, 4, 5, 6, 7, 8))
def _compiled_loop(
    n_epochs: int,
    log_every: int,
    optimizer: OptimizerLike,
    model: Model,
    model_name: str | None,
    gradient: str,
    exact: bool,
    max_extent: int | None,
    layout: tuple[int, int, int] | None,
    learning_rate: Array,
    params: Array,
    t_u: Array,
    t_c: Array,
    val: tuple[Array, Array] | None,
    delta: Array,
    zero: Array,
) -> TrainResult:
    # Everything follows the readings' dtype (float32, or float64 when the caller enabled x64).
    dtype = jnp.result_type(t_u, t_c)
    t_u, t_c = t_u.astype(dtype), t_c.astype(dtype)
    params = params.astype(dtype)
    learning_rate = learning_rate.astype(dtype)
    ops = exact_ops.make_ops(zero) if exact else None
    rule = _make_rule(optimizer, learning_rate, ops)
    problem = _make_problem(model, model_name, gradient, ops, max_extent, None if layout is None else t_u.shape[0])
    # the readings as the gradient reads them: laid out once, outside the loop
    laid = (t_u, t_c) if layout is None else (_to_blocks(t_u, layout), _to_blocks(t_c, layout))

    def evaluate_and_update(params: Array, state: Any) -> tuple[Array, Array, Array, Any]:
        if gradient == "finite-difference":
            loss = problem.loss(params, t_u, t_c)
            if ops is None:
                new_params, grad = book.finite_difference_step(
                    lambda p: problem.loss(p, t_u, t_c), params, learning_rate, delta)
            else:
                new_params, grad = book.finite_difference_step(
                    lambda p: problem.loss(p, t_u, t_c), params, learning_rate, delta,
                    divide=ops.divide, update=lambda p, step: ops.rounded(p - step),
                    multiply=lambda a, b: ops.rounded(a * b))
            return loss, grad, new_params, state
        loss, grad = problem.loss_and_grad(params, *laid)
        new_params, new_state = rule.update(grad, state, params)
        return loss, grad, new_params, new_state

    def epoch(carry: tuple, _: None) -> tuple[tuple, tuple[Array, ...]]:
        params, state, epochs_run, diverged = carry
        loss, grad, new_params, new_state = evaluate_and_update(params, state)
        val_loss = problem.loss(params, val[0].astype(dtype), val[1].astype(dtype)) if val is not None else None
        running = jnp.logical_not(diverged)
        finite = jnp.isfinite(loss) & jnp.all(jnp.isfinite(new_params))
        # Keep the last finite params once the run has diverged: a result, never silent NaNs.
        accept = running & finite
        params = jnp.where(accept, new_params, params)
        state = jax.tree.map(lambda new, old: jnp.where(accept, new, old), new_state, state)
        epochs_run = epochs_run + running.astype(epochs_run.dtype)
        diverged = diverged | (running & ~finite)
        return (params, state, epochs_run, diverged), (loss, grad, new_params, val_loss)

    def unlogged(carry: tuple, length: int) -> tuple:
        if length == 0:
            return carry
        carry, _ = lax.scan(epoch, carry, None, length=length)
        return carry

    def log_block(carry: tuple, _: None) -> tuple[tuple, tuple[Array, ...]]:
        carry = unlogged(carry, log_every - 1)
        return epoch(carry, None)

    carry = (params, rule.init(params), jnp.zeros((), jnp.int32), jnp.zeros((), bool))
    n_logs, remainder = divmod(n_epochs, log_every)
    carry, (loss, grad, logged_params, val_loss) = lax.scan(log_block, carry, None, length=n_logs)
    carry = unlogged(carry, remainder)
    params, _, epochs_run, diverged = carry
    epochs = jnp.arange(1, n_logs + 1, dtype=jnp.int32) * log_every
    return TrainResult(params, History(epochs, loss, grad, logged_params, val_loss), epochs_run, diverged)
