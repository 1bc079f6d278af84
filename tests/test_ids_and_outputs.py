"""Sensor ids are text in and out, whatever the table format; every output format of ``fleet
--out`` holds the same columns and values; an unknown output suffix is refused before any work."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from jaxcal import io
from jaxcal.cli import main
from jaxcal.io import read_fleet, write_table

#: Ids that integer parsing would merge ('1', '01'; '007' read as 7) or case folding would ('S1', 's1').
IDS = ["1", "01", "007", "S1", "s1"]


def _long(ids: list[str], per_sensor: int = 3) -> dict[str, np.ndarray]:
    """A long table whose readings say whose they are: sensor k's t_u are k, k + 0.25, ..."""
    k = np.repeat(np.arange(len(ids)), per_sensor)
    t_u = k + 0.25 * np.tile(np.arange(per_sensor), len(ids))
    return {"sensor": np.array(ids)[k], "t_u": t_u, "t_c": 2 * t_u}


def _write(path: Path, columns: dict[str, np.ndarray]) -> Path:
    if path.suffix == ".csv":
        with open(path, "w", newline="") as file:
            writer = csv.writer(file, lineterminator="\n")
            writer.writerow(list(columns))
            writer.writerows(zip(*(c.tolist() for c in columns.values()), strict=True))
    elif path.suffix == ".parquet":
        pq.write_table(pa.table(columns), path)
    else:
        np.savez(path, **columns)
    return path


def _check_grouped(table: io.FleetTable, ids: list[str], per_sensor: int = 3) -> None:
    """Every id of ``ids`` a sensor of its own, with exactly its own readings (see :func:`_long`)."""
    got = table.sensors.tolist()
    assert sorted(got) == sorted(ids)
    assert all(type(s) is str for s in got)
    for row, sensor in enumerate(got):
        k = ids.index(sensor)
        np.testing.assert_array_equal(table.counts[row], per_sensor)
        np.testing.assert_array_equal(table.t_u[row], k + 0.25 * np.arange(per_sensor))


# -- ids are text -------------------------------------------------------------------------------------


@pytest.mark.parametrize("ids", [IDS, ["1", "01", "007"], ["S1", "s1"]])
@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".npz"])
def test_ids_that_differ_as_text_are_different_sensors(tmp_path, ids, suffix):
    path = _write(tmp_path / f"fleet{suffix}", _long(ids))
    _check_grouped(read_fleet(path), ids)


def test_npz_ids_as_bytes_are_text(tmp_path):
    columns = _long(IDS)
    columns["sensor"] = np.char.encode(columns["sensor"], "utf-8")
    _check_grouped(read_fleet(_write(tmp_path / "fleet.npz", columns)), IDS)


@pytest.mark.parametrize("dtype", [np.int8, np.int64, np.uint64])
@pytest.mark.parametrize("suffix", [".parquet", ".npz"])
def test_integer_ids_are_their_decimal_text(tmp_path, suffix, dtype):
    numbers = [100, 7, 0, 12] if dtype == np.uint64 else [100, -5, 7, 0, 12]
    columns = _long([str(n) for n in numbers])
    columns["sensor"] = np.repeat(np.array(numbers, dtype), 3)
    table = read_fleet(_write(tmp_path / f"fleet{suffix}", columns))
    _check_grouped(table, [str(n) for n in numbers])
    # the same ids as the same numbers written as text in a CSV file: the same sensors, in the same order
    csv_ids = read_fleet(_write(tmp_path / "fleet.csv", _long([str(n) for n in numbers]))).sensors
    assert table.sensors.tolist() == csv_ids.tolist() == [str(n) for n in sorted(numbers)]


@pytest.mark.parametrize(
    ("ids", "plain"),
    [(["10", "9", "-3", "0"], True),  # integers written plainly: sorted as numbers
     (["10", "9", "09"], False), (["10", "9", "-0"], False), (["10", "9", "+5"], False),
     (["10", "9", "12345678901234567890"], False)],  # too large for int64: text
)
def test_the_fast_path_groups_as_numbers_only_ids_written_plainly(tmp_path, ids, plain):
    path = _write(tmp_path / "fleet.csv", _long(ids))
    fast = read_fleet(path)
    _check_grouped(fast, ids)
    assert fast.sensors.tolist() == (sorted(ids, key=int) if plain else sorted(ids))


