"""The explicit steps and the compiled training loop: semantics, compilation, divergence, errors."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from programs import sums_in

from jaxcal import data, optax_step, sgd_step, training_loop

P0 = jnp.asarray([1.0, 0.0])


def _python_loop(n_epochs, lr, t_u, t_c):
    """The seed's loop, eagerly, one jitted sgd_step per epoch: the reference for the scan."""
    params = P0
    rows = []
    for epoch in range(1, n_epochs + 1):
        params, loss, grad = sgd_step(params, t_u, t_c, jnp.float32(lr))
        rows.append((epoch, loss, grad, params))
    return params, rows


def test_training_loop_equals_the_eager_loop_of_sgd_steps():
    # The same run, evaluated twice in float32: the eager loop takes jax.grad's program as it
    # is, training_loop takes its sums in one pass with the mean's constants applied once (see
    # jaxcal.onepass), and XLA fuses each differently. Each is within the derived bound of the
    # exact run (jaxcal.tolerances), so the two are within twice that bound of each other.
    from jaxcal.tolerances import gd_trajectory_bounds

    params, rows = _python_loop(50, 1e-2, data.t_un, data.t_c)
    result = training_loop(50, 1e-2, P0, data.t_un, data.t_c, log_every=10)
    bounds = gd_trajectory_bounds(P0, data.t_un, data.t_c, 1e-2, 50)
    assert np.all(np.abs(np.asarray(result.params) - np.asarray(params)) <= 2 * bounds.params_err[-1])
    for i, epoch in enumerate(np.asarray(result.history.epoch)):
        _, loss, grad, after = rows[epoch - 1]
        row = epoch - 1
        assert abs(float(result.history.loss[i]) - float(loss)) <= 2 * bounds.loss_err[row]
        assert np.all(np.abs(np.asarray(result.history.params[i]) - np.asarray(after)) <= 2 * bounds.params_err[row])
        assert np.all(np.abs(np.asarray(result.history.grad[i]) - np.asarray(grad)) <= 2 * bounds.grad_err[row])


def test_history_rows_are_the_log_points():
    result = training_loop(1234, 1e-2, P0, data.t_un, data.t_c, log_every=100)
    np.testing.assert_array_equal(np.asarray(result.history.epoch), np.arange(100, 1201, 100))
    assert int(result.epochs_run) == 1234  # the 34 epochs after the last log point still run
    assert result.history.grad.shape == result.history.params.shape == (12, 2)


def test_history_params_are_the_params_after_that_epochs_update():
    result = training_loop(20, 1e-2, P0, data.t_un, data.t_c, log_every=1)
    before = np.concatenate([np.asarray(P0)[None], np.asarray(result.history.params)[:-1]]).astype(np.float64)
    step = float(np.float32(1e-2)) * np.asarray(result.history.grad, np.float64)
    # XLA may fuse p - lr * g into one fused multiply-add (one rounding instead of two), so the
    # update is checked to within the product's rounding, u |lr g|, plus one ulp of the result.
    err = np.abs(np.asarray(result.history.params, np.float64) - (before - step))
    assert np.all(err <= 2**-24 * np.abs(step) + np.spacing(np.abs(np.asarray(result.history.params))))


def test_new_learning_rate_or_initial_params_do_not_recompile(compiles):
    training_loop(300, 1e-2, P0, data.t_un, data.t_c, log_every=100)
    first = compiles.count("_compiled_loop")
    training_loop(300, 3e-3, [2.0, 1.0], data.t_un, data.t_c, log_every=100)
    training_loop(300, jnp.float32(5e-3), jnp.asarray([0.5, -1.0]), data.t_un * 2, data.t_c, log_every=100)
    training_loop(300, np.float32(1e-3), np.asarray([0.5, -1.0]), data.t_un, data.t_c, log_every=100)
    assert compiles.count("_compiled_loop") == first
    training_loop(301, 1e-2, P0, data.t_un, data.t_c, log_every=100)  # a new epoch count is a new program
    assert compiles.count("_compiled_loop") == first + 1


def test_sgd_step_is_the_seeds_update():
    new, _, grad = sgd_step(P0, data.t_u, data.t_c, jnp.float32(1e-5))
    step = float(np.float32(1e-5)) * np.asarray(grad, np.float64)
    # p - lr * g, possibly fused into one FMA: within the product's rounding plus one ulp.
    err = np.abs(np.asarray(new, np.float64) - (np.asarray(P0, np.float64) - step))
    assert np.all(err <= 2**-24 * np.abs(step) + np.spacing(np.abs(np.asarray(new))))


