"""The command line calibrates: ``fleet`` by least squares by default, every sensor with its standard
errors, residual SD, dof and status, in every output format alike; ``--solver gd`` keeps the book's
gradient descent, its uncertainty computed at its final params; ``train --solver ls|lm`` and a saved
calibration's covariance; NIST's certified values through ``fleet --x64``.

References: SciPy's ``scipy.stats.linregress`` for lines, the textbook formulas in NumPy for the
uncertainty at given params, NIST StRD's certified values (tests/nist).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import nist_strd
import numpy as np
import pytest
from scipy import stats

from jaxcal.calibration import load_calibration
from jaxcal.cli import build_parser, main

EPS64 = float(np.finfo(np.float64).eps)

#: The columns of every ``fleet --out`` file of the linear model, whatever the solver, in order.
COLUMNS = ["sensor", "w", "b", "stderr_w", "stderr_b", "cov_w_w", "cov_w_b", "cov_b_b", "residual_sd", "dof",
           "readings", "dropped", "rss", "r_squared", "status", "reason", "steps", "model", "solver", "scale"]
#: The keys of each sensor of ``fleet --json``, in order: the same as ``--out``'s columns.
JSON_KEYS = COLUMNS
STATUSES = {"converged", "max_steps", "nonfinite", "undetermined"}


def _jaxcal(*argv: str) -> subprocess.CompletedProcess:
    """``jaxcal ARGV`` in its own interpreter (``--x64`` is a start-up choice), checked to succeed."""
    done = subprocess.run([sys.executable, "-m", "jaxcal", *argv], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done


def _write_long(path: Path, readings: dict[str, tuple[np.ndarray, np.ndarray]]) -> Path:
    """A long CSV table; each float as the shortest text that reads back to the same double."""
    rows = [f"{sensor},{u!r},{c!r}\n" for sensor, (t_u, t_c) in readings.items()
            for u, c in zip(t_u.tolist(), t_c.tolist(), strict=True)]
    path.write_text("sensor,t_u,t_c\n" + "".join(rows))
    return path


def _read_csv(path: Path) -> dict[str, dict[str, str]]:
    """``fleet --out`` CSV rows by sensor (cells as text)."""
    with open(path, newline="") as file:
        return {row["sensor"]: row for row in csv.DictReader(file)}


def _fleet(seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Six noisy lines of 5 to 12 readings (a ragged fleet), a sensor of exactly 2 readings (dof 0), and
    one whose readings are all at one t_u (its slope undetermined)."""
    rng = np.random.default_rng(seed)
    fleet = {}
    for s, n in enumerate((5, 7, 12, 9, 11, 6)):
        t_u = rng.uniform(20, 90, n)
        fleet[f"s{s}"] = t_u, rng.uniform(0.4, 0.7) * t_u - rng.uniform(10, 20) + rng.normal(0, 1.5, n)
    fleet["two"] = np.array([30.0, 70.0]), np.array([-1.0, 20.0])
    fleet["flat"] = np.array([50.0, 50.0, 50.0]), np.array([8.0, 9.0, 10.5])
    return fleet


def _rtol(t_u: np.ndarray, n: int) -> float:
    """How far two float64 least-squares solutions of one line may differ, relative: ``n`` roundings of
    ``eps`` each, amplified by ``cond**2`` of the column-scaled design (SciPy's sums and the textbook
    inverse of ``X^T X`` square it), with a factor 10 of margin."""
    design = np.stack([t_u, np.ones_like(t_u)], axis=1)
    design = design / np.linalg.norm(design, axis=0)
    return 10 * n * np.linalg.cond(design) ** 2 * EPS64


# -- fleet: least squares by default, with each sensor's uncertainty -----------------------------------------


