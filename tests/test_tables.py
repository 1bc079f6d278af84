"""Messy tables in: columns named otherwise and in any case, extra columns, semicolons and tabs,
quotes, a byte-order mark, CRLF, missing values dropped and counted, sigma, and a bad cell named
by its line; read_fleet checked against an independent reading by Python's csv module."""

from __future__ import annotations

import csv
import io as text_io
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxcal._checks import InvalidInput
from jaxcal.io import MISSING, parse_columns, read_fleet, read_readings, read_t_u

MAPPED = {"sensor": "sensor_id", "t_u": "raw", "t_c": "celsius"}


def _write(path: Path, text: str, *, newline: str = "\n", bom: bool = False) -> Path:
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.replace("\n", newline).encode())
    return path


def _error(read, *args, **kwargs) -> str:
    with pytest.raises(InvalidInput) as raised:
        read(*args, **kwargs)
    message = str(raised.value)
    assert "\n" not in message
    return message


# -- the column mapping's text form -----------------------------------------------------------------


def test_parse_columns_reads_the_command_lines_form():
    assert parse_columns("sensor=sensor_id,t_u=raw,t_c=celsius") == MAPPED
    assert parse_columns(" t_u = raw , sigma=u ") == {"t_u": "raw", "sigma": "u"}


@pytest.mark.parametrize(("text", "words"), [
    ("volts=raw", "columns: unknown role 'volts'; the roles are sensor, t_u, t_c, sigma"),
    ("t_u=raw,t_u=x", "columns: role t_u is given twice"),
    ("t_u=", "columns: role t_u has an empty column name"),
    ("t_u", "columns: 't_u' is not role=name (e.g. t_u=raw)"),
])
def test_parse_columns_refuses_in_one_line(text, words):
    assert _error(parse_columns, text) == words


# -- names, separators, quotes, encodings ----------------------------------------------------------


def test_mapped_columns_in_any_case_and_an_extra_column_ignored(tmp_path):
    path = _write(tmp_path / "f.csv", "Site,SENSOR_ID,Raw,CELSIUS\nnorth,b,3,30\nsouth,a,1,10\nnorth,b,4,40\n")
    fleet = read_fleet(path, columns=MAPPED)
    assert fleet.sensors.tolist() == ["a", "b"]
    np.testing.assert_array_equal(fleet.t_u, np.float32([[1, 0], [3, 4]]))
    np.testing.assert_array_equal(fleet.t_c, np.float32([[10, 0], [30, 40]]))
    np.testing.assert_array_equal(fleet.counts, [1, 2])
    assert fleet.sigma is None
    np.testing.assert_array_equal(fleet.mask, [[True, False], [True, True]])
    # the roles' own names match in any case too; a column the table does not read may hold anything
    path = _write(tmp_path / "g.csv", "T_C,Sensor,T_U,note\n10,a,1,\"x, y\"\n20,a,2,café\n")
    assert read_fleet(path).t_c.tolist() == [[10, 20]]


def test_two_headers_equal_but_for_case_are_ambiguous(tmp_path):
    path = _write(tmp_path / "f.csv", "sensor,T_U,t_u,t_c\na,1,2,3\n")
    assert _error(read_fleet, path) == (f"{path}: line 1: 'T_U' and 't_u' both name t_u ('t_u', in any case); "
                                        "rename one, or map the role to the one meant")


@pytest.mark.parametrize("separator", [",", ";", "\t"])
@pytest.mark.parametrize("given", [False, True])
def test_the_separator_is_found_from_the_header_or_given(tmp_path, separator, given):
    rows = [["sensor", "t_u", "t_c", "site"], ["s1", "1.5", "2", "x"], ["s1", "2.5", "3", "y"]]
    path = _write(tmp_path / "f.csv", "".join(separator.join(row) + "\n" for row in rows))
    fleet = read_fleet(path, separator=separator if given else None)
    np.testing.assert_array_equal(fleet.t_u, np.float32([[1.5, 2.5]]))


