"""Largest gaps per chapter run: fast mode and exact mode against torch, float64 against torch.

Run: ``python benchmarks/parity_report.py`` (needs the ``parity`` extra). Prints a Markdown
table. The float64 column runs this script again in a child process with ``JAX_ENABLE_X64=1``,
since x64 is chosen at start-up.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import jax
import numpy as np

from jaxcal import data, tolerances
from jaxcal.chapter import QUADRATIC_EXERCISE, RUNS
from jaxcal.parity import RunConfig, compare


def _largest(config: RunConfig, exact: bool = False) -> dict[str, float]:
    """The largest gaps of one run against torch, by kind of value."""
    with jax.numpy_dtype_promotion("standard"):
        comparison = compare(config, exact=exact)
    epochs = np.asarray(sorted({row.epoch for row in comparison.rows}))
    if config.optimizer == "adam":
        bounds = tolerances.adam_trajectory_bounds(config.params, config.t_u, config.t_c, config.learning_rate,
                                                   config.n_epochs, config.dtype, at_epochs=epochs)
    else:
        bounds = tolerances.gd_trajectory_bounds(config.params, config.t_u, config.t_c, config.learning_rate,
                                                 config.n_epochs, config.dtype)
    dtype = config.dtype
    out = {"fraction": 0.0, "loss_ulps": 0.0, "params_ulps": 0.0, "grad_vs_terms": 0.0, "ok": comparison.ok}
    for row in comparison.rows:
        if not np.isfinite(row.torch):
            continue
        if row.allowed > 0:
            out["fraction"] = max(out["fraction"], row.abs_diff / row.allowed)
        ulps = row.abs_diff / float(np.spacing(np.abs(np.asarray(row.torch, dtype))))
        if row.quantity in ("loss", "val_loss"):
            out["loss_ulps"] = max(out["loss_ulps"], ulps)
        elif row.quantity.startswith("params"):
            out["params_ulps"] = max(out["params_ulps"], ulps)
        else:
            j = int(row.quantity[5:-1])
            scale = bounds.grad_scale[row.epoch - 1][j]
            if np.isfinite(scale) and scale > 0:
                out["grad_vs_terms"] = max(out["grad_vs_terms"], row.abs_diff / scale)
    return out


def _float64(config: RunConfig) -> RunConfig:
    t_u, t_c = data.readings(np.float64)
    scale = 0.1 if config.t_u.max() < 10 else 1.0
    if config.val is not None:
        train, val = (list(i) for i in data.BOOK_SPLIT)
        return config._replace(t_u=0.1 * t_u[train], t_c=t_c[train], val=(0.1 * t_u[val], t_c[val]))
    return config._replace(t_u=scale * t_u, t_c=t_c)


def _runs() -> dict[str, RunConfig]:
    return {**RUNS, "quadratic exercise (live torch only)": QUADRATIC_EXERCISE}


def main() -> None:
    if jax.config.jax_enable_x64:  # the child: float64 gaps as JSON
        print(json.dumps({name: _largest(_float64(config)) for name, config in _runs().items()}))
        return
    child = subprocess.run([sys.executable, __file__], capture_output=True, text=True, check=True,
                           env={**os.environ, "JAX_ENABLE_X64": "1"})
    float64 = json.loads(child.stdout.strip().splitlines()[-1])
    print("Largest gap to torch over every logged epoch. ulps: float32 units in the last place of the value; "
          "grad: |difference| / sum of |summed terms| (the scale a gradient's rounding error has).\n")
    print("| run | fast: loss ulps | fast: params ulps | fast: grad / terms | fast: % of tolerance "
          "| exact: loss ulps | float64: max of loss, params, grad relative |")
    print("|---|---|---|---|---|---|---|")
    for name, config in _runs().items():
        fast = _largest(config)
        exact = "n/a"
        if config.optimizer != "adam" and config.gradient != "finite-difference":
            exact = f"{_largest(config, exact=True)['loss_ulps']:.0f}"
        f64 = float64[name]
        eps64 = float(np.finfo(np.float64).eps)
        rel64 = max(f64["loss_ulps"], f64["params_ulps"]) * eps64
        rel64 = max(rel64, f64["grad_vs_terms"])
        print(f"| {name} | {fast['loss_ulps']:.0f} | {fast['params_ulps']:.0f} | {fast['grad_vs_terms']:.1e} "
              f"| {fast['fraction']:.1%}{'' if fast['ok'] else ' FAIL'} | {exact} "
              f"| {rel64:.1e}{'' if f64['ok'] else ' FAIL'} |")


if __name__ == "__main__":
    main()