def test_fleet_is_least_squares_by_default_with_scipys_standard_errors(tmp_path):
    fleet = _fleet()
    data = _write_long(tmp_path / "fleet.csv", fleet)
    done = _jaxcal("fleet", str(data), "--x64", "--out", str(tmp_path / "fits.csv"))
    assert done.stdout.strip() == (f"8 sensors fitted (--solver ls): 7 converged, 1 undetermined; "
                                   f"results in {tmp_path / 'fits.csv'}")
    rows = _read_csv(tmp_path / "fits.csv")
    assert sorted(rows) == sorted(fleet)  # every sensor in the output, the undetermined one too
    for sensor, (t_u, t_c) in fleet.items():
        row = rows[sensor]
        assert (row["solver"], float(row["scale"]), int(row["steps"])) == ("ls", 1.0, 1)
        assert (int(row["dof"]), int(row["readings"]), int(row["dropped"])) == (len(t_u) - 2, len(t_u), 0)
        if sensor == "flat":
            assert (row["status"], row["reason"]) == ("undetermined", "all readings at one t_u")
            assert all(math.isnan(float(row[key])) for key in ("w", "b", "stderr_w", "stderr_b", "cov_w_b"))
            continue
        assert (row["status"], row["reason"]) == ("converged", "")
        ref = stats.linregress(t_u, t_c)
        rtol = _rtol(t_u, len(t_u))
        np.testing.assert_allclose([float(row["w"]), float(row["b"])], [ref.slope, ref.intercept], rtol=rtol)
        np.testing.assert_allclose(float(row["r_squared"]), ref.rvalue**2, rtol=rtol)
        if sensor == "two":  # a line through 2 readings: no residual left to estimate the scatter from
            assert all(math.isnan(float(row[key])) for key in ("stderr_w", "stderr_b", "residual_sd"))
            continue
        np.testing.assert_allclose([float(row["stderr_w"]), float(row["stderr_b"])],
                                   [ref.stderr, ref.intercept_stderr], rtol=rtol)
        residuals = t_c - (ref.slope * t_u + ref.intercept)
        np.testing.assert_allclose(float(row["residual_sd"]), np.sqrt(residuals @ residuals / (len(t_u) - 2)),
                                   rtol=rtol)


@pytest.mark.parametrize(("name", "model"), [("Norris", "linear"), ("Pontius", "quadratic")])
def test_fleet_x64_meets_nists_certified_values_to_10_digits(tmp_path, name, model):
    problem = nist_strd.load(name)
    data = _write_long(tmp_path / "nist.csv", {name: (problem.x, problem.y)})
    _jaxcal("fleet", str(data), "--x64", "--model", model, "--out", str(tmp_path / "x.csv"))
    row = _read_csv(tmp_path / "x.csv")[name]
    names = ["w", "b"] if model == "linear" else ["w2", "w1", "b"]
    rtol = 1e-10  # the figure: at least 10 significant digits of the certified values
    assert row["status"] == "converged"
    assert int(row["dof"]) == problem.dof
    # NIST lists B0 (the intercept) first; jaxcal's params end with it
    np.testing.assert_allclose([float(row[n]) for n in reversed(names)], problem.params, rtol=rtol)
    np.testing.assert_allclose([float(row[f"stderr_{n}"]) for n in reversed(names)], problem.stderr, rtol=rtol)
    np.testing.assert_allclose(float(row["residual_sd"]), problem.residual_sd, rtol=rtol)
    np.testing.assert_allclose(float(row["r_squared"]), problem.r_squared, rtol=rtol)


# -- the same fields for every solver and output format ----------------------------------------------------


def _columns(path: Path) -> dict[str, list]:
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as archive:
            return {name: archive[name].tolist() for name in archive.files}
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pydict()
    if path.suffix == ".json":
        rows = json.loads(path.read_text())
        return {name: [row[name] for row in rows] for name in rows[0]}
    with open(path, newline="") as file:
        header, *rows = list(csv.reader(file))
    return {name: [row[j] for row in rows] for j, name in enumerate(header)}


