"""predict and predict_table: converted readings with confidence and prediction intervals.

The float32 checks run here; the float64 ones (statsmodels' OLS prediction as the oracle, on the book's
data and NIST's Norris and Pontius) run in a fresh interpreter with JAX_ENABLE_X64=1
(test_float64_cases_in_a_fresh_interpreter), since x64 is a start-up choice.
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import nist_strd
import numpy as np
import pytest
from programs import pytest_with_x64

from jaxcal import calibrate, data
from jaxcal._checks import InvalidInput, InvalidType
from jaxcal.intervals import Prediction, predict, predict_table, table_predictor
from jaxcal.solvers import LevenbergMarquardt

HERE = Path(__file__).parent
X64 = bool(jax.config.jax_enable_x64)
float64_only = pytest.mark.skipif(not X64, reason="JAX_ENABLE_X64=1: test_float64_cases_in_a_fresh_interpreter")
float32_only = pytest.mark.skipif(X64, reason="the float32 checks run in the main process")
EPS32 = float(np.finfo(np.float32).eps)


def misra1a(t_u, b1, b2):
    """NIST's Misra1a model, ``b1 * (1 - exp(-b2 * t_u))``."""
    return b1 * (1 - jnp.exp(-b2 * t_u))


def _close(got, want, atol) -> None:
    """``|got - want| <= atol`` elementwise (``atol`` an array: each entry's own bound), NaN nowhere."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    excess = np.abs(got - want) - atol
    assert np.isfinite(excess).all(), (got, want)
    assert (excess <= 0).all(), f"max |got - want| - bound = {excess.max():.3g}: {got} against {want}"


def _two_sensors() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Two calibrations of the book's data (the second on its readings shifted): params, cov,
    residual_sd, dof, each with a leading axis of 2."""
    t_u = np.stack([data.t_u, data.t_u + np.float32(3)])
    t_c = np.stack([data.t_c, data.t_c])
    fit = calibrate(t_u, t_c)
    return np.asarray(fit.params), np.asarray(fit.cov), np.asarray(fit.residual_sd), np.asarray(fit.dof)


# -- float32, in this process -------------------------------------------------------------------------


@float32_only
@pytest.mark.parametrize("interval", ["prediction", "confidence"])
def test_one_calibration_is_the_formula_written_out(interval):
    fit = calibrate(data.t_u, data.t_c)
    t_u = np.array([20.0, 45.5, 90.0], np.float32)
    out = predict(t_u, fit.params, fit.cov, residual_sd=fit.residual_sd, dof=fit.dof, interval=interval)
    assert isinstance(out, Prediction)
    assert all(v.dtype == np.float32 and v.shape == (3,) for v in out)
    # the same formula in float64 NumPy from the float32 fit: w t + b +- t_q sqrt(g C g (+ s^2)), g = (t, 1)
    from scipy import stats

    w, b = np.asarray(fit.params, np.float64)
    cov = np.asarray(fit.cov, np.float64)
    x = t_u.astype(np.float64)
    variance = cov[0, 0] * x**2 + 2 * cov[0, 1] * x + cov[1, 1]
    if interval == "prediction":
        variance = variance + float(fit.residual_sd) ** 2
    half = stats.t.ppf(0.975, int(fit.dof)) * np.sqrt(variance)
    # float32: a few roundings per term (t_q, t^2 C, the sum, the root, t_c +- half), each 1/2 ulp of
    # the largest magnitude in play, |t_c| + half; 8 covers them
    scale = np.abs(w * x + b) + half
    _close(out.t_c, w * x + b, 8 * EPS32 * scale)
    _close(out.high - out.t_c, half, 8 * EPS32 * scale)
    _close(out.t_c - out.low, half, 8 * EPS32 * scale)


