"""The HTML calibration report: one self-contained page, its counts, its worst sensors and its
escaping checked by parsing it (html.parser), independently of the code that wrote it."""

from __future__ import annotations

import base64
import os
import stat
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from jaxcal import calibrate, data
from jaxcal.calibration import fingerprint
from jaxcal.html_report import MAX_LISTED, data_fingerprint, write_report
from jaxcal.solvers import STATUS

NASTY = "<script>alert(1)</script>"  # an id a page must show, not run
AMPERSAND = "a&b $x$ </td>"  # an entity, mathtext dollars and a closing tag


class Page(HTMLParser):
    """What a reader of the page gets: tags, the URLs it would load, each table's cells by id, the text."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.urls: list[str] = []
        self.images: list[str] = []
        self.tables: dict[str, list[list[str]]] = {}
        self.ids: set[str] = set()
        self.text: list[str] = []
        self._table: str | None = None
        self._cell: list[str] | None = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        found = dict(attrs)
        if found.get("id"):
            self.ids.add(found["id"])
        for name in ("src", "href", "srcset", "data", "action", "poster", "background"):
            if found.get(name) is not None:
                self.urls.append(found[name])
        if tag == "img":
            self.images.append(found.get("src") or "")
        if tag == "table":
            self._table = found.get("id")
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self.tables[self._table].append([])
        elif tag in ("td", "th") and self._table is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.tables[self._table][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, text: str) -> None:
        self.text.append(text)
        if self._cell is not None:
            self._cell.append(text)

    def body(self, table: str) -> list[list[str]]:
        """A table's rows below its header."""
        return self.tables[table][1:]


def _read(path: Path) -> tuple[str, Page]:
    text = path.read_text(encoding="utf-8")
    return text, Page(text)


@pytest.fixture(scope="module")
def fleet() -> dict:
    """40 sensors, ragged (4 to 10 readings), each with its own noise level, one with every reading at
    the same t_u (undetermined) under the id that must not run, one noisy sensor with the ampersand id."""
    pytest.importorskip("matplotlib")
    rng = np.random.default_rng(7)
    sensors, n = 40, 10
    counts = rng.integers(4, n + 1, sensors)
    counts[5] = n
    mask = np.arange(n)[None, :] < counts[:, None]
    t_u = rng.uniform(20.0, 90.0, (sensors, n))
    noise = 0.05 * 1.1 ** rng.permutation(sensors)  # 0.05 to 2, each level its own
    noise[5] = 20.0
    t_c = 0.54 * t_u - 17.3 + noise[:, None] * rng.normal(size=(sensors, n))
    t_u[3] = 55.0  # one t_u only: w and b are not determined
    t_u[~mask] = np.nan  # padding may hold anything
    ids = np.array([f"TH-{i:03d}" for i in range(sensors)], dtype=object)
    ids[3], ids[5] = NASTY, AMPERSAND
    t_u, t_c = t_u.astype(np.float32), t_c.astype(np.float32)
    fit = calibrate(t_u, t_c, mask=mask)
    return {"sensors": ids, "t_u": t_u, "t_c": t_c, "mask": mask, "fit": fit}


@pytest.fixture(scope="module")
def page(fleet, tmp_path_factory) -> tuple[str, Page]:
    path = tmp_path_factory.mktemp("report") / "fleet.html"
    write_report(path, **fleet, model="linear", solver="ls", worst=6, meta={"data file": "<fleet>.csv"})
    return _read(path)


def test_self_contained(page):
    text, parsed = page
    assert parsed.images, "the page has figures"
    assert set(parsed.urls) == set(parsed.images), "the only URLs are the figures"
    for src in parsed.images:
        head, _, payload = src.partition(",")
        assert head == "data:image/png;base64"
        assert base64.b64decode(payload, validate=True).startswith(b"\x89PNG\r\n\x1a\n")
    assert not {"script", "link", "iframe", "object", "embed", "base"} & set(parsed.tags)
    outside_images = text
    for src in parsed.images:
        outside_images = outside_images.replace(src, "")
    assert "http" not in outside_images
    assert "url(" not in outside_images
    assert "file:" not in outside_images


def test_status_counts_match_the_fit(fleet, page):
    _, parsed = page
    counts = np.bincount(np.asarray(fleet["fit"].status), minlength=len(STATUS))
    shown = {row[0]: int(row[1]) for row in parsed.body("status")}
    assert shown == {**{name: int(c) for name, c in zip(STATUS, counts, strict=True)}, "total": 40}
    assert shown["undetermined"] >= 1  # the fixture's undetermined sensor is there to be counted
    assert parsed.body("unfitted") == [[NASTY, "undetermined"]]


