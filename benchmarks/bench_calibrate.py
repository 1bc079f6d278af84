"""Fleets of nonlinear calibrations: ``jaxcal.calibrate`` beside SciPy's MINPACK and optimistix, in one run.

Run: ``python benchmarks/bench_calibrate.py [--sensors 102400] [--x64]``; ``--x64`` measures float64 (x64 is
a start-up choice: run it as a process of its own), float32 otherwise. Both write into
``benchmarks/results/calibrate.json`` (committed; ``make bench`` runs both and ``docs/generate.py`` turns it
into the performance page's calibration section), each under its dtype.

The fleet (issue 23): sensors shaped like NIST StRD's Misra1a, 14 readings at Misra1a's x values, model
``b1 * (1 - exp(-b2 * x))``, each sensor's true params drawn within +-20% of the certified ones, noise of the
certified residual standard deviation, a fixed seed; every fit starts at NIST's Start 1.

Measured, as ``benchmarks/bench.py`` measures: each variant is called once to compile (reported apart),
then timed as the median of ``--repeats`` calls with ``block_until_ready``, the variants taking turns so
that their ratios see the same state of the machine:

* ``jaxcal.calibrate(..., model=fn, params=start, solver=LevenbergMarquardt())`` on the whole fleet, as a
  library caller calls it (NumPy readings in), split over every local device: one CPU device per core,
  chosen at start-up as the command line chooses them;
* ``scipy.optimize.least_squares(method="lm", jac=exact)`` in a Python loop over the first
  ``--scipy-sensors`` (float64, its default tolerances), as a rate per fit;
* ``optimistix.least_squares(..., optimistix.LevenbergMarquardt(rtol, atol))`` under ``jax.jit(jax.vmap)``
  over the first ``--optimistix-sensors``, with calibrate's own default tolerances, where optimistix
  imports (it is not a dependency: ``pip install --target DIR optimistix ...`` and ``PYTHONPATH=DIR``).

Agreement: over the SciPy subset, each fit that calibrate (or optimistix) reports converged against SciPy's
float64 answer polished to the minimum (tight tolerances, then Gauss-Newton steps). The float64 figure is
the largest relative difference of a param (the issue's goal: 1e-9). The float32 figure is the largest
ratio of a param's difference to its float32 bound (at most 1 is agreement), the bound derived as the
tests derive it (``tests/test_calibrate.py``'s ``_rounding_bound``): to first order a change ``e`` of the
residuals moves the params by ``pinv(J) @ e``, and float32 rounds each residual by about
``eps * (|t_c| + |t_p|)``; the column-scaled SVD solve adds ``cond * eps * |params|``; 16 covers the few
roundings on the way to each; and LM stops within its tolerance ``eps ** (2 / 3) * |params|``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import jax

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import median_times  # the timing helpers of every benchmark

# start-up choices, before any array exists: one CPU device per core (as bench's import asks, and as the
# command line starts), x64 for --x64
jax.config.update("jax_num_cpu_devices", os.cpu_count() or 1)
jax.config.update("jax_enable_x64", "--x64" in sys.argv)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from jaxcal import calibrate  # noqa: E402
from jaxcal.solvers import STATUS, LevenbergMarquardt  # noqa: E402

RESULTS = Path(__file__).parent / "results"

# NIST StRD Misra1a (tests/nist/Misra1a.dat): its x values, certified params, residual SD and Start 1
MISRA1A_X = np.array([77.6, 114.9, 141.1, 190.8, 239.9, 289.0, 332.8, 378.4, 434.8, 477.3, 536.8, 593.1,
                      689.1, 760.0])
CERTIFIED = np.array([2.3894212918e02, 5.5015643181e-04])
RESIDUAL_SD = 1.0187876330e-01
START = np.array([500.0, 1e-4])
SEED = 23


def misra1a(x: jax.Array, b1: jax.Array, b2: jax.Array) -> jax.Array:
    """NIST's Misra1a model, ``b1 * (1 - exp(-b2 * x))``."""
    return b1 * (1 - jnp.exp(-b2 * x))


