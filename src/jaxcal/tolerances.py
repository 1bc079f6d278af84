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
    "adam_trajectory_bounds",
    "evaluation_bounds",
    "fd_step_bounds",
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


# Past a divergence the exact run and its bounds overflow to inf: a fine answer, not a warning.
_past_divergence = np.errstate(over="ignore", invalid="ignore")


@_past_divergence
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
    grad_scale: np.ndarray
    val_loss: np.ndarray
    val_loss_err: np.ndarray


def _rows_to_bounds(rows: dict[str, list[Any]]) -> TrajectoryBounds:
    return TrajectoryBounds(**{key: np.asarray(rows[key], np.float64) for key in TrajectoryBounds._fields})


class _Data(NamedTuple):
    phi: np.ndarray
    t_c: np.ndarray
    val_phi: np.ndarray | None
    val_t_c: np.ndarray | None


def _data(n_params: int, t_u: Any, t_c: Any, val: Any) -> _Data:
    phi = _features(np.asarray(t_u, np.float64), n_params)
    if val is None:
        return _Data(phi, np.asarray(t_c, np.float64), None, None)
    return _Data(phi, np.asarray(t_c, np.float64), _features(np.asarray(val[0], np.float64), n_params),
                 np.asarray(val[1], np.float64))


def _record(rows: dict[str, list[Any]], ev: _Evaluation, data: _Data, p: np.ndarray, e_params: np.ndarray,
            dtype: Any, loss_shift: float, grad_shift: np.ndarray) -> None:
    """Append the loss/grad bounds at params ``p`` known to within ``e_params`` (componentwise)."""
    rows["loss"].append(ev.loss)
    rows["grad"].append(ev.grad)
    rows["loss_err"].append(ev.loss_err + loss_shift)
    rows["grad_err"].append(ev.grad_err + grad_shift)
    rows["grad_scale"].append(np.abs((2.0 / data.phi.shape[0]) * (data.phi @ p - data.t_c)[:, None] * data.phi).sum(0))
    if data.val_phi is None or data.val_t_c is None:
        rows["val_loss"].append(np.nan)
        rows["val_loss_err"].append(np.nan)
        return
    val = _evaluate(p, data.val_phi, data.val_t_c, dtype)
    rows["val_loss"].append(val.loss)
    rows["val_loss_err"].append(val.loss_err + np.abs(val.grad) @ e_params
                                + 0.5 * e_params @ np.abs((2.0 / len(data.val_t_c)) * data.val_phi.T @ data.val_phi)
                                @ e_params)


