"""``jaxcal train`` takes what ``jaxcal fleet`` takes: a model written as an expression in t_u (its start by
name), and one sensor's table read by --columns, --separator and --missing, with a sigma column's weights;
its saved calibration carries the expression, and ``jaxcal predict`` applies it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import nist_strd
import numpy as np
import pytest

from jaxcal import calibrate, data
from jaxcal.calibration import load_calibration
from jaxcal.cli import main
from jaxcal.solvers import LeastSquares, LevenbergMarquardt

MISRA = "b1*(1-exp(-b2*t_u))"
EPS32 = float(np.finfo(np.float32).eps)
EPS64 = float(np.finfo(np.float64).eps)

# A logger's table: semicolons, its own upper-case names, an extra column, one sensor, an NA cell (the row of
# t_u 58.1 is dropped) and each reading's standard uncertainty U; the readings are the book's first seven.
LOGGER = ("SENSOR;RAW;REF;U;SITE\n"
          "A;35.7;0.5;0.5;x\nA;55.9;14.0;0.5;x\nA;NA;15.0;0.5;x\nA;81.9;28.0;1.0;x\n"
          "A;56.3;11.0;1.0;x\nA;48.9;8.0;2.0;x\nA;33.9;3.0;2.0;x\n")
KEPT = [0, 1, 3, 4, 5, 6]  # the rows with every value
ROWS = np.array([[35.7, 0.5, 0.5], [55.9, 14.0, 0.5], [58.2, 15.0, 0.5], [81.9, 28.0, 1.0], [56.3, 11.0, 1.0],
                 [48.9, 8.0, 2.0], [33.9, 3.0, 2.0]])
MAP = "t_u=raw,t_c=ref"  # names match in any case


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture(scope="module")
def misra(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """NIST's Misra1a through ``train --model EXPR --solver lm --x64`` (in its own interpreter: x64 is a
    start-up choice), from NIST's first start given by name; the fit's JSON and its saved calibration."""
    folder = tmp_path_factory.mktemp("misra")
    problem = nist_strd.load("Misra1a")
    table = folder / "misra.csv"
    table.write_text("t_u,t_c\n" + "".join(f"{x!r},{y!r}\n" for x, y in zip(problem.x.tolist(), problem.y.tolist(),
                                                                          strict=True)))
    start = ",".join(f"b{j + 1}={v!r}" for j, v in enumerate(np.asarray(problem.start1).tolist()))
    done = subprocess.run([sys.executable, "-m", "jaxcal", "train", "--model", MISRA, "--init", start, "--solver", "lm",
                           "--data", str(table), "--x64", "--json", "--save", str(folder / "cal.json")],
                          capture_output=True, text=True, env={**os.environ, "JAXCAL_NO_CACHE": "1"})
    assert done.returncode == 0, done.stderr
    return {"fit": json.loads(done.stdout), "cal": folder / "cal.json", "problem": problem}


def test_an_expression_fitted_by_lm_reaches_nists_certified_misra1a_values(misra):
    fit, problem = misra["fit"], misra["problem"]
    assert (fit["param_names"], fit["status"], fit["solver"], fit["dof"]) == (["b1", "b2"], "converged", "lm",
                                                                             problem.dof)
    # NIST certifies 11 significant digits (their rounding: up to 5e-11, relative) and LevenbergMarquardt stops
    # within its float64 rtol, eps ** (2 / 3) = 3.7e-11, of its fixed point: 1e-10 bounds both
    rtol = 1e-10
    np.testing.assert_allclose(fit["params"], problem.params, rtol=rtol)
    np.testing.assert_allclose(fit["stderr"], problem.stderr, rtol=rtol)
    np.testing.assert_allclose(fit["residual_sd"], problem.residual_sd, rtol=rtol)
    np.testing.assert_allclose(fit["rss"], problem.rss, rtol=rtol)
    assert "dropped" not in fit  # nothing dropped: the output is what it always was


def test_the_saved_expression_calibration_goes_through_predict(misra, capsys):
    stored = json.loads(misra["cal"].read_text())
    assert (stored["model"], stored["solver"], stored["scale"]) == (MISRA, "lm", 1.0)
    assert stored["params"] == misra["fit"]["params"]  # the same float64 numbers, through JSON
    assert (stored["settings"]["dropped"], stored["settings"]["weighted"]) == (0, False)
    b1, b2 = stored["params"]
    calibration = load_calibration(misra["cal"])
    # the library converts in float64 (NumPy's expm1 and JAX's exp round differently: a few eps of the value)
    np.testing.assert_allclose(calibration.predict([100.0, 500.0]), -b1 * np.expm1(-b2 * np.array([100.0, 500.0])),
                               rtol=8 * EPS64)
    status, out, err = _cli(capsys, "predict", "--cal", str(misra["cal"]), "--json", "100", "500")
    assert status == 0, err
    got = json.loads(out)
    # the command line evaluates the expression with JAX in this float32 session: a few float32 roundings
    np.testing.assert_allclose(got["t_c"], -b1 * np.expm1(-b2 * np.array([100.0, 500.0])), rtol=8 * EPS32)
    assert all(lo < c < hi for lo, c, hi in zip(got["low"], got["t_c"], got["high"], strict=True))


def test_a_tampered_expression_in_a_calibration_is_one_line(misra, tmp_path, capsys):
    stored = json.loads(misra["cal"].read_text())
    for model, words in [("b1*(1-exq(-b2*t_u))", "model: 'b1*(1-exq(-b2*t_u))': unknown function 'exq'"),
                         ("b1*t_u+b2*t_u**2+b3", "params must be 3 finite numbers for the 'b1*t_u+b2*t_u**2+b3' "
                                                 "model"),
                         ("cubic", "unknown model 'cubic'")]:
        (tmp_path / "bad.json").write_text(json.dumps({**stored, "model": model}))
        status, out, err = _cli(capsys, "predict", "--cal", str(tmp_path / "bad.json"), "100")
        assert (status, out, err.count("\n")) == (2, "", 1)
        assert words in err, err


def test_an_expression_trains_by_gradient_descent_as_the_named_model_it_spells(tmp_path, capsys):
    argv = ["--epochs", "300", "--json"]
    status, named, _ = _cli(capsys, "train", *argv)
    assert status == 0
    status, spelt, err = _cli(capsys, "train", "--model", "w * t_u + b", "--init", "w=1,b=0", *argv)
    assert status == 0, err
    assert json.loads(spelt) == json.loads(named)  # the same arithmetic: the same numbers, bit for bit


@pytest.mark.parametrize("scale", ["0.1", "0.5"])
def test_gradient_descents_params_apply_to_the_scaled_readings_and_predict_scales(tmp_path, capsys, scale):
    # a model not linear in its params: its params cannot be carried over to the raw readings, so the
    # calibration keeps them with the scale they apply to, and predict multiplies each reading by it
    table = tmp_path / "readings.csv"
    t_u, t_c = data.readings(np.float64)
    table.write_text("t_u,t_c\n" + "".join(f"{u},{c}\n" for u, c in zip(t_u, t_c, strict=True)))
    cal = tmp_path / "cal.json"
    status, _, err = _cli(capsys, "train", "--data", str(table), "--model", "a*t_u+b*exp(-t_u/30)+c", "--init",
                          "a=1,b=0,c=0", "--scale", scale, "--epochs", "50", "--lr", "1e-3", "--save", str(cal))
    assert status == 0, err
    stored = json.loads(cal.read_text())
    assert (stored["model"], stored["solver"], stored["scale"], stored["diverged"]) == (
        "a*t_u+b*exp(-t_u/30)+c", "gd", float(scale), False)
    assert stored["settings"]["init"] == [1.0, 0.0, 0.0]
    a, b, c = stored["params"]
    status, out, err = _cli(capsys, "predict", "--cal", str(cal), "--json", "40", "70")
    assert status == 0, err
    x = float(scale) * np.array([40.0, 70.0])
    # float32 evaluation (this session) of a value of ~10 to 40: a few float32 roundings
    np.testing.assert_allclose(json.loads(out)["t_c"], a * x + b * np.exp(-x / 30) + c, rtol=8 * EPS32)


def test_a_semicolon_table_with_its_own_names_and_a_missing_cell_drops_that_reading_and_says_so(tmp_path, capsys):
    table = tmp_path / "logger.csv"
    table.write_text(LOGGER)
    status, out, err = _cli(capsys, "train", "--data", str(table), "--columns", MAP, "--separator", ";",
                            "--missing", "NA", "--solver", "ls", "--json")
    assert status == 0, err
    fit = json.loads(out)
    assert (fit["readings"], fit["dropped"], fit["dof"], fit["status"]) == (6, 1, 4, "converged")
    kept = ROWS[KEPT].astype(np.float32)
    ref = calibrate(kept[:, 0], kept[:, 1], solver=LeastSquares())  # the same readings, the same solver
    assert fit["params"] == np.asarray(ref.params).tolist()
    # the log says it too, before the fit's lines; the sensor column names one sensor, which the calibration keeps
    status, out, err = _cli(capsys, "train", "--data", str(table), "--columns", f"{MAP},sensor=Sensor", "--solver",
                            "ls", "--save", str(tmp_path / "cal.json"))
    assert status == 0, err
    assert out.splitlines()[0] == f"{table}: 1 reading dropped for a missing value, 6 kept"
    assert out.splitlines()[1].startswith("solver ls")
    settings = json.loads((tmp_path / "cal.json").read_text())["settings"]
    assert (settings["dropped"], settings["sensor"], settings["weighted"]) == (1, "A", False)
    # gradient descent too: its JSON and its log
    status, out, _ = _cli(capsys, "train", "--data", str(table), "--columns", MAP, "--epochs", "10", "--json")
    assert status == 0
    assert (json.loads(out)["readings"], json.loads(out)["dropped"]) == (6, 1)
    status, out, _ = _cli(capsys, "train", "--data", str(table), "--columns", MAP, "--epochs", "10")
    assert out.splitlines()[0].endswith("1 reading dropped for a missing value, 6 kept")
    assert out.splitlines()[-1].startswith("params [")


def test_a_sigma_column_weights_the_least_squares_fit(tmp_path, capsys):
    table = tmp_path / "logger.csv"
    table.write_text(LOGGER)
    kept = ROWS[KEPT].astype(np.float32)
    weighted = calibrate(kept[:, 0], kept[:, 1], sigma=kept[:, 2], params=np.array([1.0, 0.0], np.float32),
                         solver=LevenbergMarquardt())
    plain = calibrate(kept[:, 0], kept[:, 1], params=np.array([1.0, 0.0], np.float32), solver=LevenbergMarquardt())
    status, out, err = _cli(capsys, "train", "--data", str(table), "--columns", f"{MAP},sigma=u", "--solver", "lm",
                            "--json", "--save", str(tmp_path / "cal.json"))
    assert status == 0, err
    fit = json.loads(out)
    assert fit["params"] == np.asarray(weighted.params).tolist()  # the library's weighted fit, as it is
    assert fit["params"] != np.asarray(plain.params).tolist()  # which the weights change
    assert fit["stderr"] == np.asarray(weighted.stderr).tolist()
    assert json.loads((tmp_path / "cal.json").read_text())["settings"]["weighted"] is True


@pytest.mark.parametrize(("argv", "table", "words"), [
    (["--model", "b1*(1-exq(-b2*t_u))", "--init", "b1=1,b2=1"], None, "--model: 'b1*(1-exq(-b2*t_u))': unknown "
                                                                       "function 'exq'"),
    (["--model", "b1*(1-exp(-b2*t_u)", "--init", "b1=1,b2=1"], None, "--model: "),
    (["--model", "__import__('os')", "--init", "b1=1"], None, "--model: "),
    (["--model", MISRA], None, f"--init: the model '{MISRA}' has no default start; give its params b1=...,b2=..."),
    (["--model", MISRA, "--solver", "lm"], None, "--init: the model"),
    (["--model", MISRA, "--init", "b1=1"], None, "--init: no start for b2"),
    (["--model", MISRA, "--init", "b1=1,b3=2"], None, "--init: 'b3' is not a param of the model; its params are "
                                                       "b1, b2"),
    (["--model", MISRA, "--init", "1"], None, f"--init: the '{MISRA}' model expects 2 numbers (b1 b2), got 1"),
    (["--model", MISRA, "--init", "b1=1,b2=x"], None, "--init: not a number: 'x'"),
    (["--model", MISRA, "--solver", "ls"], None, f"--solver: ls solves a model linear in its params in one step; "
                                                 f"'{MISRA}' is not"),
    (["--model", MISRA, "--init", "b1=1,b2=1", "--plot", "{dir}/fit.png"], None, "--plot: draws the named models"),
    (["--columns", MAP], None, "--columns: says how --data is read; give --data FILE"),
    (["--missing", "NA"], None, "--missing: says how --data is read"),
    (["--data", "{file}", "--columns", "t_u=raw,t_x=ref"], LOGGER, "--columns: unknown role 't_x'"),
    (["--data", "{file}", "--columns", "t_u=raw,t_u=ref"], LOGGER, "--columns: role t_u is given twice"),
    (["--data", "{file}", "--columns", MAP, "--separator", ";;"], LOGGER, "--separator: must be one character"),
    (["--data", "{file}", "--columns", MAP, "--missing", "-"], LOGGER, "RAW (t_u) is not a number: 'NA'"),
    (["--data", "{file}", "--columns", f"{MAP},sigma=u"], LOGGER, "--columns: names a sigma column (weights); "
                                                                  "gradient descent (--solver gd) fits without"),
    (["--data", "{file}"], "t_u,t_c,sigma\n1,2,1\n3,4,1\n", "--solver: {file} has a sigma column (weights); "
                                                            "gradient descent fits without weights"),
    (["--data", "{file}", "--solver", "ls"], "sensor,t_u,t_c\nA,1,2\nB,3,4\nA,5,6\n",
     "{file}: names 2 sensors; train fits one sensor's readings: calibrate every sensor of a table with "
     "'jaxcal fleet {file}'"),
])
def test_a_bad_model_start_or_table_is_one_line_and_exit_2(tmp_path, capsys, argv, table, words):
    file = tmp_path / "readings.csv"
    if table is not None:
        file.write_text(table)
    argv = [a.format(file=file, dir=tmp_path) for a in argv]
    status, out, err = _cli(capsys, "train", *argv)
    assert (status, out, err.count("\n")) == (2, "", 1), err
    assert err.startswith("jaxcal train: error: ")
    assert words.format(file=file) in err, err
    assert "Traceback" not in err
    assert list(tmp_path.iterdir()) == ([file] if table is not None else [])  # nothing written


@pytest.mark.parametrize("solver", ["auto", "ls", "lm"])
def test_every_least_squares_solver_fits_a_linear_expression_as_the_named_model(capsys, solver):
    start = [] if solver in ("auto", "ls") else ["--init", "w=1,b=0"]
    status, spelt, err = _cli(capsys, "train", "--model", "w*t_u + b", "--solver", solver, *start, "--json")
    assert status == 0, err
    status, named, _ = _cli(capsys, "train", "--solver", solver, *(["--init", "1", "0"] if start else []), "--json")
    assert status == 0
    spelt, named = json.loads(spelt), json.loads(named)
    assert spelt["solver"] == named["solver"] == ("ls" if solver == "auto" else solver)
    # the expression is known to be linear, as the named model is: the same solver and the same program's numbers
    assert (spelt["params"], spelt["stderr"]) == (named["params"], named["stderr"])


def test_the_book_readings_keep_their_outputs(capsys):
    # --data absent: no count of dropped readings, and the JSON has the fields it always had
    status, out, _ = _cli(capsys, "train", "--epochs", "10", "--json")
    assert status == 0
    assert set(json.loads(out)) == {"params", "loss", "epochs_run", "diverged", "history"}
    assert "dropped" not in out