# -- a header with an extra column: the column is ignored ----------------------------------------


@pytest.mark.parametrize("header", ["sensor,t_u,t_c,note", "note,sensor,t_u,t_c", "t_c,sensor,extra,t_u"])
def test_an_extra_column_is_ignored(tmp_path, header):
    names = header.split(",")
    path = tmp_path / "fleet.csv"
    rows = [{"sensor": s, "t_u": u, "t_c": 2 * u, "note": "x", "extra": "1"} for s in ("a", "b") for u in (1, 2, 3)]
    path.write_text(header + "\n" + "".join(",".join(str(row[name]) for name in names) + "\n" for row in rows))
    table = read_fleet(path)
    assert table.sensors.tolist() == ["a", "b"]
    np.testing.assert_array_equal(table.t_u, [[1, 2, 3], [1, 2, 3]])
    np.testing.assert_array_equal(table.t_c, [[2, 4, 6], [2, 4, 6]])


# -- every column of every output format ---------------------------------------------------------

#: Sensors whose scaled readings (x1000) make plain gradient descent at the default learning rate
#: diverge: the loss's curvature grows with t_u^2, from ~1e2 to ~1e8, far past 2 / lr = 200.
DIVERGING = ["big,1", 'big "2"', "big3"]
OUTPUTS = (".csv", ".parquet", ".npz", ".json")

_RUNS = """
import sys
from jaxcal.cli import main
data, out = sys.argv[1:3]
for suffix in {outputs!r}:
    print("status", main(["fleet", data, "--solver", "gd", "--epochs", "300", "--out", out + suffix]), flush=True)
print("status", main(["fleet", data, "--solver", "gd", "--epochs", "300", "--json"]), flush=True)
"""


def _read_output(path: Path, kinds: dict[str, str]) -> dict[str, list]:
    """The columns of a ``fleet --out`` file as lists of Python values (``kinds``: each column's
    NumPy kind, to parse the CSV's text)."""
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as archive:
            columns = {name: archive[name].tolist() for name in archive.files}
    elif path.suffix == ".parquet":
        columns = pq.read_table(path).to_pydict()
    elif path.suffix == ".json":
        rows = json.loads(path.read_text())
        columns = {name: [row[name] for row in rows] for name in rows[0]}
        assert all(list(row) == list(columns) for row in rows)
    else:
        with open(path, newline="") as file:
            header, *rows = list(csv.reader(file))
        parse = {"U": str, "f": float, "i": int, "b": {"true": True, "false": False}.__getitem__}
        columns = {name: [parse[kinds[name]](row[j]) for row in rows] for j, name in enumerate(header)}
    return columns


def _cells(values: list, json_null: bool) -> list[tuple[type, object]]:
    """Values comparable with ``==``, each with its type (``True == 1`` otherwise); a number that
    is not finite as its text (NaN is not equal to itself), or as JSON's ``None``."""
    return [(type(None), None) if json_null and isinstance(v, float) and not math.isfinite(v) else
            (str, repr(v)) if isinstance(v, float) and not math.isfinite(v) else (type(v), v) for v in values]


