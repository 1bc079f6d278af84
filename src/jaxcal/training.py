"""The seed's entry point: ``training_loop(n_epochs, learning_rate, params, t_u, t_c)``, and the
explicit single steps (plain SGD or any optax optimiser).

The seed's loop mutates ``params`` in place, zeroes ``params.grad`` and hides the update from
autograd with ``torch.no_grad()``. Here a step is a pure function from ``(params, state)`` to new
``(params, state)``; :func:`training_loop` checks its inputs, picks the pieces its options name
(what an epoch evaluates, how params are updated, how the readings are laid out) and runs them
in the one loop of :mod:`jaxcal.loop`, compiled into one XLA program.
"""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING, Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from . import _checks, _layout, evaluate, updates
from .arithmetic import EXACT, NATIVE, Native
from .core import Model, ModelSpec, loss_and_grad, objective, resolve_model
from .core import model as linear_model
from .evaluate import GRADIENTS
from .loop import History, TrainResult, fit
from .updates import OptimizerLike

if TYPE_CHECKING:
    import optax

__all__ = ["GRADIENTS", "History", "OptimizerLike", "TrainResult", "optax_step", "sgd_step", "training_loop"]

Array = jax.Array


def _sgd_step(
    params: Array, t_u: Array, t_c: Array, learning_rate: Array, *, model: Model = linear_model
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
    loss, grad = loss_and_grad(params, t_u, t_c, model=model)
    return params - learning_rate * grad, loss, grad


sgd_step = jax.jit(_sgd_step, static_argnames="model")


def _optax_step(
    optimizer: optax.GradientTransformation,
    params: Array,
    opt_state: optax.OptState,
    t_u: Array,
    t_c: Array,
    *,
    model: Model = linear_model,
) -> tuple[Array, optax.OptState, Array, Array]:
    """One epoch with an optax optimiser; the optimiser state goes in and comes out explicitly.

    Args:
      optimizer: any ``optax.GradientTransformation`` (static: hashed by identity); an
        ``optax.GradientTransformationExtraArgs`` such as ``optax.lbfgs()`` also gets the loss,
        the gradient and the objective on ``(t_u, t_c)`` (``value``, ``grad``, ``value_fn``).
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
    loss, grad = loss_and_grad(params, t_u, t_c, model=model)
    update = updates.from_optax(optimizer)
    if update.extra_args:  # optax's convention: the loss, its gradient and the objective itself
        new_params, opt_state = update.step(grad, opt_state, params, value=loss, grad=grad,
                                            value_fn=lambda p: objective(p, t_u, t_c, model=model))
    else:
        new_params, opt_state = update.step(grad, opt_state, params)
    return new_params, opt_state, loss, grad


optax_step = jax.jit(_optax_step, static_argnames=("optimizer", "model"))


class Plan(NamedTuple):
    """Everything static about one fit: what changes the compiled program (hashed, never traced)."""

    n_epochs: int
    log_every: int | None
    model: ModelSpec
    gradient: str
    optimizer: OptimizerLike
    exact: bool
    layout: _layout.Layout
    track: bool = True
    param_names: tuple[str, ...] = ()

    @property
    def arithmetic(self) -> Native:
        """The arithmetic the run computes in (:mod:`jaxcal.arithmetic`)."""
        return EXACT if self.exact else NATIVE


def pieces(plan: Plan, learning_rate: Array, delta: Array, zero: Array) -> tuple[evaluate.Evaluation, updates.Update]:
    """The evaluation and update ``plan`` names, built inside the program from its traced values by
    its arithmetic (``zero``: exact mode's runtime ``int32`` 0; see :mod:`jaxcal.exact`)."""
    return plan.arithmetic.pieces(plan, learning_rate, delta, zero)


def run(plan: Plan, learning_rate: Array | None, params: Any, t_u: Array, t_c: Array, val: Any = None,
        delta: Any = None, zero: Array | None = None) -> TrainResult:
    """One fit of ``plan`` (traceable; :func:`training_loop` and sweeps compile it)."""
    # Everything follows the readings' dtype (float32, or float64 when the caller enabled x64).
    dtype = jnp.result_type(t_u, t_c)
    t_u, t_c = t_u.astype(dtype), t_c.astype(dtype)
    params = params.astype(dtype)
    if learning_rate is not None:
        learning_rate = jnp.asarray(learning_rate).astype(dtype)
    if val is not None:
        val = tuple(v.astype(dtype) for v in val)
    evaluation, update = pieces(plan, learning_rate, delta, jnp.zeros((), jnp.int32) if zero is None else zero)
    scalars = plan.arithmetic.scalars(plan.optimizer)
    result = fit(evaluation, update, params, (t_u, t_c), n_epochs=plan.n_epochs, log_every=plan.log_every, val=val,
                 track=plan.track, scalars=scalars)
    return result._replace(param_names=plan.param_names)  # static: part of the program's output structure


@functools.partial(jax.jit, static_argnums=0)
def _compiled_loop(plan: Plan, learning_rate: Array | None, params: Array, t_u: Array, t_c: Array, val: Any,
                   delta: Array, zero: Array) -> TrainResult:
    return run(plan, learning_rate, params, t_u, t_c, val, delta, zero)


@functools.lru_cache(maxsize=256)
def _plan(n_epochs: int, log_every: int, spec: ModelSpec, gradient: str, optimizer: Any, exact: bool,
          learning_rate_given: bool, n_params: int, dtype: Any, placement: tuple[str, bool, int]) -> Plan:
    """The :class:`Plan` of a call's static choices, checked; remembered per distinct choice (the
    values, readings and params, are checked at every call)."""
    optimizer = updates.check(optimizer, learning_rate_given, np.zeros(n_params))
    check_modes(gradient, exact, optimizer, spec, dtype)
    # Large fits on one CPU device read their readings in blocks; named models only (they are
    # elementwise in t_u), jax.grad only, where the arithmetic allows another order of sums.
    arithmetic = EXACT if exact else NATIVE
    layout = _layout.layout_for(placement, elementwise=spec.name is not None and gradient == "autograd"
                                and arithmetic.blocked_layouts)
    return Plan(n_epochs, log_every, spec, gradient, optimizer, exact, layout, param_names=param_names(spec, n_params))


@functools.cache
def _on_cpu_only() -> bool:
    """Whether JAX runs on the CPU here (then placement never moves anything: a fast path)."""
    return jax.default_backend() == "cpu"


def check_modes(gradient: str, exact: bool, optimizer: OptimizerLike, model: ModelSpec, dtype: Any) -> None:
    """Refuse combinations of options that no run of the book defines, in one line each."""
    if gradient not in GRADIENTS:
        raise _checks.InvalidInput("gradient",
                                   f"unknown gradient {_checks.shown(gradient)}; choose one of {', '.join(GRADIENTS)}")
    if gradient != "autograd" and optimizer is not None:
        raise _checks.InvalidInput("gradient", f"the book's {gradient} runs use the plain update (optimizer=None)")
    if gradient == "analytic" and model.name != "linear":
        raise _checks.InvalidInput("gradient", "the book's analytic gradient is written for the linear model only")
    (EXACT if exact else NATIVE).check(gradient, optimizer, model, dtype)


def as_readings(t_u: Any, t_c: Any, prefix: str = "") -> tuple[Any, Any]:
    """Readings and targets as arrays (lists become the default float dtype), checked."""
    if not (hasattr(t_u, "dtype") and hasattr(t_c, "dtype")):
        default_float = jax.dtypes.canonicalize_dtype(np.float64)  # float32 unless x64 is on
        t_u, t_c = (x if hasattr(x, "dtype") else np.asarray(x, default_float) for x in (t_u, t_c))
    _checks.check_readings(t_u, t_c, prefix)
    return t_u, t_c


def check_narrowed(t_u: Any, t_c: Any, computed: Any, prefix: str = "") -> None:
    """Refuse readings that overflow ``computed``, the dtype the fit computes in: float64 readings
    fitted in float32 (x64 off) would hold infinities, and the fit diverge at its first epoch."""
    for name, values in ((prefix + "t_u", t_u), (prefix + "t_c", t_c)):
        _checks.check_fits(values, computed, name, "reading")


def check_params(params: Any, model: ModelSpec, dtype: Any, name: str = "params") -> Any:
    """Initial params as an array of ``dtype``, shape ``(n_params,)``, finite."""
    # Python numbers (the usual [1.0, 0.0]) are checked without arrays: a few microseconds count
    plain = isinstance(params, (list, tuple)) and all(type(v) in (float, int) for v in params)
    if plain and not all(math.isfinite(v) for v in params):
        _checks.check_finite_array(np.asarray(params, np.float64), name)  # refused: it says which and what
    params = jnp.asarray(params, dtype) if isinstance(params, jax.Array) else _checks.fit_dtype(params, dtype, name)
    if params.ndim != 1 or (model.param_names and params.shape[0] != model.n_params):
        want = f"{model.n_params} values" if model.param_names else "a 1-D vector"
        raise _checks.InvalidInput(name, f"must be {want}, got shape {tuple(params.shape)}")
    if not plain:
        _checks.check_finite_array(params, name)
    return params


def check_delta(delta: Any, dtype: Any) -> Any:
    if isinstance(delta, jax.core.Tracer):
        return delta
    if type(delta) is float and 0 < delta < math.inf:
        return _checks.fit_dtype(delta, dtype, "delta", nonzero=True)
    try:
        good = not isinstance(delta, (bool, str)) and np.ndim(delta) == 0 and 0 < float(delta) < math.inf
    except (TypeError, ValueError):  # not a number at all
        good = False
    if not good:
        raise _checks.InvalidInput("delta", f"must be a positive finite number, got {_checks.shown(delta)}")
    return _checks.fit_dtype(delta, dtype, "delta", nonzero=True)


def param_names(model: ModelSpec, n: int) -> tuple[str, ...]:
    return model.param_names or tuple(f"p{j}" for j in range(n))


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
    device: str | None = None,
) -> TrainResult:
    """Fit ``model`` to ``(t_u, t_c)`` by gradient descent: the seed's loop as one XLA program.

    Each epoch takes the loss and its gradient at the current params (``jax.value_and_grad``)
    and applies the update. If the loss or the updated params stop being finite the run stops
    there: later epochs leave the params unchanged and the result says ``diverged``.

    Args:
      n_epochs: number of epochs (static: a new value compiles a new program).
      learning_rate: step size, a positive scalar (traced: a new value reuses the program);
        ``None`` with a built optax transformation that holds its own.
      params: initial params, shape ``(n_params,)`` (traced). Cast to the readings' dtype.
      t_u: readings, shape ``(n,)``, float32 or float64; the computation follows this dtype.
      t_c: targets, shape ``(n,)``.
      optimizer: ``None`` for the seed's update ``params - learning_rate * grad``; ``"sgd"`` or
        ``"adam"``; an optax factory such as ``optax.adam``; or a built transformation such as
        ``optax.adam(0.1)`` (see :data:`jaxcal.updates.OptimizerLike`) (static). An
        ``optax.GradientTransformationExtraArgs`` gets optax's extra arguments each epoch: the
        loss, its gradient and the objective on ``(t_u, t_c)`` (``value``, ``grad``,
        ``value_fn``), so ``optax.lbfgs()`` and ``optax.contrib.reduce_on_plateau`` run.
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
      device: where the fit runs: ``"auto"`` (``None``: the CPU device for a fit too small to fill
        an accelerator, from the crossover measured on one; elsewhere where the readings are),
        ``"cpu"`` or ``"gpu"``.

    Returns:
      A :class:`~jaxcal.loop.TrainResult`: params ``(n_params,)``, the final loss, epochs run,
      divergence, the history and the params' names.

    Raises:
      ValueError, TypeError: on bad input, with a one-line message naming the argument.

    >>> from jaxcal import data
    >>> result = training_loop(5000, 1e-2, [1.0, 0.0], data.t_un, data.t_c)
    >>> [round(float(p), 3) for p in result.params], result.param_names
    ([5.367, -17.301], ('w', 'b'))
    >>> int(result.history.epoch[-1]), bool(result.diverged), round(float(result.loss), 4)
    (5000, False, 2.9276)
    """
    n_epochs = _checks.check_positive_int(n_epochs, "n_epochs", _checks.MAX_EPOCHS)
    log_every = _checks.check_positive_int(log_every, "log_every", _checks.MAX_EPOCHS)
    spec = resolve_model(model)
    t_u, t_c = as_readings(t_u, t_c)
    target = _layout.chosen_device(device, "fit", t_u.shape[0]) if device is not None or not _on_cpu_only() else None
    exact = bool(exact)
    arithmetic = EXACT if exact else NATIVE
    arithmetic.check_device(target)
    val = None
    if val_t_u is not None or val_t_c is not None:
        val = as_readings(val_t_u, val_t_c, "val_")
    # One dtype for params and learning rate whatever form they come in (Python float, NumPy,
    # jax.Array), so that a new value never changes the compiled program's signature.
    dtype = np.result_type(t_u.dtype, t_c.dtype)
    # the dtype the program computes in: float64 readings run in float32 unless x64 is on
    computed = dtype if dtype == np.float32 else jax.dtypes.canonicalize_dtype(dtype)
    if computed != dtype:
        check_narrowed(t_u, t_c, computed)
    if val is not None and np.result_type(val[0].dtype, val[1].dtype) != computed:
        check_narrowed(*val, computed, "val_")
    params = check_params(params, spec, computed)
    try:
        plan = _plan(n_epochs, log_every, spec, gradient, optimizer, exact, learning_rate is not None,
                     params.shape[0], dtype,
                     _layout.placement(t_u) if target is None else (target.platform, True, t_u.shape[0]))
    except TypeError as error:
        if isinstance(error, _checks.InputError):
            raise
        # the compiled program is keyed by these static choices: they must be hashable
        raise _checks.InvalidType("optimizer", "the optimizer and the model must be hashable (they choose the "
                                  f"compiled program): {error}") from None
    if type(learning_rate) is float and 0 < learning_rate < math.inf:  # the usual 1e-2, checked cheaply
        learning_rate = _checks.fit_dtype(learning_rate, computed, "learning_rate", nonzero=True)
    elif learning_rate is not None:
        _checks.check_learning_rate(learning_rate, "learning_rate")
        if isinstance(learning_rate, jax.Array):
            learning_rate = jnp.asarray(learning_rate, computed)
        else:
            learning_rate = _checks.fit_dtype(learning_rate, computed, "learning_rate", nonzero=True)
    if gradient == "finite-difference":
        delta = check_delta(delta, computed)
    elif not (type(delta) is float and 0 < delta < math.inf):  # unused: checked, never sent
        check_delta(delta, computed)
    # only what the program reads crosses to the device
    args = (learning_rate, params, t_u, t_c, val, delta if gradient == "finite-difference" else None,
            arithmetic.zero())
    return arithmetic.call(_compiled_loop, plan, arithmetic.place(args, target, t_u))
