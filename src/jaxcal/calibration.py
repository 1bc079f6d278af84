"""Saved calibrations: what a fit found, stored so that readings can be converted later.

A calibration file is JSON: the params, the model, the input scale, the final loss, whether the
fit diverged (and at which epoch), the settings of the run, a fingerprint of the data it was
fitted on, and the jaxcal version; since format 3 also the solver that fitted it and the params'
uncertainty: their covariance, standard errors, the degrees of freedom and the residual standard
deviation (for gradient descent computed at its final params, by :func:`jaxcal.calibrate`'s
formulas). Loading checks every field and refuses a corrupt, incomplete or incompatible file with
one line; a calibration whose fit diverged loads (it is the record of that run) but converts
nothing. Files of formats 1 and 2 are still read (their uncertainty unknown: ``None``). The model is
a name jaxcal knows (``linear``) or an expression in ``t_u`` (``b1*(1-exp(-b2*t_u))``), stored as
its text and read back by :mod:`jaxcal.expression` (never run as Python).

>>> cal = Calibration(params=(5.3671, -17.3012), model="linear", scale=0.1, loss=2.93,
...                   settings={}, data_fingerprint="", jaxcal_version="0.1.0")
>>> [round(float(c), 2) for c in cal.predict([35.7, 81.9])]
[1.86, 26.66]
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ._checks import MAX_EPOCHS, InputError, InvalidInput
from ._files import write_atomic
from .core import MODELS, ModelSpec, resolve_model

__all__ = ["FORMAT", "FORMAT_1", "FORMAT_2", "Calibration", "fingerprint", "load_calibration", "save_calibration"]

#: The file format's name and version, as written; a file with another is refused, except
#: :data:`FORMAT_2` and :data:`FORMAT_1` files, which are still read.
FORMAT = "jaxcal-calibration/3"

#: The second format: no solver and no uncertainty (every such file was fitted by gradient descent).
FORMAT_2 = "jaxcal-calibration/2"

#: The first format: no ``diverged`` fields either (its writer kept them in ``settings``).
FORMAT_1 = "jaxcal-calibration/1"

#: The fields each format's writer always wrote, besides ``format``: a file without one of them
#: was not written by jaxcal whole, and is refused rather than given a default.
_FIELDS_1 = ("params", "model", "scale", "loss", "settings", "data_fingerprint", "jaxcal_version")
_FIELDS_2 = (*_FIELDS_1, "diverged", "diverged_at")
_FIELDS = {FORMAT: (*_FIELDS_2, "solver", "cov", "stderr", "dof", "residual_sd"), FORMAT_2: _FIELDS_2,
           FORMAT_1: _FIELDS_1}


def fingerprint(t_u: Any, t_c: Any) -> str:
    """SHA-256 of the readings (as float64 little-endian), to tell which data a fit came from."""
    digest = hashlib.sha256()
    for values in (t_u, t_c):
        digest.update(np.asarray(values, "<f8").tobytes())
    return "sha256:" + digest.hexdigest()


@dataclass(frozen=True)
class Calibration:
    """A fitted thermometer: ``t_c = model(scale * t_u, *params)``, ``model`` a name of
    :data:`jaxcal.MODELS` or an expression in ``t_u`` (its text).

    ``diverged`` is also set when ``params`` or ``loss`` is not finite: such a fit determined
    nothing. ``diverged_at`` is the epoch at which the loss stopped being finite, where known.
    ``solver`` names what fitted it (``"gd"``, the book's gradient descent, or a key of
    :data:`jaxcal.solvers.SOLVERS`). ``cov`` (``k x k``), ``stderr`` (``k``), ``dof`` and
    ``residual_sd`` are the params' uncertainty, in the units of the scaled readings the params
    apply to (NaN where undefined, e.g. ``dof`` 0); ``None`` where not known (a file of format 1 or 2).
    """

    params: tuple[float, ...]
    model: str
    scale: float
    loss: float
    settings: dict[str, Any] = field(default_factory=dict)
    data_fingerprint: str = ""
    jaxcal_version: str = ""
    diverged: bool = False
    diverged_at: int | None = None
    solver: str = "gd"
    cov: tuple[tuple[float, ...], ...] | None = None
    stderr: tuple[float, ...] | None = None
    dof: int | None = None
    residual_sd: float | None = None

    def __post_init__(self) -> None:
        # A fit that overflowed is diverged whatever its maker said, so that no caller converts with it.
        if not (math.isfinite(self.loss) and all(math.isfinite(p) for p in self.params)):
            object.__setattr__(self, "diverged", True)

    @property
    def refusal(self) -> str | None:
        """Why this calibration converts no reading (its fit diverged), or None when it converts.

        Returns:
          One line saying at which epoch the fit diverged, where known, and what to do.
        """
        if not self.diverged:
            return None
        if self.solver != "gd":
            return (f"its fit diverged (--solver {self.solver} found no finite params), so it converts nothing; "
                    "check the readings, or fit with another --solver")
        at = f" at epoch {self.diverged_at}" if self.diverged_at is not None else ""
        return (f"its fit diverged{at}, so it converts nothing; fit again with a smaller learning rate or input "
                "scale (jaxcal train --lr, --scale; the book's --scale is 0.1)")

    def predict(self, t_u: Any) -> np.ndarray:
        """Convert raw readings to Celsius (float64), applying the stored input scale.

        Raises:
          ValueError: the calibration's fit diverged (see :attr:`refusal`), or a reading or its
            conversion is not finite.
        """
        if self.refusal is not None:
            raise InvalidInput("calibration", self.refusal)
        readings = np.asarray(t_u, np.float64)
        if not np.all(np.isfinite(readings)):
            raise InvalidInput("t_u: readings to convert must be finite numbers")
        # NumPy float64 in, float64 out: a named model and an expression alike (jaxcal.expression)
        with np.errstate(over="ignore", invalid="ignore"):
            celsius = np.asarray(_model(self.model).fn(self.scale * readings, *self.params), np.float64)
        if not np.all(np.isfinite(celsius)):
            raise InvalidInput("t_u: a converted reading is not finite (a reading too large for this calibration)")
        return celsius

    def to_dict(self) -> dict[str, Any]:
        """The JSON object (a non-finite number, from a diverged fit or an undefined uncertainty, is
        written as null)."""
        return {"format": FORMAT, **asdict(self), "params": [_or_null(p) for p in self.params],
                "loss": _or_null(self.loss), "diverged": bool(self.diverged),
                "diverged_at": None if self.diverged_at is None else int(self.diverged_at),
                "cov": None if self.cov is None else [[_or_null(c) for c in row] for row in self.cov],
                "stderr": None if self.stderr is None else [_or_null(s) for s in self.stderr],
                "dof": None if self.dof is None else int(self.dof),
                "residual_sd": None if self.residual_sd is None else _or_null(self.residual_sd)}


def _model(model: str) -> ModelSpec:
    """A calibration's model: a name jaxcal knows, or an expression in ``t_u``."""
    return MODELS[model] if model in MODELS else resolve_model(model)


