"""`make bench`: jaxcal against the torch original and against the hardware's limit, in one run.

Measures, on this machine, with warm-up, ``block_until_ready``, medians over repeats and compile
time reported apart:

* the seed's run (5000 epochs, 11 readings): the torch eager loop as the seed writes it, torch
  with ``optim.SGD``, jaxcal's jitted step in a Python loop, jaxcal's compiled ``training_loop``,
  exact mode, and a hand-written C loop built here with the system compiler (the practical
  limit; skipped with a note where no compiler is found);
* fleets of 1 to 100,000 sensors (11 readings, 5000 epochs): torch batched eager, a plain
  ``jax.vmap`` over the single-sensor scan, ``jaxcal.fleet.fit_fleet``, and the C loop
  vectorised across sensors; sensor-epochs per second;
* large data, 1e3 to 1e7 readings for 100 epochs: torch eager, jaxcal, and a streaming read of
  the same bytes (the bandwidth limit: the faster of a flat and a blocked sum); GB/s;
* start-up: ``jaxcal train`` end to end against the seed's script under torch, as processes.

Writes every figure, with the machine, versions and date, to ``benchmarks/results/bench.json``;
``make bench`` then regenerates ``docs/performance.md``, its plots and the README's headline
figures from it (``docs/generate.py``). ``--quick`` runs in under a minute and writes to
``benchmarks/results/quick/``, leaving the record alone.
"""

from __future__ import annotations

import argparse
import ctypes
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import jax

# Start-up choice: every core a device (fleets and large data), except in the child process that
# measures the seed's run with JAX's default single CPU device, as `jaxcal train` and a library
# caller run it (measured here: with 2 devices each call of a 0.2 ms program takes ~0.1 ms longer).
_SEED_CHILD = "--seed-child" in sys.argv
jax.config.update("jax_num_cpu_devices", 1 if _SEED_CHILD else (os.cpu_count() or 1))

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax import lax  # noqa: E402

from jaxcal import data, loss_and_grad, sgd_step, training_loop  # noqa: E402
from jaxcal.fleet import fit_fleet, least_squares  # noqa: E402

RESULTS = Path(__file__).parent / "results"
LR = 1e-2

C_SOURCE = r"""
/* The seed's run and a fleet, by hand: the practical limit for this loss on one core. */
void seed(int epochs, float lr, const float *x, const float *y, int n, float *params) {
    float w = params[0], b = params[1];
    for (int e = 0; e < epochs; e++) {
        float gw = 0.0f, gb = 0.0f;
        for (int i = 0; i < n; i++) {
            float r = w * x[i] + b - y[i];
            gw += r * x[i];
            gb += r;
        }
        w -= lr * (2.0f / n) * gw;
        b -= lr * (2.0f / n) * gb;
    }
    params[0] = w; params[1] = b;
}
/* readings-major layout (n, sensors). Groups of 16 sensors (two 8-float vectors, so two
   independent dependency chains) run all their epochs with params and sums in registers and
   their readings in L1: what a careful hand-vectorised loop reaches on one core. */
typedef float v8 __attribute__((vector_size(32)));
static v8 load8(const float *p) { v8 v; __builtin_memcpy(&v, p, sizeof v); return v; }
static void store8(float *p, v8 v) { __builtin_memcpy(p, &v, sizeof v); }
void fleet(int sensors, int n, int epochs, float lr, const float *x, const float *y, float *w, float *b) {
    const float c = lr * (2.0f / n);
    int s0 = 0;
    for (; s0 + 16 <= sensors; s0 += 16) {
        v8 w0 = load8(w + s0), w1 = load8(w + s0 + 8), b0 = load8(b + s0), b1 = load8(b + s0 + 8);
        for (int e = 0; e < epochs; e++) {
            v8 gw0 = {0}, gw1 = {0}, gb0 = {0}, gb1 = {0};
            for (int i = 0; i < n; i++) {
                const float *xi = x + (long)i * sensors + s0, *yi = y + (long)i * sensors + s0;
                v8 x0 = load8(xi), x1 = load8(xi + 8);
                v8 r0 = w0 * x0 + b0 - load8(yi), r1 = w1 * x1 + b1 - load8(yi + 8);
                gw0 += r0 * x0; gw1 += r1 * x1; gb0 += r0; gb1 += r1;
            }
            w0 -= c * gw0; w1 -= c * gw1; b0 -= c * gb0; b1 -= c * gb1;
        }
        store8(w + s0, w0); store8(w + s0 + 8, w1); store8(b + s0, b0); store8(b + s0 + 8, b1);
    }
    for (; s0 < sensors; s0++) {  /* the last few sensors, one at a time */
        float ws = w[s0], bs = b[s0];
        for (int e = 0; e < epochs; e++) {
            float gw = 0.0f, gb = 0.0f;
            for (int i = 0; i < n; i++) {
                float xi = x[(long)i * sensors + s0], r = ws * xi + bs - y[(long)i * sensors + s0];
                gw += r * xi; gb += r;
            }
            ws -= c * gw; bs -= c * gb;
        }
        w[s0] = ws; b[s0] = bs;
    }
}
"""