@pytest.mark.parametrize(("solver", "flags"), [("auto", []), ("ls", []), ("lm", []), ("gd", ["--epochs", "200"])])
def test_every_solver_writes_the_same_fields_in_every_format(tmp_path, capsys, solver, flags):
    fleet = _fleet(1)  # the undetermined sensor too: one row of every output, whatever the solver
    data = _write_long(tmp_path / "fleet.csv", fleet)
    for suffix in (".csv", ".json", ".parquet", ".npz"):
        assert main(["fleet", str(data), "--solver", solver, *flags, "--out", str(tmp_path / f"fits{suffix}")]) == 0
        got = _columns(tmp_path / f"fits{suffix}")
        assert list(got) == COLUMNS, suffix
        assert [str(s) for s in got["sensor"]] == sorted(fleet)
        assert {str(s) for s in got["status"]} <= STATUSES
        assert {str(s) for s in got["solver"]} == {"ls" if solver == "auto" else solver}
        # the params apply to the raw readings (gradient descent's, fitted to 0.1 t_u, converted back)
        assert [float(s) for s in got["scale"]] == [1.0] * len(fleet)
        assert {str(s) for s in got["model"]} == {"linear"}
    capsys.readouterr()
    assert main(["fleet", str(data), "--solver", solver, *flags, "--json"]) == 0
    sensors = json.loads(capsys.readouterr().out)["sensors"]
    assert [list(s) for s in sensors] == [JSON_KEYS] * len(fleet)
    csv_rows = _read_csv(tmp_path / "fits.csv")
    for fit in sensors:  # --json holds the same values as --out (the shortest text of each double: exact)
        row = csv_rows[fit["sensor"]]
        for key in COLUMNS:
            if isinstance(fit[key], str):
                assert fit[key] == row[key], key
            elif fit[key] is None:
                assert math.isnan(float(row[key])), key
            else:
                assert fit[key] == float(row[key]), key


def test_gradient_descent_reports_its_uncertainty_at_its_own_params(tmp_path):
    fleet = _fleet(2)
    # readings 1000 times larger: plain gradient descent at the default learning rate diverges on them
    fleet["big"] = 1000 * fleet["s1"][0], 1000 * fleet["s1"][1]
    data = _write_long(tmp_path / "fleet.csv", fleet)
    epochs = 300  # far from converged: the uncertainty is that of these params, not of least squares
    done = _jaxcal("fleet", str(data), "--x64", "--solver", "gd", "--epochs", str(epochs), "--out",
                   str(tmp_path / "fits.csv"))
    assert "(--solver gd): 7 max_steps, 1 nonfinite, 1 undetermined" in done.stdout
    rows = _read_csv(tmp_path / "fits.csv")
    big, flat = rows.pop("big"), rows.pop("flat")
    assert (flat["status"], flat["reason"]) == ("undetermined", "all readings at one t_u")
    assert math.isnan(float(flat["w"]))
    assert (big["status"], big["reason"]) == ("nonfinite", "diverged")
    assert math.isnan(float(big["w"]))
    assert math.isnan(float(big["stderr_w"]))
    for sensor, row in rows.items():
        t_u, t_c = fleet[sensor]
        # fitted to 0.1 t_u, the params converted to the raw readings: w times 0.1, its covariance by the same factor
        assert (row["status"], row["reason"], row["solver"], float(row["scale"]), int(row["steps"])) \
            == ("max_steps", "", "gd", 1.0, epochs)
        w, b = float(row["w"]), float(row["b"])
        ref = stats.linregress(t_u, t_c)
        rtol = _rtol(t_u, len(t_u) + 2)  # the fit's roundings and the conversion's two (w and its variance)
        assert abs(w - ref.slope) > 1e3 * rtol * abs(ref.slope)  # 300 epochs are not least squares: a real test
        residuals = t_c - (w * t_u + b)
        rss = residuals @ residuals
        np.testing.assert_allclose(float(row["rss"]), rss, rtol=rtol)
        if len(t_u) == 2:
            continue
        design = np.stack([t_u, np.ones_like(t_u)], axis=1)
        cov = rss / (len(t_u) - 2) * np.linalg.inv(design.T @ design)  # the textbook formula, at (w, b)
        np.testing.assert_allclose([float(row["stderr_w"]), float(row["stderr_b"])], np.sqrt(np.diag(cov)),
                                   rtol=rtol)
        np.testing.assert_allclose([float(row["cov_w_w"]), float(row["cov_w_b"]), float(row["cov_b_b"])],
                                   [cov[0, 0], cov[0, 1], cov[1, 1]], rtol=rtol)
        np.testing.assert_allclose(float(row["residual_sd"]), np.sqrt(rss / (len(t_u) - 2)), rtol=rtol)


