"""Fleet throughput: jaxcal.fit_fleet against a plain vmap over a scan, in the same run.

Run: ``python benchmarks/bench_fleet.py [--sensors 10000] [--epochs 5000] [--repeats 5]``.
One CPU device per core is started here, at start-up (as the CLI does). Each variant is
called once to compile (reported apart), then timed as the median of the repeats with
``block_until_ready``. Progress-bar overhead is the same fit run in the CLI's compiled
chunks (~0.1 s each), waited on between chunks.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys

import jax

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import median_time as _median  # the timing helpers of every benchmark
from bench import median_times as _medians

# start-up choice, before any computation (and after bench's import, which picks one per core)
_devices = next((int(a.split("=")[1]) for a in sys.argv if a.startswith("--devices=")), os.cpu_count() or 1)
jax.config.update("jax_num_cpu_devices", _devices)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax import lax  # noqa: E402

from jaxcal import loss_and_grad  # noqa: E402
from jaxcal.cli.fleet import fleet_chunks  # noqa: E402
from jaxcal.fleet import fit_fleet  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sensors", type=int, default=10_000)
    parser.add_argument("--readings", type=int, default=11)
    parser.add_argument("--epochs", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--devices", type=int, default=_devices, help="CPU devices (--devices=N, start-up)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the plain vmap baseline")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    t_u = rng.uniform(2.0, 8.0, (args.sensors, args.readings)).astype(np.float32)
    t_c = (5.4 * t_u - 17.0 + rng.normal(0.0, 1.0, t_u.shape)).astype(np.float32)
    work = args.sensors * args.epochs
    print(f"# {args.sensors} sensors x {args.readings} readings x {args.epochs} epochs of SGD; "
          f"{platform.machine()}, {os.cpu_count()} cores, jax {jax.__version__}, devices {len(jax.devices())}")

    @jax.jit
    def plain_vmap(t_u, t_c):
        # the plain formulation: the single-sensor loop, vmapped over sensors
        def fit(x, y):
            def step(p, _):
                _, g = loss_and_grad(p, x, y)
                return p - 1e-2 * g, None

            return lax.scan(step, jnp.asarray([1.0, 0.0]), None, length=args.epochs)[0]

        return jax.vmap(fit)(t_u, t_c)

    plain, plain_first = (float("nan"), float("nan")) if args.no_baseline else _median(
        lambda: plain_vmap(t_u, t_c), args.repeats)
    chunks = fleet_chunks(work, args.epochs)  # the CLI's policy: ~0.1 s per compiled chunk
    # one call, and the same fit in the CLI's chunks with a progress callback, taking turns
    timed = _medians({
        "one call": lambda: fit_fleet(t_u, t_c, n_epochs=args.epochs, learning_rate=1e-2).loss,
        "chunks": lambda: fit_fleet(t_u, t_c, n_epochs=args.epochs, learning_rate=1e-2,
                                    progress=lambda done, total: None, chunks=chunks).loss,
    }, args.repeats)
    (fleet, fleet_first), (chunked, _) = timed["one call"], timed["chunks"]
    print(f"plain vmap(scan):  {plain * 1e3:8.1f} ms  {work / plain:.3g} sensor-epochs/s  "
          f"(first call {plain_first:.2f} s)")
    print(f"jaxcal fit_fleet:  {fleet * 1e3:8.1f} ms  {work / fleet:.3g} sensor-epochs/s  "
          f"(first call {fleet_first:.2f} s)  {plain / fleet:.1f}x plain vmap")
    print(f"  in {chunks} chunks with a progress callback (as the CLI runs it): {chunked * 1e3:.1f} ms, "
          f"overhead {chunked / fleet - 1:+.1%}")


if __name__ == "__main__":
    main()
