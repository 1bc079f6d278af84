"""Solvers as values: each a small pytree with ``init``, ``step`` and ``terminate``, run by one loop.

:class:`LeastSquares` solves a model linear in its params in one step; :class:`LevenbergMarquardt`
fits any JAX model; :class:`GradientDescent` is the book's method on its loss, the mean squared
residual, with the gradient by ``jax.grad`` (:class:`Autograd`) or the book's central differences
(:class:`FiniteDifference`); :class:`Optax` runs any optax optimiser on the same loss. Pass one to
:func:`jaxcal.calibrate` as ``solver=``.
"""

from __future__ import annotations

from ._base import STATUS as STATUS
from .gradient_descent import Autograd as Autograd
from .gradient_descent import FiniteDifference as FiniteDifference
from .gradient_descent import GradientDescent as GradientDescent
from .least_squares import LeastSquares as LeastSquares
from .levenberg_marquardt import LevenbergMarquardt as LevenbergMarquardt
from .optax_solver import Optax as Optax

__all__ = ["SOLVERS", "STATUS", "Autograd", "FiniteDifference", "GradientDescent", "LeastSquares",
           "LevenbergMarquardt", "Optax"]

#: The solvers by the short name the command line's ``--solver`` takes, each with a one-line summary
#: (the CLI's choices and help come from this table). :class:`Optax` has no name here: it needs an
#: optimiser.
SOLVERS: dict[str, tuple[type, str]] = {
    "ls": (LeastSquares, "least squares in one step, for a model linear in its params"),
    "lm": (LevenbergMarquardt, "Levenberg-Marquardt, for any model"),
    "gd": (GradientDescent, "gradient descent on the mean squared residual, the book's method"),
}