def test_the_separator_that_splits_the_header_into_most_fields_wins(tmp_path):
    # split at commas the header has 2 fields and no t_u; at semicolons 4, every role among them
    path = _write(tmp_path / "f.csv", "site,room;sensor;t_u;t_c\nnorth,3;a;1;2\nsouth,4;a;3;4\n")
    np.testing.assert_array_equal(read_fleet(path).t_u, np.float32([[1, 3]]))
    # given, it is the only one tried
    assert _error(read_fleet, path, separator=",") == (
        f"{path}: line 1: expected the header 'sensor,t_u,t_c', got 'site,room;sensor;t_u;t_c'")


def test_quoted_fields_bom_and_crlf(tmp_path):
    text = 'sensor;t_u;t_c\n"a;1";"1.5";2\n"say ""hi""";3;4\n"a;1";5;6\n"two\nlines";7;8\n'
    for newline in ("\n", "\r\n"):
        for bom in (False, True):
            fleet = read_fleet(_write(tmp_path / "f.csv", text, newline=newline, bom=bom))
            assert fleet.sensors.tolist() == ["a;1", 'say "hi"', f"two{newline}lines"]
            np.testing.assert_array_equal(fleet.t_u, np.float32([[1.5, 5], [3, 0], [7, 0]]))


def test_ids_keep_their_text(tmp_path):
    path = _write(tmp_path / "f.csv", "sensor,t_u,t_c\n007,1,2\n7,3,4\n 7 ,5,6\nS1,1,1\ns1,2,2\n")
    fleet = read_fleet(path)
    assert fleet.sensors.tolist() == ["007", "7", "S1", "s1"]  # spaces around an id are not part of it
    np.testing.assert_array_equal(fleet.counts, [1, 2, 1, 1])


# -- missing values ----------------------------------------------------------------------------------


def test_missing_readings_are_dropped_and_counted_per_sensor(tmp_path):
    path = _write(tmp_path / "f.csv", "sensor,t_u,t_c\na,1,10\na,,20\nb,NA,30\na,3,NA\nb,4,40\n,5,50\nNA,6,60\n"
                                      "c,,\nb,5,\n")
    fleet = read_fleet(path)
    assert fleet.sensors.tolist() == ["a", "b", "c"]  # c: every reading dropped, still a sensor of the table
    np.testing.assert_array_equal(fleet.counts, [1, 1, 0])
    np.testing.assert_array_equal(fleet.dropped, [2, 2, 1])
    assert fleet.no_sensor == 2  # the rows without an id
    np.testing.assert_array_equal(fleet.t_u, np.float32([[1], [4], [0]]))
    assert MISSING == ("", "NA")
    # other markers, when said: 'NA' is then an id like any other
    path = _write(tmp_path / "g.csv", "sensor,t_u,t_c\nNA,1,2\nNA,-,3\nb,4,?\n")
    fleet = read_fleet(path, missing=("-", "?"))
    assert fleet.sensors.tolist() == ["NA", "b"]
    np.testing.assert_array_equal(fleet.dropped, [1, 1])


def test_nan_is_missing_only_when_said(tmp_path):
    path = _write(tmp_path / "f.csv", "sensor,t_u,t_c\na,1,2\na,NaN,3\na,4,5\n")
    assert _error(read_fleet, path) == f"{path}: line 3: sensor 'a': t_u is not finite: nan"
    fleet = read_fleet(path, missing=("", "NA", "NaN"))
    np.testing.assert_array_equal(fleet.counts, [2])
    np.testing.assert_array_equal(fleet.dropped, [1])
    path = _write(tmp_path / "g.csv", "sensor,t_u,t_c\na,1,2\na,inf,3\n")
    assert _error(read_fleet, path, missing=("", "NA", "NaN")) == f"{path}: line 3: sensor 'a': t_u is not finite: inf"
    path = _write(tmp_path / "r.csv", "t_u,t_c\n1,2\n-Inf,3\n")  # one sensor's readings: the cell as written
    assert _error(read_readings, path) == f"{path}: line 3: t_u is not finite: '-Inf'"