def test_every_output_format_holds_every_column_the_same(tmp_path):
    ids = [*IDS, "é", *DIVERGING]
    columns = _long(ids, per_sensor=11)
    big = np.isin(columns["sensor"], DIVERGING)
    columns["t_u"][big] *= 1000
    columns["t_c"][big] *= 1000
    data = _write(tmp_path / "fleet.csv", columns)
    done = subprocess.run([sys.executable, "-c", _RUNS.format(outputs=OUTPUTS), str(data), str(tmp_path / "fits")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line for line in lines if line.startswith("status")] == ["status 0"] * (len(OUTPUTS) + 1)
    # the summary line of each --out run counts every diverged sensor (status nonfinite)
    summaries = [line for line in lines if "sensors fitted" in line]
    assert len(summaries) == len(OUTPUTS)
    assert all(line.startswith(f"{len(ids)} sensors fitted (--solver gd): {len(ids) - len(DIVERGING)} max_steps, "
                               f"{len(DIVERGING)} nonfinite; results in ") for line in summaries)

    with np.load(tmp_path / "fits.npz", allow_pickle=False) as archive:  # each column's kind
        kinds = {name: archive[name].dtype.kind for name in archive.files}
    outputs = {suffix: _read_output(tmp_path / f"fits{suffix}", kinds) for suffix in OUTPUTS}
    reference = outputs[".csv"]
    assert list(reference) == ["sensor", "w", "b", "stderr_w", "stderr_b", "cov_w_w", "cov_w_b", "cov_b_b",
                               "residual_sd", "dof", "readings", "dropped", "rss", "r_squared", "status", "reason",
                               "steps", "model", "solver", "scale"]
    for suffix, got in outputs.items():
        assert list(got) == list(reference), suffix  # every column, in the same order
        for name in reference:
            # floats read back exactly (the shortest text that reads back to each value): no tolerance
            json_null = suffix == ".json"
            assert _cells(got[name], json_null) == _cells(reference[name], json_null), f"{suffix}: {name}"
    assert reference["sensor"] == sorted(ids)  # the ids as written, sorted as text
    assert [s for s, d in zip(reference["sensor"], reference["status"], strict=True) if d == "nonfinite"] \
        == sorted(DIVERGING)
    fits = json.loads(next(line for line in lines if line.startswith('{"sensors"')))["sensors"]
    assert [fit["sensor"] for fit in fits] == reference["sensor"]  # --json names them the same


# -- output suffixes ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["fits.xlsx", "fits", "fits.csv.gz", "fits.txt"])
def test_an_unknown_output_suffix_is_refused(tmp_path, name):
    target = tmp_path / name
    with pytest.raises(io.InvalidInput) as raised:
        write_table(target, {"sensor": np.array(["a"]), "w": np.array([1.0])}, name="out")
    message = str(raised.value)
    assert message.startswith(f"out: {name}: ")
    assert message.endswith("; jaxcal writes .csv, .json, .parquet or .npz")
    assert "\n" not in message
    assert not list(tmp_path.iterdir())  # nothing written


def test_the_cli_refuses_an_unknown_output_suffix_before_any_work(tmp_path, capsys, monkeypatch):
    import jaxcal.fleet

    path = _write(tmp_path / "fleet.csv", _long(["a", "b"]))
    monkeypatch.setattr(io, "read_fleet", lambda *a, **k: pytest.fail("read before --out was checked"))
    monkeypatch.setattr(jaxcal.fleet, "fit_fleet", lambda *a, **k: pytest.fail("fitted before --out was checked"))
    status = main(["fleet", str(path), "--out", str(tmp_path / "fits.xlsx")])
    out, err = capsys.readouterr()
    assert status == 2
    assert out == ""
    assert err == "jaxcal fleet: error: --out: fits.xlsx: unknown table format '.xlsx'; jaxcal writes .csv, .json, " \
                  ".parquet or .npz\n"
    assert not (tmp_path / "fits.xlsx").exists()


def test_json_output_is_an_array_of_rows_with_null_for_non_finite_numbers(tmp_path):
    columns = {"sensor": np.array(["007", "a"]), "w": np.float32([0.1, np.nan]), "loss": np.array([np.inf, 2.5]),
               "epochs_run": np.array([3, 4]), "diverged": np.array([False, True])}
    write_table(tmp_path / "fits.JSON", columns)  # the suffix in any case
    rows = json.loads((tmp_path / "fits.JSON").read_text())
    assert rows == [{"sensor": "007", "w": float(np.float32(0.1)), "loss": None, "epochs_run": 3, "diverged": False},
                    {"sensor": "a", "w": None, "loss": 2.5, "epochs_run": 4, "diverged": True}]