@float32_only
def test_a_log_mixing_two_sensors_and_none_converts_each_reading_through_its_own():
    params, cov, residual_sd, dof = _two_sensors()
    t_u = np.array([30.0, 30.0, 55.0, -3.0, 55.0, 70.0], np.float32)
    rows = np.array([0, 1, -1, 1, 0, -1])
    table = predict_table(t_u, rows, params, cov, residual_sd, dof)
    per_row = predict(t_u[rows >= 0], params[rows[rows >= 0]], cov[rows[rows >= 0]],
                      residual_sd=residual_sd[rows[rows >= 0]], dof=dof[rows[rows >= 0]])
    for s in (0, 1):
        alone = predict(t_u[rows == s], params[s], cov[s], residual_sd=residual_sd[s], dof=dof[s])
        for got, want, by_row in zip(table, alone, per_row, strict=True):
            # the same packed numbers through the same formula: XLA may fuse (contract a multiply-add)
            # differently per program, 1 ulp per operation of ~8, at the magnitudes in play
            atol = 8 * EPS32 * (np.abs(np.asarray(want)) + np.abs(np.asarray(alone.high - alone.t_c)))
            _close(got[rows == s], want, atol)
            _close(np.asarray(by_row)[rows[rows >= 0] == s], want, atol)
    assert np.isnan(np.stack(table)[:, rows == -1]).all()
    assert np.isfinite(np.stack(table)[:, rows >= 0]).all()
    # the two sensors really differ where the log mixes them (else the rows could be ignored unseen)
    assert abs(float(table.t_c[0] - table.t_c[1])) > 1.0


def test_a_log_in_parts_through_one_predictor_is_the_log_whole_and_packs_the_calibrations_once(monkeypatch):
    import jaxcal.intervals

    params, cov, residual_sd, dof = _two_sensors()
    t_u = np.array([30.0, 30.0, 55.0, -3.0, 55.0, 70.0], np.float32)
    rows = np.array([0, 1, -1, 1, 0, -1])
    whole = predict_table(t_u, rows, params, cov, residual_sd, dof)
    packed = []
    table = jaxcal.intervals._table
    monkeypatch.setattr(jaxcal.intervals, "_table", lambda *a: packed.append(a) or table(*a))
    convert = table_predictor(params, cov, residual_sd, dof)
    parts = [convert(t_u[lo:hi], rows[lo:hi]) for lo, hi in ((0, 4), (4, 5), (5, 6))]
    for got, want in zip(zip(*parts, strict=True), whole, strict=True):  # the same program's numbers: equal
        np.testing.assert_array_equal(np.concatenate(got), want)
    assert len(packed) == 1
    with pytest.raises(InvalidInput, match=r"rows: 2 is not a calibration's index"):
        convert(t_u[:1], np.array([2]))


@float32_only
def test_one_bad_row_is_nan_and_the_others_are_not():
    params, cov, residual_sd, dof = _two_sensors()
    m = 5
    p = np.repeat(params[:1], m, 0)
    c = np.repeat(cov[:1], m, 0)
    sd = np.repeat(residual_sd[:1], m)
    d = np.repeat(dof[:1], m)
    t_u = np.full(m, 50.0, np.float32)
    d[1] = 0  # no degrees of freedom: no t quantile
    p[2, 0] = np.nan  # a fit that failed
    t_u[3] = np.inf  # a reading that is not a number
    c[4] = np.nan  # params without a covariance
    out = predict(t_u, p, c, residual_sd=sd, dof=d)
    t_c, low, high = (np.asarray(v) for v in out)
    assert np.isfinite([t_c[0], low[0], high[0]]).all()
    assert np.isfinite(t_c[1])
    assert np.isnan([low[1], high[1]]).all()
    assert np.isnan([t_c[2], low[2], high[2]]).all()
    assert np.isnan([t_c[3], low[3], high[3]]).all()
    assert np.isfinite(t_c[4])
    assert np.isnan([low[4], high[4]]).all()
    # a calibration table with a bad sensor: only its readings
    d2 = dof.copy()
    d2[1] = -1
    out = predict_table(np.full(4, 50.0, np.float32), np.array([0, 1, 0, 1]), params, cov, residual_sd, d2)
    assert np.isfinite(np.stack(out)[:, [0, 2]]).all()
    assert np.isnan(np.stack(out)[1:, [1, 3]]).all()
    assert np.isfinite(np.asarray(out.t_c)[[1, 3]]).all()


