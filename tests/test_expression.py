"""Models written as text (jaxcal.expression): NIST's formulas against the written models, the
whitelist's refusals in one line, and fits against NIST's certified values.

The checks run in the process's dtype (float32 here); the float64 ones run in a fresh interpreter
with JAX_ENABLE_X64=1 (test_float64_cases_in_a_fresh_interpreter), since x64 is a start-up choice.
"""

from __future__ import annotations

import ast
import builtins
import re
from pathlib import Path

import jax
import jax.numpy as jnp
import nist_strd
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from programs import pytest_with_x64

from jaxcal import calibrate, data
from jaxcal._checks import InvalidInput, InvalidType
from jaxcal.core import resolve_model
from jaxcal.expression import MAX_DEPTH, MAX_LENGTH, parse_model
from jaxcal.solvers import STATUS

HERE = Path(__file__).parent
X64 = bool(jax.config.jax_enable_x64)
DTYPE = np.float64 if X64 else np.float32
float64_only = pytest.mark.skipif(not X64, reason="JAX_ENABLE_X64=1: test_float64_cases_in_a_fresh_interpreter")
float32_only = pytest.mark.skipif(X64, reason="the float32 checks run in the main process")

# NIST's formulas as jaxcal expressions, written by hand from each file's model (x -> t_u, exp[..] ->
# exp(..)), grouped as the written models of nist_strd.py group them (ENSO: its three waves).
NIST_EXPRESSIONS = {
    "Misra1a": "b1*(1-exp(-b2*t_u))",
    "Chwirut2": "exp(-b1*t_u)/(b2+b3*t_u)",
    "Chwirut1": "exp(-b1*t_u)/(b2+b3*t_u)",
    "Lanczos3": "b1*exp(-b2*t_u) + b3*exp(-b4*t_u) + b5*exp(-b6*t_u)",
    "Gauss1": "b1*exp( -b2*t_u ) + b3*exp( -(t_u-b4)**2 / b5**2 ) + b6*exp( -(t_u-b7)**2 / b8**2 )",
    "Gauss2": "b1*exp( -b2*t_u ) + b3*exp( -(t_u-b4)**2 / b5**2 ) + b6*exp( -(t_u-b7)**2 / b8**2 )",
    "DanWood": "b1*t_u**b2",
    "Misra1b": "b1 * (1-(1+b2*t_u/2)**(-2))",
    "Kirby2": "(b1 + b2*t_u + b3*t_u**2) / (1 + b4*t_u + b5*t_u**2)",
    "Hahn1": "(b1+b2*t_u+b3*t_u**2+b4*t_u**3) / (1+b5*t_u+b6*t_u**2+b7*t_u**3)",
    "MGH17": "b1 + b2*exp(-t_u*b4) + b3*exp(-t_u*b5)",
    "Lanczos1": "b1*exp(-b2*t_u) + b3*exp(-b4*t_u) + b5*exp(-b6*t_u)",
    "Lanczos2": "b1*exp(-b2*t_u) + b3*exp(-b4*t_u) + b5*exp(-b6*t_u)",
    "Gauss3": "b1*exp( -b2*t_u ) + b3*exp( -(t_u-b4)**2 / b5**2 ) + b6*exp( -(t_u-b7)**2 / b8**2 )",
    "Misra1c": "b1 * (1-(1+2*b2*t_u)**(-.5))",
    "Misra1d": "b1*b2*t_u*((1+b2*t_u)**(-1))",
    "Roszman1": "b1 - b2*t_u - arctan(b3/(t_u-b4))/pi",
    "ENSO": "b1 + (b2*cos( 2*pi*t_u/12 ) + b3*sin( 2*pi*t_u/12 )) + (b5*cos( 2*pi*t_u/b4 ) + b6*sin( 2*pi*t_u/b4 ))"
            " + (b8*cos( 2*pi*t_u/b7 ) + b9*sin( 2*pi*t_u/b7 ))",
}
# the params in the order they first appear in the text where that is not b1, b2, ...: ENSO names b5
# before b4 (b5*cos(2*pi*t_u/b4)), MGH17 b4 before b3
ENSO_ORDER = ("b1", "b2", "b3", "b5", "b4", "b6", "b8", "b7", "b9")
FIRST_APPEARANCE = {"ENSO": ENSO_ORDER, "MGH17": ("b1", "b2", "b4", "b3", "b5")}


