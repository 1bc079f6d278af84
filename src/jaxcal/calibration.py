"""Saved calibrations: what a fit found, stored so that readings can be converted later.

A calibration file is JSON: the params, the model, the input scale, the final loss, the
settings of the run, a fingerprint of the data it was fitted on, and the jaxcal version. Loading
checks every field and refuses a corrupt, incomplete or incompatible file with one line.

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

from ._checks import InvalidInput
from ._files import write_atomic
from .core import MODELS

__all__ = ["FORMAT", "Calibration", "fingerprint", "load_calibration", "save_calibration"]

#: The file format's name and version; a file with another is refused.
FORMAT = "jaxcal-calibration/1"


def fingerprint(t_u: Any, t_c: Any) -> str:
    """SHA-256 of the readings (as float64 little-endian), to tell which data a fit came from."""
    digest = hashlib.sha256()
    for values in (t_u, t_c):
        digest.update(np.asarray(values, "<f8").tobytes())
    return "sha256:" + digest.hexdigest()


@dataclass(frozen=True)
class Calibration:
    """A fitted thermometer: ``t_c = model(scale * t_u, *params)``."""

    params: tuple[float, ...]
    model: str
    scale: float
    loss: float
    settings: dict[str, Any] = field(default_factory=dict)
    data_fingerprint: str = ""
    jaxcal_version: str = ""

    def predict(self, t_u: Any) -> np.ndarray:
        """Convert raw readings to Celsius (float64), applying the stored input scale."""
        readings = np.asarray(t_u, np.float64)
        if not np.all(np.isfinite(readings)):
            raise InvalidInput("t_u: readings to convert must be finite numbers")
        with np.errstate(over="ignore", invalid="ignore"):
            celsius = np.asarray(MODELS[self.model].fn(self.scale * readings, *self.params), np.float64)
        if not np.all(np.isfinite(celsius)):
            raise InvalidInput("t_u: a converted reading is not finite (a reading too large for this calibration)")
        return celsius

    def to_dict(self) -> dict[str, Any]:
        """The JSON object (a non-finite loss, from a diverged fit, is written as null)."""
        return {"format": FORMAT, **asdict(self), "params": list(self.params),
                "loss": self.loss if math.isfinite(self.loss) else None}


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
    if not isinstance(content, dict) or content.get("format") != FORMAT:
        found = content.get("format") if isinstance(content, dict) else None
        raise InvalidInput(f"{path}: not a {FORMAT} file (format: {found!r})")
    missing = [key for key in ("params", "model", "scale", "loss") if key not in content]
    if missing:
        raise InvalidInput(f"{path}: incomplete calibration, missing {', '.join(missing)}")
    model = content["model"]
    if not isinstance(model, str) or model not in MODELS:
        raise InvalidInput(f"{path}: unknown model {model!r}; this jaxcal knows {', '.join(MODELS)}")
    params = content["params"]
    if (not isinstance(params, list) or len(params) != MODELS[model].n_params
            or not all(_finite_number(p) for p in params)):
        raise InvalidInput(f"{path}: params must be {MODELS[model].n_params} finite numbers for the {model} model")
    scale = content["scale"]
    if not _finite_number(scale) or scale == 0:
        raise InvalidInput(f"{path}: scale must be a finite nonzero number")
    loss = content["loss"]
    if loss is not None and not _finite_number(loss):
        raise InvalidInput(f"{path}: loss must be a finite number (or null)")
    if not isinstance(content.get("settings") or {}, dict):
        raise InvalidInput(f"{path}: settings must be an object")
    return Calibration(
        params=tuple(float(p) for p in params), model=model, scale=float(scale),
        loss=float("inf") if loss is None else float(loss), settings=dict(content.get("settings") or {}),
        data_fingerprint=str(content.get("data_fingerprint", "")),
        jaxcal_version=str(content.get("jaxcal_version", "")),
    )