def _many(path: Path, seed: int) -> Path:
    """:func:`_fleet` and 600 more lines: enough sensors that a share of them (a device's, a process's)
    would be fitted in smaller compiled tiles than the whole fleet (a fit's last bits depend on its
    tile's size: the command line pads every share to whole tiles)."""
    rng = np.random.default_rng(seed)
    fleet = _fleet(seed)
    for s in range(600):
        t_u = rng.uniform(20, 90, 11)
        fleet[f"r{s}"] = t_u, 0.54 * t_u - 17 + rng.normal(0, 1.5, 11)
    return _write_long(path, fleet)


def test_a_calibration_is_bit_identical_on_1_2_and_4_devices(tmp_path):
    data = _many(tmp_path / "fleet.csv", 5)
    # lm on three device counts (its slots per device are what changes with them), ls's tiles on two
    for solver, counts in (("lm", ("1", "2", "4")), ("ls", ("1", "4"))):
        outputs = [_jaxcal("fleet", str(data), "--solver", solver, "--json", "--devices", devices).stdout
                   for devices in counts]
        assert all(output == outputs[0] for output in outputs[1:])
        assert outputs[0]


def test_a_multi_process_calibration_is_the_single_process_one(tmp_path):
    data = _many(tmp_path / "fleet.csv", 3)
    for solver in ("lm",):  # the processes' split and gather are the same code for every solver
        single = _jaxcal("fleet", str(data), "--solver", solver, "--json").stdout
        launched = _jaxcal("launch", "-n", "2", "--", "fleet", str(data), "--solver", solver, "--json").stdout
        assert launched == single  # bit for bit
        assert {s["status"] for s in json.loads(single)["sensors"]} == {"converged", "undetermined"}
    # more processes than sensors: the one without a sensor fits none, and the run still reports it
    one = _write_long(tmp_path / "one.csv", {"a": (np.array([1.0, 2.0, 4.0]), np.array([2.0, 3.0, 5.5]))})
    assert _jaxcal("launch", "-n", "2", "--", "fleet", str(one), "--json").stdout \
        == _jaxcal("fleet", str(one), "--json").stdout


# -- flags that only gradient descent reads ----------------------------------------------------------------


@pytest.mark.parametrize("argv", [
    ["fleet", "{d}", "--epochs", "100"], ["fleet", "{d}", "--lr", "1e-3"], ["fleet", "{d}", "--optimizer", "adam"],
    ["fleet", "{d}", "--scale", "1"], ["fleet", "{d}", "--solver", "lm", "--epochs", "100"],
    ["train", "--solver", "ls", "--epochs", "10"], ["train", "--solver", "lm", "--gradient", "analytic"],
    ["train", "--solver", "ls", "--exact"], ["train", "--solver", "ls", "--book-split"],
    ["train", "--solver", "ls", "--log-every", "5"], ["train", "--solver", "lm", "--val-fraction", "0.2"],
])
def test_a_gradient_descent_flag_given_to_another_solver_is_one_line_and_exit_2(tmp_path, capsys, argv):
    # the data file does not exist: the flag is refused before anything is read
    status = main([a.format(d=tmp_path / "missing.csv") for a in argv])
    _out, err = capsys.readouterr()
    flag = next(a for a in argv if a.startswith("--") and a != "--solver")
    assert status == 2
    assert err.startswith(f"jaxcal {argv[0]}: error: {flag}: only gradient descent (--solver gd) reads it; ")
    assert err.count("\n") == 1


