"""The live side-by-side harness: one run in jaxcal and in torch, compared epoch by epoch.

``torch`` is imported inside :func:`torch_run` only (the ``parity`` extra). The torch side is
written the way the book writes each run (the seed's autograd loop, ``optim.SGD``/``Adam``, the
hand-written ``grad_fn``, the finite-difference step), so a difference means jaxcal differs
from the book, not from a re-implementation of it. Tolerances come from
:mod:`jaxcal.tolerances`; :func:`tolerance` says which bound applies to which run.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any, NamedTuple

import numpy as np

from . import tolerances

__all__ = ["Comparison", "Record", "RunConfig", "compare", "compare_records", "format_table", "jaxcal_run", "tolerance",
           "torch_run"]


class RunConfig(NamedTuple):
    """One training run, in plain Python and NumPy values, that both frameworks can execute."""

    n_epochs: int
    learning_rate: float
    params: tuple[float, ...]
    t_u: np.ndarray
    t_c: np.ndarray
    optimizer: str | None = None  # None (plain), "sgd", "adam"
    log_every: int = 500
    model: str = "linear"
    gradient: str = "autograd"
    val: tuple[np.ndarray, np.ndarray] | None = None
    delta: float = 0.1

    @property
    def dtype(self) -> np.dtype:
        return np.result_type(self.t_u, self.t_c)


class Record(NamedTuple):
    """What a run logged, as NumPy arrays (rows = logged epochs the run reached)."""

    epoch: np.ndarray
    loss: np.ndarray
    grad: np.ndarray
    params: np.ndarray
    val_loss: np.ndarray | None
    epochs_run: int
    diverged: bool


def jaxcal_run(config: RunConfig, exact: bool = False) -> Record:
    """Run ``config`` with :func:`jaxcal.training_loop` and fetch the history once."""
    from .training import training_loop

    val = config.val or (None, None)
    result = training_loop(
        config.n_epochs, config.learning_rate, np.asarray(config.params, config.dtype), config.t_u, config.t_c,
        optimizer=config.optimizer, log_every=config.log_every, model=config.model, gradient=config.gradient,
        exact=exact, val_t_u=val[0], val_t_c=val[1], delta=config.delta,
    )
    epochs_run = int(result.epochs_run)
    keep = np.asarray(result.history.epoch) <= epochs_run
    history = result.history
    return Record(
        np.asarray(history.epoch)[keep],
        np.asarray(history.loss)[keep],
        np.asarray(history.grad)[keep],
        np.asarray(history.params)[keep],
        None if history.val_loss is None else np.asarray(history.val_loss)[keep],
        epochs_run,
        bool(result.diverged),
    )


def torch_run(config: RunConfig) -> Record:
    """Run ``config`` in torch, eagerly, as the book writes that kind of run."""
    from .core import resolve_model

    model = resolve_model(config.model).form("torch", "the torch run")  # the book's model, on torch tensors
    import torch

    dtype = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}[config.dtype]
    t_u = torch.tensor(config.t_u, dtype=dtype)
    t_c = torch.tensor(config.t_c, dtype=dtype)
    val = None if config.val is None else tuple(torch.tensor(v, dtype=dtype) for v in config.val)
    lr = config.learning_rate


    def loss_fn(t_p: Any, t_c: Any) -> Any:
        squared_diffs = (t_p - t_c) ** 2
        return squared_diffs.mean()

    rows: list[tuple[int, float, list[float], list[float], float | None]] = []
    epochs_run, diverged = 0, False
    params = torch.tensor(config.params, dtype=dtype, requires_grad=config.gradient == "autograd")
    optimizer = None
    if config.optimizer == "sgd":
        optimizer = torch.optim.SGD([params], lr=lr)
    elif config.optimizer == "adam":
        optimizer = torch.optim.Adam([params], lr=lr)

    for epoch in range(1, config.n_epochs + 1):
        val_loss = None
        if val is not None:
            with torch.no_grad():
                val_loss = float(loss_fn(model(val[0], *params), val[1]))
        if config.gradient == "analytic":  # the book's manual loop with grad_fn
            w, b = params
            t_p = model(t_u, w, b)
            loss = loss_fn(t_p, t_c)
            dloss_dtp = 2 * (t_p - t_c) / t_p.size(0)
            grad = torch.stack([(dloss_dtp * t_u).sum(), (dloss_dtp * 1.0).sum()])
            params = params - lr * grad
        elif config.gradient == "finite-difference":  # the book's central differences
            with torch.no_grad():
                loss = loss_fn(model(t_u, *params), t_c)
                values = list(params)
                rates = []
                for j in range(len(values)):
                    plus = [v + config.delta if i == j else v for i, v in enumerate(values)]
                    minus = [v - config.delta if i == j else v for i, v in enumerate(values)]
                    rate = (loss_fn(model(t_u, *plus), t_c) - loss_fn(model(t_u, *minus), t_c)) / (2.0 * config.delta)
                    values[j] = values[j] - lr * rate
                    rates.append(rate)
                grad = torch.stack(rates)
                params = torch.stack(values)
        elif optimizer is not None:  # the book's optimizer loop
            t_p = model(t_u, *params)
            loss = loss_fn(t_p, t_c)
            optimizer.zero_grad()
            loss.backward()
            grad = params.grad.clone()
            optimizer.step()
        else:  # the seed's autograd loop
            if params.grad is not None:
                params.grad.zero_()
            t_p = model(t_u, *params)
            loss = loss_fn(t_p, t_c)
            loss.backward()
            with torch.no_grad():
                params -= lr * params.grad
            grad = params.grad.clone()
        epochs_run = epoch
        if epoch % config.log_every == 0:
            rows.append((epoch, float(loss.detach()), grad.tolist(), params.detach().tolist(), val_loss))
        if not (math.isfinite(float(loss.detach())) and bool(torch.isfinite(params.detach()).all())):
            diverged = True
            break

    def column(i: int, width: int | None = None) -> np.ndarray:
        values = [row[i] for row in rows]
        return np.asarray(values, np.float64).reshape((len(rows),) if width is None else (len(rows), width))

    width = len(config.params)
    return Record(
        np.asarray([row[0] for row in rows], np.int64), column(1), column(2, width), column(3, width),
        None if val is None else column(4), epochs_run, diverged,
    )


class Tolerance(NamedTuple):
    loss: np.ndarray
    grad: np.ndarray
    params: np.ndarray
    val_loss: np.ndarray | None
    source: str


def tolerance(config: RunConfig, epochs: np.ndarray) -> Tolerance:
    """The allowed |jaxcal - torch| per logged epoch, and a line saying where it comes from.

    * float32, plain or SGD update (autograd or analytic gradient): twice the propagated
      float32 error bound of :func:`jaxcal.tolerances.gd_trajectory_bounds` (each framework
      is within the bound of exact arithmetic).
    * finite differences (one step, as the book): the loss evaluation bound at ``params +- delta``,
      twice, divided by ``2 * delta``, and carried into the update.
    * float64: 1e-12 relative, the project's target (float64 rounding is ~1e-16, so this leaves
      four decades for its growth along the run).
    * Adam: see :func:`jaxcal.tolerances.adam_trajectory_bounds`.
    """
    index = np.asarray(epochs, np.int64) - 1
    n_params = len(config.params)
    is64 = config.dtype == np.float64
    if config.optimizer == "adam":
        bounds = tolerances.adam_trajectory_bounds(
            config.params, config.t_u, config.t_c, config.learning_rate, config.n_epochs, config.dtype,
            val=config.val, at_epochs=epochs)
        source = "twice the linearised float32 error bound of Adam (tolerances.py)"
    elif config.gradient == "finite-difference":
        bounds = tolerances.fd_step_bounds(config.params, config.t_u, config.t_c, config.learning_rate,
                                           config.delta, config.n_epochs, config.dtype)
        source = "finite differences: twice the loss evaluation bound / (2 delta), propagated (tolerances.py)"
    else:
        bounds = tolerances.gd_trajectory_bounds(config.params, config.t_u, config.t_c, config.learning_rate,
                                                 config.n_epochs, config.dtype, val=config.val)
        source = "twice the propagated float32 error bound of gradient descent (tolerances.py)"
    tol = derived = Tolerance(
        2 * bounds.loss_err[index], 2 * bounds.grad_err[index].reshape(-1, n_params),
        2 * bounds.params_err[index].reshape(-1, n_params),
        None if config.val is None else 2 * bounds.val_loss_err[index], source,
    )
    if is64:
        # The float64 target: 1e-12 relative to each quantity's magnitude: the loss itself, the
        # gradient's summed terms (a gradient near convergence is a tiny difference of them),
        # the params vector's largest entry (one entry may cross zero).
        rel = 1e-12
        ones = np.ones((len(index), n_params))
        tol = Tolerance(
            rel * np.abs(bounds.loss[index]),
            rel * bounds.grad_scale[index].reshape(-1, n_params).max(axis=1, keepdims=True) * ones,
            rel * np.abs(bounds.params[index]).reshape(-1, n_params).max(axis=1, keepdims=True) * ones,
            None if config.val is None else rel * np.abs(bounds.val_loss[index]),
            "float64: 1e-12 relative (to the loss; to the gradient's summed terms; to the params' largest entry)",
        )
        if config.gradient == "finite-difference":
            # A central difference of two losses ~1e7 apart by ~1e3 loses 4 digits to cancellation;
            # its derived bound (twice the float64 evaluation error over 2 delta) is then the limit.
            tol = Tolerance(*(np.maximum(a, b) for a, b in zip(tol[:3], derived[:3], strict=True)), None,
                            "float64: 1e-12 relative, or the derived bound where cancellation makes it larger")
    return tol


class Row(NamedTuple):
    epoch: int
    quantity: str
    jax: float
    torch: float
    allowed: float

    @property
    def abs_diff(self) -> float:
        return abs(self.jax - self.torch)

    @property
    def ok(self) -> bool:
        both_nonfinite = not math.isfinite(self.jax) and not math.isfinite(self.torch)
        return (both_nonfinite and str(self.jax) == str(self.torch)) or self.abs_diff <= self.allowed


class Comparison(NamedTuple):
    config: RunConfig
    jax: Record
    torch: Record
    rows: list[Row]
    source: str

    @property
    def stop_mismatch(self) -> str | None:
        """``None`` when both runs stopped at the same epoch in the same way and logged the same
        epochs; otherwise one line saying which run stopped where.

        The rows compare only the epochs both logs hold, so without this a run that diverged at
        epoch 120 would "match" one that ran to 5000 on the epochs up to 120.
        """
        j, t = self.jax, self.torch
        if (j.epochs_run, j.diverged) != (t.epochs_run, t.diverged):
            return f"the runs stopped at different epochs: jaxcal {_stop(j)}, torch {_stop(t)}"
        if not np.array_equal(j.epoch, t.epoch):
            mine, theirs = set(np.asarray(j.epoch).tolist()), set(np.asarray(t.epoch).tolist())
            first = min(mine ^ theirs)
            return (f"the runs logged different epochs: jaxcal {_log_span(j.epoch)}, torch {_log_span(t.epoch)}; "
                    f"epoch {first} is in {'jaxcal' if first in mine else 'torch'}'s log only")
        return None

    @property
    def ok(self) -> bool:
        return self.stop_mismatch is None and all(row.ok for row in self.rows)


def _stop(record: Record) -> str:
    return f"diverged at epoch {record.epochs_run}" if record.diverged else f"ran to epoch {record.epochs_run}"


def _log_span(epochs: np.ndarray) -> str:
    return f"{len(epochs)} log points up to epoch {int(np.max(epochs))}" if len(epochs) else "no log point"


def compare(config: RunConfig, exact: bool = False) -> Comparison:
    """Run ``config`` in both frameworks and compare every logged value."""
    return compare_records(config, jaxcal_run(config, exact=exact), torch_run(config))


def compare_records(config: RunConfig, mine: Record, theirs: Record) -> Comparison:
    """Compare two logs of ``config`` (jaxcal's and torch's) value by value on the epochs both
    hold; :attr:`Comparison.ok` also requires that both runs stopped alike and logged alike.

    Returns:
      A :class:`Comparison`.
    """
    epochs = np.intersect1d(mine.epoch, theirs.epoch)
    tol = tolerance(config, epochs) if len(epochs) else None
    rows: list[Row] = []
    for k, epoch in enumerate(epochs):
        i = int(np.nonzero(mine.epoch == epoch)[0][0])
        j = int(np.nonzero(theirs.epoch == epoch)[0][0])
        assert tol is not None
        rows.append(Row(int(epoch), "loss", float(mine.loss[i]), float(theirs.loss[j]), float(tol.loss[k])))
        if mine.val_loss is not None and theirs.val_loss is not None and tol.val_loss is not None:
            rows.append(Row(int(epoch), "val_loss", float(mine.val_loss[i]), float(theirs.val_loss[j]),
                            float(tol.val_loss[k])))
        for p in range(mine.grad.shape[1]):
            rows.append(Row(int(epoch), f"grad[{p}]", float(mine.grad[i, p]), float(theirs.grad[j, p]),
                            float(tol.grad[k, p])))
        for p in range(mine.params.shape[1]):
            rows.append(Row(int(epoch), f"params[{p}]", float(mine.params[i, p]), float(theirs.params[j, p]),
                            float(tol.params[k, p])))
    return Comparison(config, mine, theirs, rows, tol.source if tol else "no logged epoch")


def _ulps(row: Row, dtype: np.dtype) -> float:
    spacing = float(np.spacing(np.abs(np.asarray(row.torch, dtype))))
    return row.abs_diff / spacing if spacing > 0 and math.isfinite(row.abs_diff) else float("nan")


def format_table(comparison: Comparison) -> Iterator[str]:
    """The ``jaxcal parity`` table, one line per logged value."""
    dtype = comparison.config.dtype
    yield f"{'epoch':>6} {'value':<10} {'jaxcal':>16} {'torch':>16} {'abs diff':>10} {'rel diff':>10} " \
          f"{'ulps':>8} {'allowed':>10}  ok"
    for row in comparison.rows:
        rel = row.abs_diff / abs(row.torch) if row.torch not in (0.0,) and math.isfinite(row.torch) else float("nan")
        yield (f"{row.epoch:>6} {row.quantity:<10} {row.jax:>16.9g} {row.torch:>16.9g} {row.abs_diff:>10.3g} "
               f"{rel:>10.3g} {_ulps(row, dtype):>8.1f} {row.allowed:>10.3g}  {'yes' if row.ok else 'NO'}")
    j, t = comparison.jax, comparison.torch
    yield f"epochs run: jaxcal {j.epochs_run} (diverged: {j.diverged}), torch {t.epochs_run} (diverged: {t.diverged})"
    yield f"tolerance: {comparison.source}"
    worst = max(comparison.rows, key=lambda r: r.abs_diff / r.allowed if r.allowed > 0 else 0.0, default=None)
    if worst is not None and worst.allowed > 0:
        yield f"largest gap: {worst.quantity} at epoch {worst.epoch}, {worst.abs_diff:.3g} " \
              f"({worst.abs_diff / worst.allowed:.2%} of the allowed {worst.allowed:.3g})"
    mismatch = comparison.stop_mismatch
    if mismatch is not None:
        yield f"parity: FAILED ({mismatch})"
    else:
        yield "parity: OK" if comparison.ok else "parity: FAILED (beyond tolerance)"
