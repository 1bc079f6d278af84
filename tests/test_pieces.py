"""The three pieces (evaluation, update, layout) compose in one loop; optax habits; one result shape."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxcal
from jaxcal import data, evaluate, fit, fit_fleet, sweep, training_loop, updates
from jaxcal.tolerances import evaluation_bounds, gd_trajectory_bounds

P0 = [1.0, 0.0]
PACKAGE = Path(jaxcal.__file__).parent


# optax's Adam mixes its int32 step count with floats: standard promotion, as optax expects
adam_promotion = pytest.mark.usefixtures("standard_promotion")


@pytest.fixture
def standard_promotion():
    with jax.numpy_dtype_promotion("standard"):
        yield


@adam_promotion
def test_a_built_optax_transformation_is_accepted_with_its_own_learning_rate():
    built = training_loop(2000, None, P0, data.t_u, data.t_c, optimizer=optax.adam(0.1))
    named = training_loop(2000, 0.1, P0, data.t_u, data.t_c, optimizer="adam")
    # the same optax arithmetic in the same order, its rate a constant here and an input there
    np.testing.assert_array_equal(np.asarray(built.params), np.asarray(named.params))


def test_a_built_transformation_with_a_learning_rate_of_its_own_refuses_a_second_one():
    with pytest.raises(ValueError, match="learning_rate: this optimizer holds its own learning rate") as info:
        training_loop(10, 0.1, P0, data.t_u, data.t_c, optimizer=optax.adam(0.1))
    assert info.value.name == "learning_rate"  # the argument's name as data, for the CLI's table


@adam_promotion
def test_an_injected_learning_rate_is_traced_and_never_recompiles(compiles):
    tx = optax.inject_hyperparams(optax.adam)(learning_rate=0.5)
    first = training_loop(300, 0.1, P0, data.t_u, data.t_c, optimizer=tx)
    compiled = compiles.count("_compiled_loop")
    second = training_loop(300, 0.05, P0, data.t_u, data.t_c, optimizer=tx)
    third = training_loop(300, jnp.float32(0.2), P0, data.t_u, data.t_c, optimizer=tx)
    assert compiles.count("_compiled_loop") == compiled  # new rates, the same program
    # the rate given replaced the injected 0.5: each run is the transformation built at that rate
    for lr, result in ((0.1, first), (0.05, second), (0.2, third)):
        own = training_loop(300, None, P0, data.t_u, data.t_c, optimizer=optax.inject_hyperparams(optax.adam)(
            learning_rate=lr))
        np.testing.assert_array_equal(np.asarray(result.params), np.asarray(own.params))


def test_optax_sgd_built_matches_the_plain_update_within_derived_bounds():
    result = training_loop(500, None, P0, data.t_un, data.t_c, optimizer=optax.sgd(1e-2), log_every=500)
    plain = training_loop(500, 1e-2, P0, data.t_un, data.t_c, log_every=500)
    bounds = gd_trajectory_bounds(P0, data.t_un, data.t_c, 1e-2, 500)
    # two float32 runs of the same descent (p + (-lr * g) against p - lr * g): within twice the bound
    assert np.all(np.abs(np.asarray(result.params) - np.asarray(plain.params)) <= 2 * bounds.params_err[-1])


def test_the_pieces_compose_in_the_one_loop_under_jit():
    @jax.jit
    def run(lr, params, t_u, t_c):
        return fit(evaluate.autograd(), updates.from_optax(optax.sgd(lr)), params, (t_u, t_c), n_epochs=500)

    composed = run(jnp.float32(1e-2), jnp.asarray(P0), data.t_un, data.t_c)
    seed = training_loop(500, 1e-2, P0, data.t_un, data.t_c, optimizer="sgd", log_every=500)
    bounds = gd_trajectory_bounds(P0, data.t_un, data.t_c, 1e-2, 500)
    assert np.all(np.abs(np.asarray(composed.params) - np.asarray(seed.params)) <= 2 * bounds.params_err[-1])
    assert composed.history is None  # nothing logged unless asked


def test_one_result_shape_for_fits_sweeps_and_fleets():
    single = training_loop(300, 1e-2, P0, data.t_un, data.t_c)
    grid = sweep(data.t_un, data.t_c, n_epochs=300, learning_rate=[1e-3, 1e-2], params=[P0, [0.0, 0.0], [2.0, 1.0]])
    fleet = fit_fleet(np.stack([data.t_un] * 5), np.stack([data.t_c] * 5), n_epochs=300, learning_rate=1e-2)
    for result, lead in ((single, ()), (grid, (2, 3)), (fleet, (5,))):
        assert np.shape(result.params) == (*lead, 2)
        for field in (result.loss, result.epochs_run, result.diverged):
            assert np.shape(field) == lead
        assert result.param_names == ("w", "b")
    # the final loss is the loss at the final params (float64 value within the float32 bound)
    for params, loss in ((single.params, single.loss), (grid.params[1, 0], grid.loss[1, 0]), (fleet.params[3],
                                                                                              fleet.loss[3])):
        w, b = np.asarray(params, np.float64)
        want = np.mean((w * data.t_un.astype(np.float64) + b - data.t_c) ** 2)
        loss_err, _ = evaluation_bounds(np.asarray(params), data.t_un, data.t_c)
        assert abs(float(loss) - want) <= loss_err


def test_a_callers_model_names_its_params_from_its_signature():
    def line(t_u, slope, offset):
        return slope * t_u + offset

    result = training_loop(100, 1e-2, P0, data.t_un, data.t_c, model=line)
    assert result.param_names == ("slope", "offset")


@pytest.mark.parametrize(("function", "data_args"), [
    (jaxcal.training_loop, 5), (jaxcal.fit_fleet, 2), (jaxcal.sweep, 2), (jaxcal.fit, 4),
    (jaxcal.loss_and_grad, 3), (jaxcal.objective, 3), (jaxcal.loss_fn, 2), (jaxcal.least_squares, 2),
])
def test_arguments_after_the_data_are_keyword_only(function, data_args):
    parameters = list(inspect.signature(function).parameters.values())
    assert all(p.kind is p.POSITIONAL_OR_KEYWORD for p in parameters[:data_args])
    assert all(p.kind is p.KEYWORD_ONLY for p in parameters[data_args:]), function.__name__


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module is None:  # from . import book
            found.update("." * node.level + alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.add("." * node.level + node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_the_library_knows_nothing_of_the_cli():
    for path in PACKAGE.glob("*.py"):
        if path.name == "__main__.py":  # the console script: the command line's entry point
            continue
        imported = _imports(path)
        assert not any(name.startswith((".cli", "jaxcal.cli")) for name in imported), path.name
        # nor does it spell a flag in an error: the CLI maps argument names to flags
        flags = [node.value for node in ast.walk(ast.parse(path.read_text()))
                 if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("--")]
        assert not flags, (path.name, flags)


def test_the_pure_core_imports_only_jax_optax_and_numpy():
    # expression: a model's text parsed into a JAX function (ast, never eval), part of resolving a model
    core = ("core", "evaluate", "updates", "loop", "exact", "arithmetic", "book", "_layout", "onepass", "training",
            "expression")
    allowed = {"jax", "optax", "numpy", "__future__", "functools", "inspect", "dataclasses", "collections.abc",
               "typing", "math", "numbers", "logging", "ast", "operator"}
    for name in core:
        for module in _imports(PACKAGE / f"{name}.py"):
            if module.startswith("."):
                assert module.lstrip(".").split(".")[0] in (*core, "_checks", "data"), (name, module)
            else:
                assert module.split(".")[0] in {m.split(".")[0] for m in allowed}, (name, module)


def test_small_and_tiled_fleets_agree_within_derived_bounds():
    rng = np.random.default_rng(5)
    t_u = rng.uniform(2, 8, (12, 11)).astype(np.float32)
    t_c = (5 * t_u - 17 + rng.normal(0, 1, t_u.shape)).astype(np.float32)
    small = fit_fleet(t_u, t_c, n_epochs=300, learning_rate=1e-2)  # vmap of the single fit
    tiled = fit_fleet(t_u, t_c, n_epochs=300, learning_rate=1e-2, tile=8)  # sensors on the SIMD lanes
    for s in range(12):
        bounds = gd_trajectory_bounds(P0, t_u[s], t_c[s], 1e-2, 300)
        assert np.all(np.abs(small.params[s] - tiled.params[s]) <= 2 * bounds.params_err[-1]), s


@adam_promotion
def test_an_injected_schedule_is_refused_rather_than_silently_kept():
    # a schedule is recomputed from the step count at every step: a learning rate given here
    # could never reach an update
    tx = optax.inject_hyperparams(optax.adam)(learning_rate=optax.exponential_decay(0.1, 100, 0.5))
    with pytest.raises(ValueError, match="learning_rate: this optimizer holds its own learning rate"):
        training_loop(10, 0.1, P0, data.t_u, data.t_c, optimizer=tx)
    training_loop(10, None, P0, data.t_u, data.t_c, optimizer=tx)  # its own schedule: fine


def test_a_sweep_names_what_it_needs_of_a_built_transformation():
    with pytest.raises(ValueError, match="optimizer: a sweep varies the learning rate"):
        sweep(data.t_un, data.t_c, n_epochs=10, learning_rate=[1e-3, 1e-2], optimizer=optax.sgd(0.1))


def test_an_unchecked_loop_refuses_a_log_it_would_not_write():
    with pytest.raises(ValueError, match="track: track=False logs nothing"):
        fit(evaluate.autograd(), updates.plain(1e-2), jnp.asarray(P0), (data.t_un, data.t_c), n_epochs=5,
            log_every=5, track=False)


def test_a_callers_optax_transformation_gets_the_params_vector():
    seen = []

    def init(params):
        seen.append(isinstance(params, jax.Array) and params.shape == (2,))
        return ()

    def update(grads, state, params=None):
        assert isinstance(grads, jax.Array)
        assert grads.shape == (2,)
        return -1e-2 * grads, state

    result = training_loop(50, None, P0, data.t_un, data.t_c, optimizer=optax.GradientTransformation(init, update))
    assert seen
    assert all(seen)
    assert np.all(np.isfinite(np.asarray(result.params)))


def test_an_unhashable_optimizer_is_a_one_line_error():
    class Unhashable:
        __hash__ = None

        def __call__(self, learning_rate):
            return optax.sgd(learning_rate)

    with pytest.raises(TypeError, match="optimizer: the optimizer and the model must be hashable") as info:
        training_loop(10, 1e-2, P0, data.t_un, data.t_c, optimizer=Unhashable())
    assert "\n" not in str(info.value)