def test_least_squares_takes_no_start(capsys):
    assert main(["train", "--solver", "ls", "--init", "1", "0"]) == 2
    assert capsys.readouterr().err.startswith("jaxcal train: error: --init: least squares needs no start")


def test_the_solvers_and_their_help_come_from_the_librarys_table(monkeypatch):
    from jaxcal import solvers

    def choices(parser: argparse.ArgumentParser, command: str) -> tuple[list[str], str]:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[command]
        action = next(a for a in sub._actions if "--solver" in a.option_strings)
        return list(action.choices), action.help

    monkeypatch.setitem(solvers.SOLVERS, "xx", (solvers.LeastSquares, "a solver of tomorrow"))
    listed, text = choices(build_parser(), "fleet")
    # auto first, then the table's order; the book's gradient descent whether or not the table has it
    assert listed == ["auto", *solvers.SOLVERS, *(["gd"] if "gd" not in solvers.SOLVERS else [])]
    assert "xx (a solver of tomorrow)" in text
    listed = choices(build_parser(), "train")[0]
    assert listed[0] == "gd"  # train's default
    assert sorted(listed) == sorted({"gd", "auto", *solvers.SOLVERS})  # train also picks by the model (auto)
    monkeypatch.setitem(solvers.SOLVERS, "gd", (solvers.LeastSquares, "the book's, from the table"))
    listed, text = choices(build_parser(), "fleet")
    assert listed.count("gd") == 1
    assert "gd (the book's, from the table)" in text
    monkeypatch.delitem(solvers.SOLVERS, "gd")
    listed, text = choices(build_parser(), "fleet")
    assert listed.count("gd") == 1
    assert "gd (gradient descent" in text


def _flag_help(command: str, flag: str) -> tuple[list[str] | None, str]:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices[command]
    action = next(a for a in sub._actions if flag in a.option_strings)
    return (None if action.choices is None else list(action.choices)), " ".join(action.help.split())


@pytest.mark.parametrize("command", ["train", "parity", "sweep", "fleet"])
def test_the_optimizers_models_and_gradients_and_their_help_come_from_the_librarys_tables(monkeypatch, command):
    from jaxcal import core, evaluate, updates

    monkeypatch.setitem(updates.OPTIMIZERS, "lion", "an optimiser of tomorrow")
    monkeypatch.setitem(core.MODELS, "cubic", core.MODELS["quadratic"]._replace(name="cubic", formula="c * t_u**3"))
    monkeypatch.setitem(evaluate.GRADIENTS, "complex-step", "a gradient of tomorrow")
    text = _flag_help(command, "--optimizer")[1]
    for name, summary in updates.OPTIMIZERS.items():
        assert f"{name} ({summary})" in text
    text = _flag_help(command, "--model")[1]
    for name, spec in core.MODELS.items():
        assert f"{name} ({spec.formula})" in text
    if command in ("train", "parity"):
        text = _flag_help(command, "--gradient")[1]
        for name, summary in evaluate.GRADIENTS.items():
            assert f"{name} ({summary})" in text


