"""Where every numerical tolerance of jaxcal comes from: first-order floating-point error bounds.

Two correct float32 implementations of the same run (jaxcal and torch, or two summation orders)
differ only by rounding. Standard error analysis (Higham, *Accuracy and Stability of Numerical
Algorithms*, ch. 3-4) bounds how far each can be from the run in exact arithmetic; two of them
can then differ by at most twice that bound. This module computes those bounds along a whole
gradient-descent trajectory, so a test can say "within the float32 error bound" and mean a
number derived from the data, the learning rate and the epoch, not a guess.

The model must be linear in its parameters (``linear`` and ``quadratic`` are): then the MSE
gradient is affine in the params, ``g(p) = H p - c`` with ``H = (2/n) Phi^T Phi``, and an error
``e`` in the params propagates exactly as ``e_{k+1} = (I - lr H) e_k``. Rounding adds, per epoch,
the gradient's evaluation error and the update's own rounding; the propagation is followed in
the eigenbasis of ``H``, where it is diagonal (``|1 - lr lambda|`` per direction). All bounds are componentwise and
first order in the unit roundoff ``u`` (terms in ``u^2`` are dropped; at float32 they are below
1e-13 relative).

Per evaluation at params ``p`` with residuals ``r_i = t_p_i - t_c_i`` (n readings, m params):

* prediction ``t_p_i = sum_j p_j phi_j(x_i)``: ``|err| <= gamma_{m+1} sum_j |p_j phi_ij|``
  (a length-m dot product, plus one rounding for ``x**2``);
* residual: ``|err r_i| <= |err t_p_i| + u |r_i|``;
* loss ``(1/n) sum r_i^2``: ``|err| <= (1/n) sum (2 |r_i| |err r_i| + u r_i^2)
  + gamma_{n-1} (1/n) sum r_i^2 + u L`` (squares, a length-n sum, the division);
* gradient ``g_j = sum_i (2 r_i / n) phi_ij``: ``|err| <= sum_i |phi_ij| (2/n) |err r_i|
  + (3u + gamma_{n-1}) sum_i |2 r_i phi_ij / n|`` (scaling, product, feature rounding, sum).

The last term is why gradients near convergence are compared in absolute terms: the sum's
terms are ~1e1 while their sum is ~1e-4, so its error is set by ``sum |terms|``, not by ``|g|``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

__all__ = [
    "TrajectoryBounds",
    "evaluation_bounds",
    "gamma",
    "gd_trajectory_bounds",
    "printed_half_unit",
    "unit_roundoff",
]


def unit_roundoff(dtype: Any = np.float32) -> float:
    """``u = eps / 2``: the largest relative error of one rounding (2**-24 for float32)."""
    return float(np.finfo(dtype).eps) / 2


def gamma(n: int, dtype: Any = np.float32) -> float:
    """Higham's ``gamma_n = n u / (1 - n u)``: the relative error bound of ``n`` roundings."""
    u = unit_roundoff(dtype)
    return n * u / (1 - n * u)


def printed_half_unit(text: str) -> float:
    """Half a unit in the last printed digit of ``text`` (``"7.860116"`` -> 5e-7)."""
    mantissa, _, exponent = text.strip().lower().partition("e")
    decimals = len(mantissa.partition(".")[2])
    return 0.5 * 10.0 ** (-decimals + (int(exponent) if exponent else 0))


def _features(t_u: np.ndarray, n_params: int) -> np.ndarray:
    # Phi[i, j] = phi_j(x_i) for the model sum_j p_j phi_j(x): (x, 1) or (x**2, x, 1).
    powers = np.arange(n_params - 1, -1, -1)
    return t_u[:, None] ** powers[None, :]


class _Evaluation(NamedTuple):
    loss: float
    grad: np.ndarray
    loss_err: float
    grad_err: np.ndarray


def _evaluate(params: np.ndarray, phi: np.ndarray, t_c: np.ndarray, dtype: Any) -> _Evaluation:
    u = unit_roundoff(dtype)
    n, m = phi.shape
    terms = phi * params[None, :]
    residual = terms.sum(axis=1) - t_c
    err_residual = gamma(m + 1, dtype) * np.abs(terms).sum(axis=1) + u * np.abs(residual)
    loss = float(np.mean(residual**2))
    loss_err = float(
        np.sum(2 * np.abs(residual) * err_residual + u * residual**2) / n
        + gamma(n - 1, dtype) * loss
        + u * loss
    )
    grad_terms = (2.0 / n) * residual[:, None] * phi
    grad = grad_terms.sum(axis=0)
    grad_err = (np.abs(phi) * ((2.0 / n) * err_residual)[:, None]).sum(axis=0) + (
        3 * u + gamma(n - 1, dtype)
    ) * np.abs(grad_terms).sum(axis=0)
    return _Evaluation(loss, grad, loss_err, grad_err)


