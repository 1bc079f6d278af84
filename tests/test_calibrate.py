"""calibrate: least squares and Levenberg-Marquardt as solver values, with each fit's uncertainty.

The float32 checks run here; the float64 ones (SciPy as the oracle, NIST's certified values) run in a
fresh interpreter with JAX_ENABLE_X64=1 (test_float64_cases_in_a_fresh_interpreter), since x64 is a
start-up choice.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import nist_strd
import numpy as np
import pytest
from programs import pytest_with_x64

from jaxcal import Calibrated, calibrate, data
from jaxcal import model as jaxcal_linear
from jaxcal.solvers import STATUS, LeastSquares, LevenbergMarquardt

HERE = Path(__file__).parent
X64 = bool(jax.config.jax_enable_x64)
float64_only = pytest.mark.skipif(not X64, reason="JAX_ENABLE_X64=1: test_float64_cases_in_a_fresh_interpreter")
float32_only = pytest.mark.skipif(X64, reason="the float32 checks run in the main process")
EPS32 = float(np.finfo(np.float32).eps)


def misra1a(t_u, b1, b2):
    """NIST's Misra1a model, ``b1 * (1 - exp(-b2 * t_u))``."""
    return b1 * (1 - jnp.exp(-b2 * t_u))


MISRA1A_START = (500.0, 1e-4)  # NIST's Start 1


def _fleet(sensors: int, n: int, seed: int, model: str = "linear") -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    t_u = rng.uniform(20, 80, (sensors, n))
    if model == "misra1a":
        t_u = 10 * t_u
        b1, b2 = rng.uniform(0.8, 1.2, (2, sensors, 1)) * np.array([238.94, 5.5e-4])[:, None, None]
        t_c = b1 * (1 - np.exp(-b2 * t_u)) + rng.normal(0, 0.1, t_u.shape)
    else:
        t_c = rng.uniform(0.4, 0.6, (sensors, 1)) * t_u - 17 + rng.normal(0, 1, t_u.shape)
    return t_u.astype(np.float32), t_c.astype(np.float32)


def _rounding_bound(model, params: np.ndarray, t_u: np.ndarray, t_c: np.ndarray, rtol: float = 0.0) -> np.ndarray:
    """How far a float32 solution of a fit may lie from another, or from the exact one, per param.

    First-order perturbation of a least-squares solution: changing each residual by ``e_j`` moves the
    params by ``pinv(J) @ e``, and float32 rounds each residual by about ``eps * (|t_c| + |t_p|)``; a
    backward-stable solve (the column-scaled SVD) adds ``cond * eps * |params|``, ``cond`` the scaled
    Jacobian's condition number. 16 covers the few roundings on the way to each. An iterative solver
    stops within its tolerance, ``rtol * |params|``, of its fixed point. Computed in float64 by NumPy.
    """
    t_u, t_c = np.asarray(t_u, np.float64), np.asarray(t_c, np.float64)
    p = np.asarray(params, np.float64)
    k = p.size
    with jax.numpy_dtype_promotion("standard"):
        t_p = np.asarray(model(t_u, *p), np.float64)
        steps = np.maximum(np.abs(p) * 1e-6, 1e-12)
        jac = np.stack([(np.asarray(model(t_u, *(p + steps[i] * np.eye(k)[i])), np.float64) - t_p) / steps[i]
                        for i in range(k)], axis=1)
    condition = np.linalg.cond(jac / np.linalg.norm(jac, axis=0))
    data_rounding = np.abs(np.linalg.pinv(jac)) @ (np.abs(t_c) + np.abs(t_p))
    return 16 * EPS32 * (data_rounding + condition * np.abs(p)) + rtol * np.abs(p)


# -- float32, in this process -------------------------------------------------------------------------


