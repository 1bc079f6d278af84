"""Shared fixtures. JAX is made strict here (and only here): implicit dtype or rank promotion in
jaxcal's code fails a test instead of silently computing in another precision."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import jax
import pytest
from hypothesis import HealthCheck, settings

# No test depends on the machine's speed: no per-example deadline, no "too slow" health check.
# CI replays the same examples every run (a red CI then means a change broke something, not
# that a new random draw was found); locally hypothesis explores new ones each time.
settings.register_profile("dev", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", parent=settings.get_profile("dev"), derandomize=True, print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

# The command line turns JAX's persistent compilation cache on by default; the tests run it (in
# process and in subprocesses) without, so that no run depends on what an earlier one left
# behind and nothing is written to the user's cache directory; tests/test_cache.py turns it on
# where it is what is tested.
os.environ["JAXCAL_NO_CACHE"] = "1"

jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")

REFERENCE = Path(__file__).parent / "reference" / "book_ch5.json"


@pytest.fixture(scope="session")
def book_runs() -> dict[str, dict[str, Any]]:
    """The 13 recorded runs of the book's chapter 5, by id (see tests/reference/README.md)."""
    runs = json.loads(REFERENCE.read_text())["runs"]
    return {run["id"]: run for run in runs}


@pytest.fixture(autouse=True)
def _standard_promotion_where_marked(request: pytest.FixtureRequest):
    # optax's Adam mixes Python floats with int32 step counts, which strict promotion refuses;
    # tests that run it are marked and get JAX's standard promotion for their duration.
    if request.node.get_closest_marker("standard_promotion") is None:
        yield
        return
    with jax.numpy_dtype_promotion("standard"):
        yield


class CompileCounter:
    """Counts XLA backend compilations, named by the jitted function."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.active = True

    def __call__(self, event: str, duration: float, **kwargs: Any) -> None:
        if self.active and event == "/jax/core/compile/backend_compile_duration":
            self.names.append(str(kwargs.get("fun_name", "")))

    def count(self, name: str) -> int:
        return sum(name in n for n in self.names)


@pytest.fixture
def compiles():
    """Record every XLA compilation during the test (``compiles.count("_compiled_loop")``)."""
    counter = CompileCounter()
    jax.monitoring.register_event_duration_secs_listener(counter)
    yield counter
    counter.active = False
    unregister = getattr(jax.monitoring, "unregister_event_duration_listener", None)  # jax >= 0.7
    if unregister is not None:
        unregister(counter)


_X64_AT_START = bool(jax.config.jax_enable_x64)  # JAX_ENABLE_X64=1 for x64_cases.py only


@pytest.fixture(autouse=True)
def _x64_stays_as_started():
    # x64 is a start-up choice; a test that flipped it in-process would change every later test.
    yield
    assert bool(jax.config.jax_enable_x64) == _X64_AT_START, "a test flipped x64 in-process; use a subprocess"
