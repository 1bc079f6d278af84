"""Saved calibrations that say whether their fit diverged, complete files only, and figures in the
format their file's suffix names."""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ElementTree

import numpy as np
import pytest

from jaxcal import data, training_loop
from jaxcal.calibration import Calibration, load_calibration, save_calibration
from jaxcal.cli import main

# The book's run with the raw readings (no 0.1 input scale): the loss overflows float32 within a few
# dozen epochs. Its divergence epoch is taken from the library's own run of it, not written here.
DIVERGING = ["--scale", "1", "--epochs", "100"]

# Every field a calibration file of the current format holds besides "format".
FIELDS = ["params", "model", "scale", "loss", "settings", "data_fingerprint", "jaxcal_version", "diverged",
          "diverged_at", "solver", "cov", "stderr", "dof", "residual_sd"]

# A calibration written by jaxcal 0.2.0 (format 1) for the diverging run above.
VERSION_1_DIVERGED = {
    "format": "jaxcal-calibration/1", "params": [3.2144174334397645e17, 5662128937631744.0], "model": "linear",
    "scale": 1.0, "loss": None, "settings": {"epochs": 100, "learning_rate": 0.01, "epochs_run": 11, "diverged": True},
    "data_fingerprint": "sha256:x", "jaxcal_version": "0.2.0"}

PNG, PDF = b"\x89PNG\r\n\x1a\n", b"%PDF-"


def _diverging_run():
    result = training_loop(100, 1e-2, [1.0, 0.0], data.t_u, data.t_c, log_every=1)
    assert bool(result.diverged)
    return result


def _one_line_error(capsys, prefix: str) -> str:
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith(prefix)
    assert "Traceback" not in err
    return err


def test_a_diverged_run_is_saved_as_diverged_and_predict_refuses_it(tmp_path, capsys):
    epoch = int(_diverging_run().epochs_run)
    cal = tmp_path / "div.json"
    assert main(["train", *DIVERGING, "--save", str(cal)]) == 0  # a diverged run is a result, kept as evidence
    capsys.readouterr()
    stored = json.loads(cal.read_text())
    assert stored["diverged"] is True
    assert stored["diverged_at"] == epoch
    assert main(["predict", "--cal", str(cal), "45"]) == 2
    err = _one_line_error(capsys, "jaxcal predict: error: --cal: ")
    assert f"diverged at epoch {epoch}" in err
    assert "--lr" in err
    assert "--scale" in err
    calibration = load_calibration(cal)
    assert calibration.diverged
    with pytest.raises(ValueError, match=f"diverged at epoch {epoch}") as caught:
        calibration.predict([45.0])
    assert "\n" not in str(caught.value)


def test_a_converged_run_is_saved_as_converged(tmp_path, capsys):
    cal = tmp_path / "cal.json"
    assert main(["train", "--epochs", "500", "--save", str(cal)]) == 0
    capsys.readouterr()
    stored = json.loads(cal.read_text())
    assert stored["diverged"] is False
    assert stored["diverged_at"] is None
    assert np.all(np.isfinite(load_calibration(cal).predict([45.0])))


@pytest.mark.parametrize(("params", "loss"), [((math.nan, 1.0), 1.0), ((1.0, math.inf), 1.0), ((1.0, 0.0), math.inf)])
def test_a_calibration_that_did_not_determine_its_params_converts_nothing(tmp_path, params, loss):
    calibration = Calibration(params, "linear", 1.0, loss)
    assert calibration.diverged
    with pytest.raises(ValueError, match="fit diverged") as caught:
        calibration.predict([1.0])
    assert "nan" not in str(caught.value).lower()
    # saved as valid JSON (no NaN or Infinity tokens), and refused again once loaded
    save_calibration(tmp_path / "c.json", calibration)
    stored = json.loads((tmp_path / "c.json").read_text(), parse_constant=lambda token: pytest.fail(token))
    assert stored["diverged"] is True
    with pytest.raises(ValueError, match="fit diverged"):
        load_calibration(tmp_path / "c.json").predict([1.0])


def test_a_version_1_file_of_a_diverged_run_is_still_refused(tmp_path, capsys):
    cal = tmp_path / "old.json"
    cal.write_text(json.dumps(VERSION_1_DIVERGED))
    calibration = load_calibration(cal)
    assert calibration.diverged
    assert calibration.diverged_at == VERSION_1_DIVERGED["settings"]["epochs_run"]
    assert main(["predict", "--cal", str(cal), "45"]) == 2
    assert f"diverged at epoch {VERSION_1_DIVERGED['settings']['epochs_run']}" in _one_line_error(
        capsys, "jaxcal predict: error: --cal: ")


def test_a_version_1_file_of_a_good_fit_still_converts(tmp_path):
    good = {**VERSION_1_DIVERGED, "params": [5.0, -17.0], "scale": 0.1, "loss": 2.9,
            "settings": {"epochs_run": 5000, "diverged": False}}
    (tmp_path / "old.json").write_text(json.dumps(good))
    calibration = load_calibration(tmp_path / "old.json")
    assert not calibration.diverged
    # 5.0 * (0.1 * 40.0) - 17.0, exact in float64 up to the rounding of 0.1 * 40.0 (one ulp of 4.0, times 5)
    np.testing.assert_allclose(calibration.predict([40.0]), [5.0 * 4.0 - 17.0], rtol=0, atol=5 * np.spacing(4.0))


