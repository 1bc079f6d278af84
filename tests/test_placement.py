"""Placement: ``device=`` (the CLI's ``--device``) chooses where a fit, a sweep or a fleet runs; on
a CPU-only machine every choice that exists is the default path, bit for bit."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from jaxcal import _layout, data, fit_fleet, sweep, training_loop

pytestmark = pytest.mark.skipif(jax.default_backend() != "cpu", reason="what a CPU-only machine does")


def test_auto_never_moves_work_on_a_cpu_only_machine(monkeypatch):
    monkeypatch.setitem(_layout.CROSSOVER, "fit", 10**9)  # even were every fit "too small"
    assert _layout.chosen_device("auto", "fit", 11) is None
    assert _layout.chosen_device(None, "fit", 11) is None
    assert _layout.chosen_device("cpu", "fleet", 5) is None  # already the default


@pytest.mark.parametrize("device", [None, "auto", "cpu"])
def test_every_choice_is_the_default_path(device):
    base = training_loop(500, 1e-2, [1.0, 0.0], data.t_un, data.t_c)
    placed = training_loop(500, 1e-2, [1.0, 0.0], data.t_un, data.t_c, device=device)
    np.testing.assert_array_equal(placed.params, base.params)
    np.testing.assert_array_equal(placed.history.loss, base.history.loss)
    t_u, t_c = np.stack([data.t_un, data.t_un + 1]), np.stack([data.t_c, data.t_c])
    np.testing.assert_array_equal(fit_fleet(t_u, t_c, n_epochs=200, learning_rate=1e-2, device=device).params,
                                  fit_fleet(t_u, t_c, n_epochs=200, learning_rate=1e-2).params)
    np.testing.assert_array_equal(sweep(data.t_un, data.t_c, n_epochs=200, learning_rate=[1e-3, 1e-2],
                                        device=device).params,
                                  sweep(data.t_un, data.t_c, n_epochs=200, learning_rate=[1e-3, 1e-2]).params)


@pytest.mark.parametrize(("device", "message"), [("gpu", "device: no gpu device here"),
                                                 ("tpu", "device: must be one of auto, cpu, gpu")])
def test_a_device_that_is_not_here_is_one_line(device, message):
    with pytest.raises(ValueError, match=message):
        training_loop(10, 1e-2, [1.0, 0.0], data.t_un, data.t_c, device=device)
    t_u, t_c = np.stack([data.t_un, data.t_un + 1]), np.stack([data.t_c, data.t_c])
    with pytest.raises(ValueError, match=message):
        fit_fleet(t_u, t_c, n_epochs=10, learning_rate=1e-2, device=device)


def test_auto_places_work_below_the_crossover_on_the_cpu_of_an_accelerator_machine(monkeypatch):
    # the rule itself, as a machine with a GPU would see it (its crossover then recorded)
    monkeypatch.setattr(_layout.jax, "default_backend", lambda: "gpu")
    monkeypatch.setitem(_layout.CROSSOVER, "fleet", 20_000)
    assert _layout.chosen_device("auto", "fleet", 5_000) == jax.devices("cpu")[0]
    assert _layout.chosen_device("auto", "fleet", 20_000) is None  # from the crossover on: the accelerator
    assert _layout.chosen_device("auto", "fit", 11) is None  # no crossover recorded: nothing moves
    assert _layout.chosen_device("cpu", "fit", 11) == jax.devices("cpu")[0]
