"""Solvers as values: each a small pytree with ``init``, ``step`` and ``terminate``, run by one loop.

:class:`LeastSquares` solves a model linear in its params in one step; :class:`LevenbergMarquardt`
fits any JAX model. Pass one to :func:`jaxcal.calibrate` as ``solver=``.
"""

from __future__ import annotations

from ._base import STATUS as STATUS
from .least_squares import LeastSquares as LeastSquares
from .levenberg_marquardt import LevenbergMarquardt as LevenbergMarquardt

__all__ = ["SOLVERS", "STATUS", "LeastSquares", "LevenbergMarquardt"]

#: The solvers by the short name the command line's ``--solver`` takes, each with a one-line summary
#: (the CLI's choices and help come from this table).
SOLVERS: dict[str, tuple[type, str]] = {
    "ls": (LeastSquares, "least squares in one step, for a model linear in its params"),
    "lm": (LevenbergMarquardt, "Levenberg-Marquardt, for any model"),
}
