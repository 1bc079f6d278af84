"""The pure core: model, loss and the gradient jax.grad derives, against exact float64 maths."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcal import data, loss_and_grad, loss_fn, model, objective, quadratic_model
from jaxcal.tolerances import evaluation_bounds


def test_book_readings_are_float32_and_read_only():
    assert data.t_u.dtype == data.t_c.dtype == data.t_un.dtype == np.float32
    assert data.t_u.shape == data.t_c.shape == (11,)
    with pytest.raises(ValueError, match="read-only"):
        data.t_u[0] = 0.0


def test_t_un_is_the_float32_product_of_the_book():
    # 0.1 * t_u with both operands rounded to float32, as torch and JAX compute it.
    np.testing.assert_array_equal(data.t_un, np.float32(0.1) * data.t_u)


def test_model_is_w_times_t_u_plus_b():
    t_p = model(jnp.asarray(data.t_u), jnp.float32(2.0), jnp.float32(-3.0))
    # w = 2 makes w * t_u exact (a power of two); subtracting 3 then rounds once, to within u.
    np.testing.assert_allclose(np.asarray(t_p), 2.0 * data.t_u.astype(np.float64) - 3.0, rtol=2**-24)


def test_quadratic_model_has_three_coefficients():
    t_u = jnp.asarray([1.0, 2.0, 3.0])
    np.testing.assert_array_equal(np.asarray(quadratic_model(t_u, 1.0, 0.0, 0.0)), [1.0, 4.0, 9.0])
    np.testing.assert_array_equal(np.asarray(quadratic_model(t_u, 0.0, 2.0, 1.0)), [3.0, 5.0, 7.0])


def _exact_loss_and_grad(params, t_u, t_c):
    t_u = t_u.astype(np.float64)
    t_c = t_c.astype(np.float64)
    residual = params[0] * t_u + params[1] - t_c
    grad = 2.0 * np.array([np.mean(residual * t_u), np.mean(residual)])
    return np.mean(residual**2), grad


@pytest.mark.parametrize(("inputs", "params"), [("t_u", [1.0, 0.0]), ("t_un", [1.0, 0.0]), ("t_un", [5.37, -17.3])])
def test_loss_and_grad_match_exact_maths_within_float32_bounds(inputs, params):
    t_u = getattr(data, inputs)
    loss, grad = loss_and_grad(jnp.asarray(params, jnp.float32), t_u, data.t_c)
    exact_loss, exact_grad = _exact_loss_and_grad(np.asarray(params, np.float64), t_u, data.t_c)
    loss_err, grad_err = evaluation_bounds(params, t_u, data.t_c)
    assert abs(float(loss) - exact_loss) <= loss_err
    assert np.all(np.abs(np.asarray(grad, np.float64) - exact_grad) <= grad_err)


def test_objective_is_loss_fn_of_model():
    params = jnp.asarray([0.5, 2.0])
    assert objective(params, data.t_u, data.t_c) == loss_fn(model(jnp.asarray(data.t_u), 0.5, 2.0), data.t_c)


def test_loss_and_grad_is_jax_grad_of_the_objective():
    params = jnp.asarray([1.0, 0.0])
    _, grad = loss_and_grad(params, data.t_u, data.t_c)
    np.testing.assert_array_equal(np.asarray(grad), np.asarray(jax.grad(objective)(params, data.t_u, data.t_c)))


def test_core_follows_float64_inputs_when_x64_is_on(tmp_path):
    # x64 is a start-up choice, so it is tested in a fresh interpreter.
    import subprocess
    import sys

    code = (
        "import jax; jax.config.update('jax_enable_x64', True)\n"
        "import numpy as np, jax.numpy as jnp\n"
        "from jaxcal import data, loss_and_grad\n"
        "t_u, t_c = data.t_u.astype(np.float64), data.t_c.astype(np.float64)\n"
        "loss, grad = loss_and_grad(jnp.asarray([1.0, 0.0]), t_u, t_c)\n"
        "print(loss.dtype, grad.dtype)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["float64", "float64"]
