"""Tables in and out: CSV, Parquet and NumPy tables hold the same fleet, errors name the line
(or row), column and value, written tables read back the same values, and a process reads only
the Parquet row groups that hold its share. Messy tables in: tests/test_tables.py."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from jaxcal import io
from jaxcal.io import read_fleet, read_fleet_share, read_readings, read_readings_share, read_t_u, write_table


def _same(a: io.FleetTable, b: io.FleetTable) -> None:
    for x, y in zip(a, b, strict=True):
        if isinstance(x, np.ndarray):
            assert x.dtype == y.dtype or x.dtype.kind == y.dtype.kind == "U"  # text: any width
            np.testing.assert_array_equal(x, y)
        else:
            assert x == y


# -- CSV: what pyarrow reads, the lines it refuses (tests/test_tables.py compares with the csv module) ----


def test_readings_and_t_u_take_the_same_paths(tmp_path):
    path = tmp_path / "readings.csv"
    path.write_text("t_c,t_u\n0.5,35.7\n14,55.9\n15,58.2\n")
    t_u, t_c = read_readings(path)
    np.testing.assert_array_equal(t_u, np.float32([35.7, 55.9, 58.2]))
    np.testing.assert_array_equal(t_c, np.float32([0.5, 14, 15]))
    np.testing.assert_array_equal(read_t_u(path), [35.7, 55.9, 58.2])
    path.write_text("t_u,t_c\n1, 2\n3,4\n")  # a padded number: both readers take it
    np.testing.assert_array_equal(read_readings(path)[1], np.float32([2, 4]))


def test_a_bad_value_deep_in_a_big_file_is_named_by_line_column_and_value(tmp_path):
    rows = 200_000
    ids = np.repeat(np.arange(rows // 10), 10)
    path = tmp_path / "big.csv"
    lines = [f"{s},{20 + (i % 50)},{i % 7}\n" for i, s in enumerate(ids)]
    lines[180_000 - 2] = f"{ids[180_000 - 2]},55.9,14,0\n"
    lines[190_000 - 2] = f"{ids[190_000 - 2]},55.9,1e4x\n"
    path.write_text("sensor,t_u,t_c\n" + "".join(lines))
    with pytest.raises(ValueError, match=r"big.csv: line 180000: expected 3 values, got 4$"):
        read_fleet(path)
    lines[180_000 - 2] = f"{ids[180_000 - 2]},55.9,14\n"
    path.write_text("sensor,t_u,t_c\n" + "".join(lines))
    with pytest.raises(ValueError, match=r"big.csv: line 190000: t_c is not a number: '1e4x'$"):
        read_fleet(path)


# -- Parquet and NumPy tables ------------------------------------------------------------------------


def _columns(sensors: int = 7, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    ids = np.repeat(np.arange(sensors), 5)[rng.permutation(5 * sensors)]
    t_u = rng.uniform(20, 80, len(ids)).round(3)
    return {"sensor": ids, "t_u": t_u, "t_c": (0.54 * t_u - 17).round(3)}


@pytest.mark.parametrize("ids", ["int", "text"])
def test_csv_parquet_and_npz_hold_the_same_fleet(tmp_path, ids):
    columns = _columns()
    if ids == "text":
        columns["sensor"] = np.char.add("s", columns["sensor"].astype(str))
    tables = []
    for suffix in (".csv", ".parquet", ".npz"):
        write_table(tmp_path / f"fleet{suffix}", columns)
        tables.append(read_fleet(tmp_path / f"fleet{suffix}"))
    for table in tables[1:]:
        _same(table, tables[0])


def test_parquet_readings_and_t_u(tmp_path):
    path = tmp_path / "readings.parquet"
    pq.write_table(pa.table({"t_u": [35.7, 55.9, 58.2], "t_c": pa.array([0.5, 14, 15], pa.float32())}), path)
    t_u, t_c = read_readings(path)
    np.testing.assert_array_equal(t_u, np.float32([35.7, 55.9, 58.2]))
    np.testing.assert_array_equal(t_c, np.float32([0.5, 14, 15]))
    np.testing.assert_array_equal(read_t_u(path), [35.7, 55.9, 58.2])


@pytest.mark.parametrize(
    ("table", "reader", "message"),
    [
        ({"t_u": [1.0, 2.0]}, read_readings, "missing columns t_c; expected columns t_u and t_c"),
        ({"t_u": [1.0, None], "t_c": [1.0, 2.0]}, read_readings, "needs at least 2 readings, got 1 \\(1 dropped"),
        ({"t_u": ["1", "2"], "t_c": [1.0, 2.0]}, read_readings, "t_u and t_c must be real numbers"),
        ({"t_u": [1.0, float("nan")], "t_c": [1.0, 2.0]}, read_readings, "reading 1: not finite"),
        ({"t_u": [1.0], "t_c": [1.0]}, read_readings, "needs at least 2 readings, got 1"),
        ({"sensor": [1.5, 1.5], "t_u": [1.0, 2.0], "t_c": [1.0, 2.0]}, read_fleet, "sensor ids must be text or"),
        ({"sensor": ["a", "a"], "t_u": [1.0, float("inf")], "t_c": [1.0, 2.0]}, read_fleet,
         "row 2: sensor 'a': t_u is not finite: inf"),
    ],
)
def test_parquet_bad_input_is_one_line(tmp_path, table, reader, message):
    path = tmp_path / "bad.parquet"
    pq.write_table(pa.table(table), path)
    with pytest.raises(ValueError, match=message) as raised:
        reader(path)
    assert str(raised.value).startswith(f"{path}: ")
    assert "\n" not in str(raised.value)


def test_a_file_that_is_not_parquet_is_one_line(tmp_path):
    path = tmp_path / "x.parquet"
    path.write_text("sensor,t_u,t_c\n")
    with pytest.raises(ValueError, match="not a readable Parquet file"):
        read_fleet(path)
    with pytest.raises(ValueError, match="no such file"):
        read_readings(tmp_path / "missing.parquet")


@pytest.mark.parametrize("ids", [["a", "b,c", 'say "hi"', "d", "e\nf", "g"],  # cells that need quotes
                                 ["a", "b", "c", "d", "é", "f"]])  # none: pyarrow's writer
def test_written_csv_reads_back_the_same_values(tmp_path, ids):
    values = np.array([5.367084980010986, 1e-05, -0.0, 3.21442e17, 2.0, np.inf], np.float64)
    ids = np.array(ids)
    write_table(tmp_path / "out.csv", {"sensor": ids, "x": values, "f32": values.astype(np.float32),
                                      "n": np.arange(6), "ok": values > 0})
    import csv

    with open(tmp_path / "out.csv", newline="") as file:
        rows = list(csv.reader(file))
    assert rows[0] == ["sensor", "x", "f32", "n", "ok"]
    assert [r[0] for r in rows[1:]] == ids.tolist()
    np.testing.assert_array_equal([float(r[1]) for r in rows[1:]], values)
    np.testing.assert_array_equal(np.float32([float(r[2]) for r in rows[1:]]), values.astype(np.float32))
    assert [r[3] for r in rows[1:]] == [str(i) for i in range(6)]
    assert [r[4] for r in rows[1:]] == ["true", "true", "false", "true", "true", "true"]


def test_a_large_csv_written_in_parts_is_the_same_file(tmp_path, monkeypatch):
    import csv
    import os

    import jaxcal.io

    rng = np.random.default_rng(3)
    n = 3 * jaxcal.io._CSV_PART_ROWS + 7  # three parts of unequal length
    columns = {"sensor": np.arange(n), "w": rng.normal(size=n).astype(np.float32), "lsq": rng.normal(size=n),
               "diverged": rng.random(n) < 0.5}
    monkeypatch.setattr(os, "cpu_count", lambda: 3)
    write_table(tmp_path / "parts.csv", columns)
    monkeypatch.setattr(jaxcal.io, "_CSV_PART_ROWS", n + 1)  # one part
    write_table(tmp_path / "one.csv", columns)
    assert (tmp_path / "parts.csv").read_bytes() == (tmp_path / "one.csv").read_bytes()
    with open(tmp_path / "parts.csv", newline="") as file:
        rows = list(csv.reader(file))
    assert len(rows) == n + 1
    np.testing.assert_array_equal([float(r[2]) for r in rows[1:]], columns["lsq"])


def test_written_parquet_and_npz_hold_the_columns(tmp_path):
    columns = {"sensor": np.array(["a", "b"]), "w": np.float32([1.5, 2.5]), "diverged": np.array([False, True])}
    write_table(tmp_path / "out.parquet", columns)
    back = pq.read_table(tmp_path / "out.parquet")
    assert back.column_names == ["sensor", "w", "diverged"]
    assert back["w"].type == pa.float32()
    assert back["sensor"].to_pylist() == ["a", "b"]
    write_table(tmp_path / "out.npz", columns)
    with np.load(tmp_path / "out.npz", allow_pickle=False) as npz:
        np.testing.assert_array_equal(npz["w"], columns["w"])
        assert npz["sensor"].tolist() == ["a", "b"]


# -- a process's share: only the row groups that hold it ------------------------------------------


def _groups_read(monkeypatch) -> list[list[int]]:
    seen: list[list[int]] = []
    original = pq.ParquetFile.read_row_groups

    def read_row_groups(self, row_groups, *args, **kwargs):
        seen.append(list(row_groups))
        return original(self, row_groups, *args, **kwargs)

    monkeypatch.setattr(pq.ParquetFile, "read_row_groups", read_row_groups)
    return seen


def test_a_process_reads_only_the_row_groups_of_its_readings(tmp_path, monkeypatch):
    from jaxcal.distributed import Cluster, share

    t_u = np.arange(1000.0)
    t_u[3] = np.nan  # in process 0's share only
    path = tmp_path / "big.parquet"
    pq.write_table(pa.table({"t_u": t_u, "t_c": t_u}), path, row_group_size=100)
    seen = _groups_read(monkeypatch)
    got_u, _, n = read_readings_share(path, np.float64, lambda count: share(count, Cluster(1, 2)))
    assert n == 1000
    np.testing.assert_array_equal(got_u, t_u[500:])
    assert seen == [[5, 6, 7, 8, 9]]
    with pytest.raises(ValueError, match="reading 3: not finite"):
        read_readings_share(path, np.float64, lambda count: share(count, Cluster(0, 2)))


def test_a_process_reads_only_the_row_groups_of_its_sensors(tmp_path, monkeypatch):
    from jaxcal.distributed import Cluster, share

    sensors = np.repeat(np.arange(40), 5)  # grouped by sensor: 2 sensors per row group of 10
    t_u = np.arange(200.0)
    path = tmp_path / "fleet.parquet"
    pq.write_table(pa.table({"sensor": sensors, "t_u": t_u, "t_c": t_u}), path, row_group_size=10)
    whole = read_fleet(path)
    seen = _groups_read(monkeypatch)
    table, ids = read_fleet_share(path, np.float32, lambda n: share(n, Cluster(1, 4)))
    assert ids.tolist() == [str(i) for i in range(40)]  # an integer column's ids: their decimal text
    assert table.sensors.tolist() == [str(i) for i in range(10, 20)]
    np.testing.assert_array_equal(table.t_u, whole.t_u[10:20])
    assert seen == [list(range(5, 10))]  # the sensor column is read whole; of the readings, 5 of 20 groups


def test_predict_reads_t_u_from_every_table_format(tmp_path):
    t_u = np.array([35.7, 55.9, 58.2])
    write_table(tmp_path / "r.csv", {"t_u": t_u, "other": t_u})
    write_table(tmp_path / "r.parquet", {"t_u": t_u})
    np.savez(tmp_path / "r.npz", t_u=t_u)
    np.save(tmp_path / "r.npy", t_u)
    for suffix in (".csv", ".parquet", ".npz", ".npy"):
        np.testing.assert_array_equal(read_t_u(tmp_path / f"r{suffix}"), t_u)
    np.save(tmp_path / "bad.npy", np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match=r"bad\.npy: row 2: t_u is not finite"):
        read_t_u(tmp_path / "bad.npy")
    np.save(tmp_path / "flat.npy", np.ones((2, 2)))
    with pytest.raises(ValueError, match="t_u must be a 1-D array"):
        read_t_u(tmp_path / "flat.npy")


def test_the_readers_agree_on_what_pyarrow_alone_would_miss(tmp_path):
    # a quoted id holding a line break across pyarrow's blocks; bytes that are not UTF-8 in a
    # column the fit ignores; an empty id found in file order; small integer ids
    rows = "".join(f'"s{i % 50}\nz",{20 + i % 9},{i % 7}\n' for i in range(300_000))
    path = tmp_path / "quoted.csv"
    path.write_text("sensor,t_u,t_c\n" + rows)
    fleet = read_fleet(path)
    assert fleet.sensors.tolist() == sorted(f"s{k}\nz" for k in range(50))
    for row, k in enumerate(int(s[1:].split("\n")[0]) for s in fleet.sensors):
        i = np.arange(k, 300_000, 50)  # this sensor's rows, in file order
        np.testing.assert_array_equal(fleet.t_u[row], 20 + i % 9)
        np.testing.assert_array_equal(fleet.t_c[row], i % 7)
    path = tmp_path / "latin.csv"
    path.write_bytes(b"t_u,note\n1.0,caf\xe9\n2.0,x\n")
    with pytest.raises(ValueError, match="is not a UTF-8 text CSV file"):
        read_t_u(path)
    np.savez(tmp_path / "ids.npz", sensor=np.array(["a", "a", " ", "", "b", "b"]), t_u=np.arange(6.0),
             t_c=np.arange(6.0))
    ids = read_fleet(tmp_path / "ids.npz")  # rows without an id are dropped, and counted
    assert ids.sensors.tolist() == ["a", "b"]
    assert ids.no_sensor == 2
    np.testing.assert_array_equal(ids.t_u, [[0, 1], [4, 5]])
    np.savez(tmp_path / "small.npz", sensor=np.repeat(np.int8([-100, 100, 7]), 2), t_u=np.arange(6.0),
             t_c=np.arange(6.0))
    assert read_fleet(tmp_path / "small.npz").sensors.tolist() == ["-100", "7", "100"]


# -- a log read a part at a time, a table written a part at a time ----------------------------------------

#: A log's rows (sensor, t_u): a missing reading (None), a row without an id, ids that recur across parts.
LOG_ROWS = [("b", 35.7), ("a", None), (None, 12.0), ("b", 55.9), ("c", 1.0), ("a", 2.0), ("d", 3.0)]


def _log_file(folder, kind: str, rows=LOG_ROWS):
    sensors = [s for s, _ in rows]
    t_u = [u for _, u in rows]
    if kind == "csv":
        path = folder / "log.csv"
        path.write_text("sensor,t_u\n" + "".join(f"{s or ''},{'' if u is None else u}\n" for s, u in rows))
    elif kind == "npz":
        path = folder / "log.npz"
        np.savez(path, sensor=np.array([s or "" for s in sensors]),
                 t_u=np.array([np.nan if u is None else u for u in t_u]))
    else:  # Parquet in row groups that do not line up with the parts, or in one group; ids as a dictionary
        path = folder / f"{kind}.parquet"
        ids = pa.array(sensors).dictionary_encode() if kind == "dictionary" else pa.array(sensors)
        pq.write_table(pa.table({"sensor": ids, "t_u": pa.array(t_u, pa.float64())}), path,
                       row_group_size=len(rows) if kind == "one-group" else 2)
    return path


@pytest.mark.parametrize("kind", ["csv", "groups", "one-group", "dictionary", "npz"])
def test_a_log_read_in_parts_is_the_whole_log_part_by_part(tmp_path, kind):
    path = _log_file(tmp_path, kind)
    missing = ["", "NA", "NaN"] if kind == "npz" else None  # an .npz file's missing reading is NaN
    whole = io.read_log(path, missing=missing)
    log = io.read_log_parts(path, rows=3, missing=missing)
    assert log.readings == len(LOG_ROWS)
    parts = list(log.parts)
    assert [len(part.t_u) for part in parts] == [3, 3, 1]

    def named(table):  # each row's id as text, "" for none
        return np.append(table.sensors, "")[table.index].tolist()

    assert [s for part in parts for s in named(part)] == named(whole) == [s or "" for s, _ in LOG_ROWS]
    for part in parts:  # each part's ids are its own rows', sorted
        assert part.sensors.tolist() == sorted({s for s in named(part) if s})
    np.testing.assert_array_equal(np.concatenate([part.t_u for part in parts]), whole.t_u)


@pytest.mark.parametrize(("kind", "where"), [("csv", "line 7"), ("groups", "row 6"), ("npz", "row 6")])
def test_a_value_refused_in_a_later_part_is_named_as_the_whole_log_names_it(tmp_path, kind, where):
    rows = [*LOG_ROWS[:5], ("a", float("inf")), LOG_ROWS[6]]
    path = _log_file(tmp_path, kind, rows)
    missing = ["", "NA", "NaN"] if kind == "npz" else None  # an .npz file's missing reading is NaN
    with pytest.raises(ValueError, match="is not finite") as whole:
        io.read_log(path, missing=missing)
    assert f"{where}: sensor 'a': t_u is not finite: inf" in str(whole.value)
    parts = io.read_log_parts(path, rows=2, missing=missing).parts
    assert [len(next(parts).t_u) for _ in range(2)] == [2, 2]  # the parts before it are read
    with pytest.raises(ValueError, match="is not finite") as part:
        next(parts)
    assert str(part.value) == str(whole.value)


@pytest.mark.parametrize("rows", [0, -1, 2.5, True])
def test_a_part_of_no_rows_or_not_an_integer_is_refused(tmp_path, rows):
    with pytest.raises((ValueError, TypeError), match="rows: must be a positive integer"):
        io.read_log_parts(_log_file(tmp_path, "csv"), rows=rows)


def _table_parts() -> list[dict]:
    """A table of 7 rows in parts of 3, 0 and 4 rows: a coded column of each part's own values, floats that
    are not finite, integers, booleans."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=7)
    x[[1, 4]] = [np.nan, np.inf]
    codes = [np.array([0, 1, 0]), np.array([], int), np.array([1, 1, 0, 2])]
    values = [np.array(["ok", "no calibration"]), np.array(["ok"]), np.array(["b", "a", "ok, quoted"])]
    bounds = [0, 3, 3, 7]
    return [{"sensor": io.Coded(v, c), "x": x[lo:hi], "n": np.arange(lo, hi), "ok": x[lo:hi] > 0}
            for v, c, lo, hi in zip(values, codes, bounds[:-1], bounds[1:], strict=True)]


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".json", ".npz"])
def test_a_table_written_in_parts_is_the_table_written_whole(tmp_path, suffix):
    parts = _table_parts()
    whole = {key: (np.concatenate([part[key].decoded() for part in parts]) if key == "sensor"
                   else np.concatenate([part[key] for part in parts])) for key in parts[0]}
    io.write_table(tmp_path / f"whole{suffix}", whole)
    io.write_table_parts(tmp_path / f"parts{suffix}", iter(parts))
    if suffix == ".parquet":
        got, want = (pq.read_table(tmp_path / f"{name}.parquet") for name in ("parts", "whole"))
        assert got.schema == want.schema
        for key in whole:  # NaN as NaN
            np.testing.assert_array_equal(got[key].to_numpy(), want[key].to_numpy())
        assert pq.ParquetFile(tmp_path / "parts.parquet").num_row_groups == 3  # each part as it came
    elif suffix == ".npz":
        with np.load(tmp_path / "parts.npz") as got, np.load(tmp_path / "whole.npz") as want:
            for key in whole:
                np.testing.assert_array_equal(got[key], want[key])
    else:
        assert (tmp_path / f"parts{suffix}").read_bytes() == (tmp_path / f"whole{suffix}").read_bytes()


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_part_that_fails_leaves_the_old_file_and_nothing_else(tmp_path, suffix):
    path = tmp_path / f"out{suffix}"
    path.write_bytes(b"old")

    def parts():
        yield from _table_parts()[:2]
        raise io.InvalidInput("log.csv: line 9: t_u is not finite: inf")

    with pytest.raises(ValueError, match="line 9"):
        io.write_table_parts(path, parts())
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_no_parts_or_a_part_of_other_columns_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"out\.csv: no parts to write"):
        io.write_table_parts(tmp_path / "out.csv", [])
    first, second, _ = _table_parts()
    del second["ok"]
    with pytest.raises(ValueError, match=r"a part's columns \['sensor', 'x', 'n'\] are not the first's"):
        io.write_table_parts(tmp_path / "out.parquet", [first, second])
    second = {**first, "n": first["n"].astype(np.float64)}  # the same in every format: refused
    for suffix in (".csv", ".parquet", ".json", ".npz"):
        with pytest.raises(ValueError, match=rf"out{suffix}: a part's column 'n' holds floats, the first's integers"):
            io.write_table_parts(tmp_path / f"out{suffix}", [first, second], name="--out")
    third = {**first, "n": first["n"].astype(np.int32)}  # integers of another width are integers
    io.write_table_parts(tmp_path / "out.parquet", [first, third])
    assert pq.read_table(tmp_path / "out.parquet")["n"].to_pylist() == [*first["n"].tolist(), *third["n"].tolist()]
    assert [p.name for p in tmp_path.iterdir()] == ["out.parquet"]


