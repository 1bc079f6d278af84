"""How params are updated: the seed's plain rule, or any optax ``GradientTransformation``.

An :class:`Update` is optax's shape with the last step included: ``init(params) -> state`` and
``step(grad, state, params) -> (new_params, state)``, pure functions over any pytree of params.
What ``optimizer=`` accepts everywhere (:data:`OptimizerLike`) becomes one by :func:`resolve`.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple, Union

import jax
import jax.numpy as jnp

from . import _checks

if TYPE_CHECKING:
    import optax

__all__ = ["EXTRA_ARGS", "NAMED", "OPTIMIZERS", "OptimizerLike", "Update", "from_optax", "needs_extra_args", "plain",
           "resolve"]

Array = jax.Array

#: What ``optimizer=`` accepts:
#:
#: * ``None`` or ``"plain"``: the seed's plain update ``params - learning_rate * grad``;
#: * ``"sgd"`` or ``"adam"``: optax's, built with the run's ``learning_rate``;
#: * a factory ``learning_rate -> GradientTransformation`` such as ``optax.adam``;
#: * a built ``GradientTransformation`` such as ``optax.adam(0.1)``. Its learning rate is its
#:   own, unless it was built with ``optax.inject_hyperparams``: the run's ``learning_rate``
#:   then replaces the injected one, as a traced value.
#:
#: The learning rate stays a traced value in every form but a plain built transformation, so a
#: new value never recompiles.
OptimizerLike = Union[None, str, "optax.GradientTransformation", Callable[[Any], "optax.GradientTransformation"]]

#: The optimisers known by name, each with a one-line summary: what ``optimizer=`` takes as text, and
#: the command line's ``--optimizer`` choices and help. ``"plain"`` is the seed's update (``None``); the
#: others are the optax factories of that name, built with the run's learning rate.
OPTIMIZERS: dict[str, str] = {
    "plain": "the seed's update, params - lr * grad",
    "sgd": "optax.sgd",
    "adam": "optax.adam",
}

#: The named optimisers that are optax factories: their names in optax. (optax is imported where a run
#: uses it: a plain run starts without it.)
NAMED: dict[str, str] = {name: name for name in OPTIMIZERS if name != "plain"}

#: The extra arguments of optax's convention that a fit passes to an
#: ``optax.GradientTransformationExtraArgs``: the loss at the incoming params (``value``), its
#: gradient (``grad``) and the loss as a function of the params (``value_fn``, the objective on
#: the fit's readings), what ``optax.contrib.reduce_on_plateau`` and ``optax.lbfgs`` read.
EXTRA_ARGS = ("value", "grad", "value_fn")


def _is_built(optimizer: Any) -> bool:
    """Whether ``optimizer`` is a built optax ``GradientTransformation``."""
    if optimizer is None or isinstance(optimizer, str):
        return False
    import optax

    return isinstance(optimizer, optax.GradientTransformation)


class Update(NamedTuple):
    """An update rule as two pure functions over a pytree of params.

    Attributes:
      init: ``init(params) -> state``.
      step: ``step(grad, state, params) -> (new_params, new_state)``; with ``extra_args``,
        ``step(grad, state, params, value=..., grad=..., value_fn=...)`` (:data:`EXTRA_ARGS`).
      extra_args: whether ``step`` takes optax's extra arguments (the fit passes them).
    """

    init: Callable[[Any], Any]
    step: Callable[..., tuple[Any, Any]]
    extra_args: bool = False


def plain(learning_rate: Array) -> Update:
    """The seed's ``params -= learning_rate * params.grad``, without the mutation.

    >>> import jax.numpy as jnp
    >>> update = plain(0.5)
    >>> update.step(jnp.array([2.0, 4.0]), update.init(None), jnp.array([1.0, 1.0]))[0]
    Array([ 0., -1.], dtype=float32)
    """

    def step(grad: Any, state: Any, params: Any) -> tuple[Any, Any]:
        return jax.tree.map(lambda p, g: p - learning_rate * g, params, grad), state

    return Update(lambda params: (), step)


def from_optax(tx: optax.GradientTransformation, learning_rate: Array | None = None) -> Update:
    """Any optax transformation as an :class:`Update` (``optax.apply_updates`` applies its step).

    An ``optax.GradientTransformationExtraArgs`` (``optax.lbfgs``, a chain with
    ``optax.contrib.reduce_on_plateau``, also optax's own ``sgd`` and ``adam``, which ignore them)
    gets the extra arguments of :data:`EXTRA_ARGS` that its ``update`` accepts.

    Args:
      tx: a built transformation.
      learning_rate: replaces the learning rate of a transformation built with
        ``optax.inject_hyperparams`` (a traced value); ``None`` keeps the transformation's own.

    Returns:
      An :class:`Update`; ``extra_args`` says whether its step takes the extra arguments.

    Raises:
      TypeError: at trace time, one line naming the transformation and the argument its update
        needs that jaxcal cannot supply.
    """
    import optax

    accepted = _accepted(tx.update) if isinstance(tx, optax.GradientTransformationExtraArgs) else ()

    def init(params: Any) -> Any:
        state = tx.init(params)
        if learning_rate is not None:
            state = _with_learning_rate(state, learning_rate)
        return state

    def step(grad: Any, state: Any, params: Any, /, **extra: Any) -> tuple[Any, Any]:
        try:
            updates, state = tx.update(grad, state, params, **{k: v for k, v in extra.items() if k in accepted})
        except TypeError as error:
            refused = _refusal(error)
            if refused is None:
                raise
            raise refused from None
        return optax.apply_updates(params, updates), state

    return Update(init, step, bool(accepted))


def _accepted(update: Callable[..., Any]) -> tuple[str, ...]:
    """The extra arguments of :data:`EXTRA_ARGS` that ``update`` takes (all, when it takes
    ``**extra_args``, as optax's own transformations do)."""
    try:
        parameters = inspect.signature(update).parameters.values()
    except (TypeError, ValueError):  # no signature to read: optax's convention
        return EXTRA_ARGS
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return EXTRA_ARGS
    names = {p.name for p in parameters if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}
    return tuple(name for name in EXTRA_ARGS if name in names)


def _refusal(error: TypeError) -> _checks.InvalidType | None:
    """The one-line refusal of a transformation whose update needs an argument that jaxcal does
    not pass, from Python's TypeError for the call (``f() missing 1 required keyword-only
    argument: 'value'``); ``None`` for any other TypeError."""
    message = str(error)
    owner, marker, rest = message.partition("() missing ")
    if not marker or " required " not in rest or ": " not in rest or " " in owner:
        return None
    owner = owner.split(".<locals>")[0][:60]
    listed = rest.partition(": ")[2].replace(" and ", ", ").split(",")
    missing = [name.strip(" '") for name in listed if name.strip(" '")][:5]
    if all(name in EXTRA_ARGS for name in missing):
        return _checks.InvalidType(
            "optimizer", f"the update of {owner} needs {', '.join(missing)}: build it as an "
            f"optax.GradientTransformationExtraArgs, the only kind a fit passes {', '.join(EXTRA_ARGS)} to")
    return _checks.InvalidType(
        "optimizer", f"the update of {owner} needs {', '.join(n for n in missing if n not in EXTRA_ARGS)}, an extra "
        f"argument jaxcal cannot supply (a fit passes {', '.join(EXTRA_ARGS)})")


@functools.lru_cache(maxsize=64)
def needs_extra_args(optimizer: OptimizerLike, n_params: int, dtype: Any) -> bool:
    """Whether the update of ``optimizer``'s transformation requires optax's extra arguments: its
    ``update`` called without them, on abstract params, raises a ``TypeError``.

    A fleet's tiles update many sensors with one transformation: one that reads a loss or a line
    search along the objective must instead run per sensor, as the single fit does.
    """
    if optimizer is None or isinstance(optimizer, str):
        return False

    def probe(params: Array, learning_rate: Array) -> Any:
        tx = optimizer if _is_built(optimizer) else optimizer(learning_rate)
        return tx.update(params, tx.init(params), params)

    spec = jax.ShapeDtypeStruct((n_params,), dtype)
    try:
        with jax.numpy_dtype_promotion("standard"):
            jax.eval_shape(probe, spec, jax.ShapeDtypeStruct((), dtype))
    except TypeError:
        return True
    except Exception:  # any other failure is the fit's to report, where it happens
        return False
    return False


def _injected(state: Any) -> bool:
    hyperparams = getattr(state, "hyperparams", None)
    return isinstance(hyperparams, dict) and "learning_rate" in hyperparams


def _with_learning_rate(state: Any, learning_rate: Array) -> Any:
    old = state.hyperparams["learning_rate"]
    value = jnp.asarray(learning_rate, getattr(old, "dtype", None))
    return state._replace(hyperparams={**state.hyperparams, "learning_rate": value})


def resolve(optimizer: OptimizerLike, learning_rate: Array | None) -> Update:
    """The :class:`Update` of an :data:`OptimizerLike` (call it where the rate is traced)."""
    if optimizer is None:
        return plain(learning_rate)
    if _is_built(optimizer):
        return from_optax(optimizer, learning_rate)
    if isinstance(optimizer, str):
        import optax

        factory = getattr(optax, NAMED[optimizer])
    else:
        factory = optimizer
    return from_optax(factory(learning_rate))


def check(optimizer: Any, learning_rate_given: bool, params: Any = None) -> OptimizerLike:
    """``optimizer`` checked as an :data:`OptimizerLike`, with the learning rate the caller gave.

    Raises:
      ValueError, TypeError: one line naming ``optimizer`` or ``learning_rate``.
    """
    if _is_built(optimizer):
        shape = (2,) if params is None else tuple(jnp.shape(params))
        if learning_rate_given and not _built_injected(optimizer, shape):
            raise _checks.InvalidInput(
                "learning_rate: this optimizer holds its own learning rate (or a schedule); pass "
                "learning_rate=None, or build it with optax.inject_hyperparams and a number (e.g. "
                "optax.inject_hyperparams(optax.adam)(learning_rate=0.1)) so that the rate given here replaces it")
        return optimizer
    if not learning_rate_given:
        raise _checks.InvalidInput("learning_rate: required, unless optimizer is a built optax transformation")
    if optimizer is None or callable(optimizer):
        return optimizer
    if isinstance(optimizer, str):
        if optimizer not in OPTIMIZERS:
            raise _checks.InvalidInput(
                f"optimizer: unknown optimizer {_checks.shown(optimizer)}; choose one of {', '.join(OPTIMIZERS)}")
        return None if optimizer == "plain" else optimizer
    named = ", ".join(repr(name) for name in OPTIMIZERS)
    raise _checks.InvalidType(
        f"optimizer: must be None, {named}, an optax transformation or a factory, got {_checks.shown(optimizer)}")


@functools.lru_cache(maxsize=64)
def _built_injected(tx: optax.GradientTransformation, shape: tuple[int, ...]) -> bool:
    """Whether ``tx``'s state holds an injected learning rate that a step keeps: one step on
    zeros, the rate replaced by a probe value, must still hold it (a schedule would recompute it
    from the step count, and the rate given would be silently ignored)."""
    if not _injected(jax.eval_shape(tx.init, jax.ShapeDtypeStruct(shape, jnp.float32))):
        return False
    probe = 0.0123
    try:  # evaluated now, on the host, whatever the caller is tracing; promotion as optax expects
        with jax.ensure_compile_time_eval(), jax.numpy_dtype_promotion("standard"):
            params = jnp.zeros(shape, jnp.float32)
            state = _with_learning_rate(tx.init(params), probe)
            _, state = from_optax(tx).step(params, state, params, value=jnp.zeros((), jnp.float32), grad=params,
                                           value_fn=lambda p: jnp.vdot(p, p))
            return bool(jnp.asarray(state.hyperparams["learning_rate"]) == jnp.float32(probe))
    except Exception:  # a transformation whose step cannot run on zeros: not one we can drive
        return False