def test_user_text_is_shown_literally(page):
    text, parsed = page
    assert "script" not in parsed.tags
    cells = {cell for rows in parsed.tables.values() for row in rows for cell in row}
    assert {NASTY, AMPERSAND, "<fleet>.csv"} <= cells
    assert NASTY not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "a&amp;b $x$ &lt;/td&gt;" in text


def test_worst_sensors_are_those_with_the_largest_residual_sd(fleet, page):
    """The ranking recomputed without jaxcal: each sensor's float64 least squares by NumPy, its
    residual SD sqrt(rss / (n - 2)); the undetermined sensor (rank-deficient) left out."""
    _, parsed = page
    rsd = {}
    for i, sensor in enumerate(fleet["sensors"]):
        keep = fleet["mask"][i]
        x, y = fleet["t_u"][i, keep].astype(np.float64), fleet["t_c"][i, keep].astype(np.float64)
        design = np.stack([x, np.ones_like(x)], axis=1)
        if np.linalg.matrix_rank(design) < 2:
            continue
        coef = np.linalg.lstsq(design, y, rcond=None)[0]
        rsd[sensor] = float(np.sqrt(np.sum((y - design @ coef) ** 2) / (keep.sum() - 2)))
    ranked = sorted(rsd, key=rsd.get, reverse=True)
    # the 6th and 7th differ by far more than float32's rounding of the fit (eps 1.2e-7 times cond ~1e3)
    assert rsd[ranked[5]] / rsd[ranked[6]] > 1.001
    rows = parsed.body("worst")
    assert [row[1] for row in rows] == ranked[:6]
    assert rows[0][1] == AMPERSAND
    assert [row[0] for row in rows] == ["1", "2", "3", "4", "5", "6"]
    assert "worst-figure" in parsed.ids


def test_what_was_fitted(fleet, page):
    _, parsed = page
    described = {row[0]: row[1] for row in parsed.tables["fitted"]}
    assert described["sensors"] == "40"
    assert described["readings"].startswith(f"{int(fleet['mask'].sum())} ")
    assert described["data fingerprint"] == data_fingerprint(fleet["t_u"], fleet["t_c"], fleet["mask"])
    assert described["model's formula"] == "t_p = w * t_u + b"
    assert described["params"] == "w, b"
    assert described["solver"] == "ls"
    assert described["prediction band level"] == "0.95"
    assert described["date"].endswith(" UTC")
    for name in ("jaxcal", "jax", "numpy", "matplotlib"):
        assert f"{name} " in described["software"]
    summary = {row[0]: row for row in parsed.body("summary")}
    assert set(summary) == {"w", "b", "standard error of w", "standard error of b", "residual SD",
                            "degrees of freedom"}
    assert summary["w"][1] == str(int((np.asarray(fleet["fit"].status) <= 1).sum()))


def test_fingerprint():
    """Without a mask, calibration.fingerprint of the same arrays; with one, padding does not count."""
    t_u, t_c = np.array([[1.0, 2.0, 3.0]]), np.array([[2.0, 4.0, 6.5]])
    assert data_fingerprint(t_u, t_c, None) == fingerprint(t_u, t_c)
    mask = np.array([[True, True, False]])
    padded = t_u.copy()
    padded[0, 2] = np.nan
    assert data_fingerprint(padded, t_c, mask) == data_fingerprint(t_u, t_c, mask)
    assert data_fingerprint(t_u, t_c, mask) != data_fingerprint(t_u, t_c, None)


def test_one_sensor(tmp_path):
    """The book's thermometer, one calibration (1-D readings, a single fit)."""
    pytest.importorskip("matplotlib")
    fit = calibrate(data.t_u, data.t_c)
    path = tmp_path / "one.html"
    write_report(path, sensors="book", t_u=data.t_u, t_c=data.t_c, fit=fit, solver="ls")
    _, parsed = _read(path)
    assert {row[0]: row[1] for row in parsed.body("status")}["converged"] == "1"
    assert [row[1] for row in parsed.body("worst")] == ["book"]
    assert "unfitted" not in parsed.tables
    assert "distributions" not in parsed.ids  # no histogram of one value
    assert len(parsed.images) == 1
    # the same fit given with the readings as a fleet of one, (1, n)
    write_report(path, sensors=["book"], t_u=data.t_u[None], t_c=data.t_c[None], fit=fit, solver="ls")
    assert [row[1] for row in _read(path)[1].body("worst")] == ["book"]


