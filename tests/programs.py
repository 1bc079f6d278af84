"""Helpers for tests that look inside: the sums a traced program holds, and whether a process has
installed its signal handlers."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import jax


class Sum(NamedTuple):
    primitive: str  # "reduce_sum", or "reduce" for a merged (variadic) one
    outputs: int
    shape: tuple[int, ...]  # of its (first) operand


def _jaxprs_in(params: dict[str, Any]) -> list[Any]:
    """The jaxprs nested in an equation's params (``jax.extend.core.jaxprs_in_params``, which
    older JAX lacks)."""
    found = []
    for value in params.values():
        for item in value if isinstance(value, (tuple, list)) else [value]:
            if hasattr(item, "eqns"):
                found.append(item)
            elif hasattr(getattr(item, "jaxpr", None), "eqns"):
                found.append(item.jaxpr)
    return found


def sums_in(fun: Any, *args: Any) -> list[Sum]:
    """Every reduction in ``fun``'s jaxpr for ``args``, nested jaxprs (loops, calls) included."""
    found = []

    def walk(jaxpr: Any) -> None:
        for eqn in jaxpr.eqns:
            if eqn.primitive.name in ("reduce_sum", "reduce"):
                found.append(Sum(eqn.primitive.name, len(eqn.outvars), tuple(eqn.invars[0].aval.shape)))
            for sub in _jaxprs_in(eqn.params):
                walk(sub)

    walk(jax.make_jaxpr(fun)(*args).jaxpr)
    return found


def handles_sigterm(pid: int) -> bool:
    """Whether process ``pid`` catches SIGTERM (/proc's SigCgt): jaxcal's entry point has started."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    caught = next(line for line in status.splitlines() if line.startswith("SigCgt:")).split()[1]
    return bool(int(caught, 16) & (1 << (signal.SIGTERM - 1)))


#: How often wait_for looks again: the wait is for an event, this only sets how soon it is seen.
POLL_SECONDS = 0.01


def wait_for(event: Callable[[], Any], process: subprocess.Popen, timeout: float = 300) -> Any:
    """Until ``event()`` is true (and return it), failing if ``process`` ends first or the event
    has not come after a generous ``timeout``."""
    deadline = time.monotonic() + timeout
    while not (seen := event()):
        assert process.poll() is None, f"the process ended before the event: {process.communicate()}"
        assert time.monotonic() < deadline, "the event never came"
        time.sleep(POLL_SECONDS)
    return seen


def pytest_with_x64(*args: str) -> subprocess.CompletedProcess:
    """Run ``pytest ARGS`` in a fresh interpreter with ``JAX_ENABLE_X64=1`` (x64 is chosen at
    start-up), from the project's root; its output captured."""
    import os
    import sys

    # An outer parallel run's state must not leak into this inner run: its workers' variables
    # (pytest-benchmark, where installed, reads them as "xdist is active" and warns: an error here)
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_XDIST")}
    env["JAX_ENABLE_X64"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", "-p", "no:benchmark", *args],
        capture_output=True, text=True, env=env, cwd=Path(__file__).parent.parent,
    )
