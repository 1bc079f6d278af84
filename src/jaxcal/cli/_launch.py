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
import time

from .. import _interrupts
from ..distributed import ENV

__all__ = ["launch"]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def launch(command: list[str], processes: int, timeout: int) -> int:
    """Run ``jaxcal <command>`` in ``processes`` processes; return the run's exit status."""
    address = f"127.0.0.1:{_free_port()}"
    children: list[subprocess.Popen] = []
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
                    stdout=None if index == 0 else subprocess.DEVNULL,
                ))
        while True:
            # under the lock: while an interrupt stops the processes, their exits are not failures
            with _interrupts.lock:
                codes = [child.poll() for child in children]
                failed = [(i, code) for i, code in enumerate(codes) if code not in (None, 0)]
                if failed:
                    index, code = failed[0]
                    _stop(children)
                    what = f"signal {-code}" if code < 0 else f"status {code}"
                    print(f"jaxcal launch: error: process {index} of {processes} exited with {what}; "
                          "stopped the others", file=sys.stderr)
                    return code if 0 < code < 128 else 1
            if all(code == 0 for code in codes):
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
