"""Tests that would notice: derived error bounds pinned to independently worked-out values, a
parity verdict on runs that stopped at different epochs, the learning rates ``sweep --json``
reports, and ``fleet --x64`` computing in float64."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from fractions import Fraction

import numpy as np

from jaxcal import data
from jaxcal.cli import main
from jaxcal.fleet import fit_fleet, least_squares
from jaxcal.parity import Record, RunConfig, compare_records, format_table, tolerance
from jaxcal.tolerances import adam_trajectory_bounds, evaluation_bounds, fd_step_bounds, gd_trajectory_bounds

EPS64 = 2.0**-52  # float64 machine epsilon: the spacing of floats in [1, 2)


def test_sweep_json_reports_the_learning_rates_asked_for(capsys):
    argv = ["sweep", "--lr-min", "1e-3", "--lr-max", "1e-1", "--num", "3", "--epochs", "2", "--json", "--quiet"]
    assert main(argv) == 0
    rates = [config["learning_rate"] for config in json.loads(capsys.readouterr().out)["configs"]]
    # the ends are the text's values as Python floats, not their float32 round trips (1e-3 is
    # 0.0010000000474974513 in float32, ~5e7 float64 ulps away)
    assert rates[0] == 1e-3
    assert rates[-1] == 1e-1
    # the middle one is 1e-2 computed through logs and a power: a few float64 ulps, where the
    # float32 round trip of 1e-2 is 2.2e-10 relative away
    assert abs(rates[1] - 1e-2) <= 8 * EPS64 * 1e-2


# --- parity's verdict on runs that did not stop alike ------------------------------------------

def _log(epochs: list[int], epochs_run: int, diverged: bool) -> Record:
    # Both synthetic logs hold the same values at every epoch they share: any failure is the stop's.
    values = np.asarray(epochs, np.float64)
    return Record(np.asarray(epochs, np.int64), values, np.stack([values, -values], 1), np.stack([values, values], 1),
                  None, epochs_run, diverged)


PARITY_CONFIG = RunConfig(200, 1e-2, (1.0, 0.0), data.t_un, data.t_c, log_every=40)


def test_parity_fails_when_one_run_diverged_earlier():
    comparison = compare_records(PARITY_CONFIG, _log([40, 80, 120], 120, True),
                                 _log([40, 80, 120, 160, 200], 200, False))
    assert all(row.ok for row in comparison.rows)  # the shared epochs agree
    assert not comparison.ok
    verdict = list(format_table(comparison))[-1]
    assert verdict.startswith("parity: FAILED")
    assert "jaxcal diverged at epoch 120" in verdict
    assert "torch ran to epoch 200" in verdict


def test_parity_fails_when_the_logs_differ_in_length():
    # Both say they ran to epoch 200, but torch's log stops at 120: not a match on 3 of 5 points.
    comparison = compare_records(PARITY_CONFIG, _log([40, 80, 120, 160, 200], 200, False),
                                 _log([40, 80, 120], 200, False))
    assert all(row.ok for row in comparison.rows)
    assert not comparison.ok
    verdict = list(format_table(comparison))[-1]
    assert verdict.startswith("parity: FAILED")
    assert "jaxcal 5 log points up to epoch 200, torch 3 log points up to epoch 120" in verdict
    assert "epoch 160 is in jaxcal's log only" in verdict


def test_parity_of_identical_logs_is_ok():
    log = _log([40, 80, 120, 160, 200], 200, False)
    comparison = compare_records(PARITY_CONFIG, log, log)
    assert comparison.ok
    assert list(format_table(comparison))[-1] == "parity: OK"


# --- fleet --x64 computes in float64 ------------------------------------------------------------

def test_fleet_x64_lands_on_least_squares_to_float64_accuracy(tmp_path):
    # Readings centred on 0 (sum x = 0): H = diag(2 mean(x^2), 2) = diag(2.5, 2), so with lr 0.5 the
    # exact run's distance from least squares shrinks by 0.25 (w) and 0 (b) per epoch.
    x = np.asarray([-1.5, -0.5, 0.5, 1.5])
    t = np.asarray([0.1, 0.2, 0.4, 0.3])
    lr, epochs, init = 0.5, 60, np.asarray([1.0, 0.0])
    path = tmp_path / "fleet.csv"
    rows = zip(x.tolist(), t.tolist(), strict=True)
    path.write_text("sensor,t_u,t_c\n" + "".join(f"7,{a!r},{b!r}\n" for a, b in rows))
    # fleet starts one CPU device per core and x64 at start-up: its own interpreter
    done = subprocess.run([sys.executable, "-m", "jaxcal", "fleet", str(path), "--solver", "gd", "--x64", "--json",
                           "--quiet", "--scale", "1", "--lr", repr(lr), "--epochs", str(epochs)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    row = json.loads(done.stdout)["sensors"][0]
    params = np.asarray([row["w"], row["b"]])
    lsq = least_squares(x[None], t[None])[0]
    decay = np.abs(1 - lr * np.asarray([2 * np.mean(x**2), 2.0]))
    # Allowed: the float64 rounding of gradient descent (tolerances.py, one implementation against
    # exact arithmetic), what is left of the exact run's convergence, and least_squares' own
    # rounding (centred sums of 4 readings: a handful of roundings, 8 ulps).
    allowed = (gd_trajectory_bounds(init, x, t, lr, epochs, np.float64).params_err[-1]
               + decay**epochs * np.abs(init - lsq) + 8 * EPS64 * np.abs(lsq))
    assert np.all(np.abs(params - lsq) <= allowed), (params, lsq, allowed)
    # The same fit in float32 misses by far more: a test that float32 would fail.
    float32 = np.asarray(fit_fleet(x[None].astype(np.float32), t[None].astype(np.float32), n_epochs=epochs,
                                   learning_rate=lr, params=init).params)[0]
    assert np.any(np.abs(float32 - lsq) > allowed), (float32, lsq, allowed)


# --- the derived bounds, pinned to values worked out from the documented formulas ---------------
#
# tolerances.py's module and function docstrings give each bound as a formula. The helpers below
# evaluate those formulas independently of jaxcal (plain Python: fractions.Fraction where the
# data allow exact arithmetic, floats for the book's data), and each test asserts that the
# code's bound equals them to within the float64 rounding of evaluating the same sum of
# non-negative terms in another order (no cancellation: each rounding moves it by at most
# 2**-53 relative). A bound twice too tight or ten times too loose fails.

U32 = Fraction(1, 2**24)  # float32's unit roundoff, 2**-24
#: the code evaluates each bound in float64 with a few dozen roundings of non-negative terms
FEW_ULPS = 64 * 2.0**-53


def _gamma(k, u):
    return k * u / (1 - k * u)


def _features(x, m):
    return [x * x, x, 1] if m == 3 else [x, 1]


def _evaluation(p, xs, ts, u):
    """The module docstring's bounds for one evaluation: (loss, grad, loss_err, grad_err)."""
    n, m = Fraction(len(xs)), len(p)  # a Fraction: exact with exact data, a float with floats
    phi = [_features(x, m) for x in xs]
    r = [sum(pj * f for pj, f in zip(p, row, strict=True)) - t for row, t in zip(phi, ts, strict=True)]
    err_r = [_gamma(m + 1, u) * sum(abs(pj * f) for pj, f in zip(p, row, strict=True)) + u * abs(ri)
             for row, ri in zip(phi, r, strict=True)]
    loss = sum(ri * ri for ri in r) / n
    loss_err = (sum(2 * abs(ri) * ei + u * ri * ri for ri, ei in zip(r, err_r, strict=True)) / n
                + _gamma(n - 1, u) * loss + u * loss)
    grad = [sum(2 * ri / n * row[j] for ri, row in zip(r, phi, strict=True)) for j in range(m)]
    grad_err = [sum(abs(row[j]) * 2 * ei / n for row, ei in zip(phi, err_r, strict=True))
                + (3 * u + _gamma(n - 1, u)) * sum(abs(2 * ri * row[j] / n) for ri, row in zip(r, phi, strict=True))
                for j in range(m)]
    return loss, grad, loss_err, grad_err


