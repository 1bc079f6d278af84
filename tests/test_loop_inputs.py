"""Bad input gets one bounded line that names the argument, the sensor or reading and the value;
optax's extra-arguments convention (``value``, ``grad``, ``value_fn``) runs in every loop."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxcal import InputError, data, fit_fleet, loss_and_grad, objective, optax_step, sweep, training_loop
from jaxcal.tolerances import evaluation_bounds

X64 = jax.config.jax_enable_x64
T_U = np.asarray(data.t_un, np.float32)
T_C = np.asarray(data.t_c, np.float32)
FLEET_U = np.stack([T_U, T_U + np.float32(1), T_U])
FLEET_C = np.stack([T_C, T_C, T_C])


def _error(call) -> str:
    # jaxcal's own errors (ValueError or TypeError), which the command line maps to its flags
    with pytest.raises(InputError) as info:
        call()
    return str(info.value)


def _one_bounded_line(message: str) -> None:
    # one line of at most a few hundred characters, numbers as Python prints them
    assert "\n" not in message
    assert len(message) < 300, message
    for repr_only in ("np.", "array(", "dtype=", "<object"):
        assert repr_only not in message, message


def _nan_at(values, index):
    values = values.copy()
    values[index] = np.nan
    return values


BIG = 1000
LARGE_BAD_INPUT = {
    "fleet per-sensor learning rates": lambda: fit_fleet(FLEET_U, FLEET_C, n_epochs=5,
                                                         learning_rate=np.full(BIG, 1e-2)),
    "fleet params": lambda: fit_fleet(FLEET_U, FLEET_C, n_epochs=5, learning_rate=1e-2,
                                      params=np.full((BIG, 2), 1.0)),
    "fleet counts": lambda: fit_fleet(FLEET_U, FLEET_C, n_epochs=5, learning_rate=1e-2, counts=np.ones(BIG, int)),
    "fleet NaN reading": lambda: fit_fleet(_nan_at(np.ones((BIG, 20), np.float32), (517, 3)),
                                           np.ones((BIG, 20), np.float32), n_epochs=5, learning_rate=1e-2),
    "learning rate array": lambda: training_loop(5, np.full(BIG, 1e-2), [1.0, 0.0], T_U, T_C),
    "delta array": lambda: training_loop(5, 1e-2, [1.0, 0.0], T_U, T_C, gradient="finite-difference",
                                         delta=np.full(BIG, 0.1)),
    "params array": lambda: training_loop(5, 1e-2, np.ones(BIG), T_U, T_C),
    "NaN reading": lambda: training_loop(5, 1e-2, [1.0, 0.0], _nan_at(np.ones(BIG, np.float32), 700),
                                         np.ones(BIG, np.float32)),
    "long optimizer name": lambda: training_loop(5, 1e-2, [1.0, 0.0], T_U, T_C, optimizer="x" * BIG),
    "long gradient name": lambda: training_loop(5, 1e-2, [1.0, 0.0], T_U, T_C, gradient="x" * BIG),
    "an object as optimizer": lambda: training_loop(5, 1e-2, [1.0, 0.0], T_U, T_C, optimizer=object()),
    "sweep learning rates": lambda: sweep(T_U, T_C, n_epochs=5, learning_rate=np.full(BIG, np.nan)),
    "sweep params": lambda: sweep(T_U, T_C, n_epochs=5, learning_rate=1e-2, params=np.ones((BIG, 3))),
    "sweep text": lambda: sweep(T_U, T_C, n_epochs=5, learning_rate=["fast"] * BIG),
}


@pytest.mark.parametrize("call", LARGE_BAD_INPUT.values(), ids=LARGE_BAD_INPUT.keys())
def test_large_bad_input_gets_one_bounded_line(call):
    _one_bounded_line(_error(call))


def test_numpy_scalars_are_shown_as_python_prints_numbers():
    message = _error(lambda: training_loop(np.float64(3.5), 1e-2, [1.0, 0.0], T_U, T_C))
    assert message == "n_epochs: must be a positive integer, got 3.5"
    message = _error(lambda: training_loop(5, 1e-2, [1.0, 0.0], T_U, T_C, delta=np.float64(np.nan)))
    assert message == "delta: must be a positive finite number, got nan"
    message = _error(lambda: training_loop(5, np.full(BIG, 1e-2), [1.0, 0.0], T_U, T_C))
    assert "1000 values of shape (1000,) (float64: 0.01, 0.01, 0.01, ...)" in message


@pytest.mark.parametrize("where", ["t_u", "t_c"])
def test_a_nan_reading_is_refused_naming_the_reading(where):
    readings = {"t_u": T_U, "t_c": T_C}
    readings[where] = _nan_at(readings[where], 4)
    expected = f"{where}: reading 4 is nan; it must be finite"
    assert _error(lambda: training_loop(10, 1e-2, [1.0, 0.0], readings["t_u"], readings["t_c"])) == expected
    assert _error(lambda: sweep(readings["t_u"], readings["t_c"], n_epochs=10, learning_rate=[1e-2])) == expected
    # as a jax.Array, as a list, and as validation readings
    assert _error(lambda: training_loop(10, 1e-2, [1.0, 0.0], *map(jnp.asarray, readings.values()))) == expected
    assert _error(lambda: training_loop(10, 1e-2, [1.0, 0.0], *(list(map(float, v)) for v in readings.values()))
                  ) == expected
    assert _error(lambda: training_loop(10, 1e-2, [1.0, 0.0], T_U, T_C, val_t_u=readings["t_u"],
                                        val_t_c=readings["t_c"])) == "val_" + expected


def test_a_fleets_non_finite_reading_is_refused_naming_the_sensor():
    bad = FLEET_U.copy()
    bad[1, 3] = -np.inf
    message = _error(lambda: fit_fleet(bad, FLEET_C, n_epochs=10, learning_rate=1e-2))
    assert message == "t_u: sensor 1, reading 3 is -inf; it must be finite"
    nan = _nan_at(FLEET_C, (2, 7))
    assert _error(lambda: fit_fleet(FLEET_U, nan, n_epochs=10, learning_rate=1e-2)) == (
        "t_c: sensor 2, reading 7 is nan; it must be finite")
    # a ragged fleet reads only each sensor's first counts[s] readings: what pads a row is never read
    result = fit_fleet(FLEET_U, nan, n_epochs=10, learning_rate=1e-2, counts=[11, 11, 7])
    assert not result.diverged.any()


@pytest.mark.skipif(X64, reason="with x64 on, float64 readings are fitted in float64: nothing overflows")
def test_float64_readings_that_overflow_float32_are_refused_not_a_divergence():
    # x64 off: float64 readings are fitted in float32, where 1e40 is an infinity
    t_u = T_U.astype(np.float64)
    t_u[4] = 1e40
    expected = "t_u: reading 4 is 1e+40, which does not fit float32"
    assert _error(lambda: training_loop(10, 1e-2, [1.0, 0.0], t_u, T_C)).startswith(expected)
    assert _error(lambda: sweep(t_u, T_C, n_epochs=10, learning_rate=[1e-2])).startswith(expected)
    fleet = np.stack([T_U, t_u]).astype(np.float64)
    assert _error(lambda: fit_fleet(fleet, FLEET_C[:2], n_epochs=10, learning_rate=1e-2)).startswith(
        "t_u: sensor 1, reading 4 is 1e+40, which does not fit float32")
    # and initial params in float64 that do not fit float32 either
    assert _error(lambda: training_loop(10, 1e-2, np.array([1e40, 0.0]), t_u.clip(max=100), T_C)).startswith(
        "params: 1e+40 does not fit float32")


# ----- optax's extra arguments -----

def _least_squares_bound(params, t_u, t_c):
    """How far ``params`` can be from the least-squares line, from its float32 gradient.

    The loss is quadratic: the exact gradient at ``params`` is ``H e`` with ``e`` the distance
    from the minimiser. The float32 gradient computed there is within ``grad_err``
    (:func:`jaxcal.tolerances.evaluation_bounds`) of it, so ``|e| <= |H^-1| (|g| + grad_err)``.
    """
    _, grad = loss_and_grad(jnp.asarray(params), jnp.asarray(t_u), jnp.asarray(t_c))
    _, grad_err = evaluation_bounds(params, t_u, t_c)
    phi = np.stack([np.asarray(t_u, np.float64), np.ones(len(t_u))], axis=1)
    hessian = (2 / len(t_u)) * phi.T @ phi
    return np.abs(np.linalg.inv(hessian)) @ (np.abs(np.asarray(grad, np.float64)) + grad_err)


def _assert_least_squares(params, t_u, t_c):
    exact = np.polyfit(np.asarray(t_u, np.float64), np.asarray(t_c, np.float64), 1)
    params = np.asarray(params, np.float64)
    assert np.all(np.abs(params - exact) <= _least_squares_bound(params, t_u, t_c)), (params, exact)


@pytest.mark.standard_promotion  # optax mixes Python floats and int32 counts
def test_lbfgs_fits_the_book_problem_to_least_squares_in_a_few_steps():
    # L-BFGS reads value, grad and value_fn (its line search): 20 steps, where plain gradient
    # descent at 1e-2 is still far off after 5000
    result = training_loop(20, None, [1.0, 0.0], T_U, T_C, optimizer=optax.lbfgs(), log_every=5)
    assert not bool(result.diverged)
    assert int(result.epochs_run) == 20
    _assert_least_squares(result.params, T_U, T_C)
    # and its single step, as optax's documented loop drives it
    opt = optax.lbfgs()
    params, state = jnp.asarray([1.0, 0.0], jnp.float32), opt.init(jnp.asarray([1.0, 0.0], jnp.float32))
    for _ in range(20):
        params, state, _, _ = optax_step(opt, params, state, T_U, T_C)
    _assert_least_squares(params, T_U, T_C)


@pytest.mark.standard_promotion  # optax mixes Python floats and int32 counts
def test_reduce_on_plateau_runs_as_optaxs_own_loop():
    tx = optax.chain(optax.sgd(1e-2), optax.contrib.reduce_on_plateau())
    result = training_loop(5000, None, [1.0, 0.0], T_U, T_C, optimizer=tx)
    assert not bool(result.diverged)
    assert int(result.epochs_run) == 5000

    @jax.jit
    def reference(params):  # optax's documented loop: update(grads, state, params, value=loss)
        def epoch(_, carry):
            params, state = carry
            value, grad = jax.value_and_grad(objective)(params, jnp.asarray(T_U), jnp.asarray(T_C))
            updates, state = tx.update(grad, state, params, value=value)
            return optax.apply_updates(params, updates), state

        return jax.lax.fori_loop(0, 5000, epoch, (params, tx.init(params)))[0]

    expected = reference(jnp.asarray([1.0, 0.0], jnp.float32))
    # The same loss, gradient and plateau decisions; the two programs sum the readings in other
    # orders (jaxcal.onepass) and XLA fuses each differently: 4 ulps of the params, as in
    # tests/test_training.py's comparison of a batched and a single program.
    np.testing.assert_allclose(np.asarray(result.params), np.asarray(expected), rtol=4 * 2**-23)
    plain = training_loop(5000, 1e-2, [1.0, 0.0], T_U, T_C)
    assert not np.allclose(np.asarray(result.params), np.asarray(plain.params))  # the plateau acted


@pytest.mark.standard_promotion  # optax mixes Python floats and int32 counts
@pytest.mark.parametrize("counts", [None, [11, 11, 6]], ids=["full", "ragged"])
def test_a_fleet_with_lbfgs_fits_each_sensor_on_its_own(counts):
    # a full small fleet is vmap of the single fit; a ragged one would be tiles, which share one
    # update between sensors: each sensor is fitted alone instead
    result = fit_fleet(FLEET_U, FLEET_C, n_epochs=20, learning_rate=None, optimizer=optax.lbfgs(), counts=counts)
    assert not result.diverged.any()
    for s, count in enumerate(counts or [11] * 3):
        _assert_least_squares(result.params[s], FLEET_U[s, :count], FLEET_C[s, :count])


@pytest.mark.standard_promotion  # optax mixes Python floats and int32 counts
def test_a_sweep_with_an_lbfgs_factory():
    result = sweep(T_U, T_C, n_epochs=20, learning_rate=[1.0], optimizer=optax.lbfgs)
    assert not result.diverged.any()
    _assert_least_squares(result.params[0, 0], T_U, T_C)


def _needs(name):
    def update(updates, state, params=None, **extra):
        if name not in extra:  # as optax's transformations that read an argument do: required
            raise TypeError(f"custom.<locals>.update_fn() missing 1 required keyword-only argument: '{name}'")
        return updates, state

    return optax.GradientTransformationExtraArgs(lambda params: (), update)


@pytest.mark.standard_promotion  # optax mixes Python floats and int32 counts
@pytest.mark.parametrize("call", [
    lambda tx: training_loop(5, None, [1.0, 0.0], T_U, T_C, optimizer=tx),
    lambda tx: fit_fleet(FLEET_U, FLEET_C, n_epochs=5, learning_rate=None, optimizer=tx),
    lambda tx: fit_fleet(FLEET_U, FLEET_C, n_epochs=5, learning_rate=None, optimizer=tx, counts=[11, 11, 6]),
], ids=["training_loop", "fleet", "ragged fleet"])
def test_an_extra_argument_jaxcal_cannot_supply_is_one_line(call):
    message = _error(lambda: call(optax.chain(optax.sgd(1e-2), _needs("batch"))))
    _one_bounded_line(message)
    assert message.startswith("optimizer: the update of custom needs batch, an extra argument jaxcal cannot supply")
    # a plain GradientTransformation gets no extra arguments (optax's convention): say how to get them
    plain = optax.GradientTransformation(lambda params: (), lambda updates, state, params=None, *, value: (
        updates, state))
    message = _error(lambda: call(plain))
    _one_bounded_line(message)
    assert "needs value: build it as an optax.GradientTransformationExtraArgs" in message