def test_a_table_with_no_sensor_or_no_reading_left_is_refused(tmp_path):
    path = _write(tmp_path / "f.csv", "sensor,t_u,t_c\n,1,2\nNA,3,4\n")
    assert _error(read_fleet, path).startswith(f"{path}: line 2: sensor is empty, and so is every other row's")
    path = _write(tmp_path / "g.csv", "sensor,t_u,t_c\na,,2\nb,3,\n")
    assert _error(read_fleet, path) == f"{path}: has no readings: every row has a missing value"


def test_one_reading_or_one_t_u_is_not_refused_by_the_reader(tmp_path):
    # undetermined fits are the fit's to report, per sensor
    path = _write(tmp_path / "f.csv", "sensor,t_u,t_c\na,1,2\nb,3,4\nb,3,5\n")
    fleet = read_fleet(path)
    np.testing.assert_array_equal(fleet.counts, [1, 2])
    np.testing.assert_array_equal(fleet.t_u, np.float32([[1, 0], [3, 3]]))


# -- a bad cell's line ---------------------------------------------------------------------------------


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_a_bad_cell_is_named_by_its_line_with_semicolons_and_crlf(tmp_path, newline):
    text = "\nsensor;raw;celsius\n\na;1;2\n\"b\nc\";3;4\na;5;abc\n"  # a blank line, a quoted line break before it
    path = _write(tmp_path / "f.csv", text, newline=newline)
    columns = {"t_u": "raw", "t_c": "celsius"}
    assert _error(read_fleet, path, columns=columns) == f"{path}: line 7: celsius (t_c) is not a number: 'abc'"
    path = _write(tmp_path / "g.csv", text.replace("abc", "6;7"), newline=newline)
    assert _error(read_fleet, path, columns=columns) == f"{path}: line 7: expected 3 values, got 4"


def test_a_bad_cell_deep_in_a_big_file(tmp_path):
    lines = [f"{i % 1000};{i % 50}.5;{i % 7}\r\n" for i in range(300_000)]
    lines[250_000] = "7;12;1e4x\r\n"
    path = _write(tmp_path / "f.csv", "sensor;t_u;t_c\r\n" + "".join(lines))
    assert _error(read_fleet, path) == f"{path}: line 250002: t_c is not a number: '1e4x'"


# -- sigma ----------------------------------------------------------------------------------------------


def test_a_sigma_column_is_read_padded_like_t_u(tmp_path):
    path = _write(tmp_path / "f.csv", "sensor,t_u,t_c,U\na,1,2,0.5\nb,3,4,0.25\na,5,6,\na,7,8,0.125\n")
    fleet = read_fleet(path, columns={"sigma": "u"})
    np.testing.assert_array_equal(fleet.sigma, np.float32([[0.5, 0.125], [0.25, 0]]))
    np.testing.assert_array_equal(fleet.dropped, [1, 0])  # a missing sigma drops its reading
    assert read_fleet(_write(tmp_path / "g.csv", "sensor,t_u,t_c,sigma\na,1,2,0.5\n")).sigma.tolist() == [[0.5]]
    path = _write(tmp_path / "h.csv", "sensor,t_u,t_c,sigma\na,1,2,0.5\na,2,3,0\n")
    assert _error(read_fleet, path) == f"{path}: line 3: sigma must be positive: 0.0"
    # a role mapped must be there
    path = _write(tmp_path / "i.csv", "sensor,t_u,t_c\na,1,2\n")
    assert _error(read_fleet, path, columns={"sigma": "u"}) == (
        f"{path}: line 1: expected the header 'sensor,t_u,t_c,u', got 'sensor,t_u,t_c'")


# -- one sensor's readings --------------------------------------------------------------------------------


