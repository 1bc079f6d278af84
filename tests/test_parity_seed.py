"""Parity with the seed's recorded output (the blog post's autograd run, 5000 epochs on t_un).

Every tolerance is derived, not tuned: ``jaxcal.tolerances.gd_trajectory_bounds`` bounds how
far any float32 implementation of this run can drift from exact arithmetic, epoch by epoch
(rounding of each loss and gradient evaluation, propagated through the updates). jaxcal and the
recording are two such implementations, so they differ by at most twice that bound; the
recording is also rounded for printing, which adds half a unit of its last printed digit.
"""

from __future__ import annotations

import numpy as np
import pytest

from jaxcal import data, loss_and_grad, training_loop
from jaxcal.tolerances import evaluation_bounds, gd_trajectory_bounds, printed_half_unit

RUN = "p1ch5_2_c09_autograd_tun_lr1e-2_5000"

#: The seed's printed output (../shared/seed/autograd-blog-post.txt), epoch by epoch.
SEED_GRADS = {
    500: ("-0.2252", "1.2748"),
    1000: ("-0.0962", "0.5448"),
    1500: ("-0.0411", "0.2328"),
    2000: ("-0.0176", "0.0995"),
    2500: ("-0.0075", "0.0425"),
    3000: ("-0.0032", "0.0182"),
    3500: ("-0.0014", "0.0078"),
    4000: ("-0.0006", "0.0033"),
    4500: ("-0.0003", "0.0014"),
    5000: ("-9.7513e-05", "6.1291e-04"),
}
SEED_FINAL_PARAMS = ("5.3671", "-17.3012")


@pytest.fixture(scope="module")
def seed_result():
    return training_loop(5000, 1e-2, [1.0, 0.0], data.t_un, data.t_c, log_every=500)


@pytest.fixture(scope="module")
def bounds():
    return gd_trajectory_bounds([1.0, 0.0], data.t_un, data.t_c, 1e-2, 5000)


def test_initial_gradient_on_raw_readings(book_runs):
    recorded = ("4517.2969", "82.6000")
    assert book_runs["p1ch5_2_c06_autograd_grad_at_init"]["recorded"]["params.grad"].split() == [
        "tensor([4517.2969,", "82.6000])"
    ]
    _, grad = loss_and_grad(np.asarray([1.0, 0.0], np.float32), data.t_u, data.t_c)
    _, grad_err = evaluation_bounds([1.0, 0.0], data.t_u, data.t_c)
    for value, text, err in zip(np.asarray(grad), recorded, grad_err, strict=True):
        # Same params in both: two evaluations differ by at most 2 * grad_err, plus the print.
        assert abs(float(value) - float(text)) <= 2 * err + printed_half_unit(text)


def test_seed_losses_at_every_log_point(book_runs, seed_result, bounds):
    recorded = book_runs[RUN]["recorded"]["epochs"]
    assert [int(e) for e in np.asarray(seed_result.history.epoch)] == [int(e) for e in recorded]
    for i, (epoch, text) in enumerate(recorded.items()):
        tolerance = 2 * bounds.loss_err[int(epoch) - 1] + printed_half_unit(text)
        assert abs(float(seed_result.history.loss[i]) - float(text)) <= tolerance, epoch


def test_seed_gradients_at_every_log_point(seed_result, bounds):
    # Gradients near convergence are differences of terms ~1e1 in size: the bound is absolute,
    # set by the summed terms' magnitudes, not relative to the tiny result (see tolerances.py).
    for i, (epoch, texts) in enumerate(SEED_GRADS.items()):
        for j, text in enumerate(texts):
            tolerance = 2 * bounds.grad_err[epoch - 1][j] + printed_half_unit(text)
            assert abs(float(seed_result.history.grad[i][j]) - float(text)) <= tolerance, (epoch, j)


def test_seed_final_params(seed_result, bounds):
    for value, text, err in zip(np.asarray(seed_result.params), SEED_FINAL_PARAMS, bounds.params_err[-1], strict=True):
        assert abs(float(value) - float(text)) <= 2 * err + printed_half_unit(text)


def test_seed_trajectory_against_torch_2_13(book_runs, seed_result, bounds):
    # torch 2.13 re-ran the seed with full-precision values every 100 epochs.
    rows = {row["epoch"]: row for row in book_runs[RUN]["torch_2_13"]["trajectory"]["rows"]}
    result = training_loop(5000, 1e-2, [1.0, 0.0], data.t_un, data.t_c, log_every=100)
    for i, epoch in enumerate(np.asarray(result.history.epoch).tolist()):
        row = rows[epoch]
        k = epoch - 1
        assert abs(float(result.history.loss[i]) - row["loss"]) <= 2 * bounds.loss_err[k]
        assert np.all(np.abs(np.asarray(result.history.grad[i]) - row["grad"]) <= 2 * bounds.grad_err[k])
        assert np.all(np.abs(np.asarray(result.history.params[i]) - row["params_after"]) <= 2 * bounds.params_err[k])


def test_the_bounds_would_catch_an_off_by_one_epoch(book_runs, bounds):
    # The bounds are tight enough to fail a plausible bug: the loss one epoch later than the
    # recording's epoch 500 is outside the tolerance.
    result = training_loop(501, 1e-2, [1.0, 0.0], data.t_un, data.t_c, log_every=501)
    text = book_runs[RUN]["recorded"]["epochs"]["500"]
    assert abs(float(result.history.loss[0]) - float(text)) > 2 * bounds.loss_err[499] + printed_half_unit(text)