def test_a_model_known_by_its_text(tmp_path):
    """A ModelSpec named by a text jaxcal has no model of that name for (an expression): the text is the formula."""
    pytest.importorskip("matplotlib")
    from jaxcal import ModelSpec

    spec = ModelSpec(lambda t_u, g, o: g * t_u + o, ("g", "o"), None, "g * t_u + o < 1 & 2")
    fit = calibrate(data.t_u, data.t_c)
    path = tmp_path / "text.html"
    write_report(path, sensors="book", t_u=data.t_u, t_c=data.t_c, fit=fit, model=spec, solver="ls",
                 param_names=spec.param_names)
    described = {row[0]: row[1] for row in _read(path)[1].tables["fitted"]}
    assert described["model"] == "expression"
    assert described["model's formula"] == "t_p = g * t_u + o < 1 & 2"
    assert described["params"] == "g, o"


@pytest.mark.parametrize(("name", "shown"), [(None, "test_html_report.gain_and_offset"), ("mine", "mine")])
def test_a_callers_model_with_a_formula_is_shown_by_its_own_name(tmp_path, name, shown):
    """A caller's ModelSpec with a formula of its own: the formula, and the model's name (or its function's),
    never "expression" nor None."""
    pytest.importorskip("matplotlib")
    from jaxcal import ModelSpec

    spec = ModelSpec(gain_and_offset, ("g", "o"), None, name, formula="g * t_u + o")
    fit = calibrate(data.t_u, data.t_c)
    path = tmp_path / "own.html"
    write_report(path, sensors="book", t_u=data.t_u, t_c=data.t_c, fit=fit, model=spec, solver="ls",
                 param_names=spec.param_names)
    described = {row[0]: row[1] for row in _read(path)[1].tables["fitted"]}
    assert described["model"] == shown
    assert described["model's formula"] == "t_p = g * t_u + o"


def gain_and_offset(t_u, g, o):
    return g * t_u + o


def test_no_sensor_fitted(tmp_path):
    """Every reading of every sensor at one t_u: nothing to summarise; the ids listed up to the cap."""
    pytest.importorskip("matplotlib")
    sensors = MAX_LISTED + 10
    t_u = np.full((sensors, 5), 30.0, np.float32)
    t_c = np.linspace(0.0, 1.0, sensors * 5, dtype=np.float32).reshape(sensors, 5)
    fit = calibrate(t_u, t_c)
    assert (np.asarray(fit.status) == STATUS.index("undetermined")).all()
    path = tmp_path / "none.html"
    write_report(path, sensors=[f"s{i}" for i in range(sensors)], t_u=t_u, t_c=t_c, fit=fit, solver="ls")
    text, parsed = _read(path)
    assert "No sensor has a calibration" in text
    assert {row[0]: row[1] for row in parsed.body("status")}["undetermined"] == str(sensors)
    assert [row[0] for row in parsed.body("unfitted")] == [f"s{i}" for i in range(MAX_LISTED)]
    assert "and 10 more." in "".join(parsed.text)
    assert not parsed.images
    assert "worst" not in parsed.tables
    assert "summary" not in parsed.tables


def test_columns_with_nan(tmp_path):
    """A mapping of columns, status by name, no cov, NaN where fits have none (dof 0, NaN stderr): the
    sensors without a residual SD are not ranked, and the page says it draws no band."""
    pytest.importorskip("matplotlib")
    sensors, n = 5, 4
    t_u = np.tile(np.arange(n, dtype=np.float64), (sensors, 1))
    t_c = 2.0 * t_u + np.array([[0.0, 0.1, -0.1, 0.0]]) * np.arange(1, sensors + 1)[:, None]
    columns = {"params": np.tile([2.0, 0.0], (sensors, 1)), "stderr": np.full((sensors, 2), np.nan),
               "residual_sd": np.array([0.1, np.nan, 0.3, 0.2, np.nan]), "dof": np.array([2, 0, 2, 2, 2]),
               "status": np.array(["converged", "converged", "max_steps", "converged", "nonfinite"])}
    columns["params"][4] = np.nan
    path = tmp_path / "columns.html"
    write_report(path, sensors=np.arange(sensors), t_u=t_u, t_c=t_c, fit=columns, model="linear", solver="lm")
    text, parsed = _read(path)
    assert [row[1] for row in parsed.body("worst")] == ["2", "3", "0"]
    assert parsed.body("unfitted") == [["4", "nonfinite"]]
    assert "No covariance was given" in text
    # a reason per sensor (jaxcal fleet's column) is shown beside its status
    columns["reason"] = np.array(["", "", "", "", "residuals not finite"])
    write_report(path, sensors=np.arange(sensors), t_u=t_u, t_c=t_c, fit=columns, model="linear", solver="lm")
    assert _read(path)[1].body("unfitted") == [["4", "nonfinite", "residuals not finite"]]