def test_readings_with_or_without_a_sensor_column(tmp_path):
    path = _write(tmp_path / "r.csv", "Raw;Celsius\n35.7;0.5\n;14\n55.9;14.0\n58.2;15\n")
    readings = read_readings(path, columns={"t_u": "raw", "t_c": "celsius"})
    t_u, t_c = readings
    np.testing.assert_array_equal(t_u, np.float32([35.7, 55.9, 58.2]))
    np.testing.assert_array_equal(t_c, np.float32([0.5, 14, 15]))
    assert (readings.dropped, readings.total, readings.sensor, readings.sigma) == (1, 4, None, None)
    path = _write(tmp_path / "s.csv", "sensor,t_u,t_c,sigma\nx7,1,2,0.1\nx7,3,4,0.2\n,5,6,0.3\n")
    readings = read_readings(path, np.float64)
    assert readings.sensor == "x7"
    assert readings.dropped == 1  # the row without the sensor's id
    np.testing.assert_array_equal(readings.sigma, [0.1, 0.2])
    path = _write(tmp_path / "two.csv", "sensor,t_u,t_c\na,1,2\nb,3,4\nc,5,6\n")
    assert _error(read_readings, path).startswith(f"{path}: names 3 sensors; a readings table holds one sensor's")


def test_readings_too_few_after_dropping(tmp_path):
    path = _write(tmp_path / "r.csv", "t_u,t_c\n1,2\nNA,3\n")
    assert _error(read_readings, path) == f"{path}: needs at least 2 readings, got 1 (1 dropped for a missing value)"


# -- Parquet and NumPy ------------------------------------------------------------------------------


def test_parquet_with_mapped_names_and_missing_values(tmp_path):
    path = tmp_path / "f.parquet"
    pq.write_table(pa.table({"Sensor_ID": ["b", "a", "b", None, "a"], "RAW": [1.0, 2.0, None, 4.0, 5.0],
                             "celsius": [1.0, 2.0, 3.0, 4.0, float("nan")], "site": ["x"] * 5}), path)
    assert _error(read_fleet, path, columns=MAPPED) == f"{path}: row 5: sensor 'a': celsius (t_c) is not finite: nan"
    fleet = read_fleet(path, columns=MAPPED, missing=("", "NA", "NaN"))
    assert fleet.sensors.tolist() == ["a", "b"]
    np.testing.assert_array_equal(fleet.t_u, np.float32([[2], [1]]))
    np.testing.assert_array_equal(fleet.dropped, [1, 1])
    assert fleet.no_sensor == 1
    assert _error(read_fleet, path).startswith(f"{path}: missing columns sensor, t_u, t_c; expected columns")


def test_npz_with_mapped_names(tmp_path):
    path = tmp_path / "f.npz"
    np.savez(path, Sensor_ID=np.array(["7", "7", "3"]), raw=np.arange(3.0), celsius=np.array([1.0, np.nan, 3.0]),
             sigma=np.ones(3))
    fleet = read_fleet(path, columns=MAPPED, missing=("NaN",))
    assert fleet.sensors.tolist() == ["3", "7"]  # integers written plainly: sorted as numbers
    np.testing.assert_array_equal(fleet.t_u, np.float32([[2], [0]]))
    np.testing.assert_array_equal(fleet.sigma, np.float32([[1], [1]]))
    np.testing.assert_array_equal(fleet.dropped, [0, 1])
    np.savez(tmp_path / "r.npz", RAW=np.arange(3.0), t_c=np.arange(3.0))
    np.testing.assert_array_equal(read_readings(tmp_path / "r.npz", columns={"t_u": "raw"}).t_u, np.float32([0, 1, 2]))
    np.testing.assert_array_equal(read_t_u(tmp_path / "r.npz", columns={"t_u": "raw"}), [0, 1, 2])


# -- against an independent reading -------------------------------------------------------------------

IDS = ["a", "B", "b", "007", "7", "10", "-3", "x y", "a;b", "c,d", 'q"t', "e\nf", " pad ", "", "NA", "tab\tid"]
NUMBERS = st.one_of(st.floats(-1e6, 1e6, allow_nan=False).map(repr), st.integers(-10**6, 10**6).map(str),
                    st.sampled_from(["1e3", ".5", "5.", "+2", "-0", " 7", "8 ", "", "NA"]))
