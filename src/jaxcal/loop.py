"""The one training loop: an :class:`~jaxcal.evaluate.Evaluation` and an
:class:`~jaxcal.updates.Update` composed over epochs, as one compiled program.

Every run of jaxcal (the seed's, exact mode's, each of a sweep's configurations, the sensors of a
fleet) is this loop with other pieces. It returns a :class:`TrainResult`: params laid out
``(..., n_params)``, the final loss, the epochs run and whether the run diverged.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from . import _checks
from .evaluate import Evaluation, step_with_extras
from .updates import Update

__all__ = ["History", "TrainResult", "epochs", "fit"]

Array = jax.Array


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


@functools.partial(jax.tree_util.register_dataclass,
                   data_fields=["params", "loss", "epochs_run", "diverged", "history"], meta_fields=["param_names"])
@dataclasses.dataclass(frozen=True)
class TrainResult:
    """What every fit returns: a single fit, each configuration of a sweep, each sensor of a fleet.

    A pytree (``param_names`` is static), so that fits run under ``jit`` and ``vmap``.

    Attributes:
      params: the final params, shape ``(..., n_params)``: ``(n_params,)`` for one fit,
        ``(sensors, n_params)`` for a fleet, ``(learning rates, inits, n_params)`` for a sweep.
        After a divergence, the last finite params (those entering the epoch whose loss or
        update was not finite).
      loss: the loss at the final params, shape ``(...)``.
      epochs_run: how many epochs ran, the diverging one included, shape ``(...)``.
      diverged: whether the loss or the update became non-finite, shape ``(...)``.
      history: the log points (see :class:`History`), or ``None`` when nothing was logged. Rows
        with ``epoch > epochs_run`` were never reached and hold no meaning.
      param_names: the names of the params' last axis, e.g. ``("w", "b")``.
    """

    params: Any
    loss: Any
    epochs_run: Any
    diverged: Any
    history: History | None = None
    param_names: tuple[str, ...] = ()

    def _replace(self, **changes: Any) -> TrainResult:
        return dataclasses.replace(self, **changes)


def epochs(evaluation: Evaluation, update: Update, params: Any, state: Any, data: Any,
           n_epochs: int, readings: Any = None) -> tuple[Any, Any]:
    """``n_epochs`` of ``evaluation`` then ``update`` with no checks: ``(params, state)`` after them.

    ``data`` is ``evaluation.arrange(readings)``. The fastest loop (a fleet's tiles run it in
    chunks); :func:`fit` adds divergence tracking and the log. With ``readings``, an update that
    takes optax's extra arguments (``update.extra_args``) gets them, ``value_fn`` the objective on
    ``readings``; without, none (a fleet's tiles, which hold many sensors' readings, run only
    transformations that do without them: :func:`jaxcal.updates.needs_extra_args`).
    """

    def epoch(_: Any, carry: tuple[Any, Any]) -> tuple[Any, Any]:
        params, state = carry
        if update.extra_args and readings is not None:
            loss, grad = evaluation.loss_and_grad(params, data)
            return step_with_extras(evaluation, update, grad, state, params, loss, readings)
        grad = evaluation.loss_and_grad(params, data)[1]
        return update.step(grad, state, params)

    return lax.fori_loop(0, n_epochs, epoch, (params, state))


def fit(
    evaluation: Evaluation,
    update: Update,
    params: Any,
    readings: Any,
    *,
    n_epochs: int,
    log_every: int | None = None,
    val: Any = None,
    track: bool = True,
    scalars: bool = False,
) -> TrainResult:
    """Run ``n_epochs`` of ``evaluation`` then ``update``: a pure, traceable function.

    Call it inside ``jax.jit`` (``evaluation``, ``update``, ``n_epochs``, ``log_every`` and
    ``track`` static); :func:`jaxcal.training_loop` is this loop with the seed's pieces.

    Args:
      evaluation: what each epoch evaluates (:mod:`jaxcal.evaluate`, :mod:`jaxcal.exact`).
      update: how params are updated (:mod:`jaxcal.updates`).
      params: the initial params, ``(n_params,)``.
      readings: what ``evaluation`` reads: ``(t_u, t_c)``.
      n_epochs: number of epochs (static).
      log_every: record a :class:`History` row every ``log_every`` epochs; ``None``: none.
      val: validation readings ``(t_u, t_c)``; the history then holds their loss.
      track: stop at the first non-finite loss or update and keep the last finite params (the
        default). ``False`` runs every epoch without checks (:func:`epochs`, the fastest loop;
        fleets use it, then fit the few non-finite sensors again with tracking): ``diverged``
        then only says whether the final params or loss are non-finite; nothing is logged.
      scalars: carry a params vector as its scalars, a tuple (faster for small fits; the pieces
        must take a tuple of params as they take the vector: jaxcal's own and optax's elementwise
        ones do).

    Returns:
      A :class:`TrainResult` (``param_names`` empty: the caller knows the model).

    >>> import jax, jax.numpy as jnp
    >>> from jaxcal import data, evaluate, updates
    >>> run = jax.jit(lambda lr, p, x, y: fit(evaluate.autograd(), updates.plain(lr), p, (x, y), n_epochs=5000))
    >>> result = run(1e-2, jnp.array([1.0, 0.0]), data.t_un, data.t_c)
    >>> [round(float(p), 3) for p in result.params], round(float(result.loss), 4)
    ([5.367, -17.301], 2.9276)
    """
    data = evaluation.arrange(readings)  # laid out once, outside the epochs
    # A params vector is carried as its scalars: the gradient then comes without being assembled
    # into a vector, and the finiteness check is elementwise: fewer kernels per epoch (measured
    # on the seed's run: 141 -> 131 us for 5000 epochs). The same operations on the same values.
    scalars = scalars and isinstance(params, jax.Array) and params.ndim == 1
    if scalars:
        params = tuple(params[j] for j in range(params.shape[0]))
    stacked = jnp.stack if scalars else (lambda values: values)
    state = update.init(params)
    if not track:
        if log_every is not None or val is not None:
            raise _checks.InvalidInput("track", "track=False logs nothing; pass log_every=None and val=None")
        params, _ = epochs(evaluation, update, params, state, data, n_epochs, readings)
        loss = _final_loss(evaluation, stacked(params), readings, data)
        return TrainResult(stacked(params), loss, jnp.asarray(n_epochs, jnp.int32), ~_finite(loss, params))

    def epoch(carry: tuple, _: None) -> tuple[tuple, tuple[Array, ...]]:
        params, state, epochs_run, diverged = carry
        loss, grad, new_params, new_state = evaluation.epoch(evaluation, update, params, state, data, readings)
        val_loss = evaluation.loss(params, val) if val is not None else None
        running = jnp.logical_not(diverged)
        finite = _finite(loss, new_params)
        # Keep the last finite params once the run has diverged: a result, never silent NaNs.
        accept = running & finite
        params, state = jax.tree.map(lambda new, old: jnp.where(accept, new, old), (new_params, new_state),
                                     (params, state))
        epochs_run = epochs_run + running.astype(epochs_run.dtype)
        diverged = diverged | (running & ~finite)
        return (params, state, epochs_run, diverged), (loss, stacked(grad), stacked(new_params), val_loss)

    def unlogged(carry: tuple, length: int) -> tuple:
        if length == 0:
            return carry
        carry, _ = lax.scan(epoch, carry, None, length=length)
        return carry

    carry = (params, state, jnp.zeros((), jnp.int32), jnp.zeros((), bool))
    every = n_epochs if log_every is None else log_every

    def log_block(carry: tuple, _: None) -> tuple[tuple, tuple[Array, ...]]:
        return epoch(unlogged(carry, every - 1), None)

    n_logs, remainder = divmod(n_epochs, every)
    carry, (loss, grad, logged_params, val_loss) = lax.scan(log_block, carry, None, length=n_logs)
    params, _, epochs_run, diverged = unlogged(carry, remainder)
    params = stacked(params)
    history = None
    if log_every is not None:
        logged = jnp.arange(1, n_logs + 1, dtype=jnp.int32) * log_every
        history = History(logged, loss, grad, logged_params, val_loss)
    return TrainResult(params, _final_loss(evaluation, params, readings, data), epochs_run, diverged, history)


def _finite(loss: Array, params: Any) -> Array:
    finite = jnp.isfinite(loss)
    for leaf in jax.tree.leaves(params):
        finite = finite & (jnp.isfinite(leaf) if jnp.ndim(leaf) == 0 else jnp.all(jnp.isfinite(leaf)))
    return finite


def _final_loss(evaluation: Evaluation, params: Any, readings: Any, data: Any) -> Array:
    # From the epochs' own evaluation where there is one, over the readings as they are laid out
    # (XLA drops the gradient's sums, never used).
    if evaluation.loss_and_grad is None:
        return evaluation.loss(params, readings)
    return evaluation.loss_and_grad(params, data)[0]