def test_the_saved_file_holds_exactly_the_fields_named_here(tmp_path):
    save_calibration(tmp_path / "c.json", Calibration((5.0, -17.0), "linear", 0.1, 2.9))
    assert set(json.loads((tmp_path / "c.json").read_text())) == {"format", *FIELDS}


@pytest.mark.parametrize("field", FIELDS)
def test_a_file_missing_any_one_field_is_refused(tmp_path, capsys, field):
    save_calibration(tmp_path / "c.json", Calibration((5.0, -17.0), "linear", 0.1, 2.9))
    content = json.loads((tmp_path / "c.json").read_text())
    del content[field]
    (tmp_path / "c.json").write_text(json.dumps(content))
    with pytest.raises(ValueError, match=f"missing {field}$"):
        load_calibration(tmp_path / "c.json")
    assert main(["predict", "--cal", str(tmp_path / "c.json"), "1"]) == 2
    assert f"missing {field}" in _one_line_error(capsys, "jaxcal predict: error: ")


@pytest.mark.parametrize("field", ["params", "model", "scale", "loss", "settings", "data_fingerprint",
                                   "jaxcal_version"])
def test_a_version_1_file_missing_any_one_field_is_refused(tmp_path, field):
    content = dict(VERSION_1_DIVERGED)
    del content[field]
    (tmp_path / "c.json").write_text(json.dumps(content))
    with pytest.raises(ValueError, match=f"missing {field}$"):
        load_calibration(tmp_path / "c.json")


def _check_figure(path, suffix: str) -> None:
    content = path.read_bytes()
    if suffix == ".png":
        assert content.startswith(PNG)
    elif suffix == ".pdf":
        assert content.startswith(PDF)
    else:
        assert ElementTree.fromstring(content).tag == "{http://www.w3.org/2000/svg}svg"


@pytest.mark.parametrize("suffix", [".png", ".pdf", ".svg", ".SVG"])
def test_a_figure_is_written_in_the_format_its_suffix_names(tmp_path, suffix):
    pytest.importorskip("matplotlib")
    from jaxcal.plots import plot_sweep

    path = tmp_path / f"sweep{suffix}"
    plot_sweep(str(path), np.array([1e-3, 1e-2]), np.array([3.0, 2.0]), np.array([False, False]))
    _check_figure(path, suffix.lower())
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_a_figure_of_another_format_is_refused_by_the_library(tmp_path):
    from jaxcal.plots import plot_sweep

    with pytest.raises(ValueError, match=r"\.png, \.pdf, \.svg"):
        plot_sweep(str(tmp_path / "s.jpg"), np.array([1e-3]), np.array([3.0]), np.array([False]))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv", [["train", "--plot", "{tmp}/fit.jpg"], ["train", "--plot", "{tmp}/fit"],
                                  ["sweep", "--plot", "{tmp}/s.gif"],
                                  ["fleet", "{tmp}/f.csv", "--plot", "{tmp}/f.eps"]])
def test_a_plot_of_another_format_is_a_usage_error_before_the_fit(tmp_path, capsys, monkeypatch, argv):
    import jaxcal.fleet
    import jaxcal.sweeps
    import jaxcal.training

    def no_fit(*args, **kwargs):
        pytest.fail("the fit ran before --plot was checked")

    for module, name in [(jaxcal.training, "training_loop"), (jaxcal.sweeps, "sweep"), (jaxcal.fleet, "fit_fleet")]:
        monkeypatch.setattr(module, name, no_fit)
    (tmp_path / "f.csv").write_text("sensor,t_u,t_c\n1,2,3\n1,3,4\n")
    before = set(tmp_path.iterdir())
    assert main([a.format(tmp=tmp_path) for a in argv]) == 2
    err = _one_line_error(capsys, f"jaxcal {argv[0]}: error: --plot: ")
    assert ".png, .pdf, .svg" in err
    assert set(tmp_path.iterdir()) == before


def test_a_diverged_runs_loss_panel_shows_the_epochs_that_ran(tmp_path, capsys, monkeypatch):
    pytest.importorskip("matplotlib")
    from jaxcal import plots

    history = _diverging_run().history
    finite = np.asarray(history.epoch)[np.isfinite(np.asarray(history.loss))]
    assert finite.size > 1  # a curve, not a point
    drawn = []
    save = plots._save

    def keep(figure, path, name):
        drawn.append([[np.asarray(line.get_xdata()) for line in axis.get_lines()] for axis in figure.axes])
        save(figure, path, name)

    monkeypatch.setattr(plots, "_save", keep)
    assert main(["train", *DIVERGING, "--plot", str(tmp_path / "fit.svg")]) == 0
    capsys.readouterr()
    [[_readings_panel, [loss_line]]] = drawn
    np.testing.assert_array_equal(loss_line, finite)
