"""Command-line friction: a mistyped command, flag or choice is answered with the closest one; a
choice is taken in any case; ``launch -n 2 -- train`` fits readings that do not split over its
devices. Every error is one line with exit status 2."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from jaxcal import data
from jaxcal.cli import main


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def _one_line_error(status: int, out: str, err: str, prog: str) -> str:
    assert status == 2
    assert out == ""
    assert err.count("\n") == 1, err
    assert err.startswith(f"{prog}: error: "), err
    assert "Traceback" not in err
    assert "Warning" not in err
    return err


@pytest.mark.parametrize(("argv", "prog", "hint"), [
    (["trian"], "jaxcal", "invalid choice: 'trian'; did you mean 'train'?"),
    (["fleat", "x.csv"], "jaxcal", "did you mean 'fleet'?"),
    (["train", "--optimiser", "adam"], "jaxcal train",
     "unrecognized arguments: --optimiser adam; did you mean --optimizer?"),
    (["train", "--optimiser=adam"], "jaxcal train", "did you mean --optimizer?"),
    (["sweep", "--lr-mni", "1e-3"], "jaxcal sweep", "did you mean --lr-min?"),
    (["train", "--optimizer", "adamm"], "jaxcal train",
     "--optimizer: unknown optimizer 'adamm'; did you mean 'adam'? (choose one of plain, sgd, adam)"),
    (["train", "--model", "quadratik"], "jaxcal train",
     "--model: unknown model 'quadratik'; did you mean 'quadratic'?"),
    (["train", "--gradient", "analytik"], "jaxcal train",
     "--gradient: unknown gradient 'analytik'; did you mean 'analytic'?"),
    (["graph", "--model", "lineer"], "jaxcal graph", "--model: unknown model 'lineer'; did you mean 'linear'?"),
    (["train", "--device", "cpuu"], "jaxcal train",
     "--device: must be one of auto, cpu, gpu, got 'cpuu'; did you mean 'cpu'?"),
    (["launch", "-n", "2", "--", "trian"], "jaxcal launch", "got 'trian'; did you mean 'train'?"),
])
def test_a_mistyped_word_is_answered_with_the_closest_one(capsys, argv, prog, hint):
    err = _one_line_error(*run_cli(capsys, *argv), prog)
    assert hint in err


@pytest.mark.parametrize("argv", [["train", "--optimizer", "rmsprop"], ["zzz"], ["train", "--qqq"]])
def test_nothing_close_suggests_nothing(capsys, argv):
    err = _one_line_error(*run_cli(capsys, *argv), f"jaxcal {argv[0]}" if argv[0] == "train" else "jaxcal")
    assert "did you mean" not in err


@pytest.mark.parametrize("argv", [["train", "--optimizer", "adam" * 2500], ["train" * 2000],
                                  ["train", *[f"--bogus{k}" for k in range(2000)]]])
def test_a_huge_mistyped_word_still_gives_a_short_line(capsys, argv):
    status, _out, err = run_cli(capsys, *argv)
    assert status == 2
    assert err.count("\n") == 1, err
    # the project's rule for messages: a few hundred characters, whatever was typed
    assert len(err) < 400, err


@pytest.mark.standard_promotion  # optax's Adam
def test_a_choice_is_taken_in_any_case_and_saved_as_spelled_in_the_help(capsys, tmp_path):
    flags = ["--epochs", "50", "--lr", "0.1", "--json"]
    status, upper, _ = run_cli(capsys, "TRAIN", *flags, "--optimizer", "Adam", "--model", "LINEAR",
                               "--gradient", "AutoGrad", "--device", "CPU", "--save", str(tmp_path / "cal.json"))
    assert status == 0
    _, lower, _ = run_cli(capsys, "train", *flags, "--optimizer", "adam")
    _, plain, _ = run_cli(capsys, "train", *flags, "--optimizer", "plain")
    # the same program on the same inputs: the same numbers; and not plain descent's
    assert json.loads(upper) == json.loads(lower)
    assert json.loads(upper)["params"] != json.loads(plain)["params"]
    settings = json.loads((tmp_path / "cal.json").read_text())
    assert settings["model"] == "linear"
    assert (settings["settings"]["optimizer"], settings["settings"]["gradient"]) == ("adam", "autograd")


def test_graph_takes_its_model_in_any_case(capsys):
    status, upper, _ = run_cli(capsys, "graph", "--model", "Quadratic")
    assert status == 0
    assert upper == run_cli(capsys, "graph", "--model", "quadratic")[1]


def test_launched_train_fits_the_books_eleven_readings_as_one_process_does():
    from jaxcal.tolerances import gd_trajectory_bounds

    flags = ["train", "--epochs", "300", "--json"]
    single = subprocess.run([sys.executable, "-m", "jaxcal", *flags], capture_output=True, text=True, timeout=300)
    # 11 readings do not split over the run's 2 devices (one per process)
    launched = subprocess.run([sys.executable, "-m", "jaxcal", "launch", "-n", "2", "--", *flags],
                              capture_output=True, text=True, timeout=300)
    assert single.returncode == 0, single.stderr
    assert launched.returncode == 0, launched.stderr
    assert "error" not in launched.stderr
    one, two = json.loads(single.stdout), json.loads(launched.stdout)  # one JSON object each
    t_u, t_c = data.readings(np.float32)
    # the run's inputs as train makes them (default --scale 0.1)
    bounds = gd_trajectory_bounds([1.0, 0.0], (np.float32(0.1) * t_u).astype(np.float32), t_c, 1e-2, 300)
    # every device fits all the readings: at most the same run summed in another order
    assert np.all(np.abs(np.asarray(one["params"]) - np.asarray(two["params"])) <= 2 * bounds.params_err[-1])
    assert two["epochs_run"] == one["epochs_run"] == 300


@pytest.mark.parametrize(("command", "hint"), [
    (["fleet", "{table}"], "--columns sensor=NAME,t_u=NAME,t_c=NAME"),
    (["train", "--data", "{table}"], "--columns t_u=NAME,t_c=NAME"),
    (["predict", "--cal", "{fits}", "--data", "{table}", "--out", "{out}"], "--columns sensor=NAME,t_u=NAME"),
])
def test_a_table_with_its_own_column_names_is_answered_with_the_flag_that_maps_them(capsys, tmp_path, command,
                                                                                    hint):
    table = tmp_path / "logger.csv"
    table.write_text("Sensor_ID;Raw;Celsius\nA;1;2\nA;2;3\n")
    fits = tmp_path / "fits.csv"
    fits.write_text("sensor,w,b,cov_w_w,cov_w_b,cov_b_b,residual_sd,dof,status,model,scale\n"
                    "A,1,0,1e-4,0,1e-2,0.1,3,converged,linear,1\n")
    fill = {"table": str(table), "fits": str(fits), "out": str(tmp_path / "out.csv")}
    err = _one_line_error(*run_cli(capsys, *(a.format(**fill) for a in command)), f"jaxcal {command[0]}")
    assert "expected the header" in err
    assert err.rstrip().endswith(f"where its columns are named otherwise, {hint}"), err
    # given --columns, the header named is the mapped one, and no hint repeats the flag
    mapped = run_cli(capsys, *(a.format(**fill) for a in command), "--columns", "t_u=x")
    assert "--columns" not in mapped[2].split("expected the header", 1)[1], mapped[2]


def test_only_a_header_error_gets_the_hint_whatever_a_message_says(capsys, tmp_path):
    """The hint comes from the reader's error itself, not from words in the message: a missing file whose
    name reads like a header error gets none."""
    odd = tmp_path / "a: b: expected the header 'p,q'.csv"
    err = _one_line_error(*run_cli(capsys, "fleet", str(odd)), "jaxcal fleet")
    assert "no such file" in err
    assert "--columns" not in err, err


@pytest.mark.parametrize(("command", "name"), [(["train", "--data"], "missing"),
                                               (["predict", "--cal", "{fits}", "--data"], "columns")])
def test_a_table_named_like_a_flag_is_named_as_the_file_it_is(capsys, tmp_path, monkeypatch, command, name):
    """A reader's error about the file ``missing`` is about that file, not the --missing flag; its hint stays."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / name).write_text("raw;ref\n1;2\n2;3\n")
    fits = tmp_path / "fits.csv"
    fits.write_text("sensor,w,b,cov_w_w,cov_w_b,cov_b_b,residual_sd,dof,status,model,scale\n"
                    "A,1,0,1e-4,0,1e-2,0.1,3,converged,linear,1\n")
    argv = [a.format(fits=fits) for a in command] + [name] + (["--out", "o.csv"] if command[0] == "predict" else [])
    err = _one_line_error(*run_cli(capsys, *argv), f"jaxcal {command[0]}")
    assert err.startswith(f"jaxcal {command[0]}: error: {name}: line 1: expected the header"), err
    assert "; where its columns are named otherwise, --columns " in err


