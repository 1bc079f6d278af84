"""Presentation: torch-style number formatting, the seed's log lines, and JSON-ready results.

Nothing here computes; it turns a :class:`~jaxcal.training.TrainResult`, or a calibration's
params with their uncertainty, into what people and programs read. The arrays are fetched from the
device once, here, after the run.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterator, Sequence
from typing import Any

import numpy as np

from .loop import TrainResult

__all__ = ["FIT_FIELDS", "calibration_lines", "calibration_to_dict", "fleet_columns", "fleet_json", "fleet_summary",
           "format_values", "history_rows", "result_to_dict", "status_counts", "sweep_rows",
           "train_log_lines"]

#: The fields of every fleet output after its params, their standard errors and covariance, in order:
#: ``fleet --out`` columns and ``--json`` keys.
FIT_FIELDS = ("residual_sd", "dof", "readings", "dropped", "rss", "r_squared", "status", "reason", "steps", "model",
              "solver", "scale")

_PRECISION = 4  # torch's default print precision


def format_values(values: Sequence[float]) -> str:
    """Format a 1-D vector the way torch prints a float tensor's contents: ``[a, b]``.

    The rules are torch's (``torch/_tensor_str.py``, default print options): scientific notation
    when the nonzero finite magnitudes span more than 1000x, exceed 1e8 or go below 1e-4; four
    decimals otherwise; every entry right-aligned to a common width.

    >>> format_values([4517.296875, 82.6])
    '[4517.2969,   82.6000]'
    >>> format_values([-9.7513e-05, 6.1291e-04])
    '[-9.7513e-05,  6.1291e-04]'
    """
    values = [float(v) for v in values]
    nonzero = [abs(v) for v in values if math.isfinite(v) and v != 0]
    int_mode = all(v == math.ceil(v) for v in values if math.isfinite(v) and v != 0)
    sci = False
    if nonzero:
        lo, hi = min(nonzero), max(nonzero)
        sci = hi / lo > 1000.0 or hi > 1.0e8 or (not int_mode and lo < 1.0e-4)

    def fmt(v: float) -> str:
        if sci:
            return f"{v:.{_PRECISION}e}"
        if int_mode:
            return f"{v:.0f}" + ("" if not math.isfinite(v) else ".")
        return f"{v:.{_PRECISION}f}"

    texts = [fmt(v) for v in values]
    width = max(len(fmt(v)) for v in values if math.isfinite(v) and v != 0) if nonzero else 1
    return "[" + ", ".join(t.rjust(width) for t in texts) + "]"


def history_rows(result: TrainResult, keep: Collection[int] | None = None) -> Iterator[dict[str, Any]]:
    """The log points the run reached (those in ``keep``, if given) as plain Python numbers.

    The arrays are fetched from the device once, here. Rows carry ``val_loss`` when the run had
    validation readings.
    """
    history = result.history
    epochs = np.asarray(history.epoch)
    losses = np.asarray(history.loss)
    grads = np.asarray(history.grad)
    params = np.asarray(history.params)
    val_losses = None if history.val_loss is None else np.asarray(history.val_loss)
    epochs_run = int(result.epochs_run)
    for i, epoch in enumerate(epochs.tolist()):
        if epoch > epochs_run:
            break
        if keep is not None and epoch not in keep:
            continue
        row = {
            "epoch": int(epoch),
            "loss": float(losses[i]),
            "grad": [float(g) for g in grads[i]],
            "params": [float(p) for p in params[i]],
        }
        if val_losses is not None:
            row["val_loss"] = float(val_losses[i])
        yield row


def _json_number(value: float) -> float | None:
    # JSON has no inf or NaN; a diverged epoch's loss is written as null.
    return value if math.isfinite(value) else None


def result_to_dict(result: TrainResult, keep: Collection[int] | None = None) -> dict[str, Any]:
    """The ``--json`` object: params, the final loss, epochs_run, diverged and the history, at full
    precision.

    Non-finite numbers (a diverged epoch's loss) are written as ``null``: JSON has no inf.
    """
    history = []
    for row in history_rows(result, keep):
        entry = {key: _json_number(value) if isinstance(value, float) else [_json_number(v) for v in value]
                 for key, value in row.items() if key != "epoch"}
        history.append({"epoch": row["epoch"], **entry})
    return {
        "params": [float(p) for p in np.asarray(result.params)],
        "loss": _json_number(float(result.loss)),
        "epochs_run": int(result.epochs_run),
        "diverged": bool(result.diverged),
        "history": history,
    }


def train_log_lines(result: TrainResult, keep: Collection[int] | None = None) -> Iterator[str]:
    """The seed's log: ``params.grad [..]`` then ``Epoch N, Loss X`` per log point, then params.

    With validation readings the epoch line is the book's split-run line,
    ``Epoch N, Training loss X, Validation loss Y`` with 4 decimals.
    """
    for row in history_rows(result, keep):
        yield f"params.grad {format_values(row['grad'])}"
        if "val_loss" in row:
            yield f"Epoch {row['epoch']}, Training loss {row['loss']:.4f}, Validation loss {row['val_loss']:.4f}"
        else:
            yield "Epoch %d, Loss %f" % (row["epoch"], row["loss"])  # noqa: UP031 - the seed's own format
    yield f"params {format_values(np.asarray(result.params).tolist())}"
    if bool(result.diverged):
        yield (
            f"diverged: the loss stopped being finite at epoch {int(result.epochs_run)}; "
            "scale the inputs (--scale) or lower the learning rate (--lr)"
        )


def _status_names(status: Any) -> np.ndarray:
    from .solvers import STATUS

    return np.asarray(STATUS)[np.asarray(status, np.int64)]


def fleet_columns(ids: np.ndarray, names: Sequence[str], fits: dict[str, np.ndarray], *, model: str, solver: str,
                  scale: float) -> dict[str, np.ndarray]:
    """A fleet's calibrations as the columns of ``fleet --out``, one row per sensor: a calibration table
    that stands on its own (``predict --cal`` reads it).

    Args:
      ids: the sensors' ids, ``(sensors,)`` text.
      names: the params' names (``("w", "b")``).
      fits: ``params`` and ``stderr`` ``(sensors, k)``, ``cov`` ``(sensors, k, k)``; ``residual_sd``, ``dof``,
        ``readings``, ``dropped``, ``rss``, ``r_squared``, ``status`` (codes of :data:`jaxcal.solvers.STATUS`),
        ``reason`` (text, empty for a fit) and ``steps`` ``(sensors,)``.
      model: the model's name or expression text, written on every row.
      solver: the solver's short name (``"ls"``, ``"lm"``, ``"gd"``), written on every row.
      scale: what the readings are multiplied by before the params apply (1 where they apply to the raw
        readings).

    Returns:
      ``sensor``, each param by name, ``stderr_<p>`` for each, ``cov_<p>_<q>`` for each pair ``p`` up to ``q``
      (in the params' order), then :data:`FIT_FIELDS` (status as its name).
    """
    sensors = len(ids)
    params, stderr, cov = (np.asarray(fits[key]) for key in ("params", "stderr", "cov"))
    pairs = [(i, j) for i in range(len(names)) for j in range(i, len(names))]
    fields = {"residual_sd": np.asarray(fits["residual_sd"]), "dof": np.asarray(fits["dof"], np.int64),
              "readings": np.asarray(fits["readings"], np.int64), "dropped": np.asarray(fits["dropped"], np.int64),
              "rss": np.asarray(fits["rss"]), "r_squared": np.asarray(fits["r_squared"]),
              "status": _status_names(fits["status"]), "reason": np.asarray(fits["reason"], str),
              "steps": np.asarray(fits["steps"], np.int64), "model": np.full(sensors, model),
              "solver": np.full(sensors, solver), "scale": np.full(sensors, float(scale))}
    return {"sensor": ids, **{n: params[:, j] for j, n in enumerate(names)},
            **{f"stderr_{n}": stderr[:, j] for j, n in enumerate(names)},
            **{f"cov_{names[i]}_{names[j]}": cov[:, i, j] for i, j in pairs},
            **{key: fields[key] for key in FIT_FIELDS}}


def _plain(value: Any) -> Any:
    """A NumPy scalar as JSON's value: a number that is not finite as ``None`` (JSON has no NaN)."""
    value = value.item() if isinstance(value, np.generic) else value
    return _json_number(value) if isinstance(value, float) else value


def fleet_json(columns: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """``fleet --json``'s sensors: one object per row of :func:`fleet_columns`, with the same keys and
    values as every ``--out`` format (float32 values as the doubles they are; a number that is not finite
    as ``null``)."""
    listed = {key: value.tolist() for key, value in columns.items()}
    return [{key: _plain(values[i]) for key, values in listed.items()} for i in range(len(listed["sensor"]))]


def fleet_summary(n: int, solver: str, status: Any, dropped: Any, out: str | None) -> str:
    """``fleet``'s summary line: how many sensors, each status's count, the readings dropped for a missing
    value (when any), and where the results went."""
    lost = int(np.sum(np.asarray(dropped, np.int64)))
    return (f"{n} sensors fitted (--solver {solver}): {status_counts(status)}"
            + (f"; {lost} missing reading{'' if lost == 1 else 's'} dropped" if lost else "")
            + (f"; results in {out}" if out else "; use --out FILE or --json for the results"))


def sweep_rows(rates: Any, params: Any, loss: Any, epochs_run: Any, diverged: Any) -> list[dict[str, Any]]:
    """``sweep --json``'s configs, one per learning rate: ``learning_rate`` (the rate asked for, not its
    float32 round trip), ``params``, ``loss`` (``None`` where not finite), ``epochs_run`` and ``diverged``."""
    params, loss, epochs_run, diverged = (np.asarray(a) for a in (params, loss, epochs_run, diverged))
    return [{"learning_rate": float(rates[i]), "params": [float(p) for p in params[i]],
             "loss": _json_number(float(loss[i])), "epochs_run": int(epochs_run[i]), "diverged": bool(diverged[i])}
            for i in range(len(rates))]


def status_counts(status: Any) -> str:
    """How many fits ended with each status, in :data:`jaxcal.solvers.STATUS`'s order:
    ``"9 converged, 2 undetermined"``."""
    from .solvers import STATUS

    counts = np.bincount(np.asarray(status, np.int64).ravel(), minlength=len(STATUS))
    return ", ".join(f"{int(c)} {name}" for name, c in zip(STATUS, counts, strict=False) if c)


def _shortest(value: Any) -> str:
    """A number as the shortest text that reads back to it in its own dtype (float32's 0.5367, not
    0.536700010299682)."""
    return str(np.asarray(value)[()])


def calibration_to_dict(fit: Any, solver: str, scale: float = 1.0) -> dict[str, Any]:
    """``train --solver ... --json``: one fit's params with their uncertainty, at full precision.

    Args:
      fit: a single fit's :class:`~jaxcal.calibrate.Calibrated` (or the same fields at gradient
        descent's params).
      solver: the solver's short name.
      scale: what the readings were multiplied by before the fit.

    Returns:
      ``param_names``, ``params``, ``stderr`` (aligned with them), ``cov``, then residual_sd, dof,
      rss, r_squared, status, steps, solver and scale; a number that is not finite as ``None``.
    """
    from .solvers import STATUS

    def numbers(values: Any) -> Any:
        return [numbers(v) for v in values] if np.ndim(values) else _json_number(float(values))

    return {"param_names": list(fit.param_names), "params": numbers(np.asarray(fit.params)),
            "stderr": numbers(np.asarray(fit.stderr)), "cov": numbers(np.asarray(fit.cov)),
            "residual_sd": numbers(np.asarray(fit.residual_sd)), "dof": int(fit.dof),
            "rss": numbers(np.asarray(fit.rss)), "r_squared": numbers(np.asarray(fit.r_squared)),
            "status": STATUS[int(fit.status)], "steps": int(fit.steps), "solver": solver, "scale": float(scale)}


def calibration_lines(fit: Any, summary: str) -> Iterator[str]:
    """What ``train --solver ls|lm`` prints: the solver, each param with its standard error, then
    the residual standard deviation, degrees of freedom, rss, R² and status.

    Args:
      fit: a single fit's :class:`~jaxcal.calibrate.Calibrated`.
      summary: the solver in words (``"ls: least squares in one step, ..."``).
    """
    from .solvers import STATUS

    params, stderr = np.asarray(fit.params), np.asarray(fit.stderr)
    rows = [("param", "value", "standard error")]
    rows += [(name, _shortest(params[j]), _shortest(stderr[j])) for j, name in enumerate(fit.param_names)]
    widths = [max(len(row[c]) for row in rows) for c in range(3)]
    yield f"solver {summary}"
    for row in rows:
        yield f"{row[0]:<{widths[0]}}  {row[1]:>{widths[1]}}  {row[2]:>{widths[2]}}".rstrip()
    steps = int(fit.steps)
    yield (f"residual SD {_shortest(np.asarray(fit.residual_sd))}, dof {int(fit.dof)}, "
           f"rss {_shortest(np.asarray(fit.rss))}, R² {_shortest(np.asarray(fit.r_squared))}; "
           f"status {STATUS[int(fit.status)]} after {steps} step{'' if steps == 1 else 's'}")
