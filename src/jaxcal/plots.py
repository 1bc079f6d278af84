"""Figures (the ``plot`` extra). matplotlib is imported inside each function, and every figure is
rendered in memory, in the format its file's suffix names, and written atomically (see
:mod:`jaxcal._files`)."""

from __future__ import annotations

import io
import os
from typing import Any

import numpy as np

from ._checks import InvalidInput

__all__ = ["FORMATS", "figure_format", "plot_fit", "plot_fleet", "plot_sweep"]

#: A figure file's suffix (in any case) and the format matplotlib writes for it.
FORMATS = {".png": "png", ".pdf": "pdf", ".svg": "svg"}


def figure_format(path: str | os.PathLike[str], name: str = "path") -> str:
    """The format a figure file's suffix names, checked before any drawing.

    Args:
      path: the figure file to write.
      name: what errors call ``path`` (the caller's name for it).

    Returns:
      ``"png"``, ``"pdf"`` or ``"svg"``.

    Raises:
      ValueError: another suffix, or none.
    """
    suffix = os.path.splitext(os.fspath(path))[1]
    if suffix.lower() not in FORMATS:
        shown = (repr(suffix) if len(suffix) <= 40 else repr(suffix[:37] + "...")) if suffix else "none"
        raise InvalidInput(name, f"a figure file's suffix must be one of {', '.join(FORMATS)}, got {shown}")
    return FORMATS[suffix.lower()]


def _figure(rows: int, columns: int, width: float, height: float) -> tuple[Any, Any]:
    # A Figure of its own, not pyplot's: no backend is chosen for the caller's process, and no
    # figure is left registered anywhere once it is written.
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=110)
    return figure, figure.subplots(rows, columns)


def _save(figure: Any, path: str, name: str) -> None:
    from ._files import write_atomic

    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format=figure_format(path, name))
    write_atomic(path, buffer.getvalue(), name=name)


def plot_fit(path: str, t_u: Any, t_c: Any, result: Any, *, scale: float = 1.0, model: str = "linear",
             name: str = "path") -> None:
    """The book's figure, the readings and the fitted line, beside the loss curve (log scale), or
    beside the residuals for a calibration (a result without a history).

    Args:
      path: the figure to write: a .png, .pdf or .svg file.
      t_u, t_c: the readings as read (``t_u`` before ``scale``).
      result: a :class:`~jaxcal.loop.TrainResult` with a history, or a single fit's
        :class:`~jaxcal.calibrate.Calibrated`.
      scale: what the fit multiplied ``t_u`` by (the book's 0.1).
      model: the model's name.
      name: what errors call ``path`` (the caller's name for it).
    """
    from .core import MODELS

    figure_format(path, name)
    figure, (left, right) = _figure(1, 2, 10.0, 4.0)
    raw, t_c = np.asarray(t_u, np.float64), np.asarray(t_c, np.float64)
    params = [float(p) for p in np.asarray(result.params)]
    grid = np.linspace(raw.min(), raw.max(), 200)
    left.plot(raw, t_c, "o", color="#1f77b4", label="readings")
    left.plot(grid, MODELS[model].fn(scale * grid, *params), "-", color="#d62728",
              label=f"fit: {model}, params {', '.join(f'{p:.4g}' for p in params)}")
    left.set_xlabel("t_u (unknown units)")
    left.set_ylabel("t_c (Celsius)")
    left.set_title("Readings and the fitted calibration")
    left.legend(fontsize=8)
    if getattr(result, "history", None) is None:  # a calibration: its residuals, with their standard deviation
        residuals = t_c - MODELS[model].fn(scale * raw, *params)
        right.axhline(0.0, color="0.5", linewidth=0.8)
        right.plot(raw, residuals, "o", color="#1f77b4")
        sd = float(np.asarray(result.residual_sd))
        if np.isfinite(sd):
            for sign in (-1, 1):
                right.axhline(sign * sd, color="#d62728", linestyle="dashed", linewidth=0.8)
        right.set_xlabel("t_u (unknown units)")
        right.set_ylabel("t_c - t_p (Celsius)")
        right.set_title("Residuals (dashed: +- residual SD)")
        _save(figure, path, name)
        return
    epochs = np.asarray(result.history.epoch)
    losses = np.asarray(result.history.loss, np.float64)
    # the epochs that ran with a finite loss: a diverged run's curve up to its overflow
    reached = (epochs <= int(result.epochs_run)) & np.isfinite(losses) & (losses > 0)
    right.semilogy(epochs[reached], losses[reached], color="#2ca02c")
    right.set_xlabel("epoch")
    right.set_ylabel("loss (mean squared error)")
    title = "Loss" + (f" (diverged at epoch {int(result.epochs_run)})" if bool(result.diverged) else "")
    right.set_title(title)
    right.grid(True, which="both", alpha=0.3)
    _save(figure, path, name)


def plot_sweep(path: str, rates: np.ndarray, losses: np.ndarray, diverged: np.ndarray, *, name: str = "path") -> None:
    """Final loss against learning rate (log-log), diverged runs marked, as a .png, .pdf or .svg file."""
    figure_format(path, name)
    figure, axes = _figure(1, 1, 6.4, 4.2)
    ok = ~diverged & np.isfinite(losses)
    axes.loglog(rates[ok], losses[ok], "o-", color="#1f77b4", label="final loss")
    if (~ok).any():
        top = np.nanmax(losses[ok]) if ok.any() else 1.0
        axes.loglog(rates[~ok], np.full((~ok).sum(), top * 3), "x", color="#d62728", markersize=9,
                    label="diverged")
    axes.set_xlabel("learning rate")
    axes.set_ylabel("loss after training")
    axes.set_title("Learning-rate sweep")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8)
    _save(figure, path, name)


def plot_fleet(path: str, names: tuple[str, ...], params: np.ndarray, diverged: np.ndarray, *,
               name: str = "path") -> None:
    """Histograms of each fitted parameter across the fleet (diverged sensors left out).

    ``params`` is ``(sensors, n_params)`` (a fleet's ``TrainResult.params`` or ``Calibrated.params``),
    ``names`` its last axis's names; ``diverged`` marks the sensors to leave out (the command line
    leaves out those without params: status ``nonfinite`` or ``undetermined``); ``path`` is a .png,
    .pdf or .svg file."""
    figure_format(path, name)
    figure, axes = _figure(1, len(names), 4.0 * len(names), 3.6)
    for j, (axis, param) in enumerate(zip(np.atleast_1d(axes), names, strict=True)):
        values = np.asarray(params[:, j], np.float64)[~diverged]
        axis.hist(values[np.isfinite(values)], bins=50, color="#1f77b4")
        axis.set_xlabel(param)
        axis.set_ylabel("sensors")
        axis.set_title(f"{param} across {len(values)} sensors")
    _save(figure, path, name)
