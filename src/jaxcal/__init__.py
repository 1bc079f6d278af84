"""jaxcal: the thermometer calibration of "Deep Learning with PyTorch", chapter 5, in JAX.

Pure model and loss, gradients by ``jax.grad``, an explicit training step and a training loop
compiled into one XLA program, with parity against the torch reference.

The public names are re-exported here from the modules that define them (see
``docs/architecture.md``). They are imported on first use (PEP 562), so that ``import jaxcal``
costs nothing until one is needed: the command line installs its interrupt handling before JAX
is loaded.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.2.0"

# public name -> the module that defines it
_EXPORTS = {
    "InputError": "_checks",
    "Calibration": "calibration",
    "load_calibration": "calibration",
    "save_calibration": "calibration",
    "MODELS": "core",
    "ModelSpec": "core",
    "loss_and_grad": "core",
    "loss_fn": "core",
    "model": "core",
    "objective": "core",
    "quadratic_model": "core",
    "Evaluation": "evaluate",
    "fit_fleet": "fleet",
    "least_squares": "fleet",
    "History": "loop",
    "TrainResult": "loop",
    "fit": "loop",
    "sweep": "sweeps",
    "optax_step": "training",
    "sgd_step": "training",
    "training_loop": "training",
    "Update": "updates",
}

# the modules a user composes pieces from: jaxcal.evaluate.autograd(), jaxcal.updates.plain(), ...
_MODULES = ("data", "evaluate", "exact", "updates")

__all__ = ["__version__", *_MODULES, *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        return importlib.import_module(f".{name}", __name__)
    if name not in _EXPORTS:
        raise AttributeError(f"module 'jaxcal' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:
    from . import data as data
    from . import evaluate as evaluate
    from . import exact as exact
    from . import updates as updates
    from ._checks import InputError as InputError
    from .calibration import Calibration as Calibration
    from .calibration import load_calibration as load_calibration
    from .calibration import save_calibration as save_calibration
    from .core import MODELS as MODELS
    from .core import ModelSpec as ModelSpec
    from .core import loss_and_grad as loss_and_grad
    from .core import loss_fn as loss_fn
    from .core import model as model
    from .core import objective as objective
    from .core import quadratic_model as quadratic_model
    from .evaluate import Evaluation as Evaluation
    from .fleet import fit_fleet as fit_fleet
    from .fleet import least_squares as least_squares
    from .loop import History as History
    from .loop import TrainResult as TrainResult
    from .loop import fit as fit
    from .sweeps import sweep as sweep
    from .training import optax_step as optax_step
    from .training import sgd_step as sgd_step
    from .training import training_loop as training_loop
    from .updates import Update as Update
