"""The NIST StRD files in tests/nist/ and their parser (tests/nist_strd.py) are right.

They are the yardstick for fits (issue 23), so these tests check them against NIST's own
certified values: the model formulas reproduce the certified residual sums of squares, and
ordinary least squares reproduces the certified linear fits.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from nist_strd import AVERAGE, LINEAR, LOWER, MODELS, NIST, NONLINEAR, NUMPY_MODELS, load, parse

F64 = np.finfo(np.float64).eps
F32 = np.finfo(np.float32).eps


def _half_unit(values: np.ndarray, digits: int) -> np.ndarray:
    """Half a unit in the last place of values printed with `digits` significant digits."""
    return 0.5 * 10.0 ** (np.floor(np.log10(np.abs(values))) - (digits - 1))


def test_the_folder_holds_exactly_the_expected_files():
    assert sorted(p.stem for p in NIST.glob("*.dat")) == sorted(NONLINEAR + LINEAR)
    readme = (NIST / "README.md").read_text()
    assert all(f"`{name}.dat`" in readme for name in NONLINEAR + LINEAR)


@pytest.mark.parametrize("name", NONLINEAR + LINEAR)
def test_every_file_parses_to_what_its_header_declares(name):
    problem = load(name)
    text = (NIST / f"{name}.dat").read_text()
    # Read the header's counts here independently of the parser.
    n_obs = int(re.search(r"(\d+) Observations", text)[1])
    n_params = int(re.search(r"(\d+) Parameters", text)[1])
    level = re.search(r"(\w+) Level of Difficulty", text)[1].lower()

    assert problem.name == name
    assert problem.x.shape == problem.y.shape == (n_obs,)
    assert problem.x.dtype == problem.y.dtype == np.float64
    assert np.isfinite(problem.x).all()
    assert np.isfinite(problem.y).all()
    assert problem.params.shape == problem.stderr.shape == (n_params,)
    assert (problem.stderr > 0).all()
    assert problem.dof == n_obs - n_params
    assert level == problem.difficulty == ("average" if name in AVERAGE else "lower")
    assert problem.model.startswith(("y = ", "y  = ", "pi = "))
    if name in LINEAR:
        assert problem.start1 is problem.start2 is None
        assert 0 < problem.r_squared < 1
    else:
        assert problem.start1.shape == problem.start2.shape == (n_params,)
        assert problem.r_squared is None
    # NIST's own consistency: residual SD = sqrt(rss / dof). Each is printed to 11 significant
    # digits (15 for the linear files), so they agree to a few half-units of the 11th digit.
    assert problem.residual_sd == pytest.approx(np.sqrt(problem.rss / problem.dof), rel=2e-10)


def test_the_lists_are_nists_grouping():
    # NIST: 8 nonlinear problems of lower difficulty, 11 of average (Nelson, with two predictors,
    # left out here), every one with one predictor in these files.
    assert len(LOWER) == 8
    assert len(AVERAGE) == 10
    assert len(set(NONLINEAR)) == 18
    assert set(MODELS) == set(NUMPY_MODELS) == set(NONLINEAR)


# Lanczos1's certified rss, 1.4e-25, is below what float64 residuals of its data (y ~ 1, spacing
# 2.2e-16) can resolve, and below the effect of rounding its parameters to 11 digits: it gets the
# residual bound below instead.
@pytest.mark.parametrize("name", [n for n in NONLINEAR if n != "Lanczos1"])
def test_model_reproduces_the_certified_rss(name):
    problem = load(name)
    residuals = problem.y - NUMPY_MODELS[name](problem.x, *problem.params)
    # The certified rss is printed to 11 significant digits, and the certified parameters are
    # rounded to 11 digits, which moves the rss only to second order (the rss is stationary at its
    # minimum); float64 sums of <= 250 terms add ~1e-14. So 9 significant digits must agree.
    assert residuals @ residuals == pytest.approx(problem.rss, rel=1e-9)


def test_lanczos1_residuals_are_within_the_printed_digits():
    problem = load("Lanczos1")
    model = NUMPY_MODELS["Lanczos1"]
    residuals = problem.y - model(problem.x, *problem.params)
    # At the exact optimum the residuals are ~1e-13; what remains comes from printing: each
    # parameter is rounded to 11 significant digits, each y to 13. To first order a residual is
    # then at most sum_j |df/db_j| * (half-unit of b_j) + (half-unit of y), plus float64 rounding.
    jacobian = np.empty((problem.x.size, problem.params.size))
    for j, b in enumerate(problem.params):
        step = np.zeros_like(problem.params)
        step[j] = 1e-6 * abs(b)  # central differences: error ~ step**2, far below the bound
        jacobian[:, j] = (model(problem.x, *(problem.params + step)) - model(problem.x, *(problem.params - step)))
        jacobian[:, j] /= 2 * step[j]
    bound = np.abs(jacobian) @ _half_unit(problem.params, 11) + _half_unit(problem.y, 13) + 8 * F64 * np.abs(problem.y)
    assert (np.abs(residuals) <= bound).all()


@pytest.mark.parametrize("name", NONLINEAR)
def test_jax_models_compute_the_numpy_formulas(name):
    problem = load(name)
    exact = NUMPY_MODELS[name](problem.x, *problem.params)
    x32, b32 = problem.x.astype(np.float32), problem.params.astype(np.float32)
    values = np.asarray(jax.jit(MODELS[name])(jnp.asarray(x32), *b32), np.float64)
    # The bar is numpy's own float32 evaluation of the same formula: JAX's float32 may differ from
    # it by the last-ulp differences of XLA's and libm's exp/pow/trig (a factor 2, plus 4 ulps).
    numpy32 = NUMPY_MODELS[name](x32, *b32)
    scale = np.max(np.abs(exact))
    assert np.max(np.abs(values - exact)) <= 2 * np.max(np.abs(numpy32 - exact)) + 4 * F32 * scale
    gradient = jax.grad(lambda b: jnp.sum((jnp.asarray(problem.y, jnp.float32) - MODELS[name](x32, *b)) ** 2))
    assert all(np.isfinite(g) for g in gradient(tuple(jnp.asarray(b32))))


@pytest.mark.parametrize("name", LINEAR)
def test_least_squares_reproduces_the_certified_linear_fit(name):
    problem = load(name)
    design = np.vander(problem.x, problem.params.size, increasing=True)  # 1, x, x**2
    # Pontius's raw columns (x up to 3e6, x**2 up to 9e12) have condition number ~1e13, which
    # would cost 7 of float64's digits; scaling each column to unit norm brings it under 100.
    norms = np.linalg.norm(design, axis=0)
    scaled, _, _, singular = np.linalg.lstsq(design / norms, problem.y, rcond=None)
    condition = singular[0] / singular[-1]
    assert condition < 100
    params = scaled / norms
    residuals = problem.y - design @ params
    rss = residuals @ residuals
    covariance = np.linalg.inv((design / norms).T @ (design / norms)) / np.outer(norms, norms)
    stderr = np.sqrt(np.diag(covariance) * rss / problem.dof)
    r_squared = 1 - rss / np.sum((problem.y - problem.y.mean()) ** 2)
    # Certified to 15 digits. float64 least squares with condition < 100 errs by ~100 * 2.2e-16
    # relative to the data's scale; Norris's B0 (-0.26) is 4e3 times smaller than its y (up to
    # 1e3), so relative to itself it may lose 4 more digits: 10 digits is the common guarantee.
    np.testing.assert_allclose(params, problem.params, rtol=1e-10)
    np.testing.assert_allclose(stderr, problem.stderr, rtol=1e-10)
    assert rss == pytest.approx(problem.rss, rel=1e-10)
    assert np.sqrt(rss / problem.dof) == pytest.approx(problem.residual_sd, rel=1e-10)
    assert r_squared == pytest.approx(problem.r_squared, abs=1e-12)  # 1 - R**2 ~ 1e-7, known to 1e-13


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        (lambda lines: lines[:-2] + lines[-1:], "lines 61-74 should hold the 14 (y, x) rows"),  # a row lost
        (lambda lines: [*lines[:3], "", *lines[3:]], "line 60 should name the columns"),  # shifted by a line
        (lambda lines: [line.replace("b2 =", "b3 =") for line in lines], "should list 2 parameters in order"),
        (lambda lines: [line.replace("1 Predictor Variable", "2 Predictor Variable") for line in lines],
         "2 predictor variables"),
    ],
    ids=["row-lost", "shifted", "parameter-table", "two-predictors"],
)
def test_a_damaged_file_is_refused_with_its_name(tmp_path: Path, edit, problem):
    path = tmp_path / "Misra1a.dat"
    shutil.copy(NIST / "Misra1a.dat", path)
    lines = path.read_text().splitlines()
    path.write_text("\n".join(edit(lines)) + "\n")
    with pytest.raises(ValueError, match=re.escape(problem)) as error:
        parse(path)
    assert str(error.value).startswith("Misra1a.dat: ")
