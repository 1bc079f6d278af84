"""one_pass: the same values as the function it wraps, with its sibling sums merged into one pass."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from programs import sums_in

from jaxcal.core import loss_fn, model, objective
from jaxcal.onepass import one_pass

EPS32 = float(np.finfo(np.float32).eps)


def _reductions(fun, *args, shapes: bool = False) -> list[tuple]:
    """(primitive, operand count[, operand shape]) of every sum in fun's program."""
    return [(f.primitive, f.outputs, *([f.shape] if shapes else [])) for f in sums_in(fun, *args)]


def _fleet_loss(params, x, y):
    return loss_fn(model(x, *(p[None] for p in params)), y, axis=0).sum()


def _fleet(sensors: int, readings: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(2.0, 8.0, (readings, sensors)).astype(np.float32)
    y = (5.4 * x - 17.0 + rng.normal(0, 1, x.shape)).astype(np.float32)
    params = (rng.uniform(0, 2, sensors).astype(np.float32), rng.uniform(-1, 1, sensors).astype(np.float32))
    return params, x, y


def _sum_bound(terms: np.ndarray, axis) -> np.ndarray:
    # Two float32 evaluations of a sum of n products (a constant c times one or two factors), in
    # any two orders, with c applied per term (at most 2 roundings per term) or once to the sum (1
    # rounding per term, 1 for c): each within (n - 1 + 2) u * sum|terms| of the exact sum (first
    # order, u = eps/2), so within (n + 1) eps * sum|terms| of each other.
    n = np.prod([terms.shape[a] for a in np.atleast_1d(axis)])
    return (n + 1) * EPS32 * np.abs(terms).sum(axis=axis) + np.finfo(np.float32).tiny


def test_the_gradient_sums_of_a_fleet_become_one_reduction():
    params, x, y = _fleet(16, 11)
    grad = jax.grad(_fleet_loss)
    assert _reductions(grad, params, x, y).count(("reduce_sum", 1)) >= 2
    merged = _reductions(one_pass(grad), params, x, y)
    # w's and b's sums over the readings in one variadic reduction; the loss's own sum is dead
    # code for the gradient and is dropped rather than merged in
    assert ("reduce", 2) in merged
    assert not any(name == "reduce" and n > 2 for name, n in merged)


def _scaled_sum_operands(fun, *args) -> list[str]:
    """The sums' operands that are a product with a constant (a literal or a broadcast value)."""
    jaxpr = jax.make_jaxpr(fun)(*args).jaxpr
    defs = {v: eqn for eqn in jaxpr.eqns for v in eqn.outvars}

    def constant(v) -> bool:
        return isinstance(v, jax.extend.core.Literal) or (
            v in defs and defs[v].primitive.name == "broadcast_in_dim")

    found = []
    for eqn in jaxpr.eqns:
        if eqn.primitive.name in ("reduce_sum", "reduce"):
            for v in eqn.invars[:len(eqn.outvars)]:
                if v in defs and defs[v].primitive.name == "mul" and any(map(constant, defs[v].invars)):
                    found.append(str(v))
    return found


def test_the_mean_s_constant_factors_multiply_the_sums_not_every_term():
    params, x, y = _fleet(16, 11)
    grad = jax.grad(_fleet_loss)
    # jax.grad's own program sums (2/n) * residual (* t_u) term by term
    assert _scaled_sum_operands(grad, params, x, y)
    assert _scaled_sum_operands(one_pass(grad), params, x, y) == []


def test_value_and_gradient_of_the_seed_loss_become_one_reduction():
    from jaxcal import data

    p = jnp.asarray([1.0, 0.0])
    merged = _reductions(one_pass(jax.value_and_grad(objective)), p, data.t_un, data.t_c)
    assert merged == [("reduce", 3)]


def test_max_extent_leaves_larger_sums_alone():
    params, x, y = _fleet(8, 11)
    grad = jax.grad(_fleet_loss)
    # the sums over the 11 readings stay separate; only the size-1 sums left by w[None] merge
    found = _reductions(one_pass(grad, max_extent=10), params, x, y, shapes=True)
    assert [n for name, n, shape in found if shape == (11, 8)] == [1, 1]
    found = _reductions(one_pass(grad, max_extent=11), params, x, y, shapes=True)
    assert [(name, n) for name, n, shape in found if shape == (11, 8)] == [("reduce", 2)]


@settings(max_examples=25, deadline=None)
@given(sensors=st.integers(1, 40), readings=st.integers(2, 30), seed=st.integers(0, 2**16))
def test_fleet_gradient_equals_the_unmerged_one(sensors, readings, seed):
    params, x, y = _fleet(sensors, readings, seed)
    grad = jax.jit(jax.grad(_fleet_loss))
    merged = jax.jit(one_pass(jax.grad(_fleet_loss)))
    want, got = grad(params, x, y), merged(params, x, y)
    # the summed terms, per parameter: d loss / d t_p times d t_p / d param
    r = 2 * (params[0] * x + params[1] - y) / readings
    for g, w, terms in zip(got, want, (r * x, r), strict=True):
        np.testing.assert_array_less(np.abs(np.asarray(g) - np.asarray(w)), _sum_bound(terms, 0))


def test_results_match_under_vmap_jit_and_with_pytrees_and_nested_calls():
    @jax.jit
    def inner(a):
        return jnp.sin(a)

    def fun(tree, scale):
        a, b = tree["a"], tree["b"]
        s = inner(a) * scale
        return {"sums": (s.sum(axis=0), (s * b).sum(axis=0)), "max": a.max(), "total": (a + 1.0).sum()}

    rng = np.random.default_rng(3)
    tree = {"a": rng.normal(size=(5, 7, 3)).astype(np.float32), "b": rng.normal(size=(5, 7, 3)).astype(np.float32)}
    scale = np.float32(0.5)
    want = jax.vmap(fun, in_axes=({"a": 2, "b": 2}, None))(tree, scale)
    got = jax.jit(jax.vmap(one_pass(fun), in_axes=({"a": 2, "b": 2}, None)))(tree, scale)
    assert jax.tree.structure(got) == jax.tree.structure(want)
    for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        # sums of at most 35 terms of size <= 1 (|sin| <= 1, |b| ~ 3): (n - 1) eps * sum|terms|
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=0, atol=34 * EPS32 * 35 * 4)


