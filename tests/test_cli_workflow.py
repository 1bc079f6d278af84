"""The calibration workflow from the command line: a messy fleet in, one row per sensor out (a fit or the
reason for none), ``--strict``, and results whose params apply to the raw readings."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

EPS64 = np.finfo(np.float64).eps


def _jaxcal(*argv: str) -> subprocess.CompletedProcess:
    """``jaxcal ARGV`` in its own interpreter (``--x64`` and the devices are start-up choices)."""
    return subprocess.run([sys.executable, "-m", "jaxcal", *argv], capture_output=True, text=True)


def _in_process(capsys: pytest.CaptureFixture[str], *argv: str) -> subprocess.CompletedProcess:
    """``jaxcal ARGV`` in this interpreter, for a command that starts nothing up (``predict``)."""
    from jaxcal.cli import main

    status = main(list(argv))
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(list(argv), status, out, err)


def _rows(path: Path) -> dict[str, dict[str, str]]:
    with open(path, newline="") as file:
        return {row["sensor"]: row for row in csv.DictReader(file)}


def _rtol(design: np.ndarray, n: int) -> float:
    """How far two float64 least-squares answers may differ, relative: ``n`` roundings of ``eps`` amplified
    by ``cond**2`` of the column-scaled design (normal equations square it), with a factor 10 of margin."""
    design = design / np.linalg.norm(design, axis=0)
    return 10 * n * np.linalg.cond(design) ** 2 * EPS64


#: good: 5 readings and a sixth with an empty t_c (dropped); flat: every reading at one t_u; gone: every
#: reading missing; single: one reading.
MESSY = ("sensor,t_u,t_c\n"
         "good,10,5.5\ngood,20,9.25\ngood,30,16.0\ngood,40,20.5\ngood,55,28.0\ngood,60,\n"
         "flat,50,8\nflat,50,9\nflat,50,10.5\n"
         "gone,30,\ngone,,4\n"
         "single,10,1\n")
REASONS = {"flat": "all readings at one t_u", "gone": "no readings", "single": "1 reading for 2 params"}


def _good() -> tuple[np.ndarray, np.ndarray]:
    return np.array([10.0, 20, 30, 40, 55]), np.array([5.5, 9.25, 16.0, 20.5, 28.0])


def test_a_messy_fleet_gives_every_sensor_a_row_and_fits_the_fittable(tmp_path):
    data = tmp_path / "messy.csv"
    data.write_text(MESSY)
    for solver in ("ls", "lm", "gd"):
        out = tmp_path / f"{solver}.csv"
        flags = ["--epochs", "20000", "--lr", "1e-2"] if solver == "gd" else []
        done = _jaxcal("fleet", str(data), "--x64", "--solver", solver, *flags, "--out", str(out))
        assert done.returncode == 0, done.stderr
        fitted = "1 max_steps" if solver == "gd" else "1 converged"
        assert done.stdout.strip() == (f"4 sensors fitted (--solver {solver}): {fitted}, 3 undetermined; "
                                       f"3 missing readings dropped; results in {out}")
        rows = _rows(out)
        assert sorted(rows) == ["flat", "gone", "good", "single"]  # every input sensor, once
        assert {s: (int(r["readings"]), int(r["dropped"])) for s, r in rows.items()} \
            == {"good": (5, 1), "flat": (3, 0), "gone": (0, 2), "single": (1, 0)}
        for sensor, reason in REASONS.items():
            row = rows[sensor]
            assert (row["status"], row["reason"], row["model"], row["solver"]) \
                == ("undetermined", reason, "linear", solver)
            assert all(math.isnan(float(row[k])) for k in ("w", "b", "stderr_w", "cov_w_b", "residual_sd"))
        good = rows["good"]
        assert good["reason"] == ""
        if solver == "gd":
            continue  # gradient descent's params are where it stopped: checked below against its own formulas
        t_u, t_c = _good()
        ref = stats.linregress(t_u, t_c)
        design = np.stack([t_u, np.ones_like(t_u)], axis=1)
        rtol = _rtol(design, len(t_u))
        # normwise: a param's error is relative to |t_c| / |its column| (the intercept, near 0, cancels)
        atol = rtol * np.linalg.norm(t_c) / np.linalg.norm(design, axis=0)
        for got, want, tol in zip([float(good["w"]), float(good["b"])], [ref.slope, ref.intercept], atol,
                                  strict=True):
            assert abs(got - want) <= tol, (got, want, tol)
        np.testing.assert_allclose([float(good["stderr_w"]), float(good["stderr_b"])],
                                   [ref.stderr, ref.intercept_stderr], rtol=rtol)


def test_strict_refuses_a_fleet_with_an_unfitted_sensor_in_one_line_and_writes_nothing(tmp_path):
    data = tmp_path / "messy.csv"
    data.write_text(MESSY)
    out = tmp_path / "fits.csv"
    done = _jaxcal("fleet", str(data), "--strict", "--out", str(out))
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        "jaxcal fleet: error: --strict: 3 of 4 sensors without a fit (flat: all readings at one t_u; "
        "also gone, single); nothing written"]
    assert not out.exists()
    assert not list(tmp_path.glob(".*"))  # no temporary file left
    clean = tmp_path / "clean.csv"
    clean.write_text("sensor,t_u,t_c\n" + "".join(f"a,{u},{c}\n" for u, c in zip(*_good(), strict=True)))
    assert _jaxcal("fleet", str(clean), "--strict", "--out", str(out)).returncode == 0
    assert list(_rows(out)) == ["a"]


def test_gradient_descent_on_scaled_readings_reports_params_for_the_raw_ones(tmp_path):
    """A quadratic fitted to ``0.1 t_u`` by gradient descent: its params, standard errors and covariance
    converted to the raw readings (w2 x 0.01, w1 x 0.1) agree with the textbook formulas evaluated on the raw
    readings at the reported params."""
    rng = np.random.default_rng(4)
    t_u = rng.uniform(20, 90, 12)
    t_c = 2e-3 * t_u**2 + 0.3 * t_u - 5 + rng.normal(0, 0.5, 12)
    data = tmp_path / "q.csv"
    rows = zip(t_u.tolist(), t_c.tolist(), strict=True)
    data.write_text("sensor,t_u,t_c\n" + "".join(f"q,{u!r},{c!r}\n" for u, c in rows))
    out = tmp_path / "q.csv.out.csv"
    done = _jaxcal("fleet", str(data), "--x64", "--solver", "gd", "--model", "quadratic", "--scale", "0.1",
                   "--epochs", "500", "--lr", "1e-4", "--out", str(out))
    assert done.returncode == 0, done.stderr
    row = _rows(out)["q"]
    assert (row["status"], row["reason"], float(row["scale"]), row["model"]) == ("max_steps", "", 1.0, "quadratic")
    params = np.array([float(row[n]) for n in ("w2", "w1", "b")])
    design = np.stack([t_u**2, t_u, np.ones_like(t_u)], axis=1)
    residuals = t_c - design @ params
    rss = residuals @ residuals
    rtol = _rtol(design, len(t_u) + 3)  # the fit's roundings and the conversion's (a param and its variance)
    np.testing.assert_allclose(float(row["rss"]), rss, rtol=rtol)
    cov = rss / (len(t_u) - 3) * np.linalg.inv(design.T @ design)
    names = ("w2", "w1", "b")
    got = np.array([[float(row[f"cov_{names[min(i, j)]}_{names[max(i, j)]}"]) for j in range(3)] for i in range(3)])
    np.testing.assert_allclose(got, cov, rtol=rtol)
    np.testing.assert_allclose([float(row[f"stderr_{n}"]) for n in names], np.sqrt(np.diag(cov)), rtol=rtol)


def _linear_interval(t_u: np.ndarray, t_c: np.ndarray, x0: np.ndarray, level: float,
                     prediction: bool) -> tuple[np.ndarray, np.ndarray]:
    """The textbook interval of a straight line's fit at ``x0``: ``yhat -+ t_{level, dof} s sqrt([1 +]
    x0' (X'X)^-1 x0)``, in NumPy and SciPy, independent of jaxcal."""
    design = np.stack([t_u, np.ones_like(t_u)], axis=1)
    coef, *_ = np.linalg.lstsq(design, t_c, rcond=None)
    dof = len(t_u) - 2
    s2 = np.sum((t_c - design @ coef) ** 2) / dof
    new = np.stack([x0, np.ones_like(x0)], axis=1)
    var = s2 * np.einsum("ij,jk,ik->i", new, np.linalg.inv(design.T @ design), new) + (s2 if prediction else 0)
    return new @ coef, stats.t.ppf((1 + level) / 2, dof) * np.sqrt(var)


def test_predict_takes_one_sensor_of_any_results_format_and_gives_its_interval(tmp_path, capsys):
    data = tmp_path / "messy.csv"
    data.write_text(MESSY)
    t_u, t_c = _good()
    x0 = np.array([12.5, 35.0, 80.0])  # inside and outside the calibrated range
    design = np.stack([t_u, np.ones_like(t_u)], axis=1)
    for suffix in (".csv", ".parquet", ".npz", ".json"):
        fits = tmp_path / f"fits{suffix}"
        assert _jaxcal("fleet", str(data), "--x64", "--out", str(fits)).returncode == 0
        for level, interval in ((0.95, "prediction"), (0.9, "confidence")):
            # predict in this interpreter (it starts nothing up): the fits above need x64, predict does not
            done = _in_process(capsys, "predict", "--cal", str(fits), "--sensor", "good", "--level", str(level),
                               "--interval", interval, "--json", *map(str, x0))
            assert done.returncode == 0, done.stderr
            got = json.loads(done.stdout)
            centre, half = _linear_interval(t_u, t_c, x0, level, interval == "prediction")
            # the value: float64 from the float64 params (the fit's roundings); the half-width computed in
            # float32 (JAX without x64) from the stored covariance: float32's eps times a few roundings
            np.testing.assert_allclose(got["t_c"], centre, rtol=_rtol(design, len(t_u)))
            np.testing.assert_allclose(np.subtract(got["high"], got["t_c"]), half, rtol=8 * np.finfo(np.float32).eps)
            np.testing.assert_allclose(np.subtract(got["t_c"], got["low"]), half, rtol=8 * np.finfo(np.float32).eps)
    # a sensor without a calibration, and a table of several sensors without --sensor: one line, exit 2
    for argv, words in ((["--sensor", "flat"], "--sensor: sensor flat has no calibration in"),
                        ([], "holds 4 sensors' calibrations; say which with --sensor ID")):
        done = _in_process(capsys, "predict", "--cal", str(tmp_path / "fits.csv"), *argv, "20")
        assert done.returncode == 2
        assert len(done.stderr.strip().splitlines()) == 1
        assert words in done.stderr


def test_columns_by_name_a_separator_missing_cells_and_sigma_make_a_weighted_fit(tmp_path):
    """A logger's table: other column names in another case, semicolons, an extra column, -999 for a missing
    value, and a sigma column: the weighted least-squares line of the kept readings (relative sigma, as
    SciPy's curve_fit), computed here by the normal equations in NumPy."""
    t_u = np.array([10.0, 20, 30, 40, 55, 70])
    t_c = np.array([5.5, 9.25, 16.0, 20.5, 28.0, 33.0])
    sigma = np.array([0.5, 0.5, 1.0, 1.0, 2.0, 1.0])
    lines = [f"a;{u!r};{c!r};site1;{s!r}" for u, c, s in zip(t_u.tolist(), t_c.tolist(), sigma.tolist(), strict=True)]
    data = tmp_path / "log.csv"
    data.write_text("\n".join(["ID;Raw;Celsius;Site;U", *lines, "a;80;-999;site1;1", "b;5;1;site2;1"]) + "\n")
    out = tmp_path / "fits.csv"
    done = _jaxcal("fleet", str(data), "--x64", "--columns", "sensor=id,t_u=raw,t_c=celsius,sigma=u",
                   "--missing", "-999", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (f"2 sensors fitted (--solver ls): 1 converged, 1 undetermined; "
                                   f"1 missing reading dropped; results in {out}")
    rows = _rows(out)
    assert (int(rows["a"]["readings"]), int(rows["a"]["dropped"])) == (6, 1)
    assert (rows["b"]["status"], rows["b"]["reason"]) == ("undetermined", "1 reading for 2 params")
    design = np.stack([t_u, np.ones_like(t_u)], axis=1)
    weighted = design / sigma[:, None]
    normal = np.linalg.inv(weighted.T @ weighted)
    coef = normal @ weighted.T @ (t_c / sigma)
    chi2 = np.sum(((t_c - design @ coef) / sigma) ** 2)
    cov = chi2 / (len(t_u) - 2) * normal
    rtol = _rtol(weighted, len(t_u))
    atol = rtol * np.linalg.norm(t_c / sigma) / np.linalg.norm(weighted, axis=0)  # normwise, as above
    got = np.array([float(rows["a"]["w"]), float(rows["a"]["b"])])
    assert np.all(np.abs(got - coef) <= atol), (got, coef, atol)
    np.testing.assert_allclose([float(rows["a"][k]) for k in ("cov_w_w", "cov_w_b", "cov_b_b")],
                               [cov[0, 0], cov[0, 1], cov[1, 1]], rtol=rtol)


def test_a_bad_column_mapping_is_one_line_exit_2_and_nothing_written(tmp_path):
    data = tmp_path / "log.csv"
    data.write_text("id,raw,celsius\na,1,2\na,2,3\n")
    out = tmp_path / "fits.csv"
    for argv, words in ((["--columns", "sensor=id,t_q=raw"], "--columns: unknown role 't_q'"),
                        (["--columns", "sensor=id,t_u=nope,t_c=celsius"], "nope"),
                        (["--solver", "gd", "--columns", "sensor=id,t_u=raw,t_c=celsius,sigma=raw"],
                         "--solver: gd fits without weights")):
        done = _jaxcal("fleet", str(data), *argv, "--out", str(out))
        assert done.returncode == 2, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert words in done.stderr
        assert not out.exists()


def test_a_model_written_as_an_expression_reaches_nists_certified_misra1a_values(tmp_path):
    import nist_strd

    problem = nist_strd.load("Misra1a")
    rows = zip(problem.x.tolist(), problem.y.tolist(), strict=True)
    data = tmp_path / "misra.csv"
    data.write_text("sensor,t_u,t_c\n" + "".join(f"m,{x!r},{y!r}\n" for x, y in rows))
    out = tmp_path / "fits.parquet"
    start = ",".join(f"b{j + 1}={v!r}" for j, v in enumerate(np.asarray(problem.start1).tolist()))  # NIST's first start
    done = _jaxcal("fleet", str(data), "--x64", "--model", "b1*(1-exp(-b2*t_u))", "--init", start, "--out", str(out))
    assert done.returncode == 0, done.stderr
    import pyarrow.parquet as pq

    row = {k: v[0] for k, v in pq.read_table(out).to_pydict().items()}
    assert (row["status"], row["solver"], row["model"]) == ("converged", "lm", "b1*(1-exp(-b2*t_u))")
    rtol = 1e-6  # the task's figure: 6 significant digits of the certified values
    np.testing.assert_allclose([row["b1"], row["b2"]], problem.params, rtol=rtol)
    np.testing.assert_allclose([row["stderr_b1"], row["stderr_b2"]], problem.stderr, rtol=rtol)
    np.testing.assert_allclose(row["residual_sd"], problem.residual_sd, rtol=rtol)
    # predict reads the expression back from the table: the value is the model at the fitted params
    done = _jaxcal("predict", "--cal", str(out), "--json", "500")
    assert done.returncode == 0, done.stderr
    value = json.loads(done.stdout)["t_c"][0]
    # float32 evaluation of the expression (JAX without x64): a few float32 roundings of a value of ~50
    np.testing.assert_allclose(value, row["b1"] * -np.expm1(-row["b2"] * 500), rtol=8 * np.finfo(np.float32).eps)


@pytest.mark.parametrize(("argv", "words"), [
    (["--model", "b1*(1-exq(-b2*t_u))", "--init", "b1=1,b2=1"], "--model: 'b1*(1-exq(-b2*t_u))': unknown function"),
    (["--model", "b1*(1-exp(-b2*t_u))"], "--init: the model 'b1*(1-exp(-b2*t_u))' has no default start"),
    (["--model", "b1*(1-exp(-b2*t_u))", "--init", "b1=1"], "--init: no start for b2"),
    (["--model", "b1*(1-exp(-b2*t_u))", "--init", "b1=1,b3=2"], "--init: 'b3' is not a param of the model"),
])
def test_a_bad_expression_or_start_is_one_line_and_exit_2(tmp_path, argv, words):
    data = tmp_path / "log.csv"
    data.write_text("sensor,t_u,t_c\na,1,2\na,2,3\na,3,5\n")
    out = tmp_path / "fits.csv"
    done = _jaxcal("fleet", str(data), *argv, "--out", str(out))
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert done.stderr.startswith(f"jaxcal fleet: error: {words}")
    assert not out.exists()


def test_report_draws_every_sensor_of_a_messy_fleet_with_the_counts_of_its_results(tmp_path):
    pytest.importorskip("matplotlib")
    data = tmp_path / "messy.csv"
    data.write_text(MESSY)
    out, page = tmp_path / "fits.csv", tmp_path / "report.html"
    done = _jaxcal("fleet", str(data), "--solver", "ls", "--out", str(out), "--report", str(page))
    assert done.returncode == 0, done.stderr
    text = page.read_text()
    statuses = [row["status"] for row in _rows(out).values()]
    # the page's status table counts what the results table says, row by row
    for status in ("converged", "undetermined"):
        assert f'<td>{status}</td><td class="n">{statuses.count(status)}</td>' in text
    # each sensor without a fit is listed with the reason the results table gives it
    for sensor, row in _rows(out).items():
        if row["status"] != "converged":
            assert f"<td>{row['status']}</td><td>{row['reason']}</td>" in text, sensor
    assert "messy.csv" in text
    assert "<img" in text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fits.csv", "messy.csv", "report.html"]


def test_a_report_not_named_html_is_one_line_exit_2_and_nothing_written(tmp_path):
    data = tmp_path / "messy.csv"
    data.write_text(MESSY)
    done = _jaxcal("fleet", str(data), "--out", str(tmp_path / "fits.csv"), "--report", str(tmp_path / "report.png"))
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert "--report" in done.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["messy.csv"]