PLAIN = re.compile(r"0|-?[1-9][0-9]*")


def _reference(text: str, separator: str) -> dict:
    """The fleet in ``text`` as Python's csv module reads it, by the rules of read_fleet's docstring."""
    rows = [row for row in csv.reader(text_io.StringIO(text.removeprefix("\ufeff"), newline=""),
                                      delimiter=separator) if row]
    header = [name.strip().lower() for name in rows[0]]
    at = {role: header.index(name) for role, name in (("sensor", "sensor_id"), ("t_u", "raw"), ("t_c", "t_c"))}
    readings: dict[str, list[tuple[float, float]]] = {}
    dropped: dict[str, int] = {}
    no_sensor = 0
    for row in rows[1:]:
        cell = row[at["sensor"]]
        sensor = None if cell in MISSING else cell.strip() or None
        values = [None if row[at[role]] in MISSING else float(row[at[role]].strip()) for role in ("t_u", "t_c")]
        if sensor is None:
            no_sensor += 1
            continue
        readings.setdefault(sensor, [])
        dropped.setdefault(sensor, 0)
        if None in values:
            dropped[sensor] += 1
        else:
            readings[sensor].append(tuple(values))
    ids = sorted(readings, key=int) if all(PLAIN.fullmatch(s) for s in readings) else sorted(readings)
    return {"sensors": ids, "readings": [readings[s] for s in ids], "dropped": [dropped[s] for s in ids],
            "no_sensor": no_sensor}


@settings(max_examples=120, deadline=None)
@given(rows=st.lists(st.tuples(st.sampled_from(IDS), NUMBERS, NUMBERS, st.sampled_from(["n", "s;x", ""])),
                     min_size=1, max_size=25),
       separator=st.sampled_from([",", ";", "\t"]), newline=st.sampled_from(["\n", "\r\n"]), bom=st.booleans(),
       order=st.permutations(["Sensor_ID", "RAW", "t_c", "site"]))
def test_read_fleet_reads_what_the_csv_module_reads(tmp_path_factory, rows, separator, newline, bom, order):
    buffer = text_io.StringIO()
    writer = csv.writer(buffer, delimiter=separator, lineterminator=newline)
    writer.writerow(order)
    for sensor, t_u, t_c, site in rows:
        cells = {"Sensor_ID": sensor, "RAW": t_u, "t_c": t_c, "site": site}
        writer.writerow([cells[name] for name in order])
    text = ("\ufeff" if bom else "") + buffer.getvalue()
    path = tmp_path_factory.mktemp("csv") / "fleet.csv"
    path.write_bytes(text.encode())
    expected = _reference(text, separator)
    if not expected["sensors"]:
        with pytest.raises(ValueError, match="sensor is empty"):
            read_fleet(path, columns={"sensor": "sensor_id", "t_u": "raw"})
        return
    if not any(expected["readings"]):
        with pytest.raises(ValueError, match="has no readings"):
            read_fleet(path, columns={"sensor": "sensor_id", "t_u": "raw"})
        return
    fleet = read_fleet(path, np.float64, columns={"sensor": "sensor_id", "t_u": "raw"})
    assert fleet.sensors.tolist() == expected["sensors"]
    assert fleet.dropped.tolist() == expected["dropped"]
    assert fleet.no_sensor == expected["no_sensor"]
    assert fleet.counts.tolist() == [len(r) for r in expected["readings"]]
    for row, readings in enumerate(expected["readings"]):
        got = np.stack([fleet.t_u[row], fleet.t_c[row]], axis=1)[: fleet.counts[row]]
        np.testing.assert_array_equal(got, np.array(readings, np.float64).reshape(-1, 2))  # the same doubles


@settings(max_examples=60, deadline=None)
@given(lines=st.integers(1, 40), bad=st.data(), separator=st.sampled_from([",", ";", "\t"]),
       newline=st.sampled_from(["\n", "\r\n"]), quoted=st.booleans())
