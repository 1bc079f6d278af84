"""The pure maths of the seed: the model, the loss, and the objective that ``jax.grad`` differentiates.

Nothing here holds state or touches the host: every function maps arrays to arrays and follows
the dtype of its inputs, so the same code runs in float32, in float64 (when the caller enabled
x64) and under ``jit``/``vmap``.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, NamedTuple

import jax

__all__ = [
    "MODELS",
    "ModelSpec",
    "loss_and_grad",
    "loss_fn",
    "model",
    "objective",
    "quadratic_model",
    "resolve_model",
]

Array = jax.Array
Model = Callable[..., Array]


def model(t_u: Array, w: Array, b: Array) -> Array:
    """The seed's linear model ``t_p = w * t_u + b``.

    Args:
      t_u: readings, shape ``(n,)``.
      w: weight, a scalar.
      b: bias, a scalar.

    Returns:
      Predictions ``t_p``, shape ``(n,)``.

    >>> import jax.numpy as jnp
    >>> model(jnp.array([1.0, 2.0]), 3.0, 0.5)
    Array([3.5, 6.5], dtype=float32)
    """
    return w * t_u + b


def quadratic_model(t_u: Array, w2: Array, w1: Array, b: Array) -> Array:
    """The chapter's exercise model ``t_p = w2 * t_u ** 2 + w1 * t_u + b``."""
    return w2 * t_u**2 + w1 * t_u + b


def loss_fn(t_p: Array, t_c: Array, *, axis: int | None = None) -> Array:
    """Mean squared error, as the seed writes it: ``((t_p - t_c) ** 2).mean()``.

    ``axis`` averages along one axis only: a fleet's readings laid out ``(readings, sensors)``
    give one loss per sensor with ``axis=0``.

    >>> import jax.numpy as jnp
    >>> loss_fn(jnp.array([1.0, 3.0]), jnp.array([0.0, 0.0]))
    Array(5., dtype=float32)
    """
    squared_diffs = (t_p - t_c) ** 2
    return squared_diffs.mean(axis)


def _exact_linear(ops: Any, t_u: Array, params: Array) -> Array:
    # torch: w * t_u + b, one rounding for the product and one for the sum
    return ops.shift(ops.scale(params[0], t_u), params[1])


def _exact_quadratic(ops: Any, t_u: Array, params: Array) -> Array:
    # torch: w2 * t_u ** 2 + w1 * t_u + b, evaluated left to right
    t_u2 = ops.rounded(t_u * t_u)
    return ops.shift(ops.rounded(ops.scale(params[0], t_u2) + ops.scale(params[1], t_u)), params[2])


class ModelSpec(NamedTuple):
    """A model with every form of it jaxcal uses: its function, its parameters' names, the book's
    start, whether it is linear in its params, its exact float32 form and its torch form.

    A form a model lacks is refused in one line where it is needed (exact mode, torch parity); a
    caller's function has only ``fn`` (and the names of its signature).

    Attributes:
      fn: ``fn(t_u, *params) -> t_p``.
      param_names: one name per parameter after ``t_u``, e.g. ``("w", "b")``.
      init: the default initial params (the book's ``(1, 0)`` for the linear model), or ``None``
        for a model the caller wrote.
      name: the name jaxcal knows it by (``"linear"``), or ``None`` for a caller's function.
      linear: ``t_p`` is linear in the params (its Jacobian, the design columns, does not depend on
        them): least squares solves it in one step, and it is :func:`jaxcal.calibrate`'s default.
      intercept: the model has a constant term (R² is defined for its fits).
      exact: ``exact(ops, t_u, params) -> t_p`` in the recording's float32 arithmetic
        (:mod:`jaxcal.exact`, whose ``ops`` round as torch does), or ``None``.
      torch: ``torch(t_u, *params) -> t_p`` on torch tensors, as the book writes the model (the
        parity harness runs it), or ``None``.
      formula: ``t_p`` as text, e.g. ``"w * t_u + b"`` (the command line's help, the report), or ``None``
        for a caller's function.
    """

    fn: Model
    param_names: tuple[str, ...]
    init: tuple[float, ...] | None = None
    name: str | None = None
    linear: bool = False
    intercept: bool = False
    exact: Callable[..., Array] | None = None
    torch: Callable[..., Any] | None = None
    formula: str | None = None

    @property
    def n_params(self) -> int:
        return len(self.param_names)

    def start(self, params: Any) -> Any:
        """``params`` if given, else the model's default start; a one-line ValueError where it has none
        (a caller's function or an expression: the start is the caller's to choose)."""
        if params is not None:
            return params
        if self.init is None:
            from ._checks import InvalidInput

            names = f" ({', '.join(self.param_names)})" if self.param_names else ""
            raise InvalidInput(f"params: this model has no default start; give one value per parameter{names}")
        return self.init

    def form(self, kind: str, purpose: str) -> Callable[..., Any]:
        """The ``"exact"`` or ``"torch"`` form, or a one-line ValueError naming the model and the purpose."""
        found = getattr(self, kind)
        if found is None:
            from ._checks import InvalidInput

            have = ", ".join(name for name, spec in MODELS.items() if getattr(spec, kind) is not None)
            what = {"exact": "exact float32 form", "torch": "torch form"}.get(kind, f"{kind} form")
            raise InvalidInput(f"model: {purpose} needs the model's {what}; "
                               f"{self.name or getattr(self.fn, '__name__', 'this function')!r} has none "
                               f"(models with one: {have})")
        return found


