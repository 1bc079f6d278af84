"""The book's eleven thermometer readings (chapter 5 of "Deep Learning with PyTorch").

The arrays are NumPy float32 and read-only, so that importing jaxcal does not start a JAX
backend (device counts and x64 are chosen by the caller before that happens).
"""

from __future__ import annotations

import numpy as np

__all__ = ["BOOK_SPLIT", "T_SCALE", "readings", "split_indices", "t_c", "t_u", "t_un"]


_T_C = [0.5, 14.0, 15.0, 28.0, 11.0, 8.0, 3.0, -4.0, 6.0, 13.0, 21.0]
_T_U = [35.7, 55.9, 58.2, 81.9, 56.3, 48.9, 33.9, 21.8, 48.4, 60.4, 68.4]


def _frozen(values: list[float], dtype: type = np.float32) -> np.ndarray:
    array = np.asarray(values, dtype=dtype)
    array.setflags(write=False)
    return array


def readings(dtype: type = np.float32) -> tuple[np.ndarray, np.ndarray]:
    """The book's ``(t_u, t_c)`` rounded from their decimal values to ``dtype`` (read-only).

    ``readings(np.float64)`` is what ``torch.tensor([...], dtype=torch.float64)`` holds: the
    decimals rounded to float64, not the float32 values widened.
    """
    return _frozen(_T_U, dtype), _frozen(_T_C, dtype)


#: Celsius readings of the reference thermometer.
t_c: np.ndarray = _frozen(_T_C)

#: Readings of the thermometer with unknown units.
t_u: np.ndarray = _frozen(_T_U)

#: The book's input scale: ``t_un = 0.1 * t_u``.
T_SCALE = 0.1

#: The scaled readings, rounded as float32 exactly as ``0.1 * t_u`` is in torch and JAX.
t_un: np.ndarray = _frozen((np.float32(T_SCALE) * t_u).tolist())


#: The book's train/validation split, as recorded (its ``torch.randperm(11)`` was unseeded).
BOOK_SPLIT: tuple[tuple[int, ...], tuple[int, ...]] = ((9, 6, 5, 8, 4, 7, 0, 1, 3), (2, 10))


def split_indices(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded random train/validation split, sized as the book sizes it.

    ``n_val = int(val_fraction * n)`` readings go to validation (the book: ``int(0.2 * 11) = 2``);
    the order is a permutation drawn from ``numpy.random.default_rng(seed)``.

    Returns:
      ``(train_indices, val_indices)``.

    Raises:
      ValueError: if the fraction leaves fewer than 2 readings on either side.
    """
    from ._checks import InvalidInput

    if not 0 < val_fraction < 1:
        raise InvalidInput(f"val_fraction: must be between 0 and 1, got {val_fraction!r}")
    n_val = int(val_fraction * n)
    if n_val < 1 or n - n_val < 2:
        raise InvalidInput(
            f"val_fraction: {val_fraction} of {n} readings leaves {n - n_val} for training and {n_val} for "
            "validation; need at least 2 and 1"
        )
    order = np.random.default_rng(seed).permutation(n)
    return order[:-n_val], order[-n_val:]
