"""A progress bar on stderr for long fleets, drawn between compiled chunks of epochs.

It stays silent unless the stream is a terminal, ``enabled`` is true and the run has already
taken ``delay`` seconds, so short runs and logs never see it.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["ProgressBar"]


class ProgressBar:
    """``bar(done, total)`` redraws ``label [#####.....] 50% 1.2 s`` in place; ``close()`` ends the line."""

    def __init__(self, label: str, stream: TextIO | None = None, enabled: bool = True, delay: float = 2.0) -> None:
        self.stream = sys.stderr if stream is None else stream
        self.enabled = enabled and bool(getattr(self.stream, "isatty", lambda: False)())
        self.label = label
        self.delay = delay
        self.start = time.perf_counter()
        self.drawn = False

    def __call__(self, done: int, total: int) -> None:
        elapsed = time.perf_counter() - self.start
        if not self.enabled or elapsed < self.delay:
            return
        width = 30
        filled = int(width * done / total) if total else width
        bar = "#" * filled + "." * (width - filled)
        self.stream.write(f"\r{self.label} [{bar}] {done / total:4.0%} {elapsed:.1f} s")
        self.stream.flush()
        self.drawn = True

    def close(self) -> None:
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()
