"""``jaxcal predict --cal RESULTS --data LOG``: a log of many sensors' raw readings, each through its own
sensor's row of a fleet's results table, every row kept in order with its status. The expected values are
computed here from the table's numbers with NumPy and SciPy's t quantile, independent of jaxcal."""

from __future__ import annotations

import csv
import json
import math
import subprocess
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

EPS32 = float(np.finfo(np.float32).eps)
EPS64 = float(np.finfo(np.float64).eps)


def _quadratic_cov() -> list[list[float]]:
    """A quadratic fit's covariance, ``s**2 (X'X)^-1`` of 8 readings from 10 to 80 (scaled units)."""
    x = np.linspace(10.0, 80.0, 8)
    design = np.stack([x**2, x, np.ones_like(x)], axis=1)
    return (0.04 * np.linalg.inv(design.T @ design)).tolist()


#: The calibrations, as a fleet's results table holds them: ``007`` and ``7`` are two sensors (ids are text);
#: S1 is quadratic in readings scaled by 0.1 (mixed models and scales in one table); flat and bad have no fit.
FITS = {
    "007": {"model": "linear", "scale": 1.0, "params": {"w": 0.5, "b": -17.0},
            "cov": [[1e-4, -4e-3], [-4e-3, 0.25]], "residual_sd": 0.3, "dof": 9},
    "7": {"model": "linear", "scale": 1.0, "params": {"w": 0.61, "b": -18.5},
          "cov": [[4e-4, -1e-2], [-1e-2, 0.36]], "residual_sd": 0.5, "dof": 4},
    "S1": {"model": "quadratic", "scale": 0.1, "params": {"w2": 0.002, "w1": 0.4, "b": -15.0},
           "cov": _quadratic_cov(), "residual_sd": 0.2, "dof": 5},
}
NO_FIT = {"flat": ("undetermined", "all readings at one t_u"), "bad": ("nonfinite", "")}
PARAM_NAMES = {"linear": ("w", "b"), "quadratic": ("w2", "w1", "b")}

#: The log: (sensor as written, t_u cell), with the status each row must get. ' 007 ' is 007 (spaces around an
#: id are not part of it); x9 has no calibration; an empty t_u is a missing reading; an empty id, no sensor.
LOG = [("007", "40", "ok"), ("7", "40", "ok"), ("S1", "400", "ok"), ("x9", "40", "no calibration"),
       ("flat", "40", "no fit: all readings at one t_u"), ("007", "", "missing reading"), ("", "12", "no sensor"),
       ("S1", "250.5", "ok"), ("bad", "3", "no fit: nonfinite"), ("7", "-5.25", "ok"), (" 007 ", "60", "ok"),
       ("x9", "", "no calibration")]


def _results_columns() -> dict[str, list]:
    """The results table's columns (a mixed table: each model's params; cells of another model's empty)."""
    names = ("w2", "w1", "w", "b")
    pairs = sorted({f"cov_{p[a]}_{p[b]}" for p in PARAM_NAMES.values() for a in range(len(p))
                    for b in range(a, len(p))})
    columns: dict[str, list] = {key: [] for key in ("sensor", *names, *pairs, "residual_sd", "dof", "status",
                                                    "reason", "model", "solver", "scale")}
    for sensor, fit in FITS.items():
        p = PARAM_NAMES[fit["model"]]
        cov = {f"cov_{p[a]}_{p[b]}": fit["cov"][a][b] for a in range(len(p)) for b in range(a, len(p))}
        row = {"sensor": sensor, **fit["params"], **cov, "residual_sd": fit["residual_sd"], "dof": fit["dof"],
               "status": "converged", "reason": "", "model": fit["model"], "solver": "ls", "scale": fit["scale"]}
        for key, values in columns.items():
            values.append(row.get(key))
    for sensor, (status, reason) in NO_FIT.items():
        row = {"sensor": sensor, **dict.fromkeys((*names, *pairs, "residual_sd"), math.nan), "dof": 0,
               "status": status, "reason": reason, "model": "linear", "solver": "ls", "scale": 1.0}
        for key, values in columns.items():
            values.append(row.get(key))
    return columns