def _hessian(xs):
    n = Fraction(len(xs))
    return 2 * sum(x * x for x in xs) / n, 2 * sum(xs) / n, 2  # [[a, b], [b, c]] of the line's MSE


def _eigen(a, b, c):
    """Eigenvalues and |eigenvectors| (columns) of [[a, b], [b, c]], in closed form."""
    if b == 0:  # diagonal: exact, whatever the number type
        return [a, c], [[1, 0], [0, 1]]
    a, b, c = float(a), float(b), float(c)
    big = (a + c) / 2 + math.hypot((a - c) / 2, b)
    small = (a * c - b * b) / big  # the determinant over the larger: no cancellation
    v = max([(b, big - a), (big - c, b)], key=lambda w: math.hypot(*w))
    s, k = (abs(w) / math.hypot(*v) for w in v)
    # columns: (s, k) for `big`, its perpendicular (k, s) in absolute value for `small`
    return [small, big], [[k, s], [s, k]]


def _gd_bounds(p, xs, ts, lr, epochs, u, val=None):
    """gd_trajectory_bounds' documented recurrence, rows of (loss_err, grad_err, params_err, val_loss_err)."""
    a, b, c = _hessian(xs)
    lam, q = _eigen(a, b, c)  # q[i][j] = |Q_ij|
    e = [0, 0]
    rows = []
    for _ in range(epochs):
        _, g, loss_err, grad_err = _evaluation(p, xs, ts, u)
        # |Q^T g| needs Q's signs: recover them from H q = lambda q (only b's sign matters in 2x2)
        sign = 1 if b >= 0 else -1
        qt_g = [abs(-sign * q[0][0] * g[0] + q[1][0] * g[1]), abs(q[0][1] * g[0] + sign * q[1][1] * g[1])]
        f = [sum(q[i][j] * e[j] for j in range(2)) for i in range(2)]
        row_loss = loss_err + sum(x * y for x, y in zip(qt_g, e, strict=True)) + sum(
            lj * ej * ej for lj, ej in zip(lam, e, strict=True)) / 2
        row_grad = [grad_err[i] + sum(q[i][j] * lam[j] * e[j] for j in range(2)) for i in range(2)]
        row_val = None
        if val is not None:
            _, val_g, val_err, _ = _evaluation(p, *val, u)
            va, vb, vc = _hessian(val[0])
            h = [[va, abs(vb)], [abs(vb), vc]]
            row_val = (val_err + sum(abs(gi) * fi for gi, fi in zip(val_g, f, strict=True))
                       + sum(f[i] * h[i][j] * f[j] for i in range(2) for j in range(2)) / 2)
        p = [pi - lr * gi for pi, gi in zip(p, g, strict=True)]
        injected = [lr * ge + u * (abs(pi) + lr * abs(gi)) for ge, pi, gi in zip(grad_err, p, g, strict=True)]
        e = [abs(1 - lr * lam[j]) * e[j] + sum(q[i][j] * injected[i] for i in range(2)) for j in range(2)]
        rows.append((row_loss, row_grad, [sum(q[i][j] * e[j] for j in range(2)) for i in range(2)], row_val))
    return rows


