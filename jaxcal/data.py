"""The book's eleven thermometer readings (chapter 5 of "Deep Learning with PyTorch").

The arrays are NumPy float32 and read-only, so that importing jaxcal does not start a JAX
backend (device counts and x64 are chosen by the caller before that happens).
"""

from __future__ import annotations

import numpy as np

__all__ = ["T_SCALE", "t_c", "t_u", "t_un"]


def _frozen(values: list[float]) -> np.ndarray:
    array = np.asarray(values, dtype=np.float32)
    array.setflags(write=False)
    return array


#: Celsius readings of the reference thermometer.
t_c: np.ndarray = _frozen([0.5, 14.0, 15.0, 28.0, 11.0, 8.0, 3.0, -4.0, 6.0, 13.0, 21.0])

#: Readings of the thermometer with unknown units.
t_u: np.ndarray = _frozen([35.7, 55.9, 58.2, 81.9, 56.3, 48.9, 33.9, 21.8, 48.4, 60.4, 68.4])

#: The book's input scale: ``t_un = 0.1 * t_u``.
T_SCALE = 0.1

#: The scaled readings, rounded as float32 exactly as ``0.1 * t_u`` is in torch and JAX.
t_un: np.ndarray = _frozen((np.float32(T_SCALE) * t_u).tolist())
