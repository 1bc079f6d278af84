"""Figures (the ``plot`` extra). matplotlib is imported inside each function, and every figure is
rendered in memory and written atomically (see :mod:`jaxcal._files`)."""

from __future__ import annotations

import argparse
import io
from typing import Any

import numpy as np

__all__ = ["plot_fit", "plot_fleet", "plot_sweep"]


def _figure(*size: float) -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only: no screen is needed
    import matplotlib.pyplot as plt

    return plt, plt.subplots(*size[:2], figsize=size[2:], dpi=110)


def _save(plt: Any, figure: Any, path: str) -> None:
    from ._files import write_atomic

    buffer = io.BytesIO()
    try:
        figure.tight_layout()
        figure.savefig(buffer, format="png")
    finally:
        plt.close(figure)
    write_atomic(path, buffer.getvalue(), name="--plot")


def plot_fit(path: str, args: argparse.Namespace, settings: dict[str, Any], result: Any) -> None:
    """The book's figure, the readings and the fitted line, beside the loss curve (log scale)."""
    from .core import MODELS

    plt, (figure, (left, right)) = _figure(1, 2, 10.0, 4.0)
    scale = float(args.scale)
    raw, t_c = np.asarray(settings["raw_t_u"], np.float64), np.asarray(settings["t_c"], np.float64)
    params = [float(p) for p in np.asarray(result.params)]
    grid = np.linspace(raw.min(), raw.max(), 200)
    left.plot(raw, t_c, "o", color="#1f77b4", label="readings")
    left.plot(grid, MODELS[settings["model"]].fn(scale * grid, *params), "-", color="#d62728",
              label=f"fit: {settings['model']}, params {', '.join(f'{p:.4g}' for p in params)}")
    left.set_xlabel("t_u (unknown units)")
    left.set_ylabel("t_c (Celsius)")
    left.set_title("Readings and the fitted calibration")
    left.legend(fontsize=8)
    epochs = np.asarray(result.history.epoch)
    losses = np.asarray(result.history.loss, np.float64)
    reached = (epochs <= int(result.epochs_run)) & np.isfinite(losses) & (losses > 0)
    right.semilogy(epochs[reached], losses[reached], color="#2ca02c")
    right.set_xlabel("epoch")
    right.set_ylabel("loss (mean squared error)")
    title = "Loss" + (f" (diverged at epoch {int(result.epochs_run)})" if bool(result.diverged) else "")
    right.set_title(title)
    right.grid(True, which="both", alpha=0.3)
    _save(plt, figure, path)


def plot_sweep(path: str, rates: np.ndarray, losses: np.ndarray, diverged: np.ndarray) -> None:
    """Final loss against learning rate (log-log), diverged runs marked."""
    plt, (figure, axes) = _figure(1, 1, 6.4, 4.2)
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
    _save(plt, figure, path)


def plot_fleet(path: str, names: tuple[str, ...], params: dict[str, np.ndarray], diverged: np.ndarray) -> None:
    """Histograms of each fitted parameter across the fleet (diverged sensors left out)."""
    plt, (figure, axes) = _figure(1, len(names), 4.0 * len(names), 3.6)
    for axis, name in zip(np.atleast_1d(axes), names, strict=True):
        values = np.asarray(params[name], np.float64)[~diverged]
        axis.hist(values[np.isfinite(values)], bins=50, color="#1f77b4")
        axis.set_xlabel(name)
        axis.set_ylabel("sensors")
        axis.set_title(f"{name} across {len(values)} sensors")
    _save(plt, figure, path)
