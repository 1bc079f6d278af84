"""Start-up choices, in one place: x64, the CPU device count, the persistent compilation cache and
joining a multi-process run.

Each is applied once every flag has been checked and before any JAX computation; the library
never changes them. Nothing here is home-made networking: the coordinator, the heartbeats and
the collectives (gloo on CPU) are ``jax.distributed``'s.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from .. import _checks
from ..distributed import Cluster, from_environment
from ._settings import MAX_TIMEOUT, int_arg

__all__ = ["NO_CACHE", "cache_folder", "cluster_flags", "join", "start_up"]

#: Set to 1 to turn the command line's persistent compilation cache off (as ``--no-cache`` does).
NO_CACHE = "JAXCAL_NO_CACHE"
#: Where the cache lives, instead of the user's cache directory.
CACHE_DIR = "JAXCAL_CACHE_DIR"


def cache_folder(cache: bool = True) -> str | None:
    """The persistent compilation cache's folder, or ``None`` when it is off (``--no-cache``,
    ``JAXCAL_NO_CACHE=1``) or cannot be written: ``JAXCAL_CACHE_DIR``, else ``jax`` in the user's
    cache directory (``~/.cache/jaxcal/jax`` on Linux)."""
    if not cache or os.environ.get(NO_CACHE, "") not in ("", "0"):
        return None
    import platformdirs

    folder = os.environ.get(CACHE_DIR) or os.path.join(platformdirs.user_cache_dir("jaxcal"), "jax", _host())
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError:
        return None  # a cache saves time; a run without one is still right
    return folder if os.access(folder, os.W_OK | os.X_OK) else None


def _host() -> str:
    """This machine's kind, as the cache's subfolder: compiled CPU programs are specific to the
    CPU's features and to jaxlib, so a home shared by other machines keeps their programs apart."""
    import hashlib
    import platform

    import jaxlib

    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        lines = []
    flags = next((line for line in lines if line.startswith(("flags", "Features"))), "")
    return f"jaxlib-{jaxlib.__version__}-{hashlib.sha256((platform.machine() + flags).encode()).hexdigest()[:12]}"


def start_up(*, x64: bool = False, devices: int | None = None, all_cores: bool = False, cache: bool = True) -> None:
    """Turn on float64 (``x64``), start ``devices`` CPU devices (``all_cores``: one per core
    when ``devices`` is not given) and turn on JAX's persistent compilation cache (``cache``; see
    :func:`cache_folder`), before any computation. A second run of the same command then loads
    its compiled programs instead of compiling them."""
    import jax

    folder = cache_folder(cache)
    if folder is not None and not jax.config.jax_compilation_cache_dir:  # the caller's own cache stays
        jax.config.update("jax_compilation_cache_dir", folder)
        # jaxcal's programs compile in tenths of a second: JAX's default keeps only those over 1 s
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)

    if all_cores or devices is not None:
        try:
            jax.config.update("jax_num_cpu_devices", devices or os.cpu_count() or 1)
        except RuntimeError:
            # The backend is already running (jaxcal called from a program that used JAX first).
            if devices is not None and devices != len(jax.devices("cpu")):
                raise _checks.InvalidInput(
                    "--devices", f"JAX is already running with {len(jax.devices('cpu'))} CPU devices; "
                    "the count can only be chosen at start-up") from None
    if x64:
        jax.config.update("jax_enable_x64", True)


def cluster_flags(args: argparse.Namespace) -> tuple[int | None, int | None, int]:
    """``--num-processes``, ``--process-id`` and ``--timeout``, checked."""
    processes = None if args.num_processes is None else int_arg(args.num_processes, "--num-processes", 1 << 20)
    process_id = None
    if args.process_id is not None:
        if not (args.process_id.isascii() and args.process_id.isdigit()):
            raise _checks.InvalidInput("--process-id", f"must be an integer >= 0, got {args.process_id!r}")
        process_id = int(args.process_id)
    return processes, process_id, int_arg(args.timeout, "--timeout", MAX_TIMEOUT)


def join(coordinator: str | None, num_processes: int | None, process_id: int | None, timeout: int = 60) -> Cluster:
    """Join the run described by the flags, the ``JAXCAL_*`` variables, or a cluster's environment
    (one process when none is set); interrupts stay jaxcal's.

    Failure is bounded: a process that dies or never joins makes the others fail within the
    timeout (``initialization_timeout`` and ``heartbeat_timeout_seconds``).
    """
    import inspect

    import jax

    from . import _interrupts

    coordinator, num_processes, process_id = from_environment(coordinator, num_processes, process_id)
    auto = os.environ.get("JAXCAL_CLUSTER_AUTODETECT") == "1"  # SLURM, Open MPI, ... via JAX
    if coordinator is None and not auto:
        if num_processes not in (None, 1):
            raise _checks.InvalidInput("--num-processes", "needs --coordinator HOST:PORT")
        return Cluster(0, 1)
    if coordinator is not None and (num_processes is None or process_id is None):
        raise _checks.InvalidInput("--coordinator", "needs --num-processes and --process-id")
    if num_processes is not None and process_id is not None and not 0 <= process_id < num_processes:
        raise _checks.InvalidInput("--process-id", f"must be in 0..{num_processes - 1}, got {process_id}")
    if coordinator is not None and process_id not in (None, 0):
        _wait_for_coordinator(coordinator, timeout)
    _keep_stdout_for_results()
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    # a peer that dies is noticed within the timeout too, where this jax can be told (0.7 and later)
    heartbeat = ({"heartbeat_timeout_seconds": timeout}
                 if "heartbeat_timeout_seconds" in inspect.signature(jax.distributed.initialize).parameters else {})
    jax.distributed.initialize(coordinator, num_processes, process_id, initialization_timeout=timeout, **heartbeat)
    _interrupts.reclaim()  # jax.distributed's preemption service takes SIGTERM
    return Cluster(jax.process_index(), jax.process_count())


def _wait_for_coordinator(coordinator: str, timeout: int) -> None:
    """Fail with one line, not the runtime's abort, when process 0 cannot be reached at all."""
    import socket

    host, _, port = coordinator.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")  # [::1]:1234
    if not host or not (port.isascii() and port.isdigit()):
        raise _checks.InvalidInput("--coordinator", f"expected HOST:PORT, got {coordinator!r}")
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, int(port)), timeout=1.0):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise _checks.InvalidInput("--coordinator", f"cannot reach {coordinator} within {timeout} s; "
                                           "is process 0 running there?") from None
            time.sleep(0.2)


def _keep_stdout_for_results() -> None:
    """Send the native runtime's prints (gloo announces its connections on stdout) to stderr,
    keeping standard output for jaxcal's own result (one JSON object, say)."""
    sys.stdout.flush()
    results = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = os.fdopen(results, "w", buffering=1)