def _nist_text(problem: nist_strd.Problem) -> str:
    """The file's formula made an expression mechanically: y = ... + e, x -> t_u, [ ] -> ( )."""
    lines = [line for line in problem.model.splitlines() if not line.startswith("pi =")]  # Roszman1's pi
    formula = " ".join(lines)
    formula = re.fullmatch(r"y\s*=\s*(.*)\+\s*e", formula)[1]
    return re.sub(r"\bx\b", "t_u", formula.replace("[", "(").replace("]", ")"))


def _certified(name: str, spec) -> np.ndarray:
    """NIST's certified params (b1, b2, ...) in the order of the spec's param names."""
    values = nist_strd.load(name).params
    return np.array([values[int(p[1:]) - 1] for p in spec.param_names], DTYPE)


@pytest.mark.parametrize("name", nist_strd.NONLINEAR)
def test_the_table_is_nists_formula(name):
    problem = nist_strd.load(name)
    table = ast.dump(ast.parse(NIST_EXPRESSIONS[name], mode="eval"))
    if name != "ENSO":  # the same tree as the file's own text: the table transcribes NIST
        assert ast.dump(ast.parse(_nist_text(problem), mode="eval")) == table
        return
    # ENSO's file sums its seven terms left to right, the table wave by wave: each order's sum is within
    # (n - 1) * u * sum |term| of the exact one (u = eps / 2, n = 7, |cos|, |sin| <= 1), so they differ by
    # at most (n - 1) * eps * sum |coefficient|; the terms themselves are computed alike
    spec, flat = parse_model(NIST_EXPRESSIONS[name]), parse_model(_nist_text(problem))
    assert flat.param_names == spec.param_names == ENSO_ORDER
    params = _certified(name, spec)
    x = jnp.asarray(problem.x, DTYPE)
    bound = 6 * np.finfo(DTYPE).eps * np.abs(params[[0, 1, 2, 3, 5, 6, 8]]).sum()
    np.testing.assert_allclose(flat.fn(x, *params), spec.fn(x, *params), rtol=0, atol=bound)


@pytest.mark.parametrize("name", nist_strd.NONLINEAR)
def test_nist_expressions_compute_the_written_models_and_their_jacobians(name):
    spec = parse_model(NIST_EXPRESSIONS[name])
    k = len(nist_strd.load(name).params)
    assert spec.param_names == FIRST_APPEARANCE.get(name, tuple(f"b{i}" for i in range(1, k + 1)))
    assert (spec.linear, spec.intercept, spec.init) == (False, False, None)
    x = jnp.asarray(nist_strd.load(name).x, DTYPE)
    params = jnp.asarray(_certified(name, spec))
    order = [int(p[1:]) - 1 for p in spec.param_names]
    inverse = np.argsort(order)  # the written model's b1, b2, ... from the spec's order

    @jax.jit
    def written(b):
        b = b if order == sorted(order) else b[inverse]
        return nist_strd.MODELS[name](x, *b), jax.jacfwd(lambda b: nist_strd.MODELS[name](x, *b))(b)[:, order]

    @jax.jit
    def parsed(b):
        return spec.fn(x, *b), jax.jacfwd(lambda b: spec.fn(x, *b))(b)

    # The same jax.numpy operations in the same order on the same operands, each compiled alone: equal
    # to 0 ulps, the values and the derivatives jacfwd derives from them.
    (value, jac), (value_written, jac_written) = parsed(params), written(params)
    assert value.dtype == jac.dtype == DTYPE
    np.testing.assert_array_max_ulp(np.asarray(value), np.asarray(value_written), maxulp=0)
    np.testing.assert_array_max_ulp(np.asarray(jac), np.asarray(jac_written), maxulp=0)


@pytest.mark.parametrize("name", [n for n in nist_strd.NONLINEAR if n != "Lanczos1"])
def test_an_expression_given_numpy_float64_computes_in_float64_to_nists_certified_rss(name):
    # Lanczos1's certified rss (1.4e-25) is below what residuals of size 1 resolve in float64
    problem = nist_strd.load(name)
    spec = parse_model(NIST_EXPRESSIONS[name])
    values = problem.params
    params = [float(values[int(p[1:]) - 1]) for p in spec.param_names]  # Python floats, as a saved calibration's
    x = np.asarray(problem.x, np.float64)
    t_p = spec.fn(x, *params)  # JAX's x64 is off in this process: NumPy's float64 is what keeps the digits
    assert isinstance(t_p, np.ndarray)
    assert t_p.dtype == np.float64
    # the rss at the certified params (given to 10 or 11 digits; the rss is stationary there, so their rounding
    # moves it by second order) meets the certified rss to NIST's own 9 digits; float32 predictions miss by far
    np.testing.assert_allclose(np.sum((problem.y - t_p) ** 2), problem.rss, rtol=1e-9)