def test_optax_sgd_step_matches_the_plain_step():
    opt = optax.sgd(1e-2)
    state = opt.init(P0)
    p_optax, state, loss_optax, _ = optax_step(opt, P0, state, data.t_un, data.t_c)
    p_plain, loss_plain, _ = sgd_step(P0, data.t_un, data.t_c, jnp.float32(1e-2))
    assert float(loss_optax) == float(loss_plain)
    # optax adds -lr * g, the plain step subtracts lr * g: identical roundings.
    np.testing.assert_array_equal(np.asarray(p_optax), np.asarray(p_plain))


@pytest.mark.standard_promotion
def test_optax_step_carries_adam_state_explicitly():
    opt = optax.adam(0.1)
    params, state = P0, opt.init(P0)
    for _ in range(3):
        params, state, _, _ = optax_step(opt, params, state, data.t_u, data.t_c)
    assert int(state[0].count) == 3
    # Adam's first steps move each parameter by about lr, whatever the gradient's size.
    np.testing.assert_allclose(np.abs(np.asarray(params - P0)), 0.3, rtol=0.05)


@pytest.mark.standard_promotion
def test_adam_on_raw_readings_ends_where_the_book_says(book_runs):
    run = book_runs["p1ch5_3_c10_adam_tu_lr1e-1_2000"]
    result = training_loop(2000, 0.1, P0, data.t_u, data.t_c, optimizer="adam")
    torch_params = np.asarray(run["torch_2_13"]["returned_params_full"])
    # The book prints 4 decimals ([0.5367, -17.3021]): half a unit there is 5e-5.
    np.testing.assert_allclose(np.asarray(result.params), [0.5367, -17.3021], atol=5e-5)
    # torch 2.13 ran the same float32 Adam; near its fixed point Adam's step is ~lr * m/sqrt(v),
    # so the two differ by a few float32 ulps of b (|b| ~ 17.3: ulp 1.9e-6): allow 4 ulps.
    np.testing.assert_allclose(np.asarray(result.params), torch_params, atol=4 * 1.9e-6)


@pytest.mark.standard_promotion
def test_a_factory_optimizer_is_accepted():
    result = training_loop(200, 0.1, P0, data.t_u, data.t_c, optimizer=optax.adam)
    named = training_loop(200, 0.1, P0, data.t_u, data.t_c, optimizer="adam")
    np.testing.assert_array_equal(np.asarray(result.params), np.asarray(named.params))


def test_divergence_is_a_result_at_the_books_epoch():
    # The book: raw t_u at lr 1e-2 overflows to inf at epoch 11 and the loop breaks.
    result = training_loop(100, 1e-2, P0, data.t_u, data.t_c, log_every=1)
    assert bool(result.diverged)
    assert int(result.epochs_run) == 11
    assert np.isinf(float(result.history.loss[10]))
    assert np.all(np.isfinite(np.asarray(result.params)))
    np.testing.assert_array_equal(np.asarray(result.params), np.asarray(result.history.params[9]))


def test_a_stable_run_is_not_diverged():
    result = training_loop(100, 1e-4, P0, data.t_u, data.t_c, log_every=50)
    assert not bool(result.diverged)
    assert int(result.epochs_run) == 100


def test_dtype_follows_the_readings():
    result = training_loop(10, 1e-2, [1, 0], data.t_un, data.t_c, log_every=5)
    assert result.params.dtype == result.history.loss.dtype == jnp.float32


def test_training_loop_runs_under_vmap_over_learning_rates():
    rates = jnp.asarray([1e-3, 1e-2], jnp.float32)
    batched = jax.vmap(lambda lr: training_loop(100, lr, P0, data.t_un, data.t_c, log_every=50))(rates)
    single = training_loop(100, 1e-2, P0, data.t_un, data.t_c, log_every=50)
    # vmap batches the same operations; a batched program may fuse differently: 4 ulps.
    np.testing.assert_allclose(np.asarray(batched.params[1]), np.asarray(single.params), rtol=4 * 2**-23)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"n_epochs": 0}, ValueError, "n_epochs: must be a positive integer, got 0"),
        ({"n_epochs": 2.5}, TypeError, "n_epochs: must be a positive integer"),
        ({"n_epochs": True}, TypeError, "n_epochs: must be a positive integer"),
        ({"learning_rate": -1.0}, ValueError, "learning_rate: must be a positive finite number"),
        ({"learning_rate": float("nan")}, ValueError, "learning_rate: must be a positive finite number"),
        ({"learning_rate": "fast"}, TypeError, "learning_rate: must be a positive finite number"),
        ({"log_every": 0}, ValueError, "log_every: must be a positive integer"),
        ({"params": [1.0, 0.0, 3.0]}, ValueError, "params: must be 2 values"),
        ({"params": [np.nan, 0.0]}, ValueError, "params: value 0 is nan; it must be finite"),
        ({"t_u": data.t_u[:1], "t_c": data.t_c[:1]}, ValueError, "t_u: needs at least 2 readings"),
        ({"t_u": data.t_u[:5]}, ValueError, "t_u and t_c: must have the same length"),
        ({"t_u": np.arange(11)}, TypeError, "t_u: must be a floating-point array"),
        ({"optimizer": "rmsprop"}, ValueError, "optimizer: unknown optimizer 'rmsprop'"),
        ({"optimizer": optax.sgd(0.1)}, ValueError, "learning_rate: this optimizer holds its own learning rate"),
        ({"model": "cubic"}, ValueError, "model: unknown model 'cubic'"),
    ],
)
def test_bad_input_raises_one_line_errors(kwargs, error, message):
    args = {"n_epochs": 10, "learning_rate": 1e-2, "params": [1.0, 0.0], "t_u": data.t_un, "t_c": data.t_c}
    args.update(kwargs)
    call = {k: args.pop(k) for k in ("optimizer", "model", "log_every") if k in args}
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")) as info:
        training_loop(args["n_epochs"], args["learning_rate"], args["params"], args["t_u"], args["t_c"], **call)
    assert "\n" not in str(info.value)