@pytest.mark.parametrize(("command", "name"), [(["fleet"], "model"), (["train", "--data"], "params"),
                                               (["sweep", "--data"], "learning_rate")])
def test_a_bad_cell_of_a_file_named_like_an_argument_names_the_file(capsys, tmp_path, monkeypatch, command, name):
    monkeypatch.chdir(tmp_path)
    (tmp_path / name).write_text("sensor,t_u,t_c\na,1,2\na,2,x\n" if command == ["fleet"] else "t_u,t_c\n1,2\n2,x\n")
    err = _one_line_error(*run_cli(capsys, *command, name), f"jaxcal {command[0]}")
    assert err.startswith(f"jaxcal {command[0]}: error: {name}: line 3: t_c is not a number"), err


def test_a_header_error_keeps_its_roles_when_pickled_or_renamed():
    import pickle

    from jaxcal._checks import UnexpectedHeader

    error = UnexpectedHeader("f.csv: line 1: expected the header 't_u,t_c'", roles=("t_u", "t_c"))
    for copy in (pickle.loads(pickle.dumps(error)), error.renamed("f.csv")):
        assert type(copy) is UnexpectedHeader
        assert (str(copy), copy.roles) == (str(error), ("t_u", "t_c"))
    assert str(error.renamed("--data")) == "--data: line 1: expected the header 't_u,t_c'"


def test_a_command_without_columns_gives_no_hint(capsys, tmp_path):
    table = tmp_path / "t.csv"
    table.write_text("Raw,Celsius\n1,2\n")
    err = _one_line_error(*run_cli(capsys, "sweep", "--data", str(table)), "jaxcal sweep")
    assert err.rstrip().endswith("got 'Raw,Celsius'"), err