def test_an_expression_without_the_reading_gives_numpy_per_reading_and_jax_stays_jax():
    spec = parse_model("b1 + 0*b2")
    assert np.shape(spec.fn(np.arange(3.0), 1.5, 2.0)) == (3,)
    assert isinstance(spec.fn(np.arange(3.0), 1.5, 2.0), np.ndarray)
    got = spec.fn(jnp.arange(3.0), jnp.float32(1.5), 2.0)
    assert isinstance(got, jax.Array)
    assert got.dtype == jnp.float32
    assert got.shape == (3,)
    got = parse_model("b1*exp(b2*t_u)").fn(jnp.arange(3.0), 1.5, 2.0)
    assert isinstance(got, jax.Array)
    assert got.dtype == jnp.float32


# -- the whitelist's refusals -------------------------------------------------------------------------

ALLOWED = "(allowed: exp, log, sqrt, sin, cos, tan, arctan, tanh, abs)"


@pytest.mark.parametrize(("text", "token", "problem"), [
    ("b1*(1-exq(-b2*t_u))", "exq", f"unknown function 'exq' {ALLOWED}"),
    ("b*t_u.__class__", ".__class__", "attribute access '.__class__' is not allowed"),
    ("b*t_u[0]", "t_u[0]", "subscripts are not allowed: 't_u[0]'"),
    ("b*exp(t_u, b)", "exp(t_u, b)", "exp() takes 1 argument, got 2: 'exp(t_u, b)'"),
    ("b*exp()", "exp()", "exp() takes 1 argument, got 0: 'exp()'"),
    ("b*exp(x=t_u)", "x=t_u", "exp() takes no keywords: 'x=t_u'"),
    ("b*exp(*t_u)", "*t_u", "'*' unpacking is not allowed: '*t_u'"),
    ("b*'t_u'", "'t_u'", "strings are not allowed: 't_u'"),
    ("b*(t_u > 0)", "t_u > 0", "comparisons are not allowed: 't_u > 0'"),
    ("(lambda: b)", "lambda: b", "lambdas are not allowed: 'lambda: b'"),
    ("b*t_u^2", "^", "operator '^' is not allowed: use ** for powers"),
    ("b*t_u//2", "//", "operator '//' is not allowed (allowed: + - * / **)"),
    ("b*~t_u", "~", "operator '~' is not allowed (allowed: unary - and +)"),
    ("b*True", "True", "'True' is not a number"),
    ("b*2j", "2j", "'2j' is not a number"),
    ("b*(t_u, 1)", "(t_u, 1)", "tuples are not allowed: '(t_u, 1)'"),
    ("b*exp*t_u", "exp", "'exp' is a function: call it, exp(...)"),
    ("b*t_u # gain", "#", "'#' is not allowed"),
    ("b*t_u + beta*\u03b2", "\u03b2", "character '\u03b2' is not allowed (ASCII letters, digits, operators)"),
    ("b*(t_u", "(", "syntax error: '(' was never closed"),
    ("b*log(-1)*t_u", "log(-1)", "'log(-1)' is not a finite number"),
    ("b*t_u/(1-1)", "/", "division by zero: 'b*t_u/(1-1)'"),
    ("b*(1/0)", "/", "division by zero: '1/0'"),
    ("b*(0.**-1)", "0.**-1", "'0.**-1' is not a finite number"),
    ("b*9**9**9*t_u", "9**9**9", "'9**9**9' is not a finite number"),
    ("b*1e999*t_u", "1e999", "the number '1e999' is not a finite number"),
])
def test_refused_in_one_line_naming_the_part_and_its_column(text, token, problem):
    with pytest.raises(InvalidInput) as raised:
        parse_model(text)
    column = text.index(token) + 1
    assert str(raised.value) == f"model: {text!r}: {problem} at column {column}"