def _or_null(value: float) -> float | None:
    # JSON has no NaN or Infinity: strict readers refuse Python's tokens for them
    return float(value) if math.isfinite(value) else None


def save_calibration(path: str | os.PathLike[str], calibration: Calibration, name: str = "path") -> None:
    """Write ``calibration`` as JSON, atomically (a temporary file renamed into place)."""
    write_atomic(path, json.dumps(calibration.to_dict(), indent=1) + "\n", name=name)


def _finite_number(value: Any) -> bool:
    """A JSON number that is a finite float64 (a 400-digit integer is not)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def load_calibration(path: str | os.PathLike[str]) -> Calibration:
    """Read and check a calibration file.

    Raises:
      ValueError: one line naming the file and what is wrong with it.
    """
    path = Path(path)
    if not path.is_file():
        raise InvalidInput(f"{path}: {'is a directory' if path.is_dir() else 'no such file'}; "
                           "expected a calibration saved by 'jaxcal train --save'")
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError, ValueError):  # ValueError: a 5000-digit int
        raise InvalidInput(f"{path}: not a calibration file (not valid JSON); save one with 'jaxcal train --save'"
                           ) from None
    found = content.get("format") if isinstance(content, dict) else None
    if not isinstance(found, str) or found not in _FIELDS:
        raise InvalidInput(f"{path}: not a {FORMAT} file (format: {_bounded(found)}); this jaxcal reads "
                           f"{FORMAT}, {FORMAT_2} and {FORMAT_1}")
    missing = [key for key in _FIELDS[found] if key not in content]
    if missing:
        raise InvalidInput(f"{path}: incomplete calibration, missing {', '.join(missing)}")
    model = content["model"]
    if not isinstance(model, str) or (model not in MODELS and model.strip().isidentifier()):
        raise InvalidInput(f"{path}: unknown model {_bounded(model)}; this jaxcal knows {', '.join(MODELS)}, and "
                           "expressions in t_u")
    try:
        spec = _model(model)
    except InputError as error:  # an expression this jaxcal cannot read: the parser's own words
        raise InvalidInput(f"{path}: model: {error.problem}") from None
    params = content["params"]
    named = model if model in MODELS else _bounded(model)
    # null: a param a diverged fit did not determine (written so by to_dict)
    if (not isinstance(params, list) or len(params) != spec.n_params
            or not all(p is None or _finite_number(p) for p in params)):
        raise InvalidInput(f"{path}: params must be {spec.n_params} finite numbers for the {named} model")
    scale = content["scale"]
    if not _finite_number(scale) or scale == 0:
        raise InvalidInput(f"{path}: scale must be a finite nonzero number")
    loss = content["loss"]
    if loss is not None and not _finite_number(loss):
        raise InvalidInput(f"{path}: loss must be a finite number (or null)")
    settings = content["settings"]
    if not isinstance(settings, dict):
        raise InvalidInput(f"{path}: settings must be an object")
    for key in ("data_fingerprint", "jaxcal_version"):
        if not isinstance(content[key], str):
            raise InvalidInput(f"{path}: {key} must be a string")
    if found == FORMAT_1:
        # format 1 kept a run's divergence among its settings (train --save wrote both keys)
        diverged = settings.get("diverged") is True
        diverged_at = settings.get("epochs_run") if diverged else None
        if not (isinstance(diverged_at, int) and not isinstance(diverged_at, bool) and diverged_at > 0):
            diverged_at = None
    else:
        diverged, diverged_at = content["diverged"], content["diverged_at"]
        if not isinstance(diverged, bool):
            raise InvalidInput(f"{path}: diverged must be true or false")
        if diverged_at is not None and not (isinstance(diverged_at, int) and not isinstance(diverged_at, bool)
                                            and 0 < diverged_at <= MAX_EPOCHS and diverged):
            raise InvalidInput(f"{path}: diverged_at must be null, or the epoch (1 to {MAX_EPOCHS}) at which a "
                               "diverged fit's loss stopped being finite")
    uncertainty = _uncertainty(path, content, len(params)) if found == FORMAT else {}
    return Calibration(
        params=tuple(math.nan if p is None else float(p) for p in params), model=model, scale=float(scale),
        loss=math.inf if loss is None else float(loss), settings=dict(settings),
        data_fingerprint=content["data_fingerprint"], jaxcal_version=content["jaxcal_version"],
        diverged=diverged, diverged_at=diverged_at, **uncertainty,
    )


def _numbers(values: Any, k: int) -> tuple[float, ...] | None:
    """``k`` JSON numbers or nulls (an undefined value, NaN) as floats, or ``None`` if they are not."""
    if not (isinstance(values, list) and len(values) == k and all(v is None or _finite_number(v) for v in values)):
        return None
    return tuple(math.nan if v is None else float(v) for v in values)


def _uncertainty(path: Path, content: dict[str, Any], k: int) -> dict[str, Any]:
    """The solver and uncertainty fields of a format-3 file, checked (each may be null: not known)."""
    solver = content["solver"]
    if not (isinstance(solver, str) and solver.isidentifier() and len(solver) <= 40):
        raise InvalidInput(f"{path}: solver must be a solver's short name (gd, ls, lm), got {_bounded(solver)}")
    cov, stderr = content["cov"], content["stderr"]
    if cov is not None:
        rows = [_numbers(row, k) for row in cov] if isinstance(cov, list) and len(cov) == k else [None]
        if any(row is None for row in rows):
            raise InvalidInput(f"{path}: cov must be {k} rows of {k} numbers (or null)")
        cov = tuple(rows)
    if stderr is not None:
        stderr = _numbers(stderr, k)
        if stderr is None:
            raise InvalidInput(f"{path}: stderr must be {k} numbers (or null)")
    dof = content["dof"]
    if dof is not None and not (isinstance(dof, int) and not isinstance(dof, bool) and 0 <= dof <= MAX_EPOCHS):
        raise InvalidInput(f"{path}: dof must be null or an integer >= 0 (the readings less the params)")
    residual_sd = content["residual_sd"]
    if residual_sd is not None and not (_finite_number(residual_sd) and residual_sd >= 0):
        raise InvalidInput(f"{path}: residual_sd must be null or a finite number >= 0")
    return {"solver": solver, "cov": cov, "stderr": stderr, "dof": dof,
            "residual_sd": None if residual_sd is None else float(residual_sd)}


def _bounded(value: Any, most: int = 80) -> str:
    """``repr`` of a value read from a file, cut to ``most`` characters for a one-line message."""
    text = repr(value)
    return text if len(text) <= most else text[:most - 3] + "..."