@float32_only
def test_dof_none_is_the_normal_quantile_and_confidence_ignores_residual_sd():
    fit = calibrate(data.t_u, data.t_c)
    t_u = np.array([50.0], np.float32)
    from scipy import stats

    normal = predict(t_u, fit.params, fit.cov, residual_sd=fit.residual_sd)
    student = predict(t_u, fit.params, fit.cov, residual_sd=fit.residual_sd, dof=fit.dof)
    ratio = float((normal.high - normal.t_c)[0] / (student.high - student.t_c)[0])
    want = stats.norm.ppf(0.975) / stats.t.ppf(0.975, int(fit.dof))
    assert abs(ratio - want) < 16 * EPS32  # a quotient of two half-widths, each a few roundings
    a = predict(t_u, fit.params, fit.cov, residual_sd=fit.residual_sd, dof=fit.dof, interval="confidence")
    b = predict(t_u, fit.params, fit.cov, dof=fit.dof, interval="confidence")
    np.testing.assert_array_equal(np.stack(a), np.stack(b))
    assert float((a.high - a.low)[0]) < float((student.high - student.low)[0])


def _fit_for_errors():
    params, cov, residual_sd, dof = _two_sensors()
    return params[0], cov[0], residual_sd[0], dof[0]


BAD = [
    (lambda p, c, s, d: predict(np.ones(3, np.float32), p, c, residual_sd=s, dof=d, level=1.0), InvalidInput,
     "level: must lie strictly between 0 and 1, got 1.0"),
    (lambda p, c, s, d: predict(np.ones(3, np.float32), p, c, residual_sd=s, dof=d, level=0), InvalidInput,
     "level: must lie strictly between 0 and 1, got 0"),
    (lambda p, c, s, d: predict(np.ones(3, np.float32), p, c, residual_sd=s, dof=d, level="95%"), InvalidType,
     "level: must be a number between 0 and 1, got '95%'"),
    (lambda p, c, s, d: predict(np.ones(3, np.float32), p, c, residual_sd=s, interval="mean"), InvalidInput,
     "interval: must be one of prediction, confidence, got 'mean'"),
    (lambda p, c, s, d: predict(np.ones(3, np.float32), p, c, dof=d), InvalidInput,
     "residual_sd: the prediction interval needs the fit's residual_sd (or interval='confidence')"),
    (lambda p, c, s, d: predict(np.ones(3, np.float32), p, c[:1], residual_sd=s), InvalidInput,
     "cov: must have shape (2, 2), got (1, 2)"),
    (lambda p, c, s, d: predict(np.ones(3, np.float32), np.stack([p, p]), np.stack([c, c]), residual_sd=s),
     InvalidInput, "params: must have shape (3, 2), one row per reading, got (2, 2)"),
    (lambda p, c, s, d: predict(np.ones(3, np.float32), p, c, residual_sd=np.ones(2, np.float32)), InvalidInput,
     "residual_sd: must have shape () or (3,), got (2,)"),
    (lambda p, c, s, d: predict(np.ones((3, 1), np.float32), p, c, residual_sd=s), InvalidInput,
     "t_u: must be 1-D (one value per reading), got shape (3, 1)"),
    (lambda p, c, s, d: predict(np.ones(3, np.int32), p, c, residual_sd=s), InvalidType,
     "t_u: must be a floating-point array, got 3 values of shape (3,) (int32: 1, 1, 1)"),
    (lambda p, c, s, d: predict(np.ones(3, np.float32), p, c, model="quadratic", residual_sd=s), InvalidInput,
     "params: the model takes 3 (w2, w1, b), got 2"),
    (lambda p, c, s, d: predict_table(np.ones(3, np.float32), np.array([0, 2, -1]), p[None], c[None], s), InvalidInput,
     "rows: 2 is not a calibration's index: each must be -1 (none) or in [0, 1)"),
    (lambda p, c, s, d: predict_table(np.ones(3, np.float32), np.array([0, -2, -1]), p[None], c[None], s),
     InvalidInput, "rows: -2 is not a calibration's index: each must be -1 (none) or in [0, 1)"),
    (lambda p, c, s, d: predict_table(np.ones(3, np.float32), np.zeros(3), p[None], c[None], s), InvalidType,
     "rows: must be integers (each reading's calibration), got 3 values of shape (3,) (float64: 0.0, 0.0, 0.0)"),
    (lambda p, c, s, d: predict_table(np.ones(3, np.float32), np.zeros(2, int), p[None], c[None], s), InvalidInput,
     "rows: must have shape (3,), t_u's, got (2,)"),
    (lambda p, c, s, d: predict_table(np.ones(3, np.float32), np.zeros(3, int), p[None], c[None], s,
                                      np.ones(2, int)), InvalidInput, "dof: must have shape () or (1,), got (2,)"),
]