@pytest.mark.parametrize(("text", "problem"), [
    ("", "empty: write the model as an expression in t_u, e.g. 'w * t_u + b' at column 1"),
    (" \n\t", "empty: write the model as an expression in t_u, e.g. 'w * t_u + b' at column 1"),
    ("2*t_u + 1", "no parameters: name at least one (any identifier other than t_u, pi and the functions), "
                  "e.g. 'w * t_u + b' at column 1"),
    ("exp(t_u)*pi", "no parameters: name at least one (any identifier other than t_u, pi and the functions), "
                    "e.g. 'w * t_u + b' at column 1"),
])
def test_a_text_without_a_model_is_refused(text, problem):
    with pytest.raises(InvalidInput) as raised:
        parse_model(text)
    assert str(raised.value) == f"model: {' '.join(text.split())!r}: {problem}"


def test_long_and_deep_texts_are_refused_in_bounded_lines_never_a_recursion_error():
    cases = {
        "b*t_u" + "+b" * MAX_LENGTH: f"longer than {MAX_LENGTH} characters",
        "-" * (MAX_LENGTH - 1) + "b": f"nested deeper than {MAX_DEPTH}",  # one UnaryOp per '-'
        "b" + "*t_u" * MAX_DEPTH: f"nested deeper than {MAX_DEPTH}",  # MAX_DEPTH multiplications, left to right
        "(" * 300 + "b" + ")" * 300: "syntax error: too many nested parentheses",  # Python's own bound
        "b" + "**b" * 600: f"nested deeper than {MAX_DEPTH}",
    }
    for text, problem in cases.items():
        with pytest.raises(InvalidInput) as raised:
            parse_model(text)
        message = str(raised.value)
        assert problem in message, message
        assert "\n" not in message
        assert len(message) < 250
    # just within the bounds: parsed
    assert parse_model("b" + "*t_u" * (MAX_DEPTH - 1)).param_names == ("b",)
    assert parse_model("-" * (MAX_DEPTH - 1) + "b").param_names == ("b",)


def test_a_string_is_required():
    with pytest.raises(InvalidType, match=r"^model: an expression must be a string, got bytes$"):
        parse_model(b"w*t_u+b")


# -- what the text means --------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "names", "linear", "intercept"), [
    ("w*t_u + b", ("w", "b"), True, True),
    ("w2*t_u**2 + w1*t_u + b", ("w2", "w1", "b"), True, True),
    ("b1*exp(t_u) + b2*t_u**2/3 - 4", ("b1", "b2"), True, False),  # a known offset: affine, fit in one step
    ("t_u*k*t_u", ("k",), True, False),
    ("2*b + b*t_u", ("b",), True, False),  # b's column is 2 + t_u: not a constant one
    ("(t_u - c)/2 + (t_u - c)", ("c",), True, True),
    ("b1/t_u - -b2/2", ("b1", "b2"), True, True),
    ("+a", ("a",), True, True),  # a constant model: the mean
    ("a*t_u + b*t_u*b", ("a", "b"), False, False),
    ("t_u/b", ("b",), False, False),
    ("exp(b)*t_u", ("b",), False, False),
    ("t_u**n", ("n",), False, False),
    ("b1*(1-exp(-b2*t_u))", ("b1", "b2"), False, False),
])
def test_names_linearity_and_intercept(text, names, linear, intercept):
    spec = parse_model(text)
    assert (spec.param_names, spec.linear, spec.intercept) == (names, linear, intercept)
    assert (spec.name, spec.init, spec.exact, spec.torch) == (text, None, None, None)
    # linear means the design columns (the Jacobian) do not depend on the params: checked at two points
    t_u = jnp.asarray(data.t_un)
    jac = [np.asarray(jax.jacfwd(lambda p: spec.fn(t_u, *p))(jnp.asarray(p, jnp.float32)))
           for p in (np.full(len(names), 0.5), np.arange(1.0, len(names) + 1))]
    assert np.array_equal(*jac) == linear
    # an intercept: some param's column is constant
    assert any(np.ptp(column) == 0 for column in jac[0].T) == intercept


def test_params_follow_first_appearance_and_t_u_pi_and_functions_are_not_params():
    spec = parse_model("c*exp(t_u) + a*sin(pi*t_u) + b + c*a")
    assert spec.param_names == ("c", "a", "b")
    t_u = jnp.asarray([0.0, 0.5, 2.0])
    expected = 3 * jnp.exp(t_u) + 5 * jnp.sin(np.pi * t_u) + 7 + 3 * 5
    np.testing.assert_array_equal(spec.fn(t_u, 3.0, 5.0, 7.0), expected)