@float32_only
def test_the_books_line_is_least_squares_with_its_uncertainty():
    fit = calibrate(data.t_u, data.t_c)
    assert isinstance(fit, Calibrated)
    assert fit.param_names == ("w", "b")
    assert fit.params.dtype == fit.cov.dtype == np.float32
    assert STATUS[int(fit.status)] == "converged"
    assert int(fit.steps) == 1
    # the oracle: NumPy's float64 least squares and the textbook covariance on the same float32 readings
    x, y = np.asarray(data.t_u, np.float64), np.asarray(data.t_c, np.float64)
    design = np.stack([x, np.ones_like(x)], axis=1)
    params, rss, *_ = np.linalg.lstsq(design, y, rcond=None)
    dof = x.size - 2
    cov = rss[0] / dof * np.linalg.inv(design.T @ design)
    bound = _rounding_bound(lambda t, w, b: w * t + b, params, x, y)
    np.testing.assert_array_less(np.abs(np.asarray(fit.params, np.float64) - params), bound)
    assert int(fit.dof) == dof
    # rss, cov and R² follow from params within the same rounding: their relative error is that of
    # params (at most bound / |params|, a few 1e-6 here) times the few operations that form them
    rel = 10 * float(np.max(bound / np.abs(params)))
    np.testing.assert_allclose(float(fit.rss), rss[0], rtol=rel)
    np.testing.assert_allclose(np.asarray(fit.cov, np.float64), cov, rtol=rel)
    np.testing.assert_allclose(np.asarray(fit.stderr, np.float64), np.sqrt(np.diag(cov)), rtol=rel)
    np.testing.assert_allclose(float(fit.residual_sd), np.sqrt(rss[0] / dof), rtol=rel)
    np.testing.assert_allclose(float(fit.r_squared), 1 - rss[0] / np.sum((y - y.mean()) ** 2), rtol=rel)


@float32_only
@pytest.mark.parametrize("model", ["linear", "misra1a"])
def test_a_fleet_is_each_sensor_fitted_alone(model):
    t_u, t_c = _fleet(7, 14, seed=3, model=model)
    fn = misra1a if model == "misra1a" else "linear"
    params = MISRA1A_START if model == "misra1a" else None
    fleet = calibrate(t_u, t_c, model=fn, params=params)
    assert fleet.params.shape == (7, 2)
    assert fleet.cov.shape == (7, 2, 2)
    assert fleet.status.shape == (7,)
    for s in range(7):
        alone = calibrate(t_u[s], t_c[s], model=fn, params=params)
        assert int(fleet.status[s]) == int(alone.status) == 0
        # the batched and the single program round differently (XLA vectorises them differently)
        # LevenbergMarquardt's default rtol in float32 is eps ** (2 / 3)
        bound = _rounding_bound(misra1a if model == "misra1a" else (lambda t, w, b: w * t + b),
                                np.asarray(alone.params, np.float64), t_u[s], t_c[s],
                                rtol=EPS32 ** (2 / 3) if model == "misra1a" else 0.0)
        np.testing.assert_array_less(np.abs(np.asarray(fleet.params[s] - alone.params, np.float64)), 2 * bound)
        rel = 10 * float(np.max(bound / np.abs(np.asarray(alone.params, np.float64))))
        np.testing.assert_allclose(fleet.stderr[s], alone.stderr, rtol=rel)
        assert int(fleet.dof[s]) == int(alone.dof) == 12


@float32_only
def test_a_ragged_fleet_by_mask_is_each_sensor_on_its_own_readings():
    t_u, t_c = _fleet(4, 11, seed=4)
    counts = [11, 5, 3, 8]
    mask = np.arange(11)[None, :] < np.array(counts)[:, None]
    padded_u, padded_c = t_u.copy(), t_c.copy()
    padded_u[~mask], padded_c[~mask] = np.nan, 1e30  # padding may hold anything: it must not count
    fleet = calibrate(padded_u, padded_c, mask=mask)
    for s, count in enumerate(counts):
        alone = calibrate(t_u[s, :count], t_c[s, :count])
        assert int(fleet.dof[s]) == int(alone.dof) == count - 2
        bound = _rounding_bound(lambda t, w, b: w * t + b, np.asarray(alone.params, np.float64), t_u[s, :count],
                                t_c[s, :count])
        np.testing.assert_array_less(np.abs(np.asarray(fleet.params[s] - alone.params, np.float64)), 2 * bound)
        rel = 10 * float(np.max(bound / np.abs(np.asarray(alone.params, np.float64))))
        np.testing.assert_allclose(fleet.stderr[s], alone.stderr, rtol=rel)
        np.testing.assert_allclose(fleet.r_squared[s], alone.r_squared, rtol=rel)


@float32_only
@pytest.mark.parametrize("solver", [LeastSquares(), LevenbergMarquardt()], ids=["least_squares", "lm"])
def test_readings_at_one_t_u_leave_the_line_undetermined(solver):
    t_u = np.full(6, 3.0, np.float32)
    fit = calibrate(t_u, np.arange(6, dtype=np.float32), solver=solver)
    assert STATUS[int(fit.status)] == "undetermined"
    assert np.isnan(fit.params).all()
    assert np.isnan(fit.stderr).all()