@float32_only
@pytest.mark.parametrize(("call", "error", "message"), BAD, ids=[m.partition(":")[0] + str(i) for i, (_, _, m)
                                                                  in enumerate(BAD)])
def test_bad_arguments_are_one_line_errors(call, error, message):
    with pytest.raises(error) as raised:
        call(*_fit_for_errors())
    assert str(raised.value) == message


@float32_only
def test_prediction_interval_covers_new_readings_of_a_nonlinear_fleet():
    """2,000 simulated Misra1a-shaped sensors, 8 readings each, fitted in one call (Levenberg-Marquardt);
    one new reading per sensor, independent of the others. The fraction inside the 95% prediction
    interval (of the true value for the confidence band) is a binomial proportion: within 4 standard
    deviations, 4 sqrt(0.95 * 0.05 / 2000) = 0.0195, of 0.95 (a chance of 6e-5 of failing when right).
    With so few readings the t quantile matters: the normal one (2.0 against t(6)'s 2.45) would cover about
    0.90, and leaving out the fit's own uncertainty, or the reading's scatter, covers less still."""
    sensors, n, noise = 2000, 8, 1.0
    rng = np.random.default_rng(24)
    b = rng.uniform(0.8, 1.2, (2, sensors, 1)) * np.array([238.94, 5.5e-4])[:, None, None]
    t_u = rng.uniform(200, 800, (sensors, n))
    t_c = b[0] * (1 - np.exp(-b[1] * t_u)) + rng.normal(0, noise, t_u.shape)
    fit = calibrate(t_u.astype(np.float32), t_c.astype(np.float32), model=misra1a, params=(500.0, 1e-4),
                    solver=LevenbergMarquardt())
    assert (np.asarray(fit.status) == 0).all(), "every fit converges: no sensor left out of the count"
    new_u = rng.uniform(100, 900, sensors)  # extrapolation too: the band widens there
    true = b[0, :, 0] * (1 - np.exp(-b[1, :, 0] * new_u))
    new_c = true + rng.normal(0, noise, sensors)
    bound = 4 * np.sqrt(0.95 * 0.05 / sensors)
    for interval, target in (("prediction", new_c), ("confidence", true)):
        out = predict(new_u.astype(np.float32), fit.params, fit.cov, model=misra1a, residual_sd=fit.residual_sd,
                      dof=fit.dof, interval=interval)
        inside = float(np.mean((np.asarray(out.low) <= target) & (target <= np.asarray(out.high))))
        assert abs(inside - 0.95) < bound, (interval, inside)


@float32_only
def test_float64_cases_in_a_fresh_interpreter():
    pytest.importorskip("statsmodels")
    done = pytest_with_x64("-k", "float64 and not fresh", str(HERE / "test_intervals.py"))
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in done.stdout
    assert " failed" not in done.stdout
    assert " skipped" not in done.stdout


# -- float64, run by the test above ------------------------------------------------------------------

CASES = [("book", "linear"), ("book", "quadratic"), ("Norris", "linear"), ("Pontius", "quadratic")]
EPS64 = float(np.finfo(np.float64).eps)


