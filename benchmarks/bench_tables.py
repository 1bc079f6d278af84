"""Messy tables in: reading a fleet CSV with mapped column names, an extra text column,
semicolons and empty cells, against the same fleet as a clean comma table.

Run: ``python benchmarks/bench_tables.py [--rows 1100000] [--sensors 100000] [--repeats 5]``.
Both tables are written to a temporary folder, each read once to warm up (pyarrow's import, the
page cache), then read in turns, ``repeats`` times each; the medians and their ratio are printed.
The readings are the same numbers in both files (the messy one without its 0.1% empty cells),
the rows in the same shuffled order.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def write_tables(folder: Path, rows: int, sensors: int, empty: float, seed: int = 0) -> tuple[Path, Path]:
    """The clean table (``sensor,t_u,t_c``) and the messy one (``Sensor ID;raw;celsius;site``,
    a fraction ``empty`` of the mapped cells empty) of the same readings."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pa_csv

    rng = np.random.default_rng(seed)
    sensor = rng.permutation(np.arange(rows) % sensors)
    t_u = rng.uniform(20.0, 80.0, rows).round(3)
    t_c = (0.54 * t_u - 17.0 + rng.normal(0.0, 0.3, rows)).round(3)
    clean = folder / "clean.csv"
    options = pa_csv.WriteOptions(quoting_style="none")
    pa_csv.write_csv(pa.table({"sensor": sensor, "t_u": t_u, "t_c": t_c}), clean, options)
    site = np.char.add("plant-", (sensor % 17).astype(str))
    cells = {name: pc.cast(pa.array(values), pa.string())
             for name, values in (("Sensor ID", sensor), ("raw", t_u), ("celsius", t_c))}
    for name in cells:  # 0.1% of each mapped column's cells empty
        blank = rng.random(rows) < empty
        cells[name] = pc.if_else(pa.array(blank), "", cells[name])
    messy = folder / "messy.csv"
    pa_csv.write_csv(pa.table({**cells, "site": site}), messy,
                     pa_csv.WriteOptions(quoting_style="none", delimiter=";"))
    return clean, messy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_100_000)
    parser.add_argument("--sensors", type=int, default=100_000)
    parser.add_argument("--empty", type=float, default=0.001, help="fraction of mapped cells left empty")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    from jaxcal.io import read_fleet

    columns = {"sensor": "sensor id", "t_u": "raw", "t_c": "celsius"}  # in another case than the header's
    with tempfile.TemporaryDirectory(prefix="jaxcal-tables-") as folder:
        clean, messy = write_tables(Path(folder), args.rows, args.sensors, args.empty)
        reads = {"clean": lambda: read_fleet(clean), "messy": lambda: read_fleet(messy, columns=columns),
                 # the floor: pyarrow's parse alone of the columns read (the messy file is larger)
                 "clean, pyarrow alone": lambda: _parse(clean, ",", ["sensor", "t_u", "t_c"]),
                 "messy, pyarrow alone": lambda: _parse(messy, ";", ["Sensor ID", "raw", "celsius"])}
        first = {name: read() for name, read in reads.items()}  # warm-up
        times: dict[str, list[float]] = {name: [] for name in reads}
        for _ in range(args.repeats):
            for name, read in reads.items():  # in turns: both see the same state of the machine
                start = time.perf_counter()
                read()
                times[name].append(time.perf_counter() - start)
        sizes = {name: os.path.getsize(path) / 1e6 for name, path in (("clean", clean), ("messy", messy))}
    medians = {name: statistics.median(values) for name, values in times.items()}
    dropped = int(first["messy"].dropped.sum())
    print(f"# {args.rows} rows, {args.sensors} sensors; {platform.machine()}, {os.cpu_count()} cores; "
          f"clean {sizes['clean']:.1f} MB, messy {sizes['messy']:.1f} MB")
    for name in reads:
        print(f"read {name:21s} median {medians[name]:.3f} s of {args.repeats} (min {min(times[name]):.3f} s)")
    print(f"messy: {dropped} readings dropped for an empty cell, {first['messy'].no_sensor} rows without a sensor")
    print(f"ratio messy / clean: read_fleet {medians['messy'] / medians['clean']:.3f}, pyarrow alone "
          f"{medians['messy, pyarrow alone'] / medians['clean, pyarrow alone']:.3f}")


def _parse(path: Path, separator: str, names: list[str]) -> object:
    """pyarrow's parse of the columns ``names`` (text, number, number), as read_fleet parses them."""
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    types = dict(zip(names, [pa.string(), pa.float64(), pa.float64()], strict=True))
    return pa_csv.read_csv(path, parse_options=pa_csv.ParseOptions(delimiter=separator, newlines_in_values=True),
                           convert_options=pa_csv.ConvertOptions(column_types=types, include_columns=names,
                                                                 null_values=["", "NA"], strings_can_be_null=True))


if __name__ == "__main__":
    main()
