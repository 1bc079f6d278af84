"""The book's gradient descent and any optax optimiser as solver values, run by calibrate's one loop.

The oracle is gradient descent replayed in float64 by NumPy on the same readings; each comparison's bound
is the rounding of the steps, summed over the run (see :func:`_replay_bound`). The float32 checks run
here, the float64 ones in a fresh interpreter with JAX_ENABLE_X64=1
(test_float64_cases_in_a_fresh_interpreter), since x64 is a start-up choice.
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from programs import pytest_with_x64

from jaxcal import calibrate, data, training_loop
from jaxcal._iterate import iterate
from jaxcal.solvers import (
    SOLVERS,
    STATUS,
    Autograd,
    FiniteDifference,
    GradientDescent,
    LeastSquares,
    LevenbergMarquardt,
    Optax,
)
from jaxcal.solvers.gradient_descent import counted_rows, mean_square

HERE = Path(__file__).parent
X64 = bool(jax.config.jax_enable_x64)
float64_only = pytest.mark.skipif(not X64, reason="JAX_ENABLE_X64=1: test_float64_cases_in_a_fresh_interpreter")
float32_only = pytest.mark.skipif(X64, reason="the float32 checks run in the main process")


# -- the oracle and its bounds, in float64 by NumPy -------------------------------------------------------


def _unit(dtype) -> float:
    """The unit roundoff ``u``: a rounding of ``x`` is off by at most ``u |x|``."""
    return float(np.finfo(dtype).eps) / 2


def _gamma(k: int, u: float) -> float:
    """``gamma_k = k u / (1 - k u)``: the relative error of ``k`` roundings in a row (Higham, 3.1), e.g. a
    sum of ``k + 1`` terms is off by at most ``gamma_k`` times the sum of their magnitudes."""
    return k * u / (1 - k * u)


def _design(t_u: np.ndarray) -> np.ndarray:
    t_u = np.asarray(t_u, np.float64)
    return np.stack([t_u, np.ones_like(t_u)], axis=1)


def _hessian(t_u: np.ndarray) -> np.ndarray:
    """The Hessian of the book's loss ``mean((w t_u + b - t_c)**2)``: ``2 / m X^T X``."""
    x = _design(t_u)
    return 2 / len(x) * x.T @ x


def _gradient(y: np.ndarray, t_u: np.ndarray, t_c: np.ndarray) -> np.ndarray:
    x = _design(t_u)
    return 2 / len(x) * x.T @ (x @ y - np.asarray(t_c, np.float64))


def _replay(learning_rate: float, y0, t_u: np.ndarray, t_c: np.ndarray, steps: int) -> np.ndarray:
    """Gradient descent in float64, every iterate ``(steps + 1, 2)``: the exact run but for float64's
    rounding (a 1e-9 part of the float32 bounds below)."""
    path = [np.asarray(y0, np.float64)]
    for _ in range(steps):
        path.append(path[-1] - learning_rate * _gradient(path[-1], t_u, t_c))
    return np.stack(path)


def _magnitudes(y: np.ndarray, t_u: np.ndarray, t_c: np.ndarray) -> np.ndarray:
    """``A_i = |w t_u_i| + |b| + |t_c_i|``: the residual ``w t_u_i + b - t_c_i``, computed by three
    roundings, is off by at most ``gamma_3 A_i`` (cancellation makes its own size no guide)."""
    return np.abs(y[0] * np.asarray(t_u, np.float64)) + np.abs(y[1]) + np.abs(np.asarray(t_c, np.float64))


def _gradient_rounding(y: np.ndarray, t_u: np.ndarray, t_c: np.ndarray, u: float) -> np.ndarray:
    """How far a computed gradient of the book's loss at ``y`` may be from the exact one, per param.

    ``(2 / m) sum_i r_i x_ij``: each residual is off by ``gamma_3 A_i``, its product with ``2 / m`` and
    ``x_ij`` adds 2 roundings and the sum of ``m`` terms ``m - 1``: ``gamma_{m+4} (2 / m) sum_i A_i |x_ij|``
    (in whatever order the terms are summed; ``gamma_{m+6}`` leaves two to spare for the ``1 / m`` formed
    apart and the mean's division).
    """
    x = _design(t_u)
    return _gamma(len(x) + 6, u) * 2 / len(x) * (np.abs(x).T @ _magnitudes(y, t_u, t_c))


