"""float64 parity cases, run by test_x64.py in a fresh interpreter with JAX_ENABLE_X64=1.

x64 is a start-up choice (never flipped inside the library or a test process), so these
cases live in a module that pytest does not collect by itself.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from test_parity_live import problems

from jaxcal import data, training_loop
from jaxcal.chapter import RUNS
from jaxcal.parity import RunConfig, compare, format_table

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.skipif(not jax.config.jax_enable_x64, reason="run with JAX_ENABLE_X64=1 (test_x64.py)")

T_U, T_C = data.readings(np.float64)  # the decimals rounded to float64, as torch.tensor(..., float64)


def _float64(config: RunConfig) -> RunConfig:
    scale = 0.1 if config.t_u.max() < 10 else 1.0
    if config.val is not None:
        train, val = (list(i) for i in data.BOOK_SPLIT)
        return config._replace(t_u=0.1 * T_U[train], t_c=T_C[train], val=(0.1 * T_U[val], T_C[val]))
    return config._replace(t_u=scale * T_U, t_c=T_C)


def _assert_parity(config: RunConfig) -> None:
    assert config.dtype == np.float64
    with jax.numpy_dtype_promotion("standard"):
        comparison = compare(config)
    assert comparison.ok, "\n".join(format_table(comparison))


@pytest.mark.parametrize("name", list(RUNS))
def test_book_run_float64_matches_torch_to_1e_12(name):
    config = _float64(RUNS[name])
    if config.n_epochs > 1000 and config.log_every < 100:
        config = config._replace(log_every=100)
    _assert_parity(config)


def test_quadratic_float64_matches_torch():
    _assert_parity(RunConfig(5000, 1e-4, (0.0, 1.0, 0.0), 0.1 * T_U, T_C, model="quadratic", log_every=500))


def test_library_follows_float64_inputs():
    result = training_loop(10, 1e-2, [1.0, 0.0], 0.1 * T_U, T_C, log_every=5)
    assert result.params.dtype == result.history.loss.dtype == np.float64


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems(None))
def test_random_problems_float64(config):
    _assert_parity(config._replace(t_u=config.t_u.astype(np.float64), t_c=config.t_c.astype(np.float64)))


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems("adam"))
def test_random_problems_adam_float64(config):
    _assert_parity(config._replace(t_u=config.t_u.astype(np.float64), t_c=config.t_c.astype(np.float64)))