@float32_only
def test_an_undetermined_sensor_does_not_disturb_its_fleet():
    t_u, t_c = _fleet(3, 11, seed=5)
    t_u[1] = 3.0
    fleet = calibrate(t_u, t_c)
    assert [STATUS[int(s)] for s in fleet.status] == ["converged", "undetermined", "converged"]
    params = np.asarray(fleet.params)
    assert np.isfinite(params[[0, 2]]).all()
    assert np.isnan(params[1]).all()


@float32_only
def test_a_model_that_overflows_is_a_status_not_an_exception():
    def growth(t_u, a, b):
        return a * jnp.exp(b * t_u)

    t_u = np.linspace(0, 10, 8, dtype=np.float32)
    fit = calibrate(t_u, t_u, model=growth, params=[1.0, 50.0])  # exp(500) overflows float32
    assert STATUS[int(fit.status)] == "nonfinite"
    assert np.isnan(fit.params).all()


@float32_only
def test_a_fit_out_of_steps_says_so():
    t_u, t_c = _fleet(1, 14, seed=6, model="misra1a")
    fit = calibrate(t_u[0], t_c[0], model=misra1a, params=MISRA1A_START, solver=LevenbergMarquardt(max_steps=2))
    assert STATUS[int(fit.status)] == "max_steps"
    assert int(fit.steps) == 2


@float32_only
def test_least_squares_on_a_nonlinear_model_is_not_converged():
    # one Gauss-Newton step from the start is not the minimum: LevenbergMarquardt from the same start finds it
    t_u = np.linspace(1.0, 4.0, 8, dtype=np.float32)
    t_c = (2.0 * np.exp(-0.5 * t_u)).astype(np.float32)
    decay = lambda t_u, a, k: a * jnp.exp(-k * t_u)  # noqa: E731
    one_step = calibrate(t_u, t_c, model=decay, params=[1.0, 1.0], solver=LeastSquares())
    solved = calibrate(t_u, t_c, model=decay, params=[1.0, 1.0], solver=LevenbergMarquardt())
    assert STATUS[int(one_step.status)] == "max_steps"
    assert STATUS[int(solved.status)] == "converged"
    assert np.abs(np.asarray(one_step.params) - [2.0, 0.5]).max() > 0.1
    # the same solver on a function linear in its params (not known to be) converges
    line = calibrate(t_u, t_c, model=lambda t_u, w, b: w * t_u + b, params=[0.0, 0.0], solver=LeastSquares())
    assert STATUS[int(line.status)] == "converged"


def test_a_fleet_compiles_once(compiles):
    t_u, t_c = _fleet(33, 14, seed=7, model="misra1a")
    solver = LevenbergMarquardt(rtol=1e-4)  # a value never used elsewhere in these tests: a fresh program
    first = calibrate(t_u, t_c, model=misra1a, params=MISRA1A_START, solver=solver)
    again = calibrate(t_u[::-1].copy(), t_c[::-1].copy(), model=misra1a, params=MISRA1A_START,
                      solver=LevenbergMarquardt(rtol=1e-5))  # a new tolerance is a traced leaf: no recompile
    assert compiles.count("_fit_fleet") == 1
    assert (first.status == 0).all()
    assert (again.status == 0).all()


@float32_only
def test_sigma_relative_or_absolute():
    t_u, t_c = _fleet(1, 11, seed=8)
    sigma = np.linspace(0.5, 2.0, 11, dtype=np.float32)
    relative = calibrate(t_u[0], t_c[0], sigma=sigma)
    absolute = calibrate(t_u[0], t_c[0], sigma=sigma, absolute_sigma=True)
    scaled = calibrate(t_u[0], t_c[0], sigma=4 * sigma)
    scaled_absolute = calibrate(t_u[0], t_c[0], sigma=4 * sigma, absolute_sigma=True)
    # float32 rounding of a handful of operations on each covariance entry: 1e3 eps is far above it
    rtol = 1e3 * EPS32
    # relative sigma: only their ratios matter
    np.testing.assert_allclose(scaled.cov, relative.cov, rtol=rtol)
    # absolute sigma: the covariance is (J^T J)^-1 of the weighted Jacobian, scaling as sigma**2,
    # and it is the relative one without the reduced chi-square
    np.testing.assert_allclose(scaled_absolute.cov, 16 * absolute.cov, rtol=rtol)
    np.testing.assert_allclose(absolute.cov * (relative.rss / float(relative.dof)), relative.cov, rtol=rtol)
    # an unweighted fit is relative sigma with every sigma 1
    np.testing.assert_allclose(calibrate(t_u[0], t_c[0], sigma=np.float32(3.0)).cov, calibrate(t_u[0], t_c[0]).cov,
                               rtol=rtol)