def _close(code, expected, rel):
    code = np.atleast_1d(np.asarray(code, np.float64))
    expected = np.atleast_1d(np.asarray([float(v) for v in np.atleast_1d(expected)], np.float64))
    return code.shape == expected.shape and bool(np.all(np.abs(code - expected) <= rel * np.abs(expected)))


#: The hand-worked case: readings x = (-2, 2), targets (1, 5), from (w, b) = (1, 0), lr = 1/16.
#: Least squares is (1, 3); H = diag(8, 2) (sum x = 0), so the propagation is per parameter
#: with |1 - lr lambda| = (1/2, 7/8), and every exact params value is a short binary fraction.
HAND_X, HAND_T, HAND_P, HAND_LR = [-2, 2], [1, 5], [1, 0], Fraction(1, 16)


def test_evaluation_bounds_worked_by_hand():
    # At (1, 0): residuals r = (-3, -3), prediction error bounds err r_i = 2 gamma_3 + 3 u, loss 9,
    # gradient (0, -6) with summed |terms| (12, 6). The docstring's formulas give:
    u, g1, g3 = U32, _gamma(1, U32), _gamma(3, U32)
    loss_err = 12 * g3 + 9 * g1 + 36 * u
    grad_err = [8 * g3 + 12 * g1 + 48 * u, 4 * g3 + 6 * g1 + 24 * u]
    code_loss_err, code_grad_err = evaluation_bounds(HAND_P, HAND_X, HAND_T)
    assert _close(code_loss_err, loss_err, FEW_ULPS)
    assert _close(code_grad_err, grad_err, FEW_ULPS)
    assert _evaluation(HAND_P, HAND_X, HAND_T, U32)[2:] == (loss_err, grad_err)  # the helper agrees


