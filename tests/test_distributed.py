"""Every local device and several processes: the same fleet results, and failures that end.

Device counts and jax.distributed are start-up choices, so every run here is its own process.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from programs import handles_sigterm, wait_for


def _fleet_file(path: Path, sensors: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    ids = np.repeat(np.arange(sensors), 11)
    t_u = rng.uniform(20, 80, len(ids))
    t_c = 0.54 * t_u - 17 + rng.normal(0, 1, len(ids))
    np.savez(path, sensor=ids, t_u=t_u, t_c=t_c)
    return path


def _jaxcal(*argv: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "jaxcal", *argv], capture_output=True, text=True, **kwargs)


def test_fleet_is_bit_identical_on_1_2_and_4_devices(tmp_path):
    data = _fleet_file(tmp_path / "fleet.npz", 1001)  # not a multiple of any tile: padding differs
    outputs = []
    for devices in ("1", "2", "4"):
        done = _jaxcal("fleet", str(data), "--solver", "gd", "--epochs", "500", "--json", "--devices", devices)
        assert done.returncode == 0, done.stderr
        outputs.append(done.stdout)
    assert outputs[0] == outputs[1] == outputs[2]


@pytest.mark.parametrize("suffix", [".npz", ".parquet"])
def test_two_processes_of_two_devices_give_the_single_process_result(tmp_path, suffix):
    data = _fleet_file(tmp_path / "fleet.npz", 501, seed=1)
    if suffix == ".parquet":  # each process reads the row groups of its sensors (tests/test_io.py)
        import pyarrow as pa
        import pyarrow.parquet as pq

        with np.load(data) as archive:
            pq.write_table(pa.table({key: archive[key] for key in archive.files}), tmp_path / "fleet.parquet",
                           row_group_size=500)
        data = tmp_path / "fleet.parquet"
    # launch runs its processes on the CPU (see jaxcal.launch): so does the single process here
    cpu = {**os.environ, "JAX_PLATFORMS": "cpu"}
    single = _jaxcal("fleet", str(data), "--solver", "gd", "--epochs", "500", "--json", "--devices", "1",
                     "--out", str(tmp_path / "single.csv"), env=cpu)
    launched = _jaxcal("launch", "-n", "2", "--", "fleet", str(data), "--solver", "gd", "--epochs", "500", "--json",
                       "--devices", "2", "--out", str(tmp_path / "launched.csv"), timeout=120)
    assert single.returncode == 0, single.stderr
    assert launched.returncode == 0, launched.stderr
    assert launched.stdout == single.stdout  # the same sensors, the same numbers, one JSON object
    # each process read its own sensors: the closed-form columns are gathered like the fits
    assert (tmp_path / "launched.csv").read_text() == (tmp_path / "single.csv").read_text()


def _children_of(pid: int) -> dict[int, int]:
    """jaxcal processes started by ``pid``, by their JAXCAL_PROCESS_ID."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if int(stat[1]) == pid:
            for item in environ:
                if item.startswith(b"JAXCAL_PROCESS_ID="):
                    found[int(item.split(b"=")[1])] = int(entry.name)
    return found