def test_a_function_model_shown_by_its_source(tmp_path, fleet):
    pytest.importorskip("matplotlib")

    def offset_gain(t_u, gain, offset):
        return gain * t_u + offset  # gain < 1 & offset < 0

    fit = calibrate(fleet["t_u"][:4], fleet["t_c"][:4], mask=fleet["mask"][:4], model=offset_gain,
                    params=[0.5, -17.0])
    path = tmp_path / "function.html"
    write_report(path, sensors=fleet["sensors"][:4], t_u=fleet["t_u"][:4], t_c=fleet["t_c"][:4],
                 mask=fleet["mask"][:4], fit=fit, model=offset_gain, solver="lm", title="Gains & <offsets>")
    text, parsed = _read(path)
    described = {row[0]: row[1] for row in parsed.tables["fitted"]}
    assert "return gain * t_u + offset  # gain < 1 & offset < 0" in described["model's formula"]
    assert described["params"] == "gain, offset"
    assert "<title>Gains &amp; &lt;offsets&gt;</title>" in text


def test_written_atomically_with_an_ordinary_mode(tmp_path, fleet):
    pytest.importorskip("matplotlib")
    saved = os.umask(0o027)
    try:
        path = tmp_path / "mode.html"
        write_report(path, **fleet, solver="ls", worst=1)
    finally:
        os.umask(saved)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~0o027
    assert sorted(os.listdir(tmp_path)) == ["mode.html"]


@pytest.mark.slow
def test_a_large_fleet_stays_small(tmp_path):
    """100,000 sensors are histograms: the page's text is that of 1,000 sensors but for the counts in
    it, and the whole page stays under 1 MB."""
    pytest.importorskip("matplotlib")
    rng = np.random.default_rng(3)

    def page_of(sensors: int) -> tuple[str, Page, int]:
        t_u = np.tile(np.linspace(20.0, 90.0, 6), (sensors, 1))
        columns = {"params": np.stack([rng.normal(0.54, 0.01, sensors), rng.normal(-17.3, 0.3, sensors)], 1),
                   "stderr": rng.uniform(0.001, 0.01, (sensors, 2)), "residual_sd": rng.uniform(0.1, 1.0, sensors),
                   "dof": np.full(sensors, 4), "status": np.where(np.arange(sensors) % 7 == 0, 3, 0),
                   "cov": np.tile(np.diag([1e-5, 1e-2]), (sensors, 1, 1))}
        columns["params"][columns["status"] == 3] = np.nan
        path = tmp_path / f"{sensors}.html"
        write_report(path, sensors=np.arange(sensors), t_u=t_u, t_c=0.54 * t_u - 17.3, fit=columns, solver="ls")
        text, parsed = _read(path)
        return text, parsed, path.stat().st_size

    small_text, small, _ = page_of(1_000)
    text, large, size = page_of(100_000)
    assert len(large.body("unfitted")) == MAX_LISTED
    assert len(large.images) == len(small.images) == 2
    for page_text, parsed in ((small_text, small), (text, large)):
        for src in parsed.images:
            page_text = page_text.replace(src, "")
        parsed.bare = len(page_text)
    # the same page but for numbers: 100x the sensors adds at most a few digits to each number shown
    assert large.bare - small.bare < 2_000
    assert size < 1_000_000


def test_refused_input(tmp_path, fleet):
    pytest.importorskip("matplotlib")
    path = tmp_path / "bad.html"
    with pytest.raises(ValueError, match=r"^level: "):
        write_report(path, **fleet, solver="ls", level=1.5)
    with pytest.raises(ValueError, match=r"^sensors: "):
        write_report(path, **{**fleet, "sensors": fleet["sensors"][:3]}, solver="ls")
    with pytest.raises(ValueError, match=r"^fit: has no status$"):
        write_report(path, **{**fleet, "fit": {"params": np.zeros((40, 2)), "stderr": np.zeros((40, 2)),
                                             "residual_sd": np.zeros(40), "dof": np.zeros(40, int)}}, solver="ls")
    with pytest.raises(ValueError, match=r"^fit: unknown status 'done'"):
        write_report(path, **{**fleet, "fit": {**fleet["fit"]._asdict(), "status": np.array(["done"] * 40)}},
                     solver="ls")
    assert not os.listdir(tmp_path)


def test_without_matplotlib(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib then raises ImportError
    fit = calibrate(data.t_u, data.t_c)
    with pytest.raises(ImportError, match=r"^write_report needs matplotlib: pip install 'jaxcal\[plot\]'$"):
        write_report(tmp_path / "r.html", sensors="book", t_u=data.t_u, t_c=data.t_c, fit=fit, solver="ls")
    assert not os.listdir(tmp_path)