def test_an_unused_sum_is_not_computed_and_literals_pass_through():
    def fun(x):
        _unused = (x * 3.0).sum()
        return x.sum(), 2.0

    x = np.arange(6, dtype=np.float32)
    assert _reductions(one_pass(fun), x) == [("reduce_sum", 1)]
    total, two = one_pass(fun)(x)
    assert float(total) == 15.0
    assert two == 2.0


@pytest.mark.parametrize("dtype", [np.int32, np.float32])
def test_sums_of_different_dtypes_or_axes_stay_apart(dtype):
    def fun(x, y):
        return x.sum(axis=0), y.sum(axis=0), x.sum(axis=1)

    x = np.ones((3, 4), dtype)
    y = np.ones((3, 4), np.float32)
    found = _reductions(one_pass(fun), x, y)
    merged = [n for name, n in found if name == "reduce"]
    assert merged == ([] if dtype == np.int32 else [2])
    got = one_pass(fun)(x, y)
    assert [np.asarray(g).tolist() for g in got] == [[3] * 4, [3.0] * 4, [4] * 3]


@pytest.mark.parametrize("how", ["replay fails", "no internals"])
def test_without_the_internals_it_relies_on_one_pass_evaluates_the_plain_program(monkeypatch, how):
    import jaxcal.onepass as onepass

    if how == "replay fails":  # an installed JAX whose jaxprs the replay does not understand
        def broken(*args, **kwargs):
            raise TypeError("Primitive.bind() argument after ** must be a mapping, not tuple")

        monkeypatch.setattr(onepass, "_replay", broken)
    else:  # jax.extend.core missing or different: the import-time check failed
        monkeypatch.setattr(onepass, "_AVAILABLE", False)
    params, x, y = _fleet(16, 11)
    grad = jax.value_and_grad(_fleet_loss)
    # the plain program: its separate sums, not one merged reduction
    assert _reductions(one_pass(grad), params, x, y) == _reductions(grad, params, x, y)
    # and the plain program's values, bit for bit: it is the same program
    got, want = jax.jit(one_pass(grad))(params, x, y), jax.jit(grad)(params, x, y)
    for a, b in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_the_training_loop_still_runs_when_one_pass_falls_back(monkeypatch):
    import jaxcal.onepass as onepass
    from jaxcal import data, training_loop
    from jaxcal.tolerances import gd_trajectory_bounds

    fast = training_loop(2000, 1e-2, [1.0, 0.0], data.t_un, data.t_c, log_every=2000)
    monkeypatch.setattr(onepass, "_AVAILABLE", False)
    # a new program (different sums) is traced: log_every differs so the cached one is not reused
    plain = training_loop(2000, 1e-2, [1.0, 0.0], data.t_un, data.t_c, log_every=1000)
    bounds = gd_trajectory_bounds([1.0, 0.0], data.t_un, data.t_c, 1e-2, 2000)
    # both are float32 evaluations of the same run, each within the derived bound of the exact one
    assert np.all(np.abs(np.asarray(fast.params) - np.asarray(plain.params)) <= 2 * bounds.params_err[-1])