@contextlib.contextmanager
def _long_launch(tmp_path: Path, out: Path) -> Iterator[subprocess.Popen]:
    """``jaxcal launch -n 2 -- fleet ...`` of a fit that takes minutes, writing ``out`` at its end;
    whatever still runs when the block ends (a failed test) is killed."""
    data = _fleet_file(tmp_path / "fleet.npz", 4000, seed=2)
    with subprocess.Popen(
        [sys.executable, "-m", "jaxcal", "launch", "-n", "2", "--timeout", "20", "--", "fleet", str(data),
         "--solver", "gd", "--epochs", "2000000", "--out", str(out), "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    ) as launcher:
        try:
            yield launcher
        finally:
            if launcher.poll() is None:
                for pid in _children_of(launcher.pid).values():
                    with contextlib.suppress(OSError):
                        os.kill(pid, signal.SIGKILL)
                launcher.kill()


def _started_children(launcher: subprocess.Popen) -> dict[int, int]:
    """Wait until both processes of the launch run jaxcal's entry point; their pids by process id."""

    def started() -> dict[int, int] | None:
        children = _children_of(launcher.pid)
        return children if len(children) == 2 and all(map(handles_sigterm, children.values())) else None

    return wait_for(started, launcher, timeout=120)


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="finds the processes through /proc")
def test_a_process_killed_mid_run_fails_the_run_and_writes_nothing(tmp_path):
    out = tmp_path / "fits.csv"
    with _long_launch(tmp_path, out) as launcher:
        children = _started_children(launcher)
        os.kill(children[1], signal.SIGKILL)
        # the launcher stops the other process at once: without that, process 0 would fit for minutes
        _, err = launcher.communicate(timeout=120)
        assert launcher.returncode != 0
        assert "jaxcal launch: error: process 1 of 2 exited with signal 9; stopped the others" in err
        assert not out.exists()
        assert not list(tmp_path.glob(".*.part"))


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="finds the processes through /proc")
def test_an_interrupted_launch_stops_its_processes_and_says_so_once(tmp_path):
    out = tmp_path / "fits.csv"
    with _long_launch(tmp_path, out) as launcher:
        children = _started_children(launcher)
        launcher.send_signal(signal.SIGTERM)
        _, err = launcher.communicate(timeout=120)
        assert launcher.returncode == 143
        assert err == "jaxcal: terminated; nothing was written\n"  # the processes end quietly
        assert not any(Path(f"/proc/{pid}").exists() and handles_sigterm(pid) for pid in children.values())
        assert sorted(p.name for p in tmp_path.iterdir()) == ["fleet.npz"]


def test_sigterm_after_joining_a_run_still_ends_with_one_line(tmp_path):
    # jax.distributed's preemption service installs its own SIGTERM handler as a process joins;
    # jaxcal takes the signal back
    import socket

    data = _fleet_file(tmp_path / "fleet.npz", 4000, seed=5)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{probe.getsockname()[1]}"
    helper = Path(__file__).with_name("interrupt_points.py")
    markers = [tmp_path / f"joined{i}" for i in range(2)]
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    with contextlib.ExitStack() as stack:
        processes = [stack.enter_context(subprocess.Popen(
            [sys.executable, str(helper), "joined", str(markers[i]), "--", "fleet", str(data), "--solver", "gd",
             "--epochs", "20000000", "--quiet", "--out", str(tmp_path / "fits.csv"), "--coordinator", address,
             "--num-processes", "2", "--process-id", str(i), "--timeout", "60"], env=env, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)) for i in range(2)]
        try:
            for marker, process in zip(markers, processes, strict=True):
                wait_for(marker.exists, process, timeout=120)
            processes[1].send_signal(signal.SIGTERM)
            _, err = processes[1].communicate(timeout=60)
        finally:
            for process in processes:
                process.kill()
    assert processes[1].returncode == 143
    assert err.splitlines()[-1] == "jaxcal: terminated; nothing was written"
    assert "preemption" not in err
    assert not (tmp_path / "fits.csv").exists()


def test_a_peer_that_never_joins_fails_within_the_timeout(tmp_path):
    data = _fleet_file(tmp_path / "fleet.npz", 10, seed=3)
    # --timeout 5: without it the run would wait for its peer forever (subprocess's timeout fails the test)
    done = _jaxcal("fleet", str(data), "--coordinator", "127.0.0.1:0", "--num-processes", "2", "--process-id", "0",
                   "--timeout", "5", "--out", str(tmp_path / "fits.csv"), timeout=120)
    assert done.returncode != 0
    assert not (tmp_path / "fits.csv").exists()


