"""Time the seed's run (5000 epochs, 11 readings): jaxcal's compiled loop against the alternatives.

Run: ``python benchmarks/bench_seed.py [--repeats N]``. Every variant is warmed up first
(compile time reported apart), timed with ``block_until_ready``, and the median of the repeats
is reported; ratios are taken within this one run.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp

from jaxcal import data, sgd_step, training_loop

N_EPOCHS = 5000
LR = 1e-2


def _median_seconds(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _compiled() -> object:
    return training_loop(N_EPOCHS, LR, [1.0, 0.0], data.t_un, data.t_c, log_every=500)


def _python_loop_of_jitted_steps() -> object:
    params = jnp.asarray([1.0, 0.0])
    t_u, t_c, lr = jnp.asarray(data.t_un), jnp.asarray(data.t_c), jnp.float32(LR)
    for _ in range(N_EPOCHS):
        params, _, _ = sgd_step(params, t_u, t_c, lr)
    return params


def _torch_seed_loop() -> object:
    import torch

    t_u, t_c = torch.tensor(data.t_un), torch.tensor(data.t_c)
    params = torch.tensor([1.0, 0.0], requires_grad=True)
    for _ in range(N_EPOCHS):
        if params.grad is not None:
            params.grad.zero_()
        loss = ((params[0] * t_u + params[1] - t_c) ** 2).mean()
        loss.backward()
        with torch.no_grad():
            params -= LR * params.grad
    return params.detach()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    print(f"# seed run: {N_EPOCHS} epochs, 11 readings; {platform.processor() or platform.machine()}, "
          f"jax {jax.__version__}, device {jax.devices()[0].device_kind}")

    start = time.perf_counter()
    jax.block_until_ready(_compiled())
    first = time.perf_counter() - start
    compiled = _median_seconds(_compiled, args.repeats)
    print(f"compiled training_loop: first call {first * 1e3:.1f} ms (compile + run), "
          f"median run {compiled * 1e3:.3f} ms ({compiled / N_EPOCHS * 1e9:.0f} ns/epoch)")

    jax.block_until_ready(_python_loop_of_jitted_steps())
    stepped = _median_seconds(_python_loop_of_jitted_steps, max(3, args.repeats // 5))
    print(f"python loop of jitted sgd_step: median {stepped * 1e3:.1f} ms "
          f"({stepped / compiled:.0f}x the compiled loop)")

    try:
        import torch  # noqa: F401
    except ImportError:
        print("torch seed loop: skipped (torch not installed; pip install '.[parity]')")
        return
    _torch_seed_loop()
    eager = _median_seconds(_torch_seed_loop, max(3, args.repeats // 5))
    print(f"torch seed loop (eager): median {eager * 1e3:.1f} ms ({eager / compiled:.0f}x the compiled loop)")


if __name__ == "__main__":
    main()
