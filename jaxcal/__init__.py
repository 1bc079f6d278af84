"""jaxcal: the thermometer calibration of "Deep Learning with PyTorch", chapter 5, in JAX.

Pure model and loss, gradients by ``jax.grad``, an explicit training step and a training loop
compiled into one XLA program, with parity against the torch reference.

The names below are imported on first use (PEP 562), so that ``import jaxcal`` costs nothing
until one is needed: the command line installs its interrupt handling before JAX is loaded.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> the module that defines it
_EXPORTS = {
    "InputError": "_checks",
    "Calibration": "calibration",
    "load_calibration": "calibration",
    "save_calibration": "calibration",
    "MODELS": "core",
    "loss_and_grad": "core",
    "loss_fn": "core",
    "model": "core",
    "objective": "core",
    "quadratic_model": "core",
    "FleetResult": "fleet",
    "SweepResult": "fleet",
    "fit_fleet": "fleet",
    "sweep": "fleet",
    "History": "training",
    "TrainResult": "training",
    "optax_step": "training",
    "sgd_step": "training",
    "training_loop": "training",
}

__all__ = ["__version__", "data", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name == "data":
        return importlib.import_module(".data", __name__)
    if name not in _EXPORTS:
        raise AttributeError(f"module 'jaxcal' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:
    from . import data as data
    from ._checks import InputError as InputError
    from .calibration import Calibration as Calibration
    from .calibration import load_calibration as load_calibration
    from .calibration import save_calibration as save_calibration
    from .core import MODELS as MODELS
    from .core import loss_and_grad as loss_and_grad
    from .core import loss_fn as loss_fn
    from .core import model as model
    from .core import objective as objective
    from .core import quadratic_model as quadratic_model
    from .fleet import FleetResult as FleetResult
    from .fleet import SweepResult as SweepResult
    from .fleet import fit_fleet as fit_fleet
    from .fleet import sweep as sweep
    from .training import History as History
    from .training import TrainResult as TrainResult
    from .training import optax_step as optax_step
    from .training import sgd_step as sgd_step
    from .training import training_loop as training_loop