@float32_only
def test_r_squared_only_where_the_model_has_an_intercept():
    fit = calibrate(data.t_u, data.t_c, model=lambda t_u, w, b: w * t_u + b, solver=LeastSquares())
    assert np.isnan(fit.r_squared)
    assert STATUS[int(fit.status)] == "converged"
    assert 0 < float(calibrate(data.t_u, data.t_c, model="quadratic").r_squared) < 1


@float32_only
def test_a_model_of_any_number_of_params():
    # fn(t_u, *params) takes as many params as the start gives; a partial's keywords are not params
    import functools

    star = calibrate(data.t_un, data.t_c, model=lambda t_u, *p: p[0] * t_u + p[1], params=[1.0, 0.0],
                     solver=LeastSquares())
    line = calibrate(data.t_un, data.t_c)
    # the same fit by another function: each within float32's bound of the exact one, so within twice it
    bound = _rounding_bound(jaxcal_linear, np.asarray(line.params), data.t_un, data.t_c)
    np.testing.assert_array_less(np.abs(np.asarray(star.params) - np.asarray(line.params)), 2 * bound)
    assert star.param_names == ("p0", "p1")

    def offset(t_u, w, b, c=0.0, *, d=0.0):
        return w * t_u + b + c + d

    fit = calibrate(data.t_un, data.t_c, model=functools.partial(offset, d=0.0), params=[1.0, 0.0, 0.0],
                    solver=LeastSquares())
    assert fit.param_names == ("w", "b", "c")


@pytest.mark.parametrize(("make", "message"), [
    (lambda: LevenbergMarquardt(damping=-1.0), "LevenbergMarquardt: damping must be a finite number above 0"),
    (lambda: LevenbergMarquardt(rtol=-1.0), "LevenbergMarquardt: rtol must be a finite number at least 0"),
    (lambda: LevenbergMarquardt(max_steps=2.5), "LevenbergMarquardt: max_steps must be a whole number"),
    (lambda: LevenbergMarquardt(max_steps=0), "LevenbergMarquardt: max_steps must be a whole number"),
    (lambda: LevenbergMarquardt(atol="x"), "LevenbergMarquardt: atol must be a finite number at least 0"),
])
def test_a_solver_setting_that_cannot_be_meant_is_refused(make, message):
    with pytest.raises(ValueError, match=message):
        make()


@float32_only
def test_a_start_whose_sum_of_squares_overflows_is_nonfinite():
    # every residual is finite (a * exp(x) up to 5e34), their squares' sum is not: not "undetermined"
    fit = calibrate(data.t_u, data.t_c, model=lambda t_u, a, k: a * jnp.exp(k * t_u), params=[1.0, 1.0])
    assert STATUS[int(fit.status)] == "nonfinite"


@float32_only
def test_fewer_readings_than_params_is_undetermined():
    # one reading cannot determine a line: the thin SVD of a 1 x 2 Jacobian has one (large) singular value
    fit = calibrate(np.array([1.0], np.float32), np.array([3.0], np.float32))
    assert STATUS[int(fit.status)] == "undetermined"
    assert np.isnan(fit.params).all()
    assert int(fit.dof) == 0  # no readings left over, not -1
    fit = calibrate(np.array([1.0, 2.0], np.float32), np.array([3.0, 4.0], np.float32), model="quadratic")
    assert STATUS[int(fit.status)] == "undetermined"
    # a sensor of a ragged fleet whose readings were all dropped: no readings, dof 0
    t_u = np.array([[1.0, 2.0, 3.0], [np.nan, np.nan, np.nan]], np.float32)
    mask = np.isfinite(t_u)
    fit = calibrate(t_u, np.nan_to_num(t_u), mask=mask)
    assert [STATUS[int(s)] for s in fit.status] == ["converged", "undetermined"]
    assert fit.dof.tolist() == [1, 0]


