"""A tool people trust: one catalogue of bad input across every subcommand, nothing half-written,
saved calibrations, plots, and the properties that make the numbers believable."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from programs import wait_for

from jaxcal import data, training_loop
from jaxcal.calibration import Calibration, load_calibration, save_calibration
from jaxcal.cli import main
from jaxcal.fleet import fit_fleet, least_squares
from jaxcal.tolerances import gd_trajectory_bounds

PNG = b"\x89PNG\r\n\x1a\n"

# a saved calibration, as jaxcal writes one (variants of it below are not)
CALIBRATION = ('{"format": "jaxcal-calibration/1", "params": [5.0, -17.0], "model": "linear", "scale": 0.1, '
               '"loss": 2.9, "settings": {}, "data_fingerprint": "", "jaxcal_version": "0.1.0"}')

# (argv with {tmp} placeholders, files to create {name: content}, words the error must contain)
CATALOGUE = [
    (["train", "--data", "{tmp}/missing.csv"], {}, "no such file"),
    (["train", "--data", "{tmp}"], {}, "is a directory"),
    (["train", "--data", "{tmp}/empty.csv"], {"empty.csv": ""}, "is empty"),
    (["train", "--data", "{tmp}/head.csv"], {"head.csv": "t_u,t_c\n"}, "needs at least 2 readings, got 0"),
    (["train", "--data", "{tmp}/cols.csv"], {"cols.csv": "x,t_c\n1,2\n3,4\n"}, "expected the header 't_u,t_c'"),
    (["train", "--data", "{tmp}/nan.csv"], {"nan.csv": "t_u,t_c\n1,nan\n2,3\n"}, "t_c is not finite"),
    (["train", "--data", "{tmp}/text.csv"], {"text.csv": "t_u,t_c\n1,abc\n2,3\n"}, "t_c is not a number"),
    (["train", "--data", "{tmp}/ragged.csv"], {"ragged.csv": "t_u,t_c\n1,2\n3\n"}, "expected 2 values, got 1"),
    (["train", "--data", "{tmp}/one.csv"], {"one.csv": "t_u,t_c\n1,2\n"}, "needs at least 2 readings, got 1"),
    (["train", "--data", "{tmp}/bin.csv"], {"bin.csv": b"\xff\xfe\x00\x81garbage"}, "not a UTF-8 text CSV"),
    (["train", "--data", "{tmp}/big.csv"], {"big.csv": "t_u,t_c\n1e39,2\n3,4\n"}, "too large for float32"),
    (["train", "--epochs", "-3"], {}, "--epochs: must be a positive integer"),
    (["train", "--lr", "0"], {}, "--lr: must be a positive finite number"),
    (["train", "--log-every", "0"], {}, "--log-every: must be a positive integer"),
    (["train", "--init", "1"], {}, "--init: the linear model expects 2 numbers"),
    (["train", "--optimizer", "lbfgs"], {}, "--optimizer: unknown optimizer 'lbfgs'"),
    (["train", "--model", "cubic"], {}, "--model: unknown model 'cubic'"),
    (["train", "--save", "{tmp}"], {}, "--save: "),
    (["train", "--save", "{tmp}/no/such/dir/cal.json"], {}, "--save: cannot write"),
    (["train", "--plot", "{tmp}/no/such/dir/fit.png"], {}, "--plot: cannot write"),
    (["sweep", "--num", "0"], {}, "--num: must be a positive integer"),
    (["sweep", "--lr-min", "-1"], {}, "--lr-min: must be a positive finite number"),
    (["sweep", "--exact"], {}, "unrecognized arguments: --exact"),
    (["train", "--device", "gpu"], {}, "--device: no gpu device here (JAX runs on cpu)"),
    (["fleet", "{tmp}/f.csv", "--device", "tpu"], {"f.csv": "sensor,t_u,t_c\n1,2,3\n1,3,4\n"},
     "--device: must be one of auto, cpu, gpu"),
    (["sweep", "--lr", "0.5"], {}, "ambiguous option: --lr could match --lr-min, --lr-max"),
    (["sweep", "--val-fraction", "0.3"], {}, "unrecognized arguments: --val-fraction 0.3"),
    (["fleet", "{tmp}/missing.csv"], {}, "no such file"),
    (["fleet", "{tmp}/f.csv", "--out", "{tmp}/no/dir/out.csv"], {"f.csv": "sensor,t_u,t_c\n1,2,3\n1,3,4\n"},
     "--out: cannot write"),
    (["fleet", "{tmp}/f.npz"], {"f.npz": b"not an npz at all"}, "not a readable .npz file"),
    (["fleet", "{tmp}/f.csv", "--devices", "0"], {"f.csv": "sensor,t_u,t_c\n1,2,3\n1,3,4\n"}, "--devices: must be"),
    (["predict", "--cal", "{tmp}/missing.json", "1"], {}, "no such file"),
    (["predict", "--cal", "{tmp}/bad.json", "1"], {"bad.json": "{not json"}, "not valid JSON"),
    (["predict", "--cal", "{tmp}/part.json", "1"],
     {"part.json": '{"format": "jaxcal-calibration/1", "model": "linear"}'}, "incomplete calibration, missing params"),
    (["predict", "--cal", "{tmp}/other.json", "1"], {"other.json": '{"format": "other/9"}'},
     "not a jaxcal-calibration/3"),
    (["predict", "--cal", "{tmp}/cal.json", "warm"], {"cal.json": "GOOD"}, "T_U: not a number: 'warm'"),
    (["predict", "--cal", "{tmp}/cal.json"], {"cal.json": "GOOD"}, "give readings to convert"),
    (["graph", "--model", "cubic"], {}, "--model: unknown model 'cubic'"),
    (["parity", "--epochs", "0"], {}, "--epochs: must be a positive integer"),
    (["launch", "-n", "2"], {}, "give the command to run after --"),
    (["launch", "-n", "0", "--", "fleet", "x.csv"], {}, "-n: must be a positive integer"),
    (["launch", "-n", "2", "--", "sweep"], {}, "runs 'fleet' or 'train' in several processes"),
    # numbers that do not fit the computation's dtype or the compiled program
    (["train", "--epochs", "99999999999999999999"], {}, "--epochs: must be at most 2147483647"),
    (["train", "--log-every", "99999999999999999999"], {}, "--log-every: must be at most 2147483647"),
    (["sweep", "--num", "99999999999999"], {}, "--num: must be at most 10000000"),
    (["train", "--lr", "1e308"], {}, "--lr: 1e+308 does not fit float32"),
    (["train", "--lr", "1e-50"], {}, "--lr: 1e-50 is too small for float32 (smallest normal"),
    (["train", "--init", "1e39", "0"], {}, "--init: 1e+39 does not fit float32"),
    (["train", "--scale", "1e-50"], {}, "--scale: 1e-50 is too small for float32"),
    (["train", "--val-fraction", "0.2", "--split-seed", "-1"], {}, "--split-seed: must be an integer >= 0"),
    # data from which the model cannot be determined, and sensors without a name
    (["train", "--data", "{tmp}/flat.csv"], {"flat.csv": "t_u,t_c\n3,1\n3,2\n3,4\n"},
     "--data: the readings have 1 distinct t_u value; the linear model's 2 parameters need at least 2"),
    (["train", "--data", "{tmp}/two.csv", "--model", "quadratic"], {"two.csv": "t_u,t_c\n3,1\n4,2\n3,4\n"},
     "the quadratic model's 3 parameters need at least 3 (the fit is undetermined)"),
    (["fleet", "{tmp}/f.csv"], {"f.csv": "sensor,t_u,t_c\n,2,3\n,3,4\n"}, "f.csv: line 2: sensor is empty"),
    (["fleet", "{tmp}/f.csv"], {"f.csv": ""}, "f.csv: is empty; expected a header 'sensor,t_u,t_c'"),
    (["fleet", "{tmp}/f.csv", "--process-id", "\u00b2"], {"f.csv": "sensor,t_u,t_c\n1,2,3\n1,3,4\n"},
     "--process-id: must be an integer >= 0"),
    (["launch", "-n", "100000", "--", "fleet", "x.csv"], {}, "-n: must be at most 64"),
    # calibrations that are JSON but not a calibration
    (["predict", "--cal", "{tmp}/c.json", "1"], {"c.json": CALIBRATION.replace('"params": [5.0, -17.0]',
                                                                                '"params": [1' + "0" * 400 + ', 2]')},
     "params must be 2 finite numbers"),
    (["predict", "--cal", "{tmp}/c.json", "1"], {"c.json": CALIBRATION.replace('"linear"', '["linear"]')},
     "unknown model ['linear']"),
    (["predict", "--cal", "{tmp}/c.json", "1"], {"c.json": CALIBRATION.replace('"settings": {}', '"settings": [1]')},
     "settings must be an object"),
    (["predict", "--cal", "{tmp}/c.json", "1"], {"c.json": "[" * 100000 + "]" * 100000}, "not valid JSON"),
    (["predict", "--cal", "{tmp}/c.json", "1e300"], {"c.json": CALIBRATION.replace('"scale": 0.1', '"scale": 1e300')},
     "t_u: a converted reading is not finite"),
]

GOOD_CALIBRATION = json.dumps(Calibration((5.0, -17.0), "linear", 0.1, 2.9).to_dict())


@pytest.mark.parametrize(("argv", "files", "words"), CATALOGUE, ids=[" ".join(c[0])[:60] for c in CATALOGUE])
def test_bad_input_catalogue(tmp_path, capsys, argv, files, words):
    for name, content in files.items():
        content = GOOD_CALIBRATION if content == "GOOD" else content
        (tmp_path / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    before = set(tmp_path.rglob("*"))
    status = main([a.format(tmp=tmp_path) for a in argv])
    _out, err = capsys.readouterr()
    assert status == 2
    assert words in err
    assert 1 <= err.count("\n") <= 2
    assert "Traceback" not in err
    assert err.startswith(f"jaxcal {argv[0]}: error: ")
    assert set(tmp_path.rglob("*")) == before  # nothing written, not even a temporary file


def test_catalogue_is_at_least_25_cases_over_every_subcommand():
    assert len(CATALOGUE) >= 25
    assert {c[0][0] for c in CATALOGUE} >= {"train", "sweep", "fleet", "predict", "graph", "parity", "launch"}


def test_library_says_the_same_words(tmp_path):
    from jaxcal.io import read_readings

    (tmp_path / "nan.csv").write_text("t_u,t_c\n1,nan\n2,3\n")
    with pytest.raises(ValueError, match="line 2: t_c is not finite"):
        read_readings(tmp_path / "nan.csv")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_calibration(tmp_path / "bad.json")
    with pytest.raises(ValueError, match="must be a positive integer"):
        training_loop(0, 1e-2, [1.0, 0.0], data.t_un, data.t_c)


def test_divergence_is_a_result_not_bad_input(capsys):
    assert main(["train", "--scale", "1", "--epochs", "30"]) == 0
    assert "diverged" in capsys.readouterr()[0]


def test_save_then_predict_from_the_cli(tmp_path, capsys):
    cal = tmp_path / "cal.json"
    assert main(["train", "--save", str(cal)]) == 0
    capsys.readouterr()
    stored = json.loads(cal.read_text())
    assert stored["format"] == "jaxcal-calibration/3"
    assert stored["scale"] == 0.1
    assert stored["model"] == "linear"
    assert stored["data_fingerprint"].startswith("sha256:")
    assert stored["jaxcal_version"]
    assert main(["predict", "--cal", str(cal), "45.1", "60.2", "--json"]) == 0
    result = json.loads(capsys.readouterr()[0])
    w, b = stored["params"]
    np.testing.assert_allclose(result["t_c"], [w * 0.1 * 45.1 + b, w * 0.1 * 60.2 + b], rtol=1e-12)
    (tmp_path / "r.csv").write_text("t_u\n45.1\n60.2\n")
    assert main(["predict", "--cal", str(cal), "--data", str(tmp_path / "r.csv"), "--json"]) == 0
    assert json.loads(capsys.readouterr()[0])["t_c"] == result["t_c"]


@settings(max_examples=50, deadline=None)
@given(params=st.lists(st.floats(-1e6, 1e6), min_size=2, max_size=3),
       scale=st.floats(1e-6, 1e6), loss=st.floats(0, 1e9))
def test_save_then_load_round_trips_exactly(tmp_path_factory, params, scale, loss):
    model = "linear" if len(params) == 2 else "quadratic"
    calibration = Calibration(tuple(params), model, scale, loss, {"epochs": 5}, "sha256:x", "0.1.0")
    path = tmp_path_factory.mktemp("cal") / "cal.json"
    save_calibration(path, calibration)
    assert load_calibration(path) == calibration


def test_plots_are_in_the_format_their_suffix_names(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    assert main(["train", "--plot", str(tmp_path / "fit.png"), "--epochs", "500"]) == 0
    assert main(["sweep", "--scale", "1", "--num", "4", "--epochs", "100", "--plot", str(tmp_path / "s.pdf")]) == 0
    (tmp_path / "f.csv").write_text("sensor,t_u,t_c\n" + "".join(f"{s},{u},{0.5 * u - 17}\n" for s in range(20)
                                                                  for u in (30.0, 50.0, 70.0)))
    assert main(["fleet", str(tmp_path / "f.csv"), "--plot", str(tmp_path / "fl.svg"), "--quiet"]) == 0
    assert (tmp_path / "fit.png").read_bytes()[:8] == PNG
    assert (tmp_path / "s.pdf").read_bytes()[:5] == b"%PDF-"
    assert b"<svg" in (tmp_path / "fl.svg").read_bytes()[:1000]
    assert not list(tmp_path.glob(".*part*"))


INTERRUPT_POINTS = Path(__file__).with_name("interrupt_points.py")


@pytest.mark.parametrize("phase", ["startup", "fit", "write"])
@pytest.mark.parametrize(("sig", "status", "word"), [(signal.SIGINT, 130, "interrupted"),
                                                     (signal.SIGTERM, 143, "terminated")])
def test_an_interrupt_in_any_phase_exits_with_one_line_and_writes_nothing(tmp_path, phase, sig, status, word):
    rows = "".join(f"{s},{u},{0.5 * u - 17}\n" for s in range(2000) for u in (30.0, 50.0, 70.0))
    (tmp_path / "f.csv").write_text("sensor,t_u,t_c\n" + rows)
    work = tmp_path / "work"
    work.mkdir()
    marker = tmp_path / "reached"
    # the fit is long (2000 sensors x 5e6 epochs) except when the write is the phase to reach
    epochs = "50" if phase == "write" else "5000000"
    with subprocess.Popen([sys.executable, str(INTERRUPT_POINTS), phase, str(marker), "--", "fleet",
                           str(tmp_path / "f.csv"), "--solver", "gd", "--epochs", epochs, "--out",
                           str(work / "out.csv"), "--quiet"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as process:
        try:
            wait_for(marker.exists, process)
            if phase == "write":  # a half-written temporary file, in the run's staging folder
                assert [p.name.endswith(".part") for p in work.rglob("*") if p.is_file()] == [True]
            process.send_signal(sig)
            _, err = process.communicate(timeout=120)
        except BaseException:
            process.kill()
            raise
    assert process.returncode == status
    assert err == f"jaxcal: {word}; nothing was written\n"
    assert list(work.iterdir()) == []


def test_an_interrupt_while_a_log_is_converted_in_parts_exits_with_one_line_and_writes_nothing(tmp_path):
    """predict's pipeline (a part read and one converted, in threads of their own, while one is written):
    the signal ends every thread, and the half-written output goes with them."""
    fits = tmp_path / "fits.csv"
    fits.write_text("sensor,model,scale,w,b,cov_w_w,cov_w_b,cov_b_b,residual_sd,dof,status\n"
                    "a,linear,1,0.5,-17,1e-4,-4e-3,0.25,0.3,9,converged\n")
    (tmp_path / "log.csv").write_text("sensor,t_u\n" + "".join(f"a,{u}\n" for u in range(40)))
    work = tmp_path / "work"
    work.mkdir()
    marker = tmp_path / "reached"
    with subprocess.Popen([sys.executable, str(INTERRUPT_POINTS), "write", str(marker), "--", "predict", "--cal",
                           str(fits), "--data", str(tmp_path / "log.csv"), "--out", str(work / "out.parquet")],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env={**os.environ, "JAXCAL_TEST_PART_ROWS": "4"}) as process:
        try:
            wait_for(marker.exists, process)
            assert [p.name.endswith(".part") for p in work.rglob("*") if p.is_file()] == [True]
            process.send_signal(signal.SIGINT)
            _, err = process.communicate(timeout=120)
        except BaseException:
            process.kill()
            raise
    assert process.returncode == 130
    assert err == "jaxcal: interrupted; nothing was written\n"
    assert list(work.iterdir()) == []


def test_a_signal_ignored_at_start_stays_ignored(tmp_path):
    # `nohup` and a shell's background jobs start a command with SIGINT ignored: jaxcal keeps it so.
    code = ("import signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); "
            "from jaxcal.cli import _interrupts; _interrupts.install(); "
            "print(signal.getsignal(signal.SIGINT) is signal.SIG_IGN, "
            "signal.getsignal(signal.SIGTERM) is _interrupts._ignore)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["True", "True"]


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31), n=st.integers(3, 40))
def test_converged_gradient_descent_lands_on_least_squares(seed, n):
    rng = np.random.default_rng(seed)
    t_u = rng.uniform(-1, 1, n).astype(np.float32)
    t_c = (rng.uniform(-5, 5) * t_u + rng.uniform(-5, 5) + rng.normal(0, 0.5, n)).astype(np.float32)
    phi = np.stack([t_u.astype(np.float64), np.ones(n)], 1)
    eigenvalues = np.linalg.eigvalsh(2.0 / n * phi.T @ phi)
    if eigenvalues.min() < 0.05:
        return  # nearly collinear readings converge too slowly for a bounded test
    lr = float(1.0 / eigenvalues.max())
    epochs = int(np.ceil(np.log(1e-12) / np.log(1 - lr * eigenvalues.min())))  # contract the error by 1e12
    result = training_loop(epochs, lr, [0.0, 0.0], t_u, t_c, log_every=epochs)
    exact = least_squares(t_u[None], t_c[None])[0]
    bounds = gd_trajectory_bounds([0.0, 0.0], t_u, t_c, lr, epochs)
    # what is left after 1e12 contraction is rounding: within the derived float32 bound, plus
    # the 1e-12 of the starting distance that the contraction leaves
    assert np.all(np.abs(np.asarray(result.params) - exact) <= bounds.params_err[-1] + 1e-12 * np.abs(exact) + 1e-9)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**31))
def test_shuffling_readings_changes_results_only_within_reduction_order_bounds(seed):
    rng = np.random.default_rng(seed)
    order = rng.permutation(11)
    first = training_loop(2000, 1e-2, [1.0, 0.0], data.t_un, data.t_c, log_every=2000)
    shuffled = training_loop(2000, 1e-2, [1.0, 0.0], data.t_un[order], data.t_c[order], log_every=2000)
    bounds = gd_trajectory_bounds([1.0, 0.0], data.t_un, data.t_c, 1e-2, 2000)
    assert np.all(np.abs(np.asarray(first.params) - np.asarray(shuffled.params)) <= 2 * bounds.params_err[-1])


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**31), sensors=st.integers(1, 40))
def test_a_fleets_sensor_equals_that_sensor_fitted_alone(seed, sensors):
    rng = np.random.default_rng(seed)
    t_u = rng.uniform(2, 8, (sensors, 7)).astype(np.float32)
    t_c = (5 * t_u - 17 + rng.normal(0, 1, t_u.shape)).astype(np.float32)
    fleet = fit_fleet(t_u, t_c, n_epochs=200, learning_rate=1e-2)
    s = int(rng.integers(sensors))
    alone = training_loop(200, 1e-2, [1.0, 0.0], t_u[s], t_c[s], log_every=200)
    bounds = gd_trajectory_bounds([1.0, 0.0], t_u[s], t_c[s], 1e-2, 200)
    assert np.all(np.abs(fleet.params[s] - np.asarray(alone.params))
                  <= 2 * bounds.params_err[-1])


def test_every_subcommand_has_help_with_an_example(capsys):
    for command in ("train", "sweep", "fleet", "predict", "parity", "graph", "launch"):
        with pytest.raises(SystemExit) as exit_info:
            main([command, "--help"])
        assert exit_info.value.code == 0
        assert "example" in capsys.readouterr()[0]


def test_importing_jaxcal_pulls_in_no_optional_or_presentation_code():
    code = ("import sys, jaxcal\n"
            "print(sorted(m for m in ('torch', 'matplotlib', 'jaxcal.cli', 'jaxcal.io', 'jaxcal.plots')"
            " if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_library_calibration_api(tmp_path):
    import jaxcal

    cal = jaxcal.Calibration((2.0, 1.0), "linear", 0.5, 0.0)
    jaxcal.save_calibration(tmp_path / "c.json", cal)
    assert jaxcal.load_calibration(tmp_path / "c.json").predict([4.0]).tolist() == [5.0]


@pytest.mark.parametrize(("content", "words"), [("x\n1\n", "expected a header with a t_u column"),
                                                ("t_u\nwarm\n", "line 2: t_u is not a number: 'warm'"),
                                                ("t_u\ninf\n", "line 2: t_u is not finite"),
                                                ("t_u\n", "has no readings")])
def test_predict_data_file_errors(tmp_path, capsys, content, words):
    (tmp_path / "cal.json").write_text(GOOD_CALIBRATION)
    (tmp_path / "r.csv").write_text(content)
    assert main(["predict", "--cal", str(tmp_path / "cal.json"), "--data", str(tmp_path / "r.csv")]) == 2
    err = capsys.readouterr()[1]
    assert words in err
    assert err.count("\n") == 1


def test_a_reader_that_leaves_early_still_gets_the_saved_file(tmp_path):
    # `jaxcal train --log-every 1 --save cal.json | head`: the log (~300 KB) outgrows the pipe, the
    # reader leaves, printing fails; the calibration was complete and is kept.
    cal = tmp_path / "cal.json"
    with subprocess.Popen([sys.executable, "-m", "jaxcal", "train", "--log-every", "1", "--save", str(cal)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        assert process.stdout.read(100)
        process.stdout.close()
        err = process.stderr.read()
    assert process.returncode == 141
    assert err == b""
    assert load_calibration(cal).model == "linear"
    assert [p.name for p in tmp_path.iterdir()] == ["cal.json"]


def test_a_failed_commit_leaves_no_temporary_file(tmp_path):
    from jaxcal._files import write_atomic
    from jaxcal.cli._outputs import all_or_nothing, write

    target = tmp_path / "b.json"

    def run() -> None:
        with all_or_nothing():
            write(tmp_path / "a.json", lambda path: write_atomic(path, "{}"))
            write(target, lambda path: write_atomic(path, "{}"))
            target.mkdir()  # what the rename will meet: a directory
            (target / "x").write_text("")

    with pytest.raises(ValueError, match="cannot write"):
        run()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.json"]  # neither output, no temporary file
