"""The book's training loops re-implemented in plain NumPy float32, one rounding per operation.

An independent model of the arithmetic of the torch build that recorded chapter 5, to check
``exact=True`` against at every epoch. It shares no code with ``jaxcal.exact``: every operation is
a NumPy float32 operation (correctly rounded, never fused) applied in the order the book's code
evaluates it:

- forward: ``w * t_u + b`` (a product, then a sum), ``- t_c``, ``** 2``, and ``mean`` as a
  strictly left-to-right float32 sum divided by ``n``;
- backward, as that build's autograd ran it: ``mean`` gives every element ``1 / n``; ``pow(d, 2)``
  gives ``grad * (2 * d)``; ``add`` passes the gradient on and sums it, left to right, for the
  broadcast ``b``; ``mul`` gives ``grad * t_u``, summed left to right for the broadcast ``w``;
- the book's hand-written gradient: ``2 * (t_p - t_c) / n``, times ``t_u`` (and ``1.0``), summed;
- updates: ``params - lr * grad`` rounds twice (the product, then the difference);
  ``optim.SGD``'s ``param.add_(grad, alpha=-lr)`` rounds once (a fused multiply-add), computed
  here with exact rational arithmetic and one correct rounding to float32.

Elementwise operations run on float32 arrays (each element is rounded once, exactly as a scalar
operation would be); every sum is an explicit Python loop, left to right.
"""

from __future__ import annotations

from fractions import Fraction
from typing import NamedTuple

import numpy as np

F32 = np.float32


class Trajectory(NamedTuple):
    """Per epoch (row ``i`` is epoch ``i + 1``), up to and including a diverging epoch."""

    loss: np.ndarray  # (epochs,) at the params entering the epoch
    grad: np.ndarray  # (epochs, n_params) at the params entering the epoch
    params: np.ndarray  # (epochs, n_params) after the epoch's update
    val_loss: np.ndarray | None  # (epochs,) at the params entering the epoch
    diverged: bool


def left_to_right_sum(values: np.ndarray) -> np.float32:
    total = F32(0.0)
    for value in values:
        total = F32(total + value)
    return total


def mean(values: np.ndarray) -> np.float32:
    return F32(left_to_right_sum(values) / F32(len(values)))


def fused_multiply_add(a: np.float32, b: np.float32, c: np.float32) -> np.float32:
    """``a * b + c`` rounded once to float32 (round to nearest, ties to even)."""
    if not all(np.isfinite(x) for x in (a, b, c)):
        return F32(F32(a * b) + c)  # non-finite inputs: the result is non-finite either way
    exact = Fraction(float(a)) * Fraction(float(b)) + Fraction(float(c))
    near = F32(float(exact))
    if not np.isfinite(near):
        return near
    candidates = [np.nextafter(near, F32(-np.inf)), near, np.nextafter(near, F32(np.inf))]
    candidates = [x for x in candidates if np.isfinite(x)]

    def distance(x: np.float32) -> tuple[Fraction, int]:
        # nearest first; of two equally near, the one with an even last bit
        return abs(Fraction(float(x)) - exact), int(np.asarray(x).view(np.uint32)) & 1

    return min(candidates, key=distance)