def _case(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(x, y, new)``: a problem's data and where to convert: its first readings, and across its range and
    beyond on both sides (the band widens there)."""
    if name == "book":
        x, y = data.readings(np.float64)
    else:
        problem = nist_strd.load(name)
        x, y = np.array(problem.x), np.array(problem.y)
    span = x.max() - x.min()
    return x, y, np.concatenate([x[:5], np.linspace(x.min() - span / 2, x.max() + span / 2, 9)])


def _statsmodels(x, y, new, model, level):
    """statsmodels' OLS of ``y`` on ``1, x/u (, (x/u)^2)``, ``u = max|x|``, its prediction frame at ``new``,
    and the fit in jaxcal's terms: ``(frame, params, cov, residual_sd, dof)``, the params ``(w1, b)`` or
    ``(w2, w1, b)`` in ``x``'s units.

    statsmodels takes the pseudo-inverse of the design as given: columns of ``x / u`` keep its condition
    number near the column-scaled one jaxcal's SVD sees (Pontius' unscaled ``x`` and ``x^2`` differ by 1e6
    and leave it 1e-9 off); the fitted curve, its band and ``s`` do not depend on the columns' scale."""
    sm = pytest.importorskip("statsmodels.api")
    powers = np.arange(3 if model == "quadratic" else 2)
    unit = np.abs(x).max()
    ols = sm.OLS(y, (x[:, None] / unit) ** powers).fit()
    frame = ols.get_prediction((new[:, None] / unit) ** powers).summary_frame(alpha=1 - level)
    to_x = unit ** -powers.astype(np.float64)  # p_i (x / u)^i = (p_i / u^i) x^i
    params = (np.asarray(ols.params) * to_x)[::-1]
    cov = (np.asarray(ols.cov_params()) * np.outer(to_x, to_x))[::-1, ::-1]
    return frame, params, cov, float(np.sqrt(ols.scale)), round(ols.df_resid)


def _gradients(new: np.ndarray, k: int) -> np.ndarray:
    """The models' gradient in their params at ``new``, in jaxcal's order: ``(t^2,) t, 1``."""
    return np.stack([new ** (k - 1 - i) for i in range(k)], axis=1)


@float64_only
@pytest.mark.parametrize(("name", "model"), CASES, ids=[f"{n}-{m}" for n, m in CASES])
@pytest.mark.parametrize("level", [0.95, 0.68])
def test_float64_intervals_match_statsmodels_ols_prediction(name, model, level):
    x, y, new = _case(name)
    frame, params, cov, residual_sd, dof = _statsmodels(x, y, new, model, level)
    t_c = np.asarray(frame["mean"])
    g = _gradients(new, params.size)
    # Tolerance: the same formula on the same fit (converted to x's units: one rounding per entry).
    # t_c = sum(p_i x^i) on both sides, a few roundings of each term and the sum: 8 eps sum|p_i x^i|.
    # g^T C g (+ s^2) summed term by term on both sides: 8 eps (|g|^T |C| |g| (+ s^2)) of the variance,
    # half that of its root (the t quantile is SciPy's on both sides); each end, t_c +- half, and the
    # frame's upper - mean round once more: 4 eps (|t_c| + half).
    bound_t = 8 * EPS64 * (np.abs(g) @ np.abs(params))
    spread = np.einsum("mi,ij,mj->m", np.abs(g), np.abs(cov), np.abs(g))
    for interval, upper, s2 in (("prediction", "obs_ci_upper", residual_sd**2), ("confidence", "mean_ci_upper", 0.0)):
        half = np.asarray(frame[upper]) - t_c
        variance = np.einsum("mi,ij,mj->m", g, cov, g) + s2
        bound_h = 8 * EPS64 * (spread + s2) / variance * half + bound_t + 4 * EPS64 * (np.abs(t_c) + half)
        assert (bound_h < 1e-9 * half).all(), "a bound loose enough to pass anything"
        out = predict(new, params, cov, model=model, residual_sd=residual_sd, dof=dof, level=level,
                      interval=interval)
        assert out.t_c.dtype == np.float64
        _close(out.t_c, t_c, bound_t)
        _close(out.high - out.t_c, half, bound_h)
        _close(out.t_c - out.low, half, bound_h)


