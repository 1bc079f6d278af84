"""``python -m jaxcal``: ``entrypoint()`` around ``cli.main``.

Interrupt handling comes before the command line is imported, so that Ctrl-C or SIGTERM at any
moment (parsing, reading, compiling, fitting, writing) ends with exit status 130 or 143, one line
on stderr and no output file left behind (see :mod:`jaxcal.cli._interrupts`). The ``jaxcal``
console script (``_jaxcal_start``) also holds the signals back while the package itself is
imported; ``python -m jaxcal`` imports the package before this module runs.
"""

from __future__ import annotations

import os
import sys
from typing import NoReturn

from .cli import _interrupts

__all__ = ["entrypoint"]


def entrypoint() -> NoReturn:
    """Run the command line with ``sys.argv``; exit with its status."""
    _interrupts.install(quiet=bool(os.environ.get(_interrupts.LAUNCHED)))
    from .cli import main

    try:
        status = main()
        sys.stdout.flush()
    except BrokenPipeError:
        # `jaxcal train | head`: stop quietly, as a command killed by SIGPIPE would.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        status = 141
    sys.exit(status)


if __name__ == "__main__":
    entrypoint()