def _write_csv(path: Path, columns: dict[str, list]) -> None:
    keys = list(columns)
    lines = [",".join(keys)]
    for i in range(len(columns["sensor"])):
        lines.append(",".join("" if columns[k][i] is None else repr(columns[k][i]) if isinstance(columns[k][i], float)
                              else str(columns[k][i]) for k in keys))
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def tables(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = tmp_path_factory.mktemp("log")
    columns = _results_columns()
    _write_csv(folder / "fits.csv", columns)
    pq.write_table(pa.table(columns), folder / "fits.parquet")
    (folder / "log.csv").write_text("sensor,t_u\n" + "".join(f"{s},{u}\n" for s, u, _ in LOG))
    pq.write_table(pa.table({"sensor": [s or None for s, _, _ in LOG],
                             "t_u": [float(u) if u else None for _, u, _ in LOG]}), folder / "log.parquet")
    return {"fits.csv": folder / "fits.csv", "fits.parquet": folder / "fits.parquet",
            "log.csv": folder / "log.csv", "log.parquet": folder / "log.parquet", "folder": folder}


def _in_process(capsys: pytest.CaptureFixture[str], *argv: str) -> subprocess.CompletedProcess:
    """``jaxcal ARGV`` in this interpreter (predict starts nothing up)."""
    from jaxcal.cli import main

    status = main(list(argv))
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(list(argv), status, out, err)


def _expected(sensor: str, t_u: float, level: float, interval: str) -> tuple[float, float, float, float]:
    """A reading through its sensor's calibration by hand: ``(t_c, half-width, t_c's tolerance, the
    half-width's)``. The value: float64 from float64 params, a few roundings of its largest term. The
    half-width ``t sqrt(g' cov g [+ s**2])``: computed by jaxcal in float32 (JAX without x64), a few roundings
    of each term (amplified where the covariance's terms cancel), and recovered from float32 ``low`` and
    ``high``, each rounded to float32 near ``t_c``."""
    fit = FITS[sensor]
    params = [fit["params"][n] for n in PARAM_NAMES[fit["model"]]]
    x = fit["scale"] * t_u
    g = np.array([x**2, x, 1.0] if fit["model"] == "quadratic" else [x, 1.0])
    value = float(np.dot(params, g))
    terms = g[:, None] * np.asarray(fit["cov"]) * g[None, :]
    noise = fit["residual_sd"] ** 2 if interval == "prediction" else 0.0
    variance = float(terms.sum()) + noise
    half = stats.t.ppf((1 + level) / 2, fit["dof"]) * math.sqrt(variance)
    value_tol = 8 * EPS64 * float(np.sum(np.abs(np.multiply(params, g))))
    half_tol = 8 * EPS32 * half * (float(np.abs(terms).sum()) + noise) / variance + 2 * EPS32 * (abs(value) + half)
    return value, half, value_tol, half_tol


def _read(path: Path) -> dict[str, list]:
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(path).to_pydict()
        return {k: [math.nan if v is None and k not in ("sensor", "status") else v for v in vs]
                for k, vs in table.items()}
    with open(path, newline="") as file:
        rows = list(csv.DictReader(file))
    return {k: [row[k] if k in ("sensor", "status") else float(row[k]) for row in rows] for k in rows[0]}


def _check(got: dict[str, list], level: float, interval: str) -> None:
    assert list(got) == ["sensor", "t_u", "t_c", "low", "high", "status"]
    assert len(got["sensor"]) == len(LOG)  # every input row, once, in input order
    assert got["sensor"] == [s.strip() for s, _, _ in LOG]
    assert got["status"] == [status for _, _, status in LOG]
    for i, (sensor, cell, status) in enumerate(LOG):
        t_u, t_c, low, high = (got[k][i] for k in ("t_u", "t_c", "low", "high"))
        assert t_u == float(cell) if cell else math.isnan(t_u)
        if status != "ok":
            assert all(math.isnan(v) for v in (t_c, low, high)), (i, t_c, low, high)
            continue
        value, half, value_tol, half_tol = _expected(sensor.strip(), float(cell), level, interval)
        assert abs(t_c - value) <= value_tol, (i, t_c, value)
        assert abs((high - t_c) - half) <= half_tol, (i, high - t_c, half)
        assert abs((t_c - low) - half) <= half_tol, (i, t_c - low, half)


def test_each_reading_goes_through_its_own_sensors_calibration_csv(tables, capsys):
    out = tables["folder"] / "converted.csv"
    done = _in_process(capsys, "predict", "--cal", str(tables["fits.csv"]), "--data", str(tables["log.csv"]),
                       "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (f"12 readings of 6 sensors: 6 converted, 6 not (1 missing reading, "
                                   f"2 no calibration, 1 no sensor, 1 no fit: all readings at one t_u, "
                                   f"1 no fit: nonfinite); "
                                   f"results in {out}")
    _check(_read(out), 0.95, "prediction")


def test_a_parquet_log_and_results_give_parquet_at_another_level_and_the_confidence_band(tables, capsys):
    out = tables["folder"] / "converted.parquet"
    done = _in_process(capsys, "predict", "--cal", str(tables["fits.parquet"]), "--data", str(tables["log.parquet"]),
                       "--out", str(out), "--level", "0.9", "--interval", "confidence")
    assert done.returncode == 0, done.stderr
    _check(_read(out), 0.9, "confidence")


def test_a_reading_converts_as_through_its_sensor_alone(tables, capsys):
    """The log's value for a sensor is the one-calibration path's (--sensor), to the last bit; the
    interval's ends to float32's rounding near the value."""
    done = _in_process(capsys, "predict", "--cal", str(tables["fits.csv"]), "--data", str(tables["log.csv"]),
                       "--json")
    assert done.returncode == 0, done.stderr
    log = json.loads(done.stdout)
    assert log["status"] == [status for _, _, status in LOG]
    for sensor in FITS:
        rows = [i for i, (s, _, status) in enumerate(LOG) if s.strip() == sensor and status == "ok"]
        one = _in_process(capsys, "predict", "--cal", str(tables["fits.csv"]), "--sensor", sensor, "--json",
                          *(LOG[i][1] for i in rows))
        alone = json.loads(one.stdout)
        assert [log["t_c"][i] for i in rows] == alone["t_c"]
        for key in ("low", "high"):
            np.testing.assert_allclose([log[key][i] for i in rows], alone[key], rtol=2 * EPS32)
    assert log["t_c"][LOG.index(("x9", "40", "no calibration"))] is None


def test_a_fleet_of_one_model_and_a_log_of_integer_ids(tables, capsys):
    """The usual fleet: every calibration of one model (the readings in one call). Ids stored as integers in
    a Parquet log are their decimal text: 7 is sensor '7', never '007'."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = _results_columns()
    keep = [i for i, model in enumerate(columns["model"]) if model == "linear"]
    path = tables["folder"] / "linear.csv"
    _write_csv(path, {k: [v[i] for i in keep] for k, v in columns.items()})
    log = tables["folder"] / "ints.parquet"
    pq.write_table(pa.table({"sensor": pa.array([7, 7, 8, None], pa.int64()),
                             "t_u": pa.array([40.0, 12.5, 40.0, 1.0])}), log)
    done = _in_process(capsys, "predict", "--cal", str(path), "--data", str(log), "--json")
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    assert (got["sensor"], got["status"]) == (["7", "7", "8", ""], ["ok", "ok", "no calibration", "no sensor"])
    for i, t_u in ((0, 40.0), (1, 12.5)):
        value, half, value_tol, half_tol = _expected("7", t_u, 0.95, "prediction")
        assert abs(got["t_c"][i] - value) <= value_tol
        assert abs(got["high"][i] - got["t_c"][i] - half) <= half_tol


def test_columns_a_separator_and_missing_cells_of_a_loggers_table(tables, capsys):
    data = tables["folder"] / "logger.txt"
    data.write_text("Site;RAW;ID\nn;40;007\nn;-999;7\ns;40;7\n")
    done = _in_process(capsys, "predict", "--cal", str(tables["fits.csv"]), "--data", str(data), "--columns",
                       "sensor=id,t_u=raw", "--separator", ";", "--missing", "-999", "--json")
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    assert (got["sensor"], got["status"]) == (["007", "7", "7"], ["ok", "missing reading", "ok"])
    assert got["t_u"][1] is None
    for i, sensor in ((0, "007"), (2, "7")):
        value, _, tol, _ = _expected(sensor, 40.0, 0.95, "prediction")
        assert abs(got["t_c"][i] - value) <= tol


def test_json_with_out_prints_the_counts_and_a_log_too_large_for_json_is_refused(tables, capsys, monkeypatch):
    out = tables["folder"] / "counts.csv"
    done = _in_process(capsys, "predict", "--cal", str(tables["fits.csv"]), "--data", str(tables["log.csv"]),
                       "--out", str(out), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "readings": 12, "sensors": 6, "converted": 6, "level": 0.95, "interval": "prediction", "out": str(out),
        "status": {"ok": 6, "missing reading": 1, "no calibration": 2, "no sensor": 1,
                   "no fit: all readings at one t_u": 1, "no fit: nonfinite": 1}}
    from jaxcal.cli import predict

    monkeypatch.setattr(predict, "JSON_MOST", len(LOG) - 1)
    done = _in_process(capsys, "predict", "--cal", str(tables["fits.csv"]), "--data", str(tables["log.csv"]), "--json")
    assert done.returncode == 2
    assert done.stderr.strip().endswith("more than --json prints (11); write them with --out FILE (.csv or .parquet)")


def test_with_sensor_every_reading_of_a_log_goes_through_that_one(tables, capsys):
    """The one-calibration path is kept: --sensor picks one row for every reading (a missing one refused)."""
    data = tables["folder"] / "two.csv"
    data.write_text("sensor,t_u\n007,40\nS1,60\n")
    done = _in_process(capsys, "predict", "--cal", str(tables["fits.csv"]), "--data", str(data), "--sensor", "7",
                       "--json")
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    assert got["t_c"] == [0.61 * 40 - 18.5, 0.61 * 60 - 18.5]


#: Bad input: one line on stderr, exit 2, nothing written.
BAD = [
    (["--out", "{out}.txt"], "--out: refused.txt: unknown table format '.txt'"),
    (["--columns", "t_c=celsius"], "--columns: role t_c is not read by predict"),
    (["--columns", "sensor=id"], "log.csv: line 1: expected the header 'id,t_u', got 'sensor,t_u'"),
    (["--separator", "ab"], "--separator: must be one character"),
    (["--sensor", "7"], "--out: writes a log's converted readings"),
    (["--data", "{bad}"], "bad.csv: line 3: t_u is not a number: 'warm'"),
    (["--cal", "{dup}"], "dup.csv: sensor '7' has two rows"),
    (["--cal", "{empty}"], "empty.npz: not a fleet's results table"),  # np.load's EOFError, once a traceback
    (["--cal", "{folder}/none.csv"], "none.csv: no such file"),
]


@pytest.mark.parametrize(("argv", "words"), BAD)
def test_bad_flags_are_one_line_exit_2_and_nothing_written(tables, argv, words, capsys):
    folder = tables["folder"]
    (folder / "bad.csv").write_text("sensor,t_u\n7,1\n7,warm\n")
    (folder / "empty.npz").write_bytes(b"")
    lines = tables["fits.csv"].read_text().splitlines()
    (folder / "dup.csv").write_text("\n".join([*lines, *(line for line in lines if line.startswith("7,"))]) + "\n")
    out = folder / "refused"
    fill = {"out": str(out), "bad": str(folder / "bad.csv"), "dup": str(folder / "dup.csv"),
            "empty": str(folder / "empty.npz"), "folder": str(folder)}
    argv = [a.format(**fill) for a in argv]
    flags = {"--cal": str(tables["fits.csv"]), "--data": str(tables["log.csv"]), "--out": f"{out}.csv"}
    for flag in argv[::2]:
        flags.pop(flag, None)
    done = _in_process(capsys, "predict", *(x for pair in flags.items() for x in pair), *argv)
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert words in done.stderr
    assert not list(folder.glob("refused*"))


# -- a log in parts: read, converted and written at once -------------------------------------------------


@pytest.mark.parametrize(("log", "out"), [("log.csv", "csv"), ("log.parquet", "parquet")])
def test_a_log_in_parts_is_converted_as_in_one(tables, capsys, monkeypatch, log, out):
    """Parts of 5 rows (5, 5 and 2): the rows and their statuses as for the whole log, the summary's sensors
    counted once across parts, and the Parquet output written a row group per part as each came."""
    from jaxcal import io

    monkeypatch.setattr(io, "LOG_PART_ROWS", 5)
    path = tables["folder"] / f"in_parts.{out}"
    done = _in_process(capsys, "predict", "--cal", str(tables["fits.csv"]), "--data", str(tables[log]),
                       "--out", str(path))
    assert done.returncode == 0, done.stderr
    # the summary as for the log in one part (its statuses in one order, however the parts split)
    assert done.stdout.strip() == (f"12 readings of 6 sensors: 6 converted, 6 not (1 missing reading, "
                                   f"2 no calibration, 1 no sensor, 1 no fit: all readings at one t_u, "
                                   f"1 no fit: nonfinite); results in {path}")
    _check(_read(path), 0.95, "prediction")
    if out == "parquet":
        import pyarrow.parquet as pq

        assert pq.ParquetFile(path).num_row_groups == 3


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_a_value_refused_in_a_later_part_is_one_line_and_nothing_is_written(tables, capsys, monkeypatch, kind):
    """The refusal comes while the parts before it are written: one line naming the row, exit 2, no output
    and no temporary file left."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from jaxcal import io

    folder = tables["folder"] / f"later_{kind}"
    folder.mkdir()
    rows = [(s, u) for s, u, _ in LOG] + [("7", "inf")]  # row 13, in the third part
    data = folder / f"log.{kind}"
    if kind == "csv":
        data.write_text("sensor,t_u\n" + "".join(f"{s},{u}\n" for s, u in rows))
    else:
        pq.write_table(pa.table({"sensor": [s or None for s, _ in rows],
                                 "t_u": [float(u) if u else None for _, u in rows]}), data)
    monkeypatch.setattr(io, "LOG_PART_ROWS", 5)
    done = _in_process(capsys, "predict", "--cal", str(tables["fits.csv"]), "--data", str(data),
                       "--out", str(folder / "out.parquet"))
    assert done.returncode == 2
    where = "line 14" if kind == "csv" else "row 13"
    words = f"{data}: {where}: sensor '7': t_u is not finite: inf"
    assert done.stderr.strip().splitlines() == [f"jaxcal predict: error: {words}"]
    assert [p.name for p in folder.iterdir()] == [data.name]


def test_the_next_part_is_read_while_one_is_written(tables, capsys, monkeypatch):
    """Parts of one row: the output's first bytes are written before the log is all read, and while that
    write is held, more of the log is read (each stage in a thread of its own; one after another, the
    first held write would wait for the last read)."""
    import threading

    import jaxcal._files
    from jaxcal import io

    read, more = [], threading.Event()
    log_rows, write_all = io._log_rows, jaxcal._files._write_all

    def reading(source, rows):
        part = log_rows(source, rows)
        read.append(len(part.t_u))
        if held and sum(read) > held[0]:
            more.set()
        return part

    held: list[int] = []
    seen: list[bool] = []

    def writing(handle, data):
        if not held:
            held.append(sum(read))  # the log's rows read so far
            # set as soon as another part is read: at once, unless reading waits for this write
            seen.append(more.wait(timeout=60))
        write_all(handle, data)

    monkeypatch.setattr(io, "LOG_PART_ROWS", 1)
    monkeypatch.setattr(io, "_log_rows", reading)
    monkeypatch.setattr(jaxcal._files, "_write_all", writing)
    out = tables["folder"] / "overlapped.csv"
    done = _in_process(capsys, "predict", "--cal", str(tables["fits.csv"]), "--data", str(tables["log.csv"]),
                       "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert held[0] < len(LOG), "the output was first written once the whole log was read"
    assert seen == [True], "no part was read while the first write was held"
    _check(_read(out), 0.95, "prediction")