def _jaxpr_reductions(n: int) -> list[tuple[str, tuple[int, ...]]]:
    from jaxcal import training

    x = np.ones(n, np.float32)
    run = lambda x, y: training.training_loop(3, 1e-4, [1.0, 0.0], x, y, log_every=3)  # noqa: E731
    return [(f.primitive, f.shape) for f in sums_in(run, x, x)]


cpu_only = pytest.mark.skipif(jax.default_backend() != "cpu", reason="the blocked layout is the CPU's")


@cpu_only
@pytest.mark.parametrize("layout", range(2))
def test_a_large_fit_reads_its_readings_in_blocks_in_one_pass(layout):
    from jaxcal import _layout

    least, rows, lanes = _layout.BLOCK_LAYOUTS[layout]
    n = max(least, 2 * rows * lanes) + 7
    found = _jaxpr_reductions(n)
    laid = (n // (rows * lanes), rows, lanes)
    # loss, dw and db over each block's rows: one reduction (per traced epoch body), the only one
    # reading the readings (the tail is summed apart); none over all n readings
    assert ("reduce", laid) in found
    assert all(name == "reduce" for name, shape in found if shape == laid)
    assert not any(shape == (n,) for _, shape in found)


def test_a_small_fit_is_not_blocked():
    from jaxcal import _layout

    n = min(least for least, _, _ in _layout.BLOCK_LAYOUTS) - 1
    assert not any(len(shape) == 3 for _, shape in _jaxpr_reductions(n))


@pytest.mark.parametrize("layout", range(2))
def test_blocked_large_fit_agrees_with_the_plain_one_within_derived_bounds(monkeypatch, layout):
    from jaxcal import _layout, training
    from jaxcal.tolerances import gd_trajectory_bounds

    rng = np.random.default_rng(11)
    least, rows, lanes = _layout.BLOCK_LAYOUTS[layout]
    n = max(least, 2 * rows * lanes) + 3456
    t_u = rng.uniform(2, 8, n).astype(np.float32)
    t_c = (5.4 * t_u - 17 + rng.normal(0, 1, n)).astype(np.float32)
    monkeypatch.setattr(_layout, "BLOCK_LAYOUTS", _layout.BLOCK_LAYOUTS[layout:])
    assert _layout.for_fit(t_u, elementwise=True).blocks[1:] == (rows, lanes)
    training._compiled_loop.clear_cache()
    blocked = training.training_loop(40, 1e-2, [1.0, 0.0], t_u, t_c, log_every=10)
    monkeypatch.setattr(_layout, "BLOCK_LAYOUTS", ())  # the same run, summed as one 1-D reduction
    training._compiled_loop.clear_cache()
    plain = training.training_loop(40, 1e-2, [1.0, 0.0], t_u, t_c, log_every=10)
    training._compiled_loop.clear_cache()
    bounds = gd_trajectory_bounds([1.0, 0.0], t_u, t_c, 1e-2, 40)
    # two float32 evaluations of the same run, summed in different orders: each within the
    # derived bound of the exact run, so within twice of each other
    assert np.all(np.abs(np.asarray(blocked.params) - np.asarray(plain.params)) <= 2 * bounds.params_err[-1])
    rows = np.asarray(blocked.history.epoch) - 1
    assert np.all(np.abs(np.asarray(blocked.history.loss) - np.asarray(plain.history.loss))
                  <= 2 * bounds.loss_err[rows])