@pytest.mark.standard_promotion  # optax's Adam mixes Python floats with int32 step counts
def test_the_library_takes_the_optimizers_by_the_names_the_command_line_offers():
    from jaxcal import data, training_loop
    from jaxcal.updates import OPTIMIZERS

    t_u, t_c = data.readings(np.float32)
    t_un = t_u * np.float32(0.1)
    assert next(iter(OPTIMIZERS)) == "plain"
    runs = {name: training_loop(50, 1e-2, (1.0, 0.0), t_un, t_c, optimizer=name) for name in OPTIMIZERS}
    seed = training_loop(50, 1e-2, (1.0, 0.0), t_un, t_c, optimizer=None)
    # "plain" is the seed's update itself: the same program, so the same bits
    np.testing.assert_array_equal(np.asarray(runs["plain"].params), np.asarray(seed.params))
    with pytest.raises(ValueError, match="optimizer: unknown optimizer 'lion'; choose one of plain, sgd, adam"):
        training_loop(5, 1e-2, (1.0, 0.0), t_un, t_c, optimizer="lion")


def test_sweep_has_its_own_flags_and_borrows_none_of_trains():
    """A sweep logs no schedule and varies the learning rate: the parsed arguments hold what its help
    offers and nothing else (no flag of train's set behind the user's back)."""
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices["sweep"]
    offered = {a.dest for a in sub._actions}
    parsed = vars(parser.parse_args(["sweep"]))
    assert set(parsed) - offered == {"command"}
    for train_only in ("lr", "gradient", "fd_delta", "log_every", "log_epochs", "val_fraction", "split_seed",
                       "book_split", "exact"):
        assert train_only not in parsed


# -- train --solver, and the calibration it saves ----------------------------------------------------------


def test_train_least_squares_prints_scipys_params_and_standard_errors(tmp_path):
    from jaxcal import data

    t_u, t_c = data.readings(np.float64)
    ref = stats.linregress(t_u, t_c)
    rtol = _rtol(t_u, len(t_u))
    for solver in ("ls", "lm"):
        fit = json.loads(_jaxcal("train", "--solver", solver, "--x64", "--json").stdout)
        assert (fit["solver"], fit["status"], fit["dof"], fit["param_names"]) == (solver, "converged", 9, ["w", "b"])
        np.testing.assert_allclose(fit["params"], [ref.slope, ref.intercept], rtol=rtol)
        np.testing.assert_allclose(fit["stderr"], [ref.stderr, ref.intercept_stderr], rtol=rtol)
        np.testing.assert_allclose(fit["r_squared"], ref.rvalue**2, rtol=rtol)
        np.testing.assert_allclose(np.sqrt(np.diag(fit["cov"])), fit["stderr"], rtol=rtol)
    lines = _jaxcal("train", "--solver", "ls", "--x64").stdout.splitlines()
    assert lines[0].startswith("solver ls (least squares")
    assert lines[1].split() == ["param", "value", "standard", "error"]
    assert [line.split()[0] for line in lines[2:4]] == ["w", "b"]
    np.testing.assert_allclose([float(line.split()[2]) for line in lines[2:4]], [ref.stderr, ref.intercept_stderr],
                               rtol=rtol)
    assert lines[4].startswith("residual SD ")
    assert lines[4].endswith("status converged after 1 step")


