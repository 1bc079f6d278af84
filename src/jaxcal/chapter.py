"""Every run of chapter 5 of the book, as jaxcal configurations.

``RUNS[id]`` is a :class:`~jaxcal.parity.RunConfig` for ``training_loop`` (and the torch
harness); ``jaxcal.cli._chapter.COMMANDS[id]`` is the same run from the command line. The ids are those of the
reference recording (``tests/reference/book_ch5.json``). Two of the recording's entries are not
training runs and need no configuration: the initial loss and the gradient at the initial params
are the first history row of any run from ``w = 1, b = 0`` on raw readings
(``jaxcal train --scale 1 --epochs 1 --log-every 1``).
"""

from __future__ import annotations

import numpy as np

from . import data
from .parity import RunConfig

__all__ = ["QUADRATIC_EXERCISE", "RUNS"]

_T_UN = data.t_un
_TRAIN, _VAL = (list(indices) for indices in data.BOOK_SPLIT)
_SCALE = np.float32(data.T_SCALE)
_PRINTED = "1,2,3,10,11,99,100,4000,5000"  # the manual runs' print schedule

RUNS: dict[str, RunConfig] = {
    "p1ch5_1_c07-09_finite_difference_step": RunConfig(
        1, 1e-2, (1.0, 0.0), data.t_u, data.t_c, log_every=1, gradient="finite-difference"
    ),
    "p1ch5_1_c16_gd_tu_lr1e-2_diverges": RunConfig(
        100, 1e-2, (1.0, 0.0), data.t_u, data.t_c, log_every=1, gradient="analytic"
    ),
    "p1ch5_1_c17_gd_tu_lr1e-4": RunConfig(100, 1e-4, (1.0, 0.0), data.t_u, data.t_c, log_every=1, gradient="analytic"),
    "p1ch5_1_c19_gd_tun_lr1e-2_100": RunConfig(
        100, 1e-2, (1.0, 0.0), _T_UN, data.t_c, log_every=1, gradient="analytic"
    ),
    "p1ch5_1_c20_gd_tun_lr1e-2_5000": RunConfig(
        5000, 1e-2, (1.0, 0.0), _T_UN, data.t_c, log_every=1, gradient="analytic"
    ),
    "p1ch5_2_c09_autograd_tun_lr1e-2_5000": RunConfig(5000, 1e-2, (1.0, 0.0), _T_UN, data.t_c, log_every=100),
    "p1ch5_3_c06_sgd_single_step_tu_lr1e-5": RunConfig(
        1, 1e-5, (1.0, 0.0), data.t_u, data.t_c, optimizer="sgd", log_every=1
    ),
    "p1ch5_3_c07_sgd_single_step_tun_lr1e-2": RunConfig(
        1, 1e-2, (1.0, 0.0), _T_UN, data.t_c, optimizer="sgd", log_every=1
    ),
    "p1ch5_3_c09_sgd_tun_lr1e-2_5000": RunConfig(
        5000, 1e-2, (1.0, 0.0), _T_UN, data.t_c, optimizer="sgd", log_every=100
    ),
    "p1ch5_3_c10_adam_tu_lr1e-1_2000": RunConfig(
        2000, 0.1, (1.0, 0.0), data.t_u, data.t_c, optimizer="adam", log_every=100
    ),
    "p1ch5_3_c14_split_sgd_tun_lr1e-2_3000": RunConfig(
        3000,
        1e-2,
        (1.0, 0.0),
        _SCALE * data.t_u[_TRAIN],
        data.t_c[_TRAIN],
        optimizer="sgd",
        log_every=1,
        val=(_SCALE * data.t_u[_VAL], data.t_c[_VAL]),
    ),
}

#: The chapter's exercise (no recording exists; parity is against live torch).
QUADRATIC_EXERCISE = RunConfig(5000, 1e-4, (0.0, 1.0, 0.0), _T_UN, data.t_c, model="quadratic", log_every=500)
