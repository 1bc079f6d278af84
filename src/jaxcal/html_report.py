"""A fleet's calibration as one self-contained HTML page (the ``plot`` extra).

The page says what was fitted (a fingerprint of the readings, the model, the solver, the versions,
the date), how many fits ended with each status and which sensors have no calibration, how each
param, its standard error and the residual SD are distributed across the fleet, and the worst-fitting
sensors' readings with their fitted curve, prediction band and residuals. Everything is in the one
file: the figures are PNG images embedded as ``data:`` URIs, the style is inline, there is no script
and nothing is fetched. Its size does not grow with the fleet: a fleet is drawn as histograms, and the
table of sensors without a calibration is cut at :data:`MAX_LISTED` rows.

matplotlib is imported inside :func:`write_report`; the page is written atomically (see
:mod:`jaxcal._files`).
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import html
import inspect
import io
import math
import os
import platform
import textwrap
from collections.abc import Mapping
from typing import Any

import numpy as np

from ._checks import InvalidInput, InvalidType, shown
from .solvers._base import CONVERGED, MAX_STEPS, NONFINITE, STATUS, UNDETERMINED

__all__ = ["FEWEST_DRAWN", "MAX_LISTED", "data_fingerprint", "worst_sensors", "write_report"]

#: The most sensors without a calibration the page lists by id; a line says how many more there are.
MAX_LISTED = 50

#: The fewest sensors with a calibration whose distributions are drawn (fewer: the summary table alone).
FEWEST_DRAWN = 5

#: What each status means, in the words of :data:`jaxcal.solvers.STATUS`'s documentation.
_MEANING = {
    CONVERGED: "the fit met its stopping test",
    MAX_STEPS: "the solver ran out of steps; its params are kept (gradient descent always ends so)",
    NONFINITE: "the residuals or the Jacobian became NaN or infinite: no params",
    UNDETERMINED: "the data do not determine the params (a rank-deficient Jacobian): no params",
}

_DPI = 100
_BLUE, _RED, _GREY = "#1f77b4", "#d62728", "0.45"


def write_report(path: str | os.PathLike[str], *, sensors: Any, t_u: Any, t_c: Any, mask: Any = None, fit: Any,
                 model: Any = "linear", solver: Any, param_names: Any = None, title: str | None = None,
                 worst: int = 6, level: float = 0.95, meta: Mapping[str, Any] | None = None) -> None:
    """Write a fleet's calibration report: one HTML page with its figures inside it.

    Args:
      path: the page to write (atomically; a new file gets the mode ``open()`` would give it).
      sensors: the sensors' ids, ``(sensors,)``, any values (shown as text).
      t_u: the readings, padded ``(sensors, n)``; ``(n,)`` for one sensor.
      t_c: the true values, the same shape.
      mask: which entries are readings, bool of ``t_u``'s shape; ``None``: all of them.
      fit: the fleet's :class:`~jaxcal.calibrate.Calibrated`, or a mapping with its fields as arrays:
        ``params``, ``stderr``, ``residual_sd``, ``dof`` and ``status`` (codes of
        :data:`jaxcal.solvers.STATUS` or their names) are needed; ``cov`` draws the prediction bands
        (without it the worst sensors are drawn without one); ``reason`` (text per sensor, as
        ``jaxcal fleet``'s results have) says why each sensor without a calibration has none.
      model: the model fitted: a name of :data:`jaxcal.MODELS`, a :class:`~jaxcal.ModelSpec` or the
        function ``model(t_u, *params)``.
      solver: what fitted it, as text (``"lm"``) or a solver value.
      param_names: the params' names; ``None``: ``fit.param_names``, else the model's.
      title: the page's heading; ``None``: "Calibration report".
      worst: how many of the worst-fitting sensors (largest residual SD among those with params) to draw.
      level: the prediction band's coverage, between 0 and 1.
      meta: more lines for the "What was fitted" table (the data file, the operator...), shown as text.

    Raises:
      ValueError, TypeError: one line naming the argument that cannot be used.
      ImportError: matplotlib is not installed (the ``plot`` extra).
    """
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ImportError("write_report needs matplotlib: pip install 'jaxcal[plot]'") from None
    from ._files import write_atomic

    data = _inputs(sensors, t_u, t_c, mask, fit, model, param_names)
    if isinstance(worst, bool) or not isinstance(worst, (int, np.integer)) or worst < 0:
        raise InvalidInput(f"worst: must be a whole number >= 0, got {shown(worst)}")
    if isinstance(level, bool) or not isinstance(level, (int, float, np.floating)) or not 0 < float(level) < 1:
        raise InvalidInput(f"level: must be a number between 0 and 1, got {shown(level)}")
    if meta is not None and not isinstance(meta, Mapping):
        raise InvalidType(f"meta: must be a mapping of names to values, got {shown(meta)}")
    if title is not None and not isinstance(title, str):
        raise InvalidType(f"title: must be text, got {shown(title)}")
    solver_text = solver if isinstance(solver, str) else repr(solver)
    page = _page(data, solver_text, title or "Calibration report", int(worst), float(level), dict(meta or {}))
    write_atomic(path, page, name="path")


# --- the inputs, checked and on the host -------------------------------------------------------------------


def _inputs(sensors: Any, t_u: Any, t_c: Any, mask: Any, fit: Any, model: Any, param_names: Any) -> dict[str, Any]:
    from .core import ModelSpec, resolve_model

    spec = model if isinstance(model, ModelSpec) else resolve_model(model)
    t_u, t_c = np.asarray(t_u), np.asarray(t_c)
    for name, values in (("t_u", t_u), ("t_c", t_c)):
        if values.dtype.kind != "f":
            raise InvalidType(f"{name}: must be a floating-point array, got {shown(values)}")
    single = t_u.ndim == 1
    if single:
        t_u, t_c = t_u[None], t_c[None]
        mask = None if mask is None else np.asarray(mask)[None]
    if t_u.ndim != 2 or t_u.shape[1] < 1:
        raise InvalidInput(f"t_u: must be (sensors, n) readings, got shape {t_u.shape}")
    if t_c.shape != t_u.shape:
        raise InvalidInput(f"t_c: must have t_u's shape {t_u.shape}, got {t_c.shape}")
    count, n = t_u.shape
    if mask is None:
        mask = np.ones(t_u.shape, bool)
        masked = False
    else:
        mask = np.asarray(mask)
        if mask.dtype != np.bool_ or mask.shape != t_u.shape:
            raise InvalidInput(f"mask: must be bool of t_u's shape {t_u.shape}, got {shown(mask)}")
        masked = True
    ids = np.asarray(sensors)
    ids = ids[None] if ids.ndim == 0 else ids
    if ids.dtype.kind == "S":  # bytes, as some tables store text
        ids = np.char.decode(ids, "utf-8", "replace")
    if ids.shape != (count,):
        raise InvalidInput(f"sensors: must be one id per sensor, {count}, got shape {ids.shape}")

    fields = _fields(fit, count)
    k = fields["params"].shape[1]
    given = fit.get("param_names") if isinstance(fit, Mapping) else getattr(fit, "param_names", None)
    names = param_names if param_names is not None else given or spec.param_names
    names = tuple(str(name) for name in (names or (f"p{j}" for j in range(k))))
    if len(names) != k:
        raise InvalidInput(f"param_names: must name the {k} params, got {len(names)}: {', '.join(names)}")
    return {"ids": [str(i) for i in ids.tolist()], "t_u": t_u, "t_c": t_c, "mask": mask, "masked": masked,
            "spec": spec, "names": names, "sensors": count, "n": n, **fields}


def _fields(fit: Any, count: int) -> dict[str, np.ndarray]:
    """The fit's arrays on the host, each with the leading ``sensors`` axis (a single fit's given one),
    shapes checked."""
    def get(key: str) -> Any:
        if isinstance(fit, Mapping):
            return fit.get(key)
        return getattr(fit, key, None)

    if not isinstance(fit, Mapping) and get("params") is None:
        raise InvalidType(f"fit: must be a jaxcal.calibrate.Calibrated or a mapping of its fields, got {shown(fit)}")
    out: dict[str, np.ndarray] = {}
    single = np.ndim(get("params")) == 1
    for key in ("params", "stderr", "residual_sd", "dof", "status", "cov", "reason"):
        value = get(key)
        if value is None:
            if key in ("cov", "reason"):
                continue
            raise InvalidInput(f"fit: has no {key}")
        value = np.asarray(value)
        if single and value.ndim == {"params": 1, "stderr": 1, "cov": 2}.get(key, 0):
            value = value[None]
        out[key] = value
    params = out["params"]
    if params.ndim != 2 or params.shape[0] != count:
        raise InvalidInput(f"fit: params must be (sensors, k) for {count} sensors, got shape {params.shape}")
    k = params.shape[1]
    shapes = {"stderr": (count, k), "residual_sd": (count,), "dof": (count,), "status": (count,),
              "cov": (count, k, k), "reason": (count,)}
    for key, shape in shapes.items():
        if key in out and out[key].shape != shape:
            raise InvalidInput(f"fit: {key} must have shape {shape}, got {out[key].shape}")
    status = out["status"]
    if status.dtype.kind in "UO":  # names, as fleet --out writes them
        unknown = sorted(set(status.tolist()) - set(STATUS))
        if unknown:
            raise InvalidInput(f"fit: unknown status {unknown[0]!r}; a status is one of {', '.join(STATUS)}")
        status = np.asarray([STATUS.index(s) for s in status.tolist()], np.int64).reshape(count)
    elif status.dtype.kind not in "iu" or (status.size and not ((status >= 0) & (status < len(STATUS))).all()):
        raise InvalidInput(f"fit: status must be codes 0 to {len(STATUS) - 1} of jaxcal.solvers.STATUS, "
                           f"got {shown(status)}")
    out["status"] = status.astype(np.int64)
    return out


def data_fingerprint(t_u: np.ndarray, t_c: np.ndarray, mask: np.ndarray | None) -> str:
    """SHA-256 of the readings as float64 little-endian, entries outside ``mask`` as 0 (padding may hold
    anything), then of the mask when there is one: without a mask this is
    :func:`jaxcal.calibration.fingerprint` of the same arrays."""
    digest = hashlib.sha256()
    for values in (t_u, t_c):
        values = np.asarray(values, "<f8")
        digest.update((values if mask is None else np.where(mask, values, 0.0)).tobytes())
    if mask is not None:
        digest.update(np.asarray(mask, np.uint8).tobytes())
    return "sha256:" + digest.hexdigest()


# --- what the page shows -------------------------------------------------------------------------------------


def _fitted(data: dict[str, Any]) -> np.ndarray:
    """The sensors with a calibration: status converged or max_steps, and finite params."""
    status = data["status"]
    return ((status == CONVERGED) | (status == MAX_STEPS)) & np.isfinite(data["params"]).all(axis=1)


def worst_sensors(residual_sd: np.ndarray, fitted: np.ndarray, worst: int) -> np.ndarray:
    """The indices of the ``worst`` fitted sensors with the largest finite residual SD, largest first
    (ties in input order).

    >>> worst_sensors(np.array([0.2, np.nan, 0.5, 0.9]), np.array([True, True, True, False]), 2).tolist()
    [2, 0]
    """
    rsd = np.asarray(residual_sd, np.float64)
    candidates = np.flatnonzero(fitted & np.isfinite(rsd))
    order = np.argsort(-rsd[candidates], kind="stable")
    return candidates[order[:worst]]


def _number(value: float) -> str:
    return f"{value:.6g}" if math.isfinite(value) else ("nan" if math.isnan(value) else str(value))


def _summary(values: np.ndarray) -> list[str]:
    """How many finite values, their median, 5th and 95th percentiles, min and max, as text."""
    finite = values[np.isfinite(values)]
    if not finite.size:
        return ["0", "", "", "", "", ""]
    stats = [*np.percentile(finite, [50, 5, 95]).tolist(), finite.min(), finite.max()]
    return [str(finite.size), *(_number(float(s)) for s in stats)]


def _shown_range(finite: np.ndarray) -> tuple[float, float]:
    """The range a histogram shows: every value, except those beyond 5 interquartile ranges from the
    quartiles (a few wild fits would otherwise squeeze the fleet into one bin); they are counted."""
    q1, q3 = np.percentile(finite, [25, 75])
    spread = q3 - q1
    lo, hi = float(finite.min()), float(finite.max())
    if spread > 0:
        lo, hi = max(lo, q1 - 5 * spread), min(hi, q3 + 5 * spread)
    return lo, hi


def _mpl(text: str, most: int = 40) -> str:
    """Text for a figure: cut to ``most`` characters, and its dollar signs literal (not mathtext)."""
    text = text if len(text) <= most else text[:most - 1] + "…"
    return text.replace("$", r"\$")


def _histogram(axis: Any, values: np.ndarray, label: str) -> None:
    values = np.asarray(values, np.float64)
    finite = values[np.isfinite(values)]
    axis.set_xlabel(_mpl(label))
    axis.set_ylabel("sensors")
    missing = values.size - finite.size
    if not finite.size:
        axis.text(0.5, 0.5, "no finite value", ha="center", va="center", transform=axis.transAxes)
        axis.set_title(_mpl(label))
        return
    lo, hi = _shown_range(finite)
    inside = finite[(finite >= lo) & (finite <= hi)]
    lo, hi = float(inside.min()), float(inside.max())  # the bins span what is drawn, not the fences
    if (inside == np.round(inside)).all() and hi - lo <= 60:  # whole numbers (dof): a bar each
        bins: Any = np.arange(lo - 0.5, hi + 1.5)
    else:
        bins = int(min(50, max(5, math.ceil(math.sqrt(inside.size)))))
    axis.hist(inside, bins=bins, range=(lo, hi) if hi > lo and isinstance(bins, int) else None, color=_BLUE)
    p5, p50, p95 = np.percentile(finite, [5, 50, 95])
    axis.axvline(p50, color=_RED, linewidth=1.2, label="median")
    axis.axvline(p5, color=_RED, linestyle="dashed", linewidth=0.9, label="5th, 95th percentile")
    axis.axvline(p95, color=_RED, linestyle="dashed", linewidth=0.9)
    axis.legend(fontsize=7, loc="best")
    notes = [f"{finite.size} sensors"]
    if finite.size > inside.size:
        far = finite.size - inside.size
        notes.append(f"{far} ({100 * far / finite.size:.2g}%) beyond 5 IQR, not drawn")
    if missing:
        notes.append(f"{missing} NaN")
    axis.set_title(_mpl(label, 30) + " (" + ", ".join(notes) + ")", fontsize=9)
    axis.ticklabel_format(axis="x", style="sci", scilimits=(-3, 4), useOffset=False)


def _png(figure: Any) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=_DPI)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _distributions(data: dict[str, Any], fitted: np.ndarray) -> str:
    from matplotlib.figure import Figure

    names = data["names"]
    rows = len(names) + 1
    figure = Figure(figsize=(11.0, 3.0 * rows), dpi=_DPI, layout="constrained")
    axes = np.asarray(figure.subplots(rows, 2)).reshape(rows, 2)
    for j, name in enumerate(names):
        _histogram(axes[j, 0], data["params"][fitted, j], name)
        _histogram(axes[j, 1], data["stderr"][fitted, j], f"standard error of {name}")
    _histogram(axes[-1, 0], data["residual_sd"][fitted], "residual SD")
    _histogram(axes[-1, 1], data["dof"][fitted].astype(np.float64), "degrees of freedom")
    return _png(figure)


def _worst_figure(data: dict[str, Any], chosen: np.ndarray, level: float) -> tuple[str, list[bool]]:
    """The chosen sensors, one row each: readings, fitted curve and prediction band; residuals."""
    from matplotlib.figure import Figure

    from .intervals import predict_table

    mask = data["mask"][chosen]
    t_u, t_c = data["t_u"][chosen].astype(np.float64), data["t_c"][chosen].astype(np.float64)
    lo = np.where(mask, t_u, np.inf).min(axis=1)
    hi = np.where(mask, t_u, -np.inf).max(axis=1)
    grid = lo[:, None] + (hi - lo)[:, None] * np.linspace(0.0, 1.0, 200)[None, :]
    params = data["params"][chosen]
    k = params.shape[1]
    cov = data["cov"][chosen] if "cov" in data else np.full((len(chosen), k, k), np.nan, params.dtype)
    xs = np.concatenate([grid, np.where(mask, t_u, lo[:, None])], axis=1)  # the curve and the readings, one call
    # every drawn sensor's curve and band in one program, each point through its sensor's calibration
    rows = np.repeat(np.arange(len(chosen)), xs.shape[1])
    band = predict_table(xs.astype(params.dtype).reshape(-1), rows, params, cov,
                         data["residual_sd"][chosen].astype(params.dtype), data["dof"][chosen],
                         model=data["spec"].fn, level=level, interval="prediction")
    t_p, low, high = (np.asarray(v, np.float64).reshape(xs.shape) for v in band)
    g = grid.shape[1]
    figure = Figure(figsize=(11.0, 0.5 + 2.9 * len(chosen)), dpi=_DPI, layout="constrained")
    axes = np.asarray(figure.subplots(len(chosen), 2)).reshape(len(chosen), 2)
    banded = []
    for row, i in enumerate(chosen.tolist()):
        left, right = axes[row]
        counted = mask[row]
        name = _mpl(data["ids"][i])
        has_band = bool(np.isfinite(low[row, :g]).all() and np.isfinite(high[row, :g]).all())
        banded.append(has_band)
        if has_band:
            left.fill_between(grid[row], low[row, :g], high[row, :g], color=_RED, alpha=0.15, linewidth=0,
                              label=f"{level:.4g} prediction band")
        left.plot(grid[row], t_p[row, :g], "-", color=_RED, linewidth=1.2, label="fitted curve")
        left.plot(t_u[row, counted], t_c[row, counted], "o", color=_BLUE, markersize=3.5, label="readings")
        left.set_title(f"#{row + 1}: sensor {name}", fontsize=9)
        left.set_xlabel("t_u")
        left.set_ylabel("t_c")
        fitted_at = t_p[row, g:][counted]
        residuals = t_c[row, counted] - fitted_at
        right.axhline(0.0, color=_GREY, linewidth=0.8)
        if has_band:  # the band about the curve: where a new reading's residual is expected
            right.fill_between(grid[row], low[row, :g] - t_p[row, :g], high[row, :g] - t_p[row, :g], color=_RED,
                               alpha=0.15, linewidth=0)
        right.plot(t_u[row, counted], residuals, "o", color=_BLUE, markersize=3.5)
        right.set_title(f"#{row + 1}: residuals (residual SD {_number(float(data['residual_sd'][i]))})", fontsize=9)
        right.set_xlabel("t_u")
        right.set_ylabel("t_c - t_p")
    # one legend for every panel, above them: inside a panel it hides readings
    handles, labels = axes[0, 0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside upper center", ncol=len(labels), fontsize=9)
    return _png(figure), banded


# --- the page ------------------------------------------------------------------------------------------------

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2em auto; max-width: 1150px;
       color: #222; line-height: 1.4; padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { font-size: 1.25em; margin-top: 1.8em;
  border-bottom: 1px solid #ccc; padding-bottom: 0.2em; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
td.id, code, pre { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; }
td.id { word-break: break-all; max-width: 30em; }
pre { background: #f6f6f6; padding: 0.6em; overflow-x: auto; font-size: 0.9em; margin: 0; }
img { max-width: 100%; height: auto; }
p.note { color: #555; font-size: 0.92em; }
.warn { color: #a40000; font-weight: 600; }
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _table(header: list[str], rows: list[list[str]], table_id: str, numeric: tuple[int, ...] = (),
           ids: tuple[int, ...] = ()) -> str:
    """An HTML table of escaped cells (``numeric`` columns right-aligned, ``ids`` in monospace)."""
    head = "".join(f"<th>{_e(h)}</th>" for h in header)

    def cell(c: int, text: str) -> str:
        css = ' class="n"' if c in numeric else ' class="id"' if c in ids else ""
        return f"<td{css}>{_e(text)}</td>"

    body = "\n".join("<tr>" + "".join(cell(c, text) for c, text in enumerate(row)) + "</tr>" for row in rows)
    return f'<table id="{table_id}">\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>'


def _model_text(spec: Any) -> tuple[str, str]:
    """The model's name and its formula: a named model's or an expression's ``t_p = ...`` (its
    :attr:`~jaxcal.core.ModelSpec.formula`; a spec named by a text jaxcal has no model of that name for,
    without a formula of its own, is an expression, its name the formula), else a function's source. A
    caller's function is named by its module and name where its spec names it not."""
    from .core import MODELS

    fn = spec.fn
    expression = spec.name is not None and spec.name not in MODELS and spec.formula in (None, spec.name)
    name = ("expression" if expression else spec.name
            or f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', type(fn).__name__)}")
    formula = spec.name if expression else spec.formula
    if formula is not None:
        return name, f"t_p = {formula}"
    try:
        source = textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError):
        return name, repr(fn)
    lines = source.splitlines()
    return name, "\n".join(lines[:40] + ([f"... ({len(lines) - 40} more lines)"] if len(lines) > 40 else []))