def test_uncertainty_takes_a_plain_count():
    from jaxcal.uncertainty import uncertainty

    jac = jnp.stack([jnp.asarray(data.t_un), jnp.ones(11)], axis=1)
    assert int(uncertainty(jac, jnp.ones(11), 11).dof) == 9


@float32_only
def test_sigma_may_be_a_whole_number():
    # sigma=1 is every reading's uncertainty in t_c's units: the unweighted fit, with absolute sigma the
    # covariance unscaled; sigma=2 doubles the standard errors of that covariance
    plain = calibrate(data.t_u, data.t_c)
    ones = calibrate(data.t_u, data.t_c, sigma=1, absolute_sigma=True)
    twos = calibrate(data.t_u, data.t_c, sigma=np.full(11, 2), absolute_sigma=True)
    np.testing.assert_array_equal(ones.params, plain.params)
    np.testing.assert_allclose(twos.stderr, 2 * ones.stderr, rtol=16 * np.finfo(np.float32).eps)


@float32_only
@pytest.mark.parametrize(("kwargs", "error", "message"), [
    (dict(t_u=np.ones((2, 3, 4), np.float32)), ValueError, "t_u: must be (n,) for one sensor or (sensors, n)"),
    (dict(t_u=np.arange(5)), TypeError, "t_u: must be a floating-point array, got 5 values of shape (5,)"),
    (dict(t_c=np.ones(4, np.float32)), ValueError, "t_c: must have t_u's shape (5,), got (4,)"),
    (dict(t_c=np.array([1, 2, np.nan, 4, 5], np.float32)), ValueError, "t_c: reading 2 is nan; it must be finite"),
    (dict(sigma=np.array([1, 1, 0, 1, 1], np.float32)), ValueError, "sigma: 0.0 at index 2 must be positive"),
    (dict(mask=np.ones(5)), TypeError, "mask: must be a bool array"),
    (dict(model="cubic"), ValueError, "model: unknown model 'cubic'"),
    (dict(model=misra1a), ValueError, "params: a model function needs start values"),
    (dict(params=[1.0, 2.0, 3.0]), ValueError, "params: the model takes 2 (w, b), got 3"),
    (dict(solver="lm"), TypeError, "solver: must be a solver value (jaxcal.solvers), got 'lm'"),
    (dict(solver=LeastSquares), TypeError, "solver: pass a solver value, e.g. LeastSquares(), not the class"),
    (dict(model=lambda t_u, *p: p[0] * t_u + p[1], params=[1.0]), ValueError,
     "model: calling it with t_u of shape (5,) and 1 params failed: IndexError"),
    (dict(model=lambda t_u, a, b: jnp.ones(3), params=[1.0, 0.0]), ValueError,
     "model: must return one prediction per reading, shape (5,); it returned shape (3,)"),
    (dict(t_u=[[1.0, 2.0], [3.0]]), TypeError, "t_u: must be an array of numbers, got a list"),
])
def test_bad_input_is_one_line_naming_the_argument(kwargs, error, message):
    args = dict(t_u=np.arange(5, dtype=np.float32), t_c=np.arange(5, dtype=np.float32))
    args.update(kwargs)
    with pytest.raises(error) as raised:
        calibrate(args.pop("t_u"), args.pop("t_c"), **args)
    assert str(raised.value).startswith(message)
    assert "\n" not in str(raised.value)
    assert len(str(raised.value)) < 300


@float32_only
def test_float64_cases_in_a_fresh_interpreter():
    pytest.importorskip("scipy")
    done = pytest_with_x64("-k", "float64", str(HERE / "test_calibrate.py"))
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in done.stdout
    assert " failed" not in done.stdout


# -- float64, run by the test above ------------------------------------------------------------------

# Two float64 computations of one well-conditioned fit agree to about cond * eps (cond of the scaled
# design below 1e4 here: 1e-12); 1e-9 relative is the float64 agreement figure, with margin.
RTOL64 = 1e-9


