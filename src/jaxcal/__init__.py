"""jaxcal: the thermometer calibration of "Deep Learning with PyTorch", chapter 5, in JAX.

Pure model and loss, gradients by ``jax.grad``, an explicit training step and a training loop
compiled into one XLA program, with parity against the torch reference.

The public names are re-exported here, each once (``from .x import f as f``), from the modules
that define them (see ``docs/architecture.md``). The command line, file formats and plotting
are not imported here.
"""

from __future__ import annotations

from . import data as data
from . import evaluate as evaluate
from . import exact as exact
from . import solvers as solvers
from . import updates as updates
from ._checks import InputError as InputError
from .calibrate import Calibrated as Calibrated
from .calibrate import calibrate as calibrate
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

__version__ = "0.2.0"