def test_evaluation_bounds_of_a_quadratic_worked_exactly():
    xs, ts, p = [1, 2, 4], [3, -1, 7], [Fraction(1, 2), -1, 2]
    _, _, loss_err, grad_err = _evaluation(p, xs, ts, U32)
    code_loss_err, code_grad_err = evaluation_bounds([float(v) for v in p], xs, ts)
    assert _close(code_loss_err, loss_err, FEW_ULPS)
    assert _close(code_grad_err, grad_err, FEW_ULPS)


def test_evaluation_bounds_on_the_book_data():
    xs, ts = [Fraction(float(x)) for x in data.t_un], [Fraction(float(t)) for t in data.t_c]
    for p in ([1.0, 0.0], [5.3671, -17.3012]):  # the seed's start and end
        _, _, loss_err, grad_err = _evaluation([Fraction(v) for v in p], xs, ts, U32)
        code_loss_err, code_grad_err = evaluation_bounds(p, data.t_un, data.t_c)
        assert _close(code_loss_err, loss_err, FEW_ULPS)
        assert _close(code_grad_err, grad_err, FEW_ULPS)


def test_gd_trajectory_bounds_worked_by_hand():
    u, g1, g3 = U32, _gamma(1, U32), _gamma(3, U32)
    bounds = gd_trajectory_bounds(HAND_P, HAND_X, HAND_T, float(HAND_LR), 4)
    # Epoch 1: the evaluation bounds at (1, 0), then the update to (1, 3/8) injects
    # lr grad_err + u (|p_1| + lr |g|) per parameter, with lr |g| = (0, 3/8).
    assert _close(bounds.loss_err[0], 12 * g3 + 9 * g1 + 36 * u, FEW_ULPS)
    assert _close(bounds.grad_err[0], [8 * g3 + 12 * g1 + 48 * u, 4 * g3 + 6 * g1 + 24 * u], FEW_ULPS)
    assert _close(bounds.params[0], [1, Fraction(3, 8)], 0)
    assert _close(bounds.params_err[0], [g3 / 2 + 3 * g1 / 4 + 4 * u, g3 / 4 + 3 * g1 / 8 + Fraction(9, 4) * u],
                  FEW_ULPS)
    # Epochs 2-4 from the documented recurrence, exactly.
    rows = _gd_bounds(HAND_P, HAND_X, HAND_T, HAND_LR, 4, U32)
    for k, (loss_err, grad_err, params_err, _) in enumerate(rows):
        assert _close(bounds.loss_err[k], loss_err, FEW_ULPS), k
        assert _close(bounds.grad_err[k], grad_err, FEW_ULPS), k
        assert _close(bounds.params_err[k], params_err, FEW_ULPS), k


def test_parity_tolerance_is_twice_the_bound():
    epochs = np.asarray([1, 2, 4])
    config = RunConfig(4, float(HAND_LR), tuple(float(v) for v in HAND_P), np.asarray(HAND_X, np.float32),
                       np.asarray(HAND_T, np.float32), log_every=1)
    tol = tolerance(config, epochs)
    rows = _gd_bounds(HAND_P, HAND_X, HAND_T, HAND_LR, 4, U32)
    for i, epoch in enumerate(epochs):
        loss_err, grad_err, params_err, _ = rows[epoch - 1]
        assert _close(tol.loss[i], 2 * loss_err, FEW_ULPS)
        assert _close(tol.grad[i], [2 * v for v in grad_err], FEW_ULPS)
        assert _close(tol.params[i], [2 * v for v in params_err], FEW_ULPS)


