"""Every run of chapter 5 of the book as the command line that replays it (``jaxcal.chapter.RUNS``
holds the same runs as library configurations; the ids are the recording's)."""

from __future__ import annotations

__all__ = ["COMMANDS"]

_PRINTED = "1,2,3,10,11,99,100,4000,5000"  # the manual runs' print schedule
_MANUAL = f"jaxcal train --gradient analytic --log-epochs {_PRINTED}"
_SINGLE = "--epochs 1 --log-every 1"

COMMANDS: dict[str, str] = {
    "p1ch5_1_c07-09_finite_difference_step": f"jaxcal train --scale 1 --gradient finite-difference {_SINGLE}",
    "p1ch5_1_c16_gd_tu_lr1e-2_diverges": f"{_MANUAL} --scale 1 --epochs 100",
    "p1ch5_1_c17_gd_tu_lr1e-4": f"{_MANUAL} --scale 1 --lr 1e-4 --epochs 100",
    "p1ch5_1_c19_gd_tun_lr1e-2_100": f"{_MANUAL} --epochs 100",
    "p1ch5_1_c20_gd_tun_lr1e-2_5000": _MANUAL,
    "p1ch5_2_c09_autograd_tun_lr1e-2_5000": "jaxcal train",
    "p1ch5_3_c06_sgd_single_step_tu_lr1e-5": f"jaxcal train --scale 1 --optimizer sgd --lr 1e-5 {_SINGLE}",
    "p1ch5_3_c07_sgd_single_step_tun_lr1e-2": f"jaxcal train --optimizer sgd {_SINGLE}",
    "p1ch5_3_c09_sgd_tun_lr1e-2_5000": "jaxcal train --optimizer sgd",
    "p1ch5_3_c10_adam_tu_lr1e-1_2000": "jaxcal train --scale 1 --optimizer adam --lr 0.1 --epochs 2000",
    "p1ch5_3_c14_split_sgd_tun_lr1e-2_3000": "jaxcal train --optimizer sgd --epochs 3000 --book-split "
    "--log-epochs 1,2,3",
}