def test_whitespace_is_normalised_and_the_same_text_is_one_model(compiles):
    spec = parse_model("w *\n t_u  +\tb")
    assert spec.name == "w * t_u + b"
    assert parse_model(" w * t_u + b ") is spec  # one function: a fit compiles once per model
    first = calibrate(data.t_u, data.t_c, model="w * t_u + b")
    compiles.names.clear()
    again = calibrate(data.t_u, data.t_c, model=" w  * t_u + b")
    assert compiles.names == []
    np.testing.assert_array_equal(again.params, first.params)


def test_a_constant_model_gives_one_prediction_per_reading():
    spec = parse_model("+a")
    np.testing.assert_array_equal(spec.fn(jnp.zeros((2, 3)), jnp.float32(1.5)), np.full((2, 3), 1.5, np.float32))
    fit = calibrate(data.t_u, data.t_c, model="+a")
    assert fit.param_names == ("a",)
    # one step of least squares: the mean, to float32's rounding of an 11-term sum (11 eps relative)
    np.testing.assert_allclose(fit.params[0], data.t_c.astype(np.float64).mean(), rtol=11 * 2**-23)


def test_expressions_run_under_jit_and_vmap():
    spec = parse_model("b1*(1-exp(-b2*t_u))")
    t_u = jnp.asarray(data.t_un)
    eager = spec.fn(t_u, 2.0, 0.3)
    batched = jax.vmap(lambda p: spec.fn(t_u, *p))(jnp.asarray([[2.0, 0.3]], jnp.float32))
    np.testing.assert_array_equal(batched[0], eager)
    # under jit XLA may fuse the operations: within float32 rounding of 5 operations (5 eps relative)
    np.testing.assert_allclose(jax.jit(spec.fn)(t_u, 2.0, 0.3), eager, rtol=5 * 2**-23)


# -- through resolve_model and calibrate -----------------------------------------------------------------


@float32_only
@pytest.mark.parametrize(("model", "message"), [
    ("lineer", "model: unknown model 'lineer'; choose one of linear, quadratic, or write the model as an "
               "expression in t_u, e.g. 'w * t_u + b'"),
    (" cubic ", "model: unknown model ' cubic '; choose one of linear, quadratic, or write the model as an "
                "expression in t_u, e.g. 'w * t_u + b'"),
    ("w*t_u+lineer(b)", f"model: 'w*t_u+lineer(b)': unknown function 'lineer' {ALLOWED} at column 7"),
    ("t_u", "model: 't_u': no parameters"),
])
def test_resolve_model_tells_a_misspelt_name_from_an_expression(model, message):
    with pytest.raises(InvalidInput) as raised:
        resolve_model(model)
    assert str(raised.value).startswith(message)
    assert resolve_model("linear").name == "linear"
    assert resolve_model("b * t_u").param_names == ("b",)


@float32_only
def test_calibrate_wants_the_start_of_a_nonlinear_expression():
    with pytest.raises(InvalidInput, match=r"^params: a model function needs start values"):
        calibrate(data.t_u, data.t_c, model="b1*(1-exp(-b2*t_u))")
    with pytest.raises(InvalidInput, match=r"^params: the model takes 2 \(b1, b2\), got 3$"):
        calibrate(data.t_u, data.t_c, model="b1*(1-exp(-b2*t_u))", params=[1.0, 1.0, 1.0])


@float32_only
def test_a_linear_expression_fits_as_the_named_model_does():
    # the same model, the same solver (least squares, chosen by linearity), the same operations
    named = calibrate(data.t_u, data.t_c, model="linear")
    written = calibrate(data.t_u, data.t_c, model="w * t_u + b")
    assert written.param_names == named.param_names
    for field in ("params", "stderr", "rss", "r_squared"):
        np.testing.assert_array_equal(getattr(written, field), getattr(named, field))


# -- random text ------------------------------------------------------------------------------------------

TOKENS = ["t_u", "b1", "b2", "pi", "exp(", "log(", "sqrt(", "arctan(", "abs(", "(", ")", "+", "-", "*", "/", "**",
          "^", "2", "0", ".5", "1e-3", "1e308", ",", " ", "x=", "[0]", ".real", "'", "lambda:", "<", "#", "9"]