@float64_only
@pytest.mark.parametrize("model", ["linear", "quadratic"])
@pytest.mark.parametrize("absolute_sigma", [False, True])
def test_float64_least_squares_matches_scipy_curve_fit(model, absolute_sigma):
    scipy_optimize = pytest.importorskip("scipy.optimize")
    rng = np.random.default_rng(9)
    t_u = rng.uniform(20, 80, 15)
    t_c = 0.002 * t_u**2 + 0.5 * t_u - 17 + rng.normal(0, 1, 15)
    sigma = rng.uniform(0.5, 2, 15)
    fit = calibrate(t_u, t_c, model=model, sigma=sigma, absolute_sigma=absolute_sigma)
    assert fit.params.dtype == np.float64
    columns = [t_u**2] * (model == "quadratic") + [t_u, np.ones_like(t_u)]

    def fn(x, *p):
        return sum(pi * c for pi, c in zip(p, columns, strict=True))

    def jac(x, *p):
        return np.stack(columns, axis=1)

    # MINPACK iterates even for a linear model: tolerances at float64's resolution and the exact Jacobian
    # (not finite differences, good to 1e-8) make it the solution and its covariance
    params, cov = scipy_optimize.curve_fit(fn, t_u, t_c, p0=np.zeros(len(columns)), sigma=sigma, jac=jac,
                                           absolute_sigma=absolute_sigma, xtol=1e-15, ftol=1e-15, gtol=1e-15)
    np.testing.assert_allclose(fit.params, params, rtol=RTOL64)
    np.testing.assert_allclose(fit.cov, cov, rtol=RTOL64)
    np.testing.assert_allclose(fit.stderr, np.sqrt(np.diag(cov)), rtol=RTOL64)


@float64_only
def test_float64_levenberg_marquardt_matches_scipy_lm_fleet():
    scipy_optimize = pytest.importorskip("scipy.optimize")
    # 100 sensors: LM that refused the last steps near the minimum (rounding made f no smaller) stopped up
    # to 8e-9 short of it on about 3% of such fits
    sensors = 100
    t_u, t_c = _fleet(sensors, 14, seed=10, model="misra1a")
    t_u, t_c = t_u.astype(np.float64), t_c.astype(np.float64)
    fleet = calibrate(t_u, t_c, model=misra1a, params=MISRA1A_START)
    assert fleet.params.dtype == np.float64
    assert (fleet.status == 0).all()
    for s in range(sensors):
        x, y = t_u[s], t_c[s]

        def residuals(p, x=x, y=y):
            return p[0] * (1 - np.exp(-p[1] * x)) - y

        def jacobian(p, x=x):
            return np.stack([1 - np.exp(-p[1] * x), p[0] * x * np.exp(-p[1] * x)], axis=1)

        ref = scipy_optimize.least_squares(residuals, MISRA1A_START, jac=jacobian, method="lm", xtol=1e-15,
                                           ftol=1e-15, gtol=1e-15)
        # SciPy 1.16's MINPACK stops by its xtol test up to 1e-9 short of the minimum (1.17's does not);
        # Gauss-Newton steps from there converge quadratically to it, to rounding
        for _ in range(3):
            ref.x = ref.x + np.linalg.lstsq(jacobian(ref.x), -residuals(ref.x), rcond=None)[0]
        ref.cost = 0.5 * np.sum(residuals(ref.x) ** 2)
        np.testing.assert_allclose(fleet.params[s], ref.x, rtol=RTOL64)
        # NIST's convention, with a column-scaled inverse in the oracle as well
        jac = jacobian(ref.x)
        norms = np.linalg.norm(jac, axis=0)
        inverse = np.linalg.pinv((jac / norms).T @ (jac / norms)) / np.outer(norms, norms)
        cov = 2 * ref.cost / (x.size - 2) * inverse
        np.testing.assert_allclose(fleet.cov[s], cov, rtol=RTOL64)
        np.testing.assert_allclose(fleet.rss[s], 2 * ref.cost, rtol=RTOL64)


# NIST's certified values (tests/nist, read by nist_strd.py): the figures, in significant digits
LINEAR_DIGITS, NONLINEAR_DIGITS, RSS_DIGITS = 10, 6, 9


@float64_only
@pytest.mark.parametrize(("name", "model"), [("Norris", "linear"), ("Pontius", "quadratic")])
def test_float64_nist_linear_problems_to_10_digits(name, model):
    problem = nist_strd.load(name)
    fit = calibrate(problem.x, problem.y, model=model)
    assert STATUS[int(fit.status)] == "converged"
    assert int(fit.dof) == problem.dof
    rtol = 10.0**-LINEAR_DIGITS
    # NIST lists B0 (the intercept) first; jaxcal's params end with it
    np.testing.assert_allclose(fit.params[::-1], problem.params, rtol=rtol)
    np.testing.assert_allclose(fit.stderr[::-1], problem.stderr, rtol=rtol)
    np.testing.assert_allclose(fit.residual_sd, problem.residual_sd, rtol=rtol)
    np.testing.assert_allclose(fit.r_squared, problem.r_squared, rtol=rtol)