def test_parquet_floats_snappy_cannot_shrink_are_written_uncompressed(tmp_path):
    """Full-precision results (converted readings, their bounds) do not compress: written as they are. Values
    that repeat, or are rounded, still are compressed."""
    rng = np.random.default_rng(2)
    columns = {"t_c": rng.normal(size=50_000), "t_u": np.round(rng.uniform(20, 90, 50_000), 1),
               "flag": np.zeros(50_000), "sensor": np.arange(50_000)}
    io.write_table(tmp_path / "out.parquet", columns)
    file = pq.ParquetFile(tmp_path / "out.parquet")
    group = file.metadata.row_group(0)
    codecs = {group.column(i).path_in_schema: group.column(i).compression for i in range(group.num_columns)}
    assert codecs == {"t_c": "UNCOMPRESSED", "t_u": "SNAPPY", "flag": "SNAPPY", "sensor": "SNAPPY"}
    back = file.read()
    for key, values in columns.items():
        np.testing.assert_array_equal(back[key].to_numpy(), values)


def test_a_corrupt_parquet_log_is_one_line_whole_or_in_parts(tmp_path):
    """pyarrow's words for a page it cannot read span lines: only their first is said."""
    path = tmp_path / "log.parquet"
    pq.write_table(pa.table({"sensor": [f"s{i % 50}" for i in range(5000)], "t_u": np.arange(5000.0)}), path,
                   row_group_size=1000)
    raw = bytearray(path.read_bytes())
    raw[8:72] = b"\xff" * 64  # the first page's header
    path.write_bytes(bytes(raw))
    for read in (lambda: io.read_log(path), lambda: list(io.read_log_parts(path, rows=1000).parts)):
        with pytest.raises(ValueError, match="not a readable Parquet file") as raised:
            read()
        assert "\n" not in str(raised.value)


def test_parquet_floats_are_judged_by_their_finite_values(tmp_path):
    """A log's output may begin with rows not converted (NaN): the values after them decide."""
    rng = np.random.default_rng(4)
    t_c = rng.normal(size=60_000)
    t_c[:30_000] = np.nan
    io.write_table(tmp_path / "out.parquet", {"t_c": t_c})
    assert pq.ParquetFile(tmp_path / "out.parquet").metadata.row_group(0).column(0).compression == "UNCOMPRESSED"
