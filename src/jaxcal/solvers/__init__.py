"""Solvers as values: each a small pytree with ``init``, ``step`` and ``terminate``, run by one loop.

:class:`LeastSquares` solves a model linear in its params in one step; :class:`LevenbergMarquardt`
fits any JAX model. Pass one to :func:`jaxcal.calibrate` as ``solver=``.
"""

from __future__ import annotations

from ._base import STATUS as STATUS
from .least_squares import LeastSquares as LeastSquares
from .levenberg_marquardt import LevenbergMarquardt as LevenbergMarquardt

__all__ = ["STATUS", "LeastSquares", "LevenbergMarquardt"]
