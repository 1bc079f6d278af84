"""A messy logger table end to end from the command line, against the same fleet as a clean table.

Run: ``python benchmarks/bench_workflow.py [--rows 1100000] [--sensors 100000] [--unfittable 50] [--repeats 3]``.

Both tables hold the same readings in the same shuffled order (``bench_tables.write_tables``): the clean
one as ``sensor,t_u,t_c`` with commas; the messy one with its own column names mapped by ``--columns``, an
extra text column, semicolons and 0.1% of the mapped cells empty. In both, the first ``--unfittable``
sensors have every reading at one ``t_u`` (no fit: status undetermined). Each is run as a user runs it,
``jaxcal fleet FILE --out results.parquet --quiet`` in a process of its own (reading, the least-squares fit
with standard errors on every core, writing), once to warm up (the persistent compilation cache then holds
its programs, as it does for a user's second run), then in turns, ``repeats`` times each; the medians and
their ratio are printed and recorded in ``benchmarks/results/workflow.json``. Every output is checked to hold
one row per input sensor, the unfittable ones with their reason.

``--baseline SRC`` also times the clean table without its unfittable sensors (an earlier jaxcal refused a
table with one) through the jaxcal whose ``src`` folder is ``SRC`` (a ``git worktree`` of an earlier commit):
the issue's "the same clean table today".
"""

from __future__ import annotations

import argparse
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

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_tables import write_tables

RESULTS = Path(__file__).resolve().parent / "results" / "workflow.json"


def _flatten(path: Path, separator: str, sensor_column: str, t_u_column: str, sensors: int) -> None:
    """Give the first ``sensors`` sensors every reading at one ``t_u`` (rewriting the table in place)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pa_csv

    options = pa_csv.ConvertOptions(column_types={sensor_column: pa.string(), t_u_column: pa.string()},
                                    strings_can_be_null=False)
    table = pa_csv.read_csv(path, parse_options=pa_csv.ParseOptions(delimiter=separator), convert_options=options)
    ids = pc.cast(table[sensor_column], pa.string())
    flat = pc.is_in(ids, value_set=pa.array([str(i) for i in range(sensors)]))
    present = pc.not_equal(table[t_u_column], "")  # an empty (missing) cell stays missing
    t_u = pc.if_else(pc.and_(flat, present), "50.0", table[t_u_column])
    table = table.set_column(table.schema.get_field_index(t_u_column), t_u_column, t_u)
    pa_csv.write_csv(table, path, pa_csv.WriteOptions(quoting_style="none", delimiter=separator))


def _run(argv: list[str], src: str | None = None) -> float:
    env = None if src is None else {**os.environ, "PYTHONPATH": src}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "jaxcal", *argv], capture_output=True, text=True, env=env)
    took = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"jaxcal {' '.join(argv)} failed: {done.stderr.strip()}")
    return took


def _commit(src: str) -> str:
    """The commit of the worktree holding ``src``."""
    done = subprocess.run(["git", "-C", src, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return done.stdout.strip() or src


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_100_000)
    parser.add_argument("--sensors", type=int, default=100_000)
    parser.add_argument("--unfittable", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--baseline", metavar="SRC", help="an earlier jaxcal's src folder to time the clean table with")
    parser.add_argument("--record", action="store_true", help=f"write the figures into {RESULTS.name}")
    args = parser.parse_args()

    import pyarrow.parquet as pq

    with tempfile.TemporaryDirectory(prefix="jaxcal-workflow-") as folder:
        clean, messy = write_tables(Path(folder), args.rows, args.sensors, 0.001)
        fittable = Path(folder) / "fittable.csv"
        shutil.copyfile(clean, fittable)
        _flatten(clean, ",", "sensor", "t_u", args.unfittable)
        _flatten(messy, ";", "Sensor ID", "raw", args.unfittable)
        runs = {"clean": [str(clean), "--out", str(Path(folder) / "clean.parquet"), "--quiet"],
                "messy": [str(messy), "--columns", "sensor=sensor id,t_u=raw,t_c=celsius",
                          "--out", str(Path(folder) / "messy.parquet"), "--quiet"]}
        sources = {"clean": None, "messy": None}
        if args.baseline:
            runs["baseline"] = [str(fittable), "--out", str(Path(folder) / "baseline.parquet"), "--quiet"]
            sources["baseline"] = args.baseline
        for name, argv in runs.items():
            _run(["fleet", *argv], sources[name])  # warm-up: compiles into the persistent cache
        times: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(args.repeats):
            for name, argv in runs.items():
                times[name].append(_run(["fleet", *argv], sources[name]))
        checks = {}
        for name in ("clean", "messy"):
            out = pq.read_table(Path(folder) / f"{name}.parquet").to_pydict()
            status = np.asarray(out["status"])
            checks[name] = {"rows": len(out["sensor"]), "undetermined": int(np.sum(status == "undetermined")),
                            "dropped": int(np.sum(out["dropped"]))}
            if checks[name]["rows"] != args.sensors:
                raise SystemExit(f"{name}: {checks[name]['rows']} rows for {args.sensors} sensors")
    medians = {name: statistics.median(values) for name, values in times.items()}
    ratio = medians["messy"] / medians["clean"]
    baseline = medians["messy"] / medians["baseline"] if "baseline" in medians else None
    print(f"# {args.rows} rows, {args.sensors} sensors ({args.unfittable} unfittable); {platform.machine()}, "
          f"{os.cpu_count()} cores")
    for name in runs:
        print(f"jaxcal fleet {name}: median {medians[name]:.2f} s of {args.repeats} "
              f"(min {min(times[name]):.2f} s); {checks.get(name, 'the earlier jaxcal')}")
    print(f"ratio messy / clean: {ratio:.3f} (goal: at most 1.3)")
    if baseline is not None:
        print(f"ratio messy / the clean table through {args.baseline}: {baseline:.3f}")
    if args.record:
        import jax

        record = {"date": datetime.date.today().isoformat(), "machine": platform.processor() or platform.machine(),
                  "cores": os.cpu_count(), "python": platform.python_version(), "jax": jax.__version__,
                  "rows": args.rows, "sensors": args.sensors, "unfittable": args.unfittable,
                  "repeats": args.repeats, "median_s": medians, "ratio": ratio, "checks": checks,
                  "ratio_to_baseline": baseline, "baseline": args.baseline and _commit(args.baseline)}
        RESULTS.write_text(json.dumps(record, indent=2) + "\n")
        print(f"recorded in {RESULTS}")


if __name__ == "__main__":
    main()
