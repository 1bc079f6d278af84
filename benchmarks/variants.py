"""Formulations of the fleet and of the large fit, timed against each other on the default device.

Run: ``python benchmarks/variants.py [--sensors 1000000] [--readings 10000000]``. Used to choose
what jaxcal does on each platform: with and without the one-pass sums (:mod:`jaxcal.onepass`),
jaxcal's loops against bare ones. Medians of ``--repeats`` calls after a warm-up call.
"""

from __future__ import annotations

import argparse
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

import jaxcal.evaluate
import jaxcal.fleet
import jaxcal.sweeps
import jaxcal.training
from jaxcal import training_loop
from jaxcal.core import objective
from jaxcal.fleet import fit_fleet
from jaxcal.onepass import one_pass

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import median_time

LR = 1e-2


def _without_one_pass(run):
    """Run ``run()`` with jaxcal's one-pass sums switched off (the plain jax.grad program)."""

    compiled = (jaxcal.fleet._tiles_whole, jaxcal.fleet._tiles_chunk, jaxcal.fleet._tiles_loss,
                jaxcal.training._compiled_loop)
    cached = (jaxcal.fleet._vmapped, jaxcal.sweeps._program)

    def clear():  # the programs compiled with one_pass are cached under the same key
        for f in compiled:
            f.clear_cache()
        for f in cached:
            f.cache_clear()

    def call():
        saved = jaxcal.fleet.one_pass, jaxcal.evaluate.one_pass
        jaxcal.fleet.one_pass = jaxcal.evaluate.one_pass = lambda fun, **_: fun
        clear()
        try:
            return run()
        finally:
            jaxcal.fleet.one_pass, jaxcal.evaluate.one_pass = saved
            clear()

    return call


def fleets(sensors: int, repeats: int) -> None:
    rng = np.random.default_rng(0)
    t_u = rng.uniform(2.0, 8.0, (sensors, 11)).astype(np.float32)
    t_c = (5.4 * t_u - 17.0 + rng.normal(0.0, 1.0, t_u.shape)).astype(np.float32)
    epochs = 5000

    def plain(vg):
        @jax.jit
        def run(x, y):
            def fit(x, y):
                def step(p, _):
                    return p - LR * vg(p, x, y)[1], None

                return lax.scan(step, jnp.asarray([1.0, 0.0]), None, length=epochs)[0]

            return jax.vmap(fit)(x, y)

        return lambda: run(t_u, t_c)

    variants = {
        "fit_fleet": lambda: fit_fleet(t_u, t_c, n_epochs=epochs, learning_rate=LR).loss,
        "fit_fleet without one_pass": _without_one_pass(
            lambda: fit_fleet(t_u, t_c, n_epochs=epochs, learning_rate=LR).loss),
        "plain vmap(scan)": plain(jax.value_and_grad(objective)),
        "plain vmap(scan), one_pass": plain(one_pass(jax.value_and_grad(objective))),
    }
    for name, run in variants.items():
        seconds, first = median_time(run, repeats)
        print(f"fleet {sensors} x 11 x {epochs}: {name:30s} {seconds * 1e3:8.1f} ms "
              f"{sensors * epochs / seconds:.3g} sensor-epochs/s (first {first:.2f} s)", flush=True)


def large(n: int, repeats: int) -> None:
    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.uniform(2.0, 8.0, n).astype(np.float32))
    y = jnp.asarray((5.4 * np.asarray(x) - 17.0 + rng.normal(0.0, 1.0, n)).astype(np.float32))
    epochs = 100
    gigabytes = 2 * 4 * n * epochs / 1e9

    def bare(vg):
        @jax.jit
        def run(x, y):
            def step(p, _):
                return p - 1e-4 * vg(p, x, y)[1], None

            return lax.scan(step, jnp.asarray([1.0, 0.0]), None, length=epochs)[0]

        return lambda: run(x, y)

    @jax.jit
    def stream(x, y):
        def body(_, acc):
            return acc + jnp.sum(x * (acc * 1e-30 + 1.0) + y)

        return lax.fori_loop(0, epochs, body, jnp.float32(0.0))

    def bookkept(vg):
        # the bare scan plus training_loop's per-epoch bookkeeping: divergence check, last finite
        # params, epochs run
        @jax.jit
        def run(x, y):
            def step(carry, _):
                p, runs, diverged = carry
                loss, g = vg(p, x, y)
                new = p - 1e-4 * g
                finite = jnp.isfinite(loss) & jnp.all(jnp.isfinite(new))
                accept = ~diverged & finite
                return (jnp.where(accept, new, p), runs + (~diverged).astype(jnp.int32),
                        diverged | (~diverged & ~finite)), None

            start = (jnp.asarray([1.0, 0.0]), jnp.int32(0), jnp.bool_(False))
            return lax.scan(step, start, None, length=epochs)[0]

        return lambda: run(x, y)

    variants = {
        "training_loop": lambda: training_loop(epochs, 1e-4, [1.0, 0.0], x, y, log_every=epochs).params,
        "bare scan + bookkeeping, one_pass": bookkept(one_pass(jax.value_and_grad(objective))),
        "training_loop without one_pass": _without_one_pass(
            lambda: training_loop(epochs, 1e-4, [1.0, 0.0], x, y, log_every=epochs).params),
        "bare scan of value_and_grad": bare(jax.value_and_grad(objective)),
        "bare scan, one_pass": bare(one_pass(jax.value_and_grad(objective))),
        "streaming read": lambda: stream(x, y),
    }
    for name, run in variants.items():
        seconds, first = median_time(run, repeats)
        print(f"large {n:.0e} x {epochs}: {name:30s} {seconds * 1e3:8.2f} ms {gigabytes / seconds:8.1f} GB/s "
              f"(first {first:.2f} s)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sensors", type=int, default=1_000_000)
    parser.add_argument("--readings", type=int, default=10_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"# {jax.devices()[0].device_kind}, jax {jax.__version__}")
    large(args.readings, args.repeats)
    fleets(args.sensors, args.repeats)


if __name__ == "__main__":
    main()
