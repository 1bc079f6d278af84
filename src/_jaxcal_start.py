"""The ``jaxcal`` console script: SIGINT and SIGTERM are held back from its first instruction.

Importing the ``jaxcal`` package imports JAX (about a second). An interrupt in that time would
meet Python's defaults (a ``KeyboardInterrupt`` traceback, or a silent kill); held back, it waits
until ``jaxcal.__main__.entrypoint`` has routed both signals to jaxcal's watcher, which then ends
the run with one line, exit status 130 or 143 and no file left behind. This module lives outside
the package because importing anything inside it runs the package's import first.
"""

from __future__ import annotations

import signal
from typing import NoReturn

__all__ = ["entrypoint"]


def entrypoint() -> NoReturn:
    """Hold the signals back, import jaxcal, run its command line (which lets them in)."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    from jaxcal.__main__ import entrypoint as run

    run()