@float64_only
def test_float64_calibrate_then_predict_matches_statsmodels_on_the_books_data():
    model = "linear"  # the quadratic's params and cov in jaxcal's order are the test above's
    x, y, new = _case("book")
    frame, _, _, _, _ = _statsmodels(x, y, new, model, 0.95)
    fit = calibrate(x, y, model=model)
    assert fit.params.dtype == np.float64
    assert int(fit.status) == 0
    # Tolerance: two least-squares solutions, each backward stable. As test_calibrate's _rounding_bound:
    # rounding each t_c by eps (|t_c| + |t_p|) moves the params by |pinv(X)| @ that, and the solve adds
    # cond * eps * |p| (cond: the column-scaled design's condition number); t_c = sum(p_i x^i) carries
    # that through |x^i|, plus its own roundings of sum|p_i x^i|. The half-width: s^2 = rss / dof moves by
    # 2 sum|r| eps (|t_c| + |t_p|) / rss, (X^T X)^-1 by cond * eps relative, which g^T C g summed term by
    # term amplifies by |g|^T |C| |g| / g^T C g. 16 covers the few roundings on the way to each.
    params, cov = np.asarray(fit.params), np.asarray(fit.cov)
    design, g = _gradients(x, params.size), _gradients(new, params.size)
    cond = float(np.linalg.cond(design / np.linalg.norm(design, axis=0)))
    fitted = design @ params
    residuals = y - fitted
    moved = np.abs(np.linalg.pinv(design)) @ (np.abs(y) + np.abs(fitted)) + cond * np.abs(params)
    bound_t = 16 * EPS64 * (np.abs(g) @ moved + np.abs(g) @ np.abs(params))
    rel_s2 = 2 * np.sum(np.abs(residuals) * (np.abs(y) + np.abs(fitted))) / np.sum(residuals**2)
    cancel = np.einsum("mi,ij,mj->m", np.abs(g), np.abs(cov), np.abs(g)) / np.einsum("mi,ij,mj->m", g, cov, g)
    rel_h = 16 * EPS64 * (rel_s2 + cond * cancel)
    t_c = np.asarray(frame["mean"])
    for interval, upper in (("prediction", "obs_ci_upper"), ("confidence", "mean_ci_upper")):
        half = np.asarray(frame[upper]) - t_c
        assert (rel_h * half + bound_t < 1e-9 * half).all(), "a bound loose enough to pass anything"
        out = predict(new, fit.params, fit.cov, model=model, residual_sd=fit.residual_sd, dof=fit.dof,
                      interval=interval)
        _close(out.t_c, t_c, bound_t)
        _close(out.high - out.t_c, half, rel_h * half + bound_t)
        _close(out.t_c - out.low, half, rel_h * half + bound_t)


@float64_only
def test_float64_a_log_through_a_table_matches_each_calibration_alone():
    x, y, _ = _case("book")
    t_u = np.linspace(10, 90, 7)
    fits = [_statsmodels(x + shift, y, t_u, "quadratic", 0.95) for shift in (0.0, 3.0)]
    params, cov = np.stack([f[1] for f in fits]), np.stack([f[2] for f in fits])
    residual_sd, dof = np.array([f[3] for f in fits]), np.array([f[4] for f in fits])
    rows = np.array([0, 1, -1, 1, 0, 0, 1])
    out = predict_table(t_u, rows, params, cov, residual_sd, dof, model="quadratic")
    assert out.t_c.dtype == np.float64
    for s in (0, 1):
        alone = predict(t_u[rows == s], params[s], cov[s], model="quadratic", residual_sd=residual_sd[s],
                        dof=dof[s])
        # the same numbers through the same formula, fused per program: 1 ulp per operation of ~16
        scale = np.abs(np.asarray(alone.t_c)) + np.abs(np.asarray(alone.high - alone.t_c))
        for got, want in zip(out, alone, strict=True):
            _close(np.asarray(got)[rows == s], want, 16 * EPS64 * scale)
    assert np.isnan(np.stack(out)[:, rows == -1]).all()


def test_predict_table_checks_the_readings_before_the_calibrations():
    """As predict does: a t_u of integers is named first, even beside params the model does not take."""
    with pytest.raises(InvalidType, match="t_u: must be a floating-point array"):
        predict_table(np.ones(3, np.int32), np.zeros(3, int), np.ones((1, 3)), np.zeros((1, 3, 3)),
                      interval="confidence")