def _step_rounding(y: np.ndarray, learning_rate: float, t_u: np.ndarray, t_c: np.ndarray, u: float,
                   gradient_error: np.ndarray | None = None) -> np.ndarray:
    """How far one computed step ``y - lr * grad`` may be from the exact step at ``y``, per param: the
    gradient's rounding times ``lr``, then ``u |lr grad|`` for the product and ``u |y - lr grad|`` for the
    difference."""
    g = _gradient(y, t_u, t_c)
    error = _gradient_rounding(y, t_u, t_c, u) if gradient_error is None else gradient_error
    return learning_rate * error + u * (np.abs(y) + 2 * learning_rate * np.abs(g))


def _replay_bound(path: np.ndarray, learning_rate: float, t_u: np.ndarray, t_c: np.ndarray, u: float,
                  step_rounding=None) -> float:
    """How far a computed run of gradient descent may end from the exact one (``path``), in the 2-norm.

    For a model linear in its params each exact step is affine, ``y -> y - lr (H y - c)``, so two runs
    that differ by ``e`` differ by ``(I - lr H) e`` one step later, plus the new step's rounding ``d_k``.
    ``I - lr H`` is symmetric with norm ``rho = max |1 - lr lambda|`` over ``H``'s eigenvalues (below 1
    for a learning rate that converges, above for one that diverges), so
    ``|e_K| <= sum_k rho**(K-1-k) |d_k|``. The ``d_k`` are evaluated on the exact path: the computed one
    lies within this bound of it, a change of ``A_i`` far below its own rounding digits (where the bound
    is a small part of the path's values, as in every use here).
    """
    lam = np.linalg.eigvalsh(_hessian(t_u))
    rho = float(np.max(np.abs(1 - learning_rate * lam)))
    rounding = step_rounding or (lambda y: _step_rounding(y, learning_rate, t_u, t_c, u))
    d = np.array([np.linalg.norm(rounding(y)) for y in path[:-1]])
    return float(np.sum(rho ** np.arange(len(d) - 1, -1, -1) * d))


def _least_squares(t_u: np.ndarray, t_c: np.ndarray) -> np.ndarray:
    """The exact minimum of the book's loss on these readings (NumPy's float64 least squares)."""
    return np.linalg.lstsq(_design(t_u), np.asarray(t_c, np.float64), rcond=None)[0]


def _resolution(y_star: np.ndarray, t_u: np.ndarray, t_c: np.ndarray, u: float) -> float:
    """How close to the minimum ``y*`` a method that follows computed gradients can be sure to come,
    in the 2-norm: near ``y*`` the gradient's rounding is ``_gradient_rounding``, and the exact gradient
    at ``y`` is ``H (y - y*)``, at least ``lambda_min |y - y*|``; below ``|rounding| / lambda_min`` the two
    cannot be told apart. A step ``y - lr grad`` also rounds ``y`` itself: ``u |y*|``."""
    lam_min = float(np.linalg.eigvalsh(_hessian(t_u))[0])
    return float(np.linalg.norm(_gradient_rounding(y_star, t_u, t_c, u)) / lam_min + u * np.linalg.norm(y_star))


def _readings(dtype) -> tuple[np.ndarray, np.ndarray]:
    """The book's scaled readings (``t_un``, as the book rounds them in float32) in ``dtype``."""
    return np.asarray(data.t_un, dtype), np.asarray(data.t_c, dtype)


def _residuals(t_u: np.ndarray, t_c: np.ndarray):
    """The book's residuals ``w t_u + b - t_c`` as a solver sees them, ``fn(y, args)``."""

    def fn(y, args):
        t_u, t_c = args
        return y[0] * t_u + y[1] - t_c

    return fn, (jnp.asarray(t_u), jnp.asarray(t_c))


# -- the book's run, in float32 and float64 -----------------------------------------------------------------