@_past_divergence
def gd_trajectory_bounds(
    params: Any,
    t_u: Any,
    t_c: Any,
    learning_rate: float,
    n_epochs: int,
    dtype: Any = np.float32,
    val: tuple[Any, Any] | None = None,
) -> TrajectoryBounds:
    """Error bounds along plain gradient descent ``p <- p - lr * g(p)`` in ``dtype``.

    The exact run is computed in float64 (its own error is ~1e-16 relative, far below the
    float32 bounds; for float64 runs the bound is therefore only indicative). With ``H = Q Lambda
    Q^T``, the error in eigen-coordinates obeys ``|e_{k+1}| <= |1 - lr lambda| |e_k| + |Q^T| d_k``
    where ``d_k = lr * grad_err_k + u (|p_{k+1}| + lr |g_k|)``, the last term being the two
    roundings of ``p - fl(lr * g)``; ``e_0 = 0`` (the initial params are exact).

    Row ``k`` (epoch ``k + 1``), with ``loss_err_k``/``grad_err_k`` the evaluation bounds of
    :func:`evaluation_bounds` at the exact params ``p_k``, ``g_k`` the exact gradient there:

    * ``params_err = |Q| e_{k+1}``;
    * ``grad_err = grad_err_k + |Q| (lambda * e_k)`` (a params error ``Q e`` moves the gradient by
      ``Q Lambda e``);
    * ``loss_err = loss_err_k + |Q^T g_k| . e_k + sum(lambda e_k**2) / 2`` (the loss is quadratic);
    * ``val_loss_err = val_loss_err_k + |g_val_k| . f + f . |H_val| f / 2`` with ``f = |Q| e_k``,
      ``H_val = (2/n_val) Phi_val^T Phi_val`` and the ``_k`` values those of the validation loss.

    Args:
      params: initial params, shape ``(m,)``: 2 for linear, 3 for quadratic.
      t_u, t_c: the readings (already scaled) and targets, shape ``(n,)``.
      learning_rate: the step size.
      n_epochs: epochs to follow.
      dtype: the precision of the implementations being compared.
      val: optional validation ``(t_u, t_c)``; their loss is bounded at the same params.

    Returns:
      A :class:`TrajectoryBounds` with ``n_epochs`` rows.
    """
    u = unit_roundoff(dtype)
    p = np.asarray(params, np.float64).copy()
    data = _data(p.shape[0], t_u, t_c, val)
    phi, t_c = data.phi, data.t_c
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
        _record(rows, ev, data, p, abs_q @ e, dtype,
                np.abs(q.T @ ev.grad) @ e + 0.5 * eigenvalues @ e**2, abs_q @ (eigenvalues * e))
        p = p - learning_rate * ev.grad
        injected = learning_rate * ev.grad_err + u * (np.abs(p) + learning_rate * np.abs(ev.grad))
        e = decay * e + abs_q.T @ injected
        rows["params"].append(p.copy())
        rows["params_err"].append(abs_q @ e)
    return _rows_to_bounds(rows)


@_past_divergence
def fd_step_bounds(
    params: Any, t_u: Any, t_c: Any, learning_rate: float, delta: float, n_epochs: int, dtype: Any = np.float32
) -> TrajectoryBounds:
    """Error bounds for the book's finite-difference steps (each parameter in turn).

    A rate ``(L(p + d e_j) - L(p - d e_j)) / (2 d)`` is a difference of two loss evaluations:
    its rounding error is at most the two evaluation bounds over ``2 d`` (plus the division's
    rounding); a params error ``e`` moves it by at most ``|H| e`` (the exact central difference
    of a quadratic loss is its gradient). The update adds ``lr`` times that and its own
    roundings; the next parameter's rate sees the updated params, as in the book.

    Per epoch, starting from the params ``p`` (exact) known to within ``e`` (componentwise,
    ``e = 0`` at the start), for each parameter ``j`` in turn, with ``p`` and ``e`` as updated
    by the parameters before it and ``L+-``, ``L+-_err``, ``g+-`` the loss, its evaluation bound
    and the gradient at ``p +- d e_j``:

    * ``rate_err_j = (L+_err + L-_err + (|g+| + |g-|) . s) / (2 d) + 2 u |rate_j| + |H|_j . e``,
      where ``s = u (|p| + d)`` bounds the rounding of ``p +- d`` (all components, conservatively)
      and ``2 u |rate_j|`` the subtraction's and the division's;
    * ``p_j <- p_j - lr rate_j`` and ``e_j <- e_j + lr rate_err_j + u (|p_j| + lr |rate_j|)``.

    The row's ``grad``/``grad_err`` are the rates and ``rate_err``, ``params_err`` the final
    ``e``; ``loss_err`` is the evaluation bound at the epoch's starting params plus ``|g| . e``
    with ``e`` as it entered the epoch.
    """
    u = unit_roundoff(dtype)
    p = np.asarray(params, np.float64).copy()
    data = _data(p.shape[0], t_u, t_c, None)
    m = p.shape[0]
    abs_hessian = np.abs((2.0 / data.phi.shape[0]) * data.phi.T @ data.phi)
    e = np.zeros(m)
    rows: dict[str, list[Any]] = {key: [] for key in TrajectoryBounds._fields}
    for _ in range(n_epochs):
        ev = _evaluate(p, data.phi, data.t_c, dtype)
        rates, rate_errs = np.zeros(m), np.zeros(m)
        start_e = e.copy()
        for j in range(m):
            step = np.zeros(m)
            step[j] = delta
            plus = _evaluate(p + step, data.phi, data.t_c, dtype)
            minus = _evaluate(p - step, data.phi, data.t_c, dtype)
            shifted = u * (np.abs(p) + delta)  # p +- delta is rounded too
            rate = (plus.loss - minus.loss) / (2 * delta)
            rate_errs[j] = ((plus.loss_err + minus.loss_err + np.abs(plus.grad) @ shifted
                             + np.abs(minus.grad) @ shifted) / (2 * delta) + 2 * u * abs(rate) + abs_hessian[j] @ e)
            rates[j] = rate
            p[j] = p[j] - learning_rate * rate
            e[j] = e[j] + learning_rate * rate_errs[j] + u * (abs(p[j]) + learning_rate * abs(rate))
        _record(rows, ev, data, p, start_e, dtype, np.abs(ev.grad) @ start_e, np.zeros(m))
        rows["grad"][-1] = rates  # the history's "grad" of a finite-difference run is its rates
        rows["grad_err"][-1] = rate_errs
        rows["params"].append(p.copy())
        rows["params_err"].append(e.copy())
    return _rows_to_bounds(rows)


