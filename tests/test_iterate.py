"""The fleet loop (``jaxcal._iterate.iterate_fleet``): slots that take the next fit when theirs stops run
each fit exactly as its own loop (``iterate``) runs it."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcal._iterate import _tiled, iterate_fleet
from jaxcal.solvers import STATUS, LevenbergMarquardt


def _residuals(y, args):
    t_u, t_c = args
    return y[0] * (1 - jnp.exp(-y[1] * t_u)) - t_c


def _fleet(fits: int):
    """Misra1a-shaped fits whose step counts differ, one that stops at its start (NaN readings) and one
    that cannot converge in the steps it is given (a start far off)."""
    rng = np.random.default_rng(7)
    t_u = np.broadcast_to(np.linspace(77.6, 760.0, 14), (fits, 14)).astype(np.float32)
    truth = np.array([238.9, 5.5e-4]) * rng.uniform(0.6, 1.4, (fits, 2))
    t_c = (truth[:, :1] * (1 - np.exp(-truth[:, 1:] * t_u)) + rng.normal(0, 0.1, t_u.shape)).astype(np.float32)
    t_c[3] = np.nan
    y0 = np.broadcast_to(np.float32([500.0, 1e-4]), (fits, 2)).copy()
    y0[5] = [1e6, 1.0]
    return jnp.asarray(y0), (jnp.asarray(t_u), jnp.asarray(t_c))


@pytest.mark.parametrize("slots", [1, 4, 16, 64])
def test_each_fit_runs_as_its_own_loop_whatever_the_slots(slots):
    solver = LevenbergMarquardt(max_steps=30)
    y0, args = _fleet(40)
    # each fit by its own loop (iterate), vmap over tiles of as many fits as the fleet has slots
    alone = jax.jit(functools.partial(_tiled, solver, _residuals, width=slots))(y0, args)
    fleet = jax.jit(functools.partial(iterate_fleet, solver, _residuals, slots=slots))(y0, args)
    steps, status = np.asarray(alone[2]), np.asarray(alone[1])
    # the fleet exercises every way a fit ends: at its start, by its test, at the step limit
    assert {STATUS[s] for s in status} == {"converged", "nonfinite", "max_steps"}
    assert steps[3] == 0
    assert len(set(steps.tolist())) > 3
    np.testing.assert_array_equal(np.asarray(fleet.steps), steps)
    np.testing.assert_array_equal(np.asarray(fleet.status), status)
    # the same operations on the same numbers in batches of the same width: the same float32 values,
    # whichever slot a fit ran in (XLA's vectorised code may round differently for another width)
    np.testing.assert_array_equal(np.asarray(fleet.value), np.asarray(alone[0]))


def test_more_slots_than_fits_and_one_fit():
    solver = LevenbergMarquardt(max_steps=30)
    y0, args = _fleet(6)
    many = iterate_fleet(solver, _residuals, y0, args, slots=64)
    one = iterate_fleet(solver, _residuals, y0[:1], jax.tree_util.tree_map(lambda a: a[:1], args), slots=64)
    assert many.value.shape == (6, 2)
    assert one.value.shape == (1, 2)
    assert int(one.steps[0]) == int(many.steps[0]) > 0
