"""Runs ``jaxcal`` (its real entry point) and creates a marker file when it reaches a chosen phase.

``python interrupt_points.py PHASE MARKER -- ARGS...``, for the interrupt tests: the test waits for
MARKER to appear, the observable sign that the command is in PHASE, then sends the signal.

- ``startup``: the marker appears as ``jax`` starts to be imported (after jaxcal's entry point has
  begun, before anything is computed);
- ``fit``: as ``fit_fleet`` is called (the run is long by construction);
- ``joined``: once the process has joined its multi-process run (``jax.distributed``);
- ``write``: once half of an output file's bytes are written; the write then waits there, as on a
  very slow disk, until the signal ends the process.

With ``JAXCAL_TEST_PART_ROWS=N`` in the environment, ``predict`` reads, converts and writes a log in parts
of N readings (so that a small log is a pipeline of several parts).
"""

from __future__ import annotations

import importlib.abc
import os
import signal
import sys
import threading
from pathlib import Path


def _mark(marker: Path) -> None:
    marker.write_text("reached\n")


class _MarkOnImport(importlib.abc.MetaPathFinder):
    def __init__(self, name: str, marker: Path) -> None:
        self.name, self.marker = name, marker

    def find_spec(self, fullname, path, target=None):
        if fullname == self.name and not self.marker.exists():
            _mark(self.marker)
        return None  # the normal finders import it


def main() -> None:
    # As from an interactive shell: a test run from a script's background job inherits SIGINT
    # ignored, which jaxcal (rightly) keeps ignoring.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    phase, marker, separator, *args = sys.argv[1:]
    assert separator == "--"
    marker = Path(marker)
    if phase == "startup":
        sys.meta_path.insert(0, _MarkOnImport("jax", marker))
    elif phase == "fit":
        import jaxcal.fleet

        fit_fleet = jaxcal.fleet.fit_fleet

        def marked(*a, **k):
            _mark(marker)
            return fit_fleet(*a, **k)

        jaxcal.fleet.fit_fleet = marked
    elif phase == "joined":
        import jaxcal.cli.fleet
        import jaxcal.cli.train

        def marking(join):
            def joined(*a, **k):
                cluster = join(*a, **k)
                _mark(marker)
                return cluster

            return joined

        for command in (jaxcal.cli.fleet, jaxcal.cli.train):
            command.join = marking(command.join)
    elif phase == "write":
        import jaxcal._files

        def slow_write(handle, data: bytes) -> None:
            handle.write(data[: len(data) // 2])
            handle.flush()
            _mark(marker)
            threading.Event().wait()  # the rest never comes: only the signal ends this

        jaxcal._files._write_all = slow_write
    else:
        raise SystemExit(f"unknown phase {phase!r}")
    if "JAXCAL_TEST_PART_ROWS" in os.environ:
        import jaxcal.io

        jaxcal.io.LOG_PART_ROWS = int(os.environ["JAXCAL_TEST_PART_ROWS"])
    from _jaxcal_start import entrypoint  # the console script's

    sys.argv = ["jaxcal", *args]
    entrypoint()


if __name__ == "__main__":
    main()
