"""The command line: the seed's log, --json, graph, and one-line errors with exit status 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from jaxcal import data
from jaxcal.cli import main


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_train_defaults_print_the_seeds_log(capsys, book_runs):
    status, out, _err = run_cli(capsys, "train")
    assert status == 0
    lines = out.splitlines()
    recorded = book_runs["p1ch5_2_c09_autograd_tun_lr1e-2_5000"]["recorded"]["epochs"]
    assert [line.split(",")[0] for line in lines[1::2][: len(recorded)]] == [f"Epoch {e}" for e in recorded]
    assert all(line.startswith("params.grad [") for line in lines[0:20:2])
    assert lines[-1] == "params [  5.3671, -17.3012]"
    for line, text in zip(lines[1::2], recorded.values(), strict=True):
        # %f prints 6 decimals; the seed's losses agree to within the derived bound
        # (test_parity_seed.py), which here is below 1e-5: the first 4 decimals match.
        assert line.split("Loss ")[1][:-2] == text[:-2]


def test_train_json_is_one_object_with_full_precision(capsys):
    status, out, _ = run_cli(capsys, "train", "--epochs", "1000", "--json")
    assert status == 0
    result = json.loads(out)
    assert set(result) == {"params", "loss", "epochs_run", "diverged", "history"}
    # the final loss is the loss at the final params: the float64 value within the float32 bound
    from jaxcal.tolerances import evaluation_bounds

    t_un, t_c = data.t_un.astype(np.float64), data.t_c.astype(np.float64)
    w, b = result["params"]
    loss_err, _ = evaluation_bounds(result["params"], data.t_un, data.t_c)
    assert abs(result["loss"] - np.mean((w * t_un + b - t_c) ** 2)) <= loss_err
    assert result["epochs_run"] == 1000
    assert result["diverged"] is False
    assert [row["epoch"] for row in result["history"]] == [500, 1000]
    assert set(result["history"][0]) == {"epoch", "loss", "grad", "params"}
    # full precision: the float32 value itself, not a rounded print
    assert len(repr(result["history"][0]["loss"])) > 10


def test_train_scale_one_uses_raw_readings_and_reports_divergence(capsys):
    status, out, _err = run_cli(capsys, "train", "--scale", "1", "--epochs", "100", "--log-every", "1")
    assert status == 0
    assert "Epoch 11, Loss inf" in out
    assert "Epoch 12" not in out
    assert out.splitlines()[-1].startswith("diverged: the loss stopped being finite at epoch 11; scale the inputs")
    status, out, _ = run_cli(capsys, "train", "--scale", "1", "--epochs", "100", "--log-every", "1", "--json")
    result = json.loads(out)
    assert result["diverged"] is True
    assert result["epochs_run"] == 11
    assert result["history"][-1]["loss"] is None  # JSON has no inf


@pytest.mark.standard_promotion
def test_train_adam_from_the_cli(capsys):
    argv = ["--scale", "1", "--optimizer", "adam", "--lr", "0.1", "--epochs", "2000"]
    status, out, _ = run_cli(capsys, "train", *argv)
    assert status == 0
    assert out.splitlines()[-1] == "params [  0.5367, -17.3021]"


def test_train_reads_a_csv(capsys, tmp_path):
    path = tmp_path / "readings.csv"
    rows = zip(data.t_u.tolist(), data.t_c.tolist(), strict=True)
    path.write_text("t_c,t_u\n" + "".join(f"{c},{u}\n" for u, c in rows))
    status, out, _ = run_cli(capsys, "train", "--data", str(path), "--json")
    default_status, default_out, _ = run_cli(capsys, "train", "--json")
    assert status == default_status == 0
    assert json.loads(out) == json.loads(default_out)  # columns in either order, same readings


def test_graph_prints_the_jaxprs_of_loss_and_gradient(capsys):
    status, out, _ = run_cli(capsys, "graph")
    assert status == 0
    loss_part, grad_part = out.split("# its gradient")
    assert "reduce_sum" in loss_part
    assert "integer_pow" in loss_part
    # the gradient's program holds the forward pass and the transposed (backward) operations
    assert "mul 2.0" in grad_part
    assert grad_part.count("reduce_sum") >= 2  # one sum per parameter, transposed from broadcasts


GOOD_ROWS = "t_u,t_c\n35.7,0.5\n55.9,14.0\n58.2,15.0\n"


@pytest.mark.parametrize(
    ("argv", "content", "message"),
    [
        (["--epochs", "0"], None, "--epochs: must be a positive integer, got 0"),
        (["--epochs", "ten"], None, "--epochs: must be a positive integer, got 'ten'"),
        (["--epochs", "2.5"], None, "--epochs: must be a positive integer"),
        (["--lr", "-0.1"], None, "--lr: must be a positive finite number"),
        (["--lr", "0"], None, "--lr: must be a positive finite number"),
        (["--lr", "inf"], None, "--lr: must be a positive finite number"),
        (["--lr", "nan"], None, "--lr: must be a positive finite number"),
        (["--lr", "abc"], None, "--lr: not a number: 'abc'"),
        (["--log-every", "0"], None, "--log-every: must be a positive integer"),
        (["--init", "1"], None, "--init: the linear model expects 2 numbers (w b), got 1"),
        (["--init", "1", "2", "3"], None, "--init: the linear model expects 2 numbers (w b), got 3"),
        (["--model", "quadratic", "--init", "1", "2"], None, "--init: the quadratic model expects 3 numbers"),
        (["--model", "cubic"], None, "--model: unknown model 'cubic'"),
        (["--gradient", "magic"], None, "--gradient: unknown gradient 'magic'"),
        (["--exact", "--x64"], None, "--exact: reproduces the float32 recording; it cannot be combined with --x64"),
        (["--exact", "--optimizer", "adam"], None, "--exact: exact mode reproduces the plain and SGD updates"),
        (["--gradient", "analytic", "--model", "quadratic"], None, "--gradient: the book's analytic gradient"),
        (["--val-fraction", "0.95"], None, "--val-fraction: 0.95 of 11 readings leaves 1 for training"),
        (["--val-fraction", "2"], None, "--val-fraction: must be between 0 and 1"),
        (["--split-seed", "x", "--val-fraction", "0.2"], None, "--split-seed: must be an integer"),
        (["--log-epochs", "1,0"], None, "--log-epochs: must be a positive integer, got 0"),
        (["--fd-delta", "0"], None, "--fd-delta: must be a positive finite number"),
        (["--init", "1", "x"], None, "--init: not a number: 'x'"),
        (["--optimizer", "rmsprop"], None, "--optimizer: unknown optimizer 'rmsprop'"),
        (["--scale", "0"], None, "--scale: must be a finite nonzero number"),
        (["--data", "{missing}"], None, "no such file"),
        (["--data", "{dir}"], None, "is a directory"),
        (["--data", "{file}"], "", "is empty"),
        (["--data", "{file}"], "a,b\n1,2\n3,4\n", "line 1: expected the header 't_u,t_c', got 'a,b'"),
        (["--data", "{file}"], "35.7,0.5\n55.9,14.0\n", "expected the header 't_u,t_c'"),
        (["--data", "{file}"], "t_u,t_c\n35.7,x\n55.9,14.0\n", "line 2: t_c is not a number: 'x'"),
        (["--data", "{file}"], "t_u,t_c\n35.7,nan\n55.9,14.0\n", "line 2: t_c is not finite: 'nan'"),
        (["--data", "{file}"], "t_u,t_c\ninf,1\n55.9,14.0\n", "line 2: t_u is not finite: 'inf'"),
        (["--data", "{file}"], "t_u,t_c\n35.7,0.5\n55.9\n", "line 3: expected 2 values, got 1"),
        (["--data", "{file}"], "t_u,t_c\n35.7,0.5\n", "needs at least 2 readings, got 1"),
        (["--data", "{file}"], "t_u,t_c\n", "needs at least 2 readings, got 0"),
        (["--data", "{file}"], "t_u,t_c\n1e39,0.5\n55.9,14.0\n", "line 2: value too large for float32"),
        (["--bogus"], None, "unrecognized arguments: --bogus"),
    ],
)
def test_bad_train_input_is_one_line_and_exit_2(capsys, tmp_path, argv, content, message):
    file = tmp_path / "readings.csv"
    if content is not None:
        file.write_text(content)
    argv = [a.format(missing=tmp_path / "nope.csv", dir=tmp_path, file=file) for a in argv]
    status, out, err = run_cli(capsys, "train", *argv)
    assert status == 2
    assert out == ""
    assert err.count("\n") == 1
    assert message in err
    assert "Traceback" not in err
    assert err.startswith("jaxcal train: error: ")


def test_usage_errors_are_one_line(capsys):
    status, _, err = run_cli(capsys, "fly")
    assert status == 2
    assert err.count("\n") == 1
    assert "invalid choice: 'fly'" in err


@pytest.mark.parametrize("command", [["jaxcal"], [sys.executable, "-m", "jaxcal"]])
def test_console_script_and_module_run(command):
    if command == ["jaxcal"]:
        command = [str(Path(sys.executable).with_name("jaxcal"))]
    done = subprocess.run([*command, "train", "--epochs", "0"], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr == "jaxcal train: error: --epochs: must be a positive integer, got 0\n"
    version = subprocess.run([*command, "--version"], capture_output=True, text=True, check=True)
    assert version.stdout.startswith("jaxcal ")


def test_exact_prints_the_seeds_values_digit_for_digit(capsys):
    status, out, _ = run_cli(capsys, "train", "--exact")
    assert status == 0
    seed = (Path(__file__).parent / "reference" / "seed_output.txt").read_text().splitlines()

    def words(line: str) -> list[str]:
        # the blog post collapsed torch's padding and jaxcal prints the list without tensor(...)
        return line.replace("tensor(", "").replace("])", "]").split()

    lines = out.splitlines()
    assert len(lines) == len(seed) == 21
    assert [words(line) for line in lines[:20]] == [words(line) for line in seed[:20]]
    assert words(lines[20])[1:] == words(seed[20].replace(", requires_grad=True)", ""))


def test_book_split_and_log_epochs_print_the_books_split_run(capsys, book_runs):
    argv = ["--optimizer", "sgd", "--epochs", "3000", "--book-split", "--log-epochs", "1,2,3", "--exact"]
    status, out, _ = run_cli(capsys, "train", *argv)
    assert status == 0
    lines = [line for line in out.splitlines() if line.startswith("Epoch")]
    assert "\n".join(lines) + "\n" == book_runs["p1ch5_3_c14_split_sgd_tun_lr1e-2_3000"]["recorded"]["stdout"]


def test_seeded_split_is_reproducible(capsys):
    argv = ["--val-fraction", "0.3", "--split-seed", "7", "--epochs", "100", "--log-every", "50", "--json"]
    first = json.loads(run_cli(capsys, "train", *argv)[1])
    again = json.loads(run_cli(capsys, "train", *argv)[1])
    assert first == again
    assert "val_loss" in first["history"][0]


def test_quadratic_model_from_the_cli(capsys):
    status, out, _ = run_cli(capsys, "train", "--model", "quadratic", "--lr", "1e-4", "--json")
    assert status == 0
    assert len(json.loads(out)["params"]) == 3
    status, out, _ = run_cli(capsys, "graph", "--model", "quadratic")
    assert status == 0
    assert "f32[3]" in out


def test_parity_command_passes_on_the_seed(capsys):
    pytest.importorskip("torch")
    status, out, _ = run_cli(capsys, "parity", "--epochs", "1000", "--log-every", "100")
    assert status == 0
    assert out.splitlines()[-1] == "parity: OK"
    assert out.splitlines()[0].split()[:4] == ["epoch", "value", "jaxcal", "torch"]


def test_parity_command_exits_1_beyond_tolerance(capsys, monkeypatch):
    pytest.importorskip("torch")
    import jaxcal.parity as parity

    real = parity.tolerance

    def zero_tolerance(config, epochs):
        tol = real(config, epochs)
        return tol._replace(loss=0 * tol.loss, grad=0 * tol.grad, params=0 * tol.params)

    monkeypatch.setattr(parity, "tolerance", zero_tolerance)
    # Exact mode differs from torch 2.13 by a few ulps (it replays the 2020 build): with no
    # tolerance at all, the comparison must fail and say so.
    status, out, _ = run_cli(capsys, "parity", "--epochs", "1000", "--exact")
    assert status == 1
    assert out.splitlines()[-1] == "parity: FAILED (beyond tolerance)"


def test_parity_without_torch_is_a_clear_error(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` raise ImportError
    status, _, err = run_cli(capsys, "parity")
    assert status == 2
    assert err.startswith("jaxcal parity: error: torch is not installed; install the parity extra")
    assert err.count("\n") == 1


@pytest.mark.parametrize("name", list(__import__("jaxcal.cli._chapter").cli._chapter.COMMANDS))
def test_every_chapter_run_is_a_command_line(capsys, book_runs, name):
    from jaxcal.chapter import RUNS
    from jaxcal.cli._chapter import COMMANDS

    argv = [*COMMANDS[name].split()[1:], "--json"]
    with jax.numpy_dtype_promotion("standard" if RUNS[name].optimizer == "adam" else "strict"):
        status, out, err = run_cli(capsys, *argv)
    assert status == 0, err
    result = json.loads(out)
    assert result["epochs_run"] == book_runs[name].get("epochs_run", RUNS[name].n_epochs)
    assert len(result["params"]) == len(RUNS[name].params)