#: float64 roundings in evaluating the recurrence, in the code and here, in different orders: a
#: few per epoch per term, all of non-negative terms (e_k carries the earlier epochs' relative
#: error forward, damped by |1 - lr lambda| <= 1, and adds its own), so at most ~8 * 2**-53 per epoch.
def _trajectory_rel(epochs):
    return FEW_ULPS + 8 * 2.0**-53 * epochs


def test_gd_trajectory_bounds_on_the_book_run():
    # The seed's run: t_un = 0.1 t_u (as float32), lr 1e-2, 5000 epochs. Here H is not diagonal:
    # its eigenvectors mix w and b, and the closed-form 2x2 eigenvectors are the independent check.
    xs, ts = [float(x) for x in data.t_un], [float(t) for t in data.t_c]
    epochs = 5000
    bounds = gd_trajectory_bounds([1.0, 0.0], data.t_un, data.t_c, 1e-2, epochs)
    rows = _gd_bounds([1.0, 0.0], xs, ts, 1e-2, epochs, 2.0**-24)
    for k in (0, 1, 9, 99, 999, epochs - 1):
        loss_err, grad_err, params_err, _ = rows[k]
        rel = _trajectory_rel(k + 1)
        assert _close(bounds.loss_err[k], loss_err, rel), k
        assert _close(bounds.grad_err[k], grad_err, rel), k
        assert _close(bounds.params_err[k], params_err, rel), k


def test_gd_trajectory_validation_bound_on_the_book_split():
    train, val = (list(i) for i in data.BOOK_SPLIT)
    x, t = data.t_un, data.t_c
    epochs = 300
    bounds = gd_trajectory_bounds([1.0, 0.0], x[train], t[train], 1e-2, epochs, val=(x[val], t[val]))
    rows = _gd_bounds([1.0, 0.0], [float(v) for v in x[train]], [float(v) for v in t[train]], 1e-2, epochs, 2.0**-24,
                      val=([float(v) for v in x[val]], [float(v) for v in t[val]]))
    for k in (0, 1, 29, epochs - 1):
        assert _close(bounds.val_loss_err[k], rows[k][3], _trajectory_rel(k + 1)), k
        assert _close(bounds.params_err[k], rows[k][2], _trajectory_rel(k + 1)), k


def _fd_bounds(p, xs, ts, lr, delta, epochs, u):
    """fd_step_bounds' documented recurrence, rows of (loss_err, rate_err, params_err)."""
    a, b, c = _hessian(xs)
    abs_h = [[abs(a), abs(b)], [abs(b), abs(c)]]
    p, e, rows = list(p), [0, 0], []
    for _ in range(epochs):
        _, g, loss_err, _ = _evaluation(p, xs, ts, u)
        row_loss = loss_err + sum(abs(gi) * ei for gi, ei in zip(g, e, strict=True))
        rate_errs = []
        for j in range(2):
            s = [u * (abs(pi) + delta) for pi in p]
            plus = [pi + delta if i == j else pi for i, pi in enumerate(p)]
            minus = [pi - delta if i == j else pi for i, pi in enumerate(p)]
            loss_plus, g_plus, err_plus, _ = _evaluation(plus, xs, ts, u)
            loss_minus, g_minus, err_minus, _ = _evaluation(minus, xs, ts, u)
            rate = (loss_plus - loss_minus) / (2 * delta)
            rate_err = ((err_plus + err_minus + sum((abs(gp) + abs(gm)) * si
                                                    for gp, gm, si in zip(g_plus, g_minus, s, strict=True)))
                        / (2 * delta) + 2 * u * abs(rate) + sum(h * ei for h, ei in zip(abs_h[j], e, strict=True)))
            p[j] = p[j] - lr * rate
            e[j] = e[j] + lr * rate_err + u * (abs(p[j]) + lr * abs(rate))
            rate_errs.append(rate_err)
        rows.append((row_loss, rate_errs, list(e)))
    return rows