def evaluation_bounds(params: Any, t_u: Any, t_c: Any, dtype: Any = np.float32) -> tuple[float, np.ndarray]:
    """Bounds on the rounding error of one loss and one gradient evaluation at ``params``.

    Returns:
      ``(loss_err, grad_err)``: absolute bounds, ``grad_err`` of shape ``(n_params,)``.
    """
    params = np.asarray(params, np.float64)
    phi = _features(np.asarray(t_u, np.float64), params.shape[0])
    evaluation = _evaluate(params, phi, np.asarray(t_c, np.float64), dtype)
    return evaluation.loss_err, evaluation.grad_err


class TrajectoryBounds(NamedTuple):
    """Per-epoch values of the exact run and bounds on a float run's distance from them.

    Row ``k`` is epoch ``k + 1``: ``loss``/``grad`` at the params entering it, ``params`` after
    its update, as jaxcal's history reports them. ``*_err`` are absolute bounds on
    ``|computed - exact|`` for one implementation; two implementations differ by at most twice.
    """

    loss: np.ndarray
    grad: np.ndarray
    params: np.ndarray
    loss_err: np.ndarray
    grad_err: np.ndarray
    params_err: np.ndarray


def gd_trajectory_bounds(
    params: Any,
    t_u: Any,
    t_c: Any,
    learning_rate: float,
    n_epochs: int,
    dtype: Any = np.float32,
) -> TrajectoryBounds:
    """Error bounds along plain gradient descent ``p <- p - lr * g(p)`` in ``dtype``.

    The exact run is computed in float64 (its own error is ~1e-16 relative, far below the
    float32 bounds; for float64 runs the bound is therefore only indicative). With ``H = Q Lambda
    Q^T``, the error in eigen-coordinates obeys ``|e_{k+1}| <= |1 - lr lambda| |e_k| + |Q^T| d_k``
    where ``d_k = lr * grad_err_k + u (|p_{k+1}| + lr |g_k|)``, the last term being the two
    roundings of ``p - fl(lr * g)``.

    Args:
      params: initial params, shape ``(m,)``: 2 for linear, 3 for quadratic.
      t_u, t_c: the readings (already scaled) and targets, shape ``(n,)``.
      learning_rate: the step size.
      n_epochs: epochs to follow.
      dtype: the precision of the implementations being compared.

    Returns:
      A :class:`TrajectoryBounds` with ``n_epochs`` rows.
    """
    u = unit_roundoff(dtype)
    p = np.asarray(params, np.float64).copy()
    t_c = np.asarray(t_c, np.float64)
    phi = _features(np.asarray(t_u, np.float64), p.shape[0])
    n = phi.shape[0]
    hessian = (2.0 / n) * phi.T @ phi
    # Follow the error in the eigenbasis of H, where the propagation is diagonal: a bound
    # taken componentwise in the original basis would mix the stiff and the flat directions
    # and overstate the drift by orders of magnitude.
    eigenvalues, q = np.linalg.eigh(hessian)
    eigenvalues = np.clip(eigenvalues, 0.0, None)
    decay = np.abs(1.0 - learning_rate * eigenvalues)
    abs_q = np.abs(q)
    e = np.zeros_like(p)  # bound on |Q^T (computed - exact)|; the initial params are exact
    rows: dict[str, list[Any]] = {key: [] for key in TrajectoryBounds._fields}
    for _ in range(n_epochs):
        ev = _evaluate(p, phi, t_c, dtype)
        # A params error Q e moves the loss by (Q^T g).e + sum(lambda e^2)/2, the gradient by Q Lambda e.
        rows["loss"].append(ev.loss)
        rows["grad"].append(ev.grad)
        rows["loss_err"].append(ev.loss_err + np.abs(q.T @ ev.grad) @ e + 0.5 * eigenvalues @ e**2)
        rows["grad_err"].append(ev.grad_err + abs_q @ (eigenvalues * e))
        p = p - learning_rate * ev.grad
        injected = learning_rate * ev.grad_err + u * (np.abs(p) + learning_rate * np.abs(ev.grad))
        e = decay * e + abs_q.T @ injected
        rows["params"].append(p.copy())
        rows["params_err"].append(abs_q @ e)
    return TrajectoryBounds(**{key: np.asarray(value) for key, value in rows.items()})