def _replays_the_books_training_loop(dtype, steps: int) -> None:
    t_u, t_c = _readings(dtype)
    fit = calibrate(t_u, t_c, params=[1.0, 0.0], solver=GradientDescent(1e-2, max_steps=steps))
    book = training_loop(steps, 1e-2, [1.0, 0.0], t_u, t_c)
    assert fit.params.dtype == book.params.dtype == dtype
    assert STATUS[int(fit.status)] == "max_steps"
    assert int(fit.steps) == int(book.epochs_run) == steps
    # each run lies within the bound of the exact one (the float64 replay), so of each other within twice it
    learning_rate = float(np.asarray(1e-2, dtype))  # both runs step by the rate rounded to their dtype
    path = _replay(learning_rate, [1.0, 0.0], t_u, t_c, steps)
    bound = _replay_bound(path, learning_rate, t_u, t_c, _unit(dtype))
    params = np.asarray(fit.params, np.float64)
    assert np.linalg.norm(params - path[-1]) <= bound
    assert np.linalg.norm(params - np.asarray(book.params, np.float64)) <= 2 * bound
    # the check can fail: the run is nowhere near its start or (at 300 steps) its end
    assert np.linalg.norm(path[-1] - path[0]) > 100 * bound


@float32_only
@pytest.mark.parametrize("steps", [300, 5000])
def test_gradient_descent_replays_the_books_training_loop(steps):
    _replays_the_books_training_loop(np.float32, steps)


@float64_only
@pytest.mark.parametrize("steps", [300, 5000])
def test_float64_gradient_descent_replays_the_books_training_loop(steps):
    _replays_the_books_training_loop(np.float64, steps)


def _stops_at_least_squares(dtype, rtol: float) -> None:
    t_u, t_c = _readings(dtype)
    learning_rate = float(np.asarray(1e-2, dtype))
    fit = calibrate(t_u, t_c, params=[1.0, 0.0], solver=GradientDescent(1e-2, max_steps=100_000, rtol=rtol))
    assert STATUS[int(fit.status)] == "converged"
    assert int(fit.steps) < 100_000
    y_star = _least_squares(t_u, t_c)
    params = np.asarray(fit.params, np.float64)
    # The last step s changed no param by more than rtol |y|. Exact, s = -lr H (y - y*), so y was within
    # |s| / (lr lambda_min) of y* (and the step took it closer); the computed s is off by its rounding d,
    # and the taken step by d again.
    lam_min = float(np.linalg.eigvalsh(_hessian(t_u))[0])
    u = _unit(dtype)
    s = rtol * np.abs(params) / (1 - rtol)  # |y before| <= |y after| + |s|
    d = np.linalg.norm(_step_rounding(y_star, learning_rate, t_u, t_c, u))
    bound = (np.linalg.norm(s) + d) / (learning_rate * lam_min) + d
    assert np.linalg.norm(params - y_star) <= bound
    ls = np.asarray(calibrate(t_u, t_c, solver=LeastSquares()).params, np.float64)
    assert np.linalg.norm(params - ls) <= bound + np.linalg.norm(ls - y_star)
    # the check can fail: a run of 2000 steps ends farther away
    assert np.linalg.norm(_replay(learning_rate, [1.0, 0.0], t_u, t_c, 2000)[-1] - y_star) > bound


@float32_only
def test_gradient_descent_with_a_tolerance_stops_at_the_least_squares_answer():
    _stops_at_least_squares(np.float32, 1e-7)


@float64_only
def test_float64_gradient_descent_with_a_tolerance_stops_at_the_least_squares_answer():
    _stops_at_least_squares(np.float64, 1e-12)


# -- finite differences -----------------------------------------------------------------------------------


def _loss_rounding(y: np.ndarray, t_u: np.ndarray, t_c: np.ndarray, u: float) -> float:
    """How far a computed book's loss ``sum(r**2) / m`` at ``y`` may be from the exact one: each ``r_i``
    is off by ``gamma_3 A_i``, so ``r_i**2`` by ``(2 gamma_3 + gamma_3**2) A_i**2``, then 1 rounding for the
    square, ``m - 1`` for the sum and 1 for the division: within ``gamma_{m+8} sum A_i**2 / m``."""
    a = _magnitudes(y, t_u, t_c)
    return _gamma(len(a) + 8, u) * float(np.sum(a * a)) / len(a)