@float64_only
@pytest.mark.parametrize("start", [1, 2])
@pytest.mark.parametrize("name", nist_strd.NONLINEAR)
def test_float64_nist_nonlinear_problems_from_both_starts(name, start):
    problem = nist_strd.load(name)
    fit = calibrate(problem.x, problem.y, model=nist_strd.MODELS[name],
                    params=problem.start1 if start == 1 else problem.start2)
    assert STATUS[int(fit.status)] == "converged"
    assert int(fit.dof) == problem.dof
    np.testing.assert_allclose(fit.params, problem.params, rtol=10.0**-NONLINEAR_DIGITS)
    if name == "Lanczos1":
        return  # its certified rss, 1.4e-25, is below what float64 residuals of size 1 resolve: params only
    np.testing.assert_allclose(fit.stderr, problem.stderr, rtol=10.0**-NONLINEAR_DIGITS)
    np.testing.assert_allclose(fit.rss, problem.rss, rtol=10.0**-RSS_DIGITS)


# -- a fleet over several devices, in processes of their own (the CPU device count is a start-up choice) ----

SPLIT = """
import json, sys, jax
jax.config.update("jax_num_cpu_devices", int(sys.argv[1]))
import numpy as np, jax.numpy as jnp
from jaxcal import calibrate
rng = np.random.default_rng(5)
n = 1001  # no device count divides it: every device's share is padded
t_u = rng.uniform(2, 8, (n, 11)).astype(np.float32)
t_c = (5.4 * t_u - 17 + rng.normal(0, 1, t_u.shape)).astype(np.float32)
mask = np.arange(11)[None, :] < np.where(np.arange(n) % 7 == 0, 6, 11)[:, None]
lines = calibrate(t_u, t_c, mask=mask)
x = 100 * t_u
y = (250 * (1 - np.exp(-5e-4 * x)) + rng.normal(0, 0.1, x.shape)).astype(np.float32)
curves = calibrate(x, y, model=lambda t_u, b1, b2: b1 * (1 - jnp.exp(-b2 * t_u)), params=[500.0, 1e-4])
print(json.dumps({"devices": len(jax.devices()), "lines": np.asarray(lines.params).tolist(),
                  "curves": np.asarray(curves.params).tolist(), "status": np.asarray(curves.status).tolist(),
                  "data": [t_u.tolist(), t_c.tolist(), mask.tolist(), x.tolist(), y.tolist()]}))
"""


@pytest.mark.slow
@float32_only
def test_a_fleet_over_three_devices_is_each_sensor_as_on_one():
    runs = []
    for devices in (1, 3):
        done = subprocess.run([sys.executable, "-c", SPLIT, str(devices)], capture_output=True, text=True,
                              timeout=600, check=False)
        assert done.returncode == 0, done.stderr[-2000:]
        runs.append(json.loads(done.stdout.splitlines()[-1]))
    one, three = runs
    assert (one["devices"], three["devices"]) == (1, 3)
    assert one["status"] == three["status"]
    t_u, t_c, mask, x, y = (np.asarray(v) for v in one["data"])
    # Each device fits its share in tiles of another size, so the roundings differ: each run lies within the
    # float32 bound of the exact fit (LM: within its tolerance eps ** (2 / 3) of its fixed point too), so the
    # two within twice it. A sensor fitted on another's readings, or a padding row kept, is far outside.
    for s in range(len(t_u)):
        line = _rounding_bound(jaxcal_linear, np.asarray(one["lines"][s]), t_u[s][mask[s]], t_c[s][mask[s]])
        np.testing.assert_array_less(np.abs(np.subtract(one["lines"][s], three["lines"][s])), 2 * line)
        curve = _rounding_bound(misra1a, np.asarray(one["curves"][s]), x[s], y[s], rtol=EPS32 ** (2 / 3))
        np.testing.assert_array_less(np.abs(np.subtract(one["curves"][s], three["curves"][s])), 2 * curve)