def _only_invalid_input(text: str) -> None:
    def refused(*args, **kwargs):
        raise AssertionError(f"eval/exec called with {args[:1]!r}")

    real_compile = builtins.compile

    def compile_to_ast_only(source, filename, mode, flags=0, *args, **kwargs):  # what ast.parse does
        assert flags & ast.PyCF_ONLY_AST, f"compile called with {source!r}"
        return real_compile(source, filename, mode, flags, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:  # for the parse only: hypothesis and JAX may use them
        patch.setattr(builtins, "eval", refused)
        patch.setattr(builtins, "exec", refused)
        patch.setattr(builtins, "compile", compile_to_ast_only)
        try:
            spec = parse_model(text)
        except InvalidInput as error:
            message = str(error)
        else:
            message = None
    if message is not None:
        assert "\n" not in message
        assert len(message) < 400
        return
    # whatever it parsed computes: a prediction per reading (NaN allowed) and no exception
    out = spec.fn(jnp.asarray([0.5, 2.0]), *(jnp.float32(0.5),) * spec.n_params)
    assert out.shape == (2,)


@float32_only
@given(st.text(st.characters(min_codepoint=0, max_codepoint=0x3FF), max_size=200))
def test_fuzz_printable_text_raises_only_invalid_input_and_never_evaluates(text):
    _only_invalid_input(text)


@float32_only
@given(st.lists(st.sampled_from(TOKENS), max_size=40).map("".join))
def test_fuzz_token_soup_raises_only_invalid_input_and_never_evaluates(text):
    _only_invalid_input(text)


# -- float64: NIST's certified values, run by the test below ---------------------------------------------------

NONLINEAR_DIGITS, LINEAR_DIGITS = 6, 10  # as tests/test_calibrate.py asks of the written models


@float64_only
@pytest.mark.parametrize("name", ["Misra1a", "ENSO"])
def test_float64_nist_expressions_meet_the_certified_params_from_start_1(name):
    problem = nist_strd.load(name)
    spec = parse_model(NIST_EXPRESSIONS[name])
    start = np.array([problem.start1[int(p[1:]) - 1] for p in spec.param_names])
    fit = calibrate(problem.x, problem.y, model=NIST_EXPRESSIONS[name], params=start)
    assert STATUS[int(fit.status)] == "converged"
    assert fit.param_names == spec.param_names
    np.testing.assert_allclose(fit.params, _certified(name, spec), rtol=10.0**-NONLINEAR_DIGITS)


@float64_only
@pytest.mark.parametrize(("name", "text"), [("Norris", "B0 + B1*t_u"), ("Pontius", "B0 + B1*t_u + B2*t_u**2")])
def test_float64_nist_linear_expressions_fit_in_one_step_to_10_digits(name, text):
    problem = nist_strd.load(name)
    assert (parse_model(text).linear, parse_model(text).intercept) == (True, True)  # least squares, R² defined
    fit = calibrate(problem.x, problem.y, model=text)
    assert (STATUS[int(fit.status)], int(fit.steps)) == ("converged", 1)
    rtol = 10.0**-LINEAR_DIGITS
    np.testing.assert_allclose(fit.params, problem.params, rtol=rtol)
    np.testing.assert_allclose(fit.stderr, problem.stderr, rtol=rtol)
    np.testing.assert_allclose(fit.r_squared, problem.r_squared, rtol=rtol)


@float32_only
def test_float64_cases_in_a_fresh_interpreter():
    done = pytest_with_x64("-k", "float64 or nist", str(HERE / "test_expression.py"))
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in done.stdout
    assert " failed" not in done.stdout


@pytest.mark.parametrize("entry", ["calibrate", "fit_fleet", "sweep"])
def test_an_expression_without_a_start_is_one_line_naming_its_params(entry):
    from jaxcal import fit_fleet
    from jaxcal.sweeps import sweep

    t_u = np.stack([data.t_u, data.t_u]).astype(np.float32)
    t_c = np.stack([data.t_c, data.t_c]).astype(np.float32)
    calls = {"calibrate": lambda: calibrate(t_u, t_c, model="b1*(1-exp(-b2*t_u))"),
             "fit_fleet": lambda: fit_fleet(t_u, t_c, n_epochs=3, learning_rate=1e-2, model="b1*(1-exp(-b2*t_u))"),
             "sweep": lambda: sweep(data.t_u, data.t_c, n_epochs=3, learning_rate=[1e-2], model="b1*(1-exp(-b2*t_u))")}
    with pytest.raises(ValueError, match=r"^params: ") as raised:
        calls[entry]()
    assert "\n" not in str(raised.value)
    if entry != "calibrate":
        assert str(raised.value) == "params: this model has no default start; give one value per parameter (b1, b2)"