@_past_divergence
def adam_trajectory_bounds(
    params: Any,
    t_u: Any,
    t_c: Any,
    learning_rate: float,
    n_epochs: int,
    dtype: Any = np.float32,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    val: tuple[Any, Any] | None = None,
    at_epochs: Any = None,
) -> TrajectoryBounds:
    """Error bounds along Adam (torch's and optax's defaults, ``eps`` added to ``sqrt(v_hat)``).

    Adam's state ``x = (p, m, v)`` is followed in exact arithmetic (float64). Each step is
    linearised: an error ``dx`` becomes ``A_k dx + B_k eta_k``, where ``eta_k`` collects the
    step's own rounding errors, bounded componentwise by ``b_k``: the gradient's evaluation
    error (into the gradient), 3 roundings of the new first moment, ``3 u (b1 |m| + (1 - b1) |g|)``,
    4 of the second, ``4 u (b2 v + (1 - b2) g**2)``, and, into the params, 8 roundings of the step
    ``lr * m_hat / (sqrt(v_hat) + eps)`` plus the bias corrections ``1 - b**k`` computed with ``b``
    rounded to ``dtype``, ``(8 u + rel_c1 + rel_c2 / 2) |step|``, plus one rounding of the new
    params, ``u |p_new|``. Here ``rel_c = (k b**(k-1) |fl(b) - b| + w b**k) / (1 - b**k)`` (``w = 0``
    at ``k = 1``, else ``4 u`` for the power) is the relative error of ``1 - fl(b)**k`` (0.999 is
    0.99900001 in float32: a relative error of 1.3e-5 in ``1 - b2`` at the first step, which moves
    the step by ~6e-6 relative: ``v_hat`` enters through a square root). The bound after ``j``
    steps keeps the signs inside the transition products and takes absolute values last:
    ``|dx_j| <= sum_i |A_{j-1} ... A_{i+1} B_i| b_i``. (Taking them per step instead, as for
    gradient descent, would ignore that Adam damps errors through ``H`` and grows without limit.)

    Args:
      at_epochs: the epochs (1-based) to bound; others are NaN. Default: all (cost grows as
        ``n_epochs ** 2``; with a few log points it is linear).
    """
    u = unit_roundoff(dtype)
    p = np.asarray(params, np.float64).copy()
    n_p = p.shape[0]
    data = _data(n_p, t_u, t_c, val)
    hessian = (2.0 / data.phi.shape[0]) * data.phi.T @ data.phi
    eye = np.eye(n_p)
    zero = np.zeros((n_p, n_p))
    m = np.zeros(n_p)
    v = np.zeros(n_p)
    evaluations, states, transitions, injections, sizes = [], [p.copy()], [], [], []
    for k in range(1, n_epochs + 1):
        ev = _evaluate(p, data.phi, data.t_c, dtype)
        evaluations.append(ev)
        g = ev.grad
        m_new = b1 * m + (1 - b1) * g
        v_new = b2 * v + (1 - b2) * g * g
        c1, c2 = 1 - b1**k, 1 - b2**k
        s = np.sqrt(v_new / c2)
        denom = s + eps
        step = learning_rate * (m_new / c1) / denom
        # The bias corrections 1 - b**k may be computed in the working precision (optax does,
        # torch uses Python floats): b itself is then off by |fl(b) - b| and its power by a few
        # roundings, a relative error in m_hat and v_hat that decays as b**k does.
        b1_err, b2_err = (abs(float(np.asarray(b, dtype)) - b) for b in (b1, b2))
        pow_err = 0.0 if k == 1 else 4 * u  # b**1 is b; a float pow is within ~2 ulps
        rel_c1 = (k * b1 ** (k - 1) * b1_err + pow_err * b1**k) / c1
        rel_c2 = (k * b2 ** (k - 1) * b2_err + pow_err * b2**k) / c2
        d_p_dm = np.diag(-learning_rate / (c1 * denom))
        with np.errstate(divide="ignore", invalid="ignore"):
            d_p_dv = np.diag(np.where(s > 0, learning_rate * (m_new / c1) / (2 * s * c2 * denom**2), 0.0))
        dv_dg = np.diag(2 * (1 - b2) * g)
        dp_dg = d_p_dm * (1 - b1) + d_p_dv @ dv_dg
        transitions.append(np.block([
            [eye + dp_dg @ hessian, d_p_dm * b1, d_p_dv * b2],
            [(1 - b1) * hessian, b1 * eye, zero],
            [dv_dg @ hessian, zero, b2 * eye],
        ]))
        injections.append(np.block([
            [dp_dg, d_p_dm, d_p_dv, eye],
            [(1 - b1) * eye, eye, zero, zero],
            [dv_dg, zero, eye, zero],
        ]))
        p = p - step
        sizes.append(np.concatenate([
            ev.grad_err,
            3 * u * (b1 * np.abs(m) + (1 - b1) * np.abs(g)),
            4 * u * (b2 * v + (1 - b2) * g * g),
            (8 * u + rel_c1 + 0.5 * rel_c2) * np.abs(step) + u * np.abs(p),
        ]))
        m, v = m_new, v_new
        states.append(p.copy())

    def state_error(j: int) -> np.ndarray:
        # |dx_j| <= sum_i |Phi(j, i+1) B_i| b_i, accumulated backwards from step j.
        total = np.zeros(3 * n_p)
        phi = np.eye(3 * n_p)
        for i in range(j - 1, -1, -1):
            total += np.abs(phi @ injections[i]) @ sizes[i]
            phi = phi @ transitions[i]
        return total[:n_p]

    wanted = set(range(1, n_epochs + 1)) if at_epochs is None else {int(e) for e in np.atleast_1d(at_epochs)}
    rows: dict[str, list[Any]] = {key: [] for key in TrajectoryBounds._fields}
    abs_hessian = np.abs(hessian)
    nan_row = np.full(n_p, np.nan)
    for k in range(1, n_epochs + 1):
        ev = evaluations[k - 1]
        if k not in wanted:
            for key in TrajectoryBounds._fields:
                rows[key].append(np.nan if key in ("loss", "loss_err", "val_loss", "val_loss_err") else nan_row)
            continue
        e_in = state_error(k - 1)
        _record(rows, ev, data, states[k - 1], e_in, dtype, np.abs(ev.grad) @ e_in + 0.5 * e_in @ abs_hessian @ e_in,
                abs_hessian @ e_in)
        rows["params"].append(states[k])
        rows["params_err"].append(state_error(k))
    return _rows_to_bounds(rows)
