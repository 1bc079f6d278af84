"""One model value carries every form of a model (``jaxcal.ModelSpec``): a form that is missing is a
one-line error where it is needed, and the forms jaxcal ships agree with the model's function."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

import jaxcal
from jaxcal import MODELS, ModelSpec, calibrate, data, exact, training_loop
from jaxcal.parity import RunConfig, torch_run


def cubic(t_u, w3, w2, w1, b):
    return w3 * t_u**3 + w2 * t_u**2 + w1 * t_u + b


@pytest.fixture
def cubic_by_name(monkeypatch):
    """A model added to the table by name alone: its function, no exact or torch form."""
    monkeypatch.setitem(MODELS, "cubic", ModelSpec(cubic, ("w3", "w2", "w1", "b"), (0.0, 0.0, 1.0, 0.0), "cubic"))
    return "cubic"


def test_exact_mode_refuses_a_model_without_its_exact_form_in_one_line(cubic_by_name):
    with pytest.raises(ValueError, match="exact float32 form") as raised:
        training_loop(10, 1e-4, [0.0, 0.0, 1.0, 0.0], data.t_un, data.t_c, model=cubic_by_name, exact=True)
    message = str(raised.value)
    assert "'cubic'" in message
    assert "\n" not in message


def test_the_torch_run_refuses_a_model_without_its_torch_form(cubic_by_name):
    config = RunConfig(n_epochs=2, learning_rate=1e-4, params=(0.0, 0.0, 1.0, 0.0), t_u=np.asarray(data.t_un),
                       t_c=np.asarray(data.t_c), model=cubic_by_name)
    with pytest.raises(ValueError, match="torch form"):
        torch_run(config)


@pytest.mark.parametrize("name", ["linear", "quadratic"])
def test_the_shipped_forms_agree_with_the_function(name):
    spec = MODELS[name]
    params = jnp.asarray([0.5, -1.5, 2.0][-spec.n_params:], jnp.float32)
    t_u = jnp.asarray(data.t_un)
    expected = np.asarray(spec.fn(t_u, *params), np.float64)
    ops = exact.make_ops(jnp.zeros((), jnp.int32))
    # the exact form rounds each operation once, as torch does: within a few float32 roundings of the
    # function (one per operation: at most 5, of the largest term)
    scale = np.abs(np.asarray(t_u, np.float64)).max() ** (spec.n_params - 1) * 2.0
    np.testing.assert_allclose(np.asarray(spec.exact(ops, t_u, params)), expected, rtol=0,
                               atol=5 * np.finfo(np.float32).eps * scale)
    torch = pytest.importorskip("torch")
    got = spec.torch(torch.tensor(np.asarray(t_u)), *(torch.tensor(float(p)) for p in params)).numpy()
    np.testing.assert_allclose(got, expected, rtol=0, atol=5 * np.finfo(np.float32).eps * scale)


def test_calibrate_solves_a_model_linear_in_its_params_in_one_step(cubic_by_name, monkeypatch):
    # the cubic is linear in its params: marked so, calibrate's default is least squares (one step)
    monkeypatch.setitem(MODELS, "cubic", MODELS["cubic"]._replace(linear=True, intercept=True))
    fit = calibrate(data.t_un, data.t_c, model="cubic")
    assert int(fit.steps) == 1
    assert fit.STATUS[int(fit.status)] == "converged"
    assert 0 < float(fit.r_squared) < 1
    # a caller's function carries no such marks: no intercept is assumed, so no R²
    fit = calibrate(data.t_un, data.t_c, model=lambda t_u, w3, w2, w1, b: cubic(t_u, w3, w2, w1, b),
                    params=[0.0, 0.0, 1.0, 0.0])
    assert np.isnan(float(fit.r_squared))
    assert jaxcal.ModelSpec is ModelSpec
