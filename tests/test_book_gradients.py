"""The book's hand-written derivatives agree with jax.grad, within float32 evaluation bounds."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxcal import book, data, loss_and_grad, model, training_loop
from jaxcal.tolerances import evaluation_bounds


@settings(max_examples=50, deadline=None)
@given(w=st.floats(-10, 10, width=32), b=st.floats(-30, 30, width=32), raw=st.booleans())
def test_analytic_gradient_agrees_with_jax_grad(w, b, raw):
    t_u = data.t_u if raw else data.t_un
    params = np.asarray([w, b], np.float32)
    _, autograd = loss_and_grad(params, t_u, data.t_c)
    t_p = model(jnp.asarray(t_u), params[0], params[1])
    analytic = book.grad_fn(jnp.asarray(t_u), jnp.asarray(data.t_c), t_p, params[0], params[1])
    _, grad_err = evaluation_bounds(params, t_u, data.t_c)
    # Both are float32 evaluations of the same exact gradient, each within grad_err of it.
    assert np.all(np.abs(np.asarray(analytic) - np.asarray(autograd)) <= 2 * grad_err)


def test_book_derivatives_by_name():
    t_u = jnp.asarray([1.0, 2.0, 4.0])
    assert book.dmodel_dw(t_u, 3.0, 1.0) is t_u
    assert book.dmodel_db(t_u, 3.0, 1.0) == 1.0
    np.testing.assert_allclose(np.asarray(book.dloss_fn(jnp.asarray([1.0, 3.0]), jnp.asarray([0.0, 0.0]))),
                               [1.0, 3.0])


def test_finite_difference_of_a_quadratic_is_its_gradient():
    # A central difference is exact for a quadratic loss (up to rounding): one step moves w by
    # lr * dL/dw, then b by lr * dL/db at the new w, as the book does it.
    params = jnp.asarray([1.0, 0.0])
    t_u, t_c = jnp.asarray(data.t_un), jnp.asarray(data.t_c)

    def loss(p):
        return loss_and_grad(p, t_u, t_c)[0]

    rate = book.rate_of_change(loss, params, 0, 0.1)
    _, grad = loss_and_grad(params, t_u, t_c)
    loss_err, _ = evaluation_bounds([1.0, 0.0], data.t_un, data.t_c)
    # two loss evaluations over 2 * delta: float32 error 2 * loss_err / 0.2 (and the same again)
    assert abs(float(rate) - float(grad[0])) <= 4 * loss_err / 0.2
    # one training step updates w by that rate before b's is taken, as the book does it
    result = training_loop(1, 1e-2, params, t_u, t_c, gradient="finite-difference", log_every=1)
    # (compiled there, op by op here: two float32 evaluations of the rate, each within 2 * loss_err / 0.2)
    assert abs(float(result.history.grad[0, 0]) - float(rate)) <= 4 * loss_err / 0.2
    assert float(result.params[0]) == pytest.approx(1.0 - 1e-2 * float(result.history.grad[0, 0]), abs=1e-6)
    moved = params.at[0].set(result.params[0])
    moved_err, _ = evaluation_bounds(np.asarray(moved), data.t_un, data.t_c)
    b_rate = float(book.rate_of_change(loss, moved, 1, 0.1))
    assert abs(float(result.history.grad[0, 1]) - b_rate) <= 4 * moved_err / 0.2