def median_times(fns: dict[str, Any], repeats: int, burst: int = 1) -> dict[str, tuple[float, float]]:
    """Per name, (median seconds of ``repeats * burst`` calls after one warm-up call, seconds of
    the warm-up call). The variants take turns, ``burst`` calls each per round, so that variants
    compared in a ratio see the same state of a noisy machine rather than consecutive stretches of
    it; a burst of calls keeps a sub-millisecond call's code and data warm, as in a loop."""
    first, times = {}, {name: [] for name in fns}
    for name, fn in fns.items():
        start = time.perf_counter()
        jax.block_until_ready(fn())
        first[name] = time.perf_counter() - start
    for _ in range(repeats):
        for name, fn in fns.items():
            for _ in range(burst):
                start = time.perf_counter()
                jax.block_until_ready(fn())
                times[name].append(time.perf_counter() - start)
    return {name: (statistics.median(times[name]), first[name]) for name in fns}


def median_time(fn, repeats: int) -> tuple[float, float]:
    """(median seconds of ``repeats`` calls after one warm-up call, seconds of the warm-up call)."""
    return median_times({"": fn}, repeats)[""]


def build_c() -> tuple[ctypes.CDLL | None, str]:
    compiler = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if compiler is None:
        return None, "no C compiler found: the hand-written limit is skipped"
    folder = Path(tempfile.mkdtemp(prefix="jaxcal-bench-"))
    (folder / "limit.c").write_text(C_SOURCE)
    library = folder / "liblimit.so"
    done = subprocess.run([compiler, "-O3", "-march=native", "-shared", "-fPIC", "-o", str(library),
                           str(folder / "limit.c")], capture_output=True, text=True)
    if done.returncode != 0:
        return None, f"the C limit did not build ({done.stderr.strip().splitlines()[-1:]})"
    return ctypes.CDLL(str(library)), f"{Path(compiler).name} -O3 -march=native, one core"


def _ptr(array: np.ndarray) -> ctypes.c_void_p:
    return array.ctypes.data_as(ctypes.c_void_p)


def _torch_eager(t_u: np.ndarray, t_c: np.ndarray, epochs: int) -> object:
    """The seed's torch loop as it writes it: autograd, grad.zero_, backward, no_grad update."""
    import torch

    t_u, y = torch.tensor(t_u), torch.tensor(t_c)
    params = torch.tensor([1.0, 0.0], requires_grad=True)
    for _ in range(epochs):
        if params.grad is not None:
            params.grad.zero_()
        loss = ((params[0] * t_u + params[1] - y) ** 2).mean()
        loss.backward()
        with torch.no_grad():
            params -= LR * params.grad
    return params.detach()


