"""The accelerator's benchmark: the fused fleet kernel against fit_fleet's XLA path, and where work
is placed fastest (the accelerator or the CPU device), measured side by side in one run.

    python benchmarks/bench_gpu.py --out folder        # on a machine with an NVIDIA GPU
    python benchmarks/bench_gpu.py --quick             # anywhere: small sizes, to check the script

Writes ``gpu.json``: the machine, every timing (medians after a warm-up call, with
``block_until_ready``, compile time apart), sensor-epochs per second, the kernel's fraction of
the compute ceiling, and the crossovers where the accelerator passes the CPU. Each variant that
fails is recorded with its one-line error instead of stopping the run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np

from jaxcal import data, training_loop
from jaxcal.fleet import fit_fleet
from jaxcal.fused import fit_fleet_fused

EPOCHS = 5000
LR = 1e-2
#: FP32 instructions per sensor-epoch of the book's loss, its gradient and the update, in registers.
INSTRUCTIONS = 59


def timed(fn, repeats: int) -> dict[str, float]:
    start = time.perf_counter()
    jax.block_until_ready(fn())
    first = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return {"s": float(np.median(times)), "first_s": first}


def attempt(fn, repeats: int) -> dict[str, Any]:
    try:
        return timed(fn, repeats)
    except Exception as error:  # a backend that cannot compile this kernel: a result, recorded
        return {"error": f"{type(error).__name__}: {str(error).splitlines()[0][:300]}"}


def fleet(sensors: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    t_u = rng.uniform(2.0, 8.0, (sensors, 11)).astype(np.float32)
    return t_u, (5.4 * t_u - 17.0 + rng.normal(0.0, 1.0, t_u.shape)).astype(np.float32)


def ceiling() -> dict[str, Any]:
    """Sensor-epochs per second if every FP32 lane did one instruction per cycle."""
    device = jax.devices()[0]
    sms = getattr(device, "core_count", None)
    try:
        clock = float(subprocess.run(["nvidia-smi", "--query-gpu=clocks.max.sm", "--format=csv,noheader,nounits"],
                                     capture_output=True, text=True, check=True).stdout.split()[0]) * 1e6
    except (OSError, subprocess.CalledProcessError, ValueError, IndexError):
        clock = None
    value = sms * 128 * clock / INSTRUCTIONS if sms and clock else None
    return {"sms": sms, "lanes_per_sm": 128, "clock_hz": clock, "instructions": INSTRUCTIONS,
            "sensor_epochs_per_s": value}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    repeats = 2 if args.quick else 5
    big = 4096 if args.quick else 1_000_000
    epochs = 200 if args.quick else EPOCHS
    cpu = jax.devices("cpu")
    accelerator = jax.default_backend() != "cpu"
    out: dict[str, Any] = {
        "machine": {"device": str(jax.devices()[0].device_kind), "platform": jax.default_backend(),
                    "cpu_cores": os.cpu_count(), "jax": jax.__version__, "python": platform.python_version(),
                    "date": time.strftime("%Y-%m-%d")},
        "quick": args.quick, "ceiling": ceiling() if accelerator else None}

    # 1. the fused kernel against the XLA path, one large fleet
    t_u, t_c = fleet(big)
    kernel: dict[str, Any] = {
        "fit_fleet (XLA)": attempt(lambda: fit_fleet(t_u, t_c, n_epochs=epochs, learning_rate=LR).loss, repeats)}
    for backend in (None, "triton", "mosaic_gpu") if accelerator else (None,):
        name = f"fused kernel ({backend or 'default'})"
        kernel[name] = attempt(lambda backend=backend: fit_fleet_fused(
            t_u, t_c, n_epochs=epochs, learning_rate=LR, backend=backend, interpret=not accelerator).loss, repeats)
    for row in kernel.values():
        if "s" in row:
            row["sensor_epochs_per_s"] = big * epochs / row["s"]
    out["kernel"] = {"sensors": big, "epochs": epochs, "runs": kernel}

    # 2. placement: the seed's run and fleets of every size, on the accelerator and on the CPU device
    placement: dict[str, Any] = {}
    if accelerator:
        on_cpu = [jax.device_put(a, cpu[0]) for a in (data.t_un, data.t_c)]
        placement["seed"] = {
            "accelerator": attempt(lambda: training_loop(EPOCHS, LR, [1.0, 0.0], data.t_un, data.t_c).params, repeats),
            "cpu": attempt(lambda: training_loop(EPOCHS, LR, [1.0, 0.0], *on_cpu).params, repeats)}
        sizes = [10, 100, 1000, 10_000, 100_000, 1_000_000]
        fleets: dict[str, Any] = {}
        for sensors in sizes:
            x, y = fleet(sensors, sensors)
            fleets[str(sensors)] = {
                "accelerator": attempt(lambda x=x, y=y: fit_fleet(x, y, n_epochs=EPOCHS, learning_rate=LR).loss,
                                       repeats),
                "cpu": attempt(lambda x=x, y=y: fit_fleet(x, y, n_epochs=EPOCHS, learning_rate=LR, devices=cpu).loss,
                               repeats)}
        placement["fleets"] = fleets
        faster = [int(n) for n, row in fleets.items()
                  if "s" in row["accelerator"] and "s" in row["cpu"] and row["accelerator"]["s"] < row["cpu"]["s"]]
        placement["fleet_crossover_sensors"] = min(faster) if faster else None
    out["placement"] = placement
    folder = Path(args.out)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "gpu.json").write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    sys.exit(main())