def test_single_fit_sharded_over_devices_agrees_within_reduction_order_bounds(tmp_path):
    import json

    from jaxcal.tolerances import gd_trajectory_bounds

    rng = np.random.default_rng(5)
    t_u = rng.uniform(2, 8, 4000).astype(np.float32)
    t_c = (5.4 * t_u - 17 + rng.normal(0, 1, 4000)).astype(np.float32)
    np.savez(tmp_path / "big.npz", t_u=t_u, t_c=t_c)
    results = []
    for devices in ("1", "4"):
        done = _jaxcal("train", "--data", str(tmp_path / "big.npz"), "--scale", "1", "--epochs", "300", "--json",
                       "--devices", devices)
        assert done.returncode == 0, done.stderr
        results.append(np.asarray(json.loads(done.stdout)["params"]))
    bounds = gd_trajectory_bounds([1.0, 0.0], t_u, t_c, 1e-2, 300)
    # partial sums per device, added in another order: two float32 runs of the same problem
    assert np.all(np.abs(results[0] - results[1]) <= 2 * bounds.params_err[-1])


def test_train_reads_npy_and_npz(tmp_path):
    from jaxcal import data

    np.save(tmp_path / "book.npy", np.stack([data.t_u, data.t_c], axis=1))
    np.savez(tmp_path / "book.npz", t_u=data.t_u, t_c=data.t_c)
    outputs = [_jaxcal("train", "--json", *extra).stdout
               for extra in ([], ["--data", str(tmp_path / "book.npy")], ["--data", str(tmp_path / "book.npz")])]
    assert outputs[0] == outputs[1] == outputs[2]


def test_an_unreachable_coordinator_is_a_one_line_error(tmp_path):
    data = _fleet_file(tmp_path / "fleet.npz", 10, seed=4)
    done = _jaxcal("fleet", str(data), "--coordinator", "127.0.0.1:9", "--num-processes", "2", "--process-id", "1",
                   "--timeout", "2", timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        "jaxcal fleet: error: --coordinator: cannot reach 127.0.0.1:9 within 2 s; is process 0 running there?")


def test_a_single_fit_over_two_processes_agrees_with_one_process(tmp_path):
    import json

    from jaxcal.tolerances import gd_trajectory_bounds

    rng = np.random.default_rng(6)
    t_u = rng.uniform(2, 8, 4000).astype(np.float32)
    t_c = (5.4 * t_u - 17 + rng.normal(0, 1, 4000)).astype(np.float32)
    np.savez(tmp_path / "big.npz", t_u=t_u, t_c=t_c)
    flags = ["--data", str(tmp_path / "big.npz"), "--scale", "1", "--epochs", "300", "--json"]
    single = _jaxcal("train", *flags, "--devices", "1")
    launched = _jaxcal("launch", "-n", "2", "--", "train", *flags, "--devices", "2", timeout=120)
    assert single.returncode == 0, single.stderr
    assert launched.returncode == 0, launched.stderr
    one, two = (json.loads(done.stdout) for done in (single, launched))  # one JSON object each
    bounds = gd_trajectory_bounds([1.0, 0.0], t_u, t_c, 1e-2, 300)
    # each process sums its share, the shares are all-reduced: the same run summed in another
    # order, so within twice the derived bound of the one-process run
    assert np.all(np.abs(np.asarray(one["params"]) - np.asarray(two["params"])) <= 2 * bounds.params_err[-1])
    assert two["epochs_run"] == one["epochs_run"] == 300


def test_readings_that_do_not_split_evenly_over_the_processes_still_fit(tmp_path):
    import json

    from jaxcal.tolerances import gd_trajectory_bounds

    rng = np.random.default_rng(7)
    t_u = rng.uniform(2, 8, 4001).astype(np.float32)
    t_c = (5.4 * t_u - 17).astype(np.float32)
    np.savez(tmp_path / "odd.npz", t_u=t_u, t_c=t_c)
    flags = ["--data", str(tmp_path / "odd.npz"), "--scale", "1", "--epochs", "300", "--json"]
    # each process reads only its share (2001 and 2000 readings): the shares are gathered instead
    launched = _jaxcal("launch", "-n", "2", "--", "train", *flags, "--devices", "1", timeout=120)
    single = _jaxcal("train", *flags)
    assert launched.returncode == 0, launched.stderr
    assert single.returncode == 0, single.stderr
    one, two = (json.loads(done.stdout) for done in (single, launched))
    bounds = gd_trajectory_bounds([1.0, 0.0], t_u, t_c, 1e-2, 300)
    # two float32 runs of the same problem: within twice the derived bound of the one-process run
    assert np.all(np.abs(np.asarray(one["params"]) - np.asarray(two["params"])) <= 2 * bounds.params_err[-1])
    assert two["epochs_run"] == one["epochs_run"] == 300