def test_train_saves_the_covariance_and_predict_uses_the_calibration(tmp_path, capsys):
    from jaxcal import data

    t_u, t_c = data.readings(np.float64)
    ref = stats.linregress(t_u, t_c)
    rtol = _rtol(t_u, len(t_u))
    _jaxcal("train", "--solver", "ls", "--x64", "--save", str(tmp_path / "ls.json"))
    stored = json.loads((tmp_path / "ls.json").read_text())
    assert (stored["format"], stored["solver"], stored["dof"], stored["scale"]) == ("jaxcal-calibration/3", "ls", 9,
                                                                                   1.0)
    np.testing.assert_allclose(stored["stderr"], [ref.stderr, ref.intercept_stderr], rtol=rtol)
    np.testing.assert_allclose(np.diag(stored["cov"]), np.square(stored["stderr"]), rtol=rtol)
    assert load_calibration(tmp_path / "ls.json").cov == tuple(tuple(row) for row in stored["cov"])
    assert main(["predict", "--cal", str(tmp_path / "ls.json"), "45"]) == 0
    predicted = float(capsys.readouterr().out.split("->")[1].split()[0])  # then the interval's bounds
    assert predicted == pytest.approx(ref.slope * 45 + ref.intercept, abs=1e-4)  # predict prints 4 decimals

    # gradient descent's calibration: its covariance computed at its own params, by the textbook formula
    _jaxcal("train", "--x64", "--epochs", "500", "--save", str(tmp_path / "gd.json"))
    stored = json.loads((tmp_path / "gd.json").read_text())
    assert (stored["format"], stored["solver"], stored["dof"], stored["scale"]) == ("jaxcal-calibration/3", "gd", 9,
                                                                                   0.1)
    w, b = stored["params"]
    t_un = 0.1 * t_u
    residuals = t_c - (w * t_un + b)
    design = np.stack([t_un, np.ones_like(t_un)], axis=1)
    cov = residuals @ residuals / 9 * np.linalg.inv(design.T @ design)
    np.testing.assert_allclose(stored["cov"], cov, rtol=_rtol(t_un, len(t_u)))


def test_version_2_calibrations_still_load_and_predict(tmp_path, capsys):
    old = {"format": "jaxcal-calibration/2", "params": [5.0, -17.0], "model": "linear", "scale": 0.1, "loss": 2.9,
           "settings": {}, "data_fingerprint": "", "jaxcal_version": "0.2.0", "diverged": False, "diverged_at": None}
    (tmp_path / "v2.json").write_text(json.dumps(old))
    calibration = load_calibration(tmp_path / "v2.json")
    assert (calibration.solver, calibration.cov, calibration.stderr, calibration.dof) == ("gd", None, None, None)
    assert main(["predict", "--cal", str(tmp_path / "v2.json"), "40"]) == 0
    assert capsys.readouterr().out.strip() == "40 -> 3.0000"  # 5 * (0.1 * 40) - 17


@pytest.mark.parametrize(("field", "value", "words"), [
    ("cov", [[1.0, 2.0]], "cov must be 2 rows of 2 numbers"), ("stderr", [1.0, "x"], "stderr must be 2 numbers"),
    ("dof", -1, "dof must be null or an integer >= 0"), ("dof", 2.5, "dof must be null or an integer >= 0"),
    ("residual_sd", -1.0, "residual_sd must be null or a finite number >= 0"),
    ("solver", ["ls"], "solver must be a solver's short name"),
])
def test_a_version_3_file_with_a_bad_uncertainty_is_refused_in_one_line(tmp_path, capsys, field, value, words):
    good = {"format": "jaxcal-calibration/3", "params": [5.0, -17.0], "model": "linear", "scale": 1.0, "loss": 2.9,
            "settings": {}, "data_fingerprint": "", "jaxcal_version": "0.2.0", "diverged": False, "diverged_at": None,
            "solver": "ls", "cov": [[1.0, 0.5], [0.5, 2.0]], "stderr": [1.0, 1.5], "dof": 9, "residual_sd": 1.8}
    (tmp_path / "c.json").write_text(json.dumps({**good, field: value}))
    assert main(["predict", "--cal", str(tmp_path / "c.json"), "40"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("jaxcal predict: error: ")
    assert words in err
    assert err.count("\n") == 1


def test_plots_of_least_squares_fits(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    data = _write_long(tmp_path / "fleet.csv", _fleet(4))
    assert main(["fleet", str(data), "--plot", str(tmp_path / "fleet.svg"), "--quiet"]) == 0
    assert main(["train", "--solver", "ls", "--plot", str(tmp_path / "fit.svg")]) == 0
    for name in ("fleet.svg", "fit.svg"):
        assert b"<svg" in (tmp_path / name).read_bytes()[:1000]