def _forward(model: str, params: np.ndarray, t_u: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """``t_p`` and, per param, what its product multiplies (the local derivative of ``mul``)."""
    if model == "linear":
        w, b = params
        return (w * t_u) + b, [t_u, None]
    w2, w1, b = params  # w2 * t_u ** 2 + w1 * t_u + b, left to right
    t_u2 = t_u * t_u
    return ((w2 * t_u2) + (w1 * t_u)) + b, [t_u2, t_u, None]


def _loss(model: str, params: np.ndarray, t_u: np.ndarray, t_c: np.ndarray) -> np.float32:
    t_p, _ = _forward(model, params, t_u)
    diff = t_p - t_c
    return mean(diff * diff)


def _autograd(model: str, params: np.ndarray, t_u: np.ndarray, t_c: np.ndarray) -> tuple[np.float32, np.ndarray]:
    t_p, factors = _forward(model, params, t_u)
    diff = t_p - t_c
    loss = mean(diff * diff)
    grad_sq = F32(F32(1.0) / F32(len(t_u)))  # mean's backward: 1 / n for every element
    grad_tp = grad_sq * (F32(2.0) * diff)  # pow's backward: grad * (2 * d); sub's passes it on
    grad = [left_to_right_sum(grad_tp) if factor is None else left_to_right_sum(grad_tp * factor)
            for factor in factors]
    return loss, np.asarray(grad, F32)


def _analytic(params: np.ndarray, t_u: np.ndarray, t_c: np.ndarray) -> tuple[np.float32, np.ndarray]:
    # the book's grad_fn: dloss_dtp = 2 * (t_p - t_c) / t_p.size(0); stack([(d * t_u).sum(), (d * 1.0).sum()])
    w, b = params
    t_p = (w * t_u) + b
    diff = t_p - t_c
    loss = mean(diff * diff)
    dloss_dtp = (F32(2.0) * diff) / F32(len(t_u))
    grad = [left_to_right_sum(dloss_dtp * t_u), left_to_right_sum(dloss_dtp * F32(1.0))]
    return loss, np.asarray(grad, F32)


def _finite_difference(params: np.ndarray, t_u: np.ndarray, t_c: np.ndarray, lr: np.float32, delta: np.float32
                       ) -> tuple[np.float32, np.ndarray, np.ndarray]:
    # the book's central differences, each param updated before the next one's rate is taken
    loss = _loss("linear", params, t_u, t_c)
    params = params.copy()
    rates = []
    for j in range(len(params)):
        up, down = params.copy(), params.copy()
        up[j] = F32(up[j] + delta)
        down[j] = F32(down[j] - delta)
        rate = F32(F32(_loss("linear", up, t_u, t_c) - _loss("linear", down, t_u, t_c)) / F32(F32(2.0) * delta))
        params[j] = F32(params[j] - F32(lr * rate))
        rates.append(rate)
    return loss, np.asarray(rates, F32), params


def run(n_epochs: int, learning_rate: float, params: tuple[float, ...] | np.ndarray, t_u: np.ndarray,
        t_c: np.ndarray, *, optimizer: str | None = None, model: str = "linear", gradient: str = "autograd",
        val: tuple[np.ndarray, np.ndarray] | None = None, delta: float = 0.1) -> Trajectory:
    """Every epoch of the book's loop, stopping after the first epoch whose loss or update is not finite."""
    t_u, t_c = np.asarray(t_u, F32), np.asarray(t_c, F32)
    params = np.asarray(params, F32)
    lr, delta32 = F32(learning_rate), F32(delta)
    losses, grads, after, val_losses = [], [], [], []
    diverged = False
    with np.errstate(all="ignore"):  # a diverging run overflows on purpose
        for _ in range(n_epochs):
            if val is not None:
                val_losses.append(_loss(model, params, *(np.asarray(v, F32) for v in val)))
            if gradient == "finite-difference":
                loss, grad, new = _finite_difference(params, t_u, t_c, lr, delta32)
            else:
                loss, grad = _analytic(params, t_u, t_c) if gradient == "analytic" else _autograd(
                    model, params, t_u, t_c)
                if optimizer == "sgd":  # param.add_(grad, alpha=-lr): one rounding
                    new = np.asarray([fused_multiply_add(-lr, g, p) for g, p in zip(grad, params, strict=True)], F32)
                else:  # params - lr * grad: two roundings
                    new = params - (lr * grad)
            losses.append(loss)
            grads.append(grad)
            after.append(new)
            if not (np.isfinite(loss) and np.all(np.isfinite(new))):
                diverged = True
                break
            params = new
    return Trajectory(np.asarray(losses, F32), np.asarray(grads, F32), np.asarray(after, F32),
                      np.asarray(val_losses, F32) if val is not None else None, diverged)