def seed_runs(repeats: int, limit: ctypes.CDLL | None) -> dict[str, dict[str, float]]:
    import torch

    torch.set_num_threads(1)
    t_un, t_c = data.t_un, data.t_c
    epochs = 5000

    def torch_seed() -> object:
        return _torch_eager(t_un, t_c, epochs)

    def torch_sgd() -> object:
        t_u, y = torch.tensor(t_un), torch.tensor(t_c)
        params = torch.tensor([1.0, 0.0], requires_grad=True)
        optimizer = torch.optim.SGD([params], lr=LR)
        for _ in range(epochs):
            loss = ((params[0] * t_u + params[1] - y) ** 2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        return params.detach()

    x, y, lr = jnp.asarray(t_un), jnp.asarray(t_c), jnp.float32(LR)

    def stepped() -> object:
        params = jnp.asarray([1.0, 0.0])
        for _ in range(epochs):
            params, _, _ = sgd_step(params, x, y, lr)
        return params

    out: dict[str, dict[str, float]] = {}
    slow = max(3, repeats // 4)
    out["torch eager loop (the seed)"] = dict(zip(("s", "first_s"), median_time(torch_seed, slow), strict=True))
    out["torch optim.SGD loop"] = dict(zip(("s", "first_s"), median_time(torch_sgd, slow), strict=True))
    out["jaxcal: Python loop of jitted sgd_step"] = dict(zip(("s", "first_s"), median_time(stepped, slow),
                                                             strict=True))
    # The same program without the per-call checks and conversions (~0.05-0.08 ms here): the
    # loop under jax.jit, called with arrays already on the device.
    program = jax.jit(lambda lr, p, x, y: training_loop(epochs, lr, p, x, y).params)
    placed = (jnp.float32(LR), jnp.asarray([1.0, 0.0]), jnp.asarray(t_un), jnp.asarray(t_c))
    fast = {
        "jaxcal: compiled training_loop": lambda: training_loop(epochs, LR, [1.0, 0.0], t_un, t_c),
        "jaxcal: training_loop, jax.Array inputs": lambda: training_loop(epochs, LR, [1.0, 0.0], x, y),
        "jaxcal: its program alone (jax.jit, inputs on the device)": lambda: program(*placed),
        "jaxcal: training_loop, exact=True": lambda: training_loop(epochs, LR, [1.0, 0.0], t_un, t_c, exact=True),
    }
    if limit is not None:
        params = np.zeros(2, np.float32)

        def c_seed() -> object:
            params[:] = (1.0, 0.0)
            limit.seed(epochs, ctypes.c_float(LR), _ptr(t_un), _ptr(t_c), len(t_un), _ptr(params))
            return params

        fast["hand-written C loop (limit)"] = c_seed
    for name, (median, first) in median_times(fast, repeats, burst=25).items():  # taking turns: their ratios
        out[name] = {"s": median, "first_s": first}
    return out


def fleet_runs(sizes: list[int], repeats: int, limit: ctypes.CDLL | None) -> dict[str, dict[int, float]]:
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    epochs = 5000
    out: dict[str, dict[int, float]] = {"torch batched eager": {}, "plain jax.vmap(scan)": {},
                                        "jaxcal fit_fleet": {}, "C loop, one core": {}}
    for sensors in sizes:
        rng = np.random.default_rng(sensors)
        t_u = rng.uniform(2.0, 8.0, (sensors, 11)).astype(np.float32)
        t_c = (5.4 * t_u - 17.0 + rng.normal(0.0, 1.0, t_u.shape)).astype(np.float32)

        def torch_batched() -> object:
            x, y = torch.tensor(t_u), torch.tensor(t_c)
            w = torch.ones(sensors, 1, requires_grad=True)
            b = torch.zeros(sensors, 1, requires_grad=True)
            for _ in range(epochs):
                loss = ((w * x + b - y) ** 2).mean(dim=1).sum()
                w.grad = b.grad = None
                loss.backward()
                with torch.no_grad():
                    w -= LR * w.grad
                    b -= LR * b.grad
            return w.detach()

        @jax.jit
        def plain(x, y):
            def fit(x, y):
                def step(p, _):
                    _, g = loss_and_grad(p, x, y)
                    return p - LR * g, None

                return lax.scan(step, jnp.asarray([1.0, 0.0]), None, length=epochs)[0]

            return jax.vmap(fit)(x, y)

        slow = 1 if sensors >= 10_000 else max(2, repeats // 3)
        out["torch batched eager"][sensors] = sensors * epochs / median_time(torch_batched, slow)[0]
        fast = {"jaxcal fit_fleet": lambda: fit_fleet(t_u, t_c, n_epochs=epochs, learning_rate=LR).loss}
        if sensors < 10_000:  # small fleets: taking turns with fit_fleet, for their ratio
            fast["plain jax.vmap(scan)"] = lambda: plain(t_u, t_c)
        else:  # seconds per call: a few calls
            out["plain jax.vmap(scan)"][sensors] = sensors * epochs / median_time(lambda: plain(t_u, t_c), slow)[0]
        if limit is not None:
            xt, yt = np.ascontiguousarray(t_u.T), np.ascontiguousarray(t_c.T)
            w, b = np.ones(sensors, np.float32), np.zeros(sensors, np.float32)
            fast["C loop, one core"] = lambda: limit.fleet(sensors, 11, epochs, ctypes.c_float(LR), _ptr(xt), _ptr(yt),
                                                           _ptr(w), _ptr(b))
        for name, (median, _) in median_times(fast, repeats).items():  # interleaved: their ratio
            out[name][sensors] = sensors * epochs / median
    return out


def data_runs(sizes: list[int], repeats: int) -> dict[str, dict[int, float]]:

    epochs = 100
    out: dict[str, dict[int, float]] = {"torch eager": {}, "jaxcal training_loop": {}, "streaming read (limit)": {}}

    def stream(rows: int | None):
        """A read of every byte per epoch, summed flat (rows None) or in blocks of ``rows`` x 1000:
        XLA's CPU backend is faster with one or the other depending on the size, so the limit
        reported is the faster of the two, measured in the same run."""

        @jax.jit
        def run(x, y):
            main = 0 if rows is None else x.shape[0] // (rows * 1000) * rows * 1000

            def body(_, acc):
                scale = acc * 1e-30 + 1.0  # depends on the carry, so every epoch reads the data
                head = (x[:main] * scale + y[:main]).reshape(-1, rows, 1000).sum(axis=1).sum() if main else 0.0
                return acc + head + jnp.sum(x[main:] * scale + y[main:])

            return lax.fori_loop(0, epochs, body, jnp.float32(0.0))

        return run

    streams = {"flat": stream(None), "blocked": stream(10)}

    for n in sizes:
        rng = np.random.default_rng(n)
        t_u = rng.uniform(2.0, 8.0, n).astype(np.float32)
        t_c = (5.4 * t_u - 17.0 + rng.normal(0.0, 1.0, n)).astype(np.float32)
        x, y = jnp.asarray(t_u), jnp.asarray(t_c)
        gigabytes = 2 * 4 * n * epochs / 1e9

        def torch_eager(t_u=t_u, t_c=t_c) -> object:
            return _torch_eager(t_u, t_c, epochs)

        slow = 1 if n >= 1_000_000 else max(2, repeats // 3)
        out["torch eager"][n] = gigabytes / median_time(torch_eager, slow)[0]
        timed = median_times({"jaxcal": lambda: training_loop(epochs, LR, [1.0, 0.0], x, y, log_every=epochs),
                              **{name: (lambda run=run: run(x, y)) for name, run in streams.items()}}, repeats)
        out["jaxcal training_loop"][n] = gigabytes / timed["jaxcal"][0]
        out["streaming read (limit)"][n] = max(gigabytes / timed[name][0] for name in streams)
    return out


SEED_SCRIPT = """
import torch
t_c = torch.tensor([0.5, 14.0, 15.0, 28.0, 11.0, 8.0, 3.0, -4.0, 6.0, 13.0, 21.0])
t_u = torch.tensor([35.7, 55.9, 58.2, 81.9, 56.3, 48.9, 33.9, 21.8, 48.4, 60.4, 68.4])
t_un = 0.1 * t_u
def model(t_u, w, b):
    return w * t_u + b
def loss_fn(t_p, t_c):
    squared_diffs = (t_p - t_c)**2
    return squared_diffs.mean()
def training_loop(n_epochs, learning_rate, params, t_u, t_c):
    for epoch in range(1, n_epochs + 1):
        if params.grad is not None:
            params.grad.zero_()
        t_p = model(t_u, *params)
        loss = loss_fn(t_p, t_c)
        loss.backward()
        with torch.no_grad():
            params -= learning_rate * params.grad
        if epoch % 500 == 0:
            print(f"params.grad {params.grad}")
            print('Epoch %d, Loss %f' % (epoch, float(loss)))
    return params
print(training_loop(5000, 1e-2, torch.tensor([1.0, 0.0], requires_grad=True), t_un, t_c))
"""


def startup_runs(repeats: int) -> dict[str, float]:
    folder = Path(tempfile.mkdtemp(prefix="jaxcal-bench-"))
    (folder / "seed.py").write_text(SEED_SCRIPT)
    commands = {"jaxcal train (end to end, compiling)": [sys.executable, "-m", "jaxcal", "train", "--no-cache"],
                "the seed's script under torch": [sys.executable, str(folder / "seed.py")]}
    runs: dict[str, list[float]] = {}
    for _ in range(repeats):  # the two take turns
        for name, command in commands.items():
            runs.setdefault(name, []).append(_process(command)[0])
    return {name: statistics.median(times) for name, times in runs.items()}


# Runs a command as its only child and prints the child's peak resident memory (KiB on Linux).
_PEAK = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); "
         "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")


def _process(command: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """One whole command's wall time and its peak memory in MB."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _PEAK, *command], check=True, capture_output=True, text=True, env=env)
    return time.perf_counter() - start, int(done.stdout.split()[-1]) / 1024


def table_runs(repeats: int, sensors: int) -> dict[str, Any]:
    """Big tables in and out: ``jaxcal fleet`` on ``sensors`` x 11 readings as CSV, .npz and
    Parquet, as whole processes (time and peak memory) and step by step in this process; and
    start-up with JAX's persistent compilation cache empty and filled.

    The figures compared in a ratio take turns: each round runs every command compiling and
    cached, then the fit in this process, so that they see the same state of a noisy machine."""
    from jaxcal.cli._at_params import AtParams
    from jaxcal.cli.fleet import _calibrated
    from jaxcal.io import read_fleet, write_table
    from jaxcal.report import fleet_columns

    folder = Path(tempfile.mkdtemp(prefix="jaxcal-tables-"))
    rng = np.random.default_rng(0)
    ids = np.tile(np.arange(sensors), 11)  # a logger's order: every sensor's first reading, then its second, ...
    t_u = np.round(rng.uniform(20, 90, ids.size), 2)
    columns = {"sensor": ids, "t_u": t_u, "t_c": np.round(0.54 * t_u - 17.3 + rng.normal(0, 1, ids.size), 2)}
    files = {kind: folder / f"fleet.{kind}" for kind in ("csv", "npz", "parquet")}
    for path in files.values():
        write_table(path, columns)
    write_table(folder / "three.npz", {"sensor": np.repeat([1, 2, 3], 11), "t_u": np.tile(data.t_u, 3),
                                       "t_c": np.tile(data.t_c, 3)})
    jaxcal = [sys.executable, "-m", "jaxcal"]
    # the book's gradient descent (--solver gd), as the fit measured in this process
    commands = {"CSV in, CSV out": ["fleet", str(files["csv"]), "--solver", "gd", "--quiet", "--out",
                                    str(folder / "out.csv")],
                ".npz in, CSV out": ["fleet", str(files["npz"]), "--solver", "gd", "--quiet", "--out",
                                     str(folder / "out.csv")],
                "Parquet in, Parquet out": ["fleet", str(files["parquet"]), "--solver", "gd", "--quiet", "--out",
                                            str(folder / "out.parquet")],
                "3 sensors, .npz (start-up)": ["fleet", str(folder / "three.npz"), "--solver", "gd", "--quiet"],
                "jaxcal train": ["train"]}
    table = read_fleet(files["npz"])
    t_un = (np.float32(0.1) * table.t_u).astype(np.float32)

    def fit() -> Any:
        return fit_fleet(t_un, table.t_c, n_epochs=5000, learning_rate=LR, counts=table.counts)

    # Each command compiling (the cache off), then with JAX's persistent compilation cache: a
    # first run fills it, later runs load their programs from it.
    compiling = {**os.environ, "JAXCAL_NO_CACHE": "1"}
    cached = {name: {**{k: v for k, v in os.environ.items() if k != "JAXCAL_NO_CACHE"},
                     "JAXCAL_CACHE_DIR": str(folder / f"cache-{i}")} for i, name in enumerate(commands)}
    first = {name: _process([*jaxcal, *command], cached[name])[0] for name, command in commands.items()}
    fit()  # compiled apart
    runs: dict[str, dict[str, list[float]]] = {"compiling": {}, "cache: later runs": {}}
    peaks: dict[str, list[float]] = {}
    fits = []
    for _ in range(repeats):
        for name, command in commands.items():
            seconds, peak = _process([*jaxcal, *command], compiling)
            runs["compiling"].setdefault(name, []).append(seconds)
            peaks.setdefault(name, []).append(peak)
            runs["cache: later runs"].setdefault(name, []).append(_process([*jaxcal, *command], cached[name])[0])
        start = time.perf_counter()
        fit()  # NumPy results: the fit has finished when it returns
        fits.append(time.perf_counter() - start)
    whole = {"compiling": {name: statistics.median(v) for name, v in runs["compiling"].items()},
             "cache: first run": first,
             "cache: later runs": {name: statistics.median(v) for name, v in runs["cache: later runs"].items()}}
    peak = {name: max(v) for name, v in peaks.items()}
    startup = whole["compiling"]["3 sensors, .npz (start-up)"]
    steps: dict[str, float] = {"start-up (3 sensors, .npz, compiling)": startup}
    for kind, path in files.items():
        read_fleet(path)  # pyarrow's first import apart
        steps[f"read {kind}"] = median_time(lambda path=path: read_fleet(path), 2 * repeats + 1)[0]
    steps["fit (compiled)"] = statistics.median(fits)
    result = fit()
    lsq = least_squares(t_un, table.t_c, counts=table.counts)
    steps["least squares"] = median_time(lambda: least_squares(t_un, table.t_c, counts=table.counts), repeats)[0]
    # the command's columns: each fit's uncertainty at its params, as jaxcal fleet --solver gd computes it
    mask = np.arange(table.t_u.shape[1])[None, :] < table.counts[:, None]
    columns = {**_calibrated(t_un, table.t_c, mask, result.params, model="linear", solver=AtParams()),
               "lsq": lsq, "steps": result.epochs_run}
    columns = fleet_columns(table.sensors, result.param_names, columns, "gd", 0.1)
    for kind in ("csv", "parquet"):
        steps[f"write {kind}"] = median_time(lambda kind=kind: write_table(str(folder / f"w.{kind}"), columns),
                                             repeats)[0]
    csv_mb = files["csv"].stat().st_size / 1e6
    shutil.rmtree(folder, ignore_errors=True)
    return {"sensors": sensors, "rows": int(ids.size), "csv_mb": csv_mb, "whole_s": whole, "peak_mb": peak,
            "steps_s": steps}


def machine() -> dict[str, object]:
    import jaxlib
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "jax": jax.__version__,
            "torch": torch.__version__, "device": str(jax.devices()[0].device_kind), "devices": len(jax.devices()),
            "platform": jax.default_backend(), "jaxlib": jaxlib.__version__, "numpy": np.__version__,
            "date": datetime.date.today().isoformat()}


def _seed_in_child(quick: bool) -> dict[str, dict[str, float]]:
    """The seed's section, run by this script in a process of its own with one CPU device."""
    command = [sys.executable, __file__, "--seed-child", *(["--quick"] if quick else [])]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"the seed's section failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, few repeats: under a minute")
    parser.add_argument("--out", default=None,
                        help="folder for bench.json (default: benchmarks/results, or its quick/ with --quick)")
    parser.add_argument("--seed-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    quick = args.quick
    repeats = 3 if quick else 9
    if args.seed_child:
        print(json.dumps(seed_runs(repeats, build_c()[0])))
        return
    fleet_sizes = [1, 100, 1000] if quick else [1, 10, 100, 1000, 10_000, 100_000]
    data_sizes = [1000, 100_000] if quick else [1000, 10_000, 100_000, 1_000_000, 10_000_000]
    out_dir = Path(args.out) if args.out else RESULTS / "quick" if quick else RESULTS
    out_dir.mkdir(parents=True, exist_ok=True)

    limit, limit_note = build_c()
    info = machine()
    started = time.perf_counter()
    seed = _seed_in_child(quick)
    fleets = fleet_runs(fleet_sizes, repeats, limit)
    large = data_runs(data_sizes, repeats)
    startup = startup_runs(2 if quick else 5)
    tables = table_runs(2 if quick else 9, 10_000 if quick else 100_000)
    results = {"machine": info, "quick": quick, "c_limit": limit_note, "seed_run_s": seed,
               "fleet_sensor_epochs_per_s": {k: {str(n): v for n, v in d.items()} for k, d in fleets.items()},
               "large_data_gb_per_s": {k: {str(n): v for n, v in d.items()} for k, d in large.items()},
               "startup_s": startup, "tables": tables, "wall_s": time.perf_counter() - started}

    text = json.dumps(results, indent=1) + "\n"
    temp = out_dir / ".bench.json.part"
    temp.write_text(text)
    os.replace(temp, out_dir / "bench.json")
    print(f"wrote {out_dir / 'bench.json'}; the performance page: python docs/generate.py")


if __name__ == "__main__":
    main()