def _difference_rounding(y: np.ndarray, delta: float, t_u: np.ndarray, t_c: np.ndarray, u: float) -> np.ndarray:
    """How far a computed central difference of the book's loss may be from the exact gradient, per param.

    The loss is quadratic in ``y``: the difference ``(L(y + delta e_j) - L(y - delta e_j)) / (2 delta)``
    of exact losses at the exact points is the gradient, whatever ``delta`` (no truncation error). What
    remains is rounding: each loss's (``_loss_rounding``) over ``2 delta``; the subtraction and the
    division, ``2 u |g|``; and the rounding of ``y +- delta`` itself, which moves each point by at most
    ``u (|y_j| + delta)``, a relative ``u (|y_j| + delta) / delta`` of the width and, unevenly, a change of
    at most ``|L''_jj| u (|y_j| + delta)`` (none where ``y`` and ``delta`` are dyadic, as below).
    """
    g = _gradient(y, t_u, t_c)
    curvature = np.diag(_hessian(t_u))
    bound = np.empty(2)
    for j in range(2):
        step = np.zeros(2)
        step[j] = delta
        losses = _loss_rounding(y + step, t_u, t_c, u) + _loss_rounding(y - step, t_u, t_c, u)
        moved = u * (abs(y[j]) + delta)
        bound[j] = losses / (2 * delta) + 2 * u * abs(g[j]) + abs(g[j]) * moved / delta + curvature[j] * moved
    return bound


def _finite_differences_agree(dtype) -> None:
    u = _unit(dtype)
    for t_u, t_c in [_readings(dtype), (np.asarray(data.t_u, dtype), np.asarray(data.t_c, dtype))]:
        fn, args = _residuals(t_u, t_c)
        loss = mean_square(fn, args, counted_rows(fn, jnp.asarray([1.0, 0.0], dtype), args))  # the solvers' loss
        for y in ([1.0, 0.0], [5.375, -17.25], [-2.5, 40.0]):
            for delta in (0.125, 0.5):  # dyadic, as y: y +- delta is exact
                y_array = jnp.asarray(y, dtype)
                f_fd, g_fd = FiniteDifference(delta).value_and_grad(loss, y_array)
                f_ad, g_ad = Autograd().value_and_grad(loss, y_array)
                assert float(f_fd) == float(f_ad)  # the same loss at the same y
                yy = np.asarray(y)
                exact = _gradient(yy, t_u, t_c)
                fd_bound = _difference_rounding(yy, delta, t_u, t_c, u)
                ad_bound = _gradient_rounding(yy, t_u, t_c, u)
                assert (np.abs(np.asarray(g_fd, np.float64) - exact) <= fd_bound).all()
                assert (np.abs(np.asarray(g_ad, np.float64) - exact) <= ad_bound).all()
                # the check can fail: a forward difference, off by L''_ww delta / 2 in w, would; and at the
                # start the bound is below 1e-3 of the gradient
                assert fd_bound[0] < _hessian(t_u)[0, 0] * delta / 2
                assert y != [1.0, 0.0] or (fd_bound < 1e-3 * np.abs(exact)).all()


@float32_only
def test_finite_differences_agree_with_jax_grad():
    _finite_differences_agree(np.float32)


@float64_only
def test_float64_finite_differences_agree_with_jax_grad():
    _finite_differences_agree(np.float64)


@float64_only
def test_float64_gradient_descent_by_finite_differences_replays_the_exact_run():
    t_u, t_c = _readings(np.float64)
    delta, steps, u = 0.1, 5000, _unit(np.float64)
    solver = GradientDescent(1e-2, max_steps=steps, gradient=FiniteDifference(delta))
    fit = calibrate(t_u, t_c, params=[1.0, 0.0], solver=solver)
    path = _replay(1e-2, [1.0, 0.0], t_u, t_c, steps)

    def rounding(y):
        return _step_rounding(y, 1e-2, t_u, t_c, u, gradient_error=_difference_rounding(y, delta, t_u, t_c, u))

    bound = _replay_bound(path, 1e-2, t_u, t_c, u, rounding)
    assert np.linalg.norm(np.asarray(fit.params) - path[-1]) <= bound
    assert bound < 1e-6


