"""A whole log of raw readings converted, each through its own sensor's calibration, against reading the log.

Run: ``python benchmarks/bench_predict_log.py [--readings 10000000] [--sensors 100000] [--repeats 3]
[--formats parquet,csv] [--keep DIR] [--no-record]``.

The fleet's results table (``jaxcal fleet --out``'s columns, from :func:`jaxcal.report.fleet_columns`) holds
``--sensors`` linear calibrations, 1% of them without a fit (status undetermined); the log holds
``--readings`` readings of those sensors and of 1% more that the results do not know, in a shuffled order,
0.1% of its readings missing, as text ids (``T-000042``). For each format (the log and the output alike,
Parquet and CSV; a CSV log also into Parquet) this times, in this process (wall clock, the median of
``--repeats`` after one warm-up run):

- **read**: the log table alone, :func:`jaxcal.io.read_log` (the CLI's reader of it);
- **total**: ``jaxcal predict --cal fits.parquet --data LOG --out OUT`` through the command line's ``main``:
  the results table, the log, every reading's conversion and interval, the output written atomically (a
  new file each run: the last run's output is removed, untimed, before it).

The two are timed in turns, and the ratio read / total (the median of each turn's) says how much of the
command is the reading it cannot avoid (the goal: >= 0.5). The command reads, converts and writes the log
a part at a time, the three at once; the phases of one more run are timed apart, one after another over
the whole log (results table, log, conversion, writing), to show what each stage costs. The output is
checked: one row per reading, in order, each status counted. The record is written to
``benchmarks/results/predict_log.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import io
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results" / "predict_log.json"


def _ids(numbers: np.ndarray) -> np.ndarray:
    return np.char.add("T-", np.char.zfill(numbers.astype(str), 6))


def write_inputs(folder: Path, readings: int, sensors: int, formats: list[str], seed: int = 0) -> dict[str, Path]:
    """The results table (Parquet) and the log in each of ``formats``; returns their paths."""
    import pyarrow as pa
    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq

    from jaxcal.io import write_table
    from jaxcal.report import fleet_columns
    from jaxcal.solvers import STATUS

    rng = np.random.default_rng(seed)
    w = rng.uniform(0.4, 0.6, sensors)
    b = rng.uniform(-20.0, -15.0, sensors)
    unfit = rng.random(sensors) < 0.01
    params = np.stack([w, b], axis=1)
    params[unfit] = np.nan
    cov = np.zeros((sensors, 2, 2))
    cov[:, 0, 0], cov[:, 0, 1], cov[:, 1, 0], cov[:, 1, 1] = 1e-4, -4e-3, -4e-3, 0.25
    cov[unfit] = np.nan
    status = np.where(unfit, STATUS.index("undetermined"), STATUS.index("converged"))
    fits = {"params": params, "stderr": np.sqrt(np.diagonal(cov, axis1=1, axis2=2)), "cov": cov,
            "residual_sd": np.where(unfit, np.nan, 0.3), "dof": np.where(unfit, 0, 98),
            "readings": np.full(sensors, 100), "dropped": np.zeros(sensors, int), "rss": np.full(sensors, 8.8),
            "r_squared": np.full(sensors, 0.999), "status": status,
            "reason": np.where(unfit, "all readings at one t_u", ""), "steps": np.ones(sensors, int)}
    paths = {"fits": folder / "fits.parquet"}
    write_table(paths["fits"], fleet_columns(_ids(np.arange(sensors)), ("w", "b"), fits, model="linear",
                                             solver="ls", scale=1.0))
    # readings of the known sensors and of 1% more unknown ones, shuffled; 0.1% of them missing
    which = rng.integers(0, sensors + max(1, sensors // 100), readings)
    t_u = np.round(rng.uniform(20.0, 90.0, readings), 2)
    t_u[rng.random(readings) < 0.001] = np.nan
    table = pa.table({"sensor": pa.array(_ids(which)),
                      "t_u": pa.array(t_u, mask=np.isnan(t_u))})
    for kind in formats:
        path = folder / f"log.{kind}"
        if kind == "parquet":
            pq.write_table(table, path)
        else:
            pa_csv.write_csv(table, path, pa_csv.WriteOptions(quoting_style="none"))
        paths[kind] = path
    return paths


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _paired(read, total, repeats: int, before) -> tuple[list[float], list[float]]:
    """The wall-clock times of ``read()`` and ``total()``, in turns, ``repeats`` of each after a warm-up of
    each (JAX compiles the interval program, the files enter the page cache); ``before()`` runs untimed
    before each ``total()``. Each pair runs under the same load: on a shared machine, whose speed drifts by
    half over minutes, their ratio is steadier than that of two medians taken apart."""
    read()
    before()
    total()
    reads, totals = [], []
    for _ in range(repeats):
        reads.append(_timed(read))
        before()
        totals.append(_timed(total))
    return reads, totals


def _predict(argv: list[str]) -> None:
    from jaxcal.cli import main

    with contextlib.redirect_stdout(io.StringIO()):
        status = main(argv)
    if status != 0:
        raise SystemExit(f"jaxcal {' '.join(argv)} exited {status}")


def _phases(fits: Path, log: Path, out: Path) -> dict[str, float]:
    """One run's phases, timed apart, one after another over the whole log: what each of the command's
    stages costs (the command runs them at once, a part each)."""
    from jaxcal.cli.predict import _Conversion, _fleet
    from jaxcal.io import read_log, write_table

    times, got = {}, {}
    times["results table"] = _timed(lambda: got.setdefault("fleet", _fleet(str(fits))))
    times["log"] = _timed(lambda: got.setdefault("log", read_log(log)))
    times["conversion"] = _timed(lambda: got.setdefault("columns", _Conversion(got["fleet"], 0.95, "prediction")(
        got["log"])))
    out.unlink(missing_ok=True)
    times["writing"] = _timed(lambda: write_table(out, got["columns"], name="--out"))
    return times


def _check(out: Path, log: Path) -> dict[str, int]:
    """The output holds one row per reading of the log, in its order; each status's count."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq

    def read(path: Path, names: list[str]) -> pa.Table:
        if path.suffix == ".parquet":
            return pq.read_table(path, columns=names)
        return pa_csv.read_csv(path, convert_options=pa_csv.ConvertOptions(
            include_columns=names, column_types={"sensor": pa.string(), "status": pa.string()}))

    got, given = read(out, ["sensor", "status"]), read(log, ["sensor"])
    if got.num_rows != given.num_rows or not got["sensor"].equals(given["sensor"]):
        raise SystemExit(f"{out}: not one row per reading of {log}, in its order")
    counts = pc.value_counts(got["status"]).to_pylist()
    return {c["values"]: int(c["counts"]) for c in counts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readings", type=int, default=10_000_000)
    parser.add_argument("--sensors", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--formats", default="parquet,csv")
    parser.add_argument("--keep", metavar="DIR", help="write the inputs and outputs here (default: a temporary folder)")
    parser.add_argument("--no-record", action="store_true", help="print only; do not write the JSON record")
    args = parser.parse_args()
    formats = [kind.strip() for kind in args.formats.split(",")]

    import jax
    import pyarrow

    import jaxcal
    from jaxcal.io import read_log

    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(args.keep or scratch)
        folder.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        paths = write_inputs(folder, args.readings, args.sensors, formats)
        made = time.perf_counter() - start
        print(f"# {args.readings:,} readings of {args.sensors:,} sensors (+1% unknown), {args.repeats} repeats after "
              f"a warm-up; {platform.machine()}, {os.cpu_count()} cores; inputs written in {made:.1f} s")
        record: dict = {"date": datetime.date.today().isoformat(),
                        "machine": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                        "python": platform.python_version(), "jax": jax.__version__, "numpy": np.__version__,
                        "pyarrow": pyarrow.__version__, "jaxcal": jaxcal.__version__,
                        "device": jax.devices()[0].platform, "readings": args.readings, "sensors": args.sensors,
                        "repeats": args.repeats, "formats": {}}
        # each log converted into its own format; a CSV log into Parquet as well (writing CSV is the cost)
        runs = [(kind, kind) for kind in formats] + ([("csv", "parquet")] if {"csv", "parquet"} <= set(formats) else [])
        for source, kind in runs:
            name = source if source == kind else f"{source} log, {kind} out"
            log, out = paths[source], folder / f"converted.{kind}"
            size = log.stat().st_size
            argv = ["predict", "--cal", str(paths["fits"]), "--data", str(log), "--out", str(out)]
            # each run writes a new file, as a first run does (replacing the last run's would time the
            # system's freeing of its pages too: 0.2 to 0.4 s for this size)
            read_all, total_all = _paired(lambda log=log: read_log(log), lambda argv=argv: _predict(argv),
                                          args.repeats, before=lambda out=out: out.unlink(missing_ok=True))
            read, total = statistics.median(read_all), statistics.median(total_all)
            ratios = [r / t for r, t in zip(read_all, total_all, strict=True)]
            statuses = _check(out, log)
            phases = _phases(paths["fits"], log, folder / f"phases.{kind}")
            print(f"{name:8s} log {size / 1e6:7.1f} MB  read {read:6.2f} s  total {total:6.2f} s  "
                  f"read/total {statistics.median(ratios):.2f} (runs {min(ratios):.2f}-{max(ratios):.2f})  "
                  f"({args.readings / total / 1e6:.2f} M readings/s)")
            print("         phases: " + ", ".join(f"{name} {t:.2f} s" for name, t in phases.items()))
            print("         statuses: " + ", ".join(f"{c:,} {name}" for name, c in statuses.items()))
            record["formats"][name] = {"log_bytes": size, "output_bytes": out.stat().st_size, "read_s": read,
                                       "total_s": total, "read_runs_s": read_all, "total_runs_s": total_all,
                                       "ratio_read_to_total": statistics.median(ratios), "ratio_runs": ratios,
                                       "phases_s": phases,
                                       "statuses": statuses}
    if not args.no_record:
        RESULTS.parent.mkdir(exist_ok=True)
        RESULTS.write_text(json.dumps(record, indent=2) + "\n")
        print(f"# recorded in {RESULTS}")


if __name__ == "__main__":
    sys.exit(main())