def test_fd_step_bounds_worked_exactly():
    delta = Fraction(1, 2)
    bounds = fd_step_bounds(HAND_P, HAND_X, HAND_T, float(HAND_LR), float(delta), 3)
    for k, (loss_err, rate_err, params_err) in enumerate(_fd_bounds(HAND_P, HAND_X, HAND_T, HAND_LR, delta, 3, U32)):
        assert _close(bounds.loss_err[k], loss_err, FEW_ULPS), k
        assert _close(bounds.grad_err[k], rate_err, FEW_ULPS), k
        assert _close(bounds.params_err[k], params_err, FEW_ULPS), k


def test_fd_step_bounds_on_the_book_step():
    # The book's finite-difference step: raw t_u, lr 1e-2, delta 0.1, one epoch; exact arithmetic.
    xs, ts = [Fraction(float(x)) for x in data.t_u], [Fraction(float(t)) for t in data.t_c]
    bounds = fd_step_bounds([1.0, 0.0], data.t_u, data.t_c, 1e-2, 0.1, 1)
    (loss_err, rate_err, params_err), = _fd_bounds([1, 0], xs, ts, Fraction(1e-2), Fraction(0.1), 1, U32)
    assert _close(bounds.loss_err[0], loss_err, FEW_ULPS)
    assert _close(bounds.grad_err[0], rate_err, FEW_ULPS)
    assert _close(bounds.params_err[0], params_err, FEW_ULPS)


def _adam_first_step(p, xs, ts, lr, u, b1=0.9, b2=0.999, eps=1e-8):
    """Adam's params bound after one step, worked from the docstring.

    At k = 1, m = v = 0: m1 = (1 - b1) g, v1 = (1 - b2) g**2, so m_hat = g, sqrt(v_hat) = |g|,
    D = |g| + eps and the step is lr g / D. Its derivatives: d/dm1 = -lr / ((1 - b1) D),
    d/dv1 = lr g / (2 |g| (1 - b2) D**2), and through both d/dg = -lr eps / D**2. With e_0 = 0
    the bound is |B_0| b_0 on the params rows:
    |d/dg| grad_err + |d/dm1| 3u (1 - b1) |g| + |d/dv1| 4u (1 - b2) g**2 + (8u + rel_c1 + rel_c2/2) |step| + u |p1|
    = lr eps grad_err / D**2 + 3u lr |g| / D + 2u lr g**2 / D**2 + (8u + rel_c1 + rel_c2/2) lr |g| / D + u |p1|.
    """
    _, g, _, grad_err = _evaluation(p, xs, ts, u)
    fl = [float(np.float32(b)) for b in (b1, b2)]  # b rounded to float32, as the optimizer holds it
    rel_c1, rel_c2 = abs(fl[0] - b1) / (1 - b1), abs(fl[1] - b2) / (1 - b2)
    out = []
    for pj, gj, ej in zip(p, g, grad_err, strict=True):
        d = abs(gj) + eps
        p1 = pj - lr * gj / d
        out.append(lr * eps * ej / d**2 + 3 * u * lr * abs(gj) / d + 2 * u * lr * gj * gj / d**2
                   + (8 * u + rel_c1 + rel_c2 / 2) * lr * abs(gj) / d + u * abs(p1))
    return out


def test_adam_first_step_bound_worked_by_hand():
    # From (0, 0) on the hand-worked readings the gradient is (-8, -6): both entries move.
    u = 2.0**-24
    for p, xs, ts, lr in (([0.0, 0.0], HAND_X, HAND_T, 0.1),
                          ([1.0, 0.0], [float(x) for x in data.t_un], [float(t) for t in data.t_c], 1e-1)):
        bounds = adam_trajectory_bounds(p, np.asarray(xs), np.asarray(ts), lr, 1)
        _, _, loss_err, grad_err = _evaluation(p, xs, ts, u)
        assert _close(bounds.loss_err[0], loss_err, FEW_ULPS)
        assert _close(bounds.grad_err[0], grad_err, FEW_ULPS)
        assert _close(bounds.params_err[0], _adam_first_step(p, xs, ts, lr, u), FEW_ULPS)