# -- divergence, fleets, programs ----------------------------------------------------------------------------


@float32_only
def test_a_diverging_learning_rate_is_status_nonfinite_with_the_last_finite_params():
    t_u, t_c = np.asarray(data.t_u), np.asarray(data.t_c)  # unscaled: 1.0 is far past 2 / lambda_max
    solver = GradientDescent(1.0)
    fn, args = _residuals(t_u, t_c)
    solution = jax.jit(iterate, static_argnums=1)(solver, fn, jnp.asarray([1.0, 0.0]), args)
    assert STATUS[int(solution.status)] == "nonfinite"
    assert np.isfinite(np.asarray(solution.value)).all()
    assert int(solution.steps) < solver.max_steps
    # the params kept are the last finite ones: their loss or the step from them is not finite
    y = jnp.asarray(solution.value)
    f, g = Autograd().value_and_grad(lambda p: jnp.mean(fn(p, args) ** 2), y)
    assert not (np.isfinite(float(f)) and np.isfinite(np.asarray(y - 1.0 * g)).all())
    # as the book's loop stops: at the same epoch, and each within the steps' rounding (each step's grows
    # with the params, by rho = |1 - lr lambda_max| a step) of the exact run replayed in float64
    book = training_loop(5000, 1.0, [1.0, 0.0], t_u, t_c)
    assert bool(book.diverged)
    assert int(solution.steps) == int(book.epochs_run)
    path = _replay(1.0, [1.0, 0.0], t_u, t_c, int(solution.steps) - 1)
    bound = _replay_bound(path, 1.0, t_u, t_c, _unit(np.float32))
    assert np.linalg.norm(np.asarray(solution.value, np.float64) - path[-1]) <= bound
    assert np.linalg.norm(np.asarray(book.params, np.float64) - path[-1]) <= bound
    assert bound < 1e-5 * np.linalg.norm(path[-1])
    # calibrate reports the status, its params NaN as for every nonfinite fit
    fit = calibrate(t_u, t_c, params=[1.0, 0.0], solver=solver)
    assert STATUS[int(fit.status)] == "nonfinite"
    assert int(fit.steps) == int(solution.steps)


@float32_only
def test_a_ragged_fleet_is_each_sensor_on_its_own_readings_in_one_program(compiles):
    rng = np.random.default_rng(11)
    sensors, n, steps, learning_rate = 5, 11, 501, 1e-2  # a max_steps no other test uses: a fresh program
    t_u = rng.uniform(2, 8, (sensors, n)).astype(np.float32)
    t_c = (rng.uniform(4, 6, (sensors, 1)) * t_u - 17 + rng.normal(0, 1, (sensors, n))).astype(np.float32)
    counts = [11, 4, 7, 2, 9]
    mask = np.arange(n)[None, :] < np.array(counts)[:, None]
    starts = np.stack([rng.uniform(0, 2, sensors), rng.uniform(-5, 5, sensors)], axis=1).astype(np.float32)
    padded_u, padded_c = t_u.copy(), t_c.copy()
    padded_u[~mask], padded_c[~mask] = np.nan, 1e30  # padding may hold anything: it must not count
    fleet = calibrate(padded_u, padded_c, params=starts, mask=mask,
                      solver=GradientDescent(learning_rate, max_steps=steps))
    assert compiles.count("_fit_fleet") == 1
    assert fleet.params.shape == (sensors, 2)
    learning_rate = float(np.float32(learning_rate))
    for s, count in enumerate(counts):
        mine_u, mine_c = t_u[s, :count], t_c[s, :count]
        assert STATUS[int(fleet.status[s])] == "max_steps"
        # the mean over the sensor's own readings: the run NumPy replays on them alone
        path = _replay(learning_rate, starts[s], mine_u, mine_c, steps)
        bound = _replay_bound(path, learning_rate, mine_u, mine_c, _unit(np.float32))
        assert np.linalg.norm(np.asarray(fleet.params[s], np.float64) - path[-1]) <= bound
        # (averaged over all n rows, a ragged sensor's steps would shrink by count / n: far off)
        shrunk = _replay(learning_rate * count / n, starts[s], mine_u, mine_c, steps)[-1]
        assert count == n or np.linalg.norm(shrunk - path[-1]) > bound