def fleet(sensors: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(t_u, t_c, true params)`` of the Misra1a-shaped fleet, float64: ``(sensors, 14)`` twice, ``(sensors, 2)``."""
    rng = np.random.default_rng(SEED)
    truth = CERTIFIED * rng.uniform(0.8, 1.2, (sensors, 2))
    t_u = np.broadcast_to(MISRA1A_X, (sensors, MISRA1A_X.size)).copy()
    t_c = truth[:, :1] * (1 - np.exp(-truth[:, 1:] * t_u)) + rng.normal(0, RESIDUAL_SD, t_u.shape)
    return t_u, t_c, truth


def _residuals(p: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return p[0] * (1 - np.exp(-p[1] * x)) - y


def _jacobian(p: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.stack([1 - np.exp(-p[1] * x), p[0] * x * np.exp(-p[1] * x)], axis=1)


def scipy_loop(t_u: np.ndarray, t_c: np.ndarray, **tolerances: float) -> tuple[np.ndarray, np.ndarray]:
    """SciPy's MINPACK LM with the exact Jacobian, one sensor at a time: (params, MINPACK's status)."""
    from scipy.optimize import least_squares

    params, status = np.empty((len(t_u), 2)), np.empty(len(t_u), int)
    for s in range(len(t_u)):
        fit = least_squares(_residuals, START, jac=_jacobian, method="lm", args=(t_u[s], t_c[s]), **tolerances)
        params[s], status[s] = fit.x, fit.status
    return params, status


def reference(t_u: np.ndarray, t_c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """SciPy's float64 answer at the minimum: MINPACK at float64's tolerances, then Gauss-Newton steps
    (its xtol test may stop short of the minimum; Gauss-Newton converges quadratically from there)."""
    params, status = scipy_loop(t_u, t_c, xtol=1e-15, ftol=1e-15, gtol=1e-15)
    for s in range(len(t_u)):
        for _ in range(3):
            jac = _jacobian(params[s], t_u[s], t_c[s])
            params[s] += np.linalg.lstsq(jac, -_residuals(params[s], t_u[s], t_c[s]), rcond=None)[0]
    return params, status


def float32_bound(params: np.ndarray, t_u: np.ndarray, t_c: np.ndarray) -> np.ndarray:
    """How far a float32 fit may lie from the exact minimum ``params``, per sensor and param (module docstring)."""
    eps = float(np.finfo(np.float32).eps)
    bounds = np.empty_like(params)
    for s in range(len(params)):
        jac = _jacobian(params[s], t_u[s], t_c[s])
        t_p = t_c[s] + _residuals(params[s], t_u[s], t_c[s])
        condition = np.linalg.cond(jac / np.linalg.norm(jac, axis=0))
        data_rounding = np.abs(np.linalg.pinv(jac)) @ (np.abs(t_c[s]) + np.abs(t_p))
        bounds[s] = 16 * eps * (data_rounding + condition * np.abs(params[s])) + eps ** (2 / 3) * np.abs(params[s])
    return bounds


def optimistix_fleet(dtype: Any) -> tuple[Any, str | None]:
    """A jitted ``(y0, t_u, t_c) -> (params, successful)`` over a fleet by optimistix, and its version
    (None, None where it does not import)."""
    try:
        import optimistix as optx
    except ImportError:
        return None, None
    # calibrate's defaults: rtol eps ** (2 / 3), atol 0
    solver = optx.LevenbergMarquardt(rtol=float(jnp.finfo(dtype).eps) ** (2 / 3), atol=0.0)

    def one(y0: jax.Array, x: jax.Array, y: jax.Array) -> tuple[jax.Array, jax.Array]:
        def fn(p: jax.Array, args: Any) -> jax.Array:
            return misra1a(args[0], p[0], p[1]) - args[1]

        solution = optx.least_squares(fn, solver, y0, args=(x, y), max_steps=1000, throw=False)
        return solution.value, solution.result == optx.RESULTS.successful

    version = getattr(optx, "__version__", None)
    if version is None:
        from importlib.metadata import version as _version

        version = _version("optimistix")
    return jax.jit(jax.vmap(one)), version


def machine(optimistix: str | None) -> dict[str, Any]:
    import jaxlib
    import scipy

    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError, StopIteration):
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "jax": jax.__version__,
            "jaxlib": jaxlib.__version__, "numpy": np.__version__, "scipy": scipy.__version__,
            "optimistix": optimistix, "platform": jax.default_backend(), "devices": len(jax.devices()),
            "date": datetime.date.today().isoformat()}


def run(sensors: int, scipy_sensors: int, optimistix_sensors: int, repeats: int) -> dict[str, Any]:
    dtype = np.float64 if jax.config.jax_enable_x64 else np.float32
    t_u, t_c, _ = fleet(sensors)
    u, c = t_u.astype(dtype), t_c.astype(dtype)
    solver = LevenbergMarquardt()
    n_scipy, n_optx = min(scipy_sensors, sensors), min(optimistix_sensors, sensors)
    optx_fit, optx_version = optimistix_fleet(dtype)

    def ours() -> Any:
        return calibrate(u, c, model=misra1a, params=START, solver=solver)

    def scipy_fits() -> Any:
        return scipy_loop(t_u[:n_scipy], t_c[:n_scipy])

    variants = {"jaxcal.calibrate": ours, "scipy least_squares(lm), loop": scipy_fits}
    counts = {"jaxcal.calibrate": sensors, "scipy least_squares(lm), loop": n_scipy}
    if optx_fit is not None:
        y0 = jnp.broadcast_to(jnp.asarray(START, dtype), (n_optx, 2))
        optx_u, optx_c = jnp.asarray(u[:n_optx]), jnp.asarray(c[:n_optx])
        variants["optimistix LM, jit(vmap)"] = lambda: optx_fit(y0, optx_u, optx_c)
        counts["optimistix LM, jit(vmap)"] = n_optx
    timed = median_times(variants, repeats)
    speed = {name: {"sensors": counts[name], "median_s": median, "first_s": first,
                    "compile_s": max(first - median, 0.0), "fits_per_s": counts[name] / median}
             for name, (median, first) in timed.items()}

    # agreement with SciPy's float64 minimum, over its subset
    fit = ours()
    statuses = Counter(STATUS[int(s)] for s in np.asarray(fit.status))
    best, minpack = reference(t_u[:n_scipy], t_c[:n_scipy])
    converged = np.asarray(fit.status[:n_scipy]) == STATUS.index("converged")
    params = np.asarray(fit.params[:n_scipy], np.float64)
    agreement: dict[str, Any] = {"sensors": n_scipy, "scipy_succeeded": int((minpack > 0).sum()),
                                 "jaxcal_converged": int(converged.sum())}
    relative = np.abs(params - best) / np.abs(best)
    agreement["jaxcal_max_relative_difference"] = float(relative[converged].max()) if converged.any() else None
    if dtype == np.float32:
        ratio = np.abs(params - best) / float32_bound(best, t_u[:n_scipy], t_c[:n_scipy])
        worst = float(ratio[converged].max()) if converged.any() else None
        agreement["jaxcal_max_difference_over_float32_bound"] = worst
    optx_statuses = None
    if optx_fit is not None:
        values, ok = optx_fit(y0, optx_u, optx_c)
        ok = np.asarray(ok)
        optx_statuses = {"successful": int(ok.sum()), "other": int((~ok).sum())}
        within = min(n_optx, n_scipy)
        done = ok[:within]
        rel = np.abs(np.asarray(values[:within], np.float64) - best[:within]) / np.abs(best[:within])
        agreement["optimistix_successful"] = int(done.sum())
        agreement["optimistix_max_relative_difference"] = float(rel[done].max()) if done.any() else None
    return {"dtype": np.dtype(dtype).name, "sensors": sensors, "repeats": repeats, "speed": speed,
            "jaxcal_status": dict(statuses), "optimistix_status": optx_statuses,
            "steps_median": float(np.median(np.asarray(fit.steps))), "steps_max": int(np.max(np.asarray(fit.steps))),
            "agreement": agreement, "optimistix": optx_version}


def lines(sensors: int, repeats: int) -> dict[str, Any]:
    """A fleet of lines with their standard errors: ``calibrate`` on ``sensors`` x 11 readings (the book's
    shape, the default least squares), beside a streaming read of the same bytes (a jitted sum of both
    arrays, as ``benchmarks/bench.py`` measures the limit): the issue's goal is at least 0.8 of it.

    Also timed, in the same run: writing the results alone (a jitted program that reads one reading per
    sensor and writes arrays of the shapes and dtypes ``calibrate`` returns, nothing computed), the floor
    of any program that returns them; ``fraction_bound`` is the streaming read over that floor, the most
    ``fraction_of_streaming_read`` could be here."""
    dtype = np.float64 if jax.config.jax_enable_x64 else np.float32
    rng = np.random.default_rng(SEED)
    t_u = rng.uniform(20.0, 90.0, (sensors, 11)).astype(dtype)
    t_c = (rng.uniform(0.5, 0.6, (sensors, 1)) * t_u - 17.0 + rng.normal(0.0, 1.0, t_u.shape)).astype(dtype)
    x, y = jnp.asarray(t_u), jnp.asarray(t_c)
    shapes = [(value.shape, value.dtype) for value in calibrate(t_u[:1], t_c[:1])[:-1]]

    @jax.jit
    def stream(x: jax.Array, y: jax.Array) -> jax.Array:
        return jnp.sum(x) + jnp.sum(y)

    @jax.jit
    def write_only(x: jax.Array) -> tuple[jax.Array, ...]:
        first = x[:, 0]
        return tuple(jnp.broadcast_to(first.reshape(-1, *(1,) * (len(shape) - 1)), (len(first), *shape[1:]))
                     .astype(kind) for shape, kind in shapes)

    timed = median_times({"calibrate": lambda: calibrate(t_u, t_c).stderr,
                          "streaming read": lambda: stream(x, y),
                          "results written": lambda: write_only(x)}, repeats)
    gigabytes = 2 * t_u.nbytes / 1e9
    fit, read, floor = timed["calibrate"][0], timed["streaming read"][0], timed["results written"][0]
    return {"sensors": sensors, "readings": 11, "calibrate_s": fit, "fits_per_s": sensors / fit,
            "compile_s": max(timed["calibrate"][1] - fit, 0.0), "calibrate_gb_per_s": gigabytes / fit,
            "streaming_read_gb_per_s": gigabytes / read, "fraction_of_streaming_read": read / fit,
            "results_written_s": floor, "results_mb": sum(sensors * int(np.prod(shape[1:])) * np.dtype(kind).itemsize
                                                          for shape, kind in shapes) / 1e6,
            "fraction_bound": read / floor}


def show(result: dict[str, Any]) -> None:
    print(f"\n{result['dtype']}, {result['sensors']} sensors shaped like Misra1a, median of {result['repeats']}")
    print(f"{'':34} {'sensors':>8} {'fits/s':>10} {'median s':>9} {'compile s':>9}")
    ours = result["speed"]["jaxcal.calibrate"]["fits_per_s"]
    for name, row in result["speed"].items():
        ratio = "" if name.startswith("jaxcal") else f"  jaxcal is {ours / row['fits_per_s']:.0f}x"
        print(f"{name:34} {row['sensors']:>8} {row['fits_per_s']:>10.3g} {row['median_s']:>9.3f} "
              f"{row['compile_s']:>9.2f}{ratio}")
    print(f"jaxcal statuses: {result['jaxcal_status']}; steps: median {result['steps_median']:g}, "
          f"max {result['steps_max']}")
    if result["optimistix_status"] is not None:
        print(f"optimistix: {result['optimistix_status']}")
    print("agreement with SciPy's float64 minimum:", json.dumps(result["agreement"]))
    line = result["lines"]
    print(f"lines: {line['sensors']} sensors x {line['readings']} readings with standard errors in "
          f"{line['calibrate_s']:.3f} s ({line['fits_per_s']:.3g} fits/s), {line['fraction_of_streaming_read']:.3f} "
          f"of a streaming read of the same bytes ({line['streaming_read_gb_per_s']:.1f} GB/s); writing the "
          f"{line['results_mb']:.0f} MB of results alone takes {line['results_written_s']:.3f} s, so at most "
          f"{line['fraction_bound']:.3f} of the read")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sensors", type=int, default=102_400)
    parser.add_argument("--x64", action="store_true", help="measure float64 (start-up choice); float32 otherwise")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--scipy-sensors", type=int, default=500, help="the SciPy loop's subset (default 500)")
    parser.add_argument("--optimistix-sensors", type=int, default=10_240,
                        help="optimistix's subset (default 10240)")
    parser.add_argument("--lines", type=int, default=1_000_000, help="sensors of the fleet of lines (default 1e6)")
    parser.add_argument("--out", default=None, help="the JSON file (default benchmarks/results/calibrate.json)")
    args = parser.parse_args()
    if min(args.sensors, args.repeats, args.scipy_sensors, args.optimistix_sensors, args.lines) < 1:
        parser.error("--sensors, --repeats, --scipy-sensors, --optimistix-sensors and --lines must be at least 1")
    started = time.perf_counter()
    result = run(args.sensors, args.scipy_sensors, args.optimistix_sensors, args.repeats)
    result["lines"] = lines(args.lines, args.repeats)
    result["wall_s"] = time.perf_counter() - started
    show(result)

    out = Path(args.out) if args.out else RESULTS / "calibrate.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    record = json.loads(out.read_text()) if out.exists() else {}
    record["machine"] = machine(result.pop("optimistix"))
    record[result["dtype"]] = result  # the other dtype's run, from its own process, stays
    temp = out.with_name(f".{out.name}.part")
    temp.write_text(json.dumps(record, indent=1) + "\n")
    os.replace(temp, out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
