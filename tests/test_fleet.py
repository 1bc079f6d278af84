"""Fleets and sweeps: each sensor as if fitted alone, divergence per sensor, one compile per sweep."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import jax
import numpy as np
import pytest

from jaxcal import data, training_loop
from jaxcal.cli import main
from jaxcal.fleet import fit_fleet, least_squares
from jaxcal.progress import ProgressBar
from jaxcal.sweeps import sweep
from jaxcal.tolerances import gd_trajectory_bounds


def _fleet_data(sensors: int, width: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    counts = rng.integers(2, width + 1, sensors)
    t_u = rng.uniform(2.0, 8.0, (sensors, width)).astype(np.float32)
    t_c = (rng.uniform(3, 7, (sensors, 1)) * t_u + rng.uniform(-20, 0, (sensors, 1))
           + rng.normal(0, 1, (sensors, width))).astype(np.float32)
    return t_u, t_c, counts


def test_each_sensor_matches_that_sensor_fitted_alone():
    t_u, t_c, counts = _fleet_data(40, 11)
    result = fit_fleet(t_u, t_c, n_epochs=300, learning_rate=1e-2, counts=counts, tile=16)
    for s in range(0, 40, 7):
        x, y = t_u[s, : counts[s]], t_c[s, : counts[s]]
        alone = training_loop(300, 1e-2, [1.0, 0.0], x, y, log_every=300)
        bounds = gd_trajectory_bounds([1.0, 0.0], x, y, 1e-2, 300)
        # two float32 evaluations of the same run (a row sum here, XLA's reduction there):
        # within twice the derived bound of each other
        fleet_params = result.params[s]
        assert np.all(np.abs(fleet_params - np.asarray(alone.params)) <= 2 * bounds.params_err[-1]), s
    assert not result.diverged.any()
    assert np.all(result.epochs_run == 300)


def test_mask_and_counts_are_the_same_fleet():
    t_u, t_c, counts = _fleet_data(30, 6, seed=1)
    mask = np.arange(6)[None, :] < counts[:, None]
    by_counts = fit_fleet(t_u, t_c, n_epochs=50, learning_rate=1e-2, counts=counts)
    by_mask = fit_fleet(np.where(mask, t_u, 99.0), t_c, n_epochs=50, learning_rate=1e-2, mask=mask)
    np.testing.assert_array_equal(by_counts.params, by_mask.params)  # the padding's values never enter


def test_divergence_is_per_sensor_and_as_fitted_alone():
    # the book's raw readings at lr 1e-2 diverge at epoch 11; the scaled ones converge
    result = fit_fleet(np.stack([data.t_u, data.t_un]), np.stack([data.t_c, data.t_c]), n_epochs=100,
                       learning_rate=1e-2)
    alone = training_loop(100, 1e-2, [1.0, 0.0], data.t_u, data.t_c, log_every=100)
    assert result.diverged.tolist() == [True, False]
    assert result.epochs_run.tolist() == [11, 100]
    np.testing.assert_array_equal(result.params[0], np.asarray(alone.params))
    assert np.all(np.isfinite(result.params[0]))


def test_adam_fleet_and_quadratic_model_run():
    t_u, t_c, counts = _fleet_data(20, 8, seed=2)
    with jax.numpy_dtype_promotion("standard"):
        adam = fit_fleet(t_u, t_c, n_epochs=200, learning_rate=0.1, counts=counts, optimizer="adam")
    assert np.all(np.isfinite(adam.loss))
    quad = fit_fleet(t_u, t_c, n_epochs=200, learning_rate=1e-4, counts=counts, model="quadratic")
    assert quad.param_names == ("w2", "w1", "b")
    assert quad.params.shape == (20, 3)


def test_converged_fleet_lands_on_least_squares():
    t_u, t_c, _ = _fleet_data(10, 11, seed=3)
    t_u = (t_u - np.float32(5.0)).astype(np.float32)  # centred readings: a well-conditioned problem
    result = fit_fleet(t_u, t_c, n_epochs=5000, learning_rate=0.1)
    lsq = least_squares(t_u, t_c)
    # H has eigenvalues ~2 and ~6 here, so 5000 epochs at lr 0.1 contract the error by far more
    # than float32 resolves: what is left is rounding, a few ulps of |params| (~20): 1e-5 absolute
    np.testing.assert_allclose(result.params, lsq, atol=1e-5 * 20)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"t_u": np.zeros((3, 1), np.float32), "t_c": np.zeros((3, 1), np.float32)}, "sensor 0 has 1 readings"),
        ({"counts": np.asarray([2, 1, 3])}, "sensor 1 has 1 readings"),
        ({"t_u": np.zeros(3, np.float32)}, "t_u: must be (sensors, readings)"),
        ({"t_u": np.zeros((3, 3), np.int32)}, "t_u: must be a floating-point array"),
        ({"t_c": np.full((3, 3), np.nan, np.float32)}, "t_c: sensor 0, reading 0 is nan; it must be finite"),
        ({"params": [1.0]}, "params: must be 2 values or (3, 2), got shape (1,)"),
        ({"params": [np.inf, 0.0]}, "params: value 0 is inf; it must be finite"),
    ],
)
def test_fleet_bad_input(kwargs, message):
    args = {"t_u": np.ones((3, 3), np.float32), "t_c": np.ones((3, 3), np.float32)}
    args.update(kwargs)
    with pytest.raises((ValueError, TypeError), match=message.replace("(", r"\(").replace(")", r"\)")):
        fit_fleet(args.pop("t_u"), args.pop("t_c"), n_epochs=5, learning_rate=1e-2, **args)


def test_sweep_is_one_compile_and_matches_single_runs(compiles):
    rates = np.geomspace(1e-5, 1e-1, 9)
    result = sweep(data.t_u, data.t_c, n_epochs=500, learning_rate=rates)
    assert len(compiles.names) == 1  # the whole sweep is one XLA program
    assert result.params.shape == (9, 1, 2)
    assert result.param_names == ("w", "b")
    for i in (0, 4, 6, 8):
        alone = training_loop(500, float(np.float32(rates[i])), [1.0, 0.0], data.t_u, data.t_c, log_every=500)
        assert int(result.epochs_run[i, 0]) == int(alone.epochs_run)
        assert bool(result.diverged[i, 0]) == bool(alone.diverged)
    # the book's lesson: raw readings diverge from lr 1e-3 up, the stable ones are below
    assert result.diverged[:, 0].tolist() == [False] * 4 + [True] * 5


def test_progress_bar_only_on_a_terminal():
    quiet = io.StringIO()
    bar = ProgressBar("fleet", stream=quiet, delay=0.0)
    bar(5, 10)
    bar.close()
    assert quiet.getvalue() == ""  # not a terminal

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    screen = Terminal()
    bar = ProgressBar("fleet", stream=screen, delay=0.0)
    bar(5, 10)
    bar.close()
    assert "fleet [###############...............]  50%" in screen.getvalue()
    off = Terminal()
    bar = ProgressBar("fleet", stream=off, delay=0.0, enabled=False)
    bar(5, 10)
    assert off.getvalue() == ""


def _write_fleet_csv(path, sensors: int, per_sensor: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    ids = np.repeat(np.arange(sensors), per_sensor)
    t_u = rng.uniform(20, 80, len(ids))
    t_c = 0.54 * t_u - 17 + rng.normal(0, 1, len(ids))
    order = rng.permutation(len(ids))  # any row order
    lines = [f"{ids[i]},{float(t_u[i])!r},{float(t_c[i])!r}" for i in order]
    path.write_text("sensor,t_u,t_c\n" + "\n".join(lines) + "\n")


def _cli(*argv: str) -> subprocess.CompletedProcess:
    # fleet starts one CPU device per core at start-up, so it runs in its own interpreter
    return subprocess.run([sys.executable, "-m", "jaxcal", *argv], capture_output=True, text=True)


def test_fleet_cli_csv_out_and_json(tmp_path):
    source = tmp_path / "fleet.csv"
    _write_fleet_csv(source, 30, 11)
    out = tmp_path / "fits.csv"
    done = _cli("fleet", str(source), "--out", str(out), "--solver", "gd", "--epochs", "2000", "--quiet")
    assert done.returncode == 0, done.stderr
    lines = out.read_text().splitlines()
    assert lines[0] == ("sensor,w,b,stderr_w,stderr_b,cov_w_w,cov_w_b,cov_b_b,residual_sd,dof,readings,dropped,rss,"
                        "r_squared,status,reason,steps,model,solver,scale")
    assert len(lines) == 31
    done = _cli("fleet", str(source), "--solver", "gd", "--epochs", "2000", "--json")
    sensors = json.loads(done.stdout)["sensors"]
    assert [s["sensor"] for s in sensors] == [str(i) for i in range(30)]  # ids are text, sorted as numbers
    row = lines[1].split(",")
    assert float(row[1]) == sensors[0]["w"]  # the CSV and the JSON say the same
    assert not list(tmp_path.glob(".*.part"))  # no temporary file left


def test_fleet_cli_100000_sensors_end_to_end(tmp_path):
    rng = np.random.default_rng(4)
    sensors = 100_000
    ids = np.repeat(np.arange(sensors), 11)
    t_u = rng.uniform(20, 80, len(ids))
    np.savez(tmp_path / "big.npz", sensor=ids, t_u=t_u, t_c=0.54 * t_u - 17 + rng.normal(0, 1, len(ids)))
    done = _cli("fleet", str(tmp_path / "big.npz"), "--solver", "gd", "--epochs", "200", "--out",
                str(tmp_path / "big.csv"), "--quiet")
    assert done.returncode == 0, done.stderr
    assert len((tmp_path / "big.csv").read_text().splitlines()) == sensors + 1


@pytest.mark.parametrize(
    ("content", "argv", "message"),
    [
        (None, [], "no such file"),
        ("sensor,t_u\n1,2\n", [], "expected the header 'sensor,t_u,t_c'"),
        ("sensor,t_u,t_c\n1,2,x\n1,3,4\n", [], "line 2: t_c is not a number: 'x'"),
        ("sensor,t_u,t_c\n1,2,3\n1,inf,4\n", [], "line 3: sensor '1': t_u is not finite: inf"),
        ("sensor,t_u,t_c\n1,2,3\n1,3\n", [], "line 3: expected 3 values, got 2"),
        ("sensor,t_u,t_c\n1,2,3\n1,3,4\n", ["--out", "{dir}"], "--out: "),
        ("sensor,t_u,t_c\n1,2,3\n1,3,4\n", ["--solver", "gd", "--epochs", "0"], "--epochs: must be a positive integer"),
    ],
)
def test_fleet_cli_bad_input(tmp_path, capsys, content, argv, message):
    path = tmp_path / "fleet.csv"
    if content is not None:
        path.write_text(content)
    status = main(["fleet", str(path), *[a.format(dir=tmp_path) for a in argv]])
    _, err = capsys.readouterr()
    assert status == 2
    assert err.count("\n") == 1
    assert message in err
    assert err.startswith("jaxcal fleet: error: ")


def test_sweep_cli_table_and_json(capsys):
    status = main(["sweep", "--scale", "1", "--lr-min", "1e-5", "--lr-max", "1e-1", "--num", "5", "--epochs", "200"])
    out, _ = capsys.readouterr()
    assert status == 0
    assert "diverged at epoch" in out
    assert "converging" in out
    status = main(["sweep", "--lr-min", "1e-3", "--lr-max", "1e-2", "--num", "2", "--epochs", "100", "--json"])
    configs = json.loads(capsys.readouterr()[0])["configs"]
    assert [round(c["learning_rate"], 6) for c in configs] == [0.001, 0.01]
    status = main(["sweep", "--lr-min", "1", "--lr-max", "0.1"])
    assert status == 2
    assert "--lr-min: 1.0 is larger than --lr-max 0.1" in capsys.readouterr()[1]


def test_a_chunked_sweep_is_the_same_sweep_with_progress(compiles):
    rates = np.geomspace(1e-5, 1e-1, 7)
    seen = []
    chunked = sweep(data.t_u, data.t_c, n_epochs=300, learning_rate=rates, chunks=3,
                    progress=lambda done, total: seen.append((done, total)))
    assert len(compiles.names) == 1  # equal chunks (the last padded): one program
    whole = sweep(data.t_u, data.t_c, n_epochs=300, learning_rate=rates)
    assert seen == [(3, 7), (6, 7), (7, 7)]
    np.testing.assert_array_equal(chunked.epochs_run, whole.epochs_run)
    np.testing.assert_array_equal(chunked.diverged, whole.diverged)
    # A batch of 3 and one of 7 are vectorised differently by XLA (single roundings, e.g. fused
    # multiply-adds, may differ): two float32 runs of each configuration, within twice the bound.
    for i, lr in enumerate(rates):
        bounds = gd_trajectory_bounds([1.0, 0.0], data.t_u, data.t_c, float(np.float32(lr)), 300)
        last = int(whole.epochs_run[i, 0]) - (2 if whole.diverged[i, 0] else 1)  # the params kept
        assert np.all(np.abs(chunked.params[i, 0] - whole.params[i, 0]) <= 2 * bounds.params_err[last]), i


@pytest.mark.parametrize("tile", [0, -5, 2.5, True])
def test_a_bad_tile_is_a_one_line_error(tile):
    t_u, t_c, _ = _fleet_data(4, 5)
    with pytest.raises((ValueError, TypeError), match="tile"):
        fit_fleet(t_u, t_c, n_epochs=2, learning_rate=1e-2, tile=tile)


def test_a_sweep_spread_over_devices_matches_one_device():
    from jaxcal.tolerances import gd_trajectory_bounds

    flags = ["sweep", "--lr-min", "1e-3", "--lr-max", "1", "--num", "13", "--json"]
    one, four = (json.loads(_cli(*flags, "--devices", d).stdout)["configs"] for d in ("1", "4"))
    assert [c["learning_rate"] for c in one] == [c["learning_rate"] for c in four]
    for a, b in zip(one, four, strict=True):
        # where each configuration stops does not depend on the device it ran on
        assert (a["epochs_run"], a["diverged"]) == (b["epochs_run"], b["diverged"])
        if not a["diverged"]:
            # the same run in batches of other widths: within twice the derived float32 bound
            bounds = gd_trajectory_bounds([1.0, 0.0], data.t_un, data.t_c, a["learning_rate"], 5000)
            assert np.all(np.abs(np.asarray(a["params"]) - np.asarray(b["params"])) <= 2 * bounds.params_err[-1])


@pytest.mark.standard_promotion  # optax's Adam
@pytest.mark.parametrize("kwargs", [{}, {"counts": "ragged"}, {"optimizer": "adam"}])
def test_one_call_is_the_chunked_fit_bit_for_bit(kwargs):
    # Without progress to report a large fleet runs as one call of one program (tiling, every
    # epoch and the loss); with it, in chunks of epochs: the same operations, the same bits.
    rng = np.random.default_rng(12)
    t_u = rng.uniform(2, 8, (300, 11)).astype(np.float32)
    t_c = (5.4 * t_u - 17 + rng.normal(0, 1, t_u.shape)).astype(np.float32)
    if kwargs.get("counts") == "ragged":
        kwargs = {"counts": np.where(np.arange(300) % 7 == 0, 6, 11)}
    whole = fit_fleet(t_u, t_c, n_epochs=300, learning_rate=1e-2, tile=64, **kwargs)
    chunked = fit_fleet(t_u, t_c, n_epochs=300, learning_rate=1e-2, tile=64, chunks=3, progress=lambda d, n: None,
                        **kwargs)
    np.testing.assert_array_equal(whole.params, chunked.params)
    np.testing.assert_array_equal(whole.loss, chunked.loss)


# In a process of its own: the CPU device count is a start-up choice.
SPLIT = """
import json, jax
jax.config.update("jax_num_cpu_devices", 4)
import numpy as np
from jaxcal import fit_fleet
names = []
jax.monitoring.register_event_duration_secs_listener(
    lambda event, _, **kw: names.append(kw.get("fun_name", "")) if event.endswith("backend_compile_duration") else None)
rng = np.random.default_rng(5)
t_u = rng.uniform(2, 8, (1000, 11)).astype(np.float32)
t_c = (5.4 * t_u - 17 + rng.normal(0, 1, t_u.shape)).astype(np.float32)
four = fit_fleet(t_u, t_c, n_epochs=200, learning_rate=1e-2, tile=64)
compiled = list(names)
one = fit_fleet(t_u, t_c, n_epochs=200, learning_rate=1e-2, tile=64, devices=jax.devices()[:1])
same = bool((four.params == one.params).all() and (four.loss == one.loss).all())
print(json.dumps({"compiled": compiled, "same": same}))
"""


@pytest.mark.slow
def test_a_fleet_over_four_devices_is_one_program_with_one_devices_bits():
    done = subprocess.run([sys.executable, "-c", SPLIT], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.splitlines()[-1])
    # every device fits its own share in the same SPMD program: one to compile, not one per device
    tiled = [name for name in report["compiled"] if "tiles" in name]
    assert len(tiled) == 1, report["compiled"]
    assert "_tiles_whole" in tiled[0]
    assert report["same"]  # the split over devices changes no bit
