"""Ctrl-C and SIGTERM for the command line: at any moment, one line, exit 130 or 143, no file left.

Python's own handling raises ``KeyboardInterrupt`` wherever the main thread happens to be: inside
an import, an ``except`` block or a finaliser (a traceback, or "Exception ignored" lines), or not
at all until a long compiled computation returns; SIGTERM kills without a word. Instead, from the
entry point's first instruction, both signals only wake a watcher thread (``signal.set_wakeup_fd``).
The watcher takes :data:`lock`, the lock a run's staging folders (:mod:`._outputs`) are created
and committed under, removes those folders with what they hold, runs the registered clean-ups (a
launcher stops its processes), writes one line and ends the process with ``os._exit``. The main thread is never
interrupted, so it never leaves a half-done state behind.

Standard library only: this module runs before JAX or NumPy is imported.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import threading
from collections.abc import Callable, Iterator

__all__ = ["EXIT_STATUS", "LAUNCHED", "at_interrupt", "deferred", "install", "lock", "mark_written", "reclaim",
           "remove_folder", "track_folder", "untrack_folder"]

#: Set by ``jaxcal launch`` in its processes' environment: the launcher reports an interrupt, once.
LAUNCHED = "JAXCAL_LAUNCHED"

#: The exit status of a process ended by each signal, as a shell reports it (128 + signal number).
EXIT_STATUS = {signal.SIGINT: 130, signal.SIGTERM: 143}
_WORD = {signal.SIGINT: "interrupted", signal.SIGTERM: "terminated"}

#: Held while a staging folder is created and registered, and while outputs are renamed into
#: place: the watcher waits for it, so it never sees a folder half-registered or a run half-committed.
lock = threading.RLock()
_folders: set[str] = set()
_clean_ups: list[Callable[[], None]] = []
_state: dict[str, object] = {"written": False, "signals": set()}


def track_folder(path: str) -> None:
    """Remove the folder ``path`` and all it holds if the process is interrupted (call it with
    :data:`lock` held)."""
    _folders.add(path)


def untrack_folder(path: str) -> None:
    _folders.discard(path)


def remove_folder(path: str) -> None:
    """Remove the folder ``path`` with what it holds, while the main thread may still be writing in it.

    The folder is first renamed, so that a file the main thread opens from then on finds no folder;
    one whose open was already under way can still land in it, so removal is tried again until the
    folder is gone.
    """
    doomed = f"{path}.removing"
    try:
        os.rename(path, doomed)
    except OSError:
        doomed = path
    for _ in range(100):
        shutil.rmtree(doomed, ignore_errors=True)
        if not os.path.lexists(doomed):
            return


def mark_written() -> None:
    """The run's outputs are in place: an interrupt from now on no longer says nothing was written."""
    _state["written"] = True


@contextlib.contextmanager
def at_interrupt(clean_up: Callable[[], None]) -> Iterator[None]:
    """Run ``clean_up`` (from the watcher thread) if the process is interrupted inside the block."""
    with lock:
        _clean_ups.append(clean_up)
    try:
        yield
    finally:
        with lock:
            _clean_ups.remove(clean_up)


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM back inside the block (they arrive when it ends). A process
    started inside it inherits them held back until its own :func:`install` lets them in."""
    signals = set(EXIT_STATUS)
    signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, signals)


def reclaim() -> None:
    """Route the signals to the watcher again after a library installed its own handler (JAX's
    preemption service takes SIGTERM in ``jax.distributed.initialize``)."""
    for signum in _state["signals"]:  # type: ignore[attr-defined]
        signal.signal(signum, _ignore)


def _ignore(signum: int, frame: object) -> None:
    # The Python-level handler must exist for the C handler to write to the wakeup fd; the
    # watcher thread does the work.
    del signum, frame


def _ignore_from_now_on(signals: set[int]) -> None:
    for signum in signals:
        signal.signal(signum, signal.SIG_IGN)


def install(*, quiet: bool = False) -> None:
    """Route SIGINT and SIGTERM to the watcher. Call first, from the main thread.

    ``quiet``: end without the line (a process started by ``jaxcal launch``, whose launcher
    reports for the whole run).
    """
    # A signal the process was started ignoring (`nohup`, a shell's background job) stays ignored.
    signals = {signum for signum in EXIT_STATUS if signal.getsignal(signum) is not signal.SIG_IGN}
    # Blocked while the watcher is set up, so that a signal arriving now waits for it instead of
    # meeting Python's defaults; the watcher thread inherits the mask and never receives them.
    signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    try:
        read_end, write_end = os.pipe()
        os.set_blocking(write_end, False)
        threading.Thread(target=_watch, args=(read_end, quiet), name="jaxcal-interrupts", daemon=True).start()
        signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
        for signum in signals:
            signal.signal(signum, _ignore)
        _state["signals"] = signals
        # At exit, after every later-registered handler (JAX's shutdown among them) has run, the
        # finished run ignores them: the interpreter's finalisation stops the watcher and resets
        # handlers other than SIG_IGN to the default, which would kill it without a word.
        atexit.register(_ignore_from_now_on, signals)
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, set(EXIT_STATUS))  # also what a launcher held back


def _watch(read_end: int, quiet: bool) -> None:
    while True:
        try:
            received = os.read(read_end, 64)
        except InterruptedError:
            continue
        for signum in received:
            if signum in EXIT_STATUS:
                _end(signal.Signals(signum), quiet)


def _end(signum: signal.Signals, quiet: bool) -> None:
    with lock:  # waits for a file being created or committed; the main thread then never resumes
        for path in list(_folders):
            remove_folder(path)
        for clean_up in list(_clean_ups):
            with contextlib.suppress(Exception):
                clean_up()
        if not quiet:
            what = "its output was already written" if _state["written"] else "nothing was written"
            line = f"jaxcal: {_WORD[signum]}; {what}\n"
            with contextlib.suppress(OSError):
                os.write(2, (("\n" if os.isatty(2) else "") + line).encode())
        os._exit(EXIT_STATUS[signum])