@float32_only
def test_a_new_learning_rate_or_delta_reuses_the_program(compiles):
    t_u, t_c = _readings(np.float32)
    for learning_rate, delta in [(1e-2, 0.1), (2e-2, 0.1), (1e-2, 0.25)]:
        calibrate(t_u, t_c, params=[1.0, 0.0],
                  solver=GradientDescent(learning_rate, max_steps=1234, gradient=FiniteDifference(delta)))
    assert compiles.count("_fit_fleet") == 1


def test_gradient_descent_is_a_command_line_solver_and_optax_is_not():
    assert SOLVERS["gd"][0] is GradientDescent
    assert "\n" not in SOLVERS["gd"][1]
    assert all(cls is not Optax for cls, _ in SOLVERS.values())
    assert [cls for cls, _ in SOLVERS.values()][:2] == [LeastSquares, LevenbergMarquardt]


# -- optax -------------------------------------------------------------------------------------------------


@float32_only
@pytest.mark.standard_promotion
def test_optax_sgd_is_the_books_gradient_descent():
    optax = pytest.importorskip("optax")
    t_u, t_c = _readings(np.float32)
    fit = calibrate(t_u, t_c, params=[1.0, 0.0], solver=Optax(optax.sgd(1e-2), max_steps=300))
    assert STATUS[int(fit.status)] == "max_steps"
    learning_rate = float(np.float32(1e-2))
    path = _replay(learning_rate, [1.0, 0.0], t_u, t_c, 300)
    bound = _replay_bound(path, learning_rate, t_u, t_c, _unit(np.float32))
    assert np.linalg.norm(np.asarray(fit.params, np.float64) - path[-1]) <= bound


@float32_only
@pytest.mark.standard_promotion
@pytest.mark.parametrize("build", ["adam", "lbfgs"])
def test_optax_reaches_the_least_squares_answer(build):
    optax = pytest.importorskip("optax")
    optimizer = optax.adam(0.1) if build == "adam" else optax.lbfgs()
    t_u, t_c = _readings(np.float32)
    fit = calibrate(t_u, t_c, params=[1.0, 0.0], solver=Optax(optimizer, max_steps=20_000, rtol=1e-7))
    assert STATUS[int(fit.status)] == "converged"
    y_star = _least_squares(t_u, t_c)
    bound = _resolution(y_star, t_u, t_c, _unit(np.float32))
    params = np.asarray(fit.params, np.float64)
    assert np.linalg.norm(params - y_star) <= bound
    ls = np.asarray(calibrate(t_u, t_c, solver=LeastSquares()).params, np.float64)
    assert np.linalg.norm(params - ls) <= bound + np.linalg.norm(ls - y_star)
    # the check can fail: a run of the book's gradient descent 2000 steps long ends farther away
    assert np.linalg.norm(_replay(1e-2, [1.0, 0.0], t_u, t_c, 2000)[-1] - y_star) > bound


@float32_only
@pytest.mark.standard_promotion
def test_optax_diverging_is_status_nonfinite():
    optax = pytest.importorskip("optax")
    t_u, t_c = np.asarray(data.t_u), np.asarray(data.t_c)
    fn, args = _residuals(t_u, t_c)
    solution = jax.jit(iterate, static_argnums=1)(Optax(optax.sgd(1.0)), fn, jnp.asarray([1.0, 0.0]), args)
    assert STATUS[int(solution.status)] == "nonfinite"
    assert np.isfinite(np.asarray(solution.value)).all()


# -- float64, in a fresh interpreter ----------------------------------------------------------------------


@float32_only
def test_float64_cases_in_a_fresh_interpreter():
    done = pytest_with_x64("-k", "float64", str(HERE / "test_solvers_gd.py"))
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in done.stdout
    assert " failed" not in done.stdout