@pytest.mark.parametrize("suffix", [".npy", ".npz", "compressed.npz"])
def test_a_process_reads_and_checks_only_its_share_of_a_readings_file(tmp_path, suffix):
    from jaxcal.distributed import Cluster, share
    from jaxcal.io import read_readings, read_readings_share

    rng = np.random.default_rng(8)
    t_u = rng.uniform(2, 8, 1001).astype(np.float32)
    t_c = (5.4 * t_u - 17).astype(np.float32)
    t_u[3] = np.nan  # in process 0's share only
    path = tmp_path / f"big{suffix}"
    if suffix == ".npy":
        np.save(path, np.stack([t_u, t_c], axis=1))
    else:
        (np.savez_compressed if suffix.startswith("compressed") else np.savez)(path, t_u=t_u, t_c=t_c)
    with pytest.raises(ValueError, match="reading 3: not finite"):
        read_readings(path)
    mine = share(1001, Cluster(1, 2))
    got_u, got_c, n = read_readings_share(path, np.float32, lambda count: share(count, Cluster(1, 2)))
    assert n == 1001
    assert mine == slice(501, 1001)
    np.testing.assert_array_equal(got_u, t_u[mine])
    np.testing.assert_array_equal(got_c, t_c[mine])
    with pytest.raises(ValueError, match="reading 3: not finite"):
        read_readings_share(path, np.float32, lambda count: share(count, Cluster(0, 2)))


def test_uncompressed_npz_arrays_are_memory_mapped(tmp_path):
    from jaxcal.io import _npz_columns

    np.savez(tmp_path / "a.npz", t_u=np.arange(10.0), t_c=np.arange(10.0))
    np.savez_compressed(tmp_path / "b.npz", t_u=np.arange(10.0), t_c=np.arange(10.0))
    assert isinstance(_npz_columns(tmp_path / "a.npz", ("t_u",), "t_u")["t_u"], np.memmap)
    assert not isinstance(_npz_columns(tmp_path / "b.npz", ("t_u",), "t_u")["t_u"], np.memmap)


def test_a_process_reads_only_its_share_of_a_fleet(tmp_path):
    from jaxcal.distributed import Cluster, share
    from jaxcal.io import read_fleet, read_fleet_share

    path = _fleet_file(tmp_path / "fleet.npz", 9, seed=9)
    with np.load(path) as archive:
        columns = {key: np.array(archive[key]) for key in archive.files}
    bad = np.nonzero(columns["sensor"] == columns["sensor"].max())[0][0]
    columns["t_u"][bad] = np.inf  # the last sensor: process 1's share
    np.savez(path, **columns)
    named = f"row {bad + 1}: sensor '{columns['sensor'].max()}': t_u is not finite: inf"
    with pytest.raises(ValueError, match=named):
        read_fleet(path)
    table, ids = read_fleet_share(path, np.float32, lambda n: share(n, Cluster(0, 2)))
    whole_ids = np.unique(columns["sensor"]).astype(str)  # integer ids: their decimal text
    np.testing.assert_array_equal(ids, whole_ids)
    np.testing.assert_array_equal(table.sensors, whole_ids[share(len(whole_ids), Cluster(0, 2))])
    with pytest.raises(ValueError, match=named):
        read_fleet_share(path, np.float32, lambda n: share(n, Cluster(1, 2)))
