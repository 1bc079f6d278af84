"""The fused fleet kernel (jaxcal.fused): on a CPU the same Pallas kernel runs in interpret mode,
and agrees with fit_fleet's XLA path within the derived float32 bounds; on a GPU it is compiled
and agrees with interpret mode."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from jaxcal.fleet import fit_fleet
from jaxcal.fused import _fused, fit_fleet_fused
from jaxcal.tolerances import gd_trajectory_bounds

EPOCHS = 200
LR = 1e-2


def _fleet(sensors: int = 21, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    t_u = rng.uniform(2, 8, (sensors, 11)).astype(np.float32)
    t_c = (5.4 * t_u - 17 + rng.normal(0, 1, t_u.shape)).astype(np.float32)
    t_u[3] *= 10  # diverges at lr 1e-2 (its stability limit is ~3e-4)
    return t_u, t_c


@pytest.mark.parametrize("ragged", [False, True])
def test_the_kernel_agrees_with_fit_fleet_within_float32_bounds(ragged):
    t_u, t_c = _fleet()
    counts = np.where(np.arange(len(t_u)) % 4 == 0, 6, 11) if ragged else None
    fused = fit_fleet_fused(t_u, t_c, n_epochs=EPOCHS, learning_rate=LR, counts=counts, block=8, interpret=True)
    xla = fit_fleet(t_u, t_c, n_epochs=EPOCHS, learning_rate=LR, counts=counts)
    np.testing.assert_array_equal(fused.diverged, xla.diverged)
    np.testing.assert_array_equal(fused.epochs_run, xla.epochs_run)  # each stops at its own diverging epoch
    assert fused.diverged[3]
    assert fused.param_names == xla.param_names
    for s in np.nonzero(~xla.diverged)[0]:
        n = len(t_u[s]) if counts is None else counts[s]
        bounds = gd_trajectory_bounds([1.0, 0.0], t_u[s, :n], t_c[s, :n], float(np.float32(LR)), EPOCHS)
        # two float32 implementations of one run (other sum orders): within twice the bound
        assert np.all(np.abs(fused.params[s] - xla.params[s]) <= 2 * bounds.params_err[-1]), s
        assert abs(fused.loss[s] - xla.loss[s]) <= 2 * bounds.loss_err[-1], s
    # A diverging sensor's last finite params grow as its errors do: both stay at the relative
    # rounding of its epochs, (readings + 4) roundings of 2**-24 each, per implementation.
    s, epochs = 3, int(xla.epochs_run[3])
    relative = 2 * epochs * (11 + 4) * 2.0**-24
    np.testing.assert_allclose(fused.params[s], xla.params[s], rtol=relative)


def test_the_kernel_body_is_elementwise_with_no_reduction():
    # Triton and Mosaic GPU get rows summed in Python order: no reduction, no matmul in the body.
    t_u, t_c = _fleet(8)
    rows = np.ascontiguousarray(t_u.T), np.ascontiguousarray(t_c.T)
    start = tuple(np.full(8, v, np.float32) for v in (1.0, 0.0))
    jaxpr = jax.make_jaxpr(lambda lr, x, y, p: _fused(lr, x, y, None, None, p, model_name="linear", n_epochs=3,
                                                       block=8, interpret=True, backend=None))(
        np.float32(LR), *rows, start)
    calls = [e for e in _equations(jaxpr.jaxpr) if e.primitive.name == "pallas_call"]
    assert len(calls) == 1
    body = {e.primitive.name for e in _equations(calls[0].params["jaxpr"])}
    assert body & {"while", "scan"}  # the epochs, inside the kernel
    assert {"mul", "sub", "add", "div"} <= body
    assert "add_any" in body  # cotangents summed over the readings: jax.vjp's transpose, not a formula
    assert not {name for name in body if name.startswith(("reduce", "dot", "cumsum", "argmax"))}, body


def _equations(jaxpr):
    for equation in jaxpr.eqns:
        yield equation
        for value in equation.params.values():
            for sub in (value if isinstance(value, (list, tuple)) else [value]):
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    yield from _equations(inner)


@pytest.mark.parametrize(("kwargs", "message"), [({"block": 12}, "block: must be a power of two"),
                                                 ({"backend": "cuda"}, "backend: must be one of"),
                                                 ({"model": "cubic"}, "model: must be one of"),
                                                 ({"counts": np.ones(21, int)}, "counts: must be 21 integers")])
def test_bad_input_is_one_line(kwargs, message):
    t_u, t_c = _fleet()
    with pytest.raises(ValueError, match=message):
        fit_fleet_fused(t_u, t_c, n_epochs=10, learning_rate=LR, **kwargs)


@pytest.mark.skipif(jax.default_backend() != "gpu", reason="the compiled kernel needs an NVIDIA GPU")
@pytest.mark.parametrize("backend", [None, "triton", "mosaic_gpu"])
def test_the_compiled_kernel_agrees_with_interpret_mode(backend):
    t_u, t_c = _fleet(1000)
    compiled = fit_fleet_fused(t_u, t_c, n_epochs=EPOCHS, learning_rate=LR, backend=backend)
    interpreted = fit_fleet_fused(t_u, t_c, n_epochs=EPOCHS, learning_rate=LR, interpret=True)
    np.testing.assert_array_equal(compiled.epochs_run, interpreted.epochs_run)
    # the same operations in the same order; a GPU may contract a * b + c into one rounding: two
    # float32 implementations of each sensor's run, within twice its bound
    for s in np.nonzero(~interpreted.diverged)[0][:50]:
        bounds = gd_trajectory_bounds([1.0, 0.0], t_u[s], t_c[s], float(np.float32(LR)), EPOCHS)
        assert np.all(np.abs(compiled.params[s] - interpreted.params[s]) <= 2 * bounds.params_err[-1]), s