def test_a_bad_cell_is_named_at_the_line_the_csv_module_finds_it(tmp_path_factory, lines, bad, separator, newline,
                                                                 quoted):
    rows = [[f"s{i % 3}\nz" if quoted and i % 4 == 0 else f"s{i % 3}", str(i), str(2 * i)] for i in range(lines)]
    at = bad.draw(st.integers(0, lines - 1))
    rows[at][2] = "x1"
    buffer = text_io.StringIO()
    writer = csv.writer(buffer, delimiter=separator, lineterminator=newline)
    writer.writerows([["sensor", "t_u", "t_c"], *rows])
    path = tmp_path_factory.mktemp("csv") / "fleet.csv"
    path.write_bytes(buffer.getvalue().encode())
    reader = csv.reader(text_io.StringIO(buffer.getvalue(), newline=""), delimiter=separator)
    start = 1
    for number, _ in enumerate(reader):  # the line where each row starts: after the last one's end
        if number == at + 1:
            break
        start = reader.line_num + 1
    assert _error(read_fleet, path) == f"{path}: line {start}: t_c is not a number: 'x1'"


# -- a process's share ------------------------------------------------------------------------------------


def test_a_share_of_a_messy_fleet_is_that_part_of_the_whole(tmp_path):
    path = _write(tmp_path / "f.csv", "Sensor;T_U;T_C\nc;1;2\na;;3\nb;4;5\n;6;7\na;8;9\nc;10;\nd;11;12\n")
    whole = read_fleet(path)
    share = read_fleet(path, part=lambda n: slice(1, 3))
    assert share.sensors.tolist() == ["b", "c"]
    assert share.all_sensors.tolist() == whole.sensors.tolist() == ["a", "b", "c", "d"]
    for got, want in zip(share, whole.select(slice(1, 3)), strict=True):
        np.testing.assert_array_equal(got, want)
    assert share.no_sensor == 1  # of the whole table
    np.testing.assert_array_equal(share.dropped, [0, 1])


def test_a_share_of_readings_keeps_every_row(tmp_path):
    # the shares of a multi-process fit must stay even: a missing value in one is refused
    path = tmp_path / "r.parquet"
    pq.write_table(pa.table({"t_u": [1.0, 2.0, None, 4.0], "t_c": [1.0, 2.0, 3.0, 4.0]}), path)
    readings = read_readings(path, np.float64, part=lambda n: slice(0, 2))
    np.testing.assert_array_equal(readings.t_u, [1, 2])
    assert readings.total == 4
    assert _error(read_readings, path, part=lambda n: slice(2, 4)).startswith(
        f"{path}: reading 2: a value is missing; a process's share of the readings keeps every row")


# -- any text: a table or one line -------------------------------------------------------------------------

TOKENS = st.sampled_from(["sensor", "t_u", "t_c", "T_U", "sigma", "raw", ",", ";", "\t", "\n", "\r\n", '"', " ", "",
                          "NA", "nan", "inf", "1", "2.5", "-3", "1e999", "x", "\ufeff", "é", "007"])


@settings(max_examples=400, deadline=None)
@given(header=st.sampled_from(["", "sensor,t_u,t_c\n", "t_u;t_c;sensor\r\n", "T_U\tt_c\tSigma\n", "t_u\n"]),
       tokens=st.lists(TOKENS, max_size=40), kind=st.sampled_from(["fleet", "readings", "t_u"]))
def test_any_text_is_a_table_or_one_line(tmp_path_factory, header, tokens, kind):
    path = tmp_path_factory.mktemp("csv") / "any.csv"
    path.write_text(header + "".join(tokens), newline="")
    read = {"fleet": read_fleet, "readings": read_readings, "t_u": read_t_u}[kind]
    try:
        read(path)
    except InvalidInput as error:  # nothing else: no IndexError, no pyarrow error
        message = str(error)
        assert message.startswith(f"{path}: ")
        assert "\n" not in message
