"""How fast a log converts with its intervals: ``predict_table`` against reading the same log.

A log of ``--readings`` float32 readings (each with its sensor's int32 row) from ``--sensors`` linear
calibrations. Printed, each the median of ``--repeats`` runs after one warm-up (JAX results waited for
with ``block_until_ready``), compile time apart:

- ``np.load``: reading the log's bytes (t_u and rows, from a .npy in the page cache after the first read);
- ``numpy t_u * w[rows] + b[rows]``: the conversion alone, without intervals, in NumPy;
- ``predict_table``: the whole call (checks, the t quantiles, packing the table, the program), with
  the log as NumPy arrays (copied to the device: JAX copies NumPy buffers that are not 64-byte aligned)
  and already on the device;
- the program: the compiled gather and pass over the readings alone, inputs on the device;
- compiling it, apart (timed before any call).

Run: ``.venv/bin/python benchmarks/bench_predict.py [--readings 10000000] [--sensors 100000]``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxcal import core
from jaxcal.intervals import _gathered, _table, predict_table


def median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up: compiled, caches filled
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        jax.block_until_ready(out)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readings", type=int, default=10_000_000)
    parser.add_argument("--sensors", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    n, sensors = args.readings, args.sensors

    rng = np.random.default_rng(0)
    t_u = rng.uniform(20, 80, n).astype(np.float32)
    rows = rng.integers(-1, sensors, n).astype(np.int32)
    params = np.stack([rng.uniform(0.4, 0.6, sensors), rng.uniform(-20, -15, sensors)], axis=1).astype(np.float32)
    a = rng.uniform(1e-5, 2e-5, sensors)
    cov = np.stack([np.stack([a, -40 * a], -1), np.stack([-40 * a, 1700 * a], -1)], 1).astype(np.float32)
    residual_sd = rng.uniform(0.5, 1.5, sensors).astype(np.float32)
    dof = rng.integers(8, 20, sensors).astype(np.int32)
    print(f"{n:,} readings, {sensors:,} linear calibrations, float32, on {jax.devices()[0].platform}")

    with tempfile.TemporaryDirectory() as folder:
        log = Path(folder) / "log.npy"
        np.save(log, np.rec.fromarrays([t_u, rows], names="t_u,rows"))
        load = median_seconds(lambda: np.load(log), args.repeats)
    w, b = params[:, 0], params[:, 1]
    plain = median_seconds(lambda: t_u * w[rows] + b[rows], args.repeats)

    table = _table(params, cov, residual_sd, dof, 0.95, True, np.dtype(np.float32), sensors)
    t_dev, rows_dev = jnp.asarray(t_u), jnp.asarray(rows)
    start = time.perf_counter()
    compiled = _gathered.lower(t_dev, rows_dev, table, fn=core.model, k=2).compile()
    compile_s = time.perf_counter() - start
    program = median_seconds(lambda: compiled(t_dev, rows_dev, table), args.repeats)
    whole = median_seconds(lambda: predict_table(t_u, rows, params, cov, residual_sd, dof), args.repeats)
    on_device = median_seconds(lambda: predict_table(t_dev, rows_dev, params, cov, residual_sd, dof), args.repeats)

    mb = (t_u.nbytes + rows.nbytes) / 1e6
    print(f"np.load of the log ({mb:.0f} MB)        {load * 1e3:9.1f} ms")
    print(f"numpy t_u * w[rows] + b[rows]       {plain * 1e3:9.1f} ms")
    print(f"predict_table, NumPy inputs         {whole * 1e3:9.1f} ms   {load / whole:5.2f}x np.load's speed, "
          f"{plain / whole:5.2f}x NumPy's")
    print(f"predict_table, inputs on the device {on_device * 1e3:9.1f} ms   {load / on_device:5.2f}x np.load's speed, "
          f"{plain / on_device:5.2f}x NumPy's")
    print(f"the program alone                   {program * 1e3:9.1f} ms   {load / program:5.2f}x np.load's speed, "
          f"{plain / program:5.2f}x NumPy's")
    print(f"compiling the program               {compile_s * 1e3:9.1f} ms   (once per model, dtype and log length)")

if __name__ == "__main__":
    main()
