"""Presentation: torch-style number formatting, the seed's log lines, and JSON-ready results.

Nothing here computes; it turns a :class:`~jaxcal.training.TrainResult` into what people and
programs read. The arrays are fetched from the device once, here, after the run.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterator, Sequence
from typing import Any

import numpy as np

from .loop import TrainResult

__all__ = ["format_values", "history_rows", "result_to_dict", "train_log_lines"]

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