#: The models jaxcal knows by name (the CLI's ``--model``), each with every form of it. The torch form of
#: these two is their JAX function itself: plain arithmetic, the same on torch tensors.
MODELS: dict[str, ModelSpec] = {
    "linear": ModelSpec(model, ("w", "b"), (1.0, 0.0), "linear", linear=True, intercept=True,
                        exact=_exact_linear, torch=model, formula="w * t_u + b"),
    "quadratic": ModelSpec(quadratic_model, ("w2", "w1", "b"), (0.0, 1.0, 0.0), "quadratic", linear=True,
                           intercept=True, exact=_exact_quadratic, torch=quadratic_model,
                           formula="w2 * t_u**2 + w1 * t_u + b"),
}


@functools.cache
def _spec_of(fn: Model) -> ModelSpec:
    for spec in MODELS.values():
        if spec.fn is fn:
            return spec
    try:
        parameters = list(inspect.signature(fn).parameters.values())[1:]
    except (TypeError, ValueError):  # a builtin or a callable without a signature
        return ModelSpec(fn, ())
    if any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in parameters):
        return ModelSpec(fn, ())  # fn(t_u, *params): any number of params
    # the params are passed by position: keyword-only parameters (a partial's keywords among them) are not params
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return ModelSpec(fn, tuple(p.name for p in parameters if p.kind in positional))


def resolve_model(model: str | Model) -> ModelSpec:
    """The :class:`ModelSpec` of a model name (``"linear"``, ``"quadratic"``), an expression in ``t_u``
    (``"b1*(1-exp(-b2*t_u))"``, read by :func:`jaxcal.expression.parse_model`) or a function.

    A function's parameter names are those of its signature after ``t_u`` (none for
    ``fn(t_u, *params)``: its params are then checked as any 1-D vector).

    Raises:
      ValueError: for an unknown name or an expression jaxcal cannot read. TypeError: for something
        neither a string nor callable.
    """
    if isinstance(model, str):
        if model in MODELS:
            return MODELS[model]
        if model.strip().isidentifier() and model.strip() != "t_u":  # a misspelt name, not a constant model
            from ._checks import InvalidInput

            raise InvalidInput(f"model: unknown model {model!r}; choose one of {', '.join(MODELS)}, or write "
                               "the model as an expression in t_u, e.g. 'w * t_u + b'")
        from .expression import parse_model

        return parse_model(model)
    if callable(model):
        try:
            return _spec_of(model)
        except TypeError:  # an unhashable callable
            return ModelSpec(model, ())
    from ._checks import InvalidType

    raise InvalidType(f"model: must be a model name or a function, got {model!r}")


def objective(params: Array, t_u: Array, t_c: Array, *, model: Model = model) -> Array:
    """The loss as a pure function of the parameter vector: what ``jax.grad`` differentiates.

    Args:
      params: ``(w, b)`` for the linear model, shape ``(n_params,)``.
      t_u: readings, shape ``(n,)``.
      t_c: targets, shape ``(n,)``.
      model: the model function, ``model(t_u, *params)``.

    Returns:
      The scalar loss.
    """
    return loss_fn(model(t_u, *params), t_c)


def loss_and_grad(params: Array, t_u: Array, t_c: Array, *, model: Model = model) -> tuple[Array, Array]:
    """The loss and its gradient with respect to ``params``, by ``jax.value_and_grad``.

    This is the counterpart of the seed's ``loss = loss_fn(...); loss.backward(); params.grad``:
    no graph is recorded on the arrays and nothing accumulates, so there is nothing to zero.

    >>> import jax.numpy as jnp
    >>> from jaxcal import data
    >>> loss, grad = loss_and_grad(jnp.array([1.0, 0.0]), data.t_u, data.t_c)
    >>> print(f"{float(loss):.2f}", [round(float(g), 1) for g in grad])
    1763.88 [4517.3, 82.6]
    """
    return jax.value_and_grad(objective)(params, t_u, t_c, model=model)