def _versions() -> str:
    import jax
    import matplotlib

    from . import __version__

    return (f"jaxcal {__version__}, jax {jax.__version__}, numpy {np.__version__}, "
            f"matplotlib {matplotlib.__version__}, Python {platform.python_version()}")


def _page(data: dict[str, Any], solver: str, title: str, worst: int, level: float, meta: dict[str, Any]) -> str:
    status, names, ids = data["status"], data["names"], data["ids"]
    fitted = _fitted(data)
    counted = data["mask"].sum(axis=1)
    model_name, model_text = _model_text(data["spec"])
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    fingerprint = data_fingerprint(data["t_u"], data["t_c"], data["mask"] if data["masked"] else None)
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
           f"<title>{_e(title)}</title>", f"<style>{_STYLE}</style>", "</head>", "<body>", f"<h1>{_e(title)}</h1>",
           f'<p class="note">{_e(when)}</p>']

    out.append("<h2>What was fitted</h2>")
    described = [["data fingerprint", fingerprint], ["sensors", str(data["sensors"])],
                 ["readings", f"{int(counted.sum())} (per sensor {int(counted.min())} to {int(counted.max())})"],
                 ["model", model_name], ["params", ", ".join(names)], ["solver", solver],
                 ["prediction band level", f"{level:.6g}"], ["software", _versions()], ["date", when]]
    described += [[str(key), str(value)] for key, value in meta.items()]
    rows = "\n".join(f"<tr><th>{_e(key)}</th><td>{_e(value)}</td></tr>" for key, value in described[:4])
    rows += f"\n<tr><th>model's formula</th><td><pre>{_e(model_text)}</pre></td></tr>\n"
    rows += "\n".join(f"<tr><th>{_e(key)}</th><td>{_e(value)}</td></tr>" for key, value in described[4:])
    out.append(f'<table id="fitted">\n<tbody>\n{rows}\n</tbody>\n</table>')
    out.append('<p class="note">The fingerprint is the SHA-256 of the readings t_u, t_c (float64, little-endian, '
               "padding as 0)" + (", then of the mask of readings" if data["masked"] else "") + ".</p>")

    out.append("<h2>Status of the fits</h2>")
    counts = np.bincount(status, minlength=len(STATUS))
    out.append(_table(["status", "sensors", "meaning"],
                      [[name, str(int(counts[code])), _MEANING[code]] for code, name in enumerate(STATUS)]
                      + [["total", str(int(status.size)), ""]], "status", numeric=(1,)))
    unfitted = np.flatnonzero(~fitted)
    if not unfitted.size:
        out.append("<p>Every sensor has a calibration.</p>")
    else:
        if not fitted.any():
            out.append('<p class="warn">No sensor has a calibration: there is nothing to summarise or draw.</p>')
        first = f", the first {MAX_LISTED} in input order" if unfitted.size > MAX_LISTED else ""
        out.append(f"<p>{unfitted.size} sensor{'s' if unfitted.size != 1 else ''} without a calibration "
                   f"(no finite params){first}:</p>")
        listed = unfitted[:MAX_LISTED]
        reasons = data.get("reason")
        if reasons is None:
            out.append(_table(["sensor", "status"], [[ids[i], STATUS[status[i]]] for i in listed.tolist()],
                              "unfitted", ids=(0,)))
        else:  # why each has none, where the fit says (jaxcal fleet's reason column)
            out.append(_table(["sensor", "status", "reason"],
                              [[ids[i], STATUS[status[i]], str(reasons[i])] for i in listed.tolist()],
                              "unfitted", ids=(0,)))
        if unfitted.size > MAX_LISTED:
            out.append(f'<p id="unfitted-more">and {unfitted.size - MAX_LISTED} more.</p>')

    if fitted.any():
        out.append("<h2>Across the fleet</h2>")
        have = int(fitted.sum())
        out.append(f"<p>The {have} sensor{'s' if have != 1 else ''} with a calibration (status converged or "
                   "max_steps).</p>")
        quantities = [(name, data["params"][fitted, j]) for j, name in enumerate(names)]
        quantities += [(f"standard error of {name}", data["stderr"][fitted, j]) for j, name in enumerate(names)]
        quantities += [("residual SD", data["residual_sd"][fitted]),
                       ("degrees of freedom", data["dof"][fitted].astype(np.float64))]
        out.append(_table(["quantity", "sensors with a value", "median", "5th percentile", "95th percentile", "min",
                           "max"], [[label, *_summary(np.asarray(v, np.float64))] for label, v in quantities],
                          "summary", numeric=(1, 2, 3, 4, 5, 6)))
        if have < FEWEST_DRAWN:
            out.append(f'<p class="note">No histograms: fewer than {FEWEST_DRAWN} sensors have a calibration.</p>')
        else:
            out.append('<p class="note">Each histogram: red line the median, dashed lines the 5th and 95th '
                       "percentiles; values beyond 5 interquartile ranges from the quartiles are counted in its "
                       "title, not drawn.</p>")
            out.append(f'<img id="distributions" alt="histograms of each param, its standard error, the residual SD '
                       f'and the degrees of freedom across the fleet" src="{_distributions(data, fitted)}">')

    chosen = worst_sensors(data["residual_sd"], fitted, worst)
    if chosen.size:
        out.append("<h2>Worst-fitting sensors</h2>")
        out.append(f"<p>The {chosen.size} sensor{'s' if chosen.size != 1 else ''} with a calibration and the largest "
                   "residual SD, largest first.</p>")
        header = ["#", "sensor", "residual SD", "dof", "readings", "status",
                  *(f"{name} ± standard error" for name in names)]
        rows = [[str(rank + 1), ids[i], _number(float(data["residual_sd"][i])), str(int(data["dof"][i])),
                 str(int(counted[i])), STATUS[status[i]],
                 *(f"{_number(float(data['params'][i, j]))} ± {_number(float(data['stderr'][i, j]))}"
                   for j in range(len(names)))] for rank, i in enumerate(chosen.tolist())]
        out.append(_table(header, rows, "worst", numeric=(0, 2, 3, 4), ids=(1,)))
        image, banded = _worst_figure(data, chosen, level)
        if "cov" not in data:
            out.append('<p class="note">No covariance was given: the sensors are drawn without a prediction band.</p>')
        else:
            out.append(f'<p class="note">Shaded: the {level:.6g} prediction band, where a new reading of the sensor is '
                       "expected to fall: the fitted curve ± the Student t quantile (the fit's dof) times "
                       "sqrt(g<sup>T</sup> cov g + residual SD<sup>2</sup>), g the gradient of the curve in the params "
                       "(jaxcal.intervals; for an unweighted fit: a weighted fit's residual SD is in units of sigma)."
                       + ("" if all(banded) else " A sensor without a band has no finite covariance or no dof.")
                       + "</p>")
        out.append(f'<img id="worst-figure" alt="the worst-fitting sensors: readings, fitted curve, prediction band '
                   f'and residuals" src="{image}">')
    out.append(f'<p class="note">Written by jaxcal ({_e(_versions())}).</p>')
    out += ["</body>", "</html>", ""]
    return "\n".join(out)
