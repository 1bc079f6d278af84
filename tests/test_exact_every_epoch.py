"""Exact mode, bit for bit at every epoch, against an independent float32 emulation of the book's loop.

``tests/float32_emulation.py`` re-implements each run in plain NumPy float32 in the order the
book's code evaluates it, sharing nothing with ``jaxcal.exact``. Logging every epoch, exact mode
must give the same bits for every loss, gradient, updated params and validation loss: no
tolerance, since both claim the same roundings in the same order.
"""

from __future__ import annotations

import float32_emulation as emulation
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jaxcal import training_loop
from jaxcal.chapter import QUADRATIC_EXERCISE, RUNS
from jaxcal.parity import RunConfig

# Every configuration exact mode supports: all of the chapter's runs but Adam's, and the exercise.
CASES = {name: config for name, config in RUNS.items() if config.optimizer != "adam"}
CASES["quadratic_exercise"] = QUADRATIC_EXERCISE


def _same_bits(got: np.ndarray, want: np.ndarray) -> np.ndarray:
    """Elementwise: identical float32 bit patterns, or both NaN (NaN payloads are not specified)."""
    got, want = np.asarray(got, np.float32), np.asarray(want, np.float32)
    return (got.view(np.uint32) == want.view(np.uint32)) | (np.isnan(got) & np.isnan(want))


def _assert_every_epoch_equal(config: RunConfig) -> None:
    val = config.val or (None, None)
    result = training_loop(config.n_epochs, config.learning_rate, np.asarray(config.params, np.float32),
                           config.t_u, config.t_c, optimizer=config.optimizer, log_every=1, model=config.model,
                           gradient=config.gradient, exact=True, val_t_u=val[0], val_t_c=val[1],
                           delta=config.delta)
    want = emulation.run(config.n_epochs, config.learning_rate, config.params, config.t_u, config.t_c,
                         optimizer=config.optimizer, model=config.model, gradient=config.gradient, val=config.val,
                         delta=config.delta)
    ran = len(want.loss)
    assert int(result.epochs_run) == ran
    assert bool(result.diverged) == want.diverged
    history = result.history
    fields = [("loss", history.loss, want.loss), ("grad", history.grad, want.grad),
              ("params", history.params, want.params)]
    if config.val is not None:
        fields.append(("val_loss", history.val_loss, want.val_loss))
    for field, got, expected in fields:
        same = _same_bits(np.asarray(got)[:ran], expected)
        rows = np.nonzero(~same.reshape(ran, -1).all(axis=1))[0]
        assert rows.size == 0, (f"{field} differs at {rows.size} of {ran} epochs, first at epoch {rows[0] + 1}: "
                                f"{np.asarray(got)[rows[0]]} vs {expected[rows[0]]}")


@pytest.mark.parametrize("name", list(CASES))
def test_exact_mode_equals_the_emulation_at_every_epoch(name):
    _assert_every_epoch_equal(CASES[name])


def test_the_comparison_sees_a_single_ulp():
    # The check must be able to fail: fast mode differs from the recording by an ulp here and there.
    config = RUNS["p1ch5_2_c09_autograd_tun_lr1e-2_5000"]
    fast = training_loop(500, config.learning_rate, np.asarray(config.params, np.float32), config.t_u, config.t_c,
                         log_every=1)
    want = emulation.run(500, config.learning_rate, config.params, config.t_u, config.t_c)
    assert not _same_bits(np.asarray(fast.history.grad), want.grad).all()


def test_the_emulated_fused_update_rounds_once():
    # (1 + 2**-12)**2 = 1 + 2**-11 + 2**-24: rounding the product first loses the 2**-24 that a
    # fused multiply-add keeps.
    a = np.float32(1 + 2**-12)
    c = np.float32(-(1 + 2**-11))
    assert emulation.fused_multiply_add(a, a, c) == np.float32(2**-24)
    assert np.float32(np.float32(a * a) + c) == 0.0


def test_exact_mode_rounds_a_fused_update_beside_a_midpoint_correctly():
    # a * b = 2**-24 - 2**-60 and c = 1 + 2**-23: the exact sum lies just below the midpoint
    # between 1 + 2**-23 and 1 + 2**-22, so one correct rounding gives 1 + 2**-23. Rounding the
    # small parts to nearest on the way lands on the midpoint and ties up to 1 + 2**-22.
    import jax

    from jaxcal.exact import make_ops

    a, b, c = np.float32(2**-12 * (1 + 2**-18)), np.float32(2**-12 * (1 - 2**-18)), np.float32(1 + 2**-23)
    fused = jax.jit(lambda a, b, c, zero: make_ops(zero).fma(a, b, c))(a, b, c, np.int32(0))
    assert emulation.fused_multiply_add(a, b, c) == np.float32(1 + 2**-23)
    assert np.float32(fused) == np.float32(1 + 2**-23)


@st.composite
def problems(draw):
    """A random small calibration with a learning rate inside gradient descent's stable range."""
    n = draw(st.integers(3, 40))
    seed = draw(st.integers(0, 2**32 - 1))
    model = draw(st.sampled_from(["linear", "linear", "quadratic"]))
    gradient = "autograd" if model == "quadratic" else draw(st.sampled_from(["autograd", "analytic"]))
    optimizer = None if gradient == "analytic" else draw(st.sampled_from([None, "sgd"]))
    rng = np.random.default_rng(seed)
    t_u = rng.uniform(-3, 8, n).astype(np.float32)
    t_c = (rng.uniform(-5, 5) * t_u + rng.uniform(-20, 20) + rng.normal(0, 1, n)).astype(np.float32)
    features = np.stack([t_u.astype(np.float64) ** k for k in ((2, 1, 0) if model == "quadratic" else (1, 0))], 1)
    curvature = np.linalg.eigvalsh(2.0 / n * features.T @ features).max()
    # gradient descent on a quadratic loss is stable for lr < 2 / (largest Hessian eigenvalue)
    lr = float(draw(st.floats(0.05, 0.95)) * 2.0 / curvature)
    params = tuple(float(p) for p in rng.uniform(-2, 2, features.shape[1]))
    return RunConfig(draw(st.integers(1, 1000)), lr, params, t_u, t_c, optimizer=optimizer, log_every=1,
                     model=model, gradient=gradient)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config=problems())
def test_exact_mode_equals_the_emulation_on_random_problems(config):
    _assert_every_epoch_equal(config)


def test_an_xla_that_rewrites_the_roundings_is_detected_and_exact_mode_still_exact(monkeypatch):
    import jaxcal.exact

    assert jaxcal.exact.rounding_holds()  # this JAX keeps them: the compiled loop is used
    # An XLA that rewrote them (the check fails): the loop runs one operation at a time
    monkeypatch.setattr(jaxcal.exact, "rounding_holds", lambda: False)
    config = RUNS["p1ch5_3_c09_sgd_tun_lr1e-2_5000"]._replace(n_epochs=25)
    _assert_every_epoch_equal(config)


def test_the_rounding_check_fails_when_the_compiled_values_differ(monkeypatch):
    import jaxcal.exact

    # a compiled model that is off by one rounding's worth in b: the check must notice
    def off(ops, t_u, params):
        return ops.shift(ops.scale(params[0], t_u), params[1] * (1 + 2**-20))

    monkeypatch.setitem(jaxcal.exact.MODELS, "linear", off)
    assert not jaxcal.exact.rounding_holds.__wrapped__()  # the check itself, not its cached answer
