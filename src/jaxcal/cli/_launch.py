"""``jaxcal launch``: N local processes joined by ``jax.distributed`` on loopback.

For trying and testing a multi-process run on one machine. Each process gets the coordinator's
address, the process count and its index through the ``JAXCAL_*`` environment variables; process
0's standard output is the run's. When one process exits with an error the launcher stops the
others at once, so a failure never hangs, and reports which process failed.

The processes run on the CPU (``JAX_PLATFORMS=cpu``, unless that variable is already set): N
processes sharing one machine's GPU cannot join one NCCL clique ("Duplicate GPU detected", seen
on an H200), and CPU collectives (gloo) are what a loopback trial needs.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Any

from ..distributed import ENV
from . import _interrupts

__all__ = ["launch"]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class _Errors:
    """The processes' standard error: process 0's passed through as it comes (progress bars
    included), the others' error lines held back, so that an error every process prints (the same
    bad input read by each) reaches the user once."""

    def __init__(self) -> None:
        self.shown: list[str] = []  # process 0's lines
        self.held: list[str] = []  # the other processes' lines
        self.threads: list[threading.Thread] = []

    def follow(self, stream: Any, first: bool) -> None:
        thread = threading.Thread(target=self._read, args=(stream, first), daemon=True)
        thread.start()
        self.threads.append(thread)

    def _read(self, stream: Any, first: bool) -> None:
        pending = b""
        for chunk in iter(lambda: stream.read1(65536), b""):
            if first:
                os.write(2, chunk)
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                self._line(line, first)
        if pending:
            if first:
                os.write(2, pending)
            self._line(pending, first)

    def _line(self, raw: bytes, first: bool) -> None:
        line = raw.decode(errors="replace")
        if first:
            self.shown.append(line)
        elif ": error: " in line:  # shown at the end, unless process 0 said the same
            self.held.append(line)
        else:  # anything else as it comes
            os.write(2, raw + b"\n")

    def finish(self) -> bool:
        """Wait for every stream to end, show the held lines process 0 did not print (each
        once); return whether any process reported an error."""
        for thread in self.threads:
            thread.join()
        seen = set(self.shown)
        for line in self.held:
            if line not in seen:
                seen.add(line)
                print(line, file=sys.stderr)
        return any(": error: " in line for line in seen)


def launch(command: list[str], processes: int, timeout: int) -> int:
    """Run ``jaxcal <command>`` in ``processes`` processes; return the run's exit status."""
    address = f"127.0.0.1:{_free_port()}"
    children: list[subprocess.Popen] = []
    errors = _Errors()
    # Interrupted (Ctrl-C reaches every process of the group; SIGTERM only this one), the
    # launcher stops its processes, which end quietly, and reports once.
    with _interrupts.at_interrupt(lambda: _stop(children)):
        for index in range(processes):
            env = {**os.environ, ENV["coordinator"]: address, ENV["num_processes"]: str(processes),
                   ENV["process_id"]: str(index),
                   "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"),
                   "JAX_PLATFORMS": os.environ.get("JAX_PLATFORMS", "cpu"), _interrupts.LAUNCHED: "1"}
            # Under the lock, so an interrupt stops every process started; the signals held back,
            # so a process receives them only once its own entry point can end it cleanly.
            with _interrupts.lock, _interrupts.deferred():
                children.append(subprocess.Popen(
                    [sys.executable, "-m", "jaxcal", *command, "--timeout", str(timeout)], env=env,
                    stdout=None if index == 0 else subprocess.DEVNULL, stderr=subprocess.PIPE,
                ))
            errors.follow(children[-1].stderr, first=index == 0)
        while True:
            # under the lock: while an interrupt stops the processes, their exits are not failures
            with _interrupts.lock:
                codes = [child.poll() for child in children]
                failed = [(i, code) for i, code in enumerate(codes) if code not in (None, 0)]
                if failed:
                    index, code = failed[0]
                    _stop(children)
                    if not errors.finish():  # a process that said what was wrong has said it
                        what = f"signal {-code}" if code < 0 else f"status {code}"
                        print(f"jaxcal launch: error: process {index} of {processes} exited with {what}; "
                              "stopped the others", file=sys.stderr)
                    return code if 0 < code < 128 else 1
            if all(code == 0 for code in codes):
                errors.finish()
                return 0
            time.sleep(0.05)


def _stop(children: list[subprocess.Popen]) -> None:
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 5
    for child in children:
        try:
            child.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
